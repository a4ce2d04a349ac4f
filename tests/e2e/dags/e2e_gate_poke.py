"""A poke-mode approval gate: the sensor waits in its worker slot, so stopping the run by hand kills a
running sensor, whose on_kill closes the question."""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_poke", schedule=None, catchup=False, tags=["e2e"]) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy {{ run_id }}?",
                            mode="poke", poke_interval=1, timeout=600)

    @task
    def deploy() -> str:
        return "deployed"

    gate >> deploy()
