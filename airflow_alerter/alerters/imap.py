"""Reading the answers to an emailed question: a mailbox over IMAP (imaplib), for the ``smtp_email`` flavor.

The flavor sends a question by SMTP; people answer by replying to it. :class:`Mailbox` finds those
replies (their ``In-Reply-To`` or ``References`` name the question's Message-ID, or their subject
carries its tag), reads them, and waits for new mail with IMAP IDLE (RFC 2177) where the server
has it, NOOP polls where it does not. It imports nothing of Airflow; only asking by email loads it.

What it promises, and why:

- TLS always: implicit TLS on every port but 143, STARTTLS on 143 (never a plaintext fallback
  when the server offers no STARTTLS). Certificates are verified against the system's CAs or
  ``ssl_ca_file`` unless ``ssl_verify`` is off.
- Reading changes nothing a person sees: the folder is opened read-only (EXAMINE) and bodies are
  fetched with ``BODY.PEEK``, so no reply turns "read" in anyone's mail client.
- A reply larger than ``max_bytes`` is not downloaded: its ``RFC822.SIZE`` is asked first, so a
  huge attachment costs one short answer, not the attachment.
- Every failure is one :class:`~airflow_alerter.exceptions.ImapError` naming host:port, login and
  folder with a one-line reason. The password is in no error and no log line: it is scrubbed from
  every reason, a refused login chains no imaplib exception (one holding the LOGIN arguments), and
  imaplib's debug output (which prints LOGIN with the password) is off for our connections.
- Waiting with a deadline is safe: Python 3.11's imaplib reads through ``socket.makefile``, whose
  buffer is unusable after one timeout, so our connections read the socket themselves
  (:class:`_SocketReader`). That is what lets IDLE wait "until mail or ``timeout``", then send
  DONE and go on with the same connection.
- Search criteria cannot smuggle commands: a reference or tag holding CR, LF or a non-ASCII
  character is refused (``ValueError``) before anything is sent.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import imaplib
import logging
import re
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_alerter.exceptions import ImapError

__all__ = ["FetchedMessage", "ImapError", "ImapSettings", "Mailbox"]

log = logging.getLogger(__name__)

#: the one port that means STARTTLS; every other port speaks TLS from the first byte
STARTTLS_PORT = 143
#: RFC 2177: re-issue IDLE at least every 29 minutes, before the server's 30-minute autologout
IDLE_MAX = 29 * 60.0
#: without IDLE, how often a NOOP asks the server whether mail came
NOOP_INTERVAL = 5.0
#: the longest response line accepted (imaplib's own limit)
_MAX_LINE = 1_000_000
_EXISTS = re.compile(rb"^\* \d+ EXISTS\b", re.IGNORECASE)
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)", re.IGNORECASE)
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)", re.IGNORECASE)
_INTERNALDATE = re.compile(
    rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"', re.IGNORECASE)
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


@dataclass(frozen=True, kw_only=True)
class ImapSettings:
    """Where the answers arrive: one folder of one mailbox. Keyword-only, so no port is taken for a login."""

    host: str
    #: 143: STARTTLS; 993 or any other port: implicit TLS
    port: int = 993
    login: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    #: seconds for connecting and for each answer of the server (not for IDLE's wait)
    timeout: float = 30.0
    ssl_verify: bool = True
    ssl_ca_file: str | None = None

    @property
    def starttls(self) -> bool:
        return self.port == STARTTLS_PORT


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    #: the server's RFC822.SIZE, in bytes
    size: int
    #: when the server received it (INTERNALDATE), as epoch seconds
    received_at: float
    #: the whole message; None when it is larger than the ``max_bytes`` asked for (not downloaded)
    raw: bytes | None


class Mailbox:
    """One IMAP session on one folder, read-only: connect, TLS, LOGIN, EXAMINE; LOGOUT on leaving.

    ``with Mailbox(settings) as mailbox: uids = mailbox.search_replies([message_id])``
    """

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._connection: _Connection | None = None
        self._capabilities: frozenset[str] = frozenset()

    def __enter__(self) -> Mailbox:
        connection = self._connect()
        try:
            self._login(connection)
            self._examine(connection)
        except BaseException:
            _close(connection)
            raise
        self._connection = connection
        return self

    def __exit__(self, *exc: object) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.logout()
        except (imaplib.IMAP4.error, OSError) as err:  # what was read stands; only the goodbye failed
            log.debug("IMAP %s:%s: LOGOUT failed: %s", self.settings.host, self.settings.port,
                      self._scrub(_describe(err, self.settings.timeout)))
        finally:
            _close(connection)

    # --- reading -------------------------------------------------------------------------------

    def search_replies(self, refs: Sequence[str], subject_tag: str | None = None) -> list[int]:
        """UIDs of messages whose In-Reply-To or References contain any of ``refs``, or whose Subject
        contains ``subject_tag``; ascending. Matching is the server's: case-insensitive substrings."""
        keys = [f"HEADER {name} {_quote(ref)}" for ref in refs for name in ("In-Reply-To", "References")]
        if subject_tag is not None:
            keys.append(f"SUBJECT {_quote(subject_tag)}")
        if not keys:
            return []
        criteria = " ".join(["OR"] * (len(keys) - 1) + keys)  # prefix ORs: OR OR a b c is (a or b) or c
        with self._failing("SEARCH failed"):
            data = self._ok(self._imap.uid("SEARCH", criteria))
        return sorted(int(uid) for item in data if isinstance(item, bytes) for uid in item.split())

    def fetch(self, uid: int, max_bytes: int) -> FetchedMessage:
        """The message ``uid``, its body only when it is at most ``max_bytes``; nothing is marked read."""
        with self._failing(f"FETCH of UID {uid} failed"):
            head = _joined(self._ok(self._imap.uid("FETCH", str(uid), "(RFC822.SIZE INTERNALDATE)")))
            size, received_at = _size(head, uid), _internaldate(head, uid)
            raw = self._body(uid) if size <= max_bytes else None
        return FetchedMessage(uid=uid, size=size, received_at=received_at, raw=raw)

    def uid_next(self) -> int:
        """The UID the next message will get: remember it to ask later for mail "since" (UIDs never go back)."""
        with self._failing("STATUS failed"):
            status = _joined(self._ok(self._imap.status(self._folder_name, "(UIDNEXT)")))
        found = _UIDNEXT.search(status)
        if found is None:
            raise self._error(f"STATUS failed: no UIDNEXT in {status[:200]!r}")
        return int(found.group(1))

    @property
    def tls_version(self) -> str | None:
        """The TLS version the session runs on (``"TLSv1.3"``), for a connection test to report."""
        sock = self._imap.sock
        return sock.version() if isinstance(sock, ssl.SSLSocket) else None

    @property
    def supports_idle(self) -> bool:
        """The server announced IDLE (RFC 2177) once logged in."""
        return "IDLE" in self._capabilities

    def wait_for_mail(self, timeout: float) -> bool:
        """Block until the server reports new mail or ``timeout`` seconds pass; True when mail came.

        With IDLE the server says so the moment a message is saved (an untagged EXISTS); without it,
        a NOOP every :data:`NOOP_INTERVAL` seconds asks. Mail the server already told of alongside an
        earlier command (which it will not tell of again) ends the wait at once. The connection stays
        usable either way.
        """
        deadline = time.monotonic() + timeout
        if self._told_of_new_mail():
            return True
        if not self.supports_idle:
            return self._poll(deadline)
        with self._failing("IDLE failed"):
            while (remaining := deadline - time.monotonic()) > 0:
                if self._imap.idle(min(remaining, IDLE_MAX)):
                    return True
        return False

    # --- the session ---------------------------------------------------------------------------

    @property
    def _imap(self) -> _Connection:
        if self._connection is None:
            raise RuntimeError("a Mailbox is used inside 'with Mailbox(settings) as mailbox:'")
        return self._connection

    @property
    def _folder_name(self) -> str:
        return _quote(_imap_utf7(self.settings.folder))

    def _connect(self) -> _Connection:
        settings = self.settings
        with self._failing(f"cannot use ssl_ca_file {settings.ssl_ca_file!r}"):
            context = self._ssl_context()
        with self._failing("cannot connect"):
            if not settings.starttls:
                return _TLSConnection(settings.host, settings.port, ssl_context=context, timeout=settings.timeout)
            connection = _Connection(settings.host, settings.port, timeout=settings.timeout)
        with self._failing("STARTTLS failed"):
            try:
                connection.starttls(ssl_context=context)
            except BaseException:
                _close(connection)
                raise
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ssl_ca_file)
        if not self.settings.ssl_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _login(self, connection: _Connection) -> None:
        try:
            connection.login(self.settings.login, self.settings.password)
        except (imaplib.IMAP4.error, OSError, UnicodeError) as err:
            # from None: imaplib's exception may hold the LOGIN arguments (a UnicodeEncodeError holds the password)
            raise self._error(f"login refused: {_describe(err, self.settings.timeout)}") from None
        with self._failing("CAPABILITY failed"):
            capabilities = _joined(self._ok(connection.capability()))
        self._capabilities = frozenset(capabilities.decode("ascii", "replace").upper().split())
        log.debug("IMAP %s:%s: logged in as %r", self.settings.host, self.settings.port, self.settings.login)

    def _examine(self, connection: _Connection) -> None:
        with self._failing("cannot open the folder"):
            typ, data = connection.select(self._folder_name, readonly=True)
            if typ != "OK":
                raise imaplib.IMAP4.error(_joined(data))
        connection.untagged_responses.clear()  # the count as opened: an EXISTS from now on is new mail

    def _body(self, uid: int) -> bytes:
        data = self._ok(self._imap.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        for item in data:
            if isinstance(item, tuple):
                return bytes(item[1])
        raise imaplib.IMAP4.error(f"no message with UID {uid}")

    def _poll(self, deadline: float) -> bool:
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(NOOP_INTERVAL, remaining))
            with self._failing("NOOP failed"):
                self._ok(self._imap.noop())
            if self._told_of_new_mail():
                return True
        return False

    def _told_of_new_mail(self) -> bool:
        """Whether an untagged EXISTS came with a command since the last look; forgets what imaplib kept.

        Servers send EXISTS along with any command's answer; imaplib keeps those answers until asked,
        so clearing them here also keeps a long-lived session from piling them up.
        """
        responses = self._imap.untagged_responses
        arrived = "EXISTS" in responses
        responses.clear()
        return arrived

    @staticmethod
    def _ok(result: tuple[str, list[Any]]) -> list[Any]:
        """The data of an OK answer; a NO or BAD answer raises with the server's text."""
        typ, data = result
        if typ != "OK":
            raise imaplib.IMAP4.error(f"{typ} {_joined(data).decode('utf-8', 'replace')}".strip())
        return data

    @contextlib.contextmanager
    def _failing(self, doing: str) -> Iterator[None]:
        """Turn what imaplib, ssl or the socket raise into one :class:`ImapError` saying what was being done."""
        try:
            yield
        except (imaplib.IMAP4.error, OSError) as err:
            raise self._error(f"{doing}: {_describe(err, self.settings.timeout)}") from err

    def _error(self, reason: str) -> ImapError:
        settings = self.settings
        return ImapError(self._scrub(reason), host=settings.host, port=settings.port, login=settings.login,
                         folder=settings.folder)

    def _scrub(self, text: str) -> str:
        """No server or library text we pass on may carry the password, even one a server echoed back."""
        return text.replace(self.settings.password, "***") if self.settings.password else text


