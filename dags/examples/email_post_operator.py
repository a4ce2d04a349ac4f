"""Post a message from a DAG: a templated announcement, and a custom HTML report from a template file.

Needs the ``ops_email`` smtp connection (see ``email_failure_alerts.py``).
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_alerter import AlerterMessage, AlerterPostOperator

with DAG(
    dag_id="example_email_post_operator",
    schedule=None,
    params={"model_version": "v7", "accuracy": "0.931"},
    tags=["airflow-alerter", "example", "demo"],
) as dag:
    announce = AlerterPostOperator(
        task_id="announce_model",
        alerter_conn_id="ops_email",
        message=AlerterMessage(
            title="Model {{ params.model_version }} is live",
            body="Run {{ run_id }} promoted the model.\n\nNothing to do: this is a notification.",
            metadata={"model_version": "{{ params.model_version }}", "accuracy": "{{ params.accuracy }}"},
        ),
    )

    report = AlerterPostOperator(
        task_id="weekly_report",
        alerter_conn_id="ops_email",
        message="Weekly model report (open the HTML part)",
        subject="Weekly report: {{ params.model_version }}",
        html_body="templates/weekly_report.html",  # a file beside this DAG, rendered as a template
    )

    announce >> report
