"""Answers by reply, end to end through real mail servers: the question goes out through Postfix, a reply
sent through Postfix lands in Dovecot, and the flavor's check reads it over IMAP by the trust rules.

Every bad reply of the issue's list is sent the same way and none approves.
"""

from __future__ import annotations

import email.policy
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from airflow_alerter import AlerterMessage, SMTPEmailAlerter
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle
from tests.plugins.secrets import assert_no_secrets
from tests.servers.mail_system import MailSystem

ALERTER, ALICE, BOB, MALLORY = (f"{user}@example.test" for user in ("alerter", "alice", "bob", "mallory"))
QUESTION = AlerterMessage(title="Release model v7?", body="Accuracy 0.93 on the holdout set.")


def asker(mail: MailSystem, **overrides: Any) -> SMTPEmailAlerter:
    """The flavor as a connection would configure it: Postfix to send, the alerter's Dovecot INBOX to read."""
    return SMTPEmailAlerter({
        "smtp_server": mail.smtp_host, "smtp_port": mail.smtp_port, "security": "none", "sender_email": ALERTER,
        "recipient_email": [ALICE, BOB], "imap_host": mail.imap_host, "imap_port": mail.imap_tls_port,
        "imap_password": mail.users[ALERTER], "ssl_ca_file": mail.ca_file, "timeout": 10, "retry_limit": 0,
        **overrides})


@pytest.fixture
def asked(mailboxes: MailSystem) -> tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]:
    """A question asked through Postfix; Alice's copy as delivered to her Dovecot INBOX."""
    alerter = asker(mailboxes)
    handle = alerter.send_question(QUESTION)
    [raw] = mailboxes.wait_for(ALICE, lambda m: handle.message_id in str(m["Subject"]))
    delivered = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(delivered, EmailMessage)
    return alerter, handle, delivered


def reply_to(question: EmailMessage, text: str | None, sender: str = ALICE, html: str | None = None,
             headers: dict[str, str] | None = None) -> EmailMessage:
    """A reply as a mail client writes it: Re: subject, In-Reply-To/References, the quoted question below."""
    reply = EmailMessage()
    for name, value in (headers or {}).items():
        reply[name] = value
    reply["From"], reply["To"] = sender, ALERTER
    reply["Subject"] = f"Re: {question['Subject']}"
    reply["In-Reply-To"] = question["Message-ID"]
    reply["References"] = question["Message-ID"]
    if text is not None:
        reply.set_content(text)
    if html is not None:
        if text is None:
            reply.set_content(html, subtype="html")
        else:
            reply.add_alternative(html, subtype="html")
    return reply


QUOTE = "\n\nOn Thu, 3 Dec 2026 at 14:02, Airflow <alerter@example.test> wrote:\n> Release model v7?\n> Approve\n"


def answer_after(mail: MailSystem, alerter: SMTPEmailAlerter, handle: QuestionHandle, *replies: EmailMessage
                 ) -> AskResult:
    """Send ``replies`` through Postfix, wait until Dovecot has them all, then one check by the flavor."""
    before = len(mail.messages(ALERTER))
    for reply in replies:
        mail.send(reply, str(reply["From"]).split("<")[-1].strip(">"), [ALERTER])
    deadline = time.monotonic() + 15
    while len(mail.messages(ALERTER)) < before + len(replies):
        assert time.monotonic() < deadline, "the replies did not reach the alerter's INBOX"
        time.sleep(0.05)
    return alerter.check_answer(handle)


