"""Airflow's own HITL operators asked in Slack (alerter_hitl_notifier) and answered there: the responder,
a separate process, records the chat's answer in Airflow through its REST API; first answer wins."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import SlackChannel
from tests.e2e.engine import AirflowEngine, wait_until

pytestmark = pytest.mark.e2e

APPROVAL, CHOICE = "e2e_hitl_approval", "e2e_hitl_choice"


@pytest.fixture
def responder(engine: AirflowEngine) -> Iterator[AirflowEngine]:
    engine.start_component("responder", timeout=60)
    yield engine
    engine.components["responder"].stop()


def _record(engine: AirflowEngine, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    return dict(engine.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"))


def _asked(engine: AirflowEngine, slack: SlackChannel, dag_id: str) -> tuple[str, dict[str, Any]]:
    """A new run of ``dag_id``: its run id and the request's question in the channel."""
    engine.wait_for_dag(dag_id)
    run_id = engine.trigger(dag_id)
    return run_id, slack.question_about(run_id)


def _closed(slack: SlackChannel, question: dict[str, Any], mark: str) -> str:
    wait_until(lambda: mark in slack.current_text(question) or None, 60, f"{mark!r} on the question")
    return slack.current_text(question)


def test_an_approval_given_in_slack_opens_the_approval_operator(
    responder: AirflowEngine, slack: SlackChannel
) -> None:
    engine = responder
    run_id, question = _asked(engine, slack, APPROVAL)
    assert "Reply in the thread with one of “Approve”, “Reject”." in question["text"]

    slack.answer(question, "approve", user="U0APPROVER")

    assert engine.wait_for_run(APPROVAL, run_id) == "success"
    record = _record(engine, APPROVAL, run_id, "approve")
    assert record["chosen_options"] == ["Approve"]
    facts = record["params_input"]["airflow_alerter"]
    assert (facts["responder"], facts["channel"], facts["text"]) == ("U0APPROVER", "slack", "approve")
    assert "✅ Approved by <@U0APPROVER>" in _closed(slack, question, "Approved by")


def test_a_non_approvers_answer_changes_nothing(responder: AirflowEngine, slack: SlackChannel) -> None:
    engine = responder
    run_id, question = _asked(engine, slack, APPROVAL)

    slack.answer(question, "approve", user="U0MALLORY")
    wait_until(lambda: slack.replies_checks(question) >= 3 or None, 60, "the responder's checks")

    assert _record(engine, APPROVAL, run_id, "approve")["response_received"] is False
    slack.answer(question, "reject", user="U0APPROVER")
    assert engine.wait_for_run(APPROVAL, run_id) == "success"  # a rejection skips downstream: the run succeeds
    assert engine.task_states(APPROVAL, run_id)["publish"] == "skipped"


def test_an_answer_in_airflow_first_is_shown_in_slack_and_the_chat_answer_is_ignored(
    responder: AirflowEngine, slack: SlackChannel
) -> None:
    engine = responder
    run_id, question = _asked(engine, slack, APPROVAL)
    engine.api("PATCH", f"/dags/{APPROVAL}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
               {"chosen_options": ["Reject"], "params_input": {}})

    assert "❌ Rejected by Anonymous in Airflow" in _closed(slack, question, "Rejected by")
    slack.answer(question, "approve", user="U0APPROVER")

    engine.wait_for_run(APPROVAL, run_id)
    assert engine.task_states(APPROVAL, run_id)["publish"] == "skipped"
    assert _record(engine, APPROVAL, run_id, "approve")["chosen_options"] == ["Reject"]


def test_several_options_are_chosen_by_name_in_one_reply(responder: AirflowEngine, slack: SlackChannel) -> None:
    engine = responder
    run_id, question = _asked(engine, slack, CHOICE)

    slack.answer(question, "ship, RETRAIN", user="U0APPROVER")

    assert engine.wait_for_run(CHOICE, run_id) == "success"
    assert _record(engine, CHOICE, run_id, "choose")["chosen_options"] == ["Ship", "Retrain"]
    assert "☑️ Ship, Retrain — chosen by <@U0APPROVER>" in _closed(slack, question, "chosen by")


def test_an_answer_given_while_the_responder_was_down_still_counts(
    responder: AirflowEngine, slack: SlackChannel
) -> None:
    engine = responder
    run_id, question = _asked(engine, slack, APPROVAL)
    engine.components["responder"].stop()

    slack.answer(question, "approve", user="U0APPROVER")
    engine.start_component("responder", timeout=60)

    assert engine.wait_for_run(APPROVAL, run_id) == "success"
