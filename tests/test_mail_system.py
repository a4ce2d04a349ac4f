"""The mail servers the IMAP tests stand on are real: Postfix delivers into Dovecot, Dovecot serves over TLS.

Read with plain imaplib, so these tests prove the servers, not our client.
"""

from __future__ import annotations

import imaplib
import os
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.servers import mail_install
from tests.servers.mail_system import MailSystem

ALICE, BOB, MALLORY = "alice@example.test", "bob@example.test", "mallory@example.test"


def note(subject: str, sender: str = BOB, to: str = ALICE) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
    message.set_content(f"Body of {subject}.")
    return message


def body_of(client: imaplib.IMAP4, number: bytes) -> bytes:
    _, data = client.fetch(number.decode(), "(BODY.PEEK[])")
    assert isinstance(data[0], tuple)
    return bytes(data[0][1])


def test_a_message_sent_through_postfix_is_read_over_imap_with_starttls(mailboxes: MailSystem) -> None:
    mailboxes.send(note("over STARTTLS"), BOB, [ALICE])
    mailboxes.wait_for(ALICE)

    client = imaplib.IMAP4(mailboxes.imap_host, mailboxes.imap_starttls_port, timeout=10)
    client.starttls(ssl_context=mailboxes.ssl_context())
    client.login(ALICE, mailboxes.users[ALICE])
    client.select("INBOX", readonly=True)
    _, found = client.search(None, "SUBJECT", '"over STARTTLS"')
    raw = body_of(client, found[0])
    client.logout()

    assert b"Body of over STARTTLS." in raw


def test_a_message_sent_through_postfix_is_read_over_implicit_tls(mailboxes: MailSystem) -> None:
    mailboxes.send(note("over TLS"), BOB, [ALICE])
    mailboxes.wait_for(ALICE)

    client = imaplib.IMAP4_SSL(mailboxes.imap_host, mailboxes.imap_tls_port, ssl_context=mailboxes.ssl_context(),
                               timeout=10)
    client.login(ALICE, mailboxes.users[ALICE])
    client.select("INBOX", readonly=True)
    _, found = client.search(None, "SUBJECT", '"over TLS"')
    raw = body_of(client, found[0])
    client.logout()

    assert b"Body of over TLS." in raw


def test_each_user_sees_only_their_own_mail(mailboxes: MailSystem) -> None:
    mailboxes.send(note("for bob", sender=ALICE, to=BOB), ALICE, [BOB])

    assert len(mailboxes.wait_for(BOB)) == 1
    assert mailboxes.messages(ALICE) == []


def test_mail_for_another_domain_is_refused_and_nothing_waits_to_leave(mailboxes: MailSystem) -> None:
    refused = mailboxes.send(note("leaking?", to="ops@elsewhere.test"), BOB, ["ops@elsewhere.test", ALICE])

    assert refused["ops@elsewhere.test"][0] == 554  # relay access denied
    assert len(mailboxes.wait_for(ALICE)) == 1
    assert mailboxes.postfix_queue() == "Mail queue is empty"


def test_mail_for_another_domain_alone_is_refused_whole(mail_system: MailSystem) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mail_system.send(note("leaking?", to="ops@elsewhere.test"), BOB, ["ops@elsewhere.test"])


def test_an_unknown_user_of_the_domain_is_refused_at_rcpt(mail_system: MailSystem) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        mail_system.send(note("who?", to="nobody@example.test"), BOB, ["nobody@example.test"])

    assert refused.value.recipients["nobody@example.test"][0] == 550


def test_forged_headers_arrive_exactly_as_sent(mailboxes: MailSystem) -> None:
    headers = (
        b"From: The Boss <alice@example.test>\r\n"
        b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test; spf=pass\r\n"
        b"In-Reply-To: <question-1@airflow.example.test>\r\n"
        b"X-Forged: yes\r\n"
    )
    raw = headers + b"To: alice@example.test\r\nSubject: approve\r\n\r\nApproved.\r\n"

    mailboxes.send(raw, MALLORY, [ALICE])

    assert headers in mailboxes.wait_for(ALICE)[0]


def test_clear_empties_the_inbox(mailboxes: MailSystem) -> None:
    mailboxes.send(note("old"), BOB, [ALICE])
    mailboxes.wait_for(ALICE)

    mailboxes.clear(ALICE)

    assert mailboxes.messages(ALICE) == []


def test_without_root_the_install_is_unavailable_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mail_install, "BINARIES", (Path("/nonexistent/postfix"),))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)

    with pytest.raises(mail_install.MailSystemUnavailable, match="/nonexistent/postfix missing and not root"):
        mail_install.ensure_installed()


def test_a_failing_apt_step_is_named_with_its_last_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mail_install, "_DEBCONF_SET", ["true"])
    monkeypatch.setattr(mail_install, "_APT", ["sh", "-c", "echo 'E: no network' >&2; exit 100", "apt-get"])

    with pytest.raises(mail_install.MailSystemUnavailable, match=r"apt-get update failed \(exit 100\): E: no network"):
        mail_install._install()
