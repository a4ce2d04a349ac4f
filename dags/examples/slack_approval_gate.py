"""An approval gate: train, ask in Slack, deploy only when a person approves.

Needs a ``slack`` connection ``ml_slack`` (password: the bot token; extra ``channel``) for a bot
with the scopes ``chat:write``, ``channels:history`` (``groups:history`` for private channels)
and ``reactions:read`` (see docs/slack.md). Answer in the question's thread with "approve" /
"reject" (or LGTM, ok, yes / decline, no), or react with ✅ / ❌.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from airflow_alerter import AlerterAskSensor, AlerterMessage, alerter_failure_callback

with DAG(
    dag_id="example_slack_approval_gate",
    schedule=None,
    params={"model_version": "v7"},
    tags=["airflow-alerter", "example", "demo"],
    default_args={"on_failure_callback": alerter_failure_callback("ml_slack")},
) as dag:

    @task
    def train() -> dict[str, float]:
        return {"accuracy": 0.931, "loss": 0.12}

    metrics = train()

    gate = AlerterAskSensor(
        task_id="approve_deploy",
        alerter_conn_id="ml_slack",
        question=AlerterMessage(
            title="Deploy model {{ params.model_version }}?",
            body="Training finished with {{ ti.xcom_pull(task_ids='train') }}.",
            metadata={"dag_id": "{{ dag.dag_id }}", "run_id": "{{ run_id }}"},
        ),
        # approvers=["U012AB3CD"],      # only these Slack user ids may answer
        on_reject="skip",               # a "no" skips the deploy instead of failing the run
        deferrable=True,                # wait in the triggerer, not in a worker slot
        poke_interval=60,               # Slack allows ~1 conversations.replies a minute to most apps
        timeout=6 * 3600,
    )

    @task
    def deploy(version: str) -> str:
        return f"deployed {version}"

    metrics >> gate >> deploy("{{ params.model_version }}")
