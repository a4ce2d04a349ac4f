"""Discord's wire format: the neutral alert (:mod:`airflow_alerter.alerters.rendering`) as embeds and messages.

Pure functions, no I/O: ``alerters/discord.py`` posts what they build. Long messages are split
across embeds and messages to fit Discord's limits, and every message carries
``allowed_mentions: {"parse": []}``, so an exception text holding ``@everyone`` pings nobody.
A question may carry answer buttons (:func:`answer_components`); its outcome line
(:func:`outcome_line`) is what both the thread reply and the edited question show.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_alerter.alerters.answers import answered_by, choice_line
from airflow_alerter.alerters.rendering import (
    MAX_BUTTONS,
    VIEW_IN_AIRFLOW,
    button_id,
    button_style,
    chunks,
    code_block,
    code_texts,
    colour,
    cut,
    facts,
    preview,
    web_log_url,
)
from airflow_alerter.models import AlerterMessage, AskResult, AskStatus

CONTENT_LIMIT, TITLE_LIMIT, DESCRIPTION_LIMIT = 2000, 256, 4096
FIELDS_LIMIT, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT = 25, 256, 1024
EMBEDS_PER_MESSAGE, EMBED_TOTAL_LIMIT = 10, 6000
#: the short line above the embeds: what notifications and embed-less clients show
PREVIEW_LIMIT = 200
NO_MENTIONS: dict[str, Any] = {"parse": []}
STATUS_LINES = {
    AskStatus.APPROVED: "✅ Approved by {responder}",
    AskStatus.REJECTED: "❌ Rejected by {responder}",
    AskStatus.TIMED_OUT: "⌛ Timed out: no valid answer arrived in time",
}
#: message components: an action row holds up to 5 buttons, a message up to 5 rows (Discord's limits)
ACTION_ROW, BUTTON = 1, 2
BUTTONS_PER_ROW, ROWS_LIMIT, LABEL_LIMIT = 5, 5, 80
#: button styles: secondary (grey) for a plain option, success (green) / danger (red) for approve / reject
SECONDARY, SUCCESS, DANGER, LINK = 2, 3, 4, 5
BUTTON_STYLES = {"approve": SUCCESS, "reject": DANGER}


def build_embeds(message: AlerterMessage) -> list[dict[str, Any]]:
    """Embeds for ``message``: title, body, exception, then the metadata as fields; more embeds when long."""
    alert = message.alert
    rgb = colour(alert.kind)
    texts = chunks(message.body, DESCRIPTION_LIMIT)
    texts += [code_block(code, DESCRIPTION_LIMIT) for code in code_texts(alert)]
    log_url = web_log_url(alert)
    fields = [
        {"name": cut(str(key), FIELD_NAME_LIMIT), "value": cut(str(value), FIELD_VALUE_LIMIT), "inline": True}
        for key, value in facts(message.metadata)
    ]
    if log_url and not message.title:
        fields.append({"name": "log", "value": f"[View log]({log_url})", "inline": True})
    embeds: list[dict[str, Any]] = [{"description": text, "color": rgb} for text in texts]
    if message.title:
        head: dict[str, Any] = embeds[0] if embeds else {"color": rgb}
        head["title"] = cut(message.title, TITLE_LIMIT)
        if log_url:
            head["url"] = log_url
        embeds[:1] = [head]
    embeds += [{"fields": group, "color": rgb} for group in _field_groups(fields)]
    return embeds


def _field_groups(fields: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """At most 25 fields an embed, and few enough that one embed stays within the 6000-character total."""
    group: list[dict[str, Any]] = []
    size = 0
    for field in fields:
        field_size = len(field["name"]) + len(field["value"])
        if group and (len(group) == FIELDS_LIMIT or size + field_size > EMBED_TOTAL_LIMIT):
            yield group
            group, size = [], 0
        group.append(field)
        size += field_size
    if group:
        yield group


def embed_size(embed: Mapping[str, Any]) -> int:
    """What counts towards Discord's 6000-character total of one message's embeds."""
    texts = [
        embed.get("title"),
        embed.get("description"),
        (embed.get("footer") or {}).get("text"),
        (embed.get("author") or {}).get("name"),
    ]
    texts += [text for field in embed.get("fields") or [] for text in (field.get("name"), field.get("value"))]
    return sum(len(str(text)) for text in texts if text)


def pack_embeds(embeds: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The embeds grouped into messages of at most 10 embeds and 6000 embed characters each."""
    batches: list[list[dict[str, Any]]] = [[]]
    for embed in embeds:
        batch = batches[-1]
        if batch and (
            len(batch) == EMBEDS_PER_MESSAGE or sum(map(embed_size, batch)) + embed_size(embed) > EMBED_TOTAL_LIMIT
        ):
            batches.append(batch := [])
        batch.append(embed)
    return batches


