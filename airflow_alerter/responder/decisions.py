"""Decisions: a click, a reply or a reaction on a question, written once where the question lives.

Every way an answer reaches a responder ends here, whatever carried it (Slack Socket Mode, Discord's
Gateway, the api-server's HTTP endpoints, a polling pass):

- the question is found among the pending ones (Airflow Variables by prefix, cached per connection,
  listed again when a message is not known), so a click on a question of another deployment, an
  already closed one or a deleted one changes nothing;
- the clicker is checked against the question's approvers (read from Airflow, never from the click);
- the decision is written with ``PATCH …/hitlDetails``, the call of Airflow's Required actions page,
  which locks the record and refuses a second answer (409): first wins, across channels and across
  responders, and the loser is told who answered first;
- the question's buttons give way to the outcome (``show_decision``) so nobody can click twice; a HITL
  operator's request is also concluded in the thread and forgotten, a gate does that itself.

Nothing here speaks a chat protocol: the transports turn their events into :class:`Click` and
:meth:`Decider.message_event` calls and show :attr:`Outcome.notice` to the clicker only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from urllib.parse import quote

from airflow_alerter.alerters.http import HttpError
from airflow_alerter.hooks.hitl import (
    AIRFLOW_CHANNEL,
    APPROVE,
    REJECT,
    PendingRequest,
    answer_facts,
    answer_words,
    chosen_options,
    own_choice,
    result_from_event,
)
from airflow_alerter.models import AskResult, AskStatus
from airflow_alerter.responder.api import AirflowAPI, pending_requests

log = logging.getLogger(__name__)

#: listings of the pending questions made for a message not (yet) known, and the seconds between them
RELISTS, RELIST_AFTER = 2, 1.0
#: how long a message found not pending is taken as such without listing again
UNKNOWN_FOR = 10.0
#: the prefix of the short-lived Variables that let one responder at a time write a question's answer
CLAIM_PREFIX = "airflow_alerter.claim"
#: how old a claim may be before another responder takes it over (its holder died while writing)
CLAIM_FOR = 30.0
#: how long a written claim settles before it is read back (longer than two writes at once take to commit)
CLAIM_SETTLE = 0.05


def claim_key(key: str) -> str:
    """The claim Variable of the question stored under ``key``: a digest, short and not under the question's prefix."""
    import hashlib

    return f"{CLAIM_PREFIX}.{hashlib.sha256(key.encode()).hexdigest()[:40]}"


@dataclass(frozen=True)
class Click:
    """A button pressed on a question, as the chat reported it: which question, which option, by whom."""

    conn_id: str
    flavor: str
    channel: str
    message_id: str
    option: int
    user_id: str
    user_name: str | None = None
    at: float = field(default_factory=time.time)


class Verdict(str, Enum):
    RECORDED = "recorded"
    NOT_APPROVER = "not_approver"
    ALREADY_ANSWERED = "already_answered"
    NOT_PENDING = "not_pending"
    UNKNOWN_OPTION = "unknown_option"


@dataclass(frozen=True)
class Outcome:
    """What became of a click; ``notice`` is for the clicker alone (empty when the message shows it)."""

    verdict: Verdict
    notice: str = ""
    result: AskResult | None = None


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%H:%M UTC") if at else "an earlier time"


def decision_text(result: AskResult) -> str:
    """A decision in plain words for a notice: "approved by alice on slack at 14:02 UTC"."""
    verb = {AskStatus.APPROVED: "approved", AskStatus.REJECTED: "rejected"}.get(result.status, result.status.value)
    if result.choice:
        verb = "answered “" + ", ".join(result.choice) + "”"
    who = result.responder_name or result.responder or "someone"
    return f"{verb} by {who} on {result.channel or 'another channel'} at {_when(result.answered_at)}"


def answer_settings(pending: PendingRequest) -> dict[str, Any]:
    """The chat check's rules for a question: a gate's own, or a request's options as the words that count."""
    if pending.gate:
        settings = dict(pending.settings)
    else:
        approve, reject = answer_words(pending.options)
        settings = {"approve_keywords": approve, "reject_keywords": reject}
    if pending.approvers is not None:
        settings["approvers"] = pending.approvers
    return settings


