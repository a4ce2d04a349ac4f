"""RabbitMQ as Celery's broker instead of Redis: the failure alert still comes once, from the worker."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SENDERS, Inbox
from tests.e2e.engine import AirflowEngine

pytestmark = pytest.mark.e2e


def test_with_rabbitmq_as_broker_a_failing_task_sends_one_alert_from_the_worker(
    rabbitmq_engine: AirflowEngine, inbox: Inbox
) -> None:
    rabbitmq_engine.wait_for_dag("e2e_failure_alerts")
    run_id = rabbitmq_engine.trigger("e2e_failure_alerts")

    assert rabbitmq_engine.wait_for_run("e2e_failure_alerts", run_id) == "failed"
    [alert] = inbox.wait_for(run_id, SENDERS["worker_email"])
    assert alert.message["Subject"] == "[Airflow] Task Failure Alert"
