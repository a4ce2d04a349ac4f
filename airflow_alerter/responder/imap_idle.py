"""The pushed connection of an email connection: one IMAP session that waits for replies with IDLE.

``airflow-alerter responder --conn-id ops_email`` keeps the connection's mailbox open (the ``imap_*``
extras) and waits with IMAP IDLE (RFC 2177), where the server tells of a new message the moment it
is saved; a server without IDLE is asked with a NOOP every few seconds. New mail → one check of each
pending question of this connection (:meth:`~.decisions.Decider.catch_up`): the replies are read and
weighed as a gate reads them, and an answer is recorded in its Human-in-the-loop record at once.

While this connection is up the responder publishes its heartbeat, so the connection's gates stop
opening the mailbox at every interval and only read their record. A lost session is opened again
after :func:`~.push.reconnect_delay`, and every (re)connect starts with that one check of each
question, so no reply that arrived meanwhile is missed. imaplib blocks: the session runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from airflow_alerter.exceptions import AlerterError
from airflow_alerter.responder.decisions import Decider
from airflow_alerter.responder.push import reconnect_delay

log = logging.getLogger(__name__)

#: the longest single wait for mail before the session looks whether it should stop
WAIT_FOR = 5.0


class ImapIdleConnection:
    """The mailbox of one ``smtp_email`` connection, watched for replies."""

    mode = "imap_idle"

    def __init__(self, conn_id: str, alerter: Any, decider: Decider) -> None:
        self.conn_id = conn_id
        self.alerter = alerter
        self.decider = decider
        self._connected = False
        self._stop = threading.Event()

    @classmethod
    def for_alerter(cls, conn_id: str, alerter: Any, decider: Decider) -> ImapIdleConnection:
        return cls(conn_id, alerter, decider)

    @property
    def connected(self) -> bool:
        return self._connected

    async def run(self, stopping: asyncio.Event) -> None:
        watching = asyncio.ensure_future(asyncio.to_thread(self._watch))
        try:
            await stopping.wait()
        finally:
            self._stop.set()
            await watching

    def _watch(self) -> None:
        """Sessions, one after another, until stopped; a failure waits before the next."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self._session()
                attempt = 0
            except AlerterError as err:
                log.warning("The mailbox of %s cannot be watched (%s); again in %gs", self.conn_id, err,
                            reconnect_delay(attempt))
            finally:
                self._connected = False
            if self._stop.wait(reconnect_delay(attempt)):
                return
            attempt += 1

    def _session(self) -> None:
        from airflow_alerter.alerters.imap import Mailbox

        with Mailbox(self.alerter.imap_settings()) as mailbox:
            self._connected = True
            log.info("Watching the mailbox of %s for replies (%s)", self.conn_id,
                     "IMAP IDLE" if mailbox.supports_idle else "NOOP polls: the server has no IDLE")
            self.decider.catch_up([self.conn_id])
            while not self._stop.is_set():
                if mailbox.wait_for_mail(WAIT_FOR):
                    self.decider.catch_up([self.conn_id])
