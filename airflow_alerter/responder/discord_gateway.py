"""Discord's Gateway for the pushed responder: button clicks, replies and reactions as they happen.

One outbound websocket per ``discord`` connection (no public URL, no interactions endpoint):

1. ``GET {api_base_url}/gateway/bot`` with the bot token (the flavor's own base URL, so a proxy or
   a local stand-in works) gives the URL; it is opened with ``?v=10&encoding=json``;
2. HELLO (op 10) → a heartbeat (op 1, the last sequence number) every ``heartbeat_interval`` ms;
   a heartbeat whose ACK (op 11) has not come by the next one means a dead connection: reconnect;
3. IDENTIFY (op 2) with the intents below → READY (its ``session_id`` and ``resume_gateway_url``
   are kept); after a loss, RESUME (op 6) on ``resume_gateway_url`` gets the missed events replayed;
   RECONNECT (op 7) reconnects and resumes at once, INVALID_SESSION (op 9) identifies anew when it
   says the session cannot be resumed; a close code that no retry can heal (a refused token,
   intents the bot may not use) ends the connection with an error saying why;
4. after READY and RESUMED, one catch-up (:meth:`Decider.catch_up`): answers given while the
   connection was away are not lost, whatever the Gateway replays.

Events: a click on an answer button (INTERACTION_CREATE) is acknowledged at once (a deferred,
ephemeral response: Discord fails a click not answered within 3 s), then decided, then the
clicker alone is told the outcome (the deferred response is edited). A reply to a question
(MESSAGE_CREATE with a ``message_reference``) or a reaction (MESSAGE_REACTION_ADD) makes the
question be checked once. The decisions run in worker threads (:func:`asyncio.to_thread`), so
reading the next event never waits for Airflow. A malformed event is logged and skipped.

Intents: GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGES, DIRECT_MESSAGE_REACTIONS;
interactions need none. The privileged MESSAGE_CONTENT intent is not requested here: the Gateway
only has to say *that* a reply came (``message_reference`` is sent without it), and reading the
reply is the REST check's job, for which the intent is switched on in the Developer Portal. A bot
without it can still connect (Discord closes a connection asking for a privileged intent the bot
lacks with 4014).

Why not discord.py: it is a whole bot framework (caches, commands, its own HTTP client and
rate-limit machinery, voice) for four opcodes and three events; this is a small client over
aiohttp, which is already a dependency. The bot token goes only into the ``Authorization``
header and the IDENTIFY / RESUME payloads; no payload is logged, and interaction tokens (in the
callback URLs) never are either.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from airflow_alerter.alerters.http import CONNECT_TIMEOUT, USER_AGENT
from airflow_alerter.exceptions import AlerterConfigError
from airflow_alerter.responder.decisions import Click, Decider, Verdict, decision_text
from airflow_alerter.responder.discord_events import CHANNEL_MESSAGE, EPHEMERAL, click_from_interaction
from airflow_alerter.responder.push import reconnect_delay, wait_or_stop

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

GATEWAY_QUERY = "?v=10&encoding=json"
GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS = 1 << 9, 1 << 10
DIRECT_MESSAGES, DIRECT_MESSAGE_REACTIONS = 1 << 12, 1 << 13
INTENTS = GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | DIRECT_MESSAGES | DIRECT_MESSAGE_REACTIONS
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
#: close codes after which connecting again cannot help: what to fix
FATAL_CLOSES = {
    4004: "Discord refused the bot token",
    4010: "invalid shard",
    4011: "the bot needs sharding (too many servers for one connection)",
    4012: "invalid Gateway version",
    4013: "invalid intents",
    4014: "the bot may not use these intents (Developer Portal → Bot → Privileged Gateway Intents)",
}
#: close codes after which the session is gone: identify anew
SESSION_ENDED = frozenset({4007, 4009})
#: a close code that keeps the session resumable (1000 and 1001 end it)
RESUMABLE_CLOSE = 4000
DEFERRED_CHANNEL_MESSAGE = 5
NOT_OURS = "That button is not one of airflow-alerter's."
NOT_RECORDED = "Your answer could not be recorded just now; try again, or answer in Airflow."
MAX_FRAME = 16 * 1024 * 1024
#: failed connections in a row after which a session is given up and a new one identified
RESUME_ATTEMPTS = 3


class GatewayLost(Exception):
    """The connection ended: why, whether to reconnect at once, and whether reconnecting can help at all."""

    def __init__(self, reason: str, *, at_once: bool = False, fatal: bool = False) -> None:
        super().__init__(reason)
        self.at_once = at_once
        self.fatal = fatal


class DiscordCallFailed(Exception):
    """A Discord REST call of the Gateway client failed; the message names the call, never its URL."""


@dataclass(frozen=True)
class ButtonClick:
    """An INTERACTION_CREATE, read: what to answer it through and what was clicked."""

    interaction_id: str
    token: str = field(repr=False)
    application_id: str
    #: None for anything but a click on one of our answer buttons
    click: Click | None


@dataclass(eq=False)
class DiscordGatewayConnection:
    """One Gateway connection for one ``discord`` connection: the responder's :class:`PushConnection`."""

    conn_id: str
    token: SecretStr = field(repr=False)
    api_base_url: str
    decider: Decider
    timeout: float = 30.0
    intents: int = INTENTS
    mode: str = field(default="gateway", init=False)
    #: catch-ups finished since the start (one after each READY and RESUMED)
    catch_ups: int = field(default=0, init=False)
    _connected: bool = field(default=False, init=False, repr=False)
    _session_id: str | None = field(default=None, init=False, repr=False)
    _resume_url: str | None = field(default=None, init=False, repr=False)
    _seq: int | None = field(default=None, init=False, repr=False)
    _bot_user: str | None = field(default=None, init=False, repr=False)
    _acked: bool = field(default=True, init=False, repr=False)
    _ready_seen: bool = field(default=False, init=False, repr=False)
    _lost: GatewayLost | None = field(default=None, init=False, repr=False)
    _http: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    @classmethod
    def for_alerter(cls, conn_id: str, alerter: Any, decider: Decider) -> DiscordGatewayConnection:
        """The Gateway connection of a ``discord`` alerter: its bot token, API base URL and timeout."""
        config = alerter.config
        if config.token is None:
            raise AlerterConfigError(f"--conn-id {conn_id}: the Discord Gateway needs a bot token "
                                     "(a webhook can only post)")
        alerter.warn_if_http(config.api_base_url, "the bot token")
        return cls(conn_id=conn_id, token=config.token, api_base_url=config.api_base_url, decider=decider,
                   timeout=config.timeout)

    @property
    def connected(self) -> bool:
        """True between READY (or RESUMED) and the loss of the connection."""
        return self._connected

    # --- the connection ----------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Connect, serve events, reconnect (resuming when Discord allows) after a loss, until ``stopping``."""
        import aiohttp

        attempt = 0
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}) as http:
            self._http = http
            try:
                while not stopping.is_set():
                    at_once, was_ready = False, False
                    try:
                        was_ready = await self._connect_once(http, stopping)
                        reason = "the connection closed"
                    except GatewayLost as lost:
                        if lost.fatal:
                            log.error("The Discord Gateway connection of %s stops: %s", self.conn_id, lost)
                            return
                        reason, at_once, was_ready = str(lost), lost.at_once, self._ready_seen
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as err:
                        reason, was_ready = _why(err), self._ready_seen
                    finally:
                        self._connected = False
                    if stopping.is_set():
                        break
                    attempt = 0 if was_ready else attempt + 1
                    if attempt >= RESUME_ATTEMPTS:  # the resume URL keeps failing: start a new session
                        self._forget_session()
                    delay = 0.0 if at_once else reconnect_delay(max(attempt - 1, 0))
                    log.warning("Discord Gateway connection of %s lost (%s); %s in %gs", self.conn_id, reason,
                                "resuming" if self._session_id else "connecting again", delay)
                    await wait_or_stop(stopping, delay)
            finally:
                await self._settle()
                self._http = None
        log.info("Discord Gateway connection of %s closed", self.conn_id)

    async def _connect_once(self, http: aiohttp.ClientSession, stopping: asyncio.Event) -> bool:
        """One websocket, from HELLO to its end; whether it got as far as READY or RESUMED."""
        import aiohttp

        resuming = self._session_id is not None and self._resume_url is not None
        url = self._resume_url if resuming and self._resume_url else await self._gateway_url(http)
        self._ready_seen, self._acked, self._lost = False, True, None
        async with http.ws_connect(f"{url.rstrip('/')}/{GATEWAY_QUERY}", autoping=True, heartbeat=None,
                                   max_msg_size=MAX_FRAME) as ws:
            hello = _frame(await ws.receive(timeout=self.timeout)) or {}
            interval = float((hello.get("d") or {}).get("heartbeat_interval") or 0) / 1000
            if hello.get("op") != HELLO:
                interval = 0
            if interval <= 0:
                raise GatewayLost("the Gateway did not say HELLO")
            await ws.send_str(json.dumps(self._resume() if resuming else self._identify()))
            chores = [asyncio.create_task(self._heartbeat(ws, interval)),
                      asyncio.create_task(_close_when(stopping, ws))]
            try:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    frame = _frame(message)
                    if frame is None:
                        log.warning("Ignored a Gateway frame of %s that is not a JSON object", self.conn_id)
                        continue
                    await self._on_frame(ws, frame)
                    if self._lost is not None:
                        break
            finally:
                for chore in chores:
                    chore.cancel()
                self._connected = False
            if self._lost is not None:
                await ws.close(code=RESUMABLE_CLOSE)
                raise self._lost
            code = ws.close_code
        if stopping.is_set():
            return self._ready_seen
        if code in FATAL_CLOSES:
            raise GatewayLost(f"close code {code}: {FATAL_CLOSES[code]}", fatal=True)
        if code in SESSION_ENDED:
            self._forget_session()
        raise GatewayLost(f"closed by Discord (code {code})" if code else "the connection dropped")

    async def _gateway_url(self, http: aiohttp.ClientSession) -> str:
        import aiohttp

        headers = {"Authorization": f"Bot {self.token.get_secret_value()}"}
        try:
            async with http.get(self._api("gateway/bot"), headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                if response.status in (401, 403):
                    raise GatewayLost(f"GET gateway/bot: HTTP {response.status}: Discord refused the bot token",
                                      fatal=True)
                if response.status != 200:
                    raise GatewayLost(f"GET gateway/bot: HTTP {response.status}")
                body = await response.json(content_type=None)
        except aiohttp.ClientError as err:
            raise GatewayLost(f"GET gateway/bot: {_why(err)}") from None
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
            raise GatewayLost("GET gateway/bot gave no websocket URL")
        return url

    def _identify(self) -> dict[str, Any]:
        return {"op": IDENTIFY, "d": {"token": self.token.get_secret_value(), "intents": self.intents,
                                      "properties": {"os": sys.platform, "browser": "airflow-alerter",
                                                     "device": "airflow-alerter"}}}

    def _resume(self) -> dict[str, Any]:
        return {"op": RESUME, "d": {"token": self.token.get_secret_value(), "session_id": self._session_id,
                                    "seq": self._seq}}

    def _forget_session(self) -> None:
        self._session_id, self._resume_url, self._seq = None, None, None

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
        """A beat every ``interval`` s (the first after a random part of it); no ACK since the last one: reconnect."""
        await asyncio.sleep(interval * random.random())
        while not ws.closed:
            if not self._acked:
                self._lost = GatewayLost("no heartbeat ACK: the connection is dead")
                await ws.close(code=RESUMABLE_CLOSE)
                return
            self._acked = False
            await ws.send_str(json.dumps({"op": HEARTBEAT, "d": self._seq}))
            await asyncio.sleep(interval)

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, frame: Mapping[str, Any]) -> None:
        op = frame.get("op")
        if isinstance(frame.get("s"), int):
            self._seq = frame["s"]
        if op == DISPATCH:
            self._on_dispatch(str(frame.get("t")), frame.get("d"))
        elif op == HEARTBEAT:  # Discord asks for a beat now
            await ws.send_str(json.dumps({"op": HEARTBEAT, "d": self._seq}))
        elif op == HEARTBEAT_ACK:
            self._acked = True
        elif op == RECONNECT:
            self._lost = GatewayLost("Discord asked to reconnect", at_once=True)
        elif op == INVALID_SESSION:
            if frame.get("d") is not True:
                self._forget_session()
            self._lost = GatewayLost("Discord invalidated the session")

    # --- events ------------------------------------------------------------------------------------

    def _on_dispatch(self, event: str, data: Any) -> None:
        try:
            if event in ("READY", "RESUMED"):
                if event == "READY":
                    self._session_id = _text(data, "session_id")
                    self._resume_url = data.get("resume_gateway_url") or None
                    self._bot_user = _text(data.get("user"), "id")
                self._connected = self._ready_seen = True
                log.info("Discord Gateway connection of %s %s", self.conn_id,
                         "ready" if event == "READY" else "resumed")
                self._spawn(self._catch_up())
            elif event == "INTERACTION_CREATE":
                self._spawn(self._interaction(read_click(self.conn_id, data)))
            elif event == "MESSAGE_CREATE":
                reference = (data.get("message_reference") or {}).get("message_id")
                author = data.get("author") or {}
                if reference and not author.get("bot") and str(author.get("id")) != self._bot_user:
                    self._spawn(self._message_event(_text(data, "channel_id"), str(reference)))
            elif event == "MESSAGE_REACTION_ADD":
                user = _text(data, "user_id")
                if user != self._bot_user and not ((data.get("member") or {}).get("user") or {}).get("bot"):
                    self._spawn(self._message_event(_text(data, "channel_id"), _text(data, "message_id")))
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            log.warning("Ignored a malformed %s event on the Discord Gateway of %s (%s)", event, self.conn_id,
                        type(err).__name__)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self) -> None:
        """Let the decisions in flight finish (a click being recorded is not cut off), for a while."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.timeout)

    async def _catch_up(self) -> None:
        try:
            closed = await asyncio.to_thread(self.decider.catch_up, [self.conn_id])
            if closed:
                log.info("Caught up on %s: %d question(s) closed", self.conn_id, closed)
        except Exception as err:  # the connection serves on; the next sweep or event looks again
            log.warning("Catching up on %s failed: %s", self.conn_id, err)
        finally:
            self.catch_ups += 1

    async def _message_event(self, channel: str, message_id: str) -> None:
        try:
            await asyncio.to_thread(self.decider.message_event, self.conn_id, channel, message_id)
        except Exception as err:
            log.warning("Could not check the Discord question %s of %s: %s", message_id, self.conn_id, err)

    async def _interaction(self, clicked: ButtonClick) -> None:
        """Acknowledge first (deferred, ephemeral), then decide, then tell the clicker the outcome."""
        click = clicked.click
        if click is None:
            await self._answer(clicked, CHANNEL_MESSAGE, NOT_OURS)
            return
        if not await self._answer(clicked, DEFERRED_CHANNEL_MESSAGE):
            return
        try:
            outcome = await asyncio.to_thread(self.decider.click, click)
        except Exception as err:
            log.warning("Could not record the click of %s on the Discord question %s of %s: %s", click.user_id,
                        click.message_id, self.conn_id, err)
            notice = NOT_RECORDED
        else:
            notice = outcome.notice
            if outcome.verdict is Verdict.RECORDED and outcome.result is not None:
                notice = f"Recorded: {decision_text(outcome.result)}."
        await self._edit_answer(clicked, notice or "Done.")

    async def _answer(self, clicked: ButtonClick, kind: int, content: str | None = None) -> bool:
        data: dict[str, Any] = {"flags": EPHEMERAL}
        if content is not None:
            data.update(content=content, allowed_mentions={"parse": []})
        path = f"interactions/{clicked.interaction_id}/{clicked.token}/callback"
        try:
            await self._call("POST", path, "interactions/…/callback", {"type": kind, "data": data})
        except DiscordCallFailed as err:
            log.warning("Could not answer a button click on %s: %s", self.conn_id, err)
            return False
        return True

    async def _edit_answer(self, clicked: ButtonClick, notice: str) -> None:
        path = f"webhooks/{clicked.application_id}/{clicked.token}/messages/@original"
        try:
            await self._call("PATCH", path, "webhooks/…/messages/@original",
                             {"content": notice, "allowed_mentions": {"parse": []}})
        except DiscordCallFailed as err:
            log.warning("Could not tell the clicker the outcome on %s: %s", self.conn_id, err)

    async def _call(self, method: str, path: str, name: str, payload: Any) -> None:
        """One Discord REST call authenticated by the interaction token in ``path``; errors name ``name`` only."""
        import aiohttp

        assert self._http is not None
        try:
            async with self._http.request(method, self._api(path), json=payload, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                if response.status >= 300:
                    raise DiscordCallFailed(f"Discord {method} {name}: HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise DiscordCallFailed(f"Discord {method} {name}: {_why(err)}") from None

    def _api(self, path: str) -> str:
        return f"{self.api_base_url.rstrip('/')}/{path}"


def read_click(conn_id: str, event: Any) -> ButtonClick:
    """An INTERACTION_CREATE as what to answer through and what was clicked; ValueError (or KeyError,
    TypeError) when it lacks what an answer needs."""
    return ButtonClick(interaction_id=_text(event, "id"), token=_text(event, "token"),
                       application_id=_text(event, "application_id"), click=click_from_interaction(conn_id, event))


def _text(data: Any, key: str) -> str:
    value = data[key]
    if value is None or value == "" or isinstance(value, (dict, list)):
        raise ValueError(f"no {key}")
    return str(value)


def _frame(message: Any) -> dict[str, Any] | None:
    """A websocket message as a Gateway frame (a JSON object), or None."""
    import aiohttp

    if message.type != aiohttp.WSMsgType.TEXT:
        return None
    try:
        frame = json.loads(message.data)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


def _why(err: BaseException) -> str:
    """An aiohttp error as a short reason: its kind and status, never a URL (an interaction's holds its token)."""
    status = getattr(err, "status", None)
    return f"{type(err).__name__}{f' (HTTP {status})' if status else ''}"


async def _close_when(stopping: asyncio.Event, ws: aiohttp.ClientWebSocketResponse) -> None:
    await stopping.wait()
    await ws.close()
