"""Approval gates when things go wrong around the question: a worker dying right after posting, two
people answering at once, a task asked again after a clear. Real DAG runs, real local chat APIs.

"Dies after posting" is played by a sensor whose first try raises right after the question is
posted and before its handle is stored: the state a SIGKILLed worker leaves behind. Airflow then
retries the task, as it does after a lost worker.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.plugins.airflow import RunDag
from tests.plugins.discord import DISCORD_CHANNEL
from tests.plugins.slack import CHANNEL
from tests.servers.discord_api import BOT_TOKEN as DISCORD_TOKEN
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.slack_api import BOT_USER, SlackAPIServer

APPROVER, SECOND_APPROVER = "UALICE01", "UBOB0002"


def dies_after_posting_dag(conn_id: str, timeout: float = 30) -> str:
    return f"""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterAskSensor

        class DiesAfterPosting(AlerterAskSensor):
            def question_handle(self, context, alerter):
                if context["ti"].try_number == 1:
                    send = alerter.send_question

                    def send_then_die(*args, **kwargs):
                        send(*args, **kwargs)
                        raise SystemError("worker lost right after posting the question")

                    alerter.send_question = send_then_die
                return super().question_handle(context, alerter)

        with DAG("release", schedule=None) as dag:
            DiesAfterPosting(task_id="approve_deploy", alerter_conn_id="{conn_id}", question="Deploy model v7?",
                             poke_interval=0.05, timeout={timeout}, retries=1, retry_delay=0, on_reject="skip")
    """


def test_a_retry_after_dying_between_posting_and_storing_finds_the_slack_question_instead_of_asking_again(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, read_logs: Callable[[], str]
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    result = run_dag(dies_after_posting_dag("ml_slack"))

    assert result.state_of("approve_deploy") == "success"
    assert [q["text"].split("\n")[0] for q in slack_api.questions(CHANNEL)] == ["Deploy model v7?"]
    assert len(slack_api.calls("conversations.history")) == 1
    assert "Found the question an interrupted attempt posted" in read_logs()


def test_a_discord_retry_later_than_the_nonce_window_finds_its_question_by_key(
    run_dag: RunDag, airflow_conn: Callable[..., str], discord_api: DiscordAPIServer, read_logs: Callable[[], str]
) -> None:
    """Discord drops a repeated nonce only for a few minutes; Airflow's default retry_delay is 300 s."""
    discord_api.nonce_window = 0.0
    airflow_conn("ml_discord", "discord", password=DISCORD_TOKEN,
                 extra={"channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url})

    run_dag(dies_after_posting_dag("ml_discord", timeout=0.5))

    question_posts = [r for r in discord_api.requests if r.method == "POST" and r.body.get("nonce")]
    assert len(question_posts) == 1 and len(discord_api.questions(DISCORD_CHANNEL)) == 1
    assert "Found the question an interrupted attempt posted" in read_logs()


def test_two_answers_at_once_the_first_decides_and_the_second_has_no_effect(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")
    slack_api.answer_on_check(1, user=SECOND_APPROVER, text="reject")

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import AlerterAskSensor

        with DAG("release", schedule=None) as dag:
            gate = AlerterAskSensor(task_id="approve_deploy", alerter_conn_id="ml_slack", question="Deploy?",
                                    poke_interval=0.05, timeout=30)

            @task
            def deploy(answer):
                assert answer["responder"] == "UALICE01", answer

            deploy(gate.output)
    """)

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("success", "success")
    outcomes = [m["text"] for m in slack_api.messages[CHANNEL] if m.get("user") == BOT_USER and m.get("thread_ts")]
    assert outcomes == ["✅ Approved by <@UALICE01>"]


def test_a_new_try_of_a_gate_asks_a_question_marked_as_asked_again(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    """A try after the first one (a clear in the UI, or a retry after an error before posting)."""
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterAskSensor

        class FailsBeforeAsking(AlerterAskSensor):
            def question_handle(self, context, alerter):
                if context["ti"].try_number == 1:
                    raise ConnectionError("Slack unreachable before the question was posted")
                return super().question_handle(context, alerter)

        with DAG("release", schedule=None) as dag:
            FailsBeforeAsking(task_id="approve_deploy", alerter_conn_id="ml_slack", question="Deploy model v7?",
                              poke_interval=0.05, timeout=30, retries=1, retry_delay=0)
    """)

    assert result.state_of("approve_deploy") == "success"
    [question] = slack_api.questions(CHANNEL)
    assert question["text"].startswith("Asked again (try 2)\n\nDeploy model v7?")
