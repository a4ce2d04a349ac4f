"""A local stand-in for Slack's Socket Mode: the websocket ``apps.connections.open`` hands out, on 127.0.0.1.

Like Slack it greets each connection with ``hello``, pushes envelopes (``interactive`` for button
clicks, ``events_api`` for messages and reactions) spread over the open connections in turn, and
expects each ``envelope_id`` acknowledged; it records how long each ack took and resends an envelope
not acked within 3 s (at most twice), as Slack does. Tests can drop every connection (a Slack
restart), or refuse new ones for a while (an outage). slack_sdk's real Socket Mode client connects
to it. It stands in for Slack, not for our code.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_TOKEN = "xapp-1-A0TEST-42-appLevelSecret"
ACK_WINDOW = 3.0


@dataclass
class Envelope:
    envelope_id: str
    kind: str
    payload: dict[str, Any]
    sent_at: float
    acked_after: float | None = None
    sends: int = 1


@dataclass
class SlackSocketServer:
    envelopes: dict[str, Envelope] = field(default_factory=dict)
    connections_opened: int = 0
    refusing: bool = False
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _turn: int = 0
    _resends: set[asyncio.Future[None]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    # --- life ----------------------------------------------------------------------------------

    def __enter__(self) -> SlackSocketServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True, name="slack-socket")
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *_: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/link", self._accept)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        self._loop.run_forever()

    async def _stop(self) -> None:
        for sock in list(self._sockets):
            await sock.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4().hex}"

    # --- what tests do ---------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return sum(not sock.closed for sock in self._sockets)

    def wait_connected(self, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.open_connections < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.open_connections} Socket Mode connections, wanted {count}")
            time.sleep(0.05)

    def click(self, channel: str, ts: str, user: str, option: int, *, action_id: str | None = None,
              name: str | None = None) -> Envelope:
        """Someone presses answer button ``option`` of the question ``ts``: a ``block_actions`` envelope."""
        from airflow_alerter.alerters.rendering import button_id

        payload = {"type": "block_actions", "user": {"id": user, "name": name or user.lower()},
                   "container": {"type": "message", "channel_id": channel, "message_ts": ts},
                   "channel": {"id": channel}, "message": {"ts": ts},
                   "actions": [{"type": "button", "action_id": action_id or button_id(option),
                                "value": str(option), "action_ts": f"{time.time():.6f}"}]}
        return self.push("interactive", payload)

    def event(self, event: dict[str, Any]) -> Envelope:
        return self.push("events_api", {"type": "event_callback", "event": event})

    def push(self, kind: str, payload: Any, *, raw: str | None = None) -> Envelope:
        """Send an envelope (or ``raw`` text, for malformed ones) to the next open connection."""
        envelope = Envelope(uuid.uuid4().hex, kind, payload, time.monotonic())
        self.envelopes[envelope.envelope_id] = envelope
        text = raw if raw is not None else json.dumps({"envelope_id": envelope.envelope_id, "type": kind,
                                                       "payload": payload, "accepts_response_payload": False})
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._send(envelope, text), self._loop).result(10)
        return envelope

    def drop_all(self) -> None:
        """Close every connection, as Slack does when it restarts a server (the client reconnects)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)

    def wait_acked(self, envelope: Envelope, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while envelope.acked_after is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"envelope {envelope.kind} not acknowledged within {timeout}s")
            time.sleep(0.01)
        return envelope.acked_after

    # --- serving ----------------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            return web.Response(status=503)
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        self.connections_opened += 1
        self._sockets.append(sock)
        await sock.send_str(json.dumps({"type": "hello", "num_connections": self.open_connections,
                                        "connection_info": {"app_id": "A0TEST"}}))
        async for message in sock:
            if message.type == WSMsgType.TEXT:
                self._acked(message.data)
        return sock

    def _acked(self, text: str) -> None:
        try:
            envelope = self.envelopes.get(json.loads(text).get("envelope_id"))
        except (ValueError, AttributeError):
            return
        if envelope is not None and envelope.acked_after is None:
            envelope.acked_after = time.monotonic() - envelope.sent_at

    async def _send(self, envelope: Envelope, text: str) -> None:
        open_sockets = [sock for sock in self._sockets if not sock.closed]
        if not open_sockets:
            raise AssertionError("no Socket Mode connection is open to push to")
        self._turn += 1
        await open_sockets[self._turn % len(open_sockets)].send_str(text)
        asyncio.get_running_loop().call_later(ACK_WINDOW, self._resend_if_unacked, envelope, text)

    def _resend_if_unacked(self, envelope: Envelope, text: str) -> None:
        if envelope.acked_after is None and envelope.sends < 3 and any(not s.closed for s in self._sockets):
            envelope.sends += 1
            self._resends.add(asyncio.ensure_future(self._send(envelope, text)))

    async def _close_all(self) -> None:
        for sock in list(self._sockets):
            await sock.close()
