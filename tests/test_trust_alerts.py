"""Alerts show no more than the task log does: masked secrets stay masked, and only html_body names a file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.airflow import RunDag
from tests.plugins.discord import DISCORD_CHANNEL
from tests.plugins.slack import CHANNEL
from tests.servers.discord_api import BOT_TOKEN, DiscordAPIServer
from tests.servers.slack_api import SlackAPIServer
from tests.servers.smtp import LocalSMTPServer
from tests.servers.webhook import WebhookServer

#: a secret the task itself registers with Airflow's masker, as a connection or sensitive Variable read does
TASK_SECRET = "pa55-Word-98765"


def _leaky_task_dag(conn_id: str) -> str:
    return f"""
        from airflow.sdk import DAG, task
        from airflow.sdk.log import mask_secret
        from airflow_alerter import alerter_failure_callback

        with DAG("leaky", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("{conn_id}"))
            def fetch():
                mask_secret("{TASK_SECRET}")
                raise RuntimeError("login failed with password {TASK_SECRET}")

            fetch()
    """


def test_a_masked_secret_in_the_exception_stays_masked_in_the_email(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag(_leaky_task_dag(smtp_conn))

    [email] = smtp_server.received
    for part in (email.part("plain") or "", email.part("html") or "", str(email.message["Subject"])):
        assert TASK_SECRET not in part
    assert "login failed with password ***" in (email.part("plain") or "")
    assert "login failed with password ***" in (email.part("html") or "")


def test_a_masked_secret_stays_masked_in_slack(run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer) -> None:
    run_dag(_leaky_task_dag(slack_conn))

    [alert] = slack_api.messages[CHANNEL]
    assert TASK_SECRET not in json.dumps(alert) and "login failed with password ***" in json.dumps(alert)


def test_a_masked_secret_stays_masked_in_discord(
    run_dag: RunDag, airflow_conn: Callable[..., str], discord_api: DiscordAPIServer
) -> None:
    airflow_conn("team_discord", "alerter", password=BOT_TOKEN,
                 extra={"flavor": "discord", "channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url})

    run_dag(_leaky_task_dag("team_discord"))

    posted = json.dumps(discord_api.channels[DISCORD_CHANNEL])
    assert TASK_SECRET not in posted and "login failed with password ***" in posted


def test_a_masked_secret_stays_masked_in_a_chat_webhook(
    run_dag: RunDag, airflow_conn: Callable[..., str], webhook_server: WebhookServer
) -> None:
    airflow_conn("team_chat", "alerter", password=webhook_server.webhook_url, extra={"flavor": "webhook"})

    run_dag(_leaky_task_dag("team_chat"))

    posted = json.dumps(webhook_server.posts)
    assert webhook_server.posts and TASK_SECRET not in posted and "login failed with password ***" in posted


def test_a_masked_secret_rendered_into_a_posted_message_stays_masked(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    run_dag(f"""
        from airflow.sdk import DAG, task
        from airflow.sdk.log import mask_secret
        from airflow_alerter import AlerterMessage, AlerterPostOperator

        with DAG("announce", schedule=None) as dag:
            @task
            def token():
                mask_secret("{TASK_SECRET}")
                return "{TASK_SECRET}"

            token() >> AlerterPostOperator(
                task_id="announce", alerter_conn_id="ops_email", subject="Token {{{{ ti.xcom_pull('token') }}}}",
                message=AlerterMessage(title="Rotated", body="New token: {{{{ ti.xcom_pull('token') }}}}"))
    """)

    [email] = smtp_server.received
    assert TASK_SECRET not in email.message.as_string()
    assert email.message["Subject"] == "Token ***" and "New token: ***" in (email.part("plain") or "")


# --- only html_body names a template file ----------------------------------------------------------


def test_a_title_and_subject_ending_in_html_are_text_not_files(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterMessage, AlerterPostOperator

        with DAG("links", schedule=None) as dag:
            AlerterPostOperator(task_id="send", alerter_conn_id="ops_email", subject="See report.html",
                                message=AlerterMessage(title="Published index.html", body="at docs/index.html"))
    """)

    assert result.state_of("send") == "success"
    [email] = smtp_server.received
    assert email.message["Subject"] == "See report.html"
    assert "Published index.html" in (email.part("plain") or "") and "at docs/index.html" in (email.part("plain") or "")


def test_html_body_may_name_a_template_file_beside_the_dag(
    run_dag: RunDag, dags_folder: Path, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    (dags_folder / "weekly.html").write_text("<h1>Weekly report for {{ dag.dag_id }}</h1>")

    run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterPostOperator

        with DAG("weekly", schedule=None) as dag:
            AlerterPostOperator(task_id="send", alerter_conn_id="ops_email", message="Weekly report",
                                html_body="weekly.html")
    """)

    assert (smtp_server.received[0].part("html") or "").strip() == "<h1>Weekly report for weekly</h1>"


# --- a templated title over several lines is joined, not dropped ----------------------------------


@pytest.mark.usefixtures("smtp_conn")
def test_a_templated_title_over_several_lines_becomes_one_line(run_dag: RunDag, smtp_server: LocalSMTPServer) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("multi", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("ops_email", title="{{ dag.dag_id }}\\n failed\\r\\n"))
            def fit():
                raise ValueError("nan")

            fit()
    """)

    [email] = smtp_server.received
    assert "multi failed" in str(email.message["Subject"])
