"""Discord and chat webhooks inside real DAG runs: the approval gate and the post operator through connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.plugins.airflow import RunDag
from tests.plugins.discord import DISCORD_CHANNEL
from tests.servers.discord_api import BOT_TOKEN, WEBHOOK_CHANNEL, WEBHOOK_ENDPOINT, DiscordAPIServer
from tests.servers.webhook import WebhookServer

APPROVER = "700000000000000001"


def _answer_when_asked(discord_api: DiscordAPIServer, emoji: str = "", reply: str = "") -> threading.Thread:
    """A person who reacts to (or replies to) the question as soon as it shows up in the channel."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if questions := discord_api.questions(DISCORD_CHANNEL):
                if emoji:
                    discord_api.add_reaction(DISCORD_CHANNEL, questions[0]["id"], emoji, APPROVER)
                if reply:
                    discord_api.add_message(DISCORD_CHANNEL, APPROVER, reply, reply_to=questions[0]["id"])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_deferrable_gate_on_discord_opens_on_a_check_mark(
    run_dag: RunDag, airflow_conn: Callable[..., str], discord_api: DiscordAPIServer
) -> None:
    airflow_conn(
        "team_discord",
        "alerter",
        password=BOT_TOKEN,
        extra={"flavor": "discord", "channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url},
    )
    _answer_when_asked(discord_api, "✅")

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import AlerterAskSensor

        with DAG("discord_gate", schedule=None) as dag:
            gate = AlerterAskSensor(task_id="gate", alerter_conn_id="team_discord", question="Ship it?",
                                    deferrable=True, poke_interval=0.1, timeout=30)

            @task
            def ship():
                return 1

            gate >> ship()
    """)

    assert (result.state_of("gate"), result.state_of("ship")) == ("success", "success")
    assert len(discord_api.questions(DISCORD_CHANNEL)) == 1
    assert discord_api.channels[DISCORD_CHANNEL][-1]["content"] == f"✅ Approved by <@{APPROVER}>"


def test_reschedule_gate_on_a_discord_connection_skips_downstream_on_a_rejecting_reply(
    run_dag: RunDag, airflow_conn: Callable[..., str], discord_api: DiscordAPIServer
) -> None:
    airflow_conn(
        "team_discord",
        "discord",
        password=BOT_TOKEN,
        extra={"channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url},
    )
    _answer_when_asked(discord_api, reply="No, not on a Friday")

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import AlerterAskSensor

        with DAG("discord_reschedule_gate", schedule=None) as dag:
            gate = AlerterAskSensor(task_id="gate", alerter_conn_id="team_discord", question="Ship it?",
                                    mode="reschedule", on_reject="skip", poke_interval=0.1, timeout=30)

            @task
            def ship():
                return 1

            gate >> ship()
    """)

    assert (result.state_of("gate"), result.state_of("ship")) == ("skipped", "skipped")
    assert len(discord_api.questions(DISCORD_CHANNEL)) == 1
    assert discord_api.channels[DISCORD_CHANNEL][-1]["content"] == f"❌ Rejected by <@{APPROVER}>"


def test_post_operator_reaches_a_teams_webhook_through_an_alerter_connection(
    run_dag: RunDag, airflow_conn: Callable[..., str], webhook_server: WebhookServer
) -> None:
    airflow_conn(
        "teams", "alerter", password=webhook_server.webhook_url, extra={"flavor": "webhook", "preset": "msteams"}
    )

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterMessage, AlerterPostOperator

        with DAG("teams_post", schedule=None) as dag:
            AlerterPostOperator(task_id="post", alerter_conn_id="teams",
                                message=AlerterMessage(title="Nightly load done", body="{{ dag.dag_id }}"))
    """)

    assert result.state_of("post") == "success"
    card = webhook_server.posts[0]["attachments"][0]["content"]
    assert [block["text"] for block in card["body"]] == ["Nightly load done", "teams_post"]


def test_post_operator_reaches_discord_through_an_unchanged_airflow_discord_connection(
    run_dag: RunDag, airflow_conn: Callable[..., str], discord_api: DiscordAPIServer
) -> None:
    airflow_conn(
        "discord_default", "discord", host=f"{discord_api.url}/api/", extra={"webhook_endpoint": WEBHOOK_ENDPOINT}
    )

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterMessage, AlerterPostOperator

        with DAG("discord_post", schedule=None) as dag:
            AlerterPostOperator(task_id="post", alerter_conn_id="discord_default",
                                message=AlerterMessage(title="Nightly load done", body="@everyone {{ dag.dag_id }}"))
    """)

    assert result.state_of("post") == "success"
    [posted] = discord_api.channels[WEBHOOK_CHANNEL]
    assert posted["embeds"][0]["description"] == "@everyone discord_post"
    assert posted["allowed_mentions"] == {"parse": []}
