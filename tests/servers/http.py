"""The base of the local HTTP stand-ins (Discord API, webhooks): a real server on 127.0.0.1.

A subclass answers ``route(request)``; the base serves it on an ephemeral port, records every
request and applies injected faults first: an HTTP status (429 with Retry-After, 5xx), a slow
answer, a body that is not JSON, or a broken answer: a dropped connection (RST), a hang-up without
a word (FIN), a status line that is not HTTP, or a body cut short.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]

    @property
    def args(self) -> dict[str, Any]:
        """Query and body arguments together, as Slack's Web API reads them."""
        return {**self.query, **(self.body if isinstance(self.body, dict) else {})}

    @property
    def endpoint(self) -> str:
        """The last path segment: a Slack Web API method such as ``chat.postMessage``."""
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Fault:
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    raw: bytes | None = None  # answer these bytes instead of JSON (e.g. b"<html>oops")
    reset: bool = False  # read the request, then drop the connection without answering (RST)
    lands: bool = False  # carry the request out as usual, then answer late: the "timed out, but sent" case
    hangup: bool = False  # read the request, then close the connection cleanly without a word (RemoteDisconnected)
    bad_status_line: bool = False  # answer a line that is not an HTTP status line, then close (BadStatusLine)
    truncated: bool = False  # answer 200 and promise a body, send part of it, then close (IncompleteRead)


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalHTTPServer:
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    _faults: list[tuple[str, Fault]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_port}"

    def fail_next(self, path_part: str, fault: Fault, *, times: int = 1) -> None:
        """The next ``times`` requests whose path contains ``path_part`` get ``fault``."""
        with self._lock:
            self._faults += [(path_part, fault)] * times

    def route(self, request: Request) -> Answer:
        raise NotImplementedError

    def start(self) -> LocalHTTPServer:
        self._server = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, (part, fault) in enumerate(self._faults):
                if part in path:
                    del self._faults[index]
                    return fault
        return None


def _handler_for(server: LocalHTTPServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                is_json = "json" in (self.headers.get("Content-Type") or "")
                body = json.loads(raw) if is_json else dict(parse_qsl(raw.decode()))
            request = Request(self.command, unquote(url.path), dict(parse_qsl(url.query)), body,
                              {k.lower(): v for k, v in self.headers.items()})
            with server._lock:
                server.requests.append(request)
            fault = server._take_fault(request.path)
            if fault is not None and fault.reset:
                # SO_LINGER 0: close() sends RST, as a crashed proxy or a killed server does
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault is not None and (fault.hangup or fault.bad_status_line or fault.truncated):
                self._break(fault)
                return
            if fault is not None and fault.lands:
                answer = server.route(request)
                time.sleep(fault.delay)
                self._answer(answer)
                return
            if fault is not None:
                time.sleep(fault.delay)
                extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                payload = fault.raw if fault.raw is not None else json.dumps(
                    {"ok": False, "error": "injected_fault", "message": "injected fault",
                     "retry_after": fault.retry_after}).encode()
                self._send(fault.status, payload, extra)
                return
            self._answer(server.route(request))

        def _break(self, fault: Fault) -> None:
            """Answer brokenly, then close (FIN): what a crashing server or a confused proxy does."""
            self.close_connection = True
            try:
                if fault.bad_status_line:
                    self.wfile.write(b"NOT-HTTP the proxy is confused\r\n\r\n")
                elif fault.truncated:
                    body = json.dumps({"ok": True, "id": "1", "channel": "C0", "ts": "1.000001"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body) + 100))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _answer(self, answer: Answer) -> None:
            self._send(answer.status, b"" if answer.body is None else json.dumps(answer.body).encode(), answer.headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up first (a timeout test)
                pass

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

    return Handler
