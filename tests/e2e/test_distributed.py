"""Scenarios on Airflow's distributed engine: each run is triggered through the REST API, and the test
asserts on what arrived at the local SMTP inbox / Slack API and on the final task states."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SENDERS, Inbox, SlackChannel, smtp_connection
from tests.e2e.engine import AirflowEngine
from tests.servers.smtp import LocalSMTPServer

pytestmark = pytest.mark.e2e


def test_a_task_failing_after_its_retries_sends_one_alert_from_the_worker_and_one_for_the_dag_run(
    engine: AirflowEngine, inbox: Inbox, slack: SlackChannel
) -> None:
    engine.wait_for_dag("e2e_failure_alerts")
    run_id = engine.trigger("e2e_failure_alerts")

    assert engine.wait_for_run("e2e_failure_alerts", run_id) == "failed"
    [task_ti] = engine.task_instances("e2e_failure_alerts", run_id).values()
    assert (task_ti.state, task_ti.try_number) == ("failed", 2)
    [task_alert] = inbox.wait_for(run_id, SENDERS["worker_email"])
    assert task_alert.message["Subject"] == "[Airflow] Task Failure Alert"
    text = task_alert.part("plain") or ""
    for fact in ("Task: load_warehouse", "Try number: 2", "ValueError: warehouse is read-only"):
        assert fact in text
    [slack_alert] = slack.posts_about(run_id)
    assert str(slack_alert.args["text"]).startswith("Task Failure Alert")
    [dag_alert] = inbox.wait_for(run_id, SENDERS["dag_processor_email"])
    assert dag_alert.message["Subject"] == "[Airflow] DAG Run Failure Alert"
    assert "DAG e2e_failure_alerts failed" in (dag_alert.part("plain") or "")


def test_a_connection_stored_in_the_metadata_database_reaches_the_worker_through_the_execution_api(
    engine: AirflowEngine, inbox: Inbox, e2e_smtp: LocalSMTPServer
) -> None:
    conn = smtp_connection(e2e_smtp, "metastore_email")
    engine.api(
        "POST",
        "/connections",
        {
            "connection_id": "metastore_email",
            "conn_type": conn["conn_type"],
            "host": conn["host"],
            "port": conn["port"],
            "login": conn["login"],
            "password": conn["password"],
            "extra": json.dumps(conn["extra"]),
        },
        expect=(201,),
    )
    engine.wait_for_dag("e2e_metastore_connection")

    run_id = engine.trigger("e2e_metastore_connection")

    assert engine.wait_for_run("e2e_metastore_connection", run_id) == "success"
    [email] = inbox.wait_for(run_id, SENDERS["metastore_email"])
    assert email.message["Subject"] == "[Airflow] Model deployed"
