"""A deferrable approval gate: the question waits in the triggerer; "reject" skips the deploy."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_deferrable", schedule=None, catchup=False, tags=["e2e"], max_active_runs=64) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy {{ run_id }}?",
                            deferrable=True, poke_interval=2, timeout=600, on_reject="skip")

    @task
    def deploy() -> str:
        return "deployed"

    gate >> deploy()
