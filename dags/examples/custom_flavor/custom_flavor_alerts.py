"""A custom flavor used from a DAG: the connection names the flavor, the DAG code is unchanged.

Needs the ``my_alerters`` package next to this file to be importable where tasks run, registered in
one of two ways (docs/custom_flavors.md):

    pip install ./dags/examples/custom_flavor            # entry point, or
    airflow-alerter flavor register my_alerters.jsonl_file.JsonLinesFileAlerter

and a connection ``team_log`` of type ``alerter``, for example
``AIRFLOW_CONN_TEAM_LOG='{"conn_type": "alerter", "extra": {"flavor": "jsonl_file", "path": "/tmp/alerts.jsonl"}}'``.
Trigger it with ``{"fail": true}`` to see the failure alert.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_alerter import AlerterPostOperator, alerter_failure_callback

with DAG(
    dag_id="example_custom_flavor_alerts",
    schedule=None,
    params={"fail": Param(False, type="boolean", description="fail the load, to see the failure alert")},
    tags=["airflow-alerter", "example"],
) as dag:
    announce = AlerterPostOperator(
        task_id="announce",
        alerter_conn_id="team_log",
        title="Nightly load started",
        message="Run {{ run_id }} is loading the warehouse.",
    )

    @task(on_failure_callback=alerter_failure_callback("team_log"))
    def load(params: dict[str, Any] | None = None) -> None:
        if params and params["fail"]:
            raise RuntimeError("warehouse is read-only")

    announce >> load()
