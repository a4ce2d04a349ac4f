"""A local stand-in for Discord's REST API v10 (the subset the discord flavor calls) and its webhooks."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.servers.http import Answer, LocalHTTPServer, Request

BOT_TOKEN = "discord-bot-token-Secret.42"
BOT = {"id": "900000000000000001", "username": "alerter", "bot": True}
WEBHOOK_PATH = "/api/webhooks/123/discordWebhookSecret"
DISCORD_EPOCH_MS = 1420070400000


@dataclass
class DiscordAPIServer(LocalHTTPServer):
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def snowflake(self, offset_s: float = 0.0) -> str:
        """An id that encodes its creation time, as Discord's do."""
        ms = int((time.time() + offset_s) * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) + next(self._ids))

    def add_message(self, channel: str, user: str, content: str, *, reply_to: str | None = None, bot: bool = False,
                    offset_s: float = 0.0) -> dict[str, Any]:
        message: dict[str, Any] = {"id": self.snowflake(offset_s), "channel_id": channel, "content": content,
                                   "author": {"id": user, "username": user, "bot": bot}}
        if reply_to:
            message["message_reference"] = {"message_id": reply_to}
        with self._lock:
            self.channels.setdefault(channel, []).append(message)
        return message

    def add_reaction(self, channel: str, message_id: str, emoji: str, user: str, *, bot: bool = False) -> None:
        with self._lock:
            message = next(m for m in self.channels[channel] if m["id"] == message_id)
            reactions = message.setdefault("reactions", [])
            entry = next((r for r in reactions if r["emoji"]["name"] == emoji), None)
            if entry is None:
                entry = {"emoji": {"id": None, "name": emoji}, "count": 0, "me": False, "_users": []}
                reactions.append(entry)
            entry["count"] += 1
            entry["_users"].append({"id": user, "username": user, "bot": bot})

    def questions(self, channel: str) -> list[dict[str, Any]]:
        return [m for m in self.channels.get(channel, []) if m["author"]["id"] == BOT["id"]
                and "message_reference" not in m]

    def route(self, request: Request) -> Answer:
        if request.path == WEBHOOK_PATH:
            if request.method == "GET":
                return Answer(200, {"id": "123", "name": "alerts", "type": 1})
            self.webhook_posts.append(request.body)
            return Answer(200, {"id": self.snowflake(), **request.body})
        if request.headers.get("authorization") != f"Bot {BOT_TOKEN}":
            return Answer(401, {"message": "401: Unauthorized", "code": 0})
        if request.path.endswith("/users/@me"):
            return Answer(200, BOT)
        if match := re.fullmatch(r"/api/v10/channels/(\w+)/messages/(\w+)/reactions/(.+)", request.path):
            message = self._find(match[1], match[2])
            entry = next((r for r in message.get("reactions", []) if r["emoji"]["name"] == match[3]), None)
            return Answer(200, entry["_users"] if entry else [])
        if match := re.fullmatch(r"/api/v10/channels/(\w+)/messages", request.path):
            return self._post(match[1], request.body) if request.method == "POST" else self._around(match[1], request)
        return Answer(404, {"message": "404: Not Found", "code": 0})

    def _find(self, channel: str, message_id: str) -> dict[str, Any]:
        return next(m for m in self.channels.get(channel, []) if m["id"] == message_id)

    def _post(self, channel: str, body: dict[str, Any]) -> Answer:
        if channel == "404404":
            return Answer(404, {"message": "Unknown Channel", "code": 10003})
        message = {"id": self.snowflake(), "channel_id": channel, "author": BOT, **body}
        with self._lock:
            self.channels.setdefault(channel, []).append(message)
        return Answer(200, message)

    def _around(self, channel: str, request: Request) -> Answer:
        around, limit = request.query.get("around"), int(request.query.get("limit", 50))
        with self._lock:
            messages = sorted(self.channels.get(channel, []), key=lambda m: int(m["id"]))
        if around:
            index = next((i for i, m in enumerate(messages) if m["id"] == around), 0)
            messages = messages[max(index - limit // 2, 0): index + limit // 2 + 1]
        public = [{k: v for k, v in m.items() if k != "reactions"} | (
            {"reactions": [{k: v for k, v in r.items() if k != "_users"} for r in m["reactions"]]}
            if m.get("reactions") else {}) for m in messages]
        return Answer(200, list(reversed(public)))
