"""Deciding whether a question was answered: one policy shared by every flavor that can ask.

ZenML takes any top-level message from anyone, bots included, and matches keywords
case-sensitively. Here an answer counts only if it came after the question, from a person (not a
bot, not the alerter itself), from an allowed approver when a list is given, and states its intent
without doubt:

- a reply *starts* with a keyword, in any case, after any leading mentions, emoji and white space
  ("<@U1> LGTM!", "✅ approve"); a keyword later in the text is chatter ("who can approve this");
- a reply holding a question mark is a question, not an answer ("ok?", "approve? not sure");
- a reply that starts with an approve keyword but holds a negation ("not", "never", "no", any
  "n't" …) or a reject keyword anywhere is ambiguous ("ok, not yet", "yes no") and is ignored;
- a reply that starts with a reject keyword rejects: a rejection can only stop a gate, never pass one;
- a ✅/❌ reaction on the question answers it.

Replies carry their time; reactions do not (neither Slack nor Discord says when one was added).
When one check sees both an approval and a rejection and a reaction is among them, the order
cannot be known and the rejection wins (fail safe). Between replies alone the first one wins.

Replies that name a keyword but were ignored as unclear are reported (:attr:`Decision.unclear`),
so a flavor can say once in the thread how to answer.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, field_validator

from airflow_alerter.alerters.base import AlerterConfigError
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle

log = logging.getLogger(__name__)

DEFAULT_APPROVE_KEYWORDS = ("approve", "LGTM", "ok", "yes")
DEFAULT_REJECT_KEYWORDS = ("decline", "disapprove", "no", "reject")
APPROVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "✅", "✔️"})
REJECT_REACTIONS = frozenset({"x", "negative_squared_cross_mark", "❌", "❎"})
#: words that turn an approval into its opposite, or make it doubtful; any word ending in "n't" too
NEGATIONS = frozenset({
    "not", "no", "never", "nor", "neither", "nope", "nah", "cannot", "dont", "doesnt", "didnt", "wont",
    "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "shouldnt", "wouldnt", "aint", "without",
})
#: what may stand before the keyword: white space, mentions (<@U1>, <!here>, <@!1>, @alice), emoji
#: shortcodes (:rocket:), custom emoji (<:name:1>) and any other symbol or punctuation (✅, >, -)
_LEADING_NOISE = re.compile(r"(?:\s+|<[^>\s]{1,100}>|@[\w.-]+|:[\w+-]+:|[^\w\s])*")
_WORDS = re.compile(r"[\w'’]+")


def _approvers(value: Any) -> Any:
    """A comma- or space-separated string (a rendered template) becomes a list; blank entries drop out."""
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    if isinstance(value, (list, tuple, set)):
        value = [str(item).strip() for item in value if str(item).strip()]
    return value


#: why an empty allowlist is refused: it reads as "nobody", and a falsy check would make it "anyone"
EMPTY_APPROVERS = "must name at least one user id; leave it unset (None) to let anyone in the channel but bots answer"


def _not_empty(value: list[str] | None) -> list[str] | None:
    if value is not None and not value:
        raise ValueError(EMPTY_APPROVERS)
    return value


#: user ids whose answers count; None means anyone but bots, an empty list is an error
Approvers = Annotated[list[str] | None, BeforeValidator(_approvers), AfterValidator(_not_empty)]


def check_approvers(approvers: Any) -> None:
    """Refuse an empty ``approvers`` (a literal ``[]`` or a template that rendered to nothing), naming the field."""
    if approvers is not None and not _approvers(approvers):
        raise AlerterConfigError(f"approvers: {EMPTY_APPROVERS}")


class AskOptions(BaseModel):
    """Who may answer and with which words; a task's or call's override of the defaults."""

    approvers: Approvers = None
    approve_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_APPROVE_KEYWORDS))
    reject_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_REJECT_KEYWORDS))
    #: one button per option, in order (a responder records the clicks); None: answers by text and reaction only
    buttons: list[str] | None = None
    #: the "View in Airflow" link button beside the answer buttons
    view_url: str | None = None


class AnswerRules(BaseModel):
    """Who may answer and with which words, as a task's settings or a call's parameters override them.

    Asking flavors mix this into their Settings and Parameters models; None means "not overridden here".
    """

    approvers: Approvers = None
    approve_keywords: list[str] | None = None
    reject_keywords: list[str] | None = None
    buttons: list[str] | None = None
    view_url: str | None = None

    @field_validator("view_url")
    @classmethod
    def _web_link(cls, value: str | None) -> str | None:
        from airflow_alerter.alerters.rendering import is_web_url

        if value is not None and not is_web_url(value):
            raise ValueError("view_url: must be an http(s) link")
        return value


def resolve_options(resolve: Callable[[str, Any], Any], params: Any) -> AskOptions:
    """The AskOptions in force, by the alerter's precedence (call > task > connection > defaults)."""
    return AskOptions(
        approvers=resolve("approvers", params),
        approve_keywords=resolve("approve_keywords", params) or list(DEFAULT_APPROVE_KEYWORDS),
        reject_keywords=resolve("reject_keywords", params) or list(DEFAULT_REJECT_KEYWORDS),
        buttons=resolve("buttons", params) or None,
        view_url=resolve("view_url", params) or None,
    )


