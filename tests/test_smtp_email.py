"""The smtp_email flavor against a real SMTP server: what a recipient gets, and what happens when things go wrong."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from airflow_alerter import (
    AlerterConfigError,
    AlerterDeliveryError,
    AlerterMessage,
    SMTPEmailAlerter,
    SMTPEmailAlerterParameters,
    SMTPEmailAlerterPayload,
)
from tests.plugins.secrets import register_secret
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER, alerter_config
from tests.servers.smtp import LocalSMTPServer, free_port

WRONG_PASSWORD = "wrong-Pa55word-42"
register_secret(WRONG_PASSWORD)

FAILURE = AlerterMessage(
    title="Task Failure Alert",
    body="Task train failed.",
    metadata={"kind": "failure", "dag_id": "train_model", "task_id": "train", "exception": "ValueError: boom"},
)


def test_post_delivers_over_starttls_with_login(smtp_starttls: LocalSMTPServer) -> None:
    assert SMTPEmailAlerter(alerter_config(smtp_starttls)).post(FAILURE) is True

    [received] = smtp_starttls.received
    assert received.login == SMTP_USER
    assert received.rcpt_tos == ["oncall@example.com"]
    assert received.message["Subject"] == "[Airflow] Task Failure Alert"


@pytest.mark.parametrize("mechanism", ["LOGIN", "PLAIN"])
def test_login_works_with_either_auth_mechanism(smtp_cert: tuple[Path, Path], mechanism: str) -> None:
    with LocalSMTPServer(security="starttls", cert=smtp_cert, users={SMTP_USER: SMTP_PASSWORD},
                         auth_mechanisms=(mechanism,)) as server:
        assert SMTPEmailAlerter(alerter_config(server)).post("hello") is True

    assert server.received[0].login == SMTP_USER
    assert server.mechanisms_used == [mechanism]


def test_post_delivers_over_implicit_tls(smtp_ssl: LocalSMTPServer) -> None:
    assert SMTPEmailAlerter(alerter_config(smtp_ssl)).post("model trained") is True

    assert smtp_ssl.received[0].part("plain").strip() == "model trained"


def test_email_has_text_and_html_alternatives(smtp_server: LocalSMTPServer) -> None:
    SMTPEmailAlerter(alerter_config(smtp_server)).post(FAILURE)

    message = smtp_server.received[0].message
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    text, html = smtp_server.received[0].part("plain"), smtp_server.received[0].part("html")
    for fact in ("train_model", "train", "ValueError: boom"):
        assert fact in text and fact in html


def test_include_html_false_sends_plain_text_only(smtp_server: LocalSMTPServer) -> None:
    SMTPEmailAlerter(alerter_config(smtp_server), settings={"include_html": False}).post(FAILURE)

    message = smtp_server.received[0].message
    assert message.get_content_type() == "text/plain"


def test_script_in_body_arrives_escaped(smtp_server: LocalSMTPServer) -> None:
    SMTPEmailAlerter(alerter_config(smtp_server)).post(AlerterMessage(title="x", body="<script>alert(1)</script>"))

    html = smtp_server.received[0].part("html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_user_html_body_is_sent_as_given(smtp_server: LocalSMTPServer) -> None:
    own_html = "<html><body><h1 style='color:green'>Model v7 deployed</h1></body></html>"
    SMTPEmailAlerter(alerter_config(smtp_server)).post("deployed", SMTPEmailAlerterParameters(html_body=own_html))

    assert smtp_server.received[0].part("html").strip() == own_html


def test_non_ascii_subject_and_body_arrive_intact(smtp_server: LocalSMTPServer) -> None:
    message = AlerterMessage(title="Échec du modèle 🚨 נכשל", body="Größe: 42 — ✓ 日本語")
    SMTPEmailAlerter(alerter_config(smtp_server)).post(message)

    received = smtp_server.received[0]
    assert received.message["Subject"] == "[Airflow] Échec du modèle 🚨 נכשל"
    assert "Größe: 42 — ✓ 日本語" in received.part("plain")


def test_long_subject_is_cut_to_one_sane_line(smtp_server: LocalSMTPServer) -> None:
    SMTPEmailAlerter(alerter_config(smtp_server)).post(AlerterMessage(title="x" * 500))

    subject = smtp_server.received[0].message["Subject"]
    assert len(subject) == 200 and subject.endswith("…")


def test_payload_fills_the_run_details(smtp_server: LocalSMTPServer) -> None:
    payload = SMTPEmailAlerterPayload(pipeline_name="training", step_name="evaluate", stack_name="prod",
                                      dag_id="train_model", try_number=2)
    SMTPEmailAlerter(alerter_config(smtp_server)).post("eval done", SMTPEmailAlerterParameters(payload=payload))

    text = smtp_server.received[0].part("plain")
    for line in ("Pipeline name: training", "Step name: evaluate", "Stack name: prod", "DAG: train_model",
                 "Try number: 2"):
        assert line in text


def test_call_parameters_override_task_settings_which_override_the_connection(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server, subject_prefix="[conn]"),
                               settings={"recipient_email": "team@example.com", "subject_prefix": "[task]"})
    alerter.post(AlerterMessage(title="a"))
    alerter.post(AlerterMessage(title="b"), SMTPEmailAlerterParameters(recipient_email=["me@example.com"],
                                                                        subject="Custom subject"))

    first, second = smtp_server.received
    assert (first.rcpt_tos, first.message["Subject"]) == (["team@example.com"], "[task] a")
    assert (second.rcpt_tos, second.message["Subject"]) == (["me@example.com"], "Custom subject")


def test_cc_is_a_header_and_bcc_only_an_envelope_recipient(smtp_server: LocalSMTPServer) -> None:
    params = SMTPEmailAlerterParameters(cc=["lead@example.com"], bcc=["audit@example.com"])
    SMTPEmailAlerter(alerter_config(smtp_server)).post("hello", params)

    received = smtp_server.received[0]
    assert sorted(received.rcpt_tos) == ["audit@example.com", "lead@example.com", "oncall@example.com"]
    assert received.message["Cc"] == "lead@example.com"
    assert "audit@example.com" not in received.raw.decode()


@pytest.mark.parametrize("field, params", [
    ("subject", {"subject": "Alert\r\nBcc: victim@example.com"}),
    ("recipient_email", {"recipient_email": ["ops@example.com\nBcc: victim@example.com"]}),
])
def test_crlf_header_injection_is_refused_naming_the_field(field: str, params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=field):
        SMTPEmailAlerterParameters.model_validate(params)


def test_crlf_in_title_is_refused() -> None:
    with pytest.raises(ValueError, match="title must be a single line"):
        AlerterMessage(title="Alert\nBcc: victim@example.com")


def test_invalid_address_fails_validation_naming_the_field(smtp_server: LocalSMTPServer) -> None:
    with pytest.raises(AlerterConfigError, match="recipient_email.*not-an-address"):
        SMTPEmailAlerter(alerter_config(smtp_server, recipient_email="not-an-address"))


def test_no_recipient_anywhere_is_a_clear_error(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server, recipient_email=[]))

    with pytest.raises(AlerterConfigError, match="recipient_email: no recipient configured"):
        alerter.deliver("hello")


def test_wrong_password_fails_clearly_without_the_password(
    smtp_starttls: LocalSMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_starttls, password=WRONG_PASSWORD))

    with pytest.raises(AlerterDeliveryError, match="refused the login of 'alerts@example.com'") as error:
        alerter.deliver("hello")
    # smtplib tries the server's two mechanisms (PLAIN, LOGIN) on one connection; a retry would double it
    assert smtp_starttls.failed_logins == 2, "an auth failure is permanent: no retry"
    assert alerter.post("hello") is False
    assert WRONG_PASSWORD not in str(error.value)


def test_server_down_is_retried_then_reported(caplog: pytest.LogCaptureFixture) -> None:
    config = {"smtp_server": "127.0.0.1", "smtp_port": free_port(), "security": "none",
              "sender_email": SMTP_USER, "recipient_email": "oncall@example.com",
              "retry_limit": 2, "retry_backoff": 0.01}
    caplog.set_level(logging.INFO, logger="airflow_alerter")

    assert SMTPEmailAlerter(config).post("hello") is False

    assert caplog.text.count("retrying in") == 2
    assert "ConnectionRefusedError" in caplog.text


def test_transient_451_is_retried_until_accepted(smtp_server: LocalSMTPServer) -> None:
    smtp_server.reply_next("451 4.3.0 Mail server temporarily rejected message")

    assert SMTPEmailAlerter(alerter_config(smtp_server)).post("hello") is True
    assert len(smtp_server.received) == 1


def test_permanent_550_is_not_retried(smtp_server: LocalSMTPServer) -> None:
    smtp_server.reply_next("550 5.7.1 Message rejected", "250 would have been accepted on a retry")

    with pytest.raises(AlerterDeliveryError, match="550 5.7.1 Message rejected"):
        SMTPEmailAlerter(alerter_config(smtp_server)).deliver("hello")
    assert smtp_server.received == []


def test_untrusted_certificate_is_refused_without_retry(smtp_starttls: LocalSMTPServer) -> None:
    config = alerter_config(smtp_starttls)
    del config["ssl_ca_file"]

    with pytest.raises(AlerterDeliveryError, match="SSLCertVerificationError"):
        SMTPEmailAlerter(config).deliver("hello")


def test_password_is_not_shown_in_the_config_repr() -> None:
    alerter = SMTPEmailAlerter({"smtp_server": "localhost", "sender_email": SMTP_USER, "password": SMTP_PASSWORD})

    assert SMTP_PASSWORD not in repr(alerter.config) and SMTP_PASSWORD not in str(alerter.config.model_dump())


def test_connection_check_logs_in_and_sends_nothing(smtp_starttls: LocalSMTPServer) -> None:
    ok, reason = SMTPEmailAlerter(alerter_config(smtp_starttls)).test_connection()

    assert ok, reason
    assert "logged in as 'alerts@example.com'" in reason and "NOOP answered 250" in reason
    assert smtp_starttls.received == []


def test_connection_check_reports_a_refused_login(smtp_starttls: LocalSMTPServer) -> None:
    ok, reason = SMTPEmailAlerter(alerter_config(smtp_starttls, password=WRONG_PASSWORD)).test_connection()

    assert not ok and "refused the login" in reason and WRONG_PASSWORD not in reason
