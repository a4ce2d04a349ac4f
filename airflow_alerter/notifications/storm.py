"""Alert-storm aggregation bound to Airflow: Variables as the shared store, the run's task states as siblings.

The protocol and its guarantees are in :mod:`airflow_alerter.storm`. This module decides when it
applies (mapped task instances, a window above zero, tasks running in parallel) and builds the
summary message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_alerter.alerters.rendering import verb
from airflow_alerter.models import AlertContext, AlerterMessage
from airflow_alerter.storm import StormMember, StormWindow, compact_ranges, summary_lines
from airflow_alerter.validation import bounded_key

log = logging.getLogger(__name__)

KEY_PREFIX = "airflow_alerter.storm"
#: seconds of the callback's time kept for sending the summary after the window closes
SEND_RESERVE = 8.0
#: Airflow Variable keys hold at most 250 characters; longer group names are hashed
MAX_GROUP_KEY = 180


class VariableStore:
    """:class:`airflow_alerter.storm.StormStore` on Airflow Variables, which every worker reaches."""

    def get(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(key, value, description="airflow-alerter: an alert summary being gathered; deleted when sent")

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        Variable.delete(key)


def storm_window(context: Mapping[str, Any], conn_id: str, kind: str, window: float) -> StormWindow | None:
    """The aggregation window this alert joins, or None when it is sent on its own.

    Only mapped task instances aggregate: an unmapped task fails once per run, a mapped one can
    fail hundreds of times at once.
    """
    ti = context.get("ti")
    map_index = getattr(ti, "map_index", None)
    if window <= 0 or ti is None or not isinstance(map_index, int) or map_index < 0:
        return None
    if _tasks_run_one_by_one():
        log.info("dag.test() runs tasks one by one, so this alert is not aggregated with its mapped siblings")
        return None
    fitted = _fit_to_overtime(window)
    if fitted <= 0:
        return None
    dag_id, run_id = ti.dag_id, ti.run_id
    return StormWindow(
        group=_group_key(dag_id, run_id, conn_id, kind),
        window=fitted,
        store=VariableStore(),
        sibling_states=lambda: _mapped_states(ti, context.get("dag")),
    )


def storm_member(message: AlerterMessage, context: Mapping[str, Any]) -> StormMember:
    """What the summary needs of this instance; the exception passes Airflow's secrets masker first."""
    from airflow_alerter._compat import redact

    ti = context["ti"]
    exception = message.alert.exception
    return StormMember(
        task_id=ti.task_id,
        map_index=ti.map_index,
        try_number=getattr(ti, "try_number", None),
        exception=str(redact(str(exception))) if exception else None,
        log_url=message.alert.log_url,
    )


def summary_message(
    members: list[StormMember], own: AlerterMessage, context: Mapping[str, Any], kind: str, title: str
) -> AlerterMessage:
    """One message for every gathered instance; the instance's own message when it is alone."""
    ti = context["ti"]
    if [member.label for member in members] == [f"{ti.task_id}[{ti.map_index}]"]:
        return own
    count = len(members)
    alert = AlertContext(kind=kind, log_url=members[0].log_url, exception=members[0].exception)
    facts: dict[str, Any] = {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_instances": compact_ranges(members),
        "count": count,
        "logical_date": own.metadata.get("logical_date"),
    }
    body = f"{count} mapped task instances in DAG {ti.dag_id} {verb(kind)} (run {ti.run_id}):\n"
    return AlerterMessage(
        title=f"{title}: {count} task instances",
        body=body + "\n".join(summary_lines(members)),
        metadata=alert.as_metadata(facts),
    )


def _fit_to_overtime(window: float) -> float:
    """The window, shortened so the leader still has time to send before Airflow ends its process.

    Measured on Airflow 3.3: a leader waiting 60 s was SIGKILLed mid-wait ([core]
    task_success_overtime, see :mod:`airflow_alerter.notifications.budget`), its summary never sent.
    """
    from airflow_alerter.notifications.budget import overtime

    allowed = overtime()
    fitted = float(min(window, allowed - SEND_RESERVE))
    if fitted < window:
        log.info(
            "Alert window shortened from %.0f s to %.0f s: Airflow ends a task's process %.0f s after its final "
            "state ([core] task_success_overtime), and sending needs up to %.0f s of that",
            window, max(fitted, 0.0), allowed, SEND_RESERVE,
        )
    return fitted


def _group_key(dag_id: str, run_id: str, conn_id: str, kind: str) -> str:
    return bounded_key(f"{KEY_PREFIX}.{dag_id}.{run_id}.{conn_id}.{kind}", KEY_PREFIX, MAX_GROUP_KEY)


def _mapped_states(ti: Any, dag: Any) -> dict[tuple[str, int], str | None]:
    """The run's mapped task instances and their states, from the execution API's task-states call.

    That call names a mapped instance ``{task_id}_{map_index}``; the DAG's task ids tell a mapped
    instance from an unmapped task whose id happens to end in ``_<digits>``.
    """
    task_ids = set(getattr(dag, "task_ids", ()) or ())
    states: Mapping[str, Any] = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    mapped: dict[tuple[str, int], str | None] = {}
    for name, state in states.items():
        task_id, _, index = name.rpartition("_")
        if name not in task_ids and task_id in task_ids and index.isdigit():
            mapped[(task_id, int(index))] = None if state is None else str(state)
    return mapped


def _tasks_run_one_by_one() -> bool:
    """True under ``dag.test()``, which runs every task in this process, one after another.

    A leader's wait would then hold up the very siblings it waits for.
    """
    from airflow_alerter._compat import runs_in_dag_test

    return runs_in_dag_test()
