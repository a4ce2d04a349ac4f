"""The pushed responder on the distributed engine: ``airflow-alerter responder --conn-id ml_slack`` as its own
process holds a Slack Socket Mode connection; a click on the gate's button is recorded in its HITL record and
the gate resolves, with no chat call made for the gate while the responder serves it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_alerter.hooks.heartbeat import heartbeat_key
from tests.e2e.conftest import SlackChannel
from tests.e2e.engine import AirflowEngine, wait_until
from tests.plugins.slack import CHANNEL
from tests.servers.slack_socket import SlackSocketServer

pytestmark = pytest.mark.e2e

GATE = "e2e_gate_pushed"
APPROVER, SECOND, STRANGER = "U0APPROVER", "U0SECOND", "U0STRANGER"
PUSHED = ("pushed-responder", "pushed-responder-2")


def _heartbeat(engine: AirflowEngine) -> dict[str, Any] | None:
    found = engine.api("GET", f"/variables/{heartbeat_key('ml_slack')}", expect=(200, 404))
    return dict(found) if found and "value" in found else None


@pytest.fixture
def pushed(engine: AirflowEngine, e2e_slack_socket: SlackSocketServer) -> Iterator[AirflowEngine]:
    """One pushed responder, connected, its heartbeat published; stopped (heartbeat retired) afterwards."""
    engine.start_component("pushed-responder", timeout=60)
    e2e_slack_socket.wait_connected(1)
    wait_until(lambda: _heartbeat(engine), 30, "the responder's heartbeat")
    yield engine
    for name in PUSHED:
        if name in engine.components:
            engine.components[name].stop()
    wait_until(lambda: _heartbeat(engine) is None or None, 30, "the heartbeat retired")


def _asked(engine: AirflowEngine, slack: SlackChannel) -> tuple[str, dict[str, Any]]:
    engine.wait_for_dag(GATE)
    run_id = engine.trigger(GATE)
    question = slack.question_about(run_id)
    engine.wait_for_task_state(GATE, run_id, "gate", {"deferred"})
    return run_id, question


def _buttons(question: dict[str, Any]) -> list[str]:
    return [element["text"]["text"] for block in question.get("blocks") or [] if block["type"] == "actions"
            for element in block["elements"]]


def test_a_click_approves_the_gate_and_the_gate_makes_no_chat_call_meanwhile(
    pushed: AirflowEngine, slack: SlackChannel, e2e_slack_socket: SlackSocketServer
) -> None:
    engine = pushed
    run_id, question = _asked(engine, slack)
    assert _buttons(question)[:2] == ["Approve", "Reject"]
    time.sleep(6)  # three of the gate's intervals: it reads its record, not the chat

    clicked = time.monotonic()
    envelope = e2e_slack_socket.click(CHANNEL, question["ts"], APPROVER, 0)

    engine.wait_for_task_state(GATE, run_id, "ship", {"queued", "running", "success"})
    downstream = time.monotonic() - clicked
    assert engine.wait_for_run(GATE, run_id) == "success"
    assert e2e_slack_socket.wait_acked(envelope) < 3.0
    assert slack.replies_checks(question) == 0
    assert "✅ Approved by <@U0APPROVER> at " in slack.current_text(question)
    print(f"click -> downstream task queued or running: {downstream:.2f} s")  # the benchmark figure (docs)


def test_a_non_approvers_click_changes_nothing_and_they_alone_are_told(
    pushed: AirflowEngine, slack: SlackChannel, e2e_slack_socket: SlackSocketServer
) -> None:
    engine = pushed
    run_id, question = _asked(engine, slack)

    e2e_slack_socket.click(CHANNEL, question["ts"], STRANGER, 0)

    told = wait_until(lambda: [e for e in slack.server.ephemerals if e["user"] == STRANGER] or None, 30,
                      "the stranger told")
    assert told[0]["text"] == "You are not an approver of this question; nothing changed."
    assert engine.task_states(GATE, run_id)["gate"] == "deferred"
    e2e_slack_socket.click(CHANNEL, question["ts"], APPROVER, 1)
    assert engine.wait_for_run(GATE, run_id) == "failed"


def test_an_answer_given_while_the_responder_is_down_resolves_the_gate_when_it_is_back(
    pushed: AirflowEngine, slack: SlackChannel, e2e_slack_socket: SlackSocketServer
) -> None:
    engine = pushed
    run_id, question = _asked(engine, slack)

    engine.kill("pushed-responder")  # its heartbeat stays fresh a while: the gate is not polling the chat
    slack.answer(question, "approve", user=APPROVER)
    time.sleep(3)
    engine.start_component("pushed-responder", timeout=60)  # connects, catches up: one check per question

    assert engine.wait_for_run(GATE, run_id) == "success"


def test_two_responders_and_two_clicks_make_one_decision(
    pushed: AirflowEngine, slack: SlackChannel, e2e_slack_socket: SlackSocketServer
) -> None:
    engine = pushed
    engine.start_component("pushed-responder-2", timeout=60)
    e2e_slack_socket.wait_connected(2)
    run_id, question = _asked(engine, slack)
    told_before = len(slack.server.ephemerals)

    e2e_slack_socket.click(CHANNEL, question["ts"], APPROVER, 0)  # one envelope to each connection
    e2e_slack_socket.click(CHANNEL, question["ts"], SECOND, 1)

    state = engine.wait_for_run(GATE, run_id)
    record = engine.api("GET", f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/gate/-1/hitlDetails")
    winner = record["params_input"]["airflow_alerter"]["responder"]
    assert (state, record["chosen_options"]) == (("success", ["Approve"]) if winner == APPROVER
                                                 else ("failed", ["Reject"]))
    loser = SECOND if winner == APPROVER else APPROVER
    told = wait_until(lambda: slack.server.ephemerals[told_before:] or None, 30, "the later clicker told")
    assert [e["user"] for e in told] == [loser]
