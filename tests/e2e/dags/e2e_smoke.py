"""The harness's own proof: one task that succeeds and one that fails, run by the Celery worker."""

from __future__ import annotations

from airflow.sdk import DAG, task

with DAG("e2e_smoke", schedule=None, catchup=False, tags=["e2e"]) as dag:

    @task
    def succeed() -> str:
        return "ok"

    @task(retries=0)
    def fail() -> None:
        raise RuntimeError("e2e smoke failure")

    succeed()
    fail()
