"""alerter_hitl_notifier: ask Airflow's own Human-in-the-loop operators' requests in a chat too.

``HITLOperator(notifiers=[alerter_hitl_notifier("ml_slack")])`` (and ``ApprovalOperator``,
``HITLBranchOperator``, ``HITLEntryOperator``) posts the request to any asking flavor: subject,
body, the options and how to choose them, and a link to the Required actions page. The question
is remembered in an Airflow Variable (:class:`~airflow_alerter.hooks.hitl.PendingRequest`, no
secret in it), where ``airflow-alerter responder`` finds it, reads the answer in the chat and
records it in Airflow through the REST API — the same path the Required actions page takes, so
the first answer wins wherever it was given.

The operator calls its notifiers when the request is written, before it waits; like every
callback here, a failure to post is a warning, never the reason the task fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, Variable

if TYPE_CHECKING:
    from airflow_alerter.models import AlerterMessage

log = logging.getLogger(__name__)

#: what a chat cannot carry: the request's form fields
PARAMS_NOTE = "This request also asks for values (a form): answer it in Airflow."


class AlerterHITLNotifier(BaseNotifier):
    """Post a HITL operator's request to an asking flavor and remember it for the responder.

    :param alerter_conn_id: a connection whose flavor can ask (``slack``, ``discord`` …).
    :param approvers: chat user ids whose answers count (a list or a comma-separated string); None
        lets anyone in the channel but bots answer. Airflow users are the operator's ``assigned_users``.
    """

    template_fields: Sequence[str] = ("alerter_conn_id", "approvers")

    def __init__(self, alerter_conn_id: str, *, approvers: list[str] | str | None = None) -> None:
        super().__init__()
        if approvers is not None:
            from airflow_alerter.alerters.answers import check_approvers

            check_approvers(approvers)
        self.alerter_conn_id = alerter_conn_id
        self.approvers = approvers

    def notify(self, context: Any) -> None:
        try:
            self._ask(context)
        except Exception as err:  # the request stands in Airflow even if the chat cannot carry it
            log.warning("Could not post the Human-in-the-loop request to connection %r: %s",
                        self.alerter_conn_id, err)

    def _ask(self, context: Any) -> None:
        from airflow_alerter.hooks.alerter import AlerterHook
        from airflow_alerter.hooks.hitl import PendingRequest, button_params, request_key, required_actions_url

        ti, task = context["ti"], context["task"]
        alerter = AlerterHook(self.alerter_conn_id).get_alerter()
        params = {**button_params(alerter, self.alerter_conn_id, task.options, required_actions_url(ti), ti),
                  **reply_words(alerter, task.options)}
        handle = alerter.send_question(self._question(context), alerter.coerce_params(params) if params else None)
        # validated from a mapping: a rendered ``approvers`` may still be a comma-separated string
        pending = PendingRequest.model_validate({
            "conn_id": self.alerter_conn_id, "handle": handle, "dag_id": ti.dag_id, "run_id": ti.run_id,
            "task_id": ti.task_id, "map_index": ti.map_index, "options": list(task.options),
            "multiple": bool(task.multiple), "has_params": bool(task.params), "approvers": self.approvers})
        Variable.set(request_key(ti.dag_id, ti.run_id, ti.task_id, ti.map_index), pending.model_dump_json(),
                     description="airflow-alerter: a Human-in-the-loop request asked in a chat")
        log.info("Posted the Human-in-the-loop request to %s (%s)", handle.channel, handle.message_id)

    def _question(self, context: Any) -> AlerterMessage:
        from airflow_alerter.hooks.hitl import ANSWER_IN_AIRFLOW, required_actions_url
        from airflow_alerter.models import AlerterMessage
        from airflow_alerter.notifications.redaction import redacted

        task = context["task"]
        metadata: dict[str, Any] = {}
        if page := required_actions_url(context["ti"]):
            metadata[ANSWER_IN_AIRFLOW] = page
        body = "\n\n".join(part for part in (str(task.body or "").strip(), how_to_choose(task.options, task.multiple),
                                             PARAMS_NOTE if task.params else "") if part)
        return redacted(AlerterMessage(title=str(task.subject), body=body, metadata=metadata))


def reply_words(alerter: Any, options: Sequence[str]) -> dict[str, list[str]]:
    """The words a reply answers with, as the responder counts them (the options), for the question's own hint.

    Only for a request with a "Reject" option: the flavor's hint says "approve or reject", which a
    request choosing among options of its own has no words for (its body says how to choose).
    """
    from airflow_alerter.hooks.hitl import REJECT, answer_words

    if "approve_keywords" not in alerter.Parameters.model_fields or REJECT not in options:
        return {}
    approve, reject = answer_words(options)
    return {"approve_keywords": approve, "reject_keywords": reject}


def how_to_choose(options: Sequence[str], multiple: bool) -> str:
    """The line that tells people in the chat how to answer with the request's options."""
    names = ", ".join(f"“{option}”" for option in options)
    if multiple:
        return f"Reply in the thread with one or more of {names}, separated by commas."
    return f"Reply in the thread with one of {names}."


def alerter_hitl_notifier(alerter_conn_id: str, *, approvers: list[str] | str | None = None) -> AlerterHITLNotifier:
    """A notifier for ``HITLOperator(notifiers=[...])`` that asks the request in ``alerter_conn_id``'s chat."""
    return AlerterHITLNotifier(alerter_conn_id, approvers=approvers)
