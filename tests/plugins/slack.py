"""Fixtures: the local Slack API server, and configs/connections that reach it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.slack_api import BOT_TOKEN, WEBHOOK_PATH, SlackAPIServer
from tests.servers.slack_socket import APP_TOKEN, SlackSocketServer

CHANNEL = "C0ALERTS"
register_secret(BOT_TOKEN, WEBHOOK_PATH.rsplit("/", 1)[-1], APP_TOKEN)


@pytest.fixture
def slack_api() -> Iterator[SlackAPIServer]:
    with SlackAPIServer() as server:
        yield server


@pytest.fixture
def slack_socket(slack_api: SlackAPIServer) -> Iterator[SlackSocketServer]:
    """Socket Mode for the Slack stand-in: ``apps.connections.open`` (with the app token) leads here."""
    with SlackSocketServer() as server:
        slack_api.socket_url, slack_api.app_token = lambda: server.ws_url, APP_TOKEN
        yield server


def slack_config(server: SlackAPIServer, **overrides: Any) -> dict[str, Any]:
    return {"token": BOT_TOKEN, "base_url": server.base_url, "channel": CHANNEL, "retry_limit": 2, **overrides}


@pytest.fixture
def slack_conn(airflow_conn: Callable[..., str], slack_api: SlackAPIServer) -> str:
    """An Airflow ``slack`` connection ``ml_slack``, as the official Slack provider defines it."""
    return str(airflow_conn("ml_slack", "slack", password=BOT_TOKEN,
                            extra={"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 2}))


@pytest.fixture
def slack_socket_conn(
    airflow_conn: Callable[..., str], slack_api: SlackAPIServer, slack_socket: SlackSocketServer
) -> str:
    """``ml_slack`` with an app-level token: the responder holds a Socket Mode connection for it."""
    return str(airflow_conn("ml_slack", "slack", password=BOT_TOKEN,
                            extra={"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 2,
                                   "app_token": APP_TOKEN}))
