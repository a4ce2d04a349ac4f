"""What every flavor shows of an alert, decided once: the flavors only map it to their wire format.

Pure functions and constants, no I/O and no Airflow: the colour of each kind of alert, the verb
that says what happened, the short preview line, which metadata keys get places of their own,
cutting and chunking text to a chat's limits, and fences user text cannot close. A fix here
reaches Slack, Discord, email and the webhook presets at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_alerter.models import ALERT_KEYS, AlertContext, AlerterMessage, AskStatus

ELLIPSIS = "…"
ZWSP = "\u200b"
FENCE = "```"
#: metadata a flavor lays out in places of its own (a colour, a code block, a link), never as a fact
BLOCK_KEYS = frozenset(ALERT_KEYS)
#: one colour per kind of alert, as 0xRRGGBB; Discord takes the number, email and chats a #rrggbb
COLOURS = {"failure": 0xDE350B, "retry": 0xFF991F, "success": 0x00875A}
DEFAULT_COLOUR = 0x0052CC
#: what happened, for a sentence such as "Task t in DAG d failed"
VERBS = {"failure": "failed", "success": "succeeded", "retry": "failed and will be retried", "info": "reported"}


def cut(text: str, size: int) -> str:
    """``text`` within ``size`` characters, ending in an ellipsis when it had to be cut."""
    return text if len(text) <= size else text[: size - 1] + ELLIPSIS


def chunks(text: str, size: int) -> list[str]:
    """``text`` in pieces of at most ``size`` characters (none for an empty text), for chats that cap a part.

    A piece that would end inside a code fence ends before the fence instead, so the fence renders
    whole in the next piece; only a fence longer than a whole piece is split, as it cannot fit.
    """
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text) and text.count(FENCE, 0, end) % 2:  # the cut falls inside a fence: the last one opened it
            opening = text.rfind(FENCE, start, end)
            end = opening if opening > start else end
        pieces.append(text[start:end])
        start = end
    return pieces


def is_web_url(value: Any) -> bool:
    """An http(s) URL without spaces: chats refuse a whole message or card whose link is anything else."""
    return isinstance(value, str) and value.startswith(("https://", "http://")) and " " not in value


def web_log_url(alert: AlertContext) -> str | None:
    """The log link when it may become a link (never ``javascript:`` or ``data:``)."""
    return alert.log_url if is_web_url(alert.log_url) else None


def colour(kind: str | None) -> int:
    """The alert's colour as 0xRRGGBB: red for a failure, orange for a retry, green for a success, else blue."""
    return COLOURS.get(str(kind), DEFAULT_COLOUR)


def hex_colour(kind: str | None) -> str:
    """:func:`colour` as CSS writes it, ``#de350b``."""
    return f"#{colour(kind):06x}"


def verb(kind: str) -> str:
    """What an alert of ``kind`` says happened; an unknown kind is shown as it is."""
    return VERBS.get(kind, kind)


def preview(message: AlerterMessage, size: int) -> str:
    """The one line notifications show: the title, or else the body's first line, within ``size``."""
    return cut(message.title or (message.body.strip().splitlines() or [""])[0], size)


def facts(metadata: Mapping[str, Any], shown_elsewhere: frozenset[str] = BLOCK_KEYS) -> list[tuple[str, Any]]:
    """The metadata shown as "key: value" facts: all but the keys laid out elsewhere, and no empty value."""
    return [(key, value) for key, value in metadata.items() if key not in shown_elsewhere and value not in (None, "")]


def code_texts(alert: AlertContext) -> list[str]:
    """The exception, then its (already trimmed) traceback: what each flavor shows in monospace."""
    return [text for text in (alert.exception, alert.traceback) if text]


def escape_fences(text: str) -> str:
    """``text`` whose ``` cannot end a code fence early: each gets a zero-width space."""
    return text.replace(FENCE, f"`{ZWSP}``")


def code_block(text: str, size: int) -> str:
    """A fenced block within ``size`` characters: the text is cut, never the closing fence."""
    return f"{FENCE}\n{cut(escape_fences(text), size - 8)}\n{FENCE}"


# --- answer buttons: the same ids on every chat, so one responder reads any flavor's clicks ---------

#: the id every answer button carries, followed by the index of its option: no secret, no key
BUTTON_PREFIX = "airflow_alerter.option."
#: the most answer buttons a question shows (Discord: 5 rows of 5, one of them the link; Slack: 25)
MAX_BUTTONS = 20
#: the label of the link button to the question's Required actions page
VIEW_IN_AIRFLOW = "View in Airflow"
#: the mark before a question's outcome line, in every channel
STATUS_ICONS = {AskStatus.APPROVED: "✅", AskStatus.REJECTED: "❌", AskStatus.TIMED_OUT: "⌛", AskStatus.ERROR: "⚠️"}


def button_id(index: int) -> str:
    """The action id (Slack) / custom id (Discord) of the button choosing option ``index``."""
    return f"{BUTTON_PREFIX}{index}"


def button_option(action_id: Any) -> int | None:
    """The option index a clicked button names, or None for a button that is not an answer button of ours."""
    text = str(action_id or "")
    number = text[len(BUTTON_PREFIX):] if text.startswith(BUTTON_PREFIX) else ""
    return int(number) if number.isdigit() and len(number) <= 3 else None


def button_style(option: str) -> str | None:
    """``"approve"`` / ``"reject"`` for the options styled as such (green; red with a confirmation), else None."""
    folded = option.strip().casefold()
    return folded if folded in ("approve", "reject") else None

