"""Alerts in a row share one open, logged-in SMTP connection; a closed or foreign one never costs a message."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from airflow_alerter import SMTPEmailAlerter
from airflow_alerter.alerters import smtp_pool
from airflow_alerter.alerters.smtp_pool import POOL
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER, alerter_config
from tests.servers.smtp import LocalSMTPServer


def _opened(server: LocalSMTPServer, action: object) -> int:
    """Connections the server accepted while ``action`` ran."""
    before = server.connections
    assert callable(action)
    action()
    return server.connections - before


def test_posts_in_a_row_share_one_connection(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server))

    opened = _opened(smtp_server, lambda: [alerter.post(f"alert {n}") for n in range(3)])

    assert opened == 1
    assert [item.message["Subject"] for item in smtp_server.received] == [
        "[Airflow] alert 0", "[Airflow] alert 1", "[Airflow] alert 2"]


def test_two_alerters_with_the_same_settings_share_the_connection(smtp_starttls: LocalSMTPServer) -> None:
    first, second = (SMTPEmailAlerter(alerter_config(smtp_starttls)) for _ in range(2))

    opened = _opened(smtp_starttls, lambda: (first.deliver("one"), second.deliver("two")))

    assert opened == 1
    assert [item.login for item in smtp_starttls.received] == [SMTP_USER, SMTP_USER]
    assert smtp_starttls.mechanisms_used and len(smtp_starttls.mechanisms_used) == 1  # logged in once


def test_other_login_or_password_gets_its_own_connection(smtp_starttls: LocalSMTPServer) -> None:
    smtp_starttls.users["second@example.com"] = SMTP_PASSWORD
    ours = SMTPEmailAlerter(alerter_config(smtp_starttls))
    theirs = SMTPEmailAlerter(alerter_config(smtp_starttls, username="second@example.com"))

    opened = _opened(smtp_starttls, lambda: (ours.deliver("one"), theirs.deliver("two"), ours.deliver("three")))

    assert opened == 2
    assert [item.login for item in smtp_starttls.received] == [SMTP_USER, "second@example.com", SMTP_USER]


def test_connection_the_server_closed_while_idle_still_delivers(smtp_starttls: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_starttls, retry_limit=0))  # no retry policy to lean on
    alerter.deliver("before")
    smtp_starttls.close_connections()
    time.sleep(0.1)

    opened = _opened(smtp_starttls, lambda: alerter.deliver("after"))

    assert opened == 1
    assert [item.message["Subject"] for item in smtp_starttls.received] == ["[Airflow] before", "[Airflow] after"]


def test_server_gone_after_an_idle_connection_fails_clearly(caplog: pytest.LogCaptureFixture) -> None:
    with LocalSMTPServer() as server:
        alerter = SMTPEmailAlerter(alerter_config(server, retry_limit=1))
        alerter.deliver("before")
    caplog.set_level(logging.INFO, logger="airflow_alerter")

    assert alerter.post("after") is False
    assert "ConnectionRefusedError" in caplog.text


def test_idle_connection_is_closed_after_the_window(
    smtp_server: LocalSMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(POOL, "idle_seconds", 0.2)
    alerter = SMTPEmailAlerter(alerter_config(smtp_server))
    alerter.deliver("one")
    assert POOL.idle_count() == 1

    deadline = time.monotonic() + 5
    while POOL.idle_count() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert POOL.idle_count() == 0
    assert _opened(smtp_server, lambda: alerter.deliver("two")) == 1


def test_a_failed_send_does_not_keep_its_connection(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server, retry_limit=0))
    smtp_server.reply_next("550 5.7.1 rejected")

    assert alerter.post("rejected") is False
    assert POOL.idle_count() == 0
    assert alerter.post("accepted") is True


def test_threads_sending_at_once_each_use_their_own_connection(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server))
    results: list[bool] = []

    def send(n: int) -> None:
        results.extend(alerter.post(f"thread {n} mail {i}") for i in range(5))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    opened = _opened(smtp_server, lambda: ([t.start() for t in threads], [t.join() for t in threads]))

    assert results == [True] * 20
    assert len(smtp_server.received) == 20
    assert 1 <= opened <= 4 + smtp_pool.MAX_IDLE_PER_KEY


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_connection(smtp_server: LocalSMTPServer) -> None:
    alerter = SMTPEmailAlerter(alerter_config(smtp_server))
    alerter.deliver("parent before")
    before = smtp_server.connections

    pid = os.fork()
    if pid == 0:  # the child: its own connection, and no QUIT on the parent's
        ok = False
        try:
            ok = POOL.idle_count() == 0 and alerter.post("child")
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert smtp_server.connections - before == 1  # the child opened one of its own
    assert _opened(smtp_server, lambda: alerter.deliver("parent after")) == 0  # the parent's still works
    assert [item.message["Subject"] for item in smtp_server.received] == [
        "[Airflow] parent before", "[Airflow] child", "[Airflow] parent after"]


def test_reuse_never_logs_the_credentials(smtp_starttls: LocalSMTPServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    alerter = SMTPEmailAlerter(alerter_config(smtp_starttls, retry_limit=0))
    alerter.deliver("one")
    smtp_starttls.close_connections()
    time.sleep(0.1)
    alerter.deliver("two")  # the stale path logs that it opens a new connection
    POOL.close_all()

    assert "closed while idle" in caplog.text
    assert SMTP_PASSWORD not in caplog.text
    assert SMTP_PASSWORD not in repr(alerter._pool_key())
