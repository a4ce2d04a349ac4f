"""The SMTP fault matrix: each fault a mail server can throw, the attempts it costs and how it ends.

Transient faults (refused or dropped connections, a stalled server, 4xx replies) are retried up to
``retry_limit`` times after the first try, with backoff; permanent ones (5xx, a refused login, an untrusted certificate)
are not retried. Either way the end is bounded: ``post`` returns False and ``deliver`` raises
AlerterDeliveryError naming the cause. docs/reliability.md carries this table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_alerter import AlerterDeliveryError, SMTPEmailAlerter
from tests.plugins.secrets import register_secret
from tests.plugins.smtp import alerter_config
from tests.servers.smtp import RESET, STALL, LocalSMTPServer, free_port

RETRY_LIMIT = 2  # retries after the first try: 3 attempts
ATTEMPTS = RETRY_LIMIT + 1
WRONG_PASSWORD = "not-the-Pa55word"
register_secret(WRONG_PASSWORD)
TIMEOUT = 1.0


@dataclass(frozen=True)
class Fault:
    name: str
    replies: tuple[str, ...]
    attempts: int
    reason: str
    delivered: bool = False


MATRIX = [
    Fault("reset mid-send", (RESET,) * ATTEMPTS, ATTEMPTS, "SMTPServerDisconnected"),
    Fault("stalled past the timeout", (STALL,) * ATTEMPTS, ATTEMPTS, "timed out"),
    Fault("421 service not available", ("421 4.3.2 shutting down",) * ATTEMPTS, ATTEMPTS, "421"),
    Fault("451 local error", ("451 4.3.0 try again later",) * ATTEMPTS, ATTEMPTS, "451"),
    Fault("452 insufficient storage", ("452 4.3.1 mailbox full",) * ATTEMPTS, ATTEMPTS, "452"),
    Fault("550 rejected", ("550 5.7.1 rejected as spam",), 1, "550"),
    Fault("554 transaction failed", ("554 5.0.0 no",), 1, "554"),
    Fault("one 451, then accepted", ("451 4.3.0 try again later",), 2, "", delivered=True),
    Fault("one reset, then accepted", (RESET,), 2, "", delivered=True),
]


@pytest.mark.parametrize("fault", MATRIX, ids=[fault.name for fault in MATRIX])
def test_fault_costs_bounded_attempts_and_ends_clearly(smtp_server: LocalSMTPServer, fault: Fault) -> None:
    smtp_server.reply_next(*fault.replies)
    alerter = SMTPEmailAlerter(alerter_config(smtp_server, retry_limit=RETRY_LIMIT, timeout=TIMEOUT))
    started = time.monotonic()

    if fault.delivered:
        alerter.deliver("hello")
    else:
        with pytest.raises(AlerterDeliveryError, match=fault.reason):
            alerter.deliver("hello")

    assert smtp_server.data_attempts == fault.attempts
    assert len(smtp_server.received) == (1 if fault.delivered else 0)
    # bounded: every attempt ends within the timeout, and the backoff between them is short here
    assert time.monotonic() - started < fault.attempts * (TIMEOUT + 1) + 2


def test_connection_refused_costs_every_attempt_then_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="airflow_alerter")
    config = {"smtp_server": "127.0.0.1", "smtp_port": free_port(), "security": "none", "retry_limit": RETRY_LIMIT,
              "retry_backoff": 0.01, "sender_email": "a@example.com", "recipient_email": "b@example.com"}

    with pytest.raises(AlerterDeliveryError, match="ConnectionRefusedError"):
        SMTPEmailAlerter(config).deliver("hello")
    assert caplog.text.count("retrying in") == RETRY_LIMIT


def test_tls_handshake_failure_is_permanent(smtp_cert: tuple[Path, Path]) -> None:
    # the client insists on implicit TLS, the server speaks plain SMTP: the handshake cannot succeed
    with LocalSMTPServer() as plain:
        config = alerter_config(plain, security="ssl", ssl_ca_file=str(smtp_cert[0]), timeout=TIMEOUT)
        with pytest.raises(AlerterDeliveryError, match="SSL"):
            SMTPEmailAlerter(config).deliver("hello")
        assert plain.data_attempts == 0


def test_refused_login_is_not_retried(smtp_starttls: LocalSMTPServer) -> None:
    with pytest.raises(AlerterDeliveryError, match="refused the login"):
        SMTPEmailAlerter(alerter_config(smtp_starttls, password=WRONG_PASSWORD)).deliver("hello")

    assert smtp_starttls.failed_logins == 2  # PLAIN and LOGIN, once each, on a single connection
