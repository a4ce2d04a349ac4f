"""Approval gates on the distributed engine: deferred in the triggerer, rescheduled across a killed
worker, surviving a triggerer restart, and 50 pending at once. Each asserts the question was posted once."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import SlackChannel
from tests.e2e.engine import AirflowEngine, wait_until
from tests.plugins.slack import CHANNEL

pytestmark = pytest.mark.e2e

DEFERRABLE, RESCHEDULE = "e2e_gate_deferrable", "e2e_gate_reschedule"


def _questions(slack: SlackChannel, run_id: str) -> int:
    """How many times the question about ``run_id`` was posted (thread replies are not counted)."""
    return len([call for call in slack.posts_about(run_id) if str(call.args.get("text", "")).startswith("Deploy")])


def test_deferred_gate_releases_the_worker_and_opens_on_approval(engine: AirflowEngine, slack: SlackChannel) -> None:
    engine.wait_for_dag(DEFERRABLE)
    run_id = engine.trigger(DEFERRABLE)
    question = slack.question_about(run_id)

    assert engine.wait_for_task_state(DEFERRABLE, run_id, "gate", {"deferred"}) == "deferred"
    slack.answer(question, "approve")

    assert engine.wait_for_run(DEFERRABLE, run_id) == "success"
    assert engine.task_states(DEFERRABLE, run_id) == {"gate": "success", "deploy": "success"}
    assert _questions(slack, run_id) == 1


def test_deferred_gate_rejected_with_on_reject_skip_skips_the_deploy(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    engine.wait_for_dag(DEFERRABLE)
    run_id = engine.trigger(DEFERRABLE)
    slack.answer(slack.question_about(run_id), "reject")

    engine.wait_for_run(DEFERRABLE, run_id)
    assert engine.task_states(DEFERRABLE, run_id) == {"gate": "skipped", "deploy": "skipped"}


def test_rescheduled_gate_survives_a_killed_worker_and_asks_once(engine: AirflowEngine, slack: SlackChannel) -> None:
    engine.wait_for_dag(RESCHEDULE)
    run_id = engine.trigger(RESCHEDULE)
    question = slack.question_about(run_id)
    wait_until(lambda: slack.replies_checks(question) >= 1, 60, "a first poke")

    engine.restart("celery-worker", hard=True)  # SIGKILL between pokes, then a new worker
    checks = slack.replies_checks(question)
    wait_until(lambda: slack.replies_checks(question) > checks, 120, "a poke from the new worker")
    slack.answer(question, "LGTM")

    assert engine.wait_for_run(RESCHEDULE, run_id) == "success"
    assert _questions(slack, run_id) == 1


def test_deferred_gate_survives_a_triggerer_restart_and_asks_once(engine: AirflowEngine, slack: SlackChannel) -> None:
    engine.wait_for_dag(DEFERRABLE)
    run_id = engine.trigger(DEFERRABLE)
    question = slack.question_about(run_id)
    engine.wait_for_task_state(DEFERRABLE, run_id, "gate", {"deferred"})

    engine.restart("triggerer")
    slack.answer(question, "yes")

    assert engine.wait_for_run(DEFERRABLE, run_id) == "success"
    assert _questions(slack, run_id) == 1


def test_fifty_pending_gates_all_open_after_approval_with_one_call_per_check(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    engine.wait_for_dag(DEFERRABLE)
    run_ids = [engine.trigger(DEFERRABLE) for _ in range(50)]
    questions = [slack.question_about(run_id, timeout=300) for run_id in run_ids]
    started = time.monotonic()

    for question in questions:
        slack.answer(question, "approve")

    assert {engine.wait_for_run(DEFERRABLE, run_id, timeout=300) for run_id in run_ids} == {"success"}
    assert all(_questions(slack, run_id) == 1 for run_id in run_ids)
    # every check is one conversations.replies on one question's thread: no other read calls
    reads = [call for call in slack.server.requests
             if call.endpoint not in ("chat.postMessage", "chat.update", "chat.getPermalink")]
    assert {call.endpoint for call in reads} == {"conversations.replies"}
    print(f"50 gates resolved {time.monotonic() - started:.1f}s after the approvals")


POKE = "e2e_gate_poke"


def test_marking_the_run_failed_by_hand_closes_the_pending_question(engine: AirflowEngine, slack: SlackChannel) -> None:
    engine.wait_for_dag(POKE)
    run_id = engine.trigger(POKE)
    question = slack.question_about(run_id)
    wait_until(lambda: slack.replies_checks(question) >= 1, 60, "a first poke")

    engine.api("PATCH", f"/dags/{POKE}/dagRuns/{run_id}", {"state": "failed"})

    wait_until(lambda: "Closed: the task was stopped" in slack.current_text(question), 60,
               "the question closed by the stopped sensor")
    assert engine.run_state(POKE, run_id) == "failed"


def test_clearing_an_answered_gate_asks_again_and_the_old_answer_no_longer_counts(
    engine: AirflowEngine, slack: SlackChannel
) -> None:
    engine.wait_for_dag(RESCHEDULE)
    run_id = engine.trigger(RESCHEDULE)
    first = slack.question_about(run_id)
    slack.answer(first, "approve")
    assert engine.wait_for_run(RESCHEDULE, run_id) == "success"

    engine.api("POST", f"/dags/{RESCHEDULE}/clearTaskInstances",
               {"dry_run": False, "dag_run_id": run_id, "task_ids": ["gate"], "only_failed": False,
                "reset_dag_runs": True, "include_downstream": True})
    wait_until(lambda: len(slack.posts_about(run_id)) >= 2 or None, 120, "the question asked again")

    again = [m for m in slack.server.questions(CHANNEL) if run_id in m["text"]][-1]
    assert again["text"].startswith("Asked again (try 2)")
    slack.answer(again, "reject")  # the first question's "approve" must not open this gate
    assert engine.wait_for_run(RESCHEDULE, run_id) == "failed"
    assert engine.task_states(RESCHEDULE, run_id) == {"gate": "failed", "deploy": "upstream_failed"}
    assert len(slack.posts_about(run_id)) == 2
