"""A local incoming-webhook receiver (Mattermost, Teams, Google Chat, anything that takes JSON).

It records every JSON body posted to its one secret path and answers 200 with an empty body (as
Teams' Workflows do); other answers — Mattermost's plain "ok", 429, 5xx, HTML from a proxy — come
from the base class's faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.servers.http import Answer, LocalHTTPServer, Request

WEBHOOK_PATH = "/hooks/incoming/webhookSecretXYZ123"


@dataclass
class WebhookServer(LocalHTTPServer):
    posts: list[Any] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def route(self, request: Request) -> Answer:
        if request.path != WEBHOOK_PATH:
            return Answer(404, {"message": "no such hook"})
        if request.method != "POST" or "application/json" not in request.headers.get("content-type", ""):
            return Answer(400, {"message": "expected a JSON POST"})
        self.posts.append(request.body)
        return Answer(200, None)
