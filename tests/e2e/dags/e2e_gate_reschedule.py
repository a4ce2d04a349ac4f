"""A reschedule-mode approval gate: the worker slot is freed between pokes, the question posted once."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_reschedule", schedule=None, catchup=False, tags=["e2e"]) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy {{ run_id }}?",
                            mode="reschedule", poke_interval=2, timeout=600)

    @task
    def deploy() -> str:
        return "deployed"

    gate >> deploy()
