"""A deferrable gate with approvers, recorded in Airflow: the pushed responder (Socket Mode) answers it.

``poke_interval`` is the chat poll without a responder; while one serves ``ml_slack`` the gate reads
only its record, every ``poke_interval`` seconds (at most 5).
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_pushed", schedule=None, catchup=False, tags=["e2e"], max_active_runs=16) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Ship {{ run_id }}?",
                            deferrable=True, poke_interval=2, timeout=600,
                            approvers=["U0APPROVER", "U0SECOND"])

    @task
    def ship() -> str:
        return "shipped"

    gate >> ship()
