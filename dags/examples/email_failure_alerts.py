"""Email alerts with one line per DAG: a failure email after the last retry, a success note, a DAG-level alert.

Needs an Airflow ``smtp`` connection ``ops_email`` (host, port, login, password; extras ``from_email``,
``disable_ssl``/``disable_tls`` as in Airflow's smtp provider, and ``to`` for the default recipients).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from airflow_alerter import alerter_failure_callback, alerter_success_callback, smtp_email_failure_callback

with DAG(
    dag_id="example_email_failure_alerts",
    schedule=None,
    tags=["airflow-alerter", "example", "demo", "fails-on-purpose"],
    on_failure_callback=alerter_failure_callback("ops_email"),  # one email per failed DAG run
) as dag:

    @task(on_success_callback=alerter_success_callback("ops_email"))
    def extract() -> int:
        return 42

    @task(
        retries=1,
        retry_delay=timedelta(seconds=0),
        # richer email options, typed: recipients, subject prefix, cc; sent once, after the last try
        on_failure_callback=smtp_email_failure_callback(
            "ops_email", recipient_email=["ml-team@example.com"], subject_prefix="[ML pipeline]"
        ),
    )
    def train(rows: int) -> None:
        raise ValueError(f"training diverged after {rows} rows: loss=nan")

    train(extract())
