"""A gate asked by email on the distributed engine, answered by a reply: Postfix delivers the question, the
approver's reply lands in the alerter's Dovecot mailbox, the triggerer reads it over IMAP and the gate resolves.
A non-approver's reply and a forged one (DKIM and DMARC fail) are read the same way and change nothing.
"""

from __future__ import annotations

import email.policy
import json
import time
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from tests.e2e.engine import AirflowEngine
from tests.servers.mail_system import MailSystem
from tests.test_email_replies_imap import ALERTER, ALICE, BOB, MALLORY, QUOTE, _forged, reply_to

pytestmark = pytest.mark.e2e

GATE = "e2e_gate_email_reply"
POLL = 2.0  # the gate's poke_interval: one IMAP look per interval


@pytest.fixture
def reply_email(engine: AirflowEngine, mailboxes: MailSystem) -> Iterator[str]:
    """``reply_email`` in the engine's metadata DB: Postfix to send, the alerter's Dovecot INBOX to read."""
    extra = {"from_email": ALERTER, "to": f"{ALICE},{BOB}", "disable_ssl": True, "disable_tls": True,
             "imap_host": mailboxes.imap_host, "imap_port": mailboxes.imap_tls_port,
             "imap_password": mailboxes.users[ALERTER], "ssl_ca_file": mailboxes.ca_file, "timeout": 10}
    engine.api("DELETE", "/connections/reply_email", expect=(204, 404))
    engine.api("POST", "/connections", {"connection_id": "reply_email", "conn_type": "smtp",
                                        "host": mailboxes.smtp_host, "port": mailboxes.smtp_port,
                                        "extra": json.dumps(extra)}, expect=(201,))
    yield "reply_email"
    engine.api("DELETE", "/connections/reply_email", expect=(204, 404))


def _question_to(mail: MailSystem, address: str, run_id: str) -> EmailMessage:
    [raw] = mail.wait_for(address, lambda m: run_id in str(m["Subject"]), timeout=120)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_an_approvers_reply_resolves_the_gate_and_bad_replies_before_it_change_nothing(
    engine: AirflowEngine, reply_email: str, mailboxes: MailSystem
) -> None:
    engine.wait_for_dag(GATE)
    run_id = engine.trigger(GATE)
    question = _question_to(mailboxes, ALICE, run_id)
    engine.wait_for_task_state(GATE, run_id, "gate", {"deferred"})

    for bad in (reply_to(question, "Approve", sender=MALLORY), _forged(question),
                reply_to(question, "I don't approve." + QUOTE)):
        mailboxes.send(bad, str(bad["From"]), [ALERTER])
    time.sleep(3 * POLL)  # three of the gate's looks at the mailbox
    assert engine.task_states(GATE, run_id)["gate"] == "deferred"

    sent = time.monotonic()
    mailboxes.send(reply_to(question, "Approve" + QUOTE), ALICE, [ALERTER])
    engine.wait_for_task_state(GATE, run_id, "ship", {"queued", "running", "success"})
    downstream = time.monotonic() - sent

    assert engine.wait_for_run(GATE, run_id) == "success"
    [raw] = mailboxes.wait_for(BOB, lambda m: str(m["Subject"]).startswith("Re: ") and run_id in str(m["Subject"]),
                               timeout=60)
    assert f"Approved by {ALICE} (email)" in raw.decode(errors="replace")
    print(f"reply sent -> downstream task queued or running: {downstream:.2f} s (poll interval {POLL:g} s)")
