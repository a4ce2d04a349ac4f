"""Fixtures: local SMTP servers (plain, STARTTLS + AUTH, implicit TLS + AUTH) and configs that reach them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.secrets import register_secret
from tests.servers.smtp import LocalSMTPServer, make_self_signed_cert

SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "s3cret-smtp-Pa55word"
register_secret(SMTP_PASSWORD)


@pytest.fixture(autouse=True)
def _no_smtp_connection_outlives_a_test() -> Iterator[None]:
    """Each test starts with no idle SMTP connection kept by the flavor, and leaves none behind."""
    from airflow_alerter.alerters.smtp_pool import POOL

    POOL.close_all()
    yield
    POOL.close_all()


@pytest.fixture(scope="session")
def smtp_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    """Plain SMTP, no AUTH: the simplest relay."""
    with LocalSMTPServer() as server:
        yield server


@pytest.fixture
def smtp_starttls(smtp_cert: tuple[Path, Path]) -> Iterator[LocalSMTPServer]:
    """STARTTLS required, AUTH required (LOGIN/PLAIN) as a real submission port (587) behaves."""
    with LocalSMTPServer(security="starttls", cert=smtp_cert, users={SMTP_USER: SMTP_PASSWORD}) as server:
        yield server


@pytest.fixture
def smtp_ssl(smtp_cert: tuple[Path, Path]) -> Iterator[LocalSMTPServer]:
    """Implicit TLS (port 465 style) with AUTH."""
    with LocalSMTPServer(security="ssl", cert=smtp_cert, users={SMTP_USER: SMTP_PASSWORD}) as server:
        yield server


def alerter_config(server: LocalSMTPServer, **overrides: Any) -> dict[str, Any]:
    """SMTPEmailAlerter config for ``server``: login when it has users, trusting its self-signed cert."""
    config: dict[str, Any] = {
        "smtp_server": server.host, "smtp_port": server.port, "security": server.security,
        "sender_email": SMTP_USER, "recipient_email": ["oncall@example.com"],
        "retry_backoff": 0.01, "timeout": 5,
    }
    if server.users:
        config["password"] = SMTP_PASSWORD
    if server.cert is not None:
        config["ssl_ca_file"] = str(server.cert[0])
    return {**config, **overrides}


@pytest.fixture
def smtp_conn(airflow_conn: Any, smtp_server: LocalSMTPServer) -> str:
    """An Airflow ``smtp`` connection ``ops_email`` to the plain local server, as a user would define it."""
    return str(airflow_conn("ops_email", "smtp", host=smtp_server.host, port=smtp_server.port, extra={
        **smtp_server.connection_extra(), "from_email": "airflow@example.com", "to": "oncall@example.com",
        "retry_backoff": 0.01}))
