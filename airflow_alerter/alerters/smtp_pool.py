"""Open, logged-in SMTP connections kept for a short idle window, so alerts in a row share one.

An Airflow process that sends several alerts in a row (a storm of failures, a loop of ``post()``)
paid a TCP connect, EHLO, STARTTLS and AUTH for every email. The pool keeps a connection after a
successful send for :data:`IDLE_SECONDS` and hands it to the next send with the same server,
port, security, TLS trust and login (the key holds a digest of the password, never the password).

- One connection is used by one send at a time (taken out of the pool while in use): thread-safe.
- A connection is never reused across a fork: the pool remembers the process that filled it, and
  a forked child forgets the parent's connections without touching their sockets (a QUIT from the
  child would end the parent's session).
- Idle connections are closed (QUIT) after the idle window by a daemon thread, and at interpreter
  exit.
- The caller retries once on a fresh connection when a reused one turns out closed by the server
  (:func:`is_stale_error`), so a connection the server dropped while idle never loses a message.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import smtplib

#: How long an idle connection is kept open after a send, in seconds (0 turns reuse off).
IDLE_SECONDS = 10.0
#: At most this many idle connections per key (threads sending at once each take their own).
MAX_IDLE_PER_KEY = 4


def secret_digest(secret: str | None) -> str | None:
    """What a pool key holds of a password: enough to tell two apart, nothing to recover it from."""
    return None if secret is None else hashlib.sha256(secret.encode("utf-8")).hexdigest()


class _Idle:
    __slots__ = ("client", "expires")

    def __init__(self, client: smtplib.SMTP, expires: float) -> None:
        self.client, self.expires = client, expires


class SMTPConnectionPool:
    """Idle SMTP connections by key; :meth:`take` one (or None), :meth:`give` it back after a good send."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._idle: dict[Hashable, list[_Idle]] = {}
        self._lock = threading.Condition(threading.Lock())
        self._reaper: threading.Thread | None = None
        self._wake_at = float("inf")  # when the sleeping reaper wakes next
        self._pid = os.getpid()

    def take(self, key: Hashable) -> smtplib.SMTP | None:
        """An idle connection for ``key`` opened by this process and still in its window, or None."""
        expired: list[smtplib.SMTP] = []
        found = None
        with self._lock:
            self._forget_if_forked()
            entries = self._idle.get(key, [])
            now = time.monotonic()
            while entries:
                entry = entries.pop()
                if entry.expires > now:
                    found = entry.client
                    break
                expired.append(entry.client)
            if not entries:
                self._idle.pop(key, None)
        for client in expired:
            _quit(client)
        return found

    def give(self, key: Hashable, client: smtplib.SMTP) -> None:
        """Keep ``client`` (after a successful send) for the idle window; close it when reuse is off or full."""
        if self.idle_seconds <= 0:
            _quit(client)
            return
        with self._lock:
            self._forget_if_forked()
            entries = self._idle.setdefault(key, [])
            if len(entries) >= MAX_IDLE_PER_KEY:
                surplus: smtplib.SMTP | None = client
            else:
                expires = time.monotonic() + self.idle_seconds
                entries.append(_Idle(client, expires))
                surplus = None
                self._start_reaper()
                if expires < self._wake_at:  # rarely: waking the reaper on every send cost a thread switch each
                    self._lock.notify()
        if surplus is not None:
            _quit(surplus)

    def close_all(self) -> None:
        """QUIT every idle connection this process opened (at exit, and for tests)."""
        with self._lock:
            self._forget_if_forked()
            clients = [entry.client for entries in self._idle.values() for entry in entries]
            self._idle.clear()
        for client in clients:
            _quit(client)

    def idle_count(self) -> int:
        with self._lock:
            self._forget_if_forked()
            return sum(len(entries) for entries in self._idle.values())

    def after_fork_in_child(self) -> None:
        """Forget the parent's connections without a QUIT (their sessions are the parent's), and its lock."""
        self._lock = threading.Condition(threading.Lock())
        self._idle = {}
        self._reaper = None
        self._wake_at = float("inf")
        self._pid = os.getpid()

    def _forget_if_forked(self) -> None:
        # register_at_fork covers os.fork(); this covers anything that forks around it
        if self._pid != os.getpid():
            self._idle, self._reaper, self._wake_at, self._pid = {}, None, float("inf"), os.getpid()

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, name="airflow-alerter-smtp-idle", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Close connections whose idle window has passed; sleeps until the next one is due."""
        while True:
            expired: list[smtplib.SMTP] = []
            with self._lock:
                if self._reaper is not threading.current_thread():
                    return
                now = time.monotonic()
                for key in list(self._idle):
                    keep = [entry for entry in self._idle[key] if entry.expires > now]
                    expired += [entry.client for entry in self._idle[key] if entry.expires <= now]
                    if keep:
                        self._idle[key] = keep
                    else:
                        del self._idle[key]
                if not self._idle and not expired:
                    self._reaper = None
                    return
                if not expired:
                    self._wake_at = min(entry.expires for entries in self._idle.values() for entry in entries)
                    self._lock.wait(max(self._wake_at - now, 0.0) + 0.01)
                    self._wake_at = float("inf")
            for client in expired:
                _quit(client)


def _quit(client: smtplib.SMTP) -> None:
    """End a session politely; a connection the server already closed is simply closed."""
    try:
        client.quit()
    except Exception:  # closing: nothing left to report to anyone
        client.close()


def is_stale_error(err: BaseException) -> bool:
    """A reused connection the server closed while it sat idle: disconnected, reset, or a 421 to the first command."""
    import smtplib

    if isinstance(err, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code == 421
    return isinstance(err, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError))


POOL = SMTPConnectionPool()
atexit.register(POOL.close_all)
os.register_at_fork(after_in_child=POOL.after_fork_in_child)
