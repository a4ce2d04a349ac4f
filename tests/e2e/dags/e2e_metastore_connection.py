"""Post through a connection that lives only in the metadata database (created through the REST API):
the Celery worker has no copy of it and must get it through Airflow 3's execution API."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_alerter import AlerterMessage, AlerterPostOperator

with DAG("e2e_metastore_connection", schedule=None, catchup=False, tags=["e2e"]) as dag:
    AlerterPostOperator(
        task_id="announce",
        alerter_conn_id="metastore_email",
        message=AlerterMessage(title="Model deployed", body="Deployed by run {{ run_id }}."),
    )
