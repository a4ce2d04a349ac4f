"""Slack's wire format: the neutral alert (:mod:`airflow_alerter.alerters.rendering`) as Block Kit and mrkdwn.

Pure functions, no I/O: ``alerters/slack.py`` posts what they build. All user text is escaped for
mrkdwn, so an exception message holding ``<!channel>`` pings nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from airflow_alerter.alerters.rendering import BLOCK_KEYS as ALERT_BLOCK_KEYS
from airflow_alerter.alerters.rendering import (
    MAX_BUTTONS,
    VIEW_IN_AIRFLOW,
    button_id,
    button_style,
    chunks,
    code_texts,
    cut,
    escape_fences,
    facts,
)
from airflow_alerter.models import AlertContext, AlerterMessage

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
MAX_BLOCKS = 50
MAX_FIELDS = 10
TEXT_LIMIT = 4000
#: the run coordinates the context line shows, with their labels there
CONTEXT_LABELS = (("dag_id", "DAG"), ("task_id", "task"), ("run_id", "run"))
#: metadata the blocks show in their own places rather than as fields
BLOCK_KEYS = ALERT_BLOCK_KEYS | {key for key, _ in CONTEXT_LABELS}
#: the visible end of a message cut to Slack's 50 blocks
SHORTENED = "_… (message shortened to fit Slack's limits)_"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to, so user text stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_blocks(message: AlerterMessage, payload: BaseModel | None = None) -> list[dict[str, Any]]:
    """Block Kit for ``message``: header, body sections, fields, exception, context line; within Slack's limits.

    ``payload`` (ZenML's pipeline/step/stack names) adds its set fields before the metadata's facts.
    """
    head: list[dict[str, Any]] = []
    if message.title:
        header = {"type": "plain_text", "text": cut(message.title, HEADER_LIMIT)}
        head.append({"type": "header", "text": header})
    body = [section(chunk) for chunk in chunks(escape(message.body), SECTION_LIMIT) if chunk.strip()]
    shown = {**(payload.model_dump(exclude_none=True) if payload else {}), **dict(facts(message.metadata, BLOCK_KEYS))}
    fields = [{"type": "mrkdwn", "text": cut(f"*{escape(str(k))}*\n{escape(str(v))}", FIELD_LIMIT)}
              for k, v in shown.items()]
    tail = [{"type": "section", "fields": fields[i:i + MAX_FIELDS]} for i in range(0, len(fields), MAX_FIELDS)]
    tail += [_code_section(code) for code in code_texts(message.alert)]
    context = _context_line(message.metadata, message.alert)
    # A long body is shortened, not the facts and the exception after it: they say what went wrong.
    room = MAX_BLOCKS - len(head) - len(tail) - (context is not None)
    if body and len(body) > room:
        body = [*body[: max(room - 1, 0)], section(SHORTENED)]
    blocks = [*head, *body, *tail]
    if len(blocks) + (context is not None) > MAX_BLOCKS:  # so many facts that they alone overflow
        blocks = [*blocks[: MAX_BLOCKS - 2], section(SHORTENED)]
    return [*blocks, context] if context else blocks


def section(text: str) -> dict[str, Any]:
    """A section block of mrkdwn ``text`` (already escaped)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _code_section(code: str) -> dict[str, Any]:
    """An exception or traceback in a code block; a ``` in it gets a zero-width space, so it cannot end the block."""
    return section(f"```{cut(escape_fences(escape(code)), SECTION_LIMIT - 8)}```")


def _context_line(metadata: Mapping[str, Any], alert: AlertContext) -> dict[str, Any] | None:
    parts = [f"{label} `{escape(str(metadata[key]))}`" for key, label in CONTEXT_LABELS if metadata.get(key)]
    if alert.log_url:
        url = escape(alert.log_url).replace("|", "%7C")  # a | would end the URL and start the label
        parts.append(f"<{url}|View log>")
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)}]} if parts else None


#: Slack's limits for a button: its label and its value
BUTTON_LABEL_LIMIT, BUTTON_VALUE_LIMIT = 75, 2000
#: the confirmation a Reject button asks for before it is sent
REJECT_CONFIRM = {
    "title": {"type": "plain_text", "text": "Reject?"},
    "text": {"type": "plain_text", "text": "The gate will not pass; this cannot be undone."},
    "confirm": {"type": "plain_text", "text": "Reject"},
    "deny": {"type": "plain_text", "text": "Cancel"},
    "style": "danger",
}


def answer_buttons(options: list[str], view_url: str | None) -> dict[str, Any]:
    """One ``actions`` block: a button per option (Approve green, Reject red and confirmed), then the link.

    The buttons carry only the option's index (and its name, for people reading the payload): the
    responder reads who may answer from Airflow, never from the click.
    """
    elements: list[dict[str, Any]] = []
    for index, option in enumerate(options[:MAX_BUTTONS]):
        button: dict[str, Any] = {"type": "button", "action_id": button_id(index),
                                  "text": {"type": "plain_text", "text": cut(option, BUTTON_LABEL_LIMIT)},
                                  "value": cut(option, BUTTON_VALUE_LIMIT)}
        style = button_style(option)
        if style == "approve":
            button["style"] = "primary"
        elif style == "reject":
            button.update(style="danger", confirm=REJECT_CONFIRM)
        elements.append(button)
    if view_url:
        elements.append({"type": "button", "action_id": "airflow_alerter.view", "url": view_url,
                         "text": {"type": "plain_text", "text": VIEW_IN_AIRFLOW}})
    return {"type": "actions", "block_id": "airflow_alerter.answers", "elements": elements}

