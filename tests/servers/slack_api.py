"""A local stand-in for Slack's Web API and incoming webhooks: a real HTTP server on 127.0.0.1.

It speaks the subset the slack flavor calls (chat.postMessage, chat.update, conversations.replies,
auth.test, incoming webhooks), keeps channels and threads in memory, records every request, and
can be told to fail (429 with Retry-After, 500) or to answer a question after N checks.
slack_sdk talks to it through ``base_url``. It stands in for Slack, not for our code.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

BOT_TOKEN = "xoxb-test-1234567890-bot-Secret"
BOT_USER = "UBOT0001"
BOT_ID = "BBOT0001"
WEBHOOK_PATH = "/services/T000/B000/webhookSecret123"


@dataclass
class Request:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    remaining: int


@dataclass
class SlackAPIServer:
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _auto_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _clock: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]
    _server: ThreadingHTTPServer | None = None

    # --- what tests do -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_port}/api/"

    @property
    def webhook_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_port}{WEBHOOK_PATH}"

    def calls(self, method: str) -> list[Request]:
        return [request for request in self.requests if request.method == method]

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

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        with self._lock:
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

    def fail_next(self, method: str, status: int, *, times: int = 1, retry_after: int | None = None) -> None:
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(status, retry_after, times))

    def answer_on_check(self, check_number: int, *, user: str, text: str | None = None,
                        reaction: str | None = None) -> None:
        """When ``conversations.replies`` is called for the ``check_number``-th time, a person answers first."""
        with self._lock:
            self._auto_answers.append((check_number, {"user": user, "text": text, "reaction": reaction}))

    # --- serving -----------------------------------------------------------------------------

    def start(self) -> SlackAPIServer:
        self._server = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> SlackAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _find(self, channel: str, ts: str) -> dict[str, Any]:
        return next(m for m in self.messages.get(channel, []) if m["ts"] == ts)

    def _fault(self, method: str) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(method) or []
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            return fault

    def handle(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(Request(method, args, headers))
        fault = self._fault(method)
        if fault is not None:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return fault.status, {"ok": False, "error": "ratelimited" if fault.status == 429 else "fatal_error"}, extra
        if headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        action = getattr(self, "_" + method.replace(".", "_"), None)
        if action is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        return 200, action(args), {}

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
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

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
        return {"ok": True, "messages": sorted((dict(m) for m in thread), key=lambda m: m["ts"]), "has_more": False}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


def _handler_for(api: SlackAPIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _respond(self, status: int, body: dict[str, Any] | str, headers: dict[str, str]) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _args(self) -> dict[str, Any]:
            url = urlparse(self.path)
            args: dict[str, Any] = dict(parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            if raw and "json" in (self.headers.get("Content-Type") or ""):
                args.update(json.loads(raw))
            elif raw:
                args.update(parse_qsl(raw))
            return args

        def _serve(self) -> None:
            path = urlparse(self.path).path
            args = self._args()
            headers = {key.lower(): value for key, value in self.headers.items()}
            if path == WEBHOOK_PATH:
                fault = api._fault("webhook")
                with api._lock:
                    api.requests.append(Request("webhook", args, headers))
                    if fault is None:
                        api.webhook_posts.append(args)
                self._respond(fault.status if fault else 200, "fatal_error" if fault else "ok", {})
                return
            status, body, extra = api.handle(path.rsplit("/", 1)[-1], args, headers)
            self._respond(status, body, extra)

        do_GET = _serve
        do_POST = _serve

    return Handler


if __name__ == "__main__":  # serve in a process of its own (benchmarks): prints the base URL, runs until killed
    server = SlackAPIServer().start()
    print(server.base_url, flush=True)
    threading.Event().wait()
