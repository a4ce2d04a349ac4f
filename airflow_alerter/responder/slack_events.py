"""Slack's interactivity and Events API payloads, read the same way whichever door they came through.

Socket Mode (:mod:`.slack_socket`) and the api-server's HTTP endpoint (:mod:`airflow_alerter.plugins`)
deliver the same JSON: a ``block_actions`` payload for a button click, an ``event_callback``'s
``event`` for a thread reply or a reaction. These functions turn it into what the
:class:`~airflow_alerter.responder.decisions.Decider` takes, and refuse (None) anything else: a
payload that is not a click on one of our answer buttons, a bot's message, a malformed field.
Nothing here logs a payload (it may quote what people wrote).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_alerter.alerters.rendering import BUTTON_PREFIX, button_option
from airflow_alerter.responder.decisions import Click, Outcome, Verdict, decision_text

log = logging.getLogger(__name__)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def answer_action(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first action of a ``block_actions`` payload that is one of our answer buttons."""
    actions = payload.get("actions")
    if payload.get("type") != "block_actions" or not isinstance(actions, list):
        return None
    return next((a for a in actions if isinstance(a, Mapping) and
                 str(a.get("action_id", "")).startswith(BUTTON_PREFIX)), None)


def click_from_actions(conn_id: str, payload: Mapping[str, Any]) -> Click | None:
    """The click a ``block_actions`` payload reports on a question message, or None when it is not one."""
    action = answer_action(payload)
    option = button_option(action.get("action_id")) if action is not None else None
    container, user = _mapping(payload.get("container")), _mapping(payload.get("user"))
    channel = _text(container.get("channel_id")) or _text(_mapping(payload.get("channel")).get("id"))
    message_ts = _text(container.get("message_ts")) or _text(_mapping(payload.get("message")).get("ts"))
    user_id = _text(user.get("id"))
    if option is None or channel is None or message_ts is None or user_id is None:
        return None
    return Click(conn_id=conn_id, flavor="slack", channel=channel, message_id=message_ts, option=option,
                 user_id=user_id, user_name=_text(user.get("name")) or _text(user.get("username")))


def question_of_event(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(channel, question ts)`` a thread reply or a ✅/❌ reaction is about; None for anything else.

    Bots' messages, edits and other subtypes are not answers; a reaction on a reply is not either.
    """
    kind = event.get("type")
    if kind == "message" and not event.get("bot_id") and not event.get("subtype"):
        channel, thread = _text(event.get("channel")), _text(event.get("thread_ts"))
        return (channel, thread) if channel and thread and thread != event.get("ts") else None
    if kind == "reaction_added":
        item = _mapping(event.get("item"))
        channel, ts = _text(item.get("channel")), _text(item.get("ts"))
        return (channel, ts) if item.get("type") == "message" and channel and ts else None
    return None


def notice_text(outcome: Outcome) -> str | None:
    """What the clicker alone is told: why nothing changed, or that the decision was recorded."""
    if outcome.verdict is Verdict.RECORDED and outcome.result is not None:
        return f"Recorded: {decision_text(outcome.result)}."
    return outcome.notice or None
