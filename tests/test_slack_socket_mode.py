"""The pushed responder on Slack Socket Mode: slack_sdk's real Socket Mode client against the local stand-in,
answers recorded through a real ``airflow api-server``, an Airflow ``ApprovalOperator`` parked in ``dag.test()``
(Airflow 3.3) asked in Slack with answer buttons.

Two responders racing for one question are tested end to end (tests/e2e), on PostgreSQL: the first-answer-wins
row lock of Airflow's PATCH is a no-op on SQLite, where two concurrent answers can both be accepted."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_alerter.hooks.heartbeat import heartbeat_key
from airflow_alerter.responder import AirflowAPI
from airflow_alerter.responder.push import PushResponder
from tests.plugins.airflow import AIRFLOW_VERSION, ApiServer, RunDag
from tests.plugins.secrets import assert_no_secrets
from tests.plugins.slack import CHANNEL
from tests.servers.slack_api import SlackAPIServer
from tests.servers.slack_socket import SlackSocketServer

pytestmark = pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow 3.3 on; before, dag.test() "
    "runs their trigger in the task's process, where Airflow does not serve reading the record")

APPROVER, STRANGER = "UALICE01", "UMALLORY"
APPROVAL_DAG = """
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_hitl_notifier

    with DAG("publish_report", schedule=None) as dag:
        approve = ApprovalOperator(task_id="approve", subject="Publish?",
                                   notifiers=[alerter_hitl_notifier("ml_slack", approvers=["UALICE01", "UBOBBY02"])])

        @task
        def publish():
            return "published"

        approve >> publish()