@dataclass(frozen=True)
class Candidate:
    """One thing a person did after the question: a reply (``text``) or a reaction (``reaction``).

    A reply's ``at`` is when it was written; a reaction's is only when a check first saw it.
    """

    user: str | None
    at: float
    text: str | None = None
    reaction: str | None = None
    is_bot: bool = False


@dataclass(frozen=True)
class Decision:
    """A check's outcome, and the replies it ignored because they named a keyword without a clear intent."""

    result: AskResult
    unclear: tuple[Candidate, ...] = ()


def _keyword_at_start(text: str, keywords: Sequence[str]) -> bool:
    words = sorted((re.escape(word) for word in keywords if word.strip()), key=len, reverse=True)
    return bool(words) and re.match(rf"(?:{'|'.join(words)})(?!\w)", text, re.IGNORECASE) is not None


def _mentions_keyword(text: str, keywords: Sequence[str]) -> bool:
    words = [re.escape(word) for word in keywords if word.strip()]
    return bool(words) and re.search(rf"(?<!\w)(?:{'|'.join(words)})(?!\w)", text, re.IGNORECASE) is not None


def _negated(text: str) -> bool:
    words = (word.replace("’", "'") for word in _WORDS.findall(text.casefold()))
    return any(word in NEGATIONS or word.endswith("n't") for word in words)


def read_reply(text: str, options: AskOptions) -> tuple[AskStatus | None, bool]:
    """What a reply says: ``(status, names_a_keyword)``; status is None unless the intent is unambiguous."""
    text = unicodedata.normalize("NFKC", text)
    keywords = [*options.approve_keywords, *options.reject_keywords]
    named = _mentions_keyword(text, keywords)
    if not named or "?" in text:
        return None, named
    rest = text[_LEADING_NOISE.match(text).end():]  # type: ignore[union-attr]  # the pattern matches ""
    if _keyword_at_start(rest, options.reject_keywords):
        return AskStatus.REJECTED, True
    if (_keyword_at_start(rest, options.approve_keywords) and not _negated(rest)
            and not _mentions_keyword(rest, options.reject_keywords)):
        return AskStatus.APPROVED, True
    return None, True


def classify_text(text: str, options: AskOptions) -> AskStatus | None:
    """Approve or reject when the reply states that intent without doubt (see the module docstring), else None."""
    return read_reply(text, options)[0]


def classify_reaction(reaction: str) -> AskStatus | None:
    name = reaction.strip(":").split("::")[0]
    if name in APPROVE_REACTIONS:
        return AskStatus.APPROVED
    if name in REJECT_REACTIONS:
        return AskStatus.REJECTED
    return None


def weigh(
    candidates: Iterable[Candidate], options: AskOptions, *, asked_at: float, alerter_user: str | None = None
) -> Decision:
    """The valid answer among ``candidates`` (first wins; a rejection wins when a reaction makes order unknown)."""
    approvers = set(options.approvers) if options.approvers is not None else None
    valid: list[tuple[Candidate, AskStatus]] = []
    unclear: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: c.at):
        if candidate.at < asked_at or candidate.is_bot or candidate.user in (None, alerter_user):
            continue
        if candidate.text is not None:
            status, named = read_reply(candidate.text, options)
        else:
            status, named = classify_reaction(candidate.reaction or ""), False
        allowed = approvers is None or candidate.user in approvers
        if status is not None and not allowed:
            log.info("Ignoring an answer from %s: not in the approvers list", candidate.user)
        elif status is not None:
            valid.append((candidate, status))
        elif named and allowed:
            unclear.append(candidate)
    if not valid:
        return Decision(AskResult(status=AskStatus.PENDING), tuple(unclear))
    chosen = valid[0]
    if len({status for _, status in valid}) > 1 and any(c.reaction is not None for c, _ in valid):
        chosen = next(answer for answer in valid if answer[1] is AskStatus.REJECTED)
    candidate, status = chosen
    text = candidate.text if candidate.text is not None else f":{candidate.reaction}:"
    return Decision(AskResult(status=status, responder=candidate.user, answered_at=candidate.at, text=text),
                    tuple(unclear))


