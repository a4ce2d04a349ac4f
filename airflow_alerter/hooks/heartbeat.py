"""Whether a responder serves a connection: the heartbeat it publishes, read by gates before they poll.

A responder holding a pushed connection (Slack Socket Mode, Discord Gateway) for an asking
connection writes an Airflow Variable ``airflow_alerter.responder.<conn_id>`` every
:data:`BEAT_EVERY` seconds. A gate (worker or trigger) that finds a fresh one knows answers to its
question are pushed to that responder and written into its Human-in-the-loop record: it shows
answer buttons and makes no chat API calls while waiting. A beat older than :data:`LIVE_FOR`
seconds (the responder died, or lost its connection) counts as none: the gate polls the chat
again, as it does without a responder.

The Variable holds no secret: when, who (host and process), and how the responder is connected.
"""

from __future__ import annotations

import logging
import time

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "airflow_alerter.responder"
#: how often a connected responder renews its heartbeat
BEAT_EVERY = 15.0
#: how old a heartbeat may be and still count: several missed beats, so one slow write is not an outage
LIVE_FOR = 60.0


class Heartbeat(BaseModel):
    """One responder's latest sign of life for one connection."""

    at: float
    responder: str
    mode: str


def heartbeat_key(conn_id: str) -> str:
    from airflow_alerter.validation import bounded_key

    return bounded_key(f"{HEARTBEAT_PREFIX}.{conn_id}", HEARTBEAT_PREFIX)


def is_live(raw: str | None, now: float | None = None) -> bool:
    """Whether a stored heartbeat is fresh; a missing or unreadable one is not."""
    if not raw:
        return False
    try:
        beat = Heartbeat.model_validate_json(raw)
    except ValidationError:
        return False
    return 0 <= (time.time() if now is None else now) - beat.at <= LIVE_FOR


def responder_is_live(conn_id: str) -> bool:
    """Whether a responder serves ``conn_id`` now, read where a task or trigger runs (Airflow serves the Variable)."""
    from airflow.sdk import Variable

    try:
        return is_live(Variable.get(heartbeat_key(conn_id), default=None))
    except Exception as err:  # cannot tell: poll, which is always correct, only slower
        log.warning("Could not read the responder heartbeat of %s (%s); polling the chat", conn_id, err)
        return False
