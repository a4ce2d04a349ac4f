"""The ``webhook`` flavor: one JSON POST to a chat's incoming webhook; post only.

Presets shape the payload for Mattermost (incoming webhook), Microsoft Teams (a Workflows webhook
taking an Adaptive Card) and Google Chat (cardsV2); ``custom`` renders a jinja2 template given in
the connection, where every value goes through ``tojson`` so user text cannot break the JSON.
Each preset escapes what its target would interpret: Mattermost's @channel/@all/@here, Google
Chat's HTML subset. The webhook URL is a secret: it never appears in logs or errors.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError, BaseAlerter, ConnectionFields
from airflow_alerter.alerters.http import HttpError, JsonClient
from airflow_alerter.alerters.retry import RetryPolicy
from airflow_alerter.models import AlerterMessage, BaseAlerterParameters

Preset = Literal["mattermost", "msteams", "google_chat", "custom"]
BLOCK_KEYS = frozenset({"exception", "traceback", "log_url", "kind"})
_MATTERMOST_MENTIONS = re.compile(r"@(channel|all|here)\b", re.IGNORECASE)


class WebhookAlerterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: SecretStr
    preset: Preset = "mattermost"
    payload_template: str | None = Field(default=None, description="custom preset: a jinja2 template of JSON")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    retry_limit: int = Field(default=3, ge=1)
    retry_backoff: float = Field(default=1.0, ge=0)


def _facts(message: AlerterMessage) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in message.metadata.items() if k not in BLOCK_KEYS and v not in (None, "")]


def mattermost(message: AlerterMessage) -> dict[str, Any]:
    def quiet(text: str) -> str:  # a zero-width space after @ keeps the word and drops the ping
        return _MATTERMOST_MENTIONS.sub("@\u200b\\1", text)

    lines = [f"#### {quiet(message.title)}"] if message.title else []
    lines += [quiet(message.body)] if message.body else []
    lines += [f"**{quiet(k)}**: {quiet(v)}" for k, v in _facts(message)]
    if message.metadata.get("exception"):
        lines.append(f"```\n{message.metadata['exception']}\n```")
    if message.metadata.get("log_url"):
        lines.append(f"[View log]({message.metadata['log_url']})")
    return {"text": "\n\n".join(lines)}


def msteams(message: AlerterMessage) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if message.title:
        body.append({"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True})
    if message.body:
        body.append({"type": "TextBlock", "text": message.body, "wrap": True})
    if _facts(message):
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(message)]})
    if message.metadata.get("exception"):
        body.append({"type": "TextBlock", "text": str(message.metadata["exception"]), "fontType": "Monospace",
                     "wrap": True, "color": "Attention"})
    card: dict[str, Any] = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                            "version": "1.4", "body": body}
    if message.metadata.get("log_url"):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "View log", "url": str(message.metadata["log_url"])}]
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def google_chat(message: AlerterMessage) -> dict[str, Any]:
    widgets: list[dict[str, Any]] = []
    if message.body:
        widgets.append({"textParagraph": {"text": html.escape(message.body)}})
    widgets += [{"decoratedText": {"topLabel": html.escape(k), "text": html.escape(v)}} for k, v in _facts(message)]
    if message.metadata.get("exception"):
        exception = html.escape(str(message.metadata["exception"]))
        widgets.append({"textParagraph": {"text": f"<b>Exception</b>: {exception}"}})
    if message.metadata.get("log_url"):
        widgets.append({"buttonList": {"buttons": [
            {"text": "View log", "onClick": {"openLink": {"url": str(message.metadata["log_url"])}}}]}})
    card = {"header": {"title": message.title or "Airflow alert"}, "sections": [{"widgets": widgets}]}
    return {"text": message.title or message.body[:200], "cardsV2": [{"cardId": "airflow-alert", "card": card}]}


PRESETS: dict[str, Callable[[AlerterMessage], dict[str, Any]]] = {
    "mattermost": mattermost, "msteams": msteams, "google_chat": google_chat,
}


class WebhookAlerter(BaseAlerter):
    """Post alerts to a chat's incoming webhook (Mattermost, Teams, Google Chat, or your own JSON)."""

    FLAVOR: ClassVar[str] = "webhook"
    Config = WebhookAlerterConfig

    config: WebhookAlerterConfig

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """An ``alerter`` connection: the webhook URL in the password (a secret), the preset in the extras."""
        data = {key: value for key, value in conn.extra.items() if key in cls.Config.model_fields}
        if conn.password:
            data.setdefault("webhook_url", conn.password)
        return data

    def payload(self, message: str | AlerterMessage) -> dict[str, Any]:
        """The JSON body for ``message`` under the configured preset."""
        message = AlerterMessage.coerce(message)
        if self.config.preset != "custom":
            return PRESETS[self.config.preset](message)
        return self._render_custom(message)

    def _render_custom(self, message: AlerterMessage) -> dict[str, Any]:
        import jinja2

        if not self.config.payload_template:
            raise AlerterConfigError("payload_template: the custom preset needs a jinja2 template of the JSON body")
        env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        try:
            rendered = env.from_string(self.config.payload_template).render(
                title=message.title, body=message.body, metadata=message.metadata, text=message.as_text())
            payload = json.loads(rendered)
        except jinja2.TemplateError as err:
            raise AlerterConfigError(f"payload_template: {err}") from None
        except ValueError as err:
            raise AlerterConfigError(
                f"payload_template did not render valid JSON ({err}); pass values through |tojson") from None
        if not isinstance(payload, dict):
            raise AlerterConfigError("payload_template must render a JSON object")
        return payload

    def deliver(self, message: str | AlerterMessage, params: BaseAlerterParameters | None = None) -> None:
        client = JsonClient("the webhook", self.config.timeout,
                            RetryPolicy(self.config.retry_limit, self.config.retry_backoff), self.config.headers)
        try:
            client.call("POST", self.config.webhook_url.get_secret_value(), self.payload(message))
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None

    def test_connection(self) -> tuple[bool, str]:
        return True, f"{self.config.preset} webhook configured (checking it would post a message: use --send)"