def decide(
    candidates: Iterable[Candidate], options: AskOptions, *, asked_at: float, alerter_user: str | None = None
) -> AskResult:
    """The first valid answer among ``candidates``, or ``pending`` when there is none yet."""
    return weigh(candidates, options, asked_at=asked_at, alerter_user=alerter_user).result


def answered_on(result: AskResult, handle: QuestionHandle) -> AskResult:
    """``result`` naming the channel it was given on (the question's flavor) when it is an answer."""
    if result.is_final and result.channel is None and result.responder is not None:
        return result.model_copy(update={"channel": handle.flavor})
    return result


def answered_by(result: AskResult, flavor: str, mention: Callable[[str], str],
                quote: Callable[[str], str] = str) -> str:
    """Who answered, as a channel shows it: a mention for its own users, a name and place for others.

    An answer given in this chat mentions the user (``<@U123>``); one given elsewhere (Airflow's
    Required actions page, an email) names the person and where: "alice in Airflow"; ``quote``
    escapes that name for the channel's markup.
    """
    if result.channel in (None, flavor):
        return mention(result.responder or "?")
    where = "Airflow" if result.channel == "airflow" else result.channel
    return quote(f"{result.responder_name or result.responder or 'someone'} in {where}")


def choice_line(result: AskResult, who: str, quote: Callable[[str], str] = str) -> str | None:
    """The outcome line of a request answered with options of its own ("☑️ retrain, ship — chosen by …").

    ``who`` is shown as it is (already in the channel's markup); ``quote`` escapes the option names.
    """
    if not result.choice:
        return None
    return f"☑️ {quote(', '.join(result.choice))} — chosen by {who}"


HOW_TO_ANSWER_MARK = "How to answer:"


def keyword_alternatives(options: AskOptions) -> str:
    """" (also: LGTM, ok, yes / disapprove, no, reject)" after the first two keywords; "" when there are none."""
    approve, reject = options.approve_keywords[1:], options.reject_keywords[1:]
    return f" (also: {', '.join(approve)} / {', '.join(reject)})" if approve or reject else ""


def how_to_answer(options: AskOptions) -> str:
    """The one-time note a flavor posts when a reply named a keyword but was not a clear answer."""
    return (f"{HOW_TO_ANSWER_MARK} a reply that only mentions an answer is not counted. Start your reply with "
            f"{options.approve_keywords[0]!r} or {options.reject_keywords[0]!r} (no question, no negation), "
            "or react to the question with ✅ / ❌.")


# --- the steps of one check, driven by sync or async I/O ------------------------------------------


@dataclass(frozen=True)
class Step:
    """One API call a check needs: a flavor's generator yields it, a driver makes it and sends back the answer.

    A ``best_effort`` step (a note in the thread) may fail: the driver logs that and sends None.
    """

    call: str
    arguments: dict[str, Any] = field(default_factory=dict)
    best_effort: bool = False


Steps = Generator[Step, Any, AskResult]


def run_steps(steps: Steps, call: Callable[[Step], Any]) -> AskResult:
    """Drive ``steps`` with a blocking ``call``; the first error of a step that is not best effort propagates."""
    try:
        step = next(steps)
        while True:
            try:
                answer = call(step)
            except Exception as err:
                _unless_best_effort(step, err)
                answer = None
            step = steps.send(answer)
    except StopIteration as done:
        result: AskResult = done.value
        return result


async def arun_steps(steps: Steps, call: Callable[[Step], Awaitable[Any]]) -> AskResult:
    """:func:`run_steps` for the triggerer: the same steps, each call awaited."""
    try:
        step = next(steps)
        while True:
            try:
                answer = await call(step)
            except Exception as err:
                _unless_best_effort(step, err)
                answer = None
            step = steps.send(answer)
    except StopIteration as done:
        result: AskResult = done.value
        return result


def _unless_best_effort(step: Step, err: Exception) -> None:
    """Re-raise ``err`` unless ``step`` may fail; then log it and let the check go on."""
    if not step.best_effort:
        raise err
    log.warning("%s failed (%s); the answer check goes on without it", step.call, type(err).__name__)
