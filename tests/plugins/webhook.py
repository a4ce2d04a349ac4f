"""Fixtures: a local incoming-webhook receiver, and a config that reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

register_secret(WEBHOOK_PATH.rsplit("/", 1)[-1])


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def webhook_config(server: WebhookServer, **overrides: Any) -> dict[str, Any]:
    """A webhook config for ``server``, with quick retries."""
    return {"webhook_url": server.webhook_url, "retry_backoff": 0.01, **overrides}
