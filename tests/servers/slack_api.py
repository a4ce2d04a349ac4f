"""A local stand-in for Slack's Web API and incoming webhooks: a real HTTP server on 127.0.0.1.

It speaks the subset the slack flavor calls (chat.postMessage, chat.update, chat.postEphemeral, conversations.replies
with Slack's cursor paging, conversations.history, users.info, auth.test, incoming webhooks), keeps
channels, threads and which users are bots in memory, records every request, and
can be told to fail (``fail_next``: 429 with Retry-After, 500) or to answer a question after N
checks. slack_sdk talks to it through ``base_url``. It stands in for Slack, not for our code.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.servers.http import Answer, LocalHTTPServer, Request

BOT_TOKEN = "xoxb-test-1234567890-bot-Secret"
BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
WEBHOOK_PATH = "/services/T000/B000/webhookSecret123"


@dataclass
class SlackAPIServer(LocalHTTPServer):
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    bot_users: set[str] = field(default_factory=lambda: {BOT_USER})
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    #: where ``apps.connections.open`` sends a Socket Mode client (tests/servers/slack_socket.py), and with which token
    socket_url: Any = None
    app_token: str = ""
    _auto_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _clock: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    # --- what tests do -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def calls(self, method: str) -> list[Request]:
        return [request for request in self.requests if request.endpoint == method]

    def new_ts(self) -> str:
        """A message timestamp after every earlier one, as Slack's are."""
        return f"{int(time.time())}.{next(self._clock):06d}"

    def add_reply(self, channel: str, thread_ts: str, user: str, text: str, *, bot: bool = False,
                  ts: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "message", "user": user, "text": text, "ts": ts or self.new_ts(),
                                   "thread_ts": thread_ts}
        if bot:
            message.update(bot_id="BOTHER01", subtype="bot_message")
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
        return message

    def add_reaction(self, channel: str, ts: str, name: str, user: str, *, bot: bool = False) -> None:
        with self._lock:
            if bot:
                self.bot_users.add(user)
            message = self._find(channel, ts)
            reactions = message.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if entry is None:
                entry = {"name": name, "users": [], "count": 0}
                reactions.append(entry)
            entry["users"].append(user)
            entry["count"] += 1

    def questions(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages the alerter posted in ``channel``."""
        return [m for m in self.messages.get(channel, []) if "thread_ts" not in m and m.get("user") == BOT_USER]

    def answer_on_check(self, check_number: int, *, user: str, text: str | None = None,
                        reaction: str | None = None) -> None:
        """When ``conversations.replies`` is called for the ``check_number``-th time, a person answers first."""
        with self._lock:
            self._auto_answers.append((check_number, {"user": user, "text": text, "reaction": reaction}))

    # --- serving -----------------------------------------------------------------------------

    def route(self, request: Request) -> Answer:
        if request.path == WEBHOOK_PATH:
            self.webhook_posts.append(request.body)
            return Answer(200, None)
        if request.endpoint == "apps.connections.open":
            return Answer(200, self._apps_connections_open(request))
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        action = getattr(self, "_" + request.endpoint.replace(".", "_"), None)
        if action is None:
            return Answer(200, {"ok": False, "error": "unknown_method"})
        return Answer(200, action(request.args))

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        return next(m for m in self.messages.get(channel, []) if m["ts"] == ts)

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user": "alerter", "user_id": BOT_USER, "bot_id": BOT_ID, "team": "Test Team"}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel or channel.startswith("CNOPE"):
            return {"ok": False, "error": "channel_not_found"}
        message: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": self.new_ts(),
                                   "text": args.get("text", ""), "blocks": _json(args.get("blocks"))}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        if args.get("metadata"):
            message["metadata"] = _json(args["metadata"])
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _apps_connections_open(self, request: Request) -> dict[str, Any]:
        """A Socket Mode URL, for the app-level token only (Slack refuses a bot token here: not_allowed_token_type)."""
        if not self.app_token or request.headers.get("authorization") != f"Bearer {self.app_token}":
            return {"ok": False, "error": "not_allowed_token_type" if request.headers.get("authorization") == (
                f"Bearer {BOT_TOKEN}") else "invalid_auth"}
        if self.socket_url is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"ok": True, "url": self.socket_url()}

    def _chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        """Shown to one user only: kept apart from the channel's messages."""
        with self._lock:
            self.ephemerals.append({"channel": args.get("channel"), "user": args.get("user"), "text": args.get("text")})
        return {"ok": True, "message_ts": self.new_ts()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message = self._find(str(args["channel"]), str(args["ts"]))
            message.update(text=args.get("text", ""), blocks=_json(args.get("blocks")))
        return {"ok": True, "channel": args["channel"], "ts": args["ts"]}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args["channel"]), str(args["ts"])
        with self._lock:
            checks = len(self.calls("conversations.replies"))
            for number, answer in [a for a in self._auto_answers if a[0] == checks]:
                self._auto_answers.remove((number, answer))
                if answer["reaction"]:
                    self.add_reaction(channel, ts, answer["reaction"], answer["user"])
                else:
                    self.add_reply(channel, ts, answer["user"], answer["text"])
            thread = [m for m in self.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        thread = sorted((dict(m) for m in thread), key=lambda m: m["ts"])
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 1000)
        page, more = thread[start:start + limit], start + limit < len(thread)
        return {"ok": True, "messages": page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel")), str(args.get("message_ts"))
        with self._lock:
            if not any(m["ts"] == ts for m in self.messages.get(channel, [])):
                return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "permalink": f"{PERMALINK_BASE}/{channel}/p{ts.replace('.', '')}"}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user"))
        return {"ok": True, "user": {"id": user, "name": user.lower(), "is_bot": user in self.bot_users}}


    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first; metadata only with ``include_all_metadata``, as Slack does."""
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
        with self._lock:
            found = [dict(m) for m in self.messages.get(str(args["channel"]), [])
                     if not m.get("thread_ts") and float(m["ts"]) > oldest]
        if not with_metadata:
            for message in found:
                message.pop("metadata", None)
        return {"ok": True, "messages": sorted(found, key=lambda m: m["ts"], reverse=True), "has_more": False}


#: where the stand-in's permalinks point, as Slack's point into the workspace's archive
PERMALINK_BASE = "https://test-team.slack.com/archives"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


if __name__ == "__main__":  # serve in a process of its own (benchmarks): prints the base URL, runs until killed
    server = SlackAPIServer().start()
    assert isinstance(server, SlackAPIServer)
    print(server.base_url, flush=True)
    threading.Event().wait()
