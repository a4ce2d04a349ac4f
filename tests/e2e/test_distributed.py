"""Scenarios on Airflow's distributed engine: each run is triggered through the REST API, and the test
asserts on what arrived at the local SMTP inbox / Slack API and on the final task states."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.conftest import SENDERS, Inbox, SlackChannel, smtp_connection
from tests.e2e.engine import AirflowEngine, wait_until
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


@pytest.mark.timeout(600)
def test_two_hundred_failing_mapped_instances_send_a_few_summaries_naming_each_instance_once(
    engine: AirflowEngine, inbox: Inbox
) -> None:
    engine.wait_for_dag("e2e_alert_storm")
    run_id = engine.trigger("e2e_alert_storm")

    assert engine.wait_for_run("e2e_alert_storm", run_id, timeout=900) == "failed"
    assert list(engine.task_states("e2e_alert_storm", run_id).values()) == ["failed"] * 200
    named = _wait_for_named_instances(inbox, run_id, expected=200)
    emails = inbox.about(run_id, SENDERS["ops_email"])
    assert sorted(named) == list(range(200)), "every failed instance is named in exactly one summary"
    assert 1 <= len(emails) <= 20
    assert all("Task Failure Alert" in str(email.message["Subject"]) for email in emails)


def _wait_for_named_instances(inbox: Inbox, run_id: str, expected: int, timeout: float = 240.0) -> list[int]:
    """The map indexes the emails about ``run_id`` name, once ``expected`` of them arrived."""

    def named() -> list[int]:
        found: list[int] = []
        for email in inbox.about(run_id, SENDERS["ops_email"]):
            text = (email.part("plain") or "").replace("\r\n", "\n")
            ranges = re.search(r"^Task instances: fail_every_row\[([0-9,\-]+)\]$", text, re.MULTILINE)
            single = re.search(r"^Map index: ([0-9]+)$", text, re.MULTILINE)
            if ranges:
                for span in ranges.group(1).split(","):
                    start, _, end = span.partition("-")
                    found += range(int(start), int(end or start) + 1)
            elif single:
                found.append(int(single.group(1)))
        return found

    wait_until(lambda: len(named()) >= expected, timeout, f"{expected} instances named in the emails", interval=2.0)
    time.sleep(2.0)  # a duplicate would come right behind: give it the chance to show
    return named()
