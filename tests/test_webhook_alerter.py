"""The webhook flavor: each preset's payload, escaping per target, custom templates, faults, secrecy of the URL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from airflow_alerter import AlerterMessage, AskNotSupported, WebhookAlerter
from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError, ConnectionFields
from tests.plugins.webhook import webhook_config
from tests.servers.http import Fault
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

ALERT = AlerterMessage(
    title="Task Failure Alert",
    body="<b>@channel</b> & friends",
    metadata={"kind": "failure", "dag_id": "ml", "exception": "ValueError: <script>", "log_url": "http://airflow/log"},
)
TOKEN = WEBHOOK_PATH.rsplit("/", 1)[-1]


def _post(server: WebhookServer, message: AlerterMessage = ALERT, **config: object) -> Any:
    WebhookAlerter(webhook_config(server, **config)).deliver(message)
    return server.posts[-1]


# --- presets -------------------------------------------------------------------------------------


def test_mattermost_preset_posts_markdown_text(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="mattermost")

    assert payload["text"] == (
        "#### Task Failure Alert\n\n<b>@\u200bchannel</b> & friends\n\n```\nValueError: <script>\n```\n\n"
        "[View log](http://airflow/log)"
    )


@pytest.mark.parametrize("mention", ["@channel", "@all", "@here", "@HERE", "@alice", "@ml-oncall", "@first.last"])
def test_mattermost_mentions_of_the_channel_users_and_groups_notify_nobody(
    webhook_server: WebhookServer, mention: str
) -> None:
    payload = _post(webhook_server, AlerterMessage(title=mention, body=f"cc {mention}", metadata={"who": mention}))

    assert mention not in str(payload) and f"@\u200b{mention[1:]}" in payload["text"]


def test_mattermost_facts_become_attachment_fields_coloured_by_kind(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="mattermost")

    assert payload["attachments"] == [
        {"fallback": "dag_id: ml", "color": "#DE350B", "fields": [{"short": True, "title": "dag_id", "value": "ml"}]}
    ]


def test_msteams_preset_posts_an_adaptive_card(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="msteams")

    [attachment] = payload["attachments"]
    card = attachment["content"]
    assert payload["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard"
    assert [block["type"] for block in card["body"]] == ["TextBlock", "TextBlock", "FactSet", "TextBlock"]
    assert card["body"][1]["text"] == "<b>@channel</b> & friends"  # a TextBlock shows text, never HTML
    assert card["body"][2]["facts"] == [{"title": "dag_id", "value": "ml"}]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "View log", "url": "http://airflow/log"}]


def test_a_log_url_that_is_not_a_web_address_is_left_out_of_the_card(webhook_server: WebhookServer) -> None:
    payload = _post(
        webhook_server, AlerterMessage(title="t", metadata={"log_url": "javascript:alert(1)"}), preset="msteams"
    )

    assert "actions" not in payload["attachments"][0]["content"]


def test_google_chat_preset_posts_cards_v2_with_html_escaped(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="google_chat")

    card = payload["cardsV2"][0]["card"]
    widgets = card["sections"][0]["widgets"]
    assert card["header"]["title"] == "Task Failure Alert"
    assert widgets[0] == {"textParagraph": {"text": "&lt;b&gt;@channel&lt;/b&gt; &amp; friends"}}
    assert widgets[1]["decoratedText"]["topLabel"] == "dag_id"
    assert "ValueError: &lt;script&gt;" in widgets[2]["textParagraph"]["text"]
    assert widgets[3]["buttonList"]["buttons"][0]["onClick"] == {"openLink": {"url": "http://airflow/log"}}


def test_google_chat_card_with_only_a_title_has_no_empty_section(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, AlerterMessage(title="Nightly load done"), preset="google_chat")

    assert payload["cardsV2"][0]["card"] == {"header": {"title": "Nightly load done"}}


@pytest.mark.parametrize("preset", ["mattermost", "msteams", "google_chat"])
def test_the_traceback_follows_the_exception(webhook_server: WebhookServer, preset: str) -> None:
    message = AlerterMessage(title="t", metadata={"exception": "KeyError: x", "traceback": "File dag.py, line 3"})

    payload = _post(webhook_server, message, preset=preset)

    assert "KeyError: x\\nFile dag.py, line 3" in json.dumps(payload)


# --- custom templates ----------------------------------------------------------------------------


def test_custom_template_values_through_tojson_stay_json(webhook_server: WebhookServer) -> None:
    template = (
        '{"summary": {{ title | tojson }}, "details": {{ body | tojson }}, "dag": {{ metadata.dag_id | tojson }}}'
    )
    tricky = AlerterMessage(title='say "hi"', body='line1\nline2 \\ </script> {"x": 1}', metadata={"dag_id": "ml"})

    payload = _post(webhook_server, tricky, preset="custom", payload_template=template)

    assert payload == {"summary": 'say "hi"', "details": 'line1\nline2 \\ </script> {"x": 1}', "dag": "ml"}


def test_a_template_alone_selects_the_custom_preset() -> None:
    alerter = WebhookAlerter({"webhook_url": "https://chat.example/hook", "payload_template": "{}"})

    assert alerter.config.preset == "custom"


def test_a_template_with_another_preset_is_a_config_error() -> None:
    with pytest.raises(AlerterConfigError, match="payload_template is only used by the custom preset"):
        WebhookAlerter({"webhook_url": "https://chat.example/hook", "preset": "msteams", "payload_template": "{}"})


def test_custom_template_with_a_syntax_error_fails_when_the_alerter_is_built() -> None:
    with pytest.raises(AlerterConfigError, match="not a valid jinja2 template \\(line 1: "):
        WebhookAlerter({"webhook_url": "https://chat.example/hook", "preset": "custom", "payload_template": "{{ x"})


def test_custom_template_that_renders_broken_json_is_a_clear_delivery_failure(webhook_server: WebhookServer) -> None:
    alerter = WebhookAlerter(webhook_config(webhook_server, payload_template='{"text": "{{ body }}"}'))

    with pytest.raises(AlerterDeliveryError, match="did not render valid JSON for this message.*\\| ?tojson"):
        alerter.deliver(AlerterMessage(body='say "hi"'))
    assert webhook_server.posts == []


def test_custom_template_renders_missing_values_as_null_and_dates_as_text(webhook_server: WebhookServer) -> None:
    template = '{"when": {{ metadata.logical_date | tojson }}, "nope": {{ metadata.missing.deeper | tojson }}}'
    message = AlerterMessage(metadata={"logical_date": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)})

    assert _post(webhook_server, message, payload_template=template) == {
        "when": "2026-01-02 03:04:00+00:00",
        "nope": None,
    }


def test_custom_template_runs_in_a_sandbox(webhook_server: WebhookServer) -> None:
    template = '{"x": {{ title.__class__.__mro__[1].__subclasses__() | tojson }}}'

    with pytest.raises(AlerterDeliveryError, match="SecurityError"):
        WebhookAlerter(webhook_config(webhook_server, payload_template=template)).deliver("x")


# --- transport -----------------------------------------------------------------------------------


def test_rate_limit_waits_for_retry_after_then_delivers(webhook_server: WebhookServer) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(429, retry_after=0.2))

    WebhookAlerter(webhook_config(webhook_server)).deliver("x")

    assert len(webhook_server.posts) == 1 and len(webhook_server.requests) == 2


@pytest.mark.parametrize("answer", [b"ok", b"1", b"", b"<html>accepted</html>"])
def test_any_2xx_answer_counts_as_delivered(webhook_server: WebhookServer, answer: bytes) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(200, raw=answer))

    assert WebhookAlerter(webhook_config(webhook_server)).post("x") is True
    assert len(webhook_server.requests) == 1  # delivered once: a plain-text answer is not a reason to post again


def test_extra_headers_are_sent_and_kept_secret(webhook_server: WebhookServer) -> None:
    alerter = WebhookAlerter(webhook_config(webhook_server, headers={"Authorization": "Bearer hdr-Secret-42"}))

    alerter.deliver("x")

    assert webhook_server.requests[0].headers["authorization"] == "Bearer hdr-Secret-42"
    assert "hdr-Secret-42" not in repr(alerter.config)


def test_the_url_never_appears_in_errors_or_logs(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    echo = f'{{"message": "unknown hook {webhook_server.webhook_url} ({WEBHOOK_PATH})"}}'.encode()
    webhook_server.fail_next(WEBHOOK_PATH, Fault(503), times=2)
    webhook_server.fail_next(WEBHOOK_PATH, Fault(404, raw=echo))
    alerter = WebhookAlerter(webhook_config(webhook_server))

    assert alerter.post("x") is False

    assert "the webhook: HTTP 404 (unknown hook <redacted> (<redacted>))" in caplog.text
    assert TOKEN not in caplog.text and webhook_server.url not in caplog.text and TOKEN not in repr(alerter.config)


def test_webhook_cannot_ask() -> None:
    # the error names the flavor; the sensor and the CLI add which flavors can ask (tests/test_exceptions.py)
    with pytest.raises(AskNotSupported, match="'webhook' alerter flavor cannot ask") as error:
        WebhookAlerter({"webhook_url": "https://chat.example/hook"}).ask("Deploy?")
    assert error.value.flavor == "webhook"


# --- connections ---------------------------------------------------------------------------------


def test_alerter_connection_keeps_the_url_in_its_password() -> None:
    conn = ConnectionFields(
        "w", "alerter", password="https://chat.example/hook/abc", extra={"flavor": "webhook", "preset": "google_chat"}
    )

    assert WebhookAlerter.config_from_connection(conn) == {
        "webhook_url": "https://chat.example/hook/abc",
        "preset": "google_chat",
    }


def test_a_url_in_the_host_field_is_refused_with_a_pointer_to_the_password() -> None:
    conn = ConnectionFields("w", "alerter", host="https://chat.example/hook/Sekrit", extra={"flavor": "webhook"})

    with pytest.raises(AlerterConfigError, match="put the webhook URL in the connection's password field") as err:
        WebhookAlerter.config_from_connection(conn)
    assert "Sekrit" not in str(err.value)


def test_a_webhook_url_must_be_a_web_address_and_the_error_does_not_echo_it() -> None:
    with pytest.raises(AlerterConfigError, match="webhook_url: Value error, must be an http\\(s\\):// URL") as err:
        WebhookAlerter({"webhook_url": "chat.example/hook/Sekrit"})
    assert "Sekrit" not in str(err.value)


def test_an_email_address_in_a_mattermost_post_is_left_as_it_is(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, AlerterMessage(title="Owner", body="mail ops@example.com"))

    assert "mail ops@example.com" in payload["text"]
