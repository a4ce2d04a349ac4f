"""AlerterAskSensor: stop a DAG until a person approves or rejects, in Slack (or any flavor that can ask).

The question is posted once per task instance. Its handle lives in an Airflow Variable keyed by
(dag_id, run_id, task_id, map_index): Airflow clears a sensor's XCom at every reschedule
(measured on 3.3), a Variable survives reschedules, retries and a crashed worker, so none of
those posts the question again. The Variable is deleted when the sensor finishes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseSensorOperator, PokeReturnValue, Variable

from airflow_alerter._compat import AirflowFailException, AirflowSensorTimeout, AirflowSkipException, conf

if TYPE_CHECKING:  # the models load when the sensor runs, not each time a DAG file is parsed
    from airflow_alerter.alerters.base import BaseAlerter
    from airflow_alerter.models import AlerterMessage, AskResult, QuestionHandle

OnReject = Literal["fail", "skip"]
HANDLE_KEY_PREFIX = "airflow_alerter.ask"
STOPPED_REASON = "the task was stopped before an answer arrived; if it runs again, answers here still count"


class AlerterAskSensor(BaseSensorOperator):
    """Post ``question`` and wait for an answer; approved → success, rejected → fail or skip.

    :param alerter_conn_id: a connection whose flavor can ask (``slack``, ``discord`` …).
    :param question: the question, a string or an ``AlerterMessage`` (title and body are templated).
    :param approvers: user ids whose answers count: a list, or a comma-separated string (templated).
        None (the default) lets anyone in the channel but bots answer; an empty list, or a template
        that renders to nothing, is an error naming ``approvers`` (it would read as "nobody").
    :param approve_keywords: words that approve (default: approve, LGTM, ok, yes).
    :param reject_keywords: words that reject (default: decline, disapprove, no, reject).
    :param on_reject: ``"fail"`` the task (downstream ``upstream_failed``) or ``"skip"`` it
        (downstream skipped).
    :param deferrable: wait in the triggerer instead of a worker slot.
    :param assigned_users: Airflow users who may answer on the Required actions page (user ids, or
        ``{"id": …, "name": …}``); None lets any user with access to the task answer there.
    :param record_in_airflow: record the question as the task instance's Human-in-the-loop request,
        so it is listed on Airflow's "Required actions" page and can be answered there or through
        the REST API, first answer wins. The default (None) records it when the gate waits in the
        triggerer (``deferrable=True``), the only place Airflow lets a task read and write the
        record's answer (measured on 3.1–3.3, docs/approvals.md); True without ``deferrable`` is an
        error naming this field.

    The approved ``AskResult`` (status, responder, answered_at, text) is the task's XCom. Mind the
    flavor's rate limits when choosing ``poke_interval``: Slack allows about one
    ``conversations.replies`` a minute to apps outside its Marketplace, hence the 60 s default.
    """

    template_fields: Sequence[str] = ("alerter_conn_id", "title", "body", "metadata", "approvers", "assigned_users")
    ui_color = "#e8f7e4"

    def __init__(
        self,
        *,
        alerter_conn_id: str,
        question: str | AlerterMessage,
        approvers: list[str] | str | None = None,
        approve_keywords: list[str] | None = None,
        reject_keywords: list[str] | None = None,
        on_reject: OnReject = "fail",
        settings: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 60.0,
        assigned_users: Sequence[str | Mapping[str, str]] | None = None,
        record_in_airflow: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if on_reject not in ("fail", "skip"):
            raise ValueError(f"on_reject must be 'fail' or 'skip', not {on_reject!r}")
        if record_in_airflow and not deferrable:
            raise ValueError("record_in_airflow=True needs deferrable=True: only Airflow's triggerer may read and "
                             "write the answer of a Human-in-the-loop record (a worker cannot see it on 3.1-3.3)")
        if approvers is not None:  # a literal empty list fails at DAG parse; a template when it renders
            from airflow_alerter.alerters.answers import check_approvers

            check_approvers(approvers)
        self.alerter_conn_id = alerter_conn_id
        # a string is the body, as AlerterMessage.coerce has it; the model itself is built at run time
        if isinstance(question, str):
            self.title, self.body, self.metadata = "", question, {}
        else:
            self.title, self.body, self.metadata = question.title, question.body, dict(question.metadata)
        self.approvers = approvers
        self.approve_keywords = approve_keywords
        self.reject_keywords = reject_keywords
        self.on_reject = on_reject
        self.settings = settings or {}
        self.deferrable = deferrable
        self.assigned_users = list(assigned_users or [])
        self.record_in_airflow = deferrable if record_in_airflow is None else record_in_airflow

    # --- the alerter and the stored question ------------------------------------------------------

    def ask_settings(self) -> dict[str, Any]:
        answer_rules = {"approvers": self.approvers, "approve_keywords": self.approve_keywords,
                        "reject_keywords": self.reject_keywords}
        # None is "not set here"; an empty approvers list is kept, so that the flavor refuses it by name
        return {**self.settings, **{key: value for key, value in answer_rules.items() if value is not None}}

    def _alerter(self) -> BaseAlerter:
        from airflow_alerter.hooks.alerter import AlerterHook

        return AlerterHook(self.alerter_conn_id, self.ask_settings()).get_alerter()

    @staticmethod
    def handle_key(context: Any) -> str:
        from airflow_alerter.validation import bounded_key

        ti = context["ti"]
        return bounded_key(f"{HANDLE_KEY_PREFIX}.{ti.dag_id}.{ti.run_id}.{ti.task_id}.{ti.map_index}",
                           HANDLE_KEY_PREFIX)

    def question_handle(self, context: Any, alerter: BaseAlerter,
                        asking: Mapping[str, Any] | None = None) -> QuestionHandle:
        """The posted question: found in its Variable, or posted now (once) and stored.

        The Variable first holds a *pending* record (a fresh ``question_key`` and the time), then
        the handle. A worker killed between posting and storing leaves the pending record; the next
        attempt asks the flavor to find that question (Slack) or re-posts it under the same key,
        which the channel drops as a duplicate (Discord), so one question stays one question.
        """
        key = self.handle_key(context)
        stored = self._stored(context)
        if stored and "pending_key" not in stored:
            from airflow_alerter.models import QuestionHandle

            return QuestionHandle.model_validate(stored)
        pending = stored or {"pending_key": uuid.uuid4().hex[:25], "since": time.time()}
        if not stored:
            Variable.set(key, json.dumps(pending), description="airflow-alerter: a question being posted")
        params = alerter.coerce_params({**(asking or {}), "question_key": pending["pending_key"]})
        handle = alerter.find_question(pending["pending_key"], float(pending["since"]), params) if stored else None
        if handle is not None:
            self.log.info("Found the question an interrupted attempt posted (%s); not asking again", handle.message_id)
        else:
            from airflow_alerter.exceptions import AskNotSupported

            try:
                handle = alerter.send_question(self._question(context), params)
            except AskNotSupported as err:
                from airflow_alerter.registry import add_ask_hint

                add_ask_hint(err)
                raise
            self.log.info("Posted the question to %s (%s); waiting for an answer", handle.channel, handle.message_id)
        Variable.set(key, handle.model_dump_json(),
                     description="airflow-alerter: the question this sensor is waiting on")
        return handle

    def _question(self, context: Any) -> AlerterMessage:
        """The question; marked as asked again when an earlier try of this task instance already asked.

        A task cleared in the UI runs again with a higher try number and no stored question (the
        earlier one was answered or closed), so the channel must not show it as the first asking.
        """
        try_number = getattr(context["ti"], "try_number", 1) or 1
        title = self.title
        if try_number > 1:
            title = f"{title} (asked again: try {try_number})" if title else f"Asked again (try {try_number})"
        from airflow_alerter.models import AlerterMessage
        from airflow_alerter.notifications.redaction import redacted

        metadata = self.metadata
        if self.record_in_airflow:
            from airflow_alerter.hooks.hitl import ANSWER_IN_AIRFLOW, required_actions_url

            if page := required_actions_url(context["ti"]):
                metadata = {**metadata, ANSWER_IN_AIRFLOW: page}
        return redacted(AlerterMessage.coerce(AlerterMessage(title=title, body=self.body, metadata=metadata)))

        return required_actions_url(context["ti"], conf.get("api", "base_url", fallback=None))

    # --- waiting ---------------------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        if self.deferrable:
            return self._defer(context)
        try:
            return super().execute(context)
        except (AirflowSensorTimeout, AirflowSkipException):
            self._close_if_open(context)
            raise

    def poke(self, context: Any) -> bool | PokeReturnValue:
        alerter = self._alerter()
        handle = self.question_handle(context, alerter)
        self._asking = (alerter, handle)  # for on_kill, which can no longer read the Variable
        from airflow_alerter.alerters.answers import answered_on

        result = answered_on(alerter.check_answer(handle), handle)
        if not result.is_final:
            if result.retry_after:
                self.log.info("Rate limited; the service asked to wait %ss", result.retry_after)
            return False
        return self._finish(context, alerter, handle, result)

    def _defer(self, context: Any) -> None:
        from airflow_alerter.triggers.alerter import AlerterAskTrigger

        alerter = self._alerter()
        if not self.record_in_airflow:
            handle, record_ti_id = self.question_handle(context, alerter), None
        else:
            from airflow_alerter.hooks.hitl import OPTIONS, button_params, required_actions_url

            ti = context["ti"]
            buttons = button_params(alerter, self.alerter_conn_id, OPTIONS, required_actions_url(ti), ti,
                                    time.time() + self.timeout)
            handle = self.question_handle(context, alerter, buttons)
            record_ti_id = self._record(context, alerter, handle)
        trigger = AlerterAskTrigger(alerter_conn_id=self.alerter_conn_id, handle=handle.model_dump(mode="json"),
                                    settings=self.ask_settings(), poll_interval=self.poke_interval,
                                    timeout_at=time.time() + self.timeout, record_ti_id=record_ti_id)
        self.defer(trigger=trigger, method_name="execute_complete")

    def _record(self, context: Any, alerter: BaseAlerter, handle: QuestionHandle) -> str:
        """Make the question this try's Human-in-the-loop request, linked to the chat message both ways.

        Each try of a task instance has its own record (Airflow keys it by the try's id), so it is
        written at every try's first run, like Airflow's own HITL operators do.
        """
        from airflow_alerter.hooks.hitl import assigned_users, create_record, record_texts, required_actions_url

        ti_id = str(context["ti"].id)
        question = self._question(context)
        subject, body = record_texts(question, alerter.question_link(handle), handle.flavor)
        create_record(ti_id, subject, body, assigned_users(self.assigned_users))
        self._leave_for_responders(context, handle)
        self.log.info("Recorded the question as a Human-in-the-loop request: %s",
                      required_actions_url(context["ti"]) or "the task's Required actions tab in Airflow")
        return ti_id

    def _leave_for_responders(self, context: Any, handle: QuestionHandle) -> None:
        """Store the question where responders look (``PendingRequest``), so a click or reply is recorded.

        Its answer rules are the gate's own: approvers, keywords. The gate deletes it when it finishes.
        """
        from airflow_alerter.hooks.hitl import OPTIONS, PendingRequest, request_key

        ti, rules = context["ti"], self.ask_settings()
        pending = PendingRequest.model_validate({
            "conn_id": self.alerter_conn_id, "handle": handle, "dag_id": ti.dag_id, "run_id": ti.run_id,
            "task_id": ti.task_id, "map_index": ti.map_index, "options": list(OPTIONS), "gate": True,
            "approvers": rules.get("approvers"),
            "settings": {key: rules[key] for key in ("approve_keywords", "reject_keywords") if rules.get(key)}})
        Variable.set(request_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), pending.model_dump_json(),
                     description="airflow-alerter: an approval gate's question, for responders")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Finish with the trigger's answer, or with the record's when Airflow resumed the task itself.

        On Airflow 3.3 an answer given on the Required actions page (or the REST API) to a deferred
        task cancels its trigger and resumes the task with the record's answer as the event.
        """
        from airflow_alerter.hooks.hitl import is_record_event, result_from_event
        from airflow_alerter.models import AskResult, AskStatus, QuestionHandle

        result = result_from_event(event) if is_record_event(event) else AskResult.model_validate(event["result"])
        alerter = self._alerter()
        handle = QuestionHandle.model_validate_json(Variable.get(self.handle_key(context)))
        if result.status is AskStatus.TIMED_OUT:
            self._close(context, alerter, handle, result)
            message = f"No answer to the question within {self.timeout}s"
            raise AirflowSkipException(message) if self.soft_fail else AirflowSensorTimeout(message)
        return self._finish(context, alerter, handle, result).xcom_value

    # --- finishing -------------------------------------------------------------------------------

    def _finish(self, context: Any, alerter: BaseAlerter, handle: QuestionHandle, result: AskResult) -> PokeReturnValue:
        from airflow_alerter.models import AskStatus

        self._close(context, alerter, handle, result)
        if result.approved:
            self.log.info("Approved by %s on %s: %s", result.responder_name or result.responder, result.channel,
                          result.text)
            return PokeReturnValue(is_done=True, xcom_value=result.model_dump(mode="json"))
        why = f"Rejected by {result.responder_name or result.responder} on {result.channel}: {result.text}" if (
            result.status is AskStatus.REJECTED) else (
            f"The question could not be answered: {result.reason}")
        if self.on_reject == "skip":
            raise AirflowSkipException(why)
        raise AirflowFailException(why)

    def _close(self, context: Any, alerter: BaseAlerter, handle: QuestionHandle, result: AskResult) -> None:
        """Show the outcome next to the question, then forget the handle so a re-run asks anew."""
        alerter.conclude(handle, result)
        Variable.delete(self.handle_key(context))
        if self.record_in_airflow:
            from airflow_alerter.hooks.hitl import request_key

            ti = context["ti"]
            Variable.delete(request_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index))

    def _stored(self, context: Any) -> dict[str, Any] | None:
        """What the Variable holds: a question's handle, a pending record (``pending_key``), or None."""
        stored: dict[str, Any] | None = json.loads(Variable.get(self.handle_key(context), default=None) or "null")
        return stored

    def _close_if_open(self, context: Any) -> None:
        stored = self._stored(context)
        if stored and "pending_key" not in stored:
            from airflow_alerter.models import AskResult, AskStatus, QuestionHandle

            timed_out = AskResult(status=AskStatus.TIMED_OUT, reason=f"no valid answer within {self.timeout}s")
            self._close(context, self._alerter(), QuestionHandle.model_validate(stored), timed_out)

    def on_kill(self) -> None:
        """A sensor stopped while waiting (run marked failed, task marked or cleared): say so in the channel.

        Measured on Airflow 3.3: the task process gets SIGTERM and 5 s before SIGKILL, and in that
        time the supervisor no longer answers the task (a Variable read blocks). So only what is in
        memory is used: the alerter and the handle of the question this process is waiting on. The
        stored handle stays; if the task runs again, it waits on the same question, and the reply
        says that answers there still count. Only a sensor waiting in its worker (``mode="poke"``) is
        running to be stopped; see docs/reliability.md for rescheduled and deferred sensors.
        """
        asking = getattr(self, "_asking", None)
        if asking is None:
            return
        alerter, handle = asking
        try:
            from airflow_alerter.models import AskResult, AskStatus

            alerter.conclude(handle, AskResult(status=AskStatus.ERROR, reason=STOPPED_REASON))
        except Exception as err:  # on_kill must not raise: the task is going away regardless
            self.log.warning("Could not mark the question of the stopped sensor: %s", err)
