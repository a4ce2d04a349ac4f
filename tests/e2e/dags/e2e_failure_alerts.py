"""A task that fails on every try: one email and one Slack alert after the last retry (from the worker),
one email for the DAG run (from the dag-processor). ``worker_email`` exists only on the Celery worker,
``dag_processor_email`` only on the dag-processor (see tests/e2e/conftest.py), so each email names the
component that sent it."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from airflow_alerter import alerter_failure_callback

with DAG(
    "e2e_failure_alerts",
    schedule=None,
    catchup=False,
    tags=["e2e"],
    on_failure_callback=alerter_failure_callback("dag_processor_email"),
) as dag:

    @task(
        retries=1,
        retry_delay=timedelta(seconds=1),
        on_failure_callback=[alerter_failure_callback("worker_email"), alerter_failure_callback("ml_slack")],
    )
    def load_warehouse() -> None:
        raise ValueError("warehouse is read-only")

    load_warehouse()
