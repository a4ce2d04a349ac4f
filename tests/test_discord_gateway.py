"""The responder's Discord Gateway connection against the local Gateway and REST stand-ins.

The first tests need no Airflow: the connection itself (identify, heartbeats, resume, reconnect,
unknown buttons, malformed events, the token kept out of the logs). The last ones stand up the
real thing: an ``ApprovalOperator`` parked in ``dag.test()`` (Airflow 3.3), a real api-server, and
``PushResponder`` holding the Gateway connection of ``ops_discord``; a click, a reply or a REST
answer decides it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.rendering import button_id
from airflow_alerter.hooks.hitl import REQUEST_KEY_PREFIX
from airflow_alerter.responder.api import TOKEN_ENV, AirflowAPI
from airflow_alerter.responder.decisions import Decider
from airflow_alerter.responder.discord_gateway import INTENTS, NOT_OURS, DiscordGatewayConnection
from airflow_alerter.responder.push import PushConnection, PushResponder, push_connection
from tests.plugins.airflow import AIRFLOW_VERSION, ApiServer, RunDag
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.servers.discord_api import BOT, BOT_TOKEN, DiscordAPIServer, Interaction
from tests.servers.discord_gateway import DiscordGatewayServer

CONN_ID = "ops_discord"
APPROVER, OTHER = "700000000000000001", "700000000000000002"

parks = pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow 3.3 on (see test_hitl_parked)")


# --- the connection alone ------------------------------------------------------------------------


@contextmanager
def serving(discord_api: DiscordAPIServer, decider: Decider, **config: Any) -> Iterator[DiscordGatewayConnection]:
    """The connection of ``ops_discord`` running on a loop of its own until the block ends."""
    alerter = DiscordAlerter(discord_config(discord_api, **config))
    connection = DiscordGatewayConnection.for_alerter(CONN_ID, alerter, decider)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(connection.run(stop),), daemon=True)
    thread.start()
    try:
        yield connection
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()
    assert not thread.is_alive(), "the connection did not stop"


@pytest.fixture
def no_airflow(monkeypatch: pytest.MonkeyPatch) -> Decider:
    """A Decider whose Airflow is not there: catch-ups find nothing (and say so), clicks are not reached."""
    monkeypatch.setenv(TOKEN_ENV, "a-test-jwt")
    return Decider(AirflowAPI("http://127.0.0.1:9", timeout=1))


def _until(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.02)


def _posted(discord_api: DiscordAPIServer) -> dict[str, Any]:
    return discord_api.add_message(DISCORD_CHANNEL, str(BOT["id"]), "Deploy?", bot=True)


def _answered(interaction: Interaction) -> Callable[[], bool]:
    return lambda: interaction.notice is not None


def test_it_identifies_with_the_token_and_intents_and_is_connected_after_ready(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")

        [identify] = discord_gateway.identifies
        assert identify["token_ok"] and identify["intents"] == INTENTS
        assert connection.mode == "gateway"
        _until(lambda: connection.catch_ups == 1, "the catch-up after READY")
    assert not connection.connected


def test_a_click_on_a_button_that_is_not_ours_gets_an_ephemeral_notice(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        interaction = discord_gateway.click(_posted(discord_api), "someone_elses_button", APPROVER)
        _until(_answered(interaction), "the answer")

    assert (interaction.callback_type, interaction.callback_flags) == (4, 64)
    assert interaction.notice == NOT_OURS


def test_malformed_events_are_skipped_and_the_connection_serves_on(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.send("this is not JSON")
        discord_gateway.send('["a", "list"]')
        discord_gateway.dispatch("INTERACTION_CREATE", {"type": 3, "data": {"custom_id": button_id(0)}})
        discord_gateway.dispatch("INTERACTION_CREATE", None)
        discord_gateway.dispatch("MESSAGE_CREATE", {"message_reference": {"message_id": "1"}, "author": []})
        discord_gateway.dispatch("MESSAGE_REACTION_ADD", {"emoji": {"name": "✅"}})
        interaction = discord_gateway.click(_posted(discord_api), "not.ours", APPROVER)
        _until(_answered(interaction), "the answer after the malformed events")

    assert discord_gateway.connections == 1
    assert caplog.text.count("Ignored a malformed") == 4


def test_replies_and_reactions_by_people_have_the_question_checked_the_bots_own_do_not(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    question = _posted(discord_api)
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.reply(DISCORD_CHANNEL, question["id"], str(BOT["id"]), "the bot's own reply")
        discord_gateway.react(DISCORD_CHANNEL, question["id"], "✅", str(BOT["id"]))
        discord_gateway.dispatch("MESSAGE_CREATE", {**_posted(discord_api), "guild_id": "1"})  # not a reply
        discord_gateway.reply(DISCORD_CHANNEL, question["id"], APPROVER, "approve")
        discord_gateway.react(DISCORD_CHANNEL, question["id"], "✅", OTHER)
        # this Decider's Airflow is unreachable: each check it is asked for ends in this warning
        _until(lambda: caplog.text.count("Could not check the Discord question") == 2, "two checks")
        time.sleep(1.5)  # time for a check the bot's own events would have caused to show

    assert caplog.text.count("Could not check the Discord question") == 2


def test_a_dropped_connection_resumes_and_gets_the_missed_events(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.drop()
        interaction = discord_gateway.click(_posted(discord_api), "sent.while.away", APPROVER)
        _until(_answered(interaction), "the replayed click's answer")

        [resume] = discord_gateway.resumes
        assert resume["seq"] == 1  # READY was the last event it saw; the click (2) came by the replay
        assert (len(discord_gateway.identifies), discord_gateway.resumed) == (1, 1)
        _until(lambda: connection.catch_ups == 2, "the catch-up after RESUMED")


def test_a_heartbeat_without_ack_makes_it_reconnect_and_resume(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    discord_gateway.heartbeat_interval_ms = 100
    discord_gateway.ack_heartbeats = False
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: discord_gateway.resumes, "a resume")
        discord_gateway.ack_heartbeats = True
        _until(lambda: connection.connected, "RESUMED")

    assert discord_gateway.heartbeats and discord_gateway.heartbeats[0][1] == 1  # the last sequence number
    assert discord_gateway.close_codes[0] == 4000  # a close that keeps the session resumable


def test_reconnect_op_resumes_the_session(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.send({"op": 7, "d": None})
        _until(lambda: discord_gateway.resumed == 1, "RESUMED")

    assert len(discord_gateway.identifies) == 1


def test_an_invalid_session_that_cannot_resume_identifies_anew(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider
) -> None:
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.send({"op": 9, "d": False})
        _until(lambda: len(discord_gateway.identifies) == 2 and connection.connected, "a second READY")

    assert discord_gateway.resumes == []


def test_a_refused_token_stops_the_connection_with_the_reason(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving(discord_api, no_airflow, token="not-the-bot-token") as connection:
        _until(lambda: "stops" in caplog.text, "giving up")

    assert not connection.connected and discord_gateway.connections == 0
    assert "Discord refused the bot token" in caplog.text


def test_the_tokens_never_reach_the_logs(
    discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer, no_airflow: Decider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(discord_api, no_airflow) as connection:
        _until(lambda: connection.connected, "READY")
        discord_gateway.drop()
        _until(lambda: discord_gateway.resumed == 1, "RESUMED")
        interaction = discord_gateway.click(_posted(discord_api), "x", APPROVER)
        _until(_answered(interaction), "the answer")
        discord_gateway.dispatch("INTERACTION_CREATE", {"id": "1", "token": "s3cret-interaction-t0ken", "type": 3})

    assert "Discord Gateway connection of ops_discord lost" in caplog.text
    assert BOT_TOKEN not in caplog.text and interaction.token not in caplog.text
    assert "s3cret-interaction-t0ken" not in caplog.text


# --- with Airflow: a parked ApprovalOperator, the api-server and the pushed responder ---------------

APPROVAL_DAG = """
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_hitl_notifier

    with DAG("release_gate", schedule=None) as dag:
        approve = ApprovalOperator(task_id="approve", subject="Release v7?",
                                   notifiers=[alerter_hitl_notifier("ops_discord", approvers=["700000000000000001"])])

        @task
        def release():
            return "released"

        approve >> release()
