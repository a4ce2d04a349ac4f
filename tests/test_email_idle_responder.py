"""The pushed responder for an email connection: one IMAP session waiting with IDLE on real Dovecot.

A reply sent through Postfix is recorded in the question's record as soon as Dovecot saves it, with no
gate opening the mailbox; a reply that arrived while the responder was away is recorded when it connects.
Airflow's end is the REST stand-in (tests/servers/airflow_api.py).
"""

from __future__ import annotations

import email.policy
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from airflow_alerter.hooks.heartbeat import Heartbeat, heartbeat_key
from airflow_alerter.hooks.hitl import PendingRequest, request_key
from airflow_alerter.responder.api import AirflowAPI
from airflow_alerter.responder.push import PushResponder
from tests.servers.airflow_api import AirflowAPIServer
from tests.servers.mail_system import MailSystem
from tests.test_email_replies_imap import ALERTER, ALICE, BOB, QUOTE, reply_to

CONN = "idle_email"


@pytest.fixture
def airflow() -> Iterator[AirflowAPIServer]:
    with AirflowAPIServer() as server:
        yield server


@pytest.fixture
def idle_email(airflow_conn: Callable[..., str], mailboxes: MailSystem) -> str:
    return airflow_conn(CONN, "smtp", host=mailboxes.smtp_host, port=mailboxes.smtp_port, extra={
        "from_email": ALERTER, "to": f"{ALICE},{BOB}", "disable_ssl": True, "disable_tls": True,
        "imap_host": mailboxes.imap_host, "imap_port": mailboxes.imap_tls_port,
        "imap_password": mailboxes.users[ALERTER], "ssl_ca_file": mailboxes.ca_file, "timeout": 10})


def ask(mail: MailSystem, airflow: AirflowAPIServer) -> tuple[PendingRequest, EmailMessage]:
    """A gate's question: asked by email, left for responders, its record waiting."""
    from airflow_alerter.hooks.alerter import AlerterHook

    handle = AlerterHook(CONN).get_alerter().send_question("Release model v7?")
    pending = PendingRequest(conn_id=CONN, handle=handle, dag_id="release", run_id="manual__1", task_id="gate",
                             options=["Approve", "Reject"], gate=True)
    airflow.variables[request_key("release", "manual__1", "gate", -1)] = pending.model_dump_json()
    airflow.add_record(pending.api_path)
    [raw] = mail.wait_for(ALICE, lambda m: handle.message_id in str(m["Subject"]))
    question = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(question, EmailMessage)
    return pending, question


@pytest.fixture
def responder(airflow: AirflowAPIServer, idle_email: str) -> Iterator[Callable[[], None]]:
    """Start the pushed responder for ``idle_email`` (when the test says); stopped at the end."""
    stopping = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> None:
        thread = threading.Thread(target=PushResponder(AirflowAPI(airflow.url), [CONN], interval=3600).run,
                                  args=(stopping,), daemon=True)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 30
        while heartbeat_key(CONN) not in airflow.variables:
            assert time.monotonic() < deadline, "the responder published no heartbeat"
            time.sleep(0.05)

    yield start
    stopping.set()
    for thread in threads:
        thread.join(30)


def recorded(airflow: AirflowAPIServer, pending: PendingRequest, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record = airflow.records[f"/api/v2{pending.api_path}"]
    while not record["response_received"]:
        assert time.monotonic() < deadline, "no answer recorded"
        time.sleep(0.02)
    return record


def test_a_reply_is_recorded_as_soon_as_the_mailbox_has_it(
    mailboxes: MailSystem, airflow: AirflowAPIServer, responder: Callable[[], None]
) -> None:
    pending, question = ask(mailboxes, airflow)
    responder()
    time.sleep(0.5)  # the session is waiting in IDLE

    sent = time.monotonic()
    mailboxes.send(reply_to(question, "Approve" + QUOTE), ALICE, [ALERTER])
    record = recorded(airflow, pending)

    answer = record["params_input"]["airflow_alerter"]
    assert (record["chosen_options"], answer["responder"], answer["channel"]) == (["Approve"], ALICE, "email")
    print(f"reply sent -> recorded by the IDLE session: {airflow.answered_at[pending.api_path] - sent:.2f} s")


def test_the_heartbeat_says_the_mailbox_is_watched_with_idle(
    mailboxes: MailSystem, airflow: AirflowAPIServer, responder: Callable[[], None]
) -> None:
    responder()

    assert Heartbeat.model_validate_json(airflow.variables[heartbeat_key(CONN)]).mode == "imap_idle"


def test_a_reply_given_while_the_responder_was_away_is_recorded_when_it_connects(
    mailboxes: MailSystem, airflow: AirflowAPIServer, responder: Callable[[], None]
) -> None:
    pending, question = ask(mailboxes, airflow)
    mailboxes.send(reply_to(question, "Reject" + QUOTE, sender=BOB), BOB, [ALERTER])
    mailboxes.wait_for(ALERTER, lambda m: str(m["From"]) == BOB)

    responder()

    assert recorded(airflow, pending)["chosen_options"] == ["Reject"]
