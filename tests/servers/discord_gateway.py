"""A local stand-in for Discord's Gateway (v10, JSON): the websocket a responder holds for a bot.

It runs an aiohttp websocket server on 127.0.0.1 in a thread with its own event loop, wired to the
REST stand-in (:class:`~tests.servers.discord_api.DiscordAPIServer`), whose ``GET /gateway/bot``
then hands out this server's ``ws://`` URL. It does what Discord does for one bot:

- HELLO with a heartbeat interval on connect; heartbeats (op 1) are recorded and ACKed (op 11)
  unless a test turns the ACKs off;
- IDENTIFY (op 2) is checked (the bot token, integer intents; close 4004 on a bad token), and
  answered with READY (a ``session_id`` and a ``resume_gateway_url``);
- RESUME (op 6) of a known session replays the dispatches sent after the client's last sequence
  number, then RESUMED; an unknown session gets INVALID_SESSION (op 9, not resumable);
- a test pushes dispatches (``s`` numbers, per session): a button click (INTERACTION_CREATE, its
  id and token registered with the REST stand-in, which times the callback), a reply
  (MESSAGE_CREATE) or a reaction (MESSAGE_REACTION_ADD), each also made in the REST stand-in's
  channel; it can send any op (7 RECONNECT, 9 INVALID_SESSION) or a raw frame, and drop the
  connection without a close frame, as a network loss does; dispatches made meanwhile are missed
  and come back only through RESUME.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from aiohttp import WSMsgType, web

from tests.servers.discord_api import APPLICATION_ID, BOT, BOT_TOKEN, DiscordAPIServer, Interaction

HEARTBEAT_INTERVAL_MS = 41250
GUILD_ID = "300000000000000001"


class DiscordGatewayServer:
    def __init__(self, api: DiscordAPIServer, heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS) -> None:
        self.api = api
        self.heartbeat_interval_ms = heartbeat_interval_ms
        #: False: heartbeats go unanswered, as on a "zombied" connection
        self.ack_heartbeats = True
        self.connections = 0
        self.identifies: list[dict[str, Any]] = []  # their ``d``, the token replaced by whether it matched
        self.resumes: list[dict[str, Any]] = []  # their ``d`` (session_id, seq), the token left out
        self.heartbeats: list[tuple[float, Any]] = []  # (monotonic time, the client's last sequence number)
        self.close_codes: list[int | None] = []  # how each connection ended, as the server saw it
        self.ready = 0  # READY and RESUMED dispatches sent
        self.resumed = 0
        self._sessions: dict[str, list[dict[str, Any]]] = {}  # session id -> dispatches sent, in order
        self._session: str | None = None
        self._ws: web.WebSocketResponse | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # --- life ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    def start(self) -> DiscordGatewayServer:
        threading.Thread(target=self._loop.run_forever, daemon=True, name="discord-gateway").start()
        self._on_loop(self._start())
        self.api.gateway_url = self.url
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._serve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._runner is not None:
            self._on_loop(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> DiscordGatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_loop(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # --- what a test does ------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Whether a client holds an identified (or resumed) session now."""
        return self._ws is not None and not self._ws.closed

    def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout:g} s")
            time.sleep(0.02)

    def dispatch(self, event: str, data: Any) -> int:
        """Send a dispatch (or keep it for a RESUME while no client is connected); its sequence number."""
        seq: int = self._on_loop(self._dispatch(event, data))
        return seq

    def send(self, frame: dict[str, Any] | str) -> None:
        """Send any frame to the connected client: ``{"op": 7}`` (RECONNECT), ``{"op": 9, "d": False}``, raw text."""
        text = frame if isinstance(frame, str) else json.dumps(frame)

        async def send() -> None:
            assert self._ws is not None, "no client connected"
            await self._ws.send_str(text)

        self._on_loop(send())

    def drop(self) -> None:
        """Lose the connection without a close frame, as a network failure does; the session stays resumable."""

        async def drop() -> None:
            assert self._transport is not None, "no client connected"
            self._ws = None
            assert isinstance(self._transport, asyncio.Transport)
            self._transport.abort()

        self._on_loop(drop())

    def click(self, message: dict[str, Any], custom_id: str, user_id: str, *, username: str | None = None,
              global_name: str | None = None, in_guild: bool = True) -> Interaction:
        """Someone clicks the button ``custom_id`` on the posted ``message``: an INTERACTION_CREATE."""
        interaction = self.api.new_interaction()
        user = {"id": user_id, "username": username or f"user{user_id[-3:]}", "global_name": global_name,
                "bot": False}
        data: dict[str, Any] = {
            "id": interaction.id, "application_id": APPLICATION_ID, "type": 3, "token": interaction.token,
            "version": 1, "channel_id": message["channel_id"], "channel": {"id": message["channel_id"], "type": 0},
            "message": {key: message.get(key) for key in ("id", "channel_id", "content", "components", "author")},
            "data": {"custom_id": custom_id, "component_type": 2},
        }
        data.update({"guild_id": GUILD_ID, "member": {"user": user, "roles": []}} if in_guild else {"user": user})
        interaction.dispatched_at = time.monotonic()
        self.dispatch("INTERACTION_CREATE", data)
        return interaction

    def reply(self, channel: str, question_id: str, user_id: str, content: str,
              *, live: bool = True) -> dict[str, Any]:
        """Someone replies to the question (in the REST stand-in) and, when ``live``, the Gateway tells the bot."""
        message = self.api.add_message(channel, user_id, content, reply_to=question_id)
        if live:
            self.dispatch("MESSAGE_CREATE", {**message, "guild_id": GUILD_ID, "mentions": []})
        return message

    def react(self, channel: str, message_id: str, emoji: str, user_id: str) -> None:
        """Someone reacts to the message (in the REST stand-in), and the Gateway tells the bot."""
        self.api.add_reaction(channel, message_id, emoji, user_id)
        self.dispatch("MESSAGE_REACTION_ADD", {"user_id": user_id, "channel_id": channel, "message_id": message_id,
                                               "guild_id": GUILD_ID, "emoji": {"id": None, "name": emoji}})

    # --- the Gateway -----------------------------------------------------------------------------

    async def _dispatch(self, event: str, data: Any) -> int:
        assert self._session is not None, "no session was identified yet"
        sent = self._sessions[self._session]
        frame = {"op": 0, "t": event, "s": len(sent) + 1, "d": data}
        sent.append(frame)
        if self._ws is not None and not self._ws.closed:
            with suppress(ConnectionError):  # lost: a RESUME replays it
                await self._ws.send_str(json.dumps(frame))
        return int(frame["s"])

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        if request.query.get("v") != "10" or request.query.get("encoding") != "json":
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Decode error")
                    break
                await self._on_frame(ws, request, frame)
        finally:
            if self._ws is ws:
                self._ws = None
            self.close_codes.append(ws.close_code)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, request: web.Request, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            self.heartbeats.append((time.monotonic(), data))
            if self.ack_heartbeats:
                await ws.send_json({"op": 11})
        elif op == 2:
            data = data if isinstance(data, dict) else {}
            token_ok = data.get("token") == BOT_TOKEN
            self.identifies.append({**{k: v for k, v in data.items() if k != "token"}, "token_ok": token_ok})
            if not token_ok or not isinstance(data.get("intents"), int):
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            self._session = uuid.uuid4().hex
            self._sessions[self._session] = []
            self._attach(ws, request)
            await self._dispatch("READY", {"v": 10, "user": BOT, "guilds": [], "session_id": self._session,
                                           "resume_gateway_url": self.url,
                                           "application": {"id": APPLICATION_ID, "flags": 0}})
            self.ready += 1
        elif op == 6:
            data = data if isinstance(data, dict) else {}
            self.resumes.append({"session_id": data.get("session_id"), "seq": data.get("seq")})
            if data.get("token") != BOT_TOKEN:
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            if data.get("session_id") not in self._sessions:
                await ws.send_json({"op": 9, "d": False})
                return
            self._session = str(data["session_id"])
            self._attach(ws, request)
            for missed in self._sessions[self._session]:
                if int(missed["s"]) > int(data.get("seq") or 0):
                    await ws.send_str(json.dumps(missed))
            await self._dispatch("RESUMED", {})
            self.resumed += 1
        else:
            await ws.close(code=4001, message=b"Unknown opcode.")

    def _attach(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self._ws = ws
        self._transport = request.transport
