"""A gate's question in Airflow's Human-in-the-loop record: the one place every channel's answer goes.

Airflow 3.1+ keeps one HITL record per task instance (options, subject, body, assignees, and
once answered: the chosen options, who, when). The "Required actions" page and the REST API
read and answer it. Which process may touch it was measured (docs/approvals.md): a worker may
*create* the record, only the triggerer may *read or write its answer*. So the gate creates it
when it asks, and its trigger keeps the record and the chat in step at every check:

- an answer in the chat is written into the record (first wins: Airflow refuses a second
  answer with 409, and then the answer already there is the one that counts);
- an answer in the record (the UI or the REST API) closes the gate like a chat answer.

On Airflow 3.3 an answer given in Airflow to a *deferred* task resumes it directly, with the
record's answer as the event; :func:`result_from_event` reads that shape too.

The record holds no secrets: the subject and body are the question as posted (already redacted),
the chat answer's facts are the responder's id, name, channel, time and text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from uuid import UUID

from pydantic import BaseModel, Field

from airflow_alerter.alerters.answers import Approvers
from airflow_alerter.models import AlerterMessage, AskResult, AskStatus, QuestionHandle

if TYPE_CHECKING:
    from airflow.sdk.api.datamodels._generated import HITLDetailResponse

log = logging.getLogger(__name__)

APPROVE, REJECT = "Approve", "Reject"
#: the options of every gate's record: the first approves, the second rejects
OPTIONS: tuple[str, str] = (APPROVE, REJECT)
#: the channel an answer given on the Required actions page or through the REST API is recorded as
AIRFLOW_CHANNEL = "airflow"
#: the key of ``params_input`` under which a gate writes the facts of an answer it recorded
ANSWER_KEY = "airflow_alerter"
#: the fact under which a chat question links to its Required actions page
ANSWER_IN_AIRFLOW = "Answer in Airflow"
#: Airflow's record caps the subject; a longer title is cut, the whole question stays in the chat
SUBJECT_LIMIT = 500


class AirflowUser(TypedDict):
    """An Airflow user who may answer on the Required actions page (Airflow's ``HITLUser``)."""

    id: str
    name: str


def assigned_users(users: Sequence[str | Mapping[str, str]] | None) -> list[AirflowUser]:
    """Airflow users as the record wants them: a plain string is both the id and the name."""
    found: list[AirflowUser] = []
    for user in users or ():
        if isinstance(user, str):
            found.append(AirflowUser(id=user, name=user))
        elif user.get("id"):
            found.append(AirflowUser(id=str(user["id"]), name=str(user.get("name") or user["id"])))
        else:
            raise ValueError(f"assigned_users: each user needs an 'id', got keys {sorted(user)}")
    return found


def required_actions_url(ti: Any, base_url: str | None = None) -> str | None:
    """The Required actions page of this task instance (Airflow's own ``generate_link_to_ui`` path).

    ``base_url`` defaults to ``[api] base_url``; None without one: a link to localhost would mislead
    everyone but the admin.
    """
    if base_url is None:
        from airflow_alerter._compat import conf

        base_url = conf.get("api", "base_url", fallback=None)
    if not base_url:
        return None
    parts = urlsplit(base_url)
    run, task = quote(str(ti.run_id), safe=":"), quote(str(ti.task_id), safe="")
    path = f"{parts.path.rstrip('/')}/dags/{quote(str(ti.dag_id), safe='')}/runs/{run}/tasks/{task}/required_actions"
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode({"map_index": ti.map_index}), ""))


def record_texts(question: AlerterMessage, chat_link: str | None, channel: str) -> tuple[str, str]:
    """``(subject, body)`` the Required actions page shows: the question, and where else to answer it.

    A question without a title (a plain string) gives its first line as the subject, not twice.
    """
    lines = question.body.strip().splitlines()
    subject = question.title or (lines[0] if lines else "") or "Approval"
    rest = "\n".join(lines if question.title else lines[1:]).strip()
    where = f"Answer here or in {channel}" + (f": {chat_link}" if chat_link else " (the question's thread)")
    return subject[:SUBJECT_LIMIT], "\n\n".join(part for part in (rest, where) if part)


def create_record(ti_id: UUID | str, subject: str, body: str, users: list[AirflowUser]) -> None:
    """Create (or, on a new try, reset) the task instance's record; served to workers on 3.1–3.3."""
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail

    upsert_hitl_detail(ti_id=UUID(str(ti_id)), options=list(OPTIONS), subject=subject, body=body,
                       defaults=None, multiple=False, params={}, assigned_users=list(users) or None)


# --- answers: from the record, from Airflow's resume event, into the record -------------------------


