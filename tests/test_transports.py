"""Trust issue #14, transports (findings 9 to 13): each test reproduces a finding through the public API.

Findings 7 (redirects) and 8 (transport errors) have their own homes: tests/test_redirects.py and
the fault matrix (tests/test_fault_matrix.py). docs/reliability.md lists every finding with its test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_alerter import AlerterDeliveryError, AlerterMessage
from airflow_alerter.alerters.base import AlerterConfigError, BaseAlerter
from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.alerters.smtp_email import SMTPEmailAlerter
from airflow_alerter.alerters.webhook import WebhookAlerter
from airflow_alerter.hooks.alerter import AlerterHook  # imports Airflow, which sets up logging, before any test
from airflow_alerter.models import AskResult, AskStatus
from tests.plugins.discord import discord_config, discord_webhook_config
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.plugins.slack import CHANNEL, slack_config
from tests.plugins.smtp import SMTP_USER, alerter_config
from tests.plugins.webhook import webhook_config
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.http import Fault
from tests.servers.slack_api import WEBHOOK_PATH as SLACK_WEBHOOK_PATH
from tests.servers.slack_api import SlackAPIServer
from tests.servers.smtp import LocalSMTPServer
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

# --- 13. small escapes ---------------------------------------------------------------------------


def test_a_slack_webhook_error_does_not_echo_the_secret_url(slack_api: SlackAPIServer) -> None:
    """A proxy or Slack itself may quote the URL it was asked for; the error must not pass it on."""
    slack_api.fail_next(SLACK_WEBHOOK_PATH, Fault(status=404, raw=f"no_service for {SLACK_WEBHOOK_PATH}".encode()))
    alerter = SlackAlerter({"webhook_url": slack_api.webhook_url, "retry_limit": 0})

    with pytest.raises(AlerterDeliveryError, match="404") as caught:
        alerter.deliver("the nightly load failed")

    assert_no_secrets(str(caught.value), where="the Slack webhook error")
    assert "no_service" in str(caught.value)


def test_slack_conclude_escapes_the_question_once(slack_api: SlackAPIServer) -> None:
    alerter = SlackAlerter(slack_config(slack_api))
    handle = alerter.send_question("Is a < b & c > d?")

    alerter.conclude(handle, AskResult(status=AskStatus.APPROVED, responder="UALICE01"))

    [question] = slack_api.questions(CHANNEL)
    shown = question["blocks"][0]["text"]["text"]
    assert "a &lt; b &amp; c &gt; d" in shown
    assert "&amp;lt;" not in shown and "&amp;amp;" not in shown


def test_a_discord_webhook_url_with_a_query_keeps_it_and_adds_wait(discord_api: DiscordAPIServer) -> None:
    alerter = DiscordAlerter(discord_webhook_config(discord_api, webhook_url=f"{discord_api.webhook_url}?thread_id=42"))

    assert alerter.post("the nightly load failed") is True

    [request] = [r for r in discord_api.requests if r.method == "POST"]
    assert request.query == {"thread_id": "42", "wait": "true"}


@pytest.mark.parametrize("log_url", ["javascript:alert(document.cookie)", "data:text/html,<b>x</b>", "ftp://x/y"])
def test_an_email_log_url_that_is_not_http_is_no_link(smtp_server: LocalSMTPServer, log_url: str) -> None:
    message = AlerterMessage(title="Task Failure Alert", body="load failed", metadata={"log_url": log_url})

    assert SMTPEmailAlerter(alerter_config(smtp_server)).post(message) is True

    [email] = smtp_server.received
    html = email.part("html") or ""
    assert log_url.split(":")[0] + ":" not in html
    assert "View task log" not in html


def test_an_email_log_url_that_is_http_stays_a_link(smtp_server: LocalSMTPServer) -> None:
    message = AlerterMessage(title="Task Failure Alert", body="load failed",
                             metadata={"log_url": "https://airflow.example.com/log?x=1"})

    assert SMTPEmailAlerter(alerter_config(smtp_server)).post(message) is True

    assert 'href="https://airflow.example.com/log?x=1"' in (smtp_server.received[0].part("html") or "")


# --- 11. a mistyped extra on an `alerter` connection is refused, for every flavor, by the hook ------------------


@pytest.mark.parametrize("flavor, password, extra", [
    ("smtp_email", "pw-never-shown-1", {"smtp_server": "127.0.0.1", "sender_email": "a@example.com",
                                        "recipent_email": "oncall@example.com"}),
    ("slack", "xoxb-never-shown-1", {"channel": "C1", "chanel": "C2"}),
    ("discord", "discord-never-shown-1", {"channel_id": "1", "channelid": "2"}),
    ("webhook", "https://chat.example/hook/never-shown-1", {"preset": "msteams", "header": {"X": "1"}}),
])
def test_an_unknown_extra_on_an_alerter_connection_is_refused_naming_the_key(
    airflow_conn: Callable[..., str], flavor: str, password: str, extra: dict[str, Any]
) -> None:
    airflow_conn("typo", "alerter", password=password, extra=json.dumps({"flavor": flavor, **extra}))
    typo = next(key for key in extra if key in {"recipent_email", "chanel", "channelid", "header"})

    with pytest.raises(AlerterConfigError, match=f"unknown key\\(s\\) '{typo}'") as caught:
        AlerterHook("typo").get_alerter()

    assert "'typo'" in str(caught.value) and password not in str(caught.value)


def test_the_extras_an_smtp_connection_carries_from_the_smtp_provider_are_known(
    airflow_conn: Callable[..., str], smtp_server: LocalSMTPServer
) -> None:
    airflow_conn("mail", "alerter", host=smtp_server.host, port=smtp_server.port, extra=json.dumps({
        "flavor": "smtp_email", "from_email": "airflow@example.com", "to": "oncall@example.com",
        "disable_ssl": True, "disable_tls": True}))

    assert AlerterHook("mail").get_alerter().post("the nightly load failed") is True


# --- 10. retry_limit: the number of retries after the first try, in every flavor ----------------------------


def _retrying_alerter(flavor: str, retry_limit: int, servers: dict[str, Any]) -> tuple[BaseAlerter, Callable[[], int]]:
    """An alerter of ``flavor`` whose every send fails transiently, and a count of the attempts its server saw."""
    slack, discord, webhook, smtp = servers["slack"], servers["discord"], servers["webhook"], servers["smtp"]
    quick = {"retry_limit": retry_limit}
    if flavor == "smtp_email":
        smtp.reply_next(*["451 4.3.0 try again later"] * 10)
        return SMTPEmailAlerter(alerter_config(smtp, **quick)), lambda: int(smtp.data_attempts)
    http_flavors: dict[str, tuple[Any, str, Callable[[], BaseAlerter]]] = {
        "slack bot": (slack, "chat.postMessage", lambda: SlackAlerter(slack_config(slack, **quick))),
        "slack webhook": (slack, SLACK_WEBHOOK_PATH, lambda: SlackAlerter({"webhook_url": slack.webhook_url, **quick})),
        "discord bot": (discord, "/messages", lambda: DiscordAlerter(discord_config(discord, **quick))),
        "discord webhook": (discord, "/webhooks/", lambda: DiscordAlerter(discord_webhook_config(discord, **quick))),
        "webhook": (webhook, WEBHOOK_PATH, lambda: WebhookAlerter(webhook_config(webhook, **quick))),
    }
    server, path, build = http_flavors[flavor]
    server.fail_next(path, Fault(status=503), times=10)
    return build(), lambda: sum(1 for request in server.requests if path in request.path)


@pytest.mark.parametrize("retry_limit, attempts", [(0, 1), (2, 3)])
@pytest.mark.parametrize("flavor", ["slack bot", "slack webhook", "discord bot", "discord webhook", "webhook",
                                    "smtp_email"])
def test_retry_limit_counts_the_retries_after_the_first_try_in_every_flavor(
    flavor: str, retry_limit: int, attempts: int, slack_api: SlackAPIServer, discord_api: DiscordAPIServer,
    webhook_server: WebhookServer, smtp_server: LocalSMTPServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the backoff between attempts, not under test here
    servers = {"slack": slack_api, "discord": discord_api, "webhook": webhook_server, "smtp": smtp_server}
    alerter, attempts_seen = _retrying_alerter(flavor, retry_limit, servers)

    assert alerter.post("the nightly load failed") is False

    assert attempts_seen() == attempts


def test_an_airflow_smtp_connection_with_retry_limit_0_works(
    airflow_conn: Callable[..., str], smtp_server: LocalSMTPServer
) -> None:
    """Airflow's smtp provider calls it "Number of Retries" and allows 0."""
    airflow_conn("ops_email", "smtp", host=smtp_server.host, port=smtp_server.port, extra=json.dumps({
        **smtp_server.connection_extra(), "from_email": "airflow@example.com", "to": "oncall@example.com",
        "retry_limit": 0}))

    assert AlerterHook("ops_email").get_alerter().post("the nightly load failed") is True
    assert len(smtp_server.received) == 1


