"""The ``webhook`` flavor: one JSON POST to a chat's incoming webhook; post only.

Presets shape the payload for Mattermost (incoming webhook: markdown text, facts as attachment
fields), Microsoft Teams (a Workflows webhook taking an Adaptive Card) and Google Chat (cardsV2);
``custom`` renders a jinja2 template given in the connection. Each preset escapes what its target
would interpret:

- Mattermost: every mention (``@channel``, ``@all``, ``@here``, ``@user``, ``@group``) gets a
  zero-width space, so it notifies nobody; so do the Slack forms Mattermost translates for webhooks
  (``<!channel>``, ``<!here>``, ``<@U123>``), and a Slack-style link ``<url|label>`` keeps its ``<``
  as ``&lt;`` so it stays text. The text is cut to one Mattermost post (16383 characters) with a
  visible marker;
- Teams: text goes only into ``TextBlock``/``FactSet`` values, which Teams never renders as HTML;
- Google Chat: card text is HTML-escaped, and ``<`` in the plain ``text`` gets a zero-width space
  so ``<users/all>`` pings nobody;
- Teams and Google Chat cap a message's size, so a long body or exception is cut with a visible
  marker (:data:`SHORTENED`) rather than refused;
- custom: the template renders in jinja2's sandbox and must produce JSON; values passed through
  ``|tojson`` are JSON-escaped (quotes, newlines, ``<``), anything else is the template's choice.

The webhook URL is a secret: it goes in the connection's *password* (Airflow masks it), and never
appears in logs or errors. The answer's body is not read: any 2xx means delivered, since Mattermost
answers "ok", Teams' Workflows 202 with nothing, and custom targets whatever they like.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from airflow_alerter.alerters.base import (
    AlerterConfigError,
    AlerterDeliveryError,
    BaseAlerter,
    ConnectionFields,
    NoSettings,
    SecretWebUrl,
)
from airflow_alerter.alerters.http import HttpError, JsonClient
from airflow_alerter.alerters.rendering import (
    ZWSP,
    code_texts,
    cut,
    escape_fences,
    facts,
    hex_colour,
    preview,
    web_log_url,
)
from airflow_alerter.alerters.retry import RetryPolicy, retry_limit_field
from airflow_alerter.models import EMPTY_MESSAGE_TITLE, AlerterMessage, BaseAlerterParameters

Preset = Literal["mattermost", "msteams", "google_chat", "custom"]
#: text kept per part in Teams and Google Chat, whose whole message must stay under ~28 KB / 32 KB
TEXT_LIMIT, EXCEPTION_LIMIT, FACT_LIMIT = 8000, 4000, 500
#: Mattermost's body part: the whole text must fit one post (16383 characters by default)
MATTERMOST_BODY_LIMIT = 11000
#: the colour Google Chat's card shows an exception in: a failure's
RED = hex_colour("failure").upper()
SHORTENED = "… (shortened to fit the chat's size limit)"
#: any @mention Mattermost would notify: @channel/@all/@here, a user (@alice) or a group (@ml-oncall);
#: an @ inside a word (ops@example.com) mentions nobody and is left alone
_MATTERMOST_MENTIONS = re.compile(r"(?<![\w.])@(?=[\w.-])")
#: what Mattermost turns a webhook's Slack markup into: <!channel> → @channel, <@U1> → @user, <url|x> → a link
_SLACK_TOKEN = re.compile(r"<(?=[!@#])")
_SLACK_LINK = re.compile(r"<(?=[^\n<|>]+\|[^|\n>]+>)")


class WebhookAlerterConfig(BaseModel):
    """What an ``alerter`` connection with ``flavor: webhook`` provides (the URL in its password)."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: SecretWebUrl = Field(description="the incoming webhook URL (a secret: the connection's password)")
    preset: Preset = Field(default="mattermost", description="payload shape: mattermost, msteams, google_chat, custom")
    payload_template: str | None = Field(
        default=None, description="custom preset: a jinja2 template of the JSON body; pass values through |tojson"
    )
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="extra HTTP headers (e.g. auth)")
    timeout: float = Field(default=30.0, gt=0)
    retry_limit: int = retry_limit_field()
    retry_backoff: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _template_fits_the_preset(self) -> WebhookAlerterConfig:
        """A template alone means the custom preset; a template with another preset is a mistake."""
        if self.payload_template and self.preset != "custom":
            if "preset" in self.model_fields_set:
                raise ValueError(f"payload_template is only used by the custom preset, not {self.preset!r}")
            self.preset = "custom"
        if self.preset == "custom":
            if not self.payload_template:
                raise ValueError("payload_template: the custom preset needs a jinja2 template of the JSON body")
            _template(self.payload_template)
        return self


