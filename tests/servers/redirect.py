"""A redirector and the host it points at: what a hijacked name, a misconfigured proxy or a moved API
would do to our calls.

:class:`Redirector` (on 127.0.0.1) answers every request with its redirect status and a
``Location`` on a *second local host name* (``localhost``) that keeps the request's path and query
(where a webhook's secret lives). :class:`RedirectTarget` records whatever arrives there and answers
like a friendly API would, so a followed redirect looks like success. A client that follows no
redirect leaves the target's ``requests`` empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from tests.servers.http import Answer, LocalHTTPServer, Request

#: the other name of this machine that the redirects point at
OTHER_HOST = "localhost"


@dataclass
class RedirectTarget(LocalHTTPServer):
    """Binds 127.0.0.1 and is addressed as ``localhost``: every request that reaches it followed a redirect."""

    @property
    def other_url(self) -> str:
        return self.url.replace(self.host, OTHER_HOST)

    def route(self, request: Request) -> Answer:
        return Answer(200, {"ok": True, "id": "1", "channel": "C0", "ts": "1.000001", "messages": [],
                            "user": "x", "username": "x", "name": "x"})

    @property
    def credentials_seen(self) -> list[str]:
        """Authorization and API-key headers that reached the target (there must be none)."""
        return [value for request in self.requests for name, value in request.headers.items()
                if name in {"authorization", "x-api-key"}]


@dataclass
class Redirector(LocalHTTPServer):
    """Answers every request ``status`` with ``Location`` = the same path and query on the target."""

    status: int = 302
    target: RedirectTarget = field(default_factory=RedirectTarget)

    def route(self, request: Request) -> Answer:
        query = f"?{urlencode(request.query)}" if request.query else ""
        return Answer(self.status, {"moved": True},
                      headers={"Location": f"{self.target.other_url}{request.path}{query}"})
