"""AlerterHook: existing Airflow connections work unchanged, and bad ones fail with a clear error."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

import pytest

from airflow_alerter import AlerterConfigError, AlerterHook, SMTPEmailAlerter
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER
from tests.servers.smtp import LocalSMTPServer, free_port

DefineConn = Callable[..., str]


@pytest.mark.parametrize("extra, security", [
    ({}, "ssl"),
    ({"disable_ssl": True}, "starttls"),
    ({"disable_ssl": "true", "disable_tls": "true"}, "none"),
])
def test_smtp_connection_keeps_the_smtp_providers_tls_meaning(
    airflow_conn: DefineConn, extra: dict[str, object], security: str
) -> None:
    airflow_conn("mail", "smtp", host="mail.example.com", login=SMTP_USER, password=SMTP_PASSWORD, extra=extra)

    config = AlerterHook("mail").get_alerter().config

    assert config.security == security
    assert (config.smtp_server, config.username, config.sender_email) == ("mail.example.com", SMTP_USER, SMTP_USER)


def test_smtp_connection_extras_map_onto_the_flavor(airflow_conn: DefineConn) -> None:
    airflow_conn("mail", "smtp", host="mail.example.com", port=2525, login="relay-user", password="x", extra={
        "from_email": "airflow@example.com", "timeout": 7, "retry_limit": 2, "disable_ssl": True,
        "recipient_email": "a@example.com, b@example.com", "subject_prefix": "[prod]",
    })

    config = AlerterHook("mail").get_alerter().config

    assert (config.port, config.sender_email, config.timeout, config.retry_limit) == (
        2525, "airflow@example.com", 7, 2)
    assert (config.recipient_email, config.subject_prefix) == (["a@example.com", "b@example.com"], "[prod]")


def test_uri_connection_env_var_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MAIL_URI", f"smtp://{quote(SMTP_USER)}:{SMTP_PASSWORD}@mail.example.com:587"
                       f"?disable_ssl=true&from_email={quote('airflow@example.com')}")

    config = AlerterHook("mail_uri").get_alerter().config

    assert (config.security, config.port, config.password.get_secret_value()) == ("starttls", 587, SMTP_PASSWORD)


def test_alerter_connection_names_its_flavor(airflow_conn: DefineConn) -> None:
    airflow_conn("ops", "alerter", host="mail.example.com", extra={
        "flavor": "smtp_email", "sender_email": "airflow@example.com", "security": "none"})

    alerter = AlerterHook("ops").get_alerter()

    assert isinstance(alerter, SMTPEmailAlerter) and alerter.config.security == "none"


def test_task_settings_override_the_connection(airflow_conn: DefineConn) -> None:
    airflow_conn("mail", "smtp", host="h", extra={"from_email": "a@example.com", "to": "team@example.com"})

    alerter = AlerterHook("mail", settings={"recipient_email": ["me@example.com"]}).get_alerter()

    assert alerter.recipients(None) == ["me@example.com"]


def test_missing_connection_names_it() -> None:
    with pytest.raises(Exception, match="no_such_conn"):
        AlerterHook("no_such_conn").get_alerter()


def test_unsupported_connection_type_says_what_to_use(airflow_conn: DefineConn) -> None:
    airflow_conn("db", "postgres", host="localhost")

    with pytest.raises(AlerterConfigError, match="'db' of type 'postgres' cannot be used as an alerter"):
        AlerterHook("db").get_alerter()


def test_bad_extra_names_the_field_and_hides_the_password(airflow_conn: DefineConn) -> None:
    airflow_conn("mail", "smtp", host="h", password=SMTP_PASSWORD,
                 extra={"from_email": "not-an-address", "timeout": "soon"})

    with pytest.raises(AlerterConfigError) as error:
        AlerterHook("mail").get_alerter()

    assert "'mail'" in str(error.value) and "sender_email" in str(error.value) and "timeout" in str(error.value)
    assert SMTP_PASSWORD not in str(error.value)


def test_connection_reaches_a_real_server(airflow_conn: DefineConn, smtp_server: LocalSMTPServer) -> None:
    extra = {**smtp_server.connection_extra(), "from_email": "a@example.com", "to": "b@example.com"}
    airflow_conn("mail", "smtp", host=smtp_server.host, port=smtp_server.port, extra=json.dumps(extra))

    assert AlerterHook("mail").get_alerter().post("hello") is True
    assert smtp_server.received[0].rcpt_tos == ["b@example.com"]


def test_hook_connection_test_runs_the_flavors_live_check(
    airflow_conn: DefineConn, smtp_server: LocalSMTPServer
) -> None:
    extra = {**smtp_server.connection_extra(), "from_email": "a@example.com"}
    airflow_conn("mail", "smtp", host=smtp_server.host, port=smtp_server.port, extra=extra)
    airflow_conn("mail_down", "smtp", host="127.0.0.1", port=free_port(), extra={**extra, "retry_limit": 0})

    assert AlerterHook("mail").test_connection()[0] is True
    ok, reason = AlerterHook("mail_down").test_connection()
    assert not ok and "could not connect to 127.0.0.1" in reason and "ConnectionRefusedError" in reason


def test_secrets_nested_in_the_config_are_masked_too(airflow_conn: DefineConn) -> None:
    """The webhook flavor's headers are a dict of secrets; Airflow's masker must learn each one."""
    from airflow_alerter._compat import redact

    header_secret = "Bearer nested-Header-Secret-7731"
    conn_id = airflow_conn("nested_secrets", "alerter", password="https://chat.example/hooks/abc",
                           extra=json.dumps({"flavor": "webhook", "headers": {"X-Relay-Signature": header_secret}}))

    AlerterHook(conn_id).get_alerter()

    assert redact(f"sent {header_secret}") == "sent ***"
