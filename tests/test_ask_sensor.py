"""AlerterAskSensor in real DAG runs against a local Slack API: the gate opens, closes or times out."""

from __future__ import annotations

from collections.abc import Callable

from tests.plugins.airflow import RunDag
from tests.plugins.slack import CHANNEL
from tests.servers.http import Fault
from tests.servers.slack_api import SlackAPIServer

APPROVER = "UALICE01"


def gate_dag(sensor_options: str = "", on_reject: str = "fail") -> str:
    return f"""
        from airflow.sdk import DAG, task
        from airflow_alerter import AlerterAskSensor, AlerterMessage

        with DAG("release", schedule=None) as dag:
            gate = AlerterAskSensor(
                task_id="approve_deploy", alerter_conn_id="ml_slack", on_reject="{on_reject}",
                question=AlerterMessage(title="Deploy {{{{ dag.dag_id }}}}?", body="Run {{{{ run_id }}}}"),
                poke_interval=0.05, timeout=30, {sensor_options}
            )

            @task
            def deploy():
                return "deployed"

            gate >> deploy()
    """


def test_approval_opens_the_gate_and_the_answer_is_the_xcom(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(2, user=APPROVER, text="approve")

    result = run_dag(gate_dag())

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("success", "success")
    [question] = slack_api.questions(CHANNEL)
    assert question["text"].startswith("Deploy release?")
    assert "✅ Approved by <@UALICE01>" in question["text"]


def test_rejection_fails_the_gate_and_blocks_downstream(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="reject: metrics regressed")

    result = run_dag(gate_dag())

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("failed", "upstream_failed")


def test_rejection_with_on_reject_skip_skips_downstream(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, reaction="x")

    result = run_dag(gate_dag(on_reject="skip"))

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("skipped", "skipped")


def test_no_answer_times_out_and_says_so_in_the_thread(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    result = run_dag(gate_dag().replace("timeout=30", "timeout=0.3"))

    assert result.state_of("approve_deploy") == "failed"
    assert slack_api.messages[CHANNEL][-1]["text"].startswith("⌛ Timed out")


def test_answer_from_a_non_approver_does_not_open_the_gate(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(1, user="UMALLORY", text="approve")
    slack_api.answer_on_check(3, user=APPROVER, text="reject")

    result = run_dag(gate_dag('approvers=["UALICE01"],'))

    assert result.state_of("approve_deploy") == "failed"


def test_reschedule_mode_posts_the_question_once_across_pokes(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(4, user=APPROVER, text="LGTM")

    result = run_dag(gate_dag('mode="reschedule",'))

    assert result.state_of("deploy") == "success"
    assert len(slack_api.calls("conversations.replies")) == 4
    assert len(slack_api.questions(CHANNEL)) == 1


def test_rate_limited_checks_slow_down_but_the_gate_still_opens(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.fail_next("conversations.replies", Fault(429, retry_after=0), times=2)
    slack_api.answer_on_check(3, user=APPROVER, text="yes")

    result = run_dag(gate_dag())

    assert result.state_of("deploy") == "success"


def test_deferrable_gate_waits_in_the_trigger_and_posts_once(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(3, user=APPROVER, reaction="white_check_mark")

    result = run_dag(gate_dag("deferrable=True,"))

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("success", "success")
    assert len(slack_api.questions(CHANNEL)) == 1


def test_flavor_that_cannot_ask_fails_the_gate_with_a_clear_reason(
    run_dag: RunDag, airflow_conn: Callable[..., str], read_logs: object
) -> None:
    airflow_conn("team_chat", "alerter", password="https://chat.example.com/hooks/abc",
                 extra={"flavor": "webhook", "preset": "mattermost"})
    result = run_dag(gate_dag().replace('"ml_slack"', '"team_chat"'))

    assert result.state_of("approve_deploy") == "failed"
    reason = ("'webhook' alerter flavor cannot ask questions (post only). Flavors that can ask: discord, slack, "
              "smtp_email.")
    assert reason in read_logs()  # type: ignore[operator]


def test_failure_callback_posts_block_kit_to_the_channel(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("train", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("ml_slack"))
            def fit():
                raise ValueError("<!channel> loss is nan")
            fit()
    """)

    [alert] = slack_api.messages[CHANNEL]
    assert alert["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Task Failure Alert"}}
    assert "&lt;!channel&gt; loss is nan" in str(alert["blocks"]) and "<!channel>" not in str(alert["blocks"])


def test_mapped_gates_each_ask_their_own_question_once(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")
    slack_api.answer_on_check(3, user=APPROVER, text="reject")

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterAskSensor

        with DAG("regional_release", schedule=None) as dag:
            AlerterAskSensor.partial(task_id="gate", alerter_conn_id="ml_slack", poke_interval=0.05, timeout=30,
                                     on_reject="skip").expand(question=["Deploy to EU?", "Deploy to US?"])
    """)

    # one instance got the approval, the other the rejection, whichever ran first
    assert sorted([result.state_of("gate[0]"), result.state_of("gate[1]")]) == ["skipped", "success"]
    assert sorted(q["text"].split("\n")[0] for q in slack_api.questions(CHANNEL)) == ["Deploy to EU?", "Deploy to US?"]
