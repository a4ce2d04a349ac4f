"""Discord's interactions, read the same way whichever door they came through.

The Gateway (``INTERACTION_CREATE``) and the api-server's Interactions Endpoint URL
(:mod:`airflow_alerter.plugins`) deliver the same interaction object. A click on one of our answer
buttons is a ``MESSAGE_COMPONENT`` interaction (type 3) whose ``data.custom_id`` is
:func:`~airflow_alerter.alerters.rendering.button_id`; it becomes the
:class:`~airflow_alerter.responder.decisions.Click` the Decider takes. Anything else is refused
(None). Nothing here logs an interaction (it may quote what people wrote).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_alerter.alerters.rendering import button_option
from airflow_alerter.responder.decisions import Click

#: Discord's interaction types and callback types used here
PING, MESSAGE_COMPONENT = 1, 3
PONG, CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE = 1, 4, 6
#: the message flag that shows a callback's message to the clicker alone
EPHEMERAL = 64
#: a component's type: a button
BUTTON = 2


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def click_from_interaction(conn_id: str, interaction: Mapping[str, Any]) -> Click | None:
    """The click a button interaction reports on a question message, or None when it is not one.

    In a server the clicker is ``member.user``, in a DM ``user``; the name shown is the global
    display name, else the username.
    """
    data = _mapping(interaction.get("data"))
    if interaction.get("type") != MESSAGE_COMPONENT or data.get("component_type", BUTTON) != BUTTON:
        return None
    option = button_option(data.get("custom_id"))
    user = _mapping(_mapping(interaction.get("member")).get("user")) or _mapping(interaction.get("user"))
    channel = _text(interaction.get("channel_id")) or _text(_mapping(interaction.get("channel")).get("id"))
    message_id = _text(_mapping(interaction.get("message")).get("id"))
    user_id = _text(user.get("id"))
    if option is None or channel is None or message_id is None or user_id is None:
        return None
    return Click(conn_id=conn_id, flavor="discord", channel=channel, message_id=message_id, option=option,
                 user_id=user_id, user_name=_text(user.get("global_name")) or _text(user.get("username")))


def ephemeral(text: str) -> dict[str, Any]:
    """The interaction callback that shows ``text`` to the clicker alone (no mentions are parsed)."""
    return {"type": CHANNEL_MESSAGE, "data": {"content": text[:2000], "flags": EPHEMERAL,
                                              "allowed_mentions": {"parse": []}}}