"""


@dataclass
class Served:
    """The pushed responder of ``ops_discord``, running beside ``dag.test()``."""

    api: ApiServer
    discord: DiscordAPIServer
    gateway: DiscordGatewayServer
    connections: list[PushConnection] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def connection(self) -> DiscordGatewayConnection:
        connection = self.connections[0]
        assert isinstance(connection, DiscordGatewayConnection)
        return connection

    def asked(self) -> tuple[dict[str, Any], str]:
        """The question once it is posted and remembered for the responder, and its record's REST path."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            questions = self.discord.questions(DISCORD_CHANNEL)
            page = self.api.call("GET", f"/variables?variable_key_pattern={REQUEST_KEY_PREFIX}&limit=100")
            for variable in page["variables"]:
                if questions and questions[-1]["id"] in variable["value"]:
                    pending = [item for item in self.api.call("GET", "/dags/~/dagRuns/~/hitlDetails")["hitl_details"]
                               if not item["response_received"] and item["task_instance"]["dag_id"] == "release_gate"]
                    run_id = pending[0]["task_instance"]["dag_run_id"]
                    return questions[-1], f"/dags/release_gate/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
            time.sleep(0.2)
        raise AssertionError("the question was not asked within 60 s")

    def ready(self) -> None:
        """The connection is up and has caught up once."""
        self.gateway.wait_for(lambda: self.connections and self.connection.catch_ups >= 1, what="the catch-up")

    def beside_the_run(self, action: Callable[[], Any]) -> None:
        """Run ``action`` beside ``dag.test()``; if it fails, the request is rejected in Airflow so the run ends."""

        def guarded() -> None:
            try:
                _, path = self.asked()
                action()
                deadline = time.monotonic() + 30
                while not self.api.call("GET", path)["response_received"]:
                    assert time.monotonic() < deadline, "the request was not answered within 30 s of the action"
                    time.sleep(0.2)
            except BaseException as err:
                self.errors.append(err)
                self.api.call("PATCH", path, {"chosen_options": ["Reject"]}, expect=(200, 409))

        threading.Thread(target=guarded, daemon=True).start()