class _SocketReader:
    """Lines and counted bytes off a socket through a buffer of our own: a timeout loses nothing."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._source: object = None

    def readline(self, sock: Any) -> bytes:
        self._follow(sock)
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > _MAX_LINE:
                raise imaplib.IMAP4.error(f"got more than {_MAX_LINE} bytes in one line")
            if not self._fill(sock):
                return self._take(len(self._buffer))  # at EOF; imaplib calls an empty line "socket error: EOF"
        return self._take(end + 1)

    def read(self, sock: Any, size: int) -> bytes:
        self._follow(sock)
        while len(self._buffer) < size and self._fill(sock):
            pass
        return self._take(min(size, len(self._buffer)))

    def _follow(self, sock: object) -> None:
        """Forget what the plaintext connection had buffered once STARTTLS replaced the socket.

        Bytes a server (or a man in the middle) sent after its STARTTLS OK but before TLS must never
        be read as if they came over TLS (the STARTTLS response-injection flaw, CVE-2011-0411's kind).
        """
        if sock is not self._source:
            self._buffer.clear()
            self._source = sock

    def _fill(self, sock: Any) -> bool:
        chunk = sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data


class _Connection(imaplib.IMAP4):
    """imaplib's client, reading through :class:`_SocketReader`, with IDLE and imaplib's debug output off."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self._prepare(timeout)
        super().__init__(host, port, timeout)
        self.debug = 0  # imaplib.Debug >= 4 would print LOGIN with the password

    def _prepare(self, timeout: float) -> None:
        """What reading needs before imaplib's __init__ reads the greeting."""
        self._reader = _SocketReader()
        self._timeout = timeout
        self._idles = 0

    def readline(self) -> bytes:
        return self._reader.readline(self.sock)

    def read(self, size: int) -> bytes:
        return self._reader.read(self.sock, size)

    def idle(self, seconds: float) -> bool:
        """IDLE for up to ``seconds``, then DONE; True when the server reported new mail (EXISTS) meanwhile."""
        self._idles += 1
        tag = b"ALRTIDLE%d" % self._idles  # not imaplib's prefix, so no tag of its own is ever taken
        self.send(tag + b" IDLE\r\n")
        arrived = self._until_continuation(tag)
        deadline = time.monotonic() + seconds
        while not arrived and (line := self._line_within(deadline - time.monotonic())) is not None:
            if line.upper().startswith(b"* BYE"):
                raise self.abort(line.decode("utf-8", "replace"))
            arrived = bool(_EXISTS.match(line))
        self.send(b"DONE\r\n")
        return self._until_tagged(tag) or arrived

    def _until_continuation(self, tag: bytes) -> bool:
        """Read up to the server's "+ idling"; True when an EXISTS came first."""
        arrived = False
        while not (line := self._line()).startswith(b"+"):
            if line.startswith(tag + b" "):
                raise self.error(f"IDLE refused: {line.decode('utf-8', 'replace')}")
            arrived = arrived or bool(_EXISTS.match(line))
        return arrived

    def _until_tagged(self, tag: bytes) -> bool:
        """Read up to IDLE's tagged answer; True when an EXISTS came first. A NO or BAD raises."""
        arrived = False
        while not (line := self._line()).startswith(tag + b" "):
            arrived = arrived or bool(_EXISTS.match(line))
        if not line[len(tag) + 1:].upper().startswith(b"OK"):
            raise self.error(f"IDLE ended with: {line.decode('utf-8', 'replace')}")
        return arrived

    def _line_within(self, seconds: float) -> bytes | None:
        """The next line, or None when none came within ``seconds``."""
        if seconds <= 0:
            return None
        self.sock.settimeout(seconds)
        try:
            return self._line()
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(self._timeout)

    def _line(self) -> bytes:
        line = self.readline()
        if not line:
            raise self.abort("socket error: EOF")
        return line.rstrip(b"\r\n")


class _TLSConnection(_Connection, imaplib.IMAP4_SSL):
    """The same over implicit TLS: IMAP4_SSL opens the socket, :class:`_Connection` reads it."""

    def __init__(self, host: str, port: int, *, timeout: float, ssl_context: ssl.SSLContext) -> None:
        self._prepare(timeout)
        imaplib.IMAP4_SSL.__init__(self, host, port, ssl_context=ssl_context, timeout=timeout)
        self.debug = 0


def _close(connection: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown()


def _describe(err: BaseException, timeout: float) -> str:
    """One line of reason from an imaplib, ssl or socket error."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({err.verify_message})"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(err, imaplib.IMAP4.abort):
        return f"connection lost ({_text(err)})"
    if isinstance(err, imaplib.IMAP4.error):
        return _text(err)
    if isinstance(err, UnicodeError):
        return "the login or password has a character IMAP LOGIN cannot send (not ASCII)"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _text(err: BaseException) -> str:
    """imaplib raises with the server's bytes (``b'[AUTHENTICATIONFAILED] ...'``): read them as text."""
    first = err.args[0] if err.args else ""
    return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)


def _joined(data: Sequence[Any]) -> bytes:
    return b" ".join(item for item in data if isinstance(item, bytes))


def _quote(value: str) -> str:
    """An IMAP quoted string; CR, LF and non-ASCII cannot be one, and would let text pass as a command."""
    if not value.isascii() or "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"not usable in an IMAP command (CR, LF, NUL or non-ASCII): {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): how "Réponses" reaches the server."""
    parts: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            parts.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            parts.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(parts)


def _size(head: bytes, uid: int) -> int:
    found = _SIZE.search(head)
    if found is None:
        raise imaplib.IMAP4.error(f"no message with UID {uid}")
    return int(found.group(1))


def _internaldate(head: bytes, uid: int) -> float:
    """INTERNALDATE (``"03-Dec-2026 11:21:12 +0000"``) as epoch seconds, whatever the process's locale."""
    found = _INTERNALDATE.search(head)
    if found is None or found.group(2).decode().lower() not in _MONTHS:
        raise imaplib.IMAP4.error(f"no INTERNALDATE for UID {uid}")
    day, month, year, hour, minute, second, sign, off_h, off_m = (value.decode() for value in found.groups())
    offset = dt.timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    when = dt.datetime(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), int(second),
                       tzinfo=dt.timezone(offset))
    return when.timestamp()
