"""Fixtures: the local Discord API and a config that reaches it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.discord_api import BOT_TOKEN, WEBHOOK_PATH, DiscordAPIServer

DISCORD_CHANNEL = "111222333"
register_secret(BOT_TOKEN, WEBHOOK_PATH.rsplit("/", 1)[-1])


@pytest.fixture
def discord_api() -> Iterator[DiscordAPIServer]:
    with DiscordAPIServer() as server:
        yield server


def discord_config(server: DiscordAPIServer, **overrides: Any) -> dict[str, Any]:
    return {"token": BOT_TOKEN, "channel_id": DISCORD_CHANNEL, "api_base_url": server.api_base_url,
            "retry_backoff": 0.01, **overrides}