# --- 9. a non-ASCII SMTP password -------------------------------------------------------------------------------

UTF8_PASSWORD = "pässwörd-Ünïcødé-€-密码"
register_secret(UTF8_PASSWORD)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_utf8_smtp_password_logs_in_to_post_and_to_test_the_connection(
    smtp_cert: tuple[Path, Path], mechanism: str
) -> None:
    users = {SMTP_USER: UTF8_PASSWORD}
    with LocalSMTPServer(security="starttls", cert=smtp_cert, users=users, auth_mechanisms=(mechanism,)) as server:
        alerter = SMTPEmailAlerter(alerter_config(server, password=UTF8_PASSWORD))

        assert alerter.post("the nightly load failed") is True
        ok, reason = alerter.test_connection()

        assert ok, reason
        assert [item.login for item in server.received] == [SMTP_USER]
        assert server.mechanisms_used == [mechanism, mechanism]


def test_a_wrong_utf8_password_is_refused_without_showing_any_of_it(smtp_starttls: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_starttls, password=UTF8_PASSWORD))

    with pytest.raises(AlerterDeliveryError, match="refused the login") as caught:
        alerter.deliver("the nightly load failed")
    ok, reason = alerter.test_connection()

    assert not ok and "refused the login" in reason
    for char in set(UTF8_PASSWORD) - set("-"):
        if not char.isascii():
            assert char not in str(caught.value) + reason