# --- presets -------------------------------------------------------------------------------------


def _shorten(text: str, size: int) -> str:
    """``text`` within ``size`` characters, ending in :data:`SHORTENED` when it had to be cut."""
    return text if len(text) <= size else text[: size - len(SHORTENED)] + SHORTENED


def _html_within(text: str, size: int) -> str:
    """``text`` HTML-escaped within ``size`` characters (escaping can make it up to six times longer)."""
    escaped = html.escape(text)
    if len(escaped) <= size:
        return escaped
    room, kept = size - len(SHORTENED), []
    for char in text[:room]:  # cut between characters, never inside an entity such as &lt;
        piece = html.escape(char)
        if (room := room - len(piece)) < 0:
            break
        kept.append(piece)
    return "".join(kept) + SHORTENED


def _facts(message: AlerterMessage) -> list[tuple[str, str]]:
    """The facts as text: every preset shows them as label and value."""
    return [(str(key), str(value)) for key, value in facts(message.metadata)]


def _exception(message: AlerterMessage) -> str:
    """The exception and its traceback in one text: each preset shows them in a single monospace part."""
    return "\n".join(code_texts(message.alert))


def _quiet_mentions(text: str) -> str:
    """Mattermost's mentions made inert, the words kept.

    Every mention (``@channel``, ``@all``, ``@here``, ``@alice``, ``@ml-oncall``) gets a zero-width
    space after the @; so do the Slack forms
    (``<!channel>``, ``<@U123>``), which Mattermost's webhook expands into mentions, after the <.
    A Slack-style link ``<url|label>`` would become a Markdown link: its ``<`` becomes ``&lt;``.
    """
    while _SLACK_LINK.search(text):  # escaping one < can make an earlier one start a link ("< <a|b>")
        text = _SLACK_LINK.sub("&lt;", text)
    text = _SLACK_TOKEN.sub(f"<{ZWSP}", text)
    return _MATTERMOST_MENTIONS.sub(f"@{ZWSP}", text)


def mattermost(message: AlerterMessage) -> dict[str, Any]:
    """Markdown ``text`` (title, body, exception, log link) and the facts as attachment fields."""
    lines = [f"#### {_quiet_mentions(message.title)}"] if message.title else []
    lines += [_quiet_mentions(_shorten(message.body, MATTERMOST_BODY_LIMIT))] if message.body else []
    if exception := _shorten(_exception(message), EXCEPTION_LIMIT):
        lines.append(f"```\n{_quiet_mentions(escape_fences(exception))}\n```")
    if log_url := web_log_url(message.alert):
        lines.append(f"[View log]({log_url})")
    payload: dict[str, Any] = {"text": "\n\n".join(lines)}
    if facts := _facts(message):
        fields = [{"short": True, "title": _quiet_mentions(k), "value": _quiet_mentions(v)} for k, v in facts]
        fallback = "; ".join(f"{field['title']}: {field['value']}" for field in fields)
        colour = hex_colour(message.alert.kind).upper()
        payload["attachments"] = [{"fallback": fallback, "color": colour, "fields": fields}]
    return payload