@pytest.fixture
def served(
    airflow_conn: Callable[..., str], discord_api: DiscordAPIServer, discord_gateway: DiscordGatewayServer,
    api_server: ApiServer,
) -> Iterator[Served]:
    airflow_conn(CONN_ID, "discord", password=BOT_TOKEN, extra={
        "channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url, "retry_backoff": 0.01})
    served = Served(api_server, discord_api, discord_gateway)

    def make_connection(conn_id: str, decider: Decider) -> PushConnection:
        served.connections.append(push_connection(conn_id, decider))
        return served.connections[-1]

    stopping = threading.Event()
    responder = PushResponder(AirflowAPI(api_server.url), [CONN_ID], interval=300, make_connection=make_connection)
    thread = threading.Thread(target=responder.run, args=(stopping,), daemon=True)
    thread.start()
    yield served
    stopping.set()
    thread.join(timeout=60)
    if served.errors:
        raise served.errors[0]


def _clicked(served: Served, question: dict[str, Any], user: str, **who: Any) -> Interaction:
    interaction = served.gateway.click(question, button_id(0), user, **who)
    served.gateway.wait_for(_answered(interaction), what="the clicker's notice")
    return interaction


@parks
def test_a_click_on_approve_records_the_decision_acknowledged_within_3_s(run_dag: RunDag, served: Served) -> None:
    clicks: list[Interaction] = []

    def click() -> None:
        question, _ = served.asked()
        served.ready()
        clicks.append(_clicked(served, question, APPROVER, global_name="Alice"))

    served.beside_the_run(click)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("release") == "success"
    served.gateway.wait_for(lambda: clicks, what="the click")
    [interaction] = clicks
    assert (interaction.callback_type, interaction.callback_flags) == (5, 64)
    assert interaction.callback_after is not None and interaction.callback_after < 3.0
    assert str(interaction.notice).startswith("Recorded: approved by Alice on discord at ")
    [question] = served.discord.questions(DISCORD_CHANNEL)
    assert question["components"] == [] and question["content"].endswith(f"✅ Approved by <@{APPROVER}>")


@parks
def test_a_click_by_someone_not_an_approver_records_nothing_and_says_so(run_dag: RunDag, served: Served) -> None:
    seen: list[tuple[str | None, bool]] = []

    def clicks() -> None:
        question, path = served.asked()
        served.ready()
        stranger = _clicked(served, question, OTHER)
        seen.append((stranger.notice, served.api.call("GET", path)["response_received"]))
        _clicked(served, question, APPROVER)

    served.beside_the_run(clicks)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("release") == "success"
    assert seen == [("You are not an approver of this question; nothing changed.", False)]


@parks
def test_a_click_after_an_answer_in_airflow_is_told_already_answered(run_dag: RunDag, served: Served) -> None:
    notices: list[str | None] = []

    def answer_then_click() -> None:
        question, path = served.asked()
        served.ready()
        served.api.call("PATCH", path, {"chosen_options": ["Reject"]})
        notices.append(_clicked(served, question, APPROVER).notice)

    served.beside_the_run(answer_then_click)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("release") == "skipped"
    served.gateway.wait_for(lambda: notices, what="the click")
    assert str(notices[0]).startswith("Already answered: rejected by ")


@parks
def test_a_reply_given_while_the_connection_was_down_is_found_by_the_catch_up(
    run_dag: RunDag, served: Served
) -> None:
    def drop_then_reply() -> None:
        question, _ = served.asked()
        served.ready()
        served.gateway.drop()
        served.gateway.reply(DISCORD_CHANNEL, question["id"], APPROVER, "approve", live=False)

    served.beside_the_run(drop_then_reply)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("release") == "success"
    assert served.gateway.resumed == 1 and len(served.gateway.identifies) == 1
    [reply] = [m for m in served.discord.replies_to(DISCORD_CHANNEL, served.discord.questions(DISCORD_CHANNEL)[0]["id"])
               if m["author"]["id"] == BOT["id"]]
    assert reply["content"] == f"✅ Approved by <@{APPROVER}>"


@parks
def test_a_live_reply_is_recorded_at_once(run_dag: RunDag, served: Served) -> None:
    def reply() -> None:
        question, _ = served.asked()
        served.ready()
        served.gateway.reply(DISCORD_CHANNEL, question["id"], APPROVER, "reject: not today")

    served.beside_the_run(reply)
    result = run_dag(APPROVAL_DAG)

    assert result.state_of("release") == "skipped"
