"""A local incoming-webhook receiver (Mattermost, Teams, Google Chat, anything that takes JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.servers.http import Answer, LocalHTTPServer, Request

WEBHOOK_PATH = "/hooks/incoming/webhookSecretXYZ"


@dataclass
class WebhookServer(LocalHTTPServer):
    posts: list[Any] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def route(self, request: Request) -> Answer:
        if request.path != WEBHOOK_PATH:
            return Answer(404, {"message": "no such hook"})
        self.posts.append(request.body)
        return Answer(200, None)
