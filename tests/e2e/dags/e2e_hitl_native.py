"""Airflow's own Human-in-the-loop operators, asked in Slack by alerter_hitl_notifier; the responder records answers."""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import DAG, task

from airflow_alerter import alerter_hitl_notifier

with DAG("e2e_hitl_approval", schedule=None, catchup=False, tags=["e2e"], max_active_runs=16) as approval_dag:
    approve = ApprovalOperator(task_id="approve", subject="Publish {{ run_id }}?", body="The report is ready.",
                               notifiers=[alerter_hitl_notifier("ml_slack", approvers=["U0APPROVER"])])

    @task
    def publish() -> str:
        return "published"

    approve >> publish()

with DAG("e2e_hitl_choice", schedule=None, catchup=False, tags=["e2e"], max_active_runs=16) as choice_dag:
    HITLOperator(task_id="choose", subject="Next step for {{ run_id }}?", options=["Retrain", "Ship", "Stop"],
                 multiple=True, notifiers=[alerter_hitl_notifier("ml_slack")])
