"""Real mail servers for the tests: a private Postfix (SMTP in) and a private Dovecot (IMAP out) on 127.0.0.1.

Postfix accepts mail for ``example.test`` on a free port, from 127.0.0.1 without AUTH, and hands
it over LMTP to Dovecot, which files it into each user's Maildir and serves it over IMAP with
STARTTLS (the port-143 way) and implicit TLS (the port-993 way), under a self-signed certificate
whose file tests pass as the CA. Mail for any other domain is refused at RCPT (relay access
denied), and a bounce that could still arise goes to Postfix's ``error`` transport: nothing
leaves the machine.

Why LMTP to Dovecot rather than Postfix's own ``virtual`` delivery into Maildirs: Dovecot then is
the only writer of its mailboxes, so its indexes and the IDLE notices the IMAP tests wait for see
each message as it is saved (no file appearing behind its back, no uid shared by two daemons),
which is how real installations are built. The users are listed twice on purpose: Dovecot's
passwd-file logs them in, Postfix's ``virtual_mailbox_maps`` refuses unknown ones at RCPT time.

Each instance lives in its own temporary directory with its own ports: Postfix runs with
``-c <own config dir>`` (own queue and data directories), Dovecot with ``-c <own file>`` (own
``base_dir``), so two pytest processes on one machine never meet, and neither uses the system's
``/etc/postfix`` or ``/etc/dovecot``. Both run as children of the test process (``postfix
start-fg``, ``dovecot -F``) and are stopped by their process ids.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import os
import pwd
import secrets
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from pathlib import Path

from tests.servers.smtp import free_port, make_self_signed_cert

DOMAIN = "example.test"
USERS = ("alerter", "alice", "bob", "mallory")
#: how long the daemons may take to listen; a cold start takes well under a second here
_START_TIMEOUT = 20.0
#: the uid Dovecot's mail processes run as and own the Maildirs with (Debian's "mail" user)
_MAIL_USER = "mail"


def _password(user: str) -> str:
    """A fresh password per run that reads like a real one, so a leak of it is unmistakable."""
    return f"{user.capitalize()}-{secrets.token_urlsafe(12)}-9!"


@dataclass
class MailSystem:
    """One Postfix and one Dovecot of our own; ``start()``/``stop()`` or use as a context manager."""

    host: str = "127.0.0.1"
    smtp_port: int = field(default_factory=free_port)
    imap_starttls_port: int = field(default_factory=free_port)
    imap_tls_port: int = field(default_factory=free_port)
    lmtp_port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=lambda: {f"{user}@{DOMAIN}": _password(user) for user in USERS})
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="alerter-mail-")))
    #: seconds from start() until both servers answered
    startup_seconds: float = 0.0
    _postfix: subprocess.Popen[bytes] | None = None
    _dovecot: subprocess.Popen[bytes] | None = None

    @property
    def imap_host(self) -> str:
        return self.host

    @property
    def smtp_host(self) -> str:
        return self.host

    @property
    def ca_file(self) -> str:
        """The self-signed certificate Dovecot presents: the CA file a client must trust."""
        return str(self.root / "tls" / "cert.pem")

    # --- what tests do -----------------------------------------------------------------------

    def send(
        self, message: EmailMessage | bytes, sender: str, recipients: Iterable[str]
    ) -> dict[str, tuple[int, bytes]]:
        """Submit through Postfix as a mail client would; the recipients Postfix refused (smtplib's dict).

        Raw bytes go as they are, so forged headers (``From``, ``Authentication-Results``) reach the
        mailbox exactly as written; a message refused for every recipient raises smtplib's error.
        """
        raw = message.as_bytes(policy=email.policy.SMTP) if isinstance(message, EmailMessage) else message
        with smtplib.SMTP(self.host, self.smtp_port, timeout=10) as client:
            return client.sendmail(sender, list(recipients), raw)

    @contextlib.contextmanager
    def imap(self, user: str, folder: str = "INBOX", readonly: bool = True) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in imaplib client of ``user`` over implicit TLS, with ``folder`` selected."""
        client = imaplib.IMAP4_SSL(self.host, self.imap_tls_port, ssl_context=self.ssl_context(), timeout=10)
        try:
            client.login(user, self.users[user])
            typ, data = client.select(folder, readonly=readonly)
            assert typ == "OK", f"cannot select {folder} of {user}: {data}"
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def messages(self, user: str) -> list[bytes]:
        """Every message in ``user``'s INBOX, oldest first, read with BODY.PEEK (nothing is marked read)."""
        with self.imap(user) as client:
            typ, data = client.uid("SEARCH", "ALL")
            uids = data[0].split() if typ == "OK" and data[0] else []
            return [self._peek(client, uid) for uid in uids]

    def wait_for(self, user: str, predicate: Callable[[Message], bool] = lambda _: True,
                 timeout: float = 10.0) -> list[bytes]:
        """The raw messages in ``user``'s INBOX that match, as soon as there is one; AssertionError at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(user)
            matching = [raw for raw in found if predicate(email.message_from_bytes(raw, policy=email.policy.default))]
            if matching:
                return matching
            if time.monotonic() > deadline:
                subjects = [email.message_from_bytes(raw)["Subject"] for raw in found]
                raise AssertionError(f"no matching message for {user} within {timeout} s; INBOX has {subjects}")
            time.sleep(0.05)

    def flags(self, user: str, uid: int) -> set[str]:
        """The IMAP flags of one message (``\\Seen`` once someone has read it)."""
        with self.imap(user) as client:
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            assert typ == "OK" and data[0] is not None, f"no message {uid} for {user}: {data}"
            response = data[0] if isinstance(data[0], bytes) else data[0][0]
            return {flag.decode() for flag in imaplib.ParseFlags(response)}

    def clear(self, *users: str) -> None:
        """Empty the INBOX of these users (all when none is named): each test starts from no mail."""
        for user in users or tuple(self.users):
            with self.imap(user, readonly=False) as client:
                typ, data = client.uid("SEARCH", "ALL")
                if typ == "OK" and data[0]:  # Dovecot calls "1:*" of an empty mailbox an invalid set
                    client.uid("STORE", b",".join(data[0].split()).decode(), "+FLAGS.SILENT", r"(\Deleted)")
                    client.expunge()

    def kick(self, user: str) -> None:
        """End every IMAP session of ``user`` from the server side (``doveadm kick``: a BYE, then the close)."""
        subprocess.run(["doveadm", "-c", str(self._dovecot_conf), "kick", user], check=True, capture_output=True,
                       timeout=30)

    @staticmethod
    def _peek(client: imaplib.IMAP4, uid: bytes) -> bytes:
        typ, data = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        assert typ == "OK" and isinstance(data[0], tuple), f"cannot fetch message {uid!r}: {data}"
        return bytes(data[0][1])

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> MailSystem:
        started = time.monotonic()
        self.root.chmod(0o755)  # the postfix and dovecot users walk through it
        self._write_tls()
        self._write_dovecot()
        self._write_postfix()
        try:
            self._dovecot = self._spawn(["dovecot", "-F", "-c", str(self._dovecot_conf)], "dovecot")
            self._postfix = self._spawn(["postfix", "-c", str(self._postfix_dir), "start-fg"], "postfix")
            for port, what in ((self.lmtp_port, "Dovecot LMTP"), (self.imap_starttls_port, "Dovecot IMAP"),
                               (self.imap_tls_port, "Dovecot IMAPS"), (self.smtp_port, "Postfix SMTP")):
                self._wait_listening(port, what)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        if self._postfix is not None:
            subprocess.run(["postfix", "-c", str(self._postfix_dir), "stop"], capture_output=True, timeout=30)
            self._end(self._postfix)
            self._postfix = None
        if self._dovecot is not None:
            self._dovecot.terminate()  # the master stops its children on SIGTERM
            self._end(self._dovecot)
            self._dovecot = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MailSystem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs(self) -> str:
        """The end of both servers' logs, for a failure message."""
        tails = []
        for path in (self._postfix_dir.parent / "maillog", self.root / "postfix.out",
                     self.root / "dovecot" / "dovecot.log", self.root / "dovecot.out"):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-15:]
                tails.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(tails)

    def postfix_queue(self) -> str:
        """``postqueue -p`` of our Postfix: "Mail queue is empty" when nothing waits to be delivered."""
        done = subprocess.run(["postqueue", "-c", str(self._postfix_dir), "-p"], capture_output=True, text=True,
                              timeout=30)
        return (done.stdout + done.stderr).strip()

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.out").open("wb") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _wait_listening(self, port: int, what: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), timeout=1):
                return
            for name, process in (("postfix", self._postfix), ("dovecot", self._dovecot)):
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{what}: {name} exited ({process.returncode})\n{self.logs()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not listening on {self.host}:{port} after {_START_TIMEOUT} s\n"
                                   f"{self.logs()}")
            time.sleep(0.02)

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    # --- configuration -----------------------------------------------------------------------

    @property
    def _postfix_dir(self) -> Path:
        """Postfix's config directory; its queue and data directories sit beside it (Postfix wants root-only
        files inside it, and the queue is the postfix user's)."""
        return self.root / "postfix" / "etc"

    @property
    def _dovecot_conf(self) -> Path:
        return self.root / "dovecot" / "dovecot.conf"

    def _write_tls(self) -> None:
        tls = self.root / "tls"
        tls.mkdir()
        cert, key = make_self_signed_cert(tls)
        cert.rename(tls / "cert.pem")
        key.rename(tls / "key.pem")
        (tls / "key.pem").chmod(0o600)

    def _write_dovecot(self) -> None:
        directory = self.root / "dovecot"
        directory.mkdir()
        mail = pwd.getpwnam(_MAIL_USER)
        maildirs = self.root / "mail"
        maildirs.mkdir()
        os.chown(maildirs, mail.pw_uid, mail.pw_gid)
        users = directory / "users"
        users.write_text("".join(f"{address}:{{PLAIN}}{password}\n" for address, password in self.users.items()))
        users.chmod(0o600)
        dovecot = pwd.getpwnam("dovecot")  # the auth process reads it as that user
        os.chown(users, dovecot.pw_uid, dovecot.pw_gid)
        self._dovecot_conf.write_text(textwrap.dedent(f"""\
            # A private Dovecot for the airflow-alerter tests; nothing of /etc/dovecot is read.
            instance_name = alerter-test-{self.imap_tls_port}
            hostname = imap.{DOMAIN}
            base_dir = {directory}/run
            state_dir = {directory}/state
            log_path = {directory}/dovecot.log
            protocols = imap lmtp
            listen = {self.host}
            default_internal_user = dovecot
            default_login_user = dovenull
            first_valid_uid = {mail.pw_uid}
            last_valid_uid = {mail.pw_uid}
            # TLS before any login. Dovecot still counts 127.0.0.1 talking to 127.0.0.1 as secured and lets a
            # plaintext LOGIN through there; the tests see TLS happen by its certificate check instead.
            ssl = required
            ssl_cert = <{self.ca_file}
            ssl_key = <{self.root}/tls/key.pem
            auth_mechanisms = plain login
            # a test's wrong password must not slow the next test's login: no failure delay, and no auth
            # penalty (it counts failures per client IP, every test logs in from 127.0.0.1, and the next
            # login waits up to 15 s); Dovecot's documented way off is an unreachable penalty socket
            auth_failure_delay = 0
            service anvil {{
              unix_listener anvil-auth-penalty {{
                mode = 0
              }}
            }}
            passdb {{
              driver = passwd-file
              args = {users}
            }}
            userdb {{
              driver = static
              args = uid={mail.pw_uid} gid={mail.pw_gid} home={maildirs}/%d/%n
            }}
            mail_location = maildir:~/Maildir
            service imap-login {{
              inet_listener imap {{
                port = {self.imap_starttls_port}
              }}
              inet_listener imaps {{
                port = {self.imap_tls_port}
                ssl = yes
              }}
            }}
            service lmtp {{
              inet_listener lmtp {{
                address = {self.host}
                port = {self.lmtp_port}
              }}
            }}
            protocol lmtp {{
              postmaster_address = postmaster@{DOMAIN}
            }}
            """))

    def _write_postfix(self) -> None:
        directory, top = self._postfix_dir, self._postfix_dir.parent
        directory.mkdir(parents=True)
        (top / "queue").mkdir()  # Postfix makes its subdirectories, with their owners, on start
        (directory / "vmailbox").write_text("".join(f"{address} ok\n" for address in self.users))
        (directory / "main.cf").write_text(textwrap.dedent(f"""\
            # A private Postfix for the airflow-alerter tests; nothing of /etc/postfix is read.
            compatibility_level = 3.6
            queue_directory = {top}/queue
            data_directory = {top}/data
            maillog_file = {top}/maillog
            maillog_file_prefixes = {top}
            mail_owner = postfix
            setgid_group = postdrop
            myhostname = mx.{DOMAIN}
            mydomain = {DOMAIN}
            myorigin = $mydomain
            mydestination =
            inet_interfaces = {self.host}
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            alias_maps =
            alias_database =
            local_recipient_maps =
            biff = no
            # example.test is delivered over LMTP into Dovecot; unknown users are refused at RCPT
            virtual_mailbox_domains = {DOMAIN}
            virtual_mailbox_maps = texthash:{directory}/vmailbox
            virtual_transport = lmtp:inet:[{self.host}]:{self.lmtp_port}
            # no other domain: refused at RCPT even from 127.0.0.1, and whatever is left (a bounce) fails here
            smtpd_relay_restrictions = reject_unauth_destination
            smtpd_recipient_restrictions =
            default_transport = error:mail leaves no test machine
            relay_transport = error:mail leaves no test machine
            relayhost =
            smtp_host_lookup = native
            # headers stay as the client wrote them (no added Message-Id or Date, no address rewriting):
            # the tests send forged ones on purpose
            local_header_rewrite_clients =
            # a 10 MB reply must reach the mailbox: the flavor refuses it, not Postfix (default 10240000)
            message_size_limit = 30000000
            """))
        (directory / "master.cf").write_text(textwrap.dedent(f"""\
            # service type  private unpriv  chroot  wakeup  maxproc command
            {self.host}:{self.smtp_port} inet n - n - - smtpd
            pickup    unix  n       -       n       60      1       pickup
            cleanup   unix  n       -       n       -       0       cleanup
            qmgr      unix  n       -       n       300     1       qmgr
            rewrite   unix  -       -       n       -       -       trivial-rewrite
            bounce    unix  -       -       n       -       0       bounce
            defer     unix  -       -       n       -       0       bounce
            trace     unix  -       -       n       -       0       bounce
            verify    unix  -       -       n       -       1       verify
            flush     unix  n       -       n       1000?   0       flush
            proxymap  unix  -       -       n       -       -       proxymap
            showq     unix  n       -       n       -       -       showq
            error     unix  -       -       n       -       -       error
            retry     unix  -       -       n       -       -       error
            discard   unix  -       -       n       -       -       discard
            lmtp      unix  -       -       n       -       -       lmtp
            anvil     unix  -       -       n       -       1       anvil
            scache    unix  -       -       n       -       1       scache
            postlog   unix-dgram n  -       n       -       1       postlogd
            """))
