"""The responder: answers given in a chat to Airflow's own HITL requests, recorded in Airflow.

``alerter_hitl_notifier`` posts a HITL operator's request to a chat and leaves a
:class:`~airflow_alerter.hooks.hitl.PendingRequest` in an Airflow Variable. On Airflow 3.3 the
operator then waits in ``awaiting_input`` (no worker, no trigger), on 3.1/3.2 in Airflow's own
trigger, which only reads the record: neither reads a chat. This long-running process does, like
``airflow triggerer`` does for triggers:

1. every ``interval`` seconds it lists the pending requests (Airflow's REST API, Variables by prefix);
2. for each, it reads the record: answered in Airflow (or timed out) → the chat shows that outcome;
3. else one chat check; a valid answer (the trust rules, the notifier's ``approvers``, options by
   name) is written with ``PATCH …/hitlDetails`` — the call the Required actions page makes, which
   locks the record and refuses a second answer (409), so the first answer wins wherever it came;
4. the chat thread and the question show the outcome, and the Variable is deleted.

It talks to Airflow only through the public REST API, as a user of it: set ``AIRFLOW_ALERTER_API_TOKEN``
(a JWT), or ``AIRFLOW_ALERTER_API_USERNAME`` / ``AIRFLOW_ALERTER_API_PASSWORD`` (``POST /auth/token``);
with neither, it asks ``GET /auth/token``, which only Airflow's simple auth manager in all-admins mode
(a development set-up) answers. That user must be allowed to answer the requests (an assigned user,
or none assigned). Pushed answers (Slack Socket Mode, Discord Gateway) are the next step; this is
the polling mode they fall back to.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_alerter.alerters.http import HttpError, JsonClient, with_query
from airflow_alerter.alerters.retry import RetryPolicy
from airflow_alerter.hooks.hitl import (
    REQUEST_KEY_PREFIX,
    PendingRequest,
    answer_facts,
    answer_words,
    chosen_options,
    own_choice,
    result_from_event,
)
from airflow_alerter.models import AskResult, AskStatus

log = logging.getLogger(__name__)

TOKEN_ENV, USERNAME_ENV, PASSWORD_ENV = "AIRFLOW_ALERTER_API_TOKEN", "AIRFLOW_ALERTER_API_USERNAME", \
    "AIRFLOW_ALERTER_API_PASSWORD"
DEFAULT_INTERVAL = 30.0
PAGE = 100


@dataclass
class AirflowAPI:
    """Airflow's public REST API (``/api/v2``) as one user, with a token it renews once on a 401."""

    base_url: str
    timeout: float = 30.0
    _token: str | None = field(default=None, repr=False)

    def call(self, method: str, path: str, payload: Any = None) -> Any:
        url = f"{self.base_url.rstrip('/')}/api/v2{path}"
        try:
            return self._client().call(method, url, payload, name=path)
        except HttpError as err:
            if err.status != 401:
                raise
            self._token = None  # expired: one new token, one more try
            return self._client().call(method, url, payload, name=path)

    def _client(self) -> JsonClient:
        headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
        return JsonClient("Airflow API", self.timeout, RetryPolicy(attempts=2), headers)

    def _bearer(self) -> str:
        if self._token is None:
            self._token = os.environ.get(TOKEN_ENV) or self._new_token()
        return self._token

    def _new_token(self) -> str:
        client = JsonClient("Airflow login", self.timeout, RetryPolicy(attempts=2), {})
        url = f"{self.base_url.rstrip('/')}/auth/token"
        username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
        if username and password:
            answer = client.call("POST", url, {"username": username, "password": password}, name="/auth/token")
        else:
            answer = client.call("GET", url, name="/auth/token")
        return str(answer["access_token"])


def pending_requests(api: AirflowAPI) -> list[tuple[str, PendingRequest]]:
    """Every HITL request a notifier asked in a chat and nobody has closed yet: ``(variable key, request)``."""
    found: list[tuple[str, PendingRequest]] = []
    offset = 0
    while True:
        page = api.call("GET", with_query("/variables", variable_key_pattern=REQUEST_KEY_PREFIX,
                                          limit=str(PAGE), offset=str(offset)))
        for variable in page.get("variables", []):
            if str(variable.get("key", "")).startswith(f"{REQUEST_KEY_PREFIX}."):
                try:
                    found.append((variable["key"], PendingRequest.model_validate_json(variable["value"])))
                except ValueError as err:
                    log.warning("Variable %s is not a pending request (%s); left alone", variable["key"], err)
        offset += PAGE
        if offset >= int(page.get("total_entries", 0)):
            return found


