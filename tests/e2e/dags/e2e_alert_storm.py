"""200 mapped task instances that all fail: the failure alerts are gathered into summaries (the
default 60 s window), not one email per instance. ``fail_every_row`` has no retries, so each
instance's failure callback runs once, right after its one try."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import alerter_failure_callback

ROWS = 200

with DAG("e2e_alert_storm", schedule=None, catchup=False, tags=["e2e"]) as dag:

    @task(retries=0, on_failure_callback=alerter_failure_callback("ops_email", storm_window=10))
    def fail_every_row(row: int) -> None:
        raise ValueError(f"row {row} is malformed")

    fail_every_row.expand(row=list(range(ROWS)))