# --- 12. one warning per connection and process for cleartext ------------------------------------------------------


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if no alerter had warned yet in this process (the warning is once per connection and process)."""
    import airflow_alerter.alerters.base

    monkeypatch.setattr(airflow_alerter.alerters.base, "_WARNED_CLEARTEXT", set())


def _cleartext_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "unencrypted" in r.getMessage()]


@pytest.mark.parametrize("kind", ["webhook", "discord webhook", "slack webhook", "slack bot", "smtp login"])
def test_cleartext_is_used_with_one_warning_naming_the_connection_never_the_secret(
    kind: str, airflow_conn: Callable[..., str], webhook_server: WebhookServer, discord_api: DiscordAPIServer,
    slack_api: SlackAPIServer, caplog: pytest.LogCaptureFixture, fresh_process: None,
) -> None:
    from tests.plugins.smtp import SMTP_PASSWORD
    from tests.servers.slack_api import BOT_TOKEN

    caplog.set_level("WARNING")
    conn_id = f"plain_{kind.replace(' ', '_')}"
    smtp = LocalSMTPServer(security="none", users={SMTP_USER: SMTP_PASSWORD})
    connections: dict[str, Callable[[], str]] = {
        "webhook": lambda: airflow_conn(conn_id, "alerter", password=webhook_server.webhook_url,
                                        extra=json.dumps({"flavor": "webhook"})),
        "discord webhook": lambda: airflow_conn(conn_id, "alerter", password=discord_api.webhook_url,
                                                extra=json.dumps({"flavor": "discord"})),
        "slack webhook": lambda: airflow_conn(conn_id, "slackwebhook", password=slack_api.webhook_url),
        "slack bot": lambda: airflow_conn(conn_id, "slack", password=BOT_TOKEN,
                                          extra=json.dumps({"base_url": slack_api.base_url, "channel": CHANNEL})),
        "smtp login": lambda: airflow_conn(conn_id, "smtp", host=smtp.host, port=smtp.port, login=SMTP_USER,
                                           password=SMTP_PASSWORD, extra=json.dumps({
                                               **smtp.connection_extra(), "to": "oncall@example.com"})),
    }
    connections[kind]()
    with smtp:
        for _ in range(3):
            assert AlerterHook(conn_id).get_alerter().post("the nightly load failed") is True

    [warning] = _cleartext_warnings(caplog)
    assert f"'{conn_id}'" in warning
    assert_no_secrets(caplog.text, where="the cleartext warning")
    assert "/hooks/" not in warning and "/services/" not in warning and "/webhooks/" not in warning


def test_an_encrypted_connection_gets_no_cleartext_warning(
    smtp_starttls: LocalSMTPServer, caplog: pytest.LogCaptureFixture, fresh_process: None
) -> None:
    caplog.set_level("WARNING")

    assert SMTPEmailAlerter(alerter_config(smtp_starttls)).post("the nightly load failed") is True

    assert _cleartext_warnings(caplog) == []


def test_without_a_connection_the_warning_names_the_flavor(
    webhook_server: WebhookServer, caplog: pytest.LogCaptureFixture, fresh_process: None
) -> None:
    caplog.set_level("WARNING")
    alerter = WebhookAlerter(webhook_config(webhook_server, headers={"X-Api-Key": "cleartext-Key-Secret-1"}))
    register_secret("cleartext-Key-Secret-1")

    assert alerter.post("the nightly load failed") is True

    [warning] = _cleartext_warnings(caplog)
    assert "webhook" in warning
    assert_no_secrets(caplog.text, where="the cleartext warning")
