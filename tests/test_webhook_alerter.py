"""The webhook flavor: each preset's payload shape, escaping, custom templates, faults, secrecy of the URL."""

from __future__ import annotations

import pytest

from airflow_alerter import AlerterMessage, AskNotSupported, WebhookAlerter
from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError
from tests.servers.http import Fault
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

ALERT = AlerterMessage(title="Task Failure Alert", body="<b>@channel</b> & friends", metadata={
    "dag_id": "ml", "exception": "ValueError: <script>", "log_url": "http://airflow/log"})


def _post(server: WebhookServer, **config: object) -> object:
    WebhookAlerter({"webhook_url": server.webhook_url, "retry_backoff": 0.01, **config}).deliver(ALERT)
    return server.posts[-1]


def test_mattermost_preset_posts_markdown_with_mentions_neutralised(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="mattermost")

    assert isinstance(payload, dict) and payload["text"].startswith("#### Task Failure Alert")
    assert "@channel" not in payload["text"] and "@\u200bchannel" in payload["text"]
    assert "[View log](http://airflow/log)" in payload["text"]


def test_msteams_preset_posts_an_adaptive_card(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="msteams")

    assert isinstance(payload, dict)
    [attachment] = payload["attachments"]
    card = attachment["content"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == "Task Failure Alert"
    assert {"title": "dag_id", "value": "ml"} in card["body"][2]["facts"]
    assert card["actions"][0]["url"] == "http://airflow/log"


def test_google_chat_preset_posts_cards_v2_with_html_escaped(webhook_server: WebhookServer) -> None:
    payload = _post(webhook_server, preset="google_chat")

    assert isinstance(payload, dict)
    card = payload["cardsV2"][0]["card"]
    widgets = card["sections"][0]["widgets"]
    assert card["header"]["title"] == "Task Failure Alert"
    assert widgets[0]["textParagraph"]["text"] == "&lt;b&gt;@channel&lt;/b&gt; &amp; friends"
    assert "&lt;script&gt;" in str(widgets)


def test_custom_template_renders_json_with_values_escaped(webhook_server: WebhookServer) -> None:
    template = ('{"summary": {{ title | tojson }}, "details": {{ body | tojson }}, '
                '"dag": {{ metadata.dag_id | tojson }}}')
    payload = _post(webhook_server, preset="custom", payload_template=template)

    assert payload == {"summary": "Task Failure Alert", "details": "<b>@channel</b> & friends", "dag": "ml"}


def test_custom_template_that_is_not_json_is_a_clear_error(webhook_server: WebhookServer) -> None:
    alerter = WebhookAlerter({"webhook_url": webhook_server.webhook_url, "preset": "custom",
                              "payload_template": '{"text": "{{ body }}"}'})

    with pytest.raises(AlerterConfigError, match="payload_template did not render valid JSON.*tojson"):
        alerter.deliver(AlerterMessage(body='say "hi"'))


@pytest.mark.parametrize("status, attempts", [(500, 3), (502, 3), (503, 3), (400, 1), (404, 1)])
def test_server_errors_are_retried_and_client_errors_are_not(
    webhook_server: WebhookServer, status: int, attempts: int
) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(status), times=5)

    with pytest.raises(AlerterDeliveryError, match=f"the webhook: HTTP {status}"):
        WebhookAlerter({"webhook_url": webhook_server.webhook_url, "retry_backoff": 0.01}).deliver("x")
    assert len(webhook_server.requests) == attempts


def test_rate_limit_waits_for_retry_after_then_delivers(webhook_server: WebhookServer) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(429, retry_after=0.2))

    WebhookAlerter({"webhook_url": webhook_server.webhook_url, "retry_backoff": 0.01}).deliver("x")

    assert len(webhook_server.posts) == 1


def test_invalid_json_answer_is_reported(webhook_server: WebhookServer) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(200, raw=b"<html>proxy error</html>"))

    with pytest.raises(AlerterDeliveryError, match="not valid JSON"):
        WebhookAlerter({"webhook_url": webhook_server.webhook_url, "retry_limit": 1}).deliver("x")


def test_slow_server_past_the_timeout_is_a_bounded_failure(webhook_server: WebhookServer) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(200, delay=1.5), times=2)

    with pytest.raises(AlerterDeliveryError, match="unreachable.*timed out"):
        WebhookAlerter({"webhook_url": webhook_server.webhook_url, "timeout": 0.3, "retry_limit": 2,
                        "retry_backoff": 0.01}).deliver("x")


def test_the_url_never_appears_in_errors_or_logs(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    webhook_server.fail_next(WEBHOOK_PATH, Fault(503), times=3)
    alerter = WebhookAlerter({"webhook_url": webhook_server.webhook_url, "retry_backoff": 0.01})

    assert alerter.post("x") is False
    assert webhook_server.url not in caplog.text and WEBHOOK_PATH not in caplog.text
    assert webhook_server.webhook_url not in repr(alerter.config)


def test_webhook_cannot_ask() -> None:
    with pytest.raises(AskNotSupported, match="'webhook' alerter flavor cannot ask.*discord, slack"):
        WebhookAlerter({"webhook_url": "http://127.0.0.1:9/x"}).ask("Deploy?")
