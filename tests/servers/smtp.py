"""A real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS or implicit TLS, with AUTH LOGIN/PLAIN.

It keeps every accepted message for assertions, can save each one as ``.eml`` + ``.html`` in a
folder (the demo's inbox), and can be told to answer the next messages with an SMTP error code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Security = Literal["none", "starttls", "ssl"]


@dataclass
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    def part(self, subtype: str) -> str | None:
        body = self.message.get_body(preferencelist=(subtype,))
        return None if body is None or body.get_content_subtype() != subtype else body.get_content()  # type: ignore[attr-defined]


def make_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, made here so no test depends on a file in the repo."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: What the server does with the DATA of the next messages: an SMTP reply line, or one of these.
RESET = "reset"  # drop the connection mid-send, as a crashing relay or a proxy timeout does
STALL = "stall"  # say nothing for a minute, as an overloaded server does


class _CountingController(Controller):
    """A Controller that tells the server of every connection it accepts (one SMTP protocol each)."""

    def __init__(self, server: LocalSMTPServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server = server

    def factory(self) -> Any:
        protocol = super().factory()
        with self._server._lock:
            self._server.connections += 1
            self._server._protocols.append(protocol)
        return protocol


@dataclass
class _Handler:
    server: LocalSMTPServer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.data_attempts += 1
        fault = self.server._next_fault()
        if fault == RESET:
            server.transport.abort()
            return "421 closing"
        if fault == STALL:
            await asyncio.sleep(60)
        return fault or self.server._accept(session, envelope)


@dataclass
class LocalSMTPServer:
    """One SMTP server; ``start()``/``stop()`` or use as a context manager."""

    security: Security = "none"
    users: dict[str, str] = field(default_factory=dict)
    cert: tuple[Path, Path] | None = None
    auth_mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN")
    save_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    received: list[ReceivedEmail] = field(default_factory=list)
    failed_logins: int = 0
    data_attempts: int = 0
    mechanisms_used: list[str] = field(default_factory=list)
    #: connections accepted so far, counting the one the controller opens itself to check it started
    connections: int = 0
    _protocols: list[Any] = field(default_factory=list)
    _replies: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def reply_next(self, *faults: str) -> None:
        """Answer the next messages' DATA with these replies (``"451 4.3.0 try later"``), RESET or STALL."""
        with self._lock:
            self._replies.extend(faults)

    def close_connections(self) -> None:
        """Close every open client connection from the server side, as an idle timeout on a real server does."""
        assert self._controller is not None
        with self._lock:
            protocols, self._protocols = self._protocols, []
        done = threading.Event()

        def close() -> None:
            for protocol in protocols:
                transport = getattr(protocol, "transport", None)
                if transport is not None and not transport.is_closing():
                    transport.close()
            done.set()

        self._controller.loop.call_soon_threadsafe(close)
        done.wait(5)

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._replies.pop(0) if self._replies else None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        self.mechanisms_used.append(mechanism)
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        self.failed_logins += 1
        return AuthResult(success=False, handled=False)

    def _accept(self, session: Any, envelope: Any) -> str:
        with self._lock:
            item = ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content),
                                 session.auth_data if isinstance(session.auth_data, str) else None)
            self.received.append(item)
        if self.save_dir is not None:
            self._save(item, len(self.received))
        return "250 Message accepted for delivery"

    def _save(self, item: ReceivedEmail, number: int) -> None:
        assert self.save_dir is not None
        self.save_dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(item.message["Subject"] or "no-subject")).strip("-")[:60]
        stem = self.save_dir / f"{number:03d}-{slug}"
        stem.with_suffix(".eml").write_bytes(item.raw)
        html = item.part("html")
        if html is not None:
            stem.with_suffix(".html").write_text(html, encoding="utf-8")

    def _tls_context(self) -> ssl.SSLContext:
        assert self.cert is not None, "a TLS server needs cert=(cert_path, key_path)"
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, self.cert))
        return context

    def start(self) -> LocalSMTPServer:
        options: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 10}
        if self.users:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is encrypted from the first byte.
            options.update(authenticator=self._authenticate, auth_require_tls=self.security == "starttls",
                           auth_required=True,
                           auth_exclude_mechanism={"LOGIN", "PLAIN"} - set(self.auth_mechanisms))
        if self.security == "starttls":
            options.update(tls_context=self._tls_context(), require_starttls=True)
        elif self.security == "ssl":
            options.update(ssl_context=self._tls_context(), server_hostname="localhost")
        self._controller = _CountingController(self, _Handler(self), **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> LocalSMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connection_extra(self) -> dict[str, Any]:
        """The Airflow ``smtp`` connection extras that reach this server with the provider's meaning."""
        extra: dict[str, Any] = {"disable_ssl": self.security != "ssl", "disable_tls": self.security != "starttls"}
        if self.cert is not None:
            extra["ssl_ca_file"] = str(self.cert[0])
        return extra
