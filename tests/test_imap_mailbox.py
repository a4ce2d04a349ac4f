"""The package's IMAP client (airflow_alerter/alerters/imap.py) against the real Dovecot behind Postfix.

A test sends mail through Postfix as a person's reply would come, then reads it with ``Mailbox``.
"""

from __future__ import annotations

import imaplib
import logging
import pickle
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from airflow_alerter.alerters import imap
from airflow_alerter.alerters.imap import ImapSettings, Mailbox
from airflow_alerter.exceptions import AlerterError, ImapError
from tests.plugins.mail import imap_settings
from tests.plugins.secrets import register_secret
from tests.servers.mail_system import MailSystem
from tests.servers.smtp import free_port

ALERTER, ALICE, BOB = "alerter@example.test", "alice@example.test", "bob@example.test"
QUESTION = "<q-7f3a@airflow.example.test>"
TAG = "[ask-7f3a]"
WRONG_PASSWORD = "Wr0ng-zq9XkT-Pa55word!"
register_secret(WRONG_PASSWORD)


def reply(subject: str, *, in_reply_to: str | None = None, references: str | None = None,
          body: str = "Approve.") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = ALICE, ALERTER, subject
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
    if references is not None:
        message["References"] = references
    message.set_content(body)
    return message


def deliver(system: MailSystem, message: EmailMessage | bytes, *, to: str = ALERTER) -> bytes:
    """Send through Postfix and wait until Dovecot has it; the message as delivered."""
    before = len(system.messages(to))
    system.send(message, ALICE, [to])
    deadline = time.monotonic() + 10
    while len(found := system.messages(to)) == before:
        assert time.monotonic() < deadline, "the message never reached Dovecot"
        time.sleep(0.02)
    return found[-1]


def uid_of(system: MailSystem, subject: str, user: str = ALERTER) -> int:
    with system.imap(user) as client:
        _, data = client.uid("SEARCH", "SUBJECT", f'"{subject}"')
        return int(data[0].split()[-1])


# --- settings ------------------------------------------------------------------------------------

def test_port_143_means_starttls_and_every_other_port_implicit_tls() -> None:
    def settings(port: int) -> ImapSettings:
        return ImapSettings(host="imap.example.test", port=port, login="a", password="p")

    assert [settings(port).starttls for port in (143, 993, 1143)] == [True, False, False]


def test_the_password_stays_out_of_the_settings_repr() -> None:
    settings = ImapSettings(host="imap.example.test", login="alerter", password=WRONG_PASSWORD)

    assert WRONG_PASSWORD not in repr(settings)


# --- connecting and logging in ---------------------------------------------------------------------

def test_logs_in_over_implicit_tls(mail_system: MailSystem) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        assert mailbox.tls_version in ("TLSv1.2", "TLSv1.3")


def test_logs_in_over_starttls(mail_system: MailSystem) -> None:
    with Mailbox(imap_settings(mail_system, starttls=True)) as mailbox:
        assert mailbox.tls_version in ("TLSv1.2", "TLSv1.3")


