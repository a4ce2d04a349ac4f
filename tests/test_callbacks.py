"""Failure/success/retry callbacks in real ``dag.test()`` runs: what arrives, when, and what never breaks."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.plugins.airflow import RunDag
from tests.plugins.secrets import register_secret
from tests.servers.smtp import STALL, LocalSMTPServer, free_port

DEAD_SERVER_PASSWORD = "dead-server-Pa55"
register_secret(DEAD_SERVER_PASSWORD)

FAILING_DAG = """
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_failure_callback

    with DAG("nightly_etl", schedule=None) as dag:
        @task(retries=1, retry_delay=0, on_failure_callback=alerter_failure_callback("ops_email"))
        def load():
            raise ValueError("warehouse is read-only <b>")
        load()
"""


def test_failing_task_with_a_retry_sends_exactly_one_email_after_the_last_try(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    result = run_dag(FAILING_DAG)

    assert result.state_of("load") == "failed"
    [email] = smtp_server.received
    assert email.message["Subject"] == "[Airflow] Task Failure Alert"
    text = email.part("plain")
    for fact in ("DAG: nightly_etl", "Task: load", "Try number: 2", "ValueError: warehouse is read-only <b>",
                 'raise ValueError("warehouse is read-only <b>")', "Task log: http"):
        assert fact in text
    assert "ValueError: warehouse is read-only &lt;b&gt;" in email.part("html")


def test_success_callback_sends_a_success_notification(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_success_callback

        with DAG("train", schedule=None) as dag:
            @task(on_success_callback=alerter_success_callback("ops_email"))
            def fit():
                return 1
            fit()
    """)

    [email] = smtp_server.received
    assert email.message["Subject"] == "[Airflow] Task Success Notification"
    assert "Task fit in DAG train succeeded" in email.part("plain")


def test_dag_level_failure_callback_reports_the_run(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("report", schedule=None, on_failure_callback=alerter_failure_callback("ops_email")) as dag:
            @task
            def build():
                raise RuntimeError("no data")
            build()
    """)

    [email] = smtp_server.received
    assert email.message["Subject"] == "[Airflow] DAG Run Failure Alert"
    assert "DAG report failed" in email.part("plain")


def test_retry_callback_alerts_for_each_try_that_will_be_retried(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_retry_callback

        with DAG("flaky", schedule=None) as dag:
            @task(retries=2, retry_delay=0, on_retry_callback=alerter_retry_callback("ops_email"))
            def call_api():
                raise ConnectionError("503")
            call_api()
    """)

    assert [email.message["Subject"] for email in smtp_server.received] == ["[Airflow] Task Retry Alert"] * 2


def test_email_callback_takes_typed_email_options_and_templates(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import smtp_email_failure_callback

        callback = smtp_email_failure_callback(
            "ops_email", recipient_email=["ml-team@example.com"], subject_prefix="[ML]", cc=["lead@example.com"],
            title="{{ dag.dag_id }} broke")
        with DAG("features", schedule=None) as dag:
            @task(on_failure_callback=callback)
            def compute():
                raise KeyError("user_id")
            compute()
    """)

    [email] = smtp_server.received
    assert email.message["Subject"] == "[ML] features broke"
    assert sorted(email.rcpt_tos) == ["lead@example.com", "ml-team@example.com"]


def test_callback_on_a_dead_server_only_warns_and_leaves_the_task_state_alone(
    run_dag: RunDag, airflow_conn: Callable[..., str], read_logs: Callable[[], str]
) -> None:
    airflow_conn("ops_email", "smtp", host="127.0.0.1", port=free_port(), password=DEAD_SERVER_PASSWORD,
                 extra={"disable_ssl": True, "disable_tls": True, "from_email": "a@example.com",
                        "to": "b@example.com", "retry_limit": 2, "retry_backoff": 0.01})

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_success_callback

        with DAG("ok_dag", schedule=None) as dag:
            @task(on_success_callback=alerter_success_callback("ops_email"))
            def work():
                return 1
            work()
    """)

    assert result.state_of("work") == "success"
    logs = read_logs()
    assert "Success alert through connection 'ops_email' was not sent" in logs
    assert "ConnectionRefusedError" in logs
    assert DEAD_SERVER_PASSWORD not in logs


def test_callback_with_a_missing_connection_only_warns(run_dag: RunDag, read_logs: Callable[[], str]) -> None:
    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("no_conn", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("not_defined_anywhere"))
            def work():
                raise ValueError("x")
            work()
    """)

    assert result.state_of("work") == "failed"
    assert "Failure alert through connection 'not_defined_anywhere' was not sent" in read_logs()


def test_storm_aggregation_is_opt_in_so_a_lone_failure_is_alerted_at_once() -> None:
    """benchmarks/storm.py: a 10 s window held a lone failure's alert 10 s while its siblings still ran."""
    from types import SimpleNamespace

    from airflow_alerter import alerter_failure_callback
    from airflow_alerter.notifications import storm

    mapped = {"ti": SimpleNamespace(map_index=3, dag_id="etl", run_id="r1", task_id="load")}

    notifier = alerter_failure_callback("ops_email")

    assert notifier.storm_window == 0
    assert storm.storm_window(mapped, "ops_email", "failure", notifier.storm_window) is None


def test_mapped_failures_under_dag_test_are_alerted_one_by_one_without_waiting(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer, read_logs: Callable[[], str]
) -> None:
    """dag.test() runs tasks one after another, so a leader waiting for its siblings would only stall the run."""
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("mapped_etl", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("ops_email", storm_window=600))
            def load(row):
                raise ValueError(f"row {row} is malformed")
            load.expand(row=[0, 1, 2])
    """)

    assert sorted(email.part("plain").count("Map index: ") for email in smtp_server.received) == [1, 1, 1]
    assert "dag.test() runs tasks one by one" in read_logs()


def test_a_send_outlasting_airflows_overtime_is_abandoned_with_a_warning_not_killed_silently(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer, read_logs: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Airflow SIGKILLs a task's process [core] task_success_overtime seconds after its final state."""
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "4")
    smtp_server.reply_next(STALL, STALL, STALL)
    started = time.monotonic()

    result = run_dag(FAILING_DAG)

    assert result.state_of("load") == "failed"
    assert "Failure alert through connection 'ops_email' was not sent: OutOfTime" in read_logs()
    assert time.monotonic() - started < 30


def test_a_dag_callback_outlasting_the_dag_processors_timeout_is_abandoned_with_a_warning(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer, read_logs: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A DAG-level callback runs in the dag-processor, which ends a file's run after dag_file_processor_timeout."""
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT", "4")
    smtp_server.reply_next(STALL, STALL, STALL)
    started = time.monotonic()

    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("nightly_dag_alert", schedule=None, on_failure_callback=alerter_failure_callback("ops_email")) as dag:
            @task
            def load():
                raise ValueError("read-only")
            load()
    """)

    assert "Failure alert through connection 'ops_email' was not sent: OutOfTime" in read_logs()
    assert "dag_file_processor_timeout" in read_logs()
    assert time.monotonic() - started < 30
