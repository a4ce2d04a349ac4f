"""The gate's question in Airflow's Human-in-the-loop record: what is written, and how answers read back.

What only a real triggerer can do (read and write the record's answer) is tested on the e2e engine
(tests/e2e/test_hitl_gates.py); here: ``dag.test()`` runs, which may create the record, and the
conversions between the record's shapes and the gate's answer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_alerter import AlerterAskSensor
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.hooks.hitl import (
    answer_words,
    assigned_users,
    chosen_options,
    record_input,
    result_from_event,
    result_from_record,
)
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle
from tests.plugins.airflow import RunDag
from tests.plugins.slack import CHANNEL, slack_config
from tests.servers.slack_api import PERMALINK_BASE, SlackAPIServer

APPROVER = "UALICE01"


def gate_dag(options: str) -> str:
    return f"""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterAskSensor, AlerterMessage

        with DAG("release", schedule=None) as dag:
            AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", poke_interval=0.05, timeout=30,
                             question=AlerterMessage(title="Ship {{{{ dag.dag_id }}}}?", body="Model v7"), {options})
    """


def _records() -> list[Any]:
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    with create_session() as session:
        return [(row.subject, row.body, row.options, row.assignees) for row in session.query(HITLDetail).all()]


@pytest.fixture
def no_records(airflow_db: str) -> None:
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(HITLDetail).delete()


def test_a_deferrable_gate_is_a_required_action_linked_to_the_chat_message(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, no_records: None
) -> None:
    slack_api.answer_on_check(2, user=APPROVER, text="approve")

    result = run_dag(gate_dag('deferrable=True, assigned_users=["alice", {"id": "7", "name": "Bob"}]'))

    assert result.state_of("gate") == "success"
    [(subject, body, options, assignees)] = _records()
    [question] = slack_api.questions(CHANNEL)
    assert (subject, options) == ("Ship release?", ["Approve", "Reject"])
    assert body.startswith("Model v7") and f"{PERMALINK_BASE}/{CHANNEL}/p{question['ts'].replace('.', '')}" in body
    assert assignees == [{"id": "alice", "name": "alice"}, {"id": "7", "name": "Bob"}]


def test_the_chat_question_links_to_the_required_actions_page(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, no_records: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    run_dag(gate_dag("deferrable=True,"))

    [question] = slack_api.questions(CHANNEL)
    assert "https://airflow.example.com/dags/release/runs/" in question["text"]
    assert "/tasks/gate/required_actions?map_index=-1" in question["text"]


def test_a_gate_waiting_in_its_worker_is_not_recorded(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, no_records: None
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    result = run_dag(gate_dag('mode="reschedule",'))

    assert result.state_of("gate") == "success"
    assert _records() == []


def test_recording_a_gate_that_waits_in_its_worker_is_an_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match="record_in_airflow=True needs deferrable=True"):
        AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Ship?", record_in_airflow=True,
                         deferrable=False)


def test_an_assigned_user_without_an_id_is_an_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match="assigned_users: each user needs an 'id'"):
        assigned_users([{"name": "Bob"}])


# --- reading answers back ---------------------------------------------------------------------------

ANSWERED_AT = datetime(2026, 12, 2, 14, 2, tzinfo=timezone.utc)


def test_airflows_resume_event_is_an_answer_in_airflow_by_that_user() -> None:
    event = {"chosen_options": ["Approve"], "params_input": {}, "responded_at": ANSWERED_AT,
             "responded_by_user": {"id": "42", "name": "alice"}, "timedout": False}

    answer = result_from_event(event)

    assert (answer.status, answer.responder, answer.responder_name, answer.channel) == (
        AskStatus.APPROVED, "42", "alice", "airflow")
    assert answer.answered_at == ANSWERED_AT.timestamp()


def test_a_rejection_in_airflow_reads_as_rejected() -> None:
    event = {"chosen_options": ["Reject"], "responded_at": ANSWERED_AT.isoformat(),
             "responded_by_user": {"id": "42", "name": "alice"}}

    assert result_from_event(event).status is AskStatus.REJECTED


def test_defaults_applied_by_airflow_at_a_timeout_read_as_timed_out() -> None:
    event = {"chosen_options": ["Reject"], "responded_at": ANSWERED_AT, "responded_by_user": None, "timedout": True}

    assert result_from_event(event).status is AskStatus.TIMED_OUT


def test_a_chat_answer_written_into_the_record_reads_back_unchanged() -> None:
    from airflow.sdk.api.datamodels._generated import HITLDetailResponse

    chat = AskResult(status=AskStatus.REJECTED, responder=APPROVER, channel="slack", answered_at=1.5e9,
                     text="reject: drift", retry_after=3.0)
    chosen, params_input = record_input(chat)

    read = result_from_record(HITLDetailResponse(response_received=True, responded_at=ANSWERED_AT,
                                                 chosen_options=chosen, params_input=params_input))

    assert chosen == ["Reject"]
    assert read == chat.model_copy(update={"retry_after": None})


def test_only_an_approval_chooses_approve_in_the_record() -> None:
    for status in (AskStatus.REJECTED, AskStatus.TIMED_OUT, AskStatus.ERROR):
        assert record_input(AskResult(status=status))[0] == ["Reject"]
    assert record_input(AskResult(status=AskStatus.APPROVED))[0] == ["Approve"]


def test_a_record_without_an_answer_reads_as_none() -> None:
    from airflow.sdk.api.datamodels._generated import HITLDetailResponse

    assert result_from_record(HITLDetailResponse(response_received=False, responded_at=None,
                                                 chosen_options=None)) is None
    assert result_from_record(None) is None


# --- the chat names who answered where -----------------------------------------------------------


def _concluded(slack_api: SlackAPIServer, result: AskResult) -> str:
    alerter = SlackAlerter(slack_config(slack_api))
    handle = alerter.send_question("Ship?")
    alerter.conclude(handle, result)
    return str(slack_api.messages[CHANNEL][-1]["text"])


def test_an_answer_in_airflow_shows_in_the_chat_with_the_users_name(slack_api: SlackAPIServer) -> None:
    answer = AskResult(status=AskStatus.APPROVED, responder="42", responder_name="alice", channel="airflow")

    assert _concluded(slack_api, answer) == "✅ Approved by alice in Airflow"


def test_an_answer_in_the_chat_mentions_the_user(slack_api: SlackAPIServer) -> None:
    answer = AskResult(status=AskStatus.REJECTED, responder=APPROVER, channel="slack")

    assert _concluded(slack_api, answer) == f"❌ Rejected by <@{APPROVER}>"


def test_an_airflow_users_name_cannot_ping_the_channel(slack_api: SlackAPIServer) -> None:
    answer = AskResult(status=AskStatus.APPROVED, responder="x", responder_name="<!channel>", channel="airflow")

    assert _concluded(slack_api, answer) == "✅ Approved by &lt;!channel&gt; in Airflow"


def test_the_question_link_is_the_messages_permalink(slack_api: SlackAPIServer) -> None:
    alerter = SlackAlerter(slack_config(slack_api))
    handle = alerter.send_question("Ship?")

    assert alerter.question_link(handle) == f"{PERMALINK_BASE}/{CHANNEL}/p{handle.message_id.replace('.', '')}"
    assert alerter.question_link(QuestionHandle(flavor="slack", channel=CHANNEL, message_id="1.2")) is None


# --- options of Airflow's own HITL operators, chosen in a chat --------------------------------------


def _said(text: str, status: AskStatus = AskStatus.APPROVED) -> AskResult:
    return AskResult(status=status, responder=APPROVER, text=text)


def test_an_option_is_chosen_by_its_name_whatever_the_case() -> None:
    assert chosen_options(_said("SHIP it"), ["Retrain", "Ship"], multiple=False) == ["Ship"]


def test_a_comma_list_chooses_several_options_when_the_request_allows_it() -> None:
    assert chosen_options(_said("ship, retrain, ship"), ["Retrain", "Ship"], multiple=True) == ["Ship", "Retrain"]


def test_a_comma_list_chooses_only_the_first_option_when_one_is_allowed() -> None:
    assert chosen_options(_said("ship, retrain"), ["Retrain", "Ship"], multiple=False) == ["Ship"]


def test_a_longer_option_name_wins_over_its_prefix() -> None:
    assert chosen_options(_said("ship now please"), ["Ship", "Ship now"], multiple=False) == ["Ship now"]


def test_reactions_choose_approve_or_reject_only_where_the_request_has_them() -> None:
    assert chosen_options(_said(":white_check_mark:"), ["Approve", "Reject"], multiple=False) == ["Approve"]
    assert chosen_options(_said(":x:", AskStatus.REJECTED), ["Approve", "Reject"], multiple=False) == ["Reject"]
    assert chosen_options(_said(":white_check_mark:"), ["Retrain", "Ship"], multiple=False) is None


def test_option_names_are_the_words_a_chat_check_counts() -> None:
    approve, reject = answer_words(["Approve", "Reject"])
    assert (approve, reject) == (["Approve"], ["Reject"])
    choices, refusals = answer_words(["Retrain", "Ship"])
    assert choices == ["Retrain", "Ship"] and refusals != [] and not set(refusals) & {"Retrain", "Ship"}


def test_the_trust_rules_apply_to_option_names() -> None:
    from airflow_alerter.alerters.answers import AskOptions, classify_text

    approve, reject = answer_words(["Retrain", "Ship"])
    options = AskOptions(approve_keywords=approve, reject_keywords=reject)
    assert classify_text("ship", options) is AskStatus.APPROVED
    for unclear in ("should we ship?", "don't ship", "I think we could maybe ship"):
        assert classify_text(unclear, options) is None


def test_a_notifier_that_cannot_post_warns_and_leaves_the_request_standing(
    airflow_conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    from airflow_alerter import alerter_hitl_notifier

    airflow_conn("no_chat", "alerter", extra={"flavor": "slack", "token": "xoxb-not-a-real-token",
                                              "base_url": "http://127.0.0.1:9/", "channel": "C1", "retry_limit": 0})
    task = ApprovalOperator(task_id="approve", subject="Ship?")
    ti = type("TI", (), {"dag_id": "d", "run_id": "r", "task_id": "approve", "map_index": -1})()

    alerter_hitl_notifier("no_chat").notify({"ti": ti, "task": task})

    assert "Could not post the Human-in-the-loop request to connection 'no_chat'" in caplog.text
    assert "xoxb-not-a-real-token" not in caplog.text


def test_a_question_without_a_title_is_not_shown_twice_on_the_page() -> None:
    from airflow_alerter.hooks.hitl import record_texts
    from airflow_alerter.models import AlerterMessage

    subject, body = record_texts(AlerterMessage(body="Deploy v7?\nMetrics are green."), None, "slack")

    assert (subject, body) == ("Deploy v7?", "Metrics are green.\n\nAnswer here or in slack (the question's thread)")