@dataclass
class Responder:
    """One pass over the pending requests (:meth:`serve_once`), or passes every ``interval`` (:meth:`run`)."""

    api: AirflowAPI
    interval: float = DEFAULT_INTERVAL

    def run(self, stopping: threading.Event) -> None:
        """Serve every ``interval`` seconds until ``stopping`` is set (SIGTERM, Ctrl-C)."""
        log.info("Responder serving %s every %gs", self.api.base_url, self.interval)
        while not stopping.is_set():
            started = time.monotonic()
            self.serve_once()
            stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def serve_once(self) -> int:
        """Serve each pending request once; the number closed in this pass."""
        try:
            requests = pending_requests(self.api)
        except HttpError as err:
            log.warning("Could not list the pending requests: %s", err)
            return 0
        return sum(self._serve_safely(key, pending) for key, pending in requests)

    def _serve_safely(self, key: str, pending: PendingRequest) -> bool:
        try:
            return self.serve(key, pending)
        except Exception as err:  # one broken request must not stop the others being served
            log.warning("Could not serve the request of %s: %s", _where(pending), err)
            return False

    def serve(self, key: str, pending: PendingRequest) -> bool:
        """Record a chat answer or show Airflow's; True when the request is closed."""
        try:
            record = self.api.call("GET", pending.api_path)
        except HttpError as err:
            if err.status != 404:
                raise
            log.info("The request of %s is gone (its task was cleared or deleted); forgetting it", _where(pending))
            self._forget(key)
            return True
        alerter = _alerter(pending.conn_id, _answer_settings(pending))
        if record.get("response_received"):
            return self._close(key, pending, alerter, result_from_event(record))
        result = alerter.check_answer(pending.handle)
        if result.status is AskStatus.ERROR:
            log.warning("The chat question of %s cannot be checked: %s", _where(pending), result.reason)
        chosen = chosen_options(result, pending.options, pending.multiple) if result.responder else None
        if chosen is None:
            return False
        answer = result.model_copy(update={"channel": result.channel or pending.handle.flavor,
                                           "choice": own_choice(chosen)})
        return self._record(key, pending, alerter, answer, chosen)

    def _record(self, key: str, pending: PendingRequest, alerter: Any, answer: AskResult, chosen: list[str]) -> bool:
        body = {"chosen_options": chosen, "params_input": {} if pending.has_params else answer_facts(answer)}
        try:
            self.api.call("PATCH", pending.api_path, body)
        except HttpError as err:
            if err.status != 409:
                raise
            first = result_from_event(self.api.call("GET", pending.api_path))
            log.info("The request of %s was answered in Airflow first; that answer counts", _where(pending))
            return self._close(key, pending, alerter, first)
        log.info("Recorded %s's answer %s for %s", answer.responder, chosen, _where(pending))
        return self._close(key, pending, alerter, answer)

    def _close(self, key: str, pending: PendingRequest, alerter: Any, result: AskResult) -> bool:
        alerter.conclude(pending.handle, result)
        self._forget(key)
        return True

    def _forget(self, key: str) -> None:
        from urllib.parse import quote

        self.api.call("DELETE", f"/variables/{quote(key, safe='')}")


def _answer_settings(pending: PendingRequest) -> dict[str, Any]:
    """The chat check's rules for this request: its approvers, and its options as the words that count."""
    approve, reject = answer_words(pending.options)
    settings: dict[str, Any] = {"approve_keywords": approve, "reject_keywords": reject}
    if pending.approvers is not None:
        settings["approvers"] = pending.approvers
    return settings


def _alerter(conn_id: str, settings: dict[str, Any]) -> Any:
    from airflow_alerter.hooks.alerter import AlerterHook

    return AlerterHook(conn_id, settings).get_alerter()


def _where(pending: PendingRequest) -> str:
    return f"{pending.dag_id}/{pending.run_id}/{pending.task_id}[{pending.map_index}]"
