"""The package's Airflow plugin: Slack's and Discord's HTTP interactivity inside Airflow's api-server.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so ``pip install
airflow-alerter`` on the api-server is all it takes. Airflow mounts the plugin's ``fastapi_apps``
under their ``url_prefix`` (``/alerter``) in the api-server only:

- ``POST /alerter/slack/{conn_id}/interactions`` — Slack's interactivity Request URL (button
  clicks) and, on the same URL or ``/alerter/slack/{conn_id}/events``, the Events API (thread
  replies, reactions);
- ``POST /alerter/discord/{conn_id}/interactions`` — Discord's Interactions Endpoint URL;
- ``GET|POST /alerter/email/{conn_id}/answer`` — an email question's answer links: GET shows a
  confirmation page, its POST records the answer (:mod:`.email_page`).

Every process that loads plugins (scheduler, workers, DAG processor, triggerer) imports this
module, so it imports nothing but Airflow's plugin base: the FastAPI app
(:mod:`.interactivity`, with slack_sdk, httpx and cryptography behind it) is built on the first
request the api-server routes to it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/alerter"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyApp:
    """An ASGI app that imports and builds the real one (``module:factory``) on its first request."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        with self._lock:
            if self._app is None:
                module, name = self.target.split(":")
                self._app = getattr(importlib.import_module(module), name)()
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self._app or self._build())(scope, receive, send)


class AlerterInteractivityPlugin(AirflowPlugin):
    """Slack's and Discord's clicks and events, verified and decided in the api-server."""

    name = "airflow_alerter_interactivity"
    fastapi_apps = [  # noqa: RUF012 (Airflow's own attribute: a plain list of dicts)
        {"name": "airflow-alerter interactivity", "url_prefix": URL_PREFIX,
         "app": LazyApp("airflow_alerter.plugins.interactivity:build_app")},
    ]
