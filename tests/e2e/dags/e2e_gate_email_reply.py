"""A deferrable gate asked by email, recorded in Airflow: answered by a reply read over IMAP.

``reply_email`` is defined by the test through the REST API (its SMTP and IMAP servers are the test's);
``poke_interval`` is how often the triggerer reads replies over IMAP and the record.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor

with DAG("e2e_gate_email_reply", schedule=None, catchup=False, tags=["e2e"], max_active_runs=16) as dag:
    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="reply_email", question="Release {{ run_id }}?",
                            deferrable=True, poke_interval=2, timeout=600)

    @task
    def ship() -> str:
        return "shipped"

    gate >> ship()
