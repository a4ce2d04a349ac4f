"""Fixtures: a local incoming-webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

register_secret(WEBHOOK_PATH.rsplit("/", 1)[-1])


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server