def test_a_reply_from_a_recipient_approves_with_their_address_on_the_email_channel(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked

    result = answer_after(mailboxes, alerter, handle, reply_to(question, "Approve, ship it." + QUOTE))

    assert (result.status, result.responder, result.channel) == (AskStatus.APPROVED, ALICE, "email")


def test_a_reply_that_rejects_rejects(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked

    result = answer_after(mailboxes, alerter, handle, reply_to(question, "Reject: the holdout set leaked." + QUOTE,
                                                               sender=BOB))

    assert (result.status, result.responder) == (AskStatus.REJECTED, BOB)


def test_a_reply_matched_only_by_the_tag_in_its_subject_counts(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked
    reply = reply_to(question, "LGTM")
    del reply["In-Reply-To"], reply["References"]  # a client that drops the thread headers

    assert answer_after(mailboxes, alerter, handle, reply).approved


def test_reading_the_replies_marks_nothing_read(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked
    answer_after(mailboxes, alerter, handle, reply_to(question, "Approve"))

    with mailboxes.imap(ALERTER) as client:
        typ, data = client.uid("SEARCH", "UNSEEN")
    assert typ == "OK" and data[0]  # still unread


def _forged(question: EmailMessage) -> EmailMessage:
    return reply_to(question, "Approve", headers={
        "Authentication-Results": "mx.example.test; dkim=fail (signature did not verify) header.d=example.test; "
                                  "dmarc=fail header.from=example.test"})


def _html_quote_only(question: EmailMessage) -> EmailMessage:
    return reply_to(question, None, html="<html><body><div class='gmail_quote'><blockquote>Release model v7?<br>"
                                         "Approve</blockquote></div></body></html>")


def _huge(question: EmailMessage) -> EmailMessage:
    return reply_to(question, "Approve\n\n" + ("x" * 76 + "\n") * (10 * 1024 * 1024 // 77))


def _auto_reply(question: EmailMessage) -> EmailMessage:
    return reply_to(question, "OK, I am out of the office until Monday.", headers={"Auto-Submitted": "auto-replied"})


@pytest.mark.parametrize("bad_reply", [
    pytest.param(lambda q: reply_to(q, "Approve", sender=MALLORY), id="from a non-approver"),
    pytest.param(lambda q: reply_to(q, QUOTE.strip()), id="only quotes the question"),
    pytest.param(lambda q: reply_to(q, "I don't approve this release." + QUOTE), id="I don't approve"),
    pytest.param(lambda q: reply_to(q, "approve? which holdout set?" + QUOTE), id="a question back"),
    pytest.param(_html_quote_only, id="HTML only, holding only the quote"),
    pytest.param(_huge, id="10 MB"),
    pytest.param(_forged, id="forged From, DKIM and DMARC fail"),
    pytest.param(_auto_reply, id="an auto-reply"),
])
def test_a_bad_reply_does_not_approve(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage],
    bad_reply: Callable[[EmailMessage], EmailMessage],
) -> None:
    alerter, handle, question = asked

    result = answer_after(mailboxes, alerter, handle, bad_reply(question))

    assert result.status is AskStatus.PENDING


def test_an_html_only_reply_is_read_as_its_visible_text(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked
    html = "<html><body><p>Approve</p><blockquote>Release model v7?</blockquote></body></html>"

    assert answer_after(mailboxes, alerter, handle, reply_to(question, None, html=html)).approved


def test_with_authenticated_replies_required_an_unchecked_reply_does_not_count(mailboxes: MailSystem) -> None:
    alerter = asker(mailboxes, require_authenticated_replies=True)
    handle = alerter.send_question(QUESTION)
    [raw] = mailboxes.wait_for(ALICE, lambda m: handle.message_id in str(m["Subject"]))
    question = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(question, EmailMessage)

    unchecked = answer_after(mailboxes, alerter, handle, reply_to(question, "Approve"))
    vouched = answer_after(mailboxes, alerter, handle, reply_to(question, "Approve", headers={
        "Authentication-Results": "mx.example.test; dkim=pass header.d=example.test; dmarc=pass"}))

    assert (unchecked.status, vouched.status) == (AskStatus.PENDING, AskStatus.APPROVED)


def test_the_first_valid_reply_wins(
    mailboxes: MailSystem, asked: tuple[SMTPEmailAlerter, QuestionHandle, EmailMessage]
) -> None:
    alerter, handle, question = asked
    mailboxes.send(reply_to(question, "Reject", sender=BOB), BOB, [ALERTER])
    mailboxes.wait_for(ALERTER, lambda m: str(m["From"]) == BOB)  # Postfix may deliver two mails in any order

    result = answer_after(mailboxes, alerter, handle, reply_to(question, "Approve", sender=ALICE))

    assert (result.status, result.responder) == (AskStatus.REJECTED, BOB)


def test_an_unreachable_imap_server_leaves_the_question_waiting_and_says_why(
    mailboxes: MailSystem, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.servers.smtp import free_port

    alerter = asker(mailboxes, imap_port=free_port())
    handle = alerter.send_question(QUESTION)

    result = alerter.check_answer(handle)

    assert result.status is AskStatus.PENDING and "IMAP server 127.0.0.1" in (result.reason or "")
    assert "cannot be read (answer links and Airflow still work)" in caplog.text
    assert_no_secrets(caplog.text, result.model_dump_json(), where="the log or the result")


def test_the_connection_check_also_opens_the_replies_mailbox(mailboxes: MailSystem) -> None:
    ok, reason = asker(mailboxes).test_connection()

    assert ok, reason
    assert f"replies read from 'INBOX' of '{ALERTER}'" in reason and "(IDLE)" in reason


def test_the_connection_check_fails_naming_the_mailbox_when_its_login_is_refused(mailboxes: MailSystem) -> None:
    ok, reason = asker(mailboxes, imap_password="not-the-password-0x").test_connection()

    assert not ok and "replies cannot be read" in reason and ALERTER in reason
    assert "not-the-password-0x" not in reason


def test_an_unreachable_imap_server_is_warned_about_once_not_at_every_check(
    mailboxes: MailSystem, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from tests.servers.smtp import free_port

    alerter = asker(mailboxes, imap_port=free_port())
    handle = alerter.send_question(QUESTION)

    for _ in range(3):
        alerter.check_answer(handle)

    assert len([r for r in caplog.records if r.levelno == logging.WARNING and "cannot be read" in r.message]) == 1