def click_answer(pending: PendingRequest, click: Click) -> tuple[AskResult, list[str]]:
    """The answer a click on option ``click.option`` gives: ``(AskResult, chosen_options)``."""
    option = pending.options[click.option]
    rejects = option.casefold() == REJECT.casefold()
    chosen = [option]
    result = AskResult(status=AskStatus.REJECTED if rejects else AskStatus.APPROVED, responder=click.user_id,
                       responder_name=click.user_name, channel=click.flavor, answered_at=click.at,
                       text=option, choice=None if pending.gate else own_choice(chosen))
    return result, chosen


def _alerter(conn_id: str, settings: dict[str, Any]) -> Any:
    from airflow_alerter.hooks.alerter import AlerterHook

    return AlerterHook(conn_id, settings).get_alerter()


def is_approver(pending: PendingRequest, user_id: str) -> bool:
    """Whether ``user_id`` may answer: any user without an approvers list; email addresses in any case."""
    if pending.approvers is None:
        return True
    if "@" in user_id:
        return user_id.casefold() in {approver.casefold() for approver in pending.approvers}
    return user_id in pending.approvers


def where(pending: PendingRequest) -> str:
    return f"{pending.dag_id}/{pending.run_id}/{pending.task_id}[{pending.map_index}]"


@dataclass
class Decider:
    """Finds a question, records its first answer, shows the outcome; safe to call from many threads."""

    api: AirflowAPI
    _questions: dict[tuple[str, str, str], tuple[str, PendingRequest]] = field(default_factory=dict, repr=False)
    _unknown: dict[tuple[str, str, str], float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- finding the question ---------------------------------------------------------------------

    def pending(self, conn_ids: Iterable[str] | None = None) -> list[tuple[str, PendingRequest]]:
        """Every pending question (of ``conn_ids``), listed now; the message index is rebuilt from it."""
        found = pending_requests(self.api)
        with self._lock:
            self._questions = {(p.conn_id, p.handle.channel, p.handle.message_id): (key, p) for key, p in found}
            self._unknown = {where: at for where, at in self._unknown.items()
                             if where not in self._questions and time.monotonic() - at < UNKNOWN_FOR}
        wanted = None if conn_ids is None else set(conn_ids)
        return [(key, p) for key, p in found if wanted is None or p.conn_id in wanted]

    def find(self, conn_id: str, channel: str, message_id: str) -> tuple[str, PendingRequest] | None:
        """The pending question posted as ``message_id``: from the index, else from new listings.

        A question is stored just after it is posted, so a message not yet known is listed again
        (twice, :data:`RELIST_AFTER` apart) before it counts as not pending; a message found not pending
        is not listed again for :data:`UNKNOWN_FOR` seconds, so a flood of clicks on foreign messages
        costs one listing each, not one per click.
        """
        wanted = (conn_id, channel, message_id)
        for attempt in range(RELISTS + 1):
            with self._lock:
                known = self._questions.get(wanted)
                unknown_since = self._unknown.get(wanted)
            if known is not None:
                return known
            if attempt == RELISTS or (unknown_since is not None and time.monotonic() - unknown_since < UNKNOWN_FOR):
                break
            if attempt:
                time.sleep(RELIST_AFTER)
            self.pending()
        with self._lock:
            self._unknown[wanted] = time.monotonic()
        return None

    def forget(self, key: str, pending: PendingRequest) -> None:
        with self._lock:
            self._questions.pop((pending.conn_id, pending.handle.channel, pending.handle.message_id), None)
        if not pending.gate:  # a gate deletes its own Variable when it finishes
            try:
                self.api.call("DELETE", f"/variables/{quote(key, safe='')}")
            except HttpError as err:
                if err.status != 404:
                    raise

    # --- a click ----------------------------------------------------------------------------------

    def click(self, click: Click) -> Outcome:
        """Record a button click (first answer wins), or say to the clicker why it changed nothing."""
        found = self.find(click.conn_id, click.channel, click.message_id)
        if found is None:
            return Outcome(Verdict.NOT_PENDING, "This question is not waiting for an answer here any more "
                                                "(it was answered, closed, or belongs to another deployment).")
        key, pending = found
        if not 0 <= click.option < len(pending.options):
            return Outcome(Verdict.UNKNOWN_OPTION, "That button is not one of this question's options.")
        if not is_approver(pending, click.user_id):
            log.info("A click by %s on %s is not counted: not an approver", click.user_id, where(pending))
            return Outcome(Verdict.NOT_APPROVER, "You are not an approver of this question; nothing changed.")
        answer, chosen = click_answer(pending, click)
        standing = self.record(key, pending, answer, chosen)
        if standing is not answer:
            return Outcome(Verdict.ALREADY_ANSWERED, f"Already answered: {decision_text(standing)}.", standing)
        return Outcome(Verdict.RECORDED, "", answer)

    # --- replies and reactions, catching up -------------------------------------------------------

    def message_event(self, conn_id: str, channel: str, message_id: str) -> bool:
        """A reply or reaction on the question ``message_id`` arrived: one check of it; True when closed."""
        found = self.find(conn_id, channel, message_id)
        return found is not None and self.serve(*found)

    def catch_up(self, conn_ids: Iterable[str] | None = None) -> int:
        """One look at each pending question (after a (re)connect): the number closed."""
        try:
            questions = self.pending(conn_ids)
        except HttpError as err:
            log.warning("Could not list the pending questions: %s", err)
            return 0
        return sum(self.serve_safely(key, pending) for key, pending in questions)

    def serve_safely(self, key: str, pending: PendingRequest, check_chat: bool = True) -> bool:
        try:
            return self.serve(key, pending, check_chat)
        except Exception as err:  # one broken question must not stop the others being served
            log.warning("Could not serve the question of %s: %s", where(pending), err)
            return False

    def sweep(self, conn_ids: Iterable[str] | None = None) -> int:
        """Show the answers given in Airflow (or its timeouts) of pending HITL requests; no chat API call is made.

        Gates are left out: each reads its own record and shows an answer given in Airflow itself.
        """
        try:
            questions = [(key, pending) for key, pending in self.pending(conn_ids) if not pending.gate]
        except HttpError as err:
            log.warning("Could not list the pending questions: %s", err)
            return 0
        return sum(self.serve_safely(key, pending, check_chat=False) for key, pending in questions)

    def serve(self, key: str, pending: PendingRequest, check_chat: bool = True) -> bool:
        """Show an answer given in Airflow, or check the chat once and record its answer; True when closed."""
        try:
            record = self.api.call("GET", pending.api_path)
        except HttpError as err:
            if err.status != 404:
                raise
            log.info("The question of %s is gone (its task was cleared or deleted); forgetting it", where(pending))
            self.forget(key, pending)
            return True
        if record.get("response_received"):
            if not pending.gate:  # a gate shows and closes an answer in its record itself
                self._close(key, pending, _alerter(pending.conn_id, answer_settings(pending)),
                            result_from_event(record))
            return True
        if not check_chat:
            return False
        alerter = _alerter(pending.conn_id, answer_settings(pending))
        result = alerter.check_answer(pending.handle)
        if result.status is AskStatus.ERROR:
            log.warning("The chat question of %s cannot be checked: %s", where(pending), result.reason)
        chosen = self._chosen(pending, result) if result.responder else None
        if chosen is None:
            return False
        answer = result.model_copy(update={"channel": result.channel or pending.handle.flavor,
                                           "choice": None if pending.gate else own_choice(chosen)})
        self.record(key, pending, answer, chosen, alerter)
        return True

    @staticmethod
    def _chosen(pending: PendingRequest, result: AskResult) -> list[str] | None:
        if pending.gate:
            return [APPROVE] if result.approved else [REJECT] if result.status is AskStatus.REJECTED else None
        return chosen_options(result, pending.options, pending.multiple)

    # --- recording --------------------------------------------------------------------------------

    def record(self, key: str, pending: PendingRequest, answer: AskResult, chosen: list[str],
               alerter: Any = None) -> AskResult:
        """Write ``answer`` into the record; the answer that stands (``answer``, or the one first there).

        Two responders (or two clicks) at once first race for the question's claim (:meth:`_claim`);
        only the winner writes the record. Airflow's own check is not enough: measured on 3.3.2 with
        PostgreSQL, two ``PATCH`` es 10 ms apart were both accepted, the second overwriting the first
        (the handler reads ``response_received`` before it takes its row lock and does not read it again).
        """
        body = {"chosen_options": chosen, "params_input": {} if pending.has_params else answer_facts(answer)}
        alerter = alerter or _alerter(pending.conn_id, answer_settings(pending))
        holder = self._claim(key, answer)
        if holder is not None:
            log.info("The question of %s is being answered elsewhere (%s); that answer counts", where(pending),
                     decision_text(holder))
            return holder
        try:
            self.api.call("PATCH", pending.api_path, body)
        except HttpError as err:
            if err.status == 404:
                self.forget(key, pending)
                raise
            if err.status != 409:
                raise
            first = result_from_event(self.api.call("GET", pending.api_path))
            log.info("The question of %s was answered first elsewhere (%s); that answer counts", where(pending),
                     decision_text(first))
            if first.channel == AIRFLOW_CHANNEL and not pending.gate:  # nobody else shows Airflow's answer here
                self._close(key, pending, alerter, first)
            return first
        finally:
            self._release(key)
        log.info("Recorded %s's answer %s for %s (%s)", answer.responder, chosen, where(pending), answer.channel)
        self._close(key, pending, alerter, answer)
        return answer

    def _claim(self, key: str, answer: AskResult) -> AskResult | None:
        """Take the question's claim; None when this responder holds it, else the answer of the one that does.

        Airflow's Variables ``POST`` refuses an existing key (409) but two at once may both succeed (it
        checks, then upserts), so the claim is written with an id of ours, read back after
        :data:`CLAIM_SETTLE` seconds, and held only when the id read is ours: of two claims written
        at once, the one written last is read by both. A claim older than :data:`CLAIM_FOR` seconds
        (its holder died while writing) is taken over.
        """
        from uuid import uuid4

        mine = uuid4().hex  # not named "token": Airflow's API masks JSON fields with such names when it reads them
        value = json.dumps({"claim": mine, "at": time.time(),
                            "answer": answer.model_dump(mode="json", exclude={"retry_after"}, exclude_none=True)})
        for _ in range(2):
            try:
                self.api.call("POST", "/variables", {"key": claim_key(key), "value": value,
                                                     "description": "airflow-alerter: a responder is writing this"})
            except HttpError as err:
                if err.status != 409:
                    raise
                holder = self._holder(key)
                if holder is None or time.time() - float(holder["at"]) >= CLAIM_FOR:
                    self._release(key)  # released meanwhile, or abandoned: try again
                    continue
                return AskResult.model_validate(holder["answer"])
            time.sleep(CLAIM_SETTLE)
            holder = self._holder(key)
            if holder is None or holder.get("claim") == mine:
                return None
            return AskResult.model_validate(holder["answer"])
        raise HttpError("Airflow API: the question's claim could not be taken", 409, transient=True)

    def _holder(self, key: str) -> dict[str, Any] | None:
        try:
            found = self.api.call("GET", f"/variables/{quote(claim_key(key), safe='')}")
        except HttpError as err:
            if err.status == 404:
                return None
            raise
        holder: dict[str, Any] = json.loads(found["value"])
        return holder

    def _release(self, key: str) -> None:
        try:
            self.api.call("DELETE", f"/variables/{quote(claim_key(key), safe='')}")
        except HttpError as err:
            if err.status != 404:
                log.warning("Could not release the claim of %s (%s); it expires in %gs", key, err, CLAIM_FOR)

    def _close(self, key: str, pending: PendingRequest, alerter: Any, result: AskResult) -> None:
        """The question shows the outcome at once; a request is concluded and forgotten, a gate does so itself."""
        if pending.gate:
            alerter.show_decision(pending.handle, result)
        else:
            alerter.conclude(pending.handle, result)
        self.forget(key, pending)
