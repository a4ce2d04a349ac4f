"""Airflow's public REST API as the responder's one way into Airflow, and the questions waiting there.

The responder talks to Airflow only as a user of its REST API: set ``AIRFLOW_ALERTER_API_TOKEN``
(a JWT), or ``AIRFLOW_ALERTER_API_USERNAME`` / ``AIRFLOW_ALERTER_API_PASSWORD`` (``POST /auth/token``);
with neither, it asks ``GET /auth/token``, which only Airflow's simple auth manager in all-admins mode
(a development set-up) answers. That user must be allowed to answer the requests (an assigned user,
or none assigned). Credentials are read from the environment, never from argv, never logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from airflow_alerter.alerters.http import HttpError, JsonClient, with_query
from airflow_alerter.alerters.retry import RetryPolicy
from airflow_alerter.hooks.hitl import REQUEST_KEY_PREFIX, PendingRequest

log = logging.getLogger(__name__)

TOKEN_ENV, USERNAME_ENV, PASSWORD_ENV = "AIRFLOW_ALERTER_API_TOKEN", "AIRFLOW_ALERTER_API_USERNAME", \
    "AIRFLOW_ALERTER_API_PASSWORD"
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
