"""The polling responder: every ``interval`` seconds, one look at each question asked in a chat.

``alerter_hitl_notifier`` posts a HITL operator's request to a chat and leaves a
:class:`~airflow_alerter.hooks.hitl.PendingRequest` in an Airflow Variable (a deferrable gate does the
same for its own question). On Airflow 3.3 the operator then waits in ``awaiting_input`` (no worker,
no trigger), on 3.1/3.2 in Airflow's own trigger, which only reads the record: neither reads a chat.
This long-running process does, like ``airflow triggerer`` does for triggers:

1. every ``interval`` seconds it lists the pending questions (Airflow's REST API, Variables by prefix);
2. for each, it reads the record: answered in Airflow (or timed out) → the chat shows that outcome;
3. else one chat check; a valid answer (the trust rules, the question's ``approvers``, options by
   name) is recorded by :class:`~airflow_alerter.responder.decisions.Decider` (first answer wins).

This is the fallback of the pushed responder (:mod:`airflow_alerter.responder.push`), for chats or
set-ups without Socket Mode or a Gateway connection. It publishes no heartbeat: gates keep polling
their own questions.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from airflow_alerter.responder.api import AirflowAPI
from airflow_alerter.responder.decisions import Decider

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0


@dataclass
class Responder:
    """One pass over the pending requests (:meth:`serve_once`), or passes every ``interval`` (:meth:`run`)."""

    api: AirflowAPI
    interval: float = DEFAULT_INTERVAL
    decider: Decider = field(init=False)

    def __post_init__(self) -> None:
        self.decider = Decider(self.api)

    def run(self, stopping: threading.Event) -> None:
        """Serve every ``interval`` seconds until ``stopping`` is set (SIGTERM, Ctrl-C)."""
        log.info("Responder serving %s every %gs", self.api.base_url, self.interval)
        while not stopping.is_set():
            started = time.monotonic()
            self.serve_once()
            stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def serve_once(self) -> int:
        """Serve each pending HITL operator's request once (gates check their own); the number closed."""
        from airflow_alerter.alerters.http import HttpError

        try:
            requests = [(key, pending) for key, pending in self.decider.pending() if not pending.gate]
        except HttpError as err:
            log.warning("Could not list the pending requests: %s", err)
            return 0
        return sum(self.decider.serve_safely(key, pending) for key, pending in requests)
