"""HTTP mode: Slack's and Discord's interactivity requests, verified, then decided by the Decider.

For teams whose api-server Slack or Discord can reach (no responder process, no Socket Mode or
Gateway connection). Each request goes through the same gates, in this order, and changes nothing
unless it passes them all:

1. the body is read up to :data:`MAX_BODY` bytes (more: 413), before anything parses it;
2. the connection named in the URL must be a ``slack`` connection with the extra
   ``signing_secret`` / a ``discord`` one with the extra ``public_key`` (else 401, and a warning
   naming the connection says which);
3. the signature: Slack's ``X-Slack-Signature`` (``v0=`` + HMAC-SHA256 of
   ``v0:{timestamp}:{body}``, checked by slack_sdk's ``SignatureVerifier`` with
   ``hmac.compare_digest``), Discord's ``X-Signature-Ed25519`` over timestamp + body (Ed25519,
   ``cryptography``); the timestamp within :data:`WINDOW` seconds of now; a signature already seen
   within that window is a replay. Any failure: 401;
4. the body must be JSON (Slack's interactivity: a form whose ``payload`` is JSON), else 400.

Then: Slack's ``url_verification`` gets its ``challenge`` back; a click on one of our answer
buttons becomes a :class:`~airflow_alerter.responder.decisions.Click`, a thread reply or ✅/❌
reaction a :meth:`~airflow_alerter.responder.decisions.Decider.message_event`; anything else is
answered 200 and changes nothing.

Slack wants its answer within 3 s: the endpoint answers 200 at once and decides in a background
task after the response is sent (Starlette's ``BackgroundTasks``), then tells the clicker
(``chat.postEphemeral``) why a click changed nothing; a recorded click shows in the question
itself. Discord wants the outcome *in* the answer (an ephemeral message): the click is decided in
a thread for up to :data:`DISCORD_BUDGET` seconds; a slower decision goes on in the background and
the clicker is told it was received.

The Decider reaches Airflow through its public REST API like the responder (:mod:`..responder.api`,
credentials from the environment) at ``AIRFLOW_ALERTER_API_URL``, else ``[api] base_url``.

The replay cache lives in the process: with several api-server workers, a replay sent to another
worker within the window passes the signature check, and then meets the Decider's first-answer-wins
record (nothing changes twice). No secret, signature or payload is logged or echoed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_alerter.responder.decisions import Click, Decider, Outcome, Verdict

log = logging.getLogger(__name__)

#: the largest body read (Slack's and Discord's payloads are a few kB)
MAX_BODY = 1024 * 1024
#: seconds a request's timestamp may be off from now (Slack's rule; Discord's requests are held to it too)
WINDOW = 300
#: seconds a Discord click is decided for before the answer says "received" and the decision goes on
DISCORD_BUDGET = 2.5
#: the most signatures remembered (a flood of valid requests pushes the oldest out first)
REPLAY_CACHE_SIZE = 100_000
API_URL_ENV = "AIRFLOW_ALERTER_API_URL"

DeciderFactory = Callable[[], Decider]


def api_base_url() -> str:
    """Where the Decider reaches Airflow's REST API: ``AIRFLOW_ALERTER_API_URL``, else ``[api] base_url``."""
    from airflow_alerter._compat import conf
    from airflow_alerter.exceptions import AlerterConfigError

    url = os.environ.get(API_URL_ENV) or conf.get("api", "base_url", fallback=None)
    if not url:
        raise AlerterConfigError(f"{API_URL_ENV} or [api] base_url: the api-server's URL is needed to record answers")
    return str(url)


class ReplayCache:
    """Signatures seen in the last :data:`WINDOW` seconds; ``first(sig)`` is False for a replay."""

    def __init__(self, window: float = WINDOW, size: int = REPLAY_CACHE_SIZE) -> None:
        self.window, self.size = window, size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, signature: str, now: float) -> bool:
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - 2 * self.window:
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = now
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return True


def _timestamp_problem(timestamp: str | None, now: float) -> str | None:
    if not timestamp:
        return "no timestamp"
    try:
        at = int(timestamp)
    except ValueError:
        return "a timestamp that is not a number"
    return "a stale timestamp" if abs(now - at) > WINDOW else None


