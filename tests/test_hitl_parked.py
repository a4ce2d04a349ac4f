"""Airflow's own HITL operators in ``dag.test()``: the task parks in ``awaiting_input`` (Airflow 3.3, by
design) and waits for an answer recorded from outside — through a real ``airflow api-server`` (REST API,
a real JWT), or in the Slack stand-in, recorded by the responder; both orders, and the race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_alerter.responder import AirflowAPI, Responder
from tests.plugins.airflow import AIRFLOW_VERSION, ApiServer, RunDag
from tests.plugins.slack import CHANNEL
from tests.servers.slack_api import SlackAPIServer

pytestmark = pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow 3.3 on; before, dag.test() "
    "runs their trigger in the task's process, where Airflow does not serve reading the record")

APPROVER = "UALICE01"
APPROVAL_DAG = """
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_hitl_notifier

    with DAG("publish_report", schedule=None) as dag:
        approve = ApprovalOperator(task_id="approve", subject="Publish?",
                                   notifiers=[alerter_hitl_notifier("ml_slack", approvers=["UALICE01"])])

        @task
        def publish():
            return "published"

        approve >> publish()
"""


def _pending(api: ApiServer) -> str:
    """The REST path of the one unanswered request, once the notifier has asked it and the task has parked.

    Not before: an answer that lands while the task is still asking (between Airflow creating the record
    and the task parking) was seen to leave ``dag.test()`` parked for good (Airflow 3.3.2).
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for item in api.call("GET", "/dags/~/dagRuns/~/hitlDetails")["hitl_details"]:
            ti = item["task_instance"]
            if not item["response_received"] and ti["dag_id"] == "publish_report" and (
                    ti.get("state") == "awaiting_input"):
                return f"/dags/publish_report/dagRuns/{ti['dag_run_id']}/taskInstances/approve/-1/hitlDetails"
        time.sleep(0.2)
    raise AssertionError("no parked HITL request within 60 s")


def _responder(api: ApiServer, stopping: threading.Event) -> Callable[[], None]:
    return lambda: Responder(AirflowAPI(api.url), interval=0.2).run(stopping)


def _last_line(slack_api: SlackAPIServer) -> str:
    return str(slack_api.messages[CHANNEL][-1]["text"])


def test_an_answer_through_the_rest_api_resumes_the_parked_task(
    run_dag: RunDag, slack_conn: str, api_server: ApiServer, in_background: Callable[[Callable[[], Any]], None]
) -> None:
    in_background(lambda: api_server.call("PATCH", _pending(api_server), {"chosen_options": ["Approve"]}))

    result = run_dag(APPROVAL_DAG)

    assert (result.state_of("approve"), result.state_of("publish")) == ("success", "success")


def test_an_answer_in_the_chat_is_recorded_by_the_responder_and_resumes_the_task(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, api_server: ApiServer,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    stopping = threading.Event()
    slack_api.answer_on_check(1, user=APPROVER, text="reject: numbers look off")
    in_background(_responder(api_server, stopping))

    result = run_dag(APPROVAL_DAG)
    stopping.set()

    assert result.state_of("publish") == "skipped"
    assert _last_line(slack_api) == f"❌ Rejected by <@{APPROVER}>"


def test_a_rest_answer_after_the_chat_answer_is_refused(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, api_server: ApiServer,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    refused: list[Any] = []
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    def answer_late() -> None:
        path = _pending(api_server)
        Responder(AirflowAPI(api_server.url)).serve_once()
        refused.append(api_server.call("PATCH", path, {"chosen_options": ["Reject"]}, expect=(409,)))

    in_background(answer_late)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("publish") == "success" and refused


def test_a_chat_answer_after_the_rest_answer_is_not_recorded_and_the_chat_shows_airflows(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, api_server: ApiServer,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")

    def airflow_first() -> None:
        api_server.call("PATCH", _pending(api_server), {"chosen_options": ["Reject"]})
        Responder(AirflowAPI(api_server.url)).serve_once()

    in_background(airflow_first)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("publish") == "skipped"
    assert _last_line(slack_api) == "❌ Rejected by Anonymous in Airflow"


def test_a_race_between_the_chat_and_the_rest_api_has_one_winner(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, api_server: ApiServer,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    slack_api.answer_on_check(1, user=APPROVER, text="approve")
    start = threading.Barrier(2)

    def rest() -> None:
        path = _pending(api_server)
        start.wait()
        api_server.call("PATCH", path, {"chosen_options": ["Reject"]}, expect=(200, 409))

    def chat() -> None:
        _pending(api_server)
        start.wait()
        Responder(AirflowAPI(api_server.url)).serve_once()

    in_background(rest)
    in_background(chat)
    result = run_dag(APPROVAL_DAG)

    shown = _last_line(slack_api)
    if result.state_of("publish") == "success":
        assert shown == f"✅ Approved by <@{APPROVER}>"
    else:
        assert shown == "❌ Rejected by Anonymous in Airflow"