def _answered_at(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _result(chosen: Sequence[str] | None, user: Mapping[str, Any] | None, at: Any,
            params_input: Mapping[str, Any] | None) -> AskResult:
    """An answer as the record (or Airflow's resume event) holds it, as the gate's :class:`AskResult`."""
    recorded = (params_input or {}).get(ANSWER_KEY)
    if isinstance(recorded, Mapping):  # an answer a gate wrote for its chat: its facts are kept as written
        return AskResult.model_validate(recorded)
    approved = bool(chosen) and APPROVE in (chosen or ())
    status = AskStatus.APPROVED if approved else AskStatus.REJECTED
    if user is None:  # Airflow applied defaults at a timeout: nobody answered
        return AskResult(status=AskStatus.TIMED_OUT, channel=AIRFLOW_CHANNEL, answered_at=_answered_at(at),
                         reason="the Human-in-the-loop request timed out in Airflow")
    return AskResult(status=status, responder=str(user.get("id") or "") or None,
                     responder_name=str(user.get("name") or "") or None, channel=AIRFLOW_CHANNEL,
                     answered_at=_answered_at(at), text=", ".join(chosen or ()),
                     choice=own_choice(chosen))


def own_choice(chosen: Sequence[str] | None) -> list[str] | None:
    """``chosen`` when it names options of the request's own, None for a plain Approve / Reject."""
    return None if set(chosen or ()) <= set(OPTIONS) else list(chosen or ())


def result_from_record(detail: HITLDetailResponse | None) -> AskResult | None:
    """The record's answer, or None while it has none (or could not be read)."""
    if detail is None or not detail.response_received or not detail.chosen_options:
        return None
    user = detail.responded_by_user.model_dump() if detail.responded_by_user is not None else None
    return _result(detail.chosen_options, user, detail.responded_at, detail.params_input)


def is_record_event(event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is Airflow's resume event of an answered record (not the gate trigger's own)."""
    return "chosen_options" in event and "result" not in event


def result_from_event(event: Mapping[str, Any]) -> AskResult:
    """The answer in Airflow's resume event (``chosen_options``, ``responded_by_user``, ``responded_at``)."""
    user = event.get("responded_by_user")
    return _result(event.get("chosen_options"), user if isinstance(user, Mapping) else None,
                   event.get("responded_at"), event.get("params_input"))


def answer_facts(result: AskResult) -> dict[str, Any]:
    """What the record keeps of an answer it did not get from Airflow: who, where, when, what was said."""
    return {ANSWER_KEY: result.model_dump(mode="json", exclude={"retry_after"}, exclude_none=True)}


def record_input(result: AskResult) -> tuple[list[str], dict[str, Any]]:
    """``(chosen_options, params_input)`` recording ``result``: Approve only when approved.

    A rejection, a timeout and an error all choose Reject (the gate does not pass); the status in
    ``params_input`` says which it was, with who, on which channel, when and what was said.
    """
    return [APPROVE if result.approved else REJECT], answer_facts(result)


def is_conflict(err: BaseException) -> bool:
    """Whether Airflow refused a write because the record already holds an answer (HTTP 409)."""
    detail = getattr(getattr(err, "error", None), "detail", None)
    return isinstance(detail, Mapping) and detail.get("status_code") == 409


class RecordLink:
    """The trigger's view of one task instance's record: read its answer, write a chat answer into it.

    Only a triggerer serves these calls. Where they are not served (``dag.test()`` runs the trigger
    in the task's process, measured on 3.3), the link says so once in the log and the gate goes on
    with the chat alone.
    """

    def __init__(self, ti_id: str) -> None:
        self.ti_id = UUID(ti_id)
        self._warned = False

    def _unavailable(self, what: str, err: BaseException | None = None) -> None:
        if not self._warned:
            self._warned = True
            log.warning("The Human-in-the-loop record of this gate cannot be %s here (%s); answers in Airflow "
                        "are not seen and chat answers are not recorded there", what,
                        err or "this process's supervisor does not serve it")

    async def read(self) -> AskResult | None:
        """The answer given in Airflow (UI or REST API), or None while there is none."""
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail
        from asgiref.sync import sync_to_async

        try:
            detail = await sync_to_async(get_hitl_detail_content_detail)(ti_id=self.ti_id)
        except Exception as err:  # the chat still works: never let the record stop the gate
            self._unavailable("read", err)
            return None
        if detail is None:
            self._unavailable("read")
        return result_from_record(detail)

    async def settle(self, result: AskResult) -> AskResult:
        """Record ``result`` (a chat answer, a timeout, an error); the answer that counts is returned.

        When Airflow already holds an answer (409), that one was first and wins: the chat answer is
        dropped and the gate closes with Airflow's.
        """
        from airflow.sdk.execution_time.hitl import update_hitl_detail_response
        from asgiref.sync import sync_to_async

        chosen, params_input = record_input(result)
        try:
            written = await sync_to_async(update_hitl_detail_response)(
                ti_id=self.ti_id, chosen_options=chosen, params_input=params_input)
        except Exception as err:
            if is_conflict(err) and (first := await self.read()) is not None:
                log.info("The question was answered in Airflow first (%s by %s); that answer counts",
                         first.status.value, first.responder_name or first.responder)
                return first
            self._unavailable("written", err)
            return result
        if written is None:
            self._unavailable("written")
        return result


# --- Airflow's own HITL operators, asked in a chat (alerter_hitl_notifier and the responder) --------

#: Variables holding the chat questions of HITL requests: the responder lists them by this prefix
REQUEST_KEY_PREFIX = "airflow_alerter.hitl"
#: the reject word of a request without a "Reject" option: no option is a refusal there, only a choice
_NO_REFUSAL = "\u2063no-refusal\u2063"


class PendingRequest(BaseModel):
    """A HITL request asked in a chat: enough for a responder to read its answer and record it in Airflow.

    Stored (without a secret) in an Airflow Variable by the notifier that posted the question, or by
    a deferrable gate (``gate``: the gate itself concludes the question and deletes the Variable; its
    ``settings`` are the answer rules it asked with: approvers, keywords).
    """

    conn_id: str
    handle: QuestionHandle
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    options: list[str]
    multiple: bool = False
    has_params: bool = False
    approvers: Approvers = None
    gate: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)

    @property
    def api_path(self) -> str:
        """The request's REST path under ``/api/v2`` (the one the Required actions page answers through)."""
        return record_api_path(self.dag_id, self.run_id, self.task_id, self.map_index)


