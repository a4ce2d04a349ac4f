"""AlerterPostOperator in real DAG runs: templating, trusted HTML, and what a failed delivery does to the task."""

from __future__ import annotations

from collections.abc import Callable

from tests.plugins.airflow import RunDag
from tests.servers.smtp import LocalSMTPServer, free_port


def test_templated_message_subject_and_recipients_are_rendered(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterMessage, AlerterPostOperator

        with DAG("release", schedule=None, params={"version": "7"}) as dag:
            AlerterPostOperator(
                task_id="announce", alerter_conn_id="ops_email",
                message=AlerterMessage(title="Model v{{ params.version }} deployed",
                                       body="DAG {{ dag.dag_id }} shipped it.",
                                       metadata={"version": "{{ params.version }}"}),
                subject="Release {{ params.version }}", recipient_email="release-{{ params.version }}@example.com",
            )
    """)

    assert result.state_of("announce") == "success"
    [email] = smtp_server.received
    assert (email.message["Subject"], email.rcpt_tos) == ("Release 7", ["release-7@example.com"])
    text = email.part("plain")
    assert "Model v7 deployed" in text and "DAG release shipped it." in text and "Version: 7" in text


def test_custom_html_body_is_sent_as_given(run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer) -> None:
    run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterPostOperator

        with DAG("report", schedule=None) as dag:
            AlerterPostOperator(task_id="send", alerter_conn_id="ops_email", message="Weekly report",
                                html_body="<h1>Weekly report for {{ dag.dag_id }}</h1>")
    """)

    assert smtp_server.received[0].part("html").strip() == "<h1>Weekly report for report</h1>"


def test_failed_delivery_fails_the_task_with_the_reason(
    run_dag: RunDag, airflow_conn: Callable[..., str], read_logs: Callable[[], str]
) -> None:
    airflow_conn("ops_email", "smtp", host="127.0.0.1", port=free_port(), extra={
        "disable_ssl": True, "disable_tls": True, "from_email": "a@example.com", "to": "b@example.com",
        "retry_limit": 0})

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterPostOperator

        with DAG("announce_down", schedule=None) as dag:
            AlerterPostOperator(task_id="announce", alerter_conn_id="ops_email", message="hello")
    """)

    assert result.state_of("announce") == "failed"
    assert "AlerterDeliveryError: could not send email via 127.0.0.1" in read_logs()


def test_raise_on_failure_false_lets_the_task_succeed(run_dag: RunDag, airflow_conn: Callable[..., str]) -> None:
    airflow_conn("ops_email", "smtp", host="127.0.0.1", port=free_port(), extra={
        "disable_ssl": True, "disable_tls": True, "from_email": "a@example.com", "to": "b@example.com",
        "retry_limit": 0})

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterPostOperator

        with DAG("best_effort", schedule=None) as dag:
            AlerterPostOperator(task_id="announce", alerter_conn_id="ops_email", message="hello",
                                raise_on_failure=False)
    """)

    assert result.state_of("announce") == "success"
