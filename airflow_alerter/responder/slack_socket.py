"""Slack Socket Mode: clicks, replies and reactions pushed over an outbound websocket, no public URL.

slack_sdk's own Socket Mode client (``slack_sdk.socket_mode.aiohttp``) opens the connection with the
app-level token (``xapp-…``, the Slack connection's extra ``app_token``), reconnects when Slack
rotates or drops it, and pings. This module only reads what it delivers:

- every envelope is acknowledged at once, before anything is decided (Slack resends an envelope not
  acked within 3 s);
- a click on an answer button goes to the Decider; the clicker alone is told when it changed
  nothing (``chat.postEphemeral``), the question shows a recorded decision itself;
- a thread reply or a reaction on a pending question makes the Decider check that question once;
- each ``hello`` (a new connection) starts a catch-up: one check of each pending question of this
  connection, so answers given while the responder was away count.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_alerter.exceptions import AlerterConfigError
from airflow_alerter.responder.decisions import Decider, Verdict
from airflow_alerter.responder.slack_events import click_from_actions, notice_text, question_of_event

if TYPE_CHECKING:
    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest

    from airflow_alerter.alerters.slack import SlackAlerter

log = logging.getLogger(__name__)


class SlackSocketConnection:
    """One Socket Mode connection for one Slack connection id."""

    mode = "socket_mode"

    def __init__(self, conn_id: str, alerter: SlackAlerter, app_token: str, decider: Decider) -> None:
        self.conn_id = conn_id
        self.alerter = alerter
        self.decider = decider
        self._app_token = app_token
        self._client: Any = None  # slack_sdk's aiohttp SocketModeClient, once running
        self._chores: set[asyncio.Task[Any]] = set()

    @classmethod
    def for_alerter(cls, conn_id: str, alerter: Any, decider: Decider) -> SlackSocketConnection:
        token = getattr(alerter.config, "app_token", None)
        if token is None:
            raise AlerterConfigError(f"app_token: the Slack connection {conn_id!r} needs an app-level token "
                                     "(xapp-…, scope connections:write) in its extra for Socket Mode")
        return cls(conn_id, alerter, token.get_secret_value(), decider)

    @property
    def connected(self) -> bool:
        client = self._client
        session = client.current_session if client is not None else None
        return bool(client is not None and not client.closed and not client.stale
                    and session is not None and not session.closed)

    async def run(self, stopping: asyncio.Event) -> None:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient

        self._client = client = SocketModeClient(app_token=self._app_token, web_client=self.alerter.socket_web_client(),
                                                 logger=log, ping_interval=5)
        client.message_listeners.append(self._on_message)
        client.socket_mode_request_listeners.append(self._on_request)
        await client.connect()  # type: ignore[no-untyped-call]  # slack_sdk leaves it untyped
        try:
            await stopping.wait()
        finally:
            await client.close()  # type: ignore[no-untyped-call]
            for chore in list(self._chores):
                chore.cancel()

    async def _on_message(self, client: AsyncBaseSocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            log.info("Socket Mode connected for %s; catching up on pending questions", self.conn_id)
            self._later(asyncio.to_thread(self.decider.catch_up, [self.conn_id]))

    async def _on_request(self, client: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        payload = request.payload if isinstance(request.payload, dict) else {}
        if request.type == "interactive":
            self._later(self._click(payload))
        elif request.type == "events_api":
            event = payload.get("event")
            target = question_of_event(event) if isinstance(event, dict) else None
            if target is not None:
                self._later(asyncio.to_thread(self.decider.message_event, self.conn_id, *target))

    async def _click(self, payload: dict[str, Any]) -> None:
        click = click_from_actions(self.conn_id, payload)
        if click is None:
            return
        outcome = await asyncio.to_thread(self.decider.click, click)
        log.info("A click on %s by %s: %s", click.message_id, click.user_id, outcome.verdict.value)
        if outcome.verdict is not Verdict.RECORDED and (text := notice_text(outcome)):
            await asyncio.to_thread(self.alerter.tell, click.channel, click.user_id, text)

    def _later(self, work: Any) -> None:
        """Run ``work`` beside the connection; its failure is logged, never raised into the client."""
        task = asyncio.ensure_future(work)
        self._chores.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            log.warning("Handling a Slack event failed for %s: %s", self.conn_id, _short(err))


def _short(err: BaseException) -> str:
    """An error as one line, without the payload it may carry."""
    return json.dumps(f"{type(err).__name__}: {err}")[1:-1][:300]