def msteams(message: AlerterMessage) -> dict[str, Any]:
    """A Workflows webhook message: one Adaptive Card (title, body, facts, exception, a log button)."""
    body: list[dict[str, Any]] = []
    if message.title:
        body.append({"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True})
    if message.body:
        body.append({"type": "TextBlock", "text": _shorten(message.body, TEXT_LIMIT), "wrap": True})
    if facts := _facts(message):
        body.append({"type": "FactSet", "facts": [{"title": k, "value": cut(v, FACT_LIMIT)} for k, v in facts]})
    if exception := _shorten(_exception(message), EXCEPTION_LIMIT):
        body.append(
            {"type": "TextBlock", "text": exception, "fontType": "Monospace", "wrap": True, "color": "Attention"}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if log_url := web_log_url(message.alert):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "View log", "url": log_url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def google_chat(message: AlerterMessage) -> dict[str, Any]:
    """A plain ``text`` line for notifications, and a cardsV2 card with the details (HTML-escaped)."""
    widgets: list[dict[str, Any]] = []
    if message.body:
        widgets.append({"textParagraph": {"text": _html_within(message.body, TEXT_LIMIT)}})
    widgets += [
        {"decoratedText": {"topLabel": html.escape(k), "text": html.escape(cut(v, FACT_LIMIT)), "wrapText": True}}
        for k, v in _facts(message)
    ]
    if exception := _html_within(_exception(message), EXCEPTION_LIMIT):
        widgets.append({"textParagraph": {"text": f'<b>Exception</b><br><font color="{RED}">{exception}</font>'}})
    if log_url := web_log_url(message.alert):
        button = {"text": "View log", "onClick": {"openLink": {"url": log_url}}}
        widgets.append({"buttonList": {"buttons": [button]}})
    card: dict[str, Any] = {"header": {"title": cut(message.title or EMPTY_MESSAGE_TITLE, 200)}}
    if widgets:  # Google Chat refuses a section without widgets
        card["sections"] = [{"widgets": widgets}]
    return {
        "text": preview(message, 200).replace("<", f"<{ZWSP}"),
        "cardsV2": [{"cardId": "airflow-alert", "card": card}],
    }


PRESETS: dict[str, Callable[[AlerterMessage], dict[str, Any]]] = {
    "mattermost": mattermost,
    "msteams": msteams,
    "google_chat": google_chat,
}


# --- custom templates ----------------------------------------------------------------------------


def _template(source: str) -> Any:
    """The compiled template in jinja2's sandbox; its values' ``|tojson`` never fails (odd types become text)."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False, "default": _json_default}
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        raise ValueError(
            f"payload_template is not a valid jinja2 template (line {err.lineno}: {err.message})"
        ) from None


def _json_default(value: Any) -> Any:
    """``|tojson`` of a value JSON has no type for: a missing name is null, anything else its text."""
    import jinja2

    return None if isinstance(value, jinja2.Undefined) else str(value)


def render_custom(source: str, message: AlerterMessage) -> Any:
    """Render ``source`` with the message's ``title``, ``body``, ``metadata`` and ``text`` (all as one string)."""
    import jinja2

    try:
        rendered = _template(source).render(
            title=message.title, body=message.body, metadata=message.metadata, text=message.as_text()
        )
    except jinja2.TemplateError as err:
        raise AlerterDeliveryError(f"payload_template failed to render: {type(err).__name__}: {err}") from None
    try:
        payload = json.loads(rendered)
    except json.JSONDecodeError as err:
        raise AlerterDeliveryError(
            f"payload_template did not render valid JSON for this message ({err.msg} at line {err.lineno} "
            f"column {err.colno}); pass values through |tojson, e.g. {{{{ body | tojson }}}}"
        ) from None
    if not isinstance(payload, dict | list):
        raise AlerterDeliveryError("payload_template must render a JSON object or array")
    return payload


# --- the flavor ----------------------------------------------------------------------------------


class WebhookAlerter(BaseAlerter[WebhookAlerterConfig, NoSettings, BaseAlerterParameters]):
    """Post alerts to a chat's incoming webhook (Mattermost, Teams, Google Chat, or your own JSON)."""

    FLAVOR: ClassVar[str] = "webhook"
    Config = WebhookAlerterConfig

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """An ``alerter`` connection: the webhook URL in the *password* (masked by Airflow), the rest in extras.

        A URL in ``host`` is refused with a pointer to the password field rather than used: the host
        is shown in the connection list and in logs, and a webhook URL is as good as a password.
        """
        data = {key: value for key, value in conn.extra.items() if key in cls.Config.model_fields}
        if conn.password:
            data.setdefault("webhook_url", conn.password.strip())
        elif "webhook_url" not in data and conn.host:
            raise AlerterConfigError(
                "webhook_url: put the webhook URL in the connection's password field (Airflow masks it there), "
                "not in host"
            )
        return data

    def payload(self, message: str | AlerterMessage) -> Any:
        """The JSON body for ``message`` under the configured preset."""
        message = AlerterMessage.coerce(message)
        if self.config.preset == "custom":
            assert self.config.payload_template is not None  # the config validator sees to it
            return render_custom(self.config.payload_template, message)
        return PRESETS[self.config.preset](message)

    def _deliver(self, message: AlerterMessage, params: BaseAlerterParameters | None) -> None:
        url = self.config.webhook_url.get_secret_value()
        self.warn_if_http(url, "the webhook URL and its headers")
        headers = {name: value.get_secret_value() for name, value in self.config.headers.items()}
        client = JsonClient(
            "the webhook",
            self.config.timeout,
            RetryPolicy.retrying(self.config.retry_limit, self.config.retry_backoff),
            headers,
            secret_url=url,
            expect_json=False,
        )
        try:
            client.call("POST", url, self.payload(message))
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None

    def test_connection(self) -> tuple[bool, str]:
        """Nothing to check without posting: a webhook has no read-only call. ``--send`` posts a test message."""
        return True, f"{self.config.preset} webhook configured (checking it would post a message: use --send)"
