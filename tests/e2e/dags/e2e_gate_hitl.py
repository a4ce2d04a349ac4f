"""A deferrable gate recorded in Airflow's Human-in-the-loop record, with a short timeout for the timeout case.

``conf["short"]`` runs decide nothing: they time out after 15 s and say so everywhere.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_hitl", schedule=None, catchup=False, tags=["e2e"], max_active_runs=16) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Release {{ run_id }}?",
                            deferrable=True, poke_interval=2, timeout=15, assigned_users=["admin"])

    @task
    def release() -> str:
        return "released"

    gate >> release()
