"""Fixtures: the local Slack API server, and configs/connections that reach it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.slack_api import BOT_TOKEN, WEBHOOK_PATH, SlackAPIServer

CHANNEL = "C0ALERTS"
register_secret(BOT_TOKEN, WEBHOOK_PATH.rsplit("/", 1)[-1])


@pytest.fixture
def slack_api() -> Iterator[SlackAPIServer]:
    with SlackAPIServer() as server:
        yield server


def slack_config(server: SlackAPIServer, **overrides: Any) -> dict[str, Any]:
    return {"token": BOT_TOKEN, "base_url": server.base_url, "channel": CHANNEL, "retry_limit": 2, **overrides}


@pytest.fixture
def slack_conn(airflow_conn: Callable[..., str], slack_api: SlackAPIServer) -> str:
    """An Airflow ``slack`` connection ``ml_slack``, as the official Slack provider defines it."""
    return str(airflow_conn("ml_slack", "slack", password=BOT_TOKEN,
                            extra={"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 2}))
