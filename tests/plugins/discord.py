"""Fixtures: the local Discord API and its Gateway, and configs that reach them with the bot token or the webhook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.discord_api import BOT_TOKEN, WEBHOOK_TOKEN, DiscordAPIServer
from tests.servers.discord_gateway import DiscordGatewayServer

DISCORD_CHANNEL = "111222333"
register_secret(BOT_TOKEN, WEBHOOK_TOKEN)


@pytest.fixture
def discord_api() -> Iterator[DiscordAPIServer]:
    with DiscordAPIServer() as server:
        yield server


@pytest.fixture
def discord_gateway(discord_api: DiscordAPIServer) -> Iterator[DiscordGatewayServer]:
    """The Gateway stand-in, wired to ``discord_api`` (its ``GET /gateway/bot`` hands out this one's URL)."""
    with DiscordGatewayServer(discord_api) as server:
        yield server


def discord_config(server: DiscordAPIServer, **overrides: Any) -> dict[str, Any]:
    """A bot-token config posting to DISCORD_CHANNEL, with quick retries."""
    return {
        "token": BOT_TOKEN,
        "channel_id": DISCORD_CHANNEL,
        "api_base_url": server.api_base_url,
        "retry_backoff": 0.01,
        **overrides,
    }


def discord_webhook_config(server: DiscordAPIServer, **overrides: Any) -> dict[str, Any]:
    """A webhook-only config (post only), with quick retries."""
    return {"webhook_url": server.webhook_url, "retry_backoff": 0.01, **overrides}