def test_a_wrong_password_is_refused_naming_the_login_and_never_the_password(
    mail_system: MailSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    with pytest.raises(ImapError) as refused:
        Mailbox(imap_settings(mail_system, password=WRONG_PASSWORD)).__enter__()

    text = str(refused.value)
    assert "login refused" in text and repr(ALERTER) in text and f"{mail_system.host}:" in text
    assert refused.value.__cause__ is None  # imaplib's exception may carry the LOGIN arguments
    assert WRONG_PASSWORD not in text + repr(refused.value.args) + caplog.text


def test_imaplib_debug_output_never_shows_the_password(
    mail_system: MailSystem, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(imaplib, "Debug", 5)  # imaplib prints every command it sends at 4 and more

    with Mailbox(imap_settings(mail_system)):
        pass

    assert mail_system.users[ALERTER] not in capsys.readouterr().err


def test_a_refused_connection_says_so_with_host_and_port() -> None:
    port = free_port()  # nothing listens there
    settings = ImapSettings(host="127.0.0.1", port=port, login=ALERTER, password=WRONG_PASSWORD, timeout=5)

    with pytest.raises(ImapError, match=f"IMAP server 127.0.0.1:{port} .*: cannot connect: connection refused"):
        Mailbox(settings).__enter__()


def test_an_untrusted_certificate_fails_clearly_over_implicit_tls(mail_system: MailSystem) -> None:
    with pytest.raises(ImapError, match=r"cannot connect: TLS certificate not trusted \(self-signed certificate\)"):
        Mailbox(imap_settings(mail_system, ssl_ca_file=None)).__enter__()


def test_an_untrusted_certificate_fails_clearly_over_starttls(mail_system: MailSystem) -> None:
    with pytest.raises(ImapError, match=r"STARTTLS failed: TLS certificate not trusted \(self-signed certificate\)"):
        Mailbox(imap_settings(mail_system, starttls=True, ssl_ca_file=None)).__enter__()


def test_ssl_verify_off_accepts_the_untrusted_certificate(mail_system: MailSystem) -> None:
    with Mailbox(imap_settings(mail_system, ssl_ca_file=None, ssl_verify=False)) as mailbox:
        assert mailbox.tls_version is not None


def test_a_missing_folder_is_named(mail_system: MailSystem) -> None:
    with pytest.raises(ImapError, match=r"folder 'Approvals'\): cannot open the folder: .*exist"):
        Mailbox(imap_settings(mail_system, folder="Approvals")).__enter__()


def test_a_folder_with_a_non_ascii_name_opens(mail_system: MailSystem) -> None:
    with mail_system.imap(BOB) as client:
        client.create('"R&AOk-ponses"')  # "Réponses" in IMAP's modified UTF-7

    with Mailbox(imap_settings(mail_system, BOB, folder="Réponses")) as mailbox:
        assert mailbox.uid_next() == 1


def test_the_error_keeps_its_facts_through_pickling(mail_system: MailSystem) -> None:
    with pytest.raises(ImapError) as refused:
        Mailbox(imap_settings(mail_system, folder="Approvals")).__enter__()

    copy = pickle.loads(pickle.dumps(refused.value))

    assert isinstance(copy, ImapError) and isinstance(copy, AlerterError)
    assert (copy.host, copy.port, copy.login, copy.folder, str(copy)) == (
        mail_system.host, mail_system.imap_tls_port, ALERTER, "Approvals", str(refused.value))


# --- finding replies ---------------------------------------------------------------------------------

@pytest.fixture
def replies(mailboxes: MailSystem) -> dict[str, int]:
    """Five messages in alerter's INBOX: three answer the question, each its own way; two do not."""
    subjects = {
        "in_reply_to": "Re: deploy (from my desk)", "references": "Re: deploy (from my phone)",
        "tag": f"Re: {TAG} deploy", "other": "Re: another question", "body_only": "Fwd: about deploy",
    }
    deliver(mailboxes, reply(subjects["in_reply_to"], in_reply_to=QUESTION))
    deliver(mailboxes, reply(subjects["references"], references=f"<thread-0@example.test> {QUESTION}"))
    deliver(mailboxes, reply(subjects["tag"]))
    deliver(mailboxes, reply(subjects["other"], in_reply_to="<q-other@airflow.example.test>"))
    deliver(mailboxes, reply(subjects["body_only"], body=f"It was asked in {QUESTION} with {TAG}."))
    return {name: uid_of(mailboxes, subject) for name, subject in subjects.items()}


def test_search_finds_the_reply_by_its_in_reply_to(mail_system: MailSystem, replies: dict[str, int]) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        found = mailbox.search_replies([QUESTION])

    assert replies["in_reply_to"] in found and replies["other"] not in found


def test_search_finds_the_reply_by_its_references(mail_system: MailSystem, replies: dict[str, int]) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        found = mailbox.search_replies([QUESTION])

    assert replies["references"] in found


def test_search_finds_the_reply_by_the_tag_in_its_subject(mail_system: MailSystem, replies: dict[str, int]) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        found = mailbox.search_replies([], subject_tag=TAG)

    assert found == [replies["tag"]]


def test_search_finds_exactly_the_replies_and_not_a_mention_in_a_body(
    mail_system: MailSystem, replies: dict[str, int]
) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        found = mailbox.search_replies([QUESTION, "<q-never-asked@airflow.example.test>"], subject_tag=TAG)

    assert found == sorted([replies["in_reply_to"], replies["references"], replies["tag"]])


def test_search_with_nothing_to_look_for_finds_nothing(mail_system: MailSystem) -> None:
    with Mailbox(imap_settings(mail_system)) as mailbox:
        assert mailbox.search_replies([]) == []


def test_a_reference_with_a_line_break_is_refused_before_anything_is_sent(mailboxes: MailSystem) -> None:
    deliver(mailboxes, reply("keep me"))

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        with pytest.raises(ValueError, match="CR, LF"):
            mailbox.search_replies([f"{QUESTION}\r\nX1 SELECT INBOX\r\nX2 STORE 1:* +FLAGS (\\Deleted)"])
        assert mailbox.search_replies([], subject_tag="keep me") == [uid_of(mailboxes, "keep me")]  # it goes on

    assert len(mailboxes.messages(ALERTER)) == 1


# --- fetching ------------------------------------------------------------------------------------------

def test_fetch_leaves_the_message_unread(mailboxes: MailSystem) -> None:
    deliver(mailboxes, reply("Re: deploy?", in_reply_to=QUESTION))
    uid = uid_of(mailboxes, "Re: deploy?")

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        fetched = mailbox.fetch(uid, max_bytes=1_000_000)

    assert fetched.raw is not None and b"Approve." in fetched.raw
    assert "\\Seen" not in mailboxes.flags(ALERTER, uid)


def test_fetch_gives_the_size_and_when_the_server_received_it(mailboxes: MailSystem) -> None:
    delivered = deliver(mailboxes, reply("Re: deploy?"))
    uid = uid_of(mailboxes, "Re: deploy?")

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        fetched = mailbox.fetch(uid, max_bytes=1_000_000)

    assert (fetched.uid, fetched.size, fetched.raw) == (uid, len(delivered), delivered)
    assert abs(fetched.received_at - time.time()) < 30


def test_a_message_larger_than_max_bytes_is_not_downloaded(mailboxes: MailSystem) -> None:
    delivered = deliver(mailboxes, reply("Re: deploy? (with the logs)", body="log line\n" * 5_000))
    uid = uid_of(mailboxes, "with the logs")

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        fetched = mailbox.fetch(uid, max_bytes=10_000)

    assert (fetched.raw, fetched.size) == (None, len(delivered))


def test_fetching_a_uid_that_does_not_exist_raises_an_imap_error(mailboxes: MailSystem) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox, pytest.raises(ImapError, match="FETCH of UID 42 failed"):
        mailbox.fetch(42, max_bytes=1_000)


# --- waiting for mail -------------------------------------------------------------------------------------

def test_wait_for_mail_returns_soon_after_a_message_arrives(
    mailboxes: MailSystem, in_background: Callable[[Callable[[], Any]], None]
) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        assert mailbox.supports_idle
        sent_at: list[float] = []

        def send_later() -> None:
            time.sleep(0.5)
            sent_at.append(time.monotonic())
            mailboxes.send(reply("Re: deploy?", in_reply_to=QUESTION), ALICE, [ALERTER])

        in_background(send_later)
        arrived = mailbox.wait_for_mail(timeout=20)
        woke = time.monotonic() - sent_at[0]

    assert arrived and woke < 2.0


def test_wait_for_mail_notices_mail_that_came_before_the_wait(mailboxes: MailSystem) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        deliver(mailboxes, reply("Re: deploy?"))

        started = time.monotonic()
        assert mailbox.wait_for_mail(timeout=10)

    assert time.monotonic() - started < 2.0


def test_wait_for_mail_returns_false_after_the_timeout_with_no_mail(mailboxes: MailSystem) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        started = time.monotonic()
        arrived = mailbox.wait_for_mail(timeout=1.0)
        waited = time.monotonic() - started

    assert not arrived and 1.0 <= waited < 1.5


def test_the_session_goes_on_after_a_wait_and_uid_next_shows_the_new_mail(mailboxes: MailSystem) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        before = mailbox.uid_next()
        assert not mailbox.wait_for_mail(timeout=0.2)
        deliver(mailboxes, reply("Re: deploy?", in_reply_to=QUESTION))

        assert mailbox.wait_for_mail(timeout=10)
        assert (mailbox.uid_next(), mailbox.search_replies([QUESTION])) == (before + 1, [before])


def test_a_long_wait_renews_idle_and_still_sees_the_mail(
    mailboxes: MailSystem, monkeypatch: pytest.MonkeyPatch, in_background: Callable[[Callable[[], Any]], None]
) -> None:
    monkeypatch.setattr(imap, "IDLE_MAX", 0.3)  # 29 minutes in real life; here a few renewals before the mail
    idles: list[float] = []
    idle = imap._Connection.idle

    def counted_idle(self: imap._Connection, seconds: float) -> bool:
        idles.append(seconds)
        return idle(self, seconds)

    monkeypatch.setattr(imap._Connection, "idle", counted_idle)

    def send_later() -> None:
        time.sleep(1.0)
        mailboxes.send(reply("Re: deploy?"), ALICE, [ALERTER])

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        in_background(send_later)

        assert mailbox.wait_for_mail(timeout=20)

    assert len(idles) >= 3 and max(idles) <= 0.3


def test_a_session_the_server_ends_during_the_wait_raises_an_imap_error(
    mailboxes: MailSystem, in_background: Callable[[Callable[[], Any]], None]
) -> None:
    def kick_later() -> None:
        time.sleep(0.5)
        mailboxes.kick(ALERTER)

    with Mailbox(imap_settings(mailboxes)) as mailbox:
        in_background(kick_later)

        with pytest.raises(ImapError, match=r"IDLE failed: connection lost \(\* BYE"):
            mailbox.wait_for_mail(timeout=20)


def test_without_idle_noop_polls_notice_new_mail(
    mailboxes: MailSystem, monkeypatch: pytest.MonkeyPatch, in_background: Callable[[Callable[[], Any]], None]
) -> None:
    monkeypatch.setattr(Mailbox, "supports_idle", property(lambda self: False))
    monkeypatch.setattr(imap, "NOOP_INTERVAL", 0.1)
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        in_background(lambda: mailboxes.send(reply("Re: deploy?"), ALICE, [ALERTER]))
        started = time.monotonic()

        assert mailbox.wait_for_mail(timeout=20)

    assert time.monotonic() - started < 2.0


def test_without_idle_noop_polls_end_at_the_timeout(mailboxes: MailSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Mailbox, "supports_idle", property(lambda self: False))
    monkeypatch.setattr(imap, "NOOP_INTERVAL", 0.1)
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        started = time.monotonic()

        assert not mailbox.wait_for_mail(timeout=0.5)

    assert 0.5 <= time.monotonic() - started < 1.0


# --- small parts -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, encoded", [("INBOX", "INBOX"), ("Réponses", "R&AOk-ponses"),
                                           ("Entwürfe", "Entw&APw-rfe"), ("A&B", "A&-B"), ("日本", "&ZeVnLA-")])
