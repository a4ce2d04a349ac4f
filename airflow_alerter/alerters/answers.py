"""Deciding whether a question was answered: one policy shared by every flavor that can ask.

ZenML takes any top-level message from anyone, bots included, and matches keywords
case-sensitively. Here a reply counts only if it came after the question, from a person (not a
bot, not the alerter itself), from an allowed approver when a list is given, and holds an approve
or reject keyword as a whole word in any case. The first valid answer wins.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from airflow_alerter.models import AskResult, AskStatus

log = logging.getLogger(__name__)

DEFAULT_APPROVE_KEYWORDS = ("approve", "LGTM", "ok", "yes")
DEFAULT_REJECT_KEYWORDS = ("decline", "disapprove", "no", "reject")
APPROVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "✅", "✔️"})
REJECT_REACTIONS = frozenset({"x", "negative_squared_cross_mark", "❌", "❎"})


class AskOptions(BaseModel):
    """Who may answer and with which words; a task's or call's override of the defaults."""

    approvers: list[str] | None = None
    approve_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_APPROVE_KEYWORDS))
    reject_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_REJECT_KEYWORDS))


class AnswerRules(BaseModel):
    """Who may answer and with which words, as a task's settings or a call's parameters override them.

    Asking flavors mix this into their Settings and Parameters models; None means "not overridden here".
    """

    approvers: list[str] | None = None
    approve_keywords: list[str] | None = None
    reject_keywords: list[str] | None = None


def resolve_options(resolve: Callable[[str, Any], Any], params: Any) -> AskOptions:
    """The AskOptions in force, by the alerter's precedence (call > task > connection > defaults)."""
    return AskOptions(
        approvers=resolve("approvers", params),
        approve_keywords=resolve("approve_keywords", params) or list(DEFAULT_APPROVE_KEYWORDS),
        reject_keywords=resolve("reject_keywords", params) or list(DEFAULT_REJECT_KEYWORDS),
    )


@dataclass(frozen=True)
class Candidate:
    """One thing a person did after the question: a reply (``text``) or a reaction (``reaction``)."""

    user: str | None
    at: float
    text: str | None = None
    reaction: str | None = None
    is_bot: bool = False


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    words = [re.escape(word) for word in keywords if word]
    return re.compile(rf"(?<!\w)({'|'.join(words)})(?!\w)", re.IGNORECASE) if words else None


def classify_text(text: str, options: AskOptions) -> AskStatus | None:
    """Approve/reject by whole-word keyword; when both appear, the one written first wins."""
    found = []
    for status, keywords in ((AskStatus.APPROVED, options.approve_keywords),
                             (AskStatus.REJECTED, options.reject_keywords)):
        pattern = _keyword_pattern(keywords)
        match = pattern.search(text) if pattern else None
        if match:
            found.append((match.start(), status))
    return min(found)[1] if found else None


def classify_reaction(reaction: str) -> AskStatus | None:
    name = reaction.strip(":").split("::")[0]
    if name in APPROVE_REACTIONS:
        return AskStatus.APPROVED
    if name in REJECT_REACTIONS:
        return AskStatus.REJECTED
    return None


def decide(
    candidates: Iterable[Candidate], options: AskOptions, *, asked_at: float, alerter_user: str | None = None
) -> AskResult:
    """The first valid answer among ``candidates``, or ``pending`` when there is none yet."""
    approvers = set(options.approvers) if options.approvers else None
    for candidate in sorted(candidates, key=lambda c: c.at):
        if candidate.at < asked_at or candidate.is_bot or candidate.user in (None, alerter_user):
            continue
        status = (classify_text(candidate.text, options) if candidate.text is not None
                  else classify_reaction(candidate.reaction or ""))
        if status is None:
            continue
        if approvers is not None and candidate.user not in approvers:
            log.info("Ignoring an answer from %s: not in the approvers list", candidate.user)
            continue
        return AskResult(status=status, responder=candidate.user, answered_at=candidate.at,
                         text=candidate.text if candidate.text is not None else f":{candidate.reaction}:")
    return AskResult(status=AskStatus.PENDING)
