"""The harness itself: a run triggered through the REST API executes on the Celery worker, and a
worker killed with SIGKILL comes back and runs tasks again."""

from __future__ import annotations

import pytest

from tests.e2e.engine import AirflowEngine

pytestmark = pytest.mark.e2e


def test_a_run_triggered_through_the_rest_api_runs_its_tasks_on_the_celery_worker(engine: AirflowEngine) -> None:
    engine.wait_for_dag("e2e_smoke")
    run_id = engine.trigger("e2e_smoke")

    assert engine.wait_for_run("e2e_smoke", run_id) == "failed"
    tis = engine.task_instances("e2e_smoke", run_id)
    assert {task_id: ti.state for task_id, ti in tis.items()} == {"succeed": "success", "fail": "failed"}
    assert {ti.queue for ti in tis.values()} == {engine.queue}  # the queue only this engine's worker consumes


def test_a_celery_worker_killed_with_sigkill_is_restarted_and_runs_tasks_again(engine: AirflowEngine) -> None:
    engine.wait_for_dag("e2e_smoke")
    engine.kill("celery-worker")
    engine.start_component("celery-worker")

    run_id = engine.trigger("e2e_smoke")

    assert engine.wait_for_run("e2e_smoke", run_id) == "failed"
    assert engine.task_states("e2e_smoke", run_id) == {"succeed": "success", "fail": "failed"}
