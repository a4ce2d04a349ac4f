"""Fixtures: real Postfix and Dovecot (tests/servers/mail_system.py), installed and started once per session.

``mail_system`` installs Debian's packages when they are missing and starts a private instance of
each; where that cannot be done (not root, no apt-get, no network) every test that uses it is
skipped with the step that failed, never passed. ``mailboxes`` empties every user's INBOX first.
:func:`imap_settings` gives the package's IMAP client settings for one user (STARTTLS or implicit
TLS). The end of the run prints what installing and starting cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_alerter.alerters.imap import ImapSettings
from tests.plugins.secrets import register_secret
from tests.servers.mail_install import MailSystemUnavailable, ensure_installed
from tests.servers.mail_system import MailSystem

_TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def mail_system() -> Iterator[MailSystem]:
    try:
        _TIMINGS["install"] = ensure_installed()
    except MailSystemUnavailable as err:
        pytest.skip(f"no real mail servers: {err}")
    system = MailSystem()
    register_secret(*system.users.values())
    with system:
        _TIMINGS["start"] = system.startup_seconds
        yield system


@pytest.fixture
def mailboxes(mail_system: MailSystem) -> MailSystem:
    """The mail system with every user's INBOX empty: a test sees only the mail it caused."""
    mail_system.clear()
    return mail_system


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        terminalreporter.write_line(
            f"mail system: install {_TIMINGS.get('install', 0.0):.1f} s (0 when already installed), "
            f"Postfix + Dovecot start {_TIMINGS.get('start', 0.0):.1f} s")


@dataclass(frozen=True, kw_only=True)
class StartTLSSettings(ImapSettings):
    """Settings that speak STARTTLS on any port: Dovecot's STARTTLS port here is a free one, not 143.

    Only the choice moves (``port == 143`` is a unit test of its own); the STARTTLS path the client
    then takes is the real one, against the real server.
    """

    @property
    def starttls(self) -> bool:
        return True


def imap_settings(system: MailSystem, user: str = "alerter@example.test", *, starttls: bool = False,
                  **overrides: Any) -> ImapSettings:
    """Settings of the package's IMAP client that reach ``user``'s INBOX, trusting Dovecot's certificate."""
    port = system.imap_starttls_port if starttls else system.imap_tls_port
    values: dict[str, Any] = {"host": system.imap_host, "port": port, "login": user, "password": system.users[user],
                              "ssl_ca_file": system.ca_file, "timeout": 5.0, **overrides}
    return StartTLSSettings(**values) if starttls else ImapSettings(**values)