def slack_problem(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> str | None:
    """Why a Slack request is not authentic (None when it is): slack_sdk's SignatureVerifier, given our clock."""
    from slack_sdk.signature import Clock, SignatureVerifier

    if not signature:
        return "no signature"
    if problem := _timestamp_problem(timestamp, now):
        return problem

    class At(Clock):
        def now(self) -> float:
            return now

    try:
        valid = SignatureVerifier(secret, clock=At()).is_valid(body, timestamp, signature)
    except ValueError:  # a body that is not UTF-8
        valid = False
    return None if valid else "a wrong signature"


def discord_problem(public_key: str, body: bytes, timestamp: str | None, signature: str | None,
                    now: float) -> str | None:
    """Why a Discord request is not authentic (None when it is): Ed25519 over timestamp + body."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not signature:
        return "no signature"
    if problem := _timestamp_problem(timestamp, now):
        return problem
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), str(timestamp).encode() + body)
    except (InvalidSignature, ValueError):
        return "a wrong signature"
    return None


def _alerter(conn_id: str, flavor: str) -> Any:
    """The connection's alerter when it is of ``flavor``, else None (and a warning saying why)."""
    from airflow_alerter.exceptions import AlerterConfigError
    from airflow_alerter.hooks.alerter import AlerterHook

    try:
        alerter = AlerterHook(conn_id).get_alerter()
    except Exception as err:  # pydantic's errors may quote a value: only our own errors are shown whole
        reason = str(err) if isinstance(err, AlerterConfigError) else type(err).__name__
        log.warning("HTTP interactivity: connection %r cannot be read (%s); request refused", conn_id, reason)
        return None
    if flavor != alerter.FLAVOR:
        log.warning("HTTP interactivity: connection %r is a %s connection, not %s; request refused", conn_id,
                    alerter.FLAVOR, flavor)
        return None
    return alerter


def _key(alerter: Any, field: str) -> str | None:
    value = getattr(alerter.config, field, None) if alerter is not None else None
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) if value else None


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise HTTPException(400, "bad Content-Length")
    if declared is not None and int(declared) > MAX_BODY:  # refused before a byte of it is read
        raise HTTPException(413, "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, "body too large")
    return bytes(body)


def _refused(conn_id: str, flavor: str, reason: str) -> JSONResponse:
    log.warning("HTTP interactivity: a %s request for connection %r was refused: %s", flavor, conn_id, reason)
    return JSONResponse({"error": "invalid request signature"}, status_code=401)


def _json_object(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise HTTPException(400, "body is not JSON") from None
    if not isinstance(value, Mapping):
        raise HTTPException(400, "body is not a JSON object")
    return value


def _slack_payload(body: bytes, content_type: str) -> Mapping[str, Any]:
    """Slack's interactivity posts a form (``payload=<json>``), its Events API posts JSON."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise HTTPException(400, "body is not UTF-8") from None
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = parse_qs(text)
        if "payload" not in fields:
            raise HTTPException(400, "form without a payload")
        return _json_object(fields["payload"][0])
    return _json_object(text)


class Interactivity:
    """What the endpoints share: one Decider (its question index and API token), the replay cache, the clock."""

    def __init__(self, decider: DeciderFactory | None = None, clock: Callable[[], float] = time.time) -> None:
        self._factory = decider or self._default_decider
        self._decider: Decider | None = None
        self._lock = threading.Lock()
        self.clock = clock
        self.replays = ReplayCache()
        self._running: set[asyncio.Future[str]] = set()

    @staticmethod
    def _default_decider() -> Decider:
        from airflow_alerter.responder.api import AirflowAPI

        return Decider(AirflowAPI(api_base_url()))

    @property
    def decider(self) -> Decider:
        with self._lock:
            if self._decider is None:
                self._decider = self._factory()
            return self._decider

    async def verified(self, request: Request, conn_id: str, flavor: str) -> tuple[bytes, Any] | JSONResponse:
        """``(body, alerter)`` of an authentic request, or the 401 refusing it."""
        body = await _body(request)
        alerter = await run_in_threadpool(_alerter, conn_id, flavor)
        field = "signing_secret" if flavor == "slack" else "public_key"
        key = _key(alerter, field)
        if key is None:
            return _refused(conn_id, flavor, "no connection with the extra " + field if alerter is None
                            else f"the connection has no extra {field!r}")
        now = self.clock()
        if flavor == "slack":
            signature = request.headers.get("x-slack-signature")
            problem = slack_problem(key, body, request.headers.get("x-slack-request-timestamp"), signature, now)
        else:
            signature = request.headers.get("x-signature-ed25519")
            problem = discord_problem(key, body, request.headers.get("x-signature-timestamp"), signature, now)
        if problem is None and not self.replays.first(f"{flavor}:{signature}", now):
            problem = "a replayed signature"
        return _refused(conn_id, flavor, problem) if problem else (body, alerter)

    def decide(self, click: Click) -> Outcome:
        """The Decider's outcome of a click (it lists the pending questions again for a message not yet known)."""
        return self.decider.click(click)

    # --- Slack ------------------------------------------------------------------------------------

    def slack_click(self, alerter: Any, click: Click) -> None:
        """Decide a click (after the 200 went out) and tell the clicker why it changed nothing."""
        try:
            outcome = self.decide(click)
        except Exception as err:  # a background task has nobody to raise to
            log.warning("HTTP interactivity: a Slack click on connection %r could not be recorded: %s",
                        click.conn_id, err)
            alerter.tell(click.channel, click.user_id, "Your click could not be recorded (the api-server logged "
                                                       "why); answer in Airflow or try again.")
            return
        from airflow_alerter.responder.slack_events import notice_text

        text = notice_text(outcome)
        if outcome.verdict is not Verdict.RECORDED and text:  # a recorded click shows in the question itself
            alerter.tell(click.channel, click.user_id, text)

    def message_event(self, conn_id: str, channel: str, ts: str) -> None:
        try:
            self.decider.message_event(conn_id, channel, ts)
        except Exception as err:
            log.warning("HTTP interactivity: a Slack reply or reaction on connection %r could not be checked: %s",
                        conn_id, err)

    async def slack(self, request: Request, conn_id: str, background: BackgroundTasks) -> Response:
        checked = await self.verified(request, conn_id, "slack")
        if isinstance(checked, Response):
            return checked
        body, alerter = checked
        payload = _slack_payload(body, request.headers.get("content-type", ""))
        kind = payload.get("type")
        if kind == "url_verification":
            return JSONResponse({"challenge": str(payload.get("challenge", ""))})
        from airflow_alerter.responder.slack_events import click_from_actions, question_of_event

        if kind == "block_actions" and (click := click_from_actions(conn_id, payload)) is not None:
            background.add_task(self.slack_click, alerter, click)
        elif kind == "event_callback" and isinstance(event := payload.get("event"), Mapping) and (
                question := question_of_event(event)) is not None:
            background.add_task(self.message_event, conn_id, *question)
        return Response(status_code=200)

    # --- Discord ----------------------------------------------------------------------------------

    def discord_notice(self, click: Click) -> str:
        from airflow_alerter.responder.slack_events import notice_text

        try:
            outcome = self.decide(click)
        except Exception as err:
            log.warning("HTTP interactivity: a Discord click on connection %r could not be recorded: %s",
                        click.conn_id, err)
            return "Your click could not be recorded (the api-server logged why); answer in Airflow or try again."
        return notice_text(outcome) or "Recorded."

    async def discord(self, request: Request, conn_id: str) -> Response:
        from airflow_alerter.responder.discord_events import (
            DEFERRED_UPDATE_MESSAGE,
            PING,
            PONG,
            click_from_interaction,
            ephemeral,
        )

        checked = await self.verified(request, conn_id, "discord")
        if isinstance(checked, Response):
            return checked
        interaction = _json_object(checked[0].decode(errors="replace"))
        if interaction.get("type") == PING:
            return JSONResponse({"type": PONG})
        click = click_from_interaction(conn_id, interaction)
        if click is None:  # not one of our buttons: acknowledged, nothing changes
            return JSONResponse({"type": DEFERRED_UPDATE_MESSAGE})
        deciding = asyncio.ensure_future(run_in_threadpool(self.discord_notice, click))
        done, _ = await asyncio.wait({deciding}, timeout=DISCORD_BUDGET)
        if deciding in done:
            return JSONResponse(ephemeral(deciding.result()))
        self._running.add(deciding)  # keep the decision alive past the answer
        deciding.add_done_callback(self._running.discard)
        return JSONResponse(ephemeral("Received: your answer is being recorded; the question will show the outcome."))


def build_app(decider: DeciderFactory | None = None, clock: Callable[[], float] = time.time) -> FastAPI:
    """The FastAPI app Airflow mounts under ``/alerter`` (``decider`` and ``clock`` are for tests)."""
    shared = Interactivity(decider, clock)
    app = FastAPI(title="airflow-alerter interactivity", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/slack/{conn_id}/interactions")
    async def slack_interactions(conn_id: str, request: Request, background: BackgroundTasks) -> Response:
        return await shared.slack(request, conn_id, background)

    @app.post("/slack/{conn_id}/events")
    async def slack_events(conn_id: str, request: Request, background: BackgroundTasks) -> Response:
        return await shared.slack(request, conn_id, background)

    @app.post("/discord/{conn_id}/interactions")
    async def discord_interactions(conn_id: str, request: Request) -> Response:
        return await shared.discord(request, conn_id)

    from airflow_alerter.plugins.email_page import route_answer_page

    route_answer_page(app, shared)
    app.state.interactivity = shared
    return app
