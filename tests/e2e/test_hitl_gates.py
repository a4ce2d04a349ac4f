"""Approval gates as Airflow Human-in-the-loop requests on the distributed engine: one record per question,
answered in the chat or in Airflow's REST API (as the Required actions page does), first answer wins."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from tests.e2e.conftest import SlackChannel
from tests.e2e.engine import AirflowEngine, wait_until
from tests.plugins.slack import CHANNEL

pytestmark = pytest.mark.e2e

GATE = "e2e_gate_hitl"


def _record_path(run_id: str) -> str:
    return f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/gate/-1/hitlDetails"


def _record(engine: AirflowEngine, run_id: str) -> dict[str, Any]:
    return dict(engine.api("GET", _record_path(run_id)))


def _answer_in_airflow(engine: AirflowEngine, run_id: str, option: str, expect: tuple[int, ...] = (200,)) -> Any:
    return engine.api("PATCH", _record_path(run_id), {"chosen_options": [option], "params_input": {}}, expect=expect)


def _xcom(engine: AirflowEngine, run_id: str) -> dict[str, Any]:
    entry = engine.api("GET", f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/gate/xcomEntries/return_value")
    value = entry["value"]
    return value if isinstance(value, dict) else dict(json.loads(value))


def _asked(engine: AirflowEngine, slack: SlackChannel) -> tuple[str, dict[str, Any]]:
    """A new run of the gate: its run id and its question in the channel."""
    engine.wait_for_dag(GATE)
    run_id = engine.trigger(GATE)
    return run_id, slack.question_about(run_id)


def _pending_record(engine: AirflowEngine, run_id: str) -> dict[str, Any]:
    """The record, once the gate has written it (before it defers) and waits in the triggerer."""
    engine.wait_for_task_state(GATE, run_id, "gate", {"deferred"})
    return _record(engine, run_id)


def test_the_question_is_a_required_action_linked_to_the_chat_both_ways(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    run_id, question = _asked(engine, slack)

    record = _pending_record(engine, run_id)

    assert record["options"] == ["Approve", "Reject"] and record["response_received"] is False
    assert record["subject"] == f"Release {run_id}?"
    assert f"https://test-team.slack.com/archives/{CHANNEL}/p{question['ts'].replace('.', '')}" in record["body"]
    assert [user["id"] for user in record["assigned_users"]] == ["admin"]
    assert f"{engine.api_url}/dags/{GATE}/runs/" in question["text"] and "required_actions" in question["text"]
    _answer_in_airflow(engine, run_id, "Reject")
    engine.wait_for_run(GATE, run_id)


def test_an_answer_in_airflow_opens_the_gate_and_the_chat_says_who(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    run_id, question = _asked(engine, slack)
    _pending_record(engine, run_id)

    _answer_in_airflow(engine, run_id, "Approve")

    assert engine.wait_for_run(GATE, run_id) == "success"
    answer = _xcom(engine, run_id)
    assert (answer["status"], answer["channel"]) == ("approved", "airflow")
    wait_until(lambda: "Approved by" in slack.current_text(question) or None, 30, "the outcome in the chat")
    assert "in Airflow" in slack.current_text(question)


def test_an_answer_in_the_chat_is_written_into_the_record(engine: AirflowEngine, slack: SlackChannel) -> None:
    run_id, question = _asked(engine, slack)
    _pending_record(engine, run_id)

    slack.answer(question, "approve", user="U0APPROVER")

    assert engine.wait_for_run(GATE, run_id) == "success"
    record = _record(engine, run_id)
    assert (record["response_received"], record["chosen_options"]) == (True, ["Approve"])
    facts = record["params_input"]["airflow_alerter"]
    assert (facts["status"], facts["responder"], facts["channel"], facts["text"]) == (
        "approved", "U0APPROVER", "slack", "approve")
    assert _xcom(engine, run_id)["channel"] == "slack"


def test_a_second_answer_in_airflow_is_refused_after_the_chat_answered(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    run_id, question = _asked(engine, slack)
    slack.answer(question, "reject", user="U0APPROVER")
    assert engine.wait_for_run(GATE, run_id) == "failed"

    refused = _answer_in_airflow(engine, run_id, "Approve", expect=(409,))

    assert refused is not None and "already" in str(refused).lower()
    assert _record(engine, run_id)["chosen_options"] == ["Reject"]


def test_a_race_between_the_chat_and_airflow_has_one_winner_everywhere(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    run_id, question = _asked(engine, slack)
    _pending_record(engine, run_id)
    # the chat says approve, Airflow says reject, within the same poll interval
    in_airflow = threading.Thread(target=_answer_in_airflow, args=(engine, run_id, "Reject", (200, 409)))
    slack.answer(question, "approve", user="U0APPROVER")
    in_airflow.start()
    in_airflow.join()

    state = engine.wait_for_run(GATE, run_id)

    record = _record(engine, run_id)
    winner = "Approve" if state == "success" else "Reject"
    assert record["chosen_options"] == [winner]
    wait_until(lambda: "by" in slack.current_text(question).split("\n")[-1] or None, 30, "the outcome in the chat")
    outcome = slack.current_text(question).split("\n")[-1]
    assert outcome.startswith("✅ Approved by <@U0APPROVER>") if winner == "Approve" else (
        "Rejected by" in outcome and "in Airflow" in outcome)


def test_a_timed_out_gate_says_so_in_the_record_and_the_chat(engine: AirflowEngine, slack: SlackChannel) -> None:
    run_id, question = _asked(engine, slack)

    assert engine.wait_for_run(GATE, run_id, timeout=120) == "failed"

    facts = _record(engine, run_id)["params_input"]["airflow_alerter"]
    assert facts["status"] == "timed_out"
    assert "Timed out" in slack.current_text(question)