"""


class Responders:
    """Pushed responders running beside ``dag.test()``; stopped (and their errors raised) at the end."""

    def __init__(self, api: ApiServer, socket: SlackSocketServer) -> None:
        self.api, self.socket = api, socket
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, count: int = 1) -> None:
        before = self.socket.open_connections
        for _ in range(count):
            thread = threading.Thread(target=self._run, daemon=True)
            self.threads.append(thread)
            thread.start()
        self.socket.wait_connected(before + count)
        deadline = time.monotonic() + 30  # the notifier shows buttons once the heartbeat is there
        while not any(v["key"] == heartbeat_key("ml_slack") for v in self.api.call("GET", "/variables")["variables"]):
            assert time.monotonic() < deadline, "no responder heartbeat within 30 s"
            time.sleep(0.2)

    def _run(self) -> None:
        try:
            PushResponder(AirflowAPI(self.api.url), ["ml_slack"], interval=1.0).run(self.stopping)
        except BaseException as err:
            self.errors.append(err)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def responders(api_server: ApiServer, slack_socket: SlackSocketServer, slack_socket_conn: str) -> Iterator[Responders]:
    running = Responders(api_server, slack_socket)
    yield running
    running.stop()
    with_heartbeat = [v["key"] for v in api_server.call("GET", "/variables")["variables"]]
    for key in with_heartbeat:  # the next test starts without a responder
        api_server.call("DELETE", f"/variables/{key}", expect=(200, 204))


def _question(slack_api: SlackAPIServer, api: ApiServer | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """The request's question, once the notifier has posted it (and, given ``api``, the task has parked:
    an answer recorded while ``dag.test()`` is still asking was seen to leave it parked for good, 3.3.2)."""
    deadline = time.monotonic() + timeout
    while not slack_api.questions(CHANNEL) or (api is not None and not any(
            item["task_instance"].get("state") == "awaiting_input"
            for item in api.call("GET", "/dags/~/dagRuns/~/hitlDetails")["hitl_details"])):
        assert time.monotonic() < deadline, "no question posted (or the task did not park)"
        time.sleep(0.1)
    return slack_api.questions(CHANNEL)[0]


def _buttons(question: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for block in question.get("blocks") or [] if block.get("type") == "actions"
            for element in block["elements"]]


def _click_when_asked(api: ApiServer, slack_api: SlackAPIServer, socket: SlackSocketServer, *clicks: tuple[str, int],
                      acks: list[float] | None = None) -> Callable[[], None]:
    def click() -> None:
        question = _question(slack_api, api)
        for user, option in clicks:
            envelope = socket.click(CHANNEL, question["ts"], user, option)
            if acks is not None:
                acks.append(socket.wait_acked(envelope))
            time.sleep(0.5)
    return click


def test_a_click_on_approve_resumes_the_parked_request_and_the_envelope_is_acked_at_once(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    responders.start()
    acks: list[float] = []
    in_background(_click_when_asked(responders.api, slack_api, slack_socket, (APPROVER, 0), acks=acks))

    result = run_dag(APPROVAL_DAG)

    assert (result.state_of("approve"), result.state_of("publish")) == ("success", "success")
    assert acks and max(acks) < 3.0


def test_the_question_carries_a_button_per_option_and_a_link_to_airflow_while_a_responder_serves(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    monkeypatch: pytest.MonkeyPatch, in_background: Callable[[Callable[[], Any]], None],
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    responders.start()
    seen: list[list[dict[str, Any]]] = []

    def look_then_click() -> None:
        seen.append(_buttons(_question(slack_api)))
        _click_when_asked(responders.api, slack_api, slack_socket, (APPROVER, 1))()

    in_background(look_then_click)
    run_dag(APPROVAL_DAG)

    labels = [(b["text"]["text"], b.get("style")) for b in seen[0]]
    assert labels == [("Approve", "primary"), ("Reject", "danger"), ("View in Airflow", None)]
    assert seen[0][1]["confirm"]["confirm"]["text"] == "Reject" and "/required_actions" in seen[0][2]["url"]


def test_a_recorded_click_replaces_the_buttons_with_who_decided_and_when(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    responders.start()
    in_background(_click_when_asked(responders.api, slack_api, slack_socket, (APPROVER, 1)))

    result = run_dag(APPROVAL_DAG)

    question = slack_api.questions(CHANNEL)[0]
    assert result.state_of("publish") == "skipped" and not _buttons(question)
    assert f"❌ Rejected by <@{APPROVER}> at " in question["text"] and question["text"].endswith(" UTC")


def test_a_non_approvers_click_changes_nothing_and_only_they_are_told(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    responders.start()
    in_background(_click_when_asked(responders.api, slack_api, slack_socket, (STRANGER, 0), (APPROVER, 1)))

    result = run_dag(APPROVAL_DAG)

    assert result.state_of("publish") == "skipped"  # the approver's Reject, not the stranger's Approve
    assert [(e["user"], e["text"]) for e in slack_api.ephemerals] == [
        (STRANGER, "You are not an approver of this question; nothing changed.")]


def test_a_reply_given_while_the_responder_was_cut_off_is_recorded_when_it_reconnects(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    responders.start()

    def outage() -> None:
        question = _question(slack_api, responders.api)
        slack_socket.refusing = True
        slack_socket.drop_all()
        slack_api.add_reply(CHANNEL, question["ts"], APPROVER, "approve")  # nobody hears it now
        time.sleep(3)
        slack_socket.refusing = False  # the client reconnects; its hello starts the catch-up

    in_background(outage)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("publish") == "success"
    assert slack_socket.connections_opened >= 2


def test_malformed_envelopes_unknown_buttons_and_a_4_mb_payload_change_nothing_and_crash_nothing(
    run_dag: RunDag, slack_api: SlackAPIServer, slack_socket: SlackSocketServer, responders: Responders,
    caplog: pytest.LogCaptureFixture, in_background: Callable[[Callable[[], Any]], None],
) -> None:
    responders.start()
    acked: list[float] = []

    def junk_then_click() -> None:
        question = _question(slack_api, responders.api)
        slack_socket.push("interactive", None, raw="{not json")
        slack_socket.push("interactive", None, raw=json.dumps({"type": "interactive", "payload": {}}))
        acked.append(slack_socket.wait_acked(slack_socket.push("interactive", {"type": "block_actions"})))
        acked.append(slack_socket.wait_acked(slack_socket.click(CHANNEL, question["ts"], APPROVER, 0,
                                                                action_id="someone_elses.button")))
        acked.append(slack_socket.wait_acked(slack_socket.click(CHANNEL, question["ts"], APPROVER, 7)))
        acked.append(slack_socket.wait_acked(slack_socket.click("COTHER", "1.000001", APPROVER, 0)))
        acked.append(slack_socket.wait_acked(slack_socket.event({"type": "message", "text": "x" * 4_000_000,
                                                                 "channel": CHANNEL, "ts": "2.0",
                                                                 "thread_ts": question["ts"], "user": STRANGER})))
        deadline = time.monotonic() + 30  # the two notices first: the last click ends the run
        while len(slack_api.ephemerals) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        slack_socket.click(CHANNEL, question["ts"], APPROVER, 1)

    caplog.set_level(logging.INFO)
    in_background(junk_then_click)
    result = run_dag(APPROVAL_DAG)

    assert len(acked) == 5 and result.state_of("publish") == "skipped"
    assert [e["text"] for e in slack_api.ephemerals] == [
        "That button is not one of this question's options.",
        "This question is not waiting for an answer here any more (it was answered, closed, or belongs to "
        "another deployment)."]
    assert_no_secrets(caplog.text, where="the responder's log")
