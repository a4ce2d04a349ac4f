"""The pushed responder: one outbound connection per asking connection, answers recorded as they arrive.

``airflow-alerter responder --conn-id ml_slack --conn-id ops_discord --conn-id ops_email`` holds a
Slack Socket Mode connection (:mod:`.slack_socket`), a Discord Gateway connection
(:mod:`.discord_gateway`) or an IMAP session waiting with IDLE (:mod:`.imap_idle`) for each named
connection, on one asyncio loop. Clicks, replies and reactions are handed to the
:class:`~airflow_alerter.responder.decisions.Decider` in a worker thread (its calls to Airflow and
the chat block), so acknowledging the next event never waits for a decision.

Beside the connections the loop runs two chores:

- a heartbeat per connected connection (:mod:`airflow_alerter.hooks.heartbeat`), so gates stop
  polling the chat while a responder serves them, and start again when it goes away;
- every ``interval`` seconds, a sweep of the pending questions' records (Airflow API calls only):
  an answer given in Airflow or a timeout is shown in the chat.

After every (re)connect a connection catches up: one check of each pending question it serves, so
an answer given while the responder was away is not lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_alerter.alerters.http import HttpError
from airflow_alerter.hooks.heartbeat import BEAT_EVERY, Heartbeat, heartbeat_key
from airflow_alerter.responder.api import AirflowAPI
from airflow_alerter.responder.decisions import Decider

log = logging.getLogger(__name__)

#: how long a lost connection waits before it connects again, doubling up to the last
RECONNECT_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)


class PushConnection(Protocol):
    """One pushed connection to a chat for one asking connection."""

    conn_id: str
    #: how it is connected, for the heartbeat and the logs ("socket_mode", "gateway")
    mode: str

    @property
    def connected(self) -> bool:
        """Whether events are arriving now (a heartbeat is published only then)."""

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, serve events, reconnect after a loss, until ``stopping`` is set."""


def reconnect_delay(attempt: int) -> float:
    return RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]


def push_connection(conn_id: str, decider: Decider) -> PushConnection:
    """The pushed connection the flavor of ``conn_id`` offers; a clear error naming what is missing."""
    from airflow_alerter.exceptions import AlerterConfigError
    from airflow_alerter.hooks.alerter import AlerterHook

    alerter = AlerterHook(conn_id).get_alerter()
    if alerter.FLAVOR == "slack":
        from airflow_alerter.responder.slack_socket import SlackSocketConnection

        return SlackSocketConnection.for_alerter(conn_id, alerter, decider)
    if alerter.FLAVOR == "discord":
        from airflow_alerter.responder.discord_gateway import DiscordGatewayConnection

        return DiscordGatewayConnection.for_alerter(conn_id, alerter, decider)
    if alerter.FLAVOR == "smtp_email":
        from airflow_alerter.responder.imap_idle import ImapIdleConnection

        return ImapIdleConnection.for_alerter(conn_id, alerter, decider)
    raise AlerterConfigError(f"--conn-id {conn_id}: the {alerter.FLAVOR} flavor has no pushed connection "
                             "(Slack Socket Mode, the Discord Gateway and IMAP IDLE do); run the polling responder "
                             "for it")


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class PushResponder:
    """The pushed connections of ``conn_ids``, their heartbeats and the record sweep, until stopped."""

    api: AirflowAPI
    conn_ids: Sequence[str]
    interval: float = 30.0
    make_connection: Callable[[str, Decider], PushConnection] = push_connection
    decider: Decider = field(init=False)

    def __post_init__(self) -> None:
        self.decider = Decider(self.api)

    def run(self, stopping: threading.Event) -> None:
        """Serve until ``stopping`` is set (SIGTERM, Ctrl-C)."""
        asyncio.run(self.serve(stopping))

    async def serve(self, stopping: threading.Event) -> None:
        connections = [self.make_connection(conn_id, self.decider) for conn_id in self.conn_ids]
        stop = asyncio.Event()
        log.info("Responder serving %s for %s", self.api.base_url,
                 ", ".join(f"{c.conn_id} ({c.mode})" for c in connections))
        tasks = [asyncio.create_task(c.run(stop), name=f"connection {c.conn_id}") for c in connections]
        tasks += [asyncio.create_task(self._beat(connections, stop), name="heartbeat"),
                  asyncio.create_task(self._sweep(stop), name="sweep")]
        while not stopping.is_set() and not all(task.done() for task in tasks):
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(self.retire_heartbeats, connections)
        log.info("Responder stopped")

    async def _beat(self, connections: Sequence[PushConnection], stop: asyncio.Event) -> None:
        """A heartbeat as soon as a connection is up, then every :data:`BEAT_EVERY` s while it stays up."""
        last: dict[str, float] = {}
        while not stop.is_set():
            for connection in connections:
                if not connection.connected:
                    last.pop(connection.conn_id, None)
                elif time.monotonic() - last.get(connection.conn_id, -BEAT_EVERY) >= BEAT_EVERY:
                    last[connection.conn_id] = time.monotonic()
                    await asyncio.to_thread(self.publish_heartbeat, connection)
            await wait_or_stop(stop, 0.5)

    def publish_heartbeat(self, connection: PushConnection) -> None:
        """Write the connection's heartbeat Variable (update, else create); a failed write is only logged."""
        from urllib.parse import quote

        key = heartbeat_key(connection.conn_id)
        beat = Heartbeat(at=time.time(), responder=identity(), mode=connection.mode).model_dump_json()
        body: dict[str, Any] = {"key": key, "value": beat, "description": "airflow-alerter: a responder serves this"}
        try:
            try:
                self.api.call("PATCH", f"/variables/{quote(key, safe='')}", body)
            except HttpError as err:
                if err.status != 404:
                    raise
                self.api.call("POST", "/variables", body)
        except HttpError as err:
            log.warning("Could not publish the heartbeat of %s: %s", connection.conn_id, err)

    def retire_heartbeats(self, connections: Sequence[PushConnection]) -> None:
        """Delete the heartbeats this process published, so gates poll again at once rather than in a minute.

        A heartbeat another responder wrote since (two for availability) is left: that one still serves.
        """
        from urllib.parse import quote

        for connection in connections:
            path = f"/variables/{quote(heartbeat_key(connection.conn_id), safe='')}"
            try:
                beat = Heartbeat.model_validate_json(self.api.call("GET", path)["value"])
                if beat.responder == identity():
                    self.api.call("DELETE", path)
            except (HttpError, ValueError, KeyError, TypeError) as err:
                log.info("Left the heartbeat of %s as it is (%s)", connection.conn_id, err)

    async def _sweep(self, stop: asyncio.Event) -> None:
        while not await wait_or_stop(stop, self.interval):
            await asyncio.to_thread(self.decider.sweep, self.conn_ids)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; whether it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
