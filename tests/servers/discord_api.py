"""A local stand-in for Discord's REST API v10 (the subset the discord flavor calls) and its webhooks.

It checks what Discord checks before accepting a message — the bot token, the content and embed
limits, http(s) embed URLs, "not empty" — and answers 400 "Invalid Form Body" like Discord does,
so a test that passes here does not post something Discord would refuse. Message lists page like
Discord's (``after``/``before``/``around``, ``limit`` ≤ 100, newest first) and carry reaction
*counts* only; who reacted comes from the reactions endpoint. Faults come from the base class.

Messages keep their ``components`` (answer buttons; checked as Discord checks them: ≤ 5 rows of
≤ 5 buttons, labels ≤ 80, custom ids ≤ 100 and unique, link buttons with an http(s) URL), and an
edit can clear them. For the Gateway (``tests/servers/discord_gateway.py``) it answers
``GET /gateway/bot`` with the stand-in's ``ws://`` URL, and serves what a button click is answered
through: the interaction callback (Discord's 3-second deadline, one acknowledgement each) and the
edit of the deferred ``@original`` response, recording each.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.servers.http import Answer, LocalHTTPServer, Request

BOT_TOKEN = "discord-bot-token-Secret.42"
BOT = {"id": "900000000000000001", "username": "alerter", "bot": True}
WEBHOOK_ID, WEBHOOK_TOKEN = "123456", "discordWebhookSecret_Tok3n"
WEBHOOK_ENDPOINT = f"webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"
WEBHOOK_PATH = f"/api/{WEBHOOK_ENDPOINT}"
WEBHOOK_CHANNEL = "555000555"
UNKNOWN_CHANNEL = "404404"
DISCORD_EPOCH_MS = 1420070400000
#: the bot's application: modern bots share their user's id
APPLICATION_ID = BOT["id"]
#: how long Discord waits for an interaction's first answer before the click fails for the user
INTERACTION_DEADLINE = 3.0
_API = "/api/v10"


def embed_size(embed: dict[str, Any]) -> int:
    texts = [
        embed.get("title"),
        embed.get("description"),
        (embed.get("footer") or {}).get("text"),
        (embed.get("author") or {}).get("name"),
    ]
    texts += [text for f in embed.get("fields") or [] for text in (f.get("name"), f.get("value"))]
    return sum(len(str(text)) for text in texts if text)


def component_errors(rows: Any) -> list[str]:
    """Why Discord would refuse these message components (action rows of buttons)."""
    if not isinstance(rows, list):
        return ["components: must be a list"]
    problems = ["components: Must be 5 or fewer in length"] if len(rows) > 5 else []
    custom_ids: list[str] = []
    for r, row in enumerate(rows):
        where = f"components.{r}"
        items = row.get("components") if isinstance(row, dict) else None
        if not isinstance(row, dict) or row.get("type") != 1 or not isinstance(items, list):
            problems.append(f"{where}: a top-level component must be an action row (type 1) of components")
            continue
        if not 1 <= len(items) <= 5:
            problems.append(f"{where}.components: Must be between 1 and 5 in length")
        for c, item in enumerate(items):
            at = f"{where}.components.{c}"
            label, style = str(item.get("label") or ""), item.get("style")
            if item.get("type") != 2:
                problems.append(f"{at}.type: only buttons (type 2) are expected here")
            if len(label) > 80:
                problems.append(f"{at}.label: Must be 80 or fewer in length")
            if not label and not item.get("emoji"):
                problems.append(f"{at}: a button needs a label or an emoji")
            if style == 5:
                if "custom_id" in item or not re.match(r"https?://\S+$", str(item.get("url") or "")):
                    problems.append(f"{at}: a link button has an http(s) url and no custom_id")
            elif style in (1, 2, 3, 4):
                custom_id = str(item.get("custom_id") or "")
                if not custom_id or "url" in item:
                    problems.append(f"{at}.custom_id: a non-link button needs a custom_id and no url")
                if len(custom_id) > 100:
                    problems.append(f"{at}.custom_id: Must be 100 or fewer in length")
                custom_ids.append(custom_id)
            else:
                problems.append(f"{at}.style: Value must be one of (1, 2, 3, 4, 5, 6)")
    if len(custom_ids) != len(set(custom_ids)):
        problems.append("components: Component custom id cannot be duplicated")
    return problems


def form_errors(body: Any) -> list[str]:
    """Why Discord would refuse this message body (empty when it would accept it)."""
    if not isinstance(body, dict):
        return ["body: not a JSON object"]
    content, embeds = body.get("content") or "", body.get("embeds") or []
    problems = []
    if not content and not embeds:
        problems.append("Cannot send an empty message")
    if len(content) > 2000:
        problems.append("content: Must be 2000 or fewer in length")
    if len(str(body.get("nonce") or "")) > 25:
        problems.append("nonce: Must be 25 or fewer in length")
    if "components" in body:
        problems += component_errors(body["components"])
    if len(embeds) > 10:
        problems.append("embeds: Must be 10 or fewer in length")
    if sum(embed_size(e) for e in embeds) > 6000:
        problems.append("embeds: Embed size exceeds maximum size of 6000")
    for index, embed in enumerate(embeds):
        where = f"embeds.{index}"
        if not embed_size(embed) and not embed.get("image") and not embed.get("thumbnail"):
            problems.append(f"{where}: embed is empty")
        limits = (("title", 256), ("description", 4096))
        problems += [f"{where}.{key}: too long" for key, size in limits if len(embed.get(key) or "") > size]
        if "url" in embed and not re.match(r"https?://\S+$", str(embed["url"])):
            problems.append(f"{where}.url: Scheme must be one of ('http', 'https')")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(f"{where}.fields: Must be 25 or fewer in length")
        for f in fields:
            if not f.get("name") or not f.get("value") or len(f["name"]) > 256 or len(f["value"]) > 1024:
                problems.append(f"{where}.fields: name 1-256 and value 1-1024 characters")
    return problems


@dataclass
class Interaction:
    """A button click dispatched on the Gateway, and how the bot answered it."""

    id: str
    token: str
    dispatched_at: float = field(default_factory=time.monotonic)
    #: the first answer: 4 (a message), 5 (deferred: "thinking…"), with its flags (64: only the clicker sees it)
    callback_type: int | None = None
    callback_flags: int | None = None
    #: seconds between the dispatch and the callback (Discord fails the click after 3)
    callback_after: float | None = None
    #: what the clicker was finally shown: the callback's message, or the edit of the deferred response
    notice: str | None = None


@dataclass
class DiscordAPIServer(LocalHTTPServer):
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    #: the Gateway stand-in's ``ws://`` URL, which ``GET /gateway/bot`` hands out
    gateway_url: str | None = None
    interactions: dict[str, Interaction] = field(default_factory=dict)
    #: seconds a nonce dedupes a post: Discord says "the past few minutes"; a test sets 0 to be past it
    nonce_window: float = 180.0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    @property
    def api_base_url(self) -> str:
        return f"{self.url}{_API}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    # --- what people do in the channel -----------------------------------------------------------

    def snowflake(self, offset_s: float = 0.0) -> str:
        """An id that encodes its creation time, as Discord's do."""
        ms = int((time.time() + offset_s) * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) + next(self._ids) % (1 << 22))

    def add_message(
        self,
        channel: str,
        user: str,
        content: str,
        *,
        reply_to: str | None = None,
        bot: bool = False,
        offset_s: float = 0.0,
    ) -> dict[str, Any]:
        """Someone writes in the channel; ``reply_to`` makes it a Discord Reply to that message."""
        message: dict[str, Any] = {
            "id": self.snowflake(offset_s),
            "type": 19 if reply_to else 0,
            "channel_id": channel,
            "content": content,
            "author": {"id": user, "username": f"user{user[-3:]}", "bot": bot},
        }
        if reply_to:
            message["message_reference"] = {"type": 0, "message_id": reply_to, "channel_id": channel}
        with self._lock:
            self.channels.setdefault(channel, []).append(message)
        return message

    def add_chatter(self, channel: str, count: int) -> None:
        """``count`` unrelated messages, as in a busy channel."""
        for n in range(count):
            self.add_message(channel, "700000000000000999", f"chatter {n}")

    def add_reaction(self, channel: str, message_id: str, emoji: str, user: str, *, bot: bool = False) -> None:
        with self._lock:
            message = self._find(channel, message_id)
            assert message is not None, "no such message"
            reactions = message.setdefault("_reactions", {})
            reactions.setdefault(emoji, []).append({"id": user, "username": f"user{user[-3:]}", "bot": bot})

    def questions(self, channel: str) -> list[dict[str, Any]]:
        """Messages the bot posted that are not replies: the questions (and alerts)."""
        return [
            m for m in self.channels.get(channel, []) if m["author"]["id"] == BOT["id"] and "message_reference" not in m
        ]

    def replies_to(self, channel: str, message_id: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.channels.get(channel, [])
            if (m.get("message_reference") or {}).get("message_id") == message_id
        ]

    # --- the API ---------------------------------------------------------------------------------

    def new_interaction(self) -> Interaction:
        """A click about to be dispatched: an id and a token of its own, as Discord makes them."""
        interaction = Interaction(id=self.snowflake(), token=f"aW50ZXJhY3Rpb246{uuid.uuid4().hex}")
        with self._lock:
            self.interactions[interaction.id] = interaction
        return interaction

    def route(self, request: Request) -> Answer:
        if request.path == WEBHOOK_PATH:
            return self._webhook(request)
        # interactions are authenticated by their own token, in the path, not by the bot token
        if match := re.fullmatch(rf"{_API}/interactions/(\d+)/([^/]+)/callback", request.path):
            return self._callback(match[1], match[2], request.body)
        if match := re.fullmatch(rf"{_API}/webhooks/(\d+)/([^/]+)/messages/@original", request.path):
            return self._original(match[1], match[2], request)
        if request.headers.get("authorization") != f"Bot {BOT_TOKEN}":
            return Answer(401, {"message": "401: Unauthorized", "code": 0})
        path = request.path.removeprefix(_API)
        if path == "/users/@me":
            return Answer(200, BOT)
        if path == "/gateway/bot":
            if self.gateway_url is None:
                return Answer(404, {"message": "404: Not Found", "code": 0})
            return Answer(200, {"url": self.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})
        if match := re.fullmatch(r"/channels/(\d+)", path):
            return self._channel(match[1])
        if match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/reactions/([^/]+)", path):
            return self._reaction_users(match[1], match[2], match[3], request)
        if match := re.fullmatch(r"/channels/(\d+)/messages/(\d+)", path):
            return self._one(match[1], match[2], request)
        if match := re.fullmatch(r"/channels/(\d+)/messages", path):
            return (
                self._post(match[1], request.body, BOT) if request.method == "POST" else self._list(match[1], request)
            )
        return Answer(404, {"message": "404: Not Found", "code": 0})

    def _callback(self, interaction_id: str, token: str, body: Any) -> Answer:
        with self._lock:
            interaction = self.interactions.get(interaction_id)
            if interaction is None or interaction.token != token:
                return Answer(404, {"message": "Unknown interaction", "code": 10062})
            if interaction.callback_type is not None:
                return Answer(400, {"message": "Interaction has already been acknowledged.", "code": 40060})
            after = time.monotonic() - interaction.dispatched_at
            if after > INTERACTION_DEADLINE:
                return Answer(404, {"message": "Unknown interaction", "code": 10062})
            data = (body or {}).get("data") or {}
            if (body or {}).get("type") not in (4, 5, 6, 7) or form_errors({"content": "-", **data}):
                return Answer(400, {"message": "Invalid Form Body", "code": 50035})
            interaction.callback_type, interaction.callback_flags = body["type"], data.get("flags")
            interaction.callback_after = after
            if body["type"] == 4:
                interaction.notice = data.get("content")
        return Answer(204, None)

    def _original(self, application_id: str, token: str, request: Request) -> Answer:
        with self._lock:
            interaction = next((i for i in self.interactions.values() if i.token == token), None)
            if application_id != APPLICATION_ID or interaction is None or interaction.callback_type is None:
                return Answer(404, {"message": "Unknown Webhook", "code": 10015})
            if request.method != "PATCH":
                return Answer(405, {"message": "405: Method Not Allowed", "code": 0})
            if problems := form_errors(request.body):
                return Answer(400, {"message": "Invalid Form Body", "code": 50035, "errors": problems})
            interaction.notice = request.body.get("content")
        return Answer(200, {"id": interaction.id, "content": interaction.notice, "flags": interaction.callback_flags})

    def _webhook(self, request: Request) -> Answer:
        if request.method == "GET":
            return Answer(200, {"id": WEBHOOK_ID, "type": 1, "name": "alerts", "channel_id": WEBHOOK_CHANNEL})
        answer = self._post(WEBHOOK_CHANNEL, request.body, {"id": WEBHOOK_ID, "username": "alerts", "bot": True})
        if answer.status == 200:
            self.webhook_posts.append(request.body)
            if request.query.get("wait") != "true":
                return Answer(204, None)
        return answer

    def _channel(self, channel: str) -> Answer:
        if channel == UNKNOWN_CHANNEL:
            return Answer(404, {"message": "Unknown Channel", "code": 10003})
        return Answer(200, {"id": channel, "type": 0, "name": "deployments"})

    def _find(self, channel: str, message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.channels.get(channel, []) if m["id"] == message_id), None)

    def _post(self, channel: str, body: Any, author: dict[str, Any]) -> Answer:
        if channel == UNKNOWN_CHANNEL:
            return Answer(404, {"message": "Unknown Channel", "code": 10003})
        if problems := form_errors(body):
            return Answer(400, {"message": "Invalid Form Body", "code": 50035, "errors": problems})
        if body.get("enforce_nonce") and body.get("nonce"):  # Discord returns the earlier message, creates none
            with self._lock:
                earlier = next((m for m in self.channels.get(channel, []) if m.get("_nonce") == body["nonce"]
                                and m["author"]["id"] == author["id"]
                                and time.time() - m["_posted"] <= self.nonce_window), None)
            if earlier is not None:
                return Answer(200, _public(earlier))
        message = {
            "id": self.snowflake(),
            "type": 19 if "message_reference" in body else 0,
            "channel_id": channel,
            "author": author,
            **{key: value for key, value in body.items() if key not in ("nonce", "enforce_nonce")},
            "_nonce": body.get("nonce"),  # kept for deduplication, not shown: Discord lists no nonces
            "_posted": time.time(),
        }
        with self._lock:
            self.channels.setdefault(channel, []).append(message)
        return Answer(200, _public(message))

    def _one(self, channel: str, message_id: str, request: Request) -> Answer:
        with self._lock:
            message = self._find(channel, message_id)
            if message is None:
                return Answer(404, {"message": "Unknown Message", "code": 10008})
            if request.method == "PATCH":
                if problems := form_errors({**message, **request.body}):
                    return Answer(400, {"message": "Invalid Form Body", "code": 50035, "errors": problems})
                message.update(request.body, edited=True)
            return Answer(200, _public(message))

    def _list(self, channel: str, request: Request) -> Answer:
        if channel == UNKNOWN_CHANNEL:
            return Answer(404, {"message": "Unknown Channel", "code": 10003})
        limit = int(request.query.get("limit", 50))
        if not 1 <= limit <= 100:
            return Answer(400, {"message": "Invalid Form Body", "code": 50035})
        with self._lock:
            messages = sorted(self.channels.get(channel, []), key=lambda m: int(m["id"]))
        if "after" in request.query:
            messages = [m for m in messages if int(m["id"]) > int(request.query["after"])][:limit]
        elif "around" in request.query:
            index = next((i for i, m in enumerate(messages) if m["id"] == request.query["around"]), 0)
            messages = messages[max(index - limit // 2, 0) : index + (limit + 1) // 2]
        else:
            if "before" in request.query:
                messages = [m for m in messages if int(m["id"]) < int(request.query["before"])]
            messages = messages[-limit:]
        return Answer(200, [_public(m) for m in reversed(messages)])

    def _reaction_users(self, channel: str, message_id: str, emoji: str, request: Request) -> Answer:
        with self._lock:
            message = self._find(channel, message_id)
        if message is None:
            return Answer(404, {"message": "Unknown Message", "code": 10008})
        limit = int(request.query.get("limit", 25))
        return Answer(200, message.get("_reactions", {}).get(emoji, [])[:limit])


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the API shows it: reactions as counts, never the list of who reacted."""
    shown = {k: v for k, v in message.items() if not k.startswith("_")}
    reactions = message.get("_reactions") or {}
    if reactions:
        shown["reactions"] = [
            {"emoji": {"id": None, "name": emoji}, "count": len(users), "me": False}
            for emoji, users in reactions.items()
        ]
    return shown