def with_line(text: str, line: str, size: int = CONTENT_LIMIT) -> str:
    """``text`` then ``line``, shortening ``text`` (never ``line``) to fit ``size``."""
    if not line:
        return cut(text, size)
    return f"{cut(text, size - len(line) - 1)}\n{line}" if text else cut(line, size)


def embed_messages(message: AlerterMessage, embeds: list[dict[str, Any]], line: str = "") -> list[dict[str, Any]]:
    """The Discord messages carrying ``message`` as embeds; the first holds a short preview (and ``line``)."""
    payloads = [{"embeds": batch, "allowed_mentions": NO_MENTIONS} for batch in pack_embeds(embeds)]
    payloads[0]["content"] = with_line(preview(message, PREVIEW_LIMIT), line)
    return payloads


def text_messages(message: AlerterMessage, line: str = "") -> list[dict[str, Any]]:
    """The same message as plain text in 2000-character pieces: the fallback when an embed is refused."""
    text = message.as_text()
    head = CONTENT_LIMIT - len(line) - 1 if line else CONTENT_LIMIT
    pieces = [text[:head], *chunks(text[head:], CONTENT_LIMIT)]
    if line:
        pieces[0] = f"{pieces[0]}\n{line}" if pieces[0] else line
    return [{"content": piece, "allowed_mentions": NO_MENTIONS} for piece in pieces]


# --- answer buttons and the outcome --------------------------------------------------------------


def answer_components(buttons: Sequence[str] | None, view_url: str | None = None) -> list[dict[str, Any]]:
    """Action rows of answer buttons (one per option, at most :data:`MAX_BUTTONS`) and the link to Airflow.

    5 buttons a row, at most 5 rows; the custom ids name the option's index only
    (:func:`~airflow_alerter.alerters.rendering.button_id`), never the question or a secret.
    """
    items: list[dict[str, Any]] = [
        {"type": BUTTON, "style": BUTTON_STYLES.get(button_style(option) or "", SECONDARY),
         "label": cut(option.strip() or f"Option {index + 1}", LABEL_LIMIT), "custom_id": button_id(index)}
        for index, option in enumerate(list(buttons or [])[:MAX_BUTTONS])
    ]
    if view_url:
        items.append({"type": BUTTON, "style": LINK, "label": VIEW_IN_AIRFLOW, "url": view_url})
    items = items[: BUTTONS_PER_ROW * ROWS_LIMIT]
    return [{"type": ACTION_ROW, "components": items[start : start + BUTTONS_PER_ROW]}
            for start in range(0, len(items), BUTTONS_PER_ROW)]


def outcome_line(result: AskResult, flavor: str = "discord") -> str:
    """The line that closes a question: who approved, rejected or chose what, a timeout, or why it closed."""
    who = answered_by(result, flavor, lambda user: f"<@{user}>")
    if choice := choice_line(result, who):
        return cut(choice, CONTENT_LIMIT)
    if template := STATUS_LINES.get(result.status):
        return template.format(responder=who)
    # an error: the reason is shown as it is (never formatted: it may hold braces)
    return cut(f"⚠️ Closed: {result.reason or result.status.value}", CONTENT_LIMIT)