def test_folder_names_go_in_imaps_modified_utf7(name: str, encoded: str) -> None:
    assert imap._imap_utf7(name) == encoded



def test_mail_the_server_reported_during_another_command_still_ends_the_wait(mailboxes: MailSystem) -> None:
    with Mailbox(imap_settings(mailboxes)) as mailbox:
        deliver(mailboxes, reply("Re: deploy?"))
        mailbox.search_replies([QUESTION])  # Dovecot tells of the new message along with this answer
        started = time.monotonic()

        assert mailbox.wait_for_mail(timeout=5)

    assert time.monotonic() - started < 0.5


class FakeSocket:
    """Hands out chunks as recv() would; a TimeoutError in the list is raised in its turn."""

    def __init__(self, *chunks: bytes | BaseException) -> None:
        self.chunks = list(chunks)

    def recv(self, size: int) -> bytes:
        chunk = self.chunks.pop(0) if self.chunks else b""
        if isinstance(chunk, BaseException):
            raise chunk
        return chunk


def test_a_read_timeout_loses_no_byte_already_received() -> None:
    reader = imap._SocketReader()
    sock = FakeSocket(b"* 3 EXI", TimeoutError("timed out"), b"STS\r\n")

    with pytest.raises(TimeoutError):
        reader.readline(sock)

    assert reader.readline(sock) == b"* 3 EXISTS\r\n"


def test_bytes_sent_before_starttls_are_never_read_as_if_they_came_over_tls() -> None:
    reader = imap._SocketReader()
    plaintext = FakeSocket(b"A1 OK Begin TLS now\r\n* CAPABILITY IMAP4rev1 injected\r\n")
    assert reader.readline(plaintext) == b"A1 OK Begin TLS now\r\n"

    over_tls = FakeSocket(b"* CAPABILITY IMAP4rev1 IDLE\r\n")  # imaplib put the TLS socket in place

    assert reader.readline(over_tls) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