def record_api_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """A task instance's HITL record under ``/api/v2``."""
    parts = [quote(part, safe="") for part in (dag_id, run_id, task_id)]
    return f"/dags/{parts[0]}/dagRuns/{parts[1]}/taskInstances/{parts[2]}/{map_index}/hitlDetails"


def button_params(alerter: Any, conn_id: str, options: Sequence[str], page: str | None, ti: Any = None,
                  deadline: float | None = None) -> dict[str, Any]:
    """Parameters that ask with one answer button per option (and a "View in Airflow" link button).

    A chat's buttons only when a responder serves ``conn_id`` (its heartbeat is fresh): a button
    nobody receives would fail in the chat, while text replies and reactions always work. An email's
    buttons are links to the api-server plugin (``answer_url``): there whenever ``[api] base_url`` says
    where recipients reach the api-server; they expire at ``deadline`` and name ``ti``'s record.
    """
    from airflow_alerter.hooks.heartbeat import responder_is_live

    fields = alerter.Parameters.model_fields
    if "buttons" not in fields:
        return {}
    shown = {"buttons": list(options), **({"view_url": page} if page else {})}
    if "answer_url" in fields:
        url = answer_url(conn_id)
        record = (str(ti.dag_id), str(ti.run_id), str(ti.task_id), int(ti.map_index)) if ti is not None else None
        return {**shown, "answer_url": url, "answer_until": deadline, "record": record} if url else {}
    return shown if responder_is_live(conn_id) else {}


def answer_url(conn_id: str) -> str | None:
    """The api-server plugin's answer endpoint for ``conn_id``'s email links, under ``[api] base_url``."""
    from airflow_alerter._compat import conf

    base_url = conf.get("api", "base_url", fallback=None)
    if not base_url:
        return None
    return f"{str(base_url).rstrip('/')}/alerter/email/{quote(conn_id, safe='')}/answer"


def request_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    from airflow_alerter.validation import bounded_key

    return bounded_key(f"{REQUEST_KEY_PREFIX}.{dag_id}.{run_id}.{task_id}.{map_index}", REQUEST_KEY_PREFIX)


def answer_words(options: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(approve_keywords, reject_keywords)`` that make a chat check read a reply naming an option.

    A "Reject" option (ApprovalOperator's) keeps its meaning; every other option counts as a choice,
    so the trust rules (first line, no question, no negation) apply to option names as to keywords.
    """
    refusals = [option for option in options if option.casefold() == REJECT.casefold()]
    choices = [option for option in options if option not in refusals]
    return choices, refusals or [_NO_REFUSAL]


def chosen_options(result: AskResult, options: Sequence[str], multiple: bool) -> list[str] | None:
    """The options a chat answer chose (case-insensitive names; a comma list when ``multiple``), or None.

    A ✅ / ❌ reaction chooses "Approve" / "Reject" where the request has them.
    """
    by_name = {option.casefold(): option for option in options}
    if result.status is AskStatus.REJECTED:
        return [by_name[REJECT.casefold()]] if REJECT.casefold() in by_name else None
    text = (result.text or "").strip()
    if text.startswith(":") and text.endswith(":"):  # a reaction
        return [by_name[APPROVE.casefold()]] if APPROVE.casefold() in by_name else None
    first_line = text.splitlines()[0] if text else ""
    parts = first_line.split(",") if multiple else [first_line]
    chosen: list[str] = []
    for part in parts:
        option = _option_at_start(part.strip(), by_name)
        if option is not None and option not in chosen:
            chosen.append(option)
    return chosen or None


def _option_at_start(text: str, by_name: Mapping[str, str]) -> str | None:
    folded = text.casefold()
    for name in sorted(by_name, key=len, reverse=True):  # "ship now" before "ship"
        if folded.startswith(name) and not folded[len(name):len(name) + 1].isalnum():
            return by_name[name]
    return None
