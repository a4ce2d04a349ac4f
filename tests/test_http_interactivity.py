"""HTTP mode: Slack's and Discord's requests to the api-server plugin, verified before anything changes.

Most tests drive the plugin's FastAPI app (``build_app``) with Starlette's TestClient and a stand-in
Decider that records what reached it; one runs a real ``airflow api-server`` with the plugin loaded
from the package's entry point, a parked ``ApprovalOperator`` and a signed click on its Slack question.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from airflow_alerter.alerters.rendering import button_id
from airflow_alerter.models import AskResult, AskStatus
from airflow_alerter.plugins import interactivity
from airflow_alerter.plugins.interactivity import ReplayCache, api_base_url, build_app
from airflow_alerter.responder.decisions import Click, Outcome, Verdict
from airflow_alerter.responder.discord_events import click_from_interaction
from tests.plugins.airflow import AIRFLOW_VERSION, ApiServer, RunDag, wait_for
from tests.plugins.discord import DISCORD_CHANNEL as DISCORD_STAND_IN_CHANNEL
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.plugins.slack import CHANNEL
from tests.servers.discord_api import BOT_TOKEN as DISCORD_BOT_TOKEN
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
register_secret(SIGNING_SECRET)
APPROVER = "UALICE01"
QUESTION_TS = "1700000000.000100"
ALREADY = "Already answered: approved by bob on slack at 14:02 UTC."
DISCORD_CHANNEL, DISCORD_MESSAGE, DISCORD_USER = DISCORD_STAND_IN_CHANNEL, "1200000000000000001", "300000000000000003"


class RecordingDecider:
    """Stands in for the Decider: records what reached it and answers ``outcome``."""

    def __init__(self, outcome: Outcome | None = None, delay: float = 0.0) -> None:
        self.outcome = outcome or Outcome(Verdict.ALREADY_ANSWERED, ALREADY)
        self.delay = delay
        self.clicks: list[Click] = []
        self.events: list[tuple[str, str, str]] = []

    def click(self, click: Click) -> Outcome:
        time.sleep(self.delay)
        self.clicks.append(click)
        return self.outcome

    def message_event(self, conn_id: str, channel: str, message_id: str) -> bool:
        self.events.append((conn_id, channel, message_id))
        return False


def slack_signed(body: bytes, secret: str = SIGNING_SECRET, at: float | None = None,
                 content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def block_actions(action_id: str = button_id(0), ts: str = QUESTION_TS, user: str = APPROVER) -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "alice", "name": "alice"},
               "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL},
               "channel": {"id": CHANNEL}, "message": {"ts": ts},
               "actions": [{"action_id": action_id, "type": "button", "value": "0"}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.fixture
def signed_slack(airflow_conn: Callable[..., str], slack_api: SlackAPIServer) -> str:
    """The Slack connection ``ml_slack`` with the app's signing secret."""
    return airflow_conn("ml_slack", "slack", password=BOT_TOKEN, extra={
        "base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 0, "signing_secret": SIGNING_SECRET})


@pytest.fixture
def decider() -> RecordingDecider:
    return RecordingDecider()


@pytest.fixture
def client(decider: RecordingDecider) -> Iterator[TestClient]:
    with TestClient(build_app(decider=lambda: decider)) as test_client:  # type: ignore[arg-type, return-value]
        yield test_client


SLACK = "/slack/ml_slack/interactions"


# --- Slack: the signature gate -------------------------------------------------------------------


def test_a_signed_click_is_decided_and_the_clicker_alone_is_told_why_nothing_changed(
    client: TestClient, decider: RecordingDecider, signed_slack: str, slack_api: SlackAPIServer
) -> None:
    body = block_actions()
    response = client.post(SLACK, content=body, headers=slack_signed(body))

    assert (response.status_code, response.content) == (200, b"")
    assert decider.clicks == [Click(conn_id="ml_slack", flavor="slack", channel=CHANNEL, message_id=QUESTION_TS,
                                    option=0, user_id=APPROVER, user_name="alice", at=decider.clicks[0].at)]
    assert slack_api.ephemerals == [{"channel": CHANNEL, "user": APPROVER, "text": ALREADY}]


def test_a_recorded_click_sends_no_notice_the_question_shows_it(
    signed_slack: str, slack_api: SlackAPIServer
) -> None:
    recorded = RecordingDecider(Outcome(Verdict.RECORDED, "", AskResult(status=AskStatus.APPROVED)))
    body = block_actions()
    with TestClient(build_app(decider=lambda: recorded)) as client:  # type: ignore[arg-type, return-value]
        assert client.post(SLACK, content=body, headers=slack_signed(body)).status_code == 200

    assert len(recorded.clicks) == 1 and slack_api.ephemerals == []


# Each case signs when the test runs, not when pytest collects it: a matrix stage can run this
# file minutes after collecting it, and "six minutes ahead" signed then is inside the window by now.
@pytest.mark.parametrize("sign", [
    pytest.param(lambda: {"Content-Type": "application/x-www-form-urlencoded"}, id="unsigned"),
    pytest.param(lambda: slack_signed(block_actions(), secret="not-the-signing-secret"), id="wrong secret"),
    pytest.param(lambda: slack_signed(block_actions(), at=time.time() - 360), id="stale (6 minutes)"),
    pytest.param(lambda: slack_signed(block_actions(), at=time.time() + 360), id="from the future"),
    pytest.param(lambda: {**slack_signed(block_actions()), "X-Slack-Request-Timestamp": "soon"},
                 id="timestamp not a number"),
    pytest.param(lambda: {**slack_signed(block_actions()), "X-Slack-Signature": "v0=" + "0" * 64},
                 id="forged signature"),
])
def test_an_unauthentic_click_is_refused_and_changes_nothing(
    client: TestClient, decider: RecordingDecider, signed_slack: str, slack_api: SlackAPIServer,
    sign: Callable[[], dict[str, str]], read_logs: Callable[[], str],
) -> None:
    response = client.post(SLACK, content=block_actions(), headers=sign())

    assert response.status_code == 401
    assert decider.clicks == [] and slack_api.ephemerals == []
    assert "'ml_slack' was refused" in read_logs()
    assert_no_secrets(response.text, where="the response")


def test_a_replayed_request_is_refused(client: TestClient, decider: RecordingDecider, signed_slack: str) -> None:
    body = block_actions()
    headers = slack_signed(body)

    first, again = (client.post(SLACK, content=body, headers=headers) for _ in range(2))

    assert (first.status_code, again.status_code) == (200, 401)
    assert len(decider.clicks) == 1


def test_the_replay_cache_forgets_signatures_once_their_timestamps_are_stale() -> None:
    cache = ReplayCache(window=300)

    assert cache.first("sig", now=1000.0) and not cache.first("sig", now=1200.0)
    assert cache.first("sig", now=1000.0 + 601)  # a timestamp this old is refused as stale anyway


def test_a_connection_without_a_signing_secret_refuses_every_request(
    client: TestClient, decider: RecordingDecider, airflow_conn: Callable[..., str], slack_api: SlackAPIServer,
    read_logs: Callable[[], str],
) -> None:
    airflow_conn("ml_slack", "slack", password=BOT_TOKEN, extra={"base_url": slack_api.base_url})
    body = block_actions()

    response = client.post(SLACK, content=body, headers=slack_signed(body))

    assert response.status_code == 401 and decider.clicks == []
    assert "has no extra 'signing_secret'" in read_logs()


def test_an_unknown_connection_is_refused(client: TestClient, decider: RecordingDecider) -> None:
    body = block_actions()
    response = client.post("/slack/no_such_conn/interactions", content=body, headers=slack_signed(body))

    assert response.status_code == 401 and decider.clicks == []


# --- Slack: the body --------------------------------------------------------------------------


def test_a_body_over_1_mb_is_refused_before_it_is_read(client: TestClient, decider: RecordingDecider,
                                                      signed_slack: str) -> None:
    body = b"payload=" + b"x" * (2 * 1024 * 1024)

    assert client.post(SLACK, content=body, headers=slack_signed(body)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
        for _ in range(32):
            yield b"x" * 65536

    assert client.post(SLACK, content=chunks(), headers=slack_signed(b"")).status_code == 413
    assert decider.clicks == []


@pytest.mark.parametrize("body", [b"payload=%7Bnot+json", b"payload=%5B1%2C2%5D", b"nothing=here", b"{}"])
def test_a_signed_malformed_body_is_a_400(client: TestClient, decider: RecordingDecider, signed_slack: str,
                                          body: bytes) -> None:
    assert client.post(SLACK, content=body, headers=slack_signed(body)).status_code == 400
    assert decider.clicks == []


def test_a_body_that_is_not_utf8_cannot_be_verified(client: TestClient, decider: RecordingDecider,
                                                    signed_slack: str) -> None:
    """slack_sdk's verifier reads the body as UTF-8 (Slack's always is): anything else is refused as unsigned."""
    body = b"payload=\xff\xfe"
    assert client.post(SLACK, content=body, headers=slack_signed(body)).status_code == 401
    assert decider.clicks == []


def test_url_verification_gets_its_challenge_back(client: TestClient, signed_slack: str) -> None:
    body = json.dumps({"type": "url_verification", "token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY"})
    headers = slack_signed(body.encode(), content_type="application/json")

    response = client.post("/slack/ml_slack/events", content=body, headers=headers)

    assert (response.status_code, response.json()) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY"})


def test_a_click_that_is_not_one_of_our_buttons_is_acknowledged_and_changes_nothing(
    client: TestClient, decider: RecordingDecider, signed_slack: str, slack_api: SlackAPIServer
) -> None:
    body = block_actions(action_id="someone_elses_button")

    assert client.post(SLACK, content=body, headers=slack_signed(body)).status_code == 200
    assert decider.clicks == [] and slack_api.ephemerals == []


def test_a_thread_reply_and_a_reaction_from_the_events_api_are_checked(
    client: TestClient, decider: RecordingDecider, signed_slack: str
) -> None:
    events = [{"type": "message", "channel": CHANNEL, "user": APPROVER, "text": "approve", "ts": "1700000001.0001",
               "thread_ts": QUESTION_TS},
              {"type": "reaction_added", "user": APPROVER, "reaction": "white_check_mark",
               "item": {"type": "message", "channel": CHANNEL, "ts": QUESTION_TS}},
              {"type": "message", "channel": CHANNEL, "bot_id": "B1", "text": "bot", "ts": "1700000002.0001",
               "thread_ts": QUESTION_TS}]
    for event in events:
        body = json.dumps({"type": "event_callback", "event": event}).encode()
        response = client.post("/slack/ml_slack/events", content=body,
                               headers=slack_signed(body, content_type="application/json"))
        assert response.status_code == 200

    assert decider.events == [("ml_slack", CHANNEL, QUESTION_TS)] * 2


def test_the_api_url_is_the_env_var_else_api_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    monkeypatch.delenv("AIRFLOW_ALERTER_API_URL", raising=False)
    assert api_base_url() == "https://airflow.example.com/"

    monkeypatch.setenv("AIRFLOW_ALERTER_API_URL", "http://localhost:8080")
    assert api_base_url() == "http://localhost:8080"


# --- Discord ----------------------------------------------------------------------------------


@pytest.fixture
def discord_key(airflow_conn: Callable[..., str]) -> Ed25519PrivateKey:
    """A key pair made for the test; its public half is the ``ml_discord`` connection's ``public_key``."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    airflow_conn("ml_discord", "discord", password=DISCORD_BOT_TOKEN,
                 extra={"channel_id": DISCORD_CHANNEL, "public_key": public})
    return key


def discord_signed(key: Ed25519PrivateKey, body: bytes, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {"X-Signature-Ed25519": key.sign(timestamp.encode() + body).hex(), "X-Signature-Timestamp": timestamp,
            "Content-Type": "application/json"}


def button_interaction(custom_id: str = button_id(0)) -> dict[str, Any]:
    return {"type": 3, "id": "1", "token": "interaction-token", "channel_id": DISCORD_CHANNEL,
            "message": {"id": DISCORD_MESSAGE}, "data": {"component_type": 2, "custom_id": custom_id},
            "member": {"user": {"id": DISCORD_USER, "username": "alice", "global_name": "Alice"}}}


DISCORD = "/discord/ml_discord/interactions"


def test_discord_ping_gets_pong(client: TestClient, discord_key: Ed25519PrivateKey) -> None:
    body = json.dumps({"type": 1, "id": "1", "token": "t"}).encode()

    response = client.post(DISCORD, content=body, headers=discord_signed(discord_key, body))

    assert (response.status_code, response.json()) == (200, {"type": 1})


def test_discord_requests_with_a_bad_signature_are_refused(
    client: TestClient, decider: RecordingDecider, discord_key: Ed25519PrivateKey
) -> None:
    body = json.dumps(button_interaction()).encode()
    other = Ed25519PrivateKey.generate()
    for headers in ({"Content-Type": "application/json"}, discord_signed(other, body),
                    discord_signed(discord_key, body, at=time.time() - 360),
                    {**discord_signed(discord_key, body), "X-Signature-Ed25519": "zz"}):
        assert client.post(DISCORD, content=body, headers=headers).status_code == 401
    tampered = body.replace(b"option.0", b"option.1")
    assert client.post(DISCORD, content=tampered, headers=discord_signed(discord_key, body)).status_code == 401
    assert decider.clicks == []


def test_a_discord_click_is_decided_and_answered_to_the_clicker_alone(
    client: TestClient, decider: RecordingDecider, discord_key: Ed25519PrivateKey
) -> None:
    body = json.dumps(button_interaction()).encode()

    response = client.post(DISCORD, content=body, headers=discord_signed(discord_key, body))

    assert response.status_code == 200
    assert response.json() == {"type": 4, "data": {"content": ALREADY, "flags": 64,
                                                   "allowed_mentions": {"parse": []}}}
    assert [(c.flavor, c.channel, c.message_id, c.option, c.user_id, c.user_name) for c in decider.clicks] == [
        ("discord", DISCORD_CHANNEL, DISCORD_MESSAGE, 0, DISCORD_USER, "Alice")]


def test_a_slow_discord_decision_is_answered_in_time_and_goes_on(
    discord_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interactivity, "DISCORD_BUDGET", 0.2)
    slow = RecordingDecider(delay=1.0)
    body = json.dumps(button_interaction()).encode()
    with TestClient(build_app(decider=lambda: slow)) as client:  # type: ignore[arg-type, return-value]
        started = time.monotonic()
        response = client.post(DISCORD, content=body, headers=discord_signed(discord_key, body))
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 5
        while not slow.clicks and time.monotonic() < deadline:
            time.sleep(0.05)

    assert elapsed < 0.9 and response.json()["data"]["content"].startswith("Received")
    assert len(slow.clicks) == 1


def test_a_discord_interaction_that_is_not_our_button_changes_nothing(
    client: TestClient, decider: RecordingDecider, discord_key: Ed25519PrivateKey
) -> None:
    for interaction in (button_interaction("someone_elses_button"), {"type": 2, "data": {"name": "cmd"}}):
        body = json.dumps(interaction).encode()
        response = client.post(DISCORD, content=body, headers=discord_signed(discord_key, body))
        assert (response.status_code, response.json()) == (200, {"type": 6})
    body = b"{not json"
    assert client.post(DISCORD, content=body, headers=discord_signed(discord_key, body)).status_code == 400
    assert decider.clicks == []


def test_click_from_interaction_reads_a_dm_click_and_refuses_other_components() -> None:
    dm = {**button_interaction(), "member": None, "user": {"id": DISCORD_USER, "username": "alice"}}
    click = click_from_interaction("ml_discord", dm)
    assert click is not None and (click.user_id, click.user_name) == (DISCORD_USER, "alice")

    select = {**button_interaction(), "data": {"component_type": 3, "custom_id": button_id(0)}}
    assert click_from_interaction("ml_discord", select) is None
    assert click_from_interaction("ml_discord", {**button_interaction(), "message": {}}) is None


# --- the plugin ---------------------------------------------------------------------------------


def test_the_plugin_is_an_airflow_plugins_entry_point_and_imports_no_client_library() -> None:
    """Every process that loads plugins imports the plugin module: it must not pay for slack_sdk, httpx, fastapi."""
    import importlib.metadata
    import subprocess

    entry = next(e for e in importlib.metadata.entry_points(group="airflow.plugins") if e.name == "airflow_alerter")
    assert entry.value == "airflow_alerter.plugins:AlerterInteractivityPlugin"
    probe = ("import sys, airflow.plugins_manager; before = set(sys.modules); import airflow_alerter.plugins; "
             "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
             "('slack_sdk', 'httpx', 'fastapi', 'starlette', 'cryptography', 'pydantic')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"


def test_the_lazy_app_serves_under_the_plugins_prefix_as_airflow_mounts_it(
    signed_slack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from airflow_alerter.plugins import URL_PREFIX, AlerterInteractivityPlugin

    (mounted,) = AlerterInteractivityPlugin.fastapi_apps
    recording = RecordingDecider()
    lazy = type(mounted["app"])("tests.test_http_interactivity:_app_for_the_lazy_test")
    monkeypatch.setattr(sys.modules[__name__], "_LAZY_DECIDER", recording)
    body = block_actions()
    with TestClient(Starlette(routes=[Mount(URL_PREFIX, app=lazy)])) as client:
        response = client.post(f"{mounted['url_prefix']}/slack/ml_slack/interactions", content=body,
                               headers=slack_signed(body))

    assert response.status_code == 200 and len(recording.clicks) == 1


_LAZY_DECIDER: RecordingDecider | None = None


def _app_for_the_lazy_test() -> Any:
    return build_app(decider=lambda: _LAZY_DECIDER)  # type: ignore[arg-type, return-value]


# --- the real api-server, with the plugin loaded from the entry point ----------------------------

APPROVAL_DAG = """
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_hitl_notifier

    with DAG("publish_report_http", schedule=None) as dag:
        approve = ApprovalOperator(task_id="approve", subject="Publish?",
                                   notifiers=[alerter_hitl_notifier("http_slack", approvers=["UALICE01"])])

        @task
        def publish():
            return "published"

        approve >> publish()
"""


@pytest.mark.skipif(AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow 3.3 on")
def test_a_signed_click_posted_to_the_api_server_resolves_the_request_an_unsigned_one_does_not(
    run_dag: RunDag, slack_api: SlackAPIServer, api_server: ApiServer, airflow_conn: Callable[..., str],
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    extra = {"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 0, "signing_secret": SIGNING_SECRET}
    # dag.test() reads the connection from this process's env, the api-server from its metadata DB
    airflow_conn("http_slack", "slack", password=BOT_TOKEN, extra=extra)
    api_server.call("DELETE", "/connections/http_slack", expect=(204, 404))
    api_server.call("POST", "/connections", {"connection_id": "http_slack", "conn_type": "slack",
                                             "password": BOT_TOKEN, "extra": json.dumps(extra)}, expect=(201,))
    url = f"{api_server.url}/alerter/slack/http_slack/interactions"
    seen: dict[str, Any] = {}
    def click_from_outside() -> None:
        ts = wait_for("question", lambda: [m["ts"] for m in slack_api.questions(CHANNEL)])[-1]
        wait_for("pending request", lambda: api_server.call(
            "GET", "/variables?variable_key_pattern=airflow_alerter.hitl")["total_entries"])
        record = "/dags/publish_report_http/dagRuns/~/hitlDetails"
        body = block_actions(ts=ts)
        unsigned = httpx.post(url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        forged = httpx.post(url, content=body, headers=slack_signed(body, secret="guessed-secret"))
        time.sleep(1.0)  # anything the refused clicks could have set going has had its chance
        seen["after_refused"] = [d["response_received"] for d in api_server.call("GET", record)["hitl_details"]]
        started = time.monotonic()
        signed = httpx.post(url, content=body, headers=slack_signed(body), timeout=30)
        seen["answered_in"] = time.monotonic() - started
        wait_for("recorded answer", lambda: api_server.call("GET", record)["hitl_details"][0]["response_received"])
        seen["recorded_in"] = time.monotonic() - started
        seen["statuses"] = (unsigned.status_code, forged.status_code, signed.status_code)
        seen["bodies"] = [unsigned.text, forged.text, signed.text]

    in_background(click_from_outside)
    try:
        result = run_dag(APPROVAL_DAG)
    finally:
        api_server.call("DELETE", "/connections/http_slack", expect=(204, 404))

    assert seen["statuses"] == (401, 401, 200)
    assert seen["after_refused"] == [False]
    assert (result.state_of("approve"), result.state_of("publish")) == ("success", "success")
    assert slack_api.messages[CHANNEL][-1]["text"] == f"✅ Approved by <@{APPROVER}>"
    assert slack_api.ephemerals == []  # a recorded click shows in the question, no notice
    assert seen["answered_in"] < 3.0, f"Slack wants its answer within 3 s: {seen['answered_in']:.2f} s"
    print(f"signed click: answered in {seen['answered_in'] * 1000:.0f} ms, "
          f"recorded in Airflow within {seen['recorded_in'] * 1000:.0f} ms")
    assert api_server.log is not None
    assert_no_secrets(*seen["bodies"], api_server.log.read_text(errors="replace"),
                      where="the responses or the api-server's log")


DISCORD_APPROVAL_DAG = APPROVAL_DAG.replace("publish_report_http", "publish_report_discord").replace(
    'alerter_hitl_notifier("http_slack", approvers=["UALICE01"])',
    f'alerter_hitl_notifier("http_discord", approvers=["{DISCORD_USER}"])')


@pytest.mark.skipif(AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow 3.3 on")
def test_a_signed_discord_click_posted_to_the_api_server_resolves_the_request_and_answers_the_clicker(
    run_dag: RunDag, discord_api: DiscordAPIServer, api_server: ApiServer, airflow_conn: Callable[..., str],
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    key = Ed25519PrivateKey.generate()
    extra = {"channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url, "retry_backoff": 0.01,
             "public_key": key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()}
    airflow_conn("http_discord", "discord", password=DISCORD_BOT_TOKEN, extra=extra)
    api_server.call("DELETE", "/connections/http_discord", expect=(204, 404))
    api_server.call("POST", "/connections", {"connection_id": "http_discord", "conn_type": "discord",
                                             "password": DISCORD_BOT_TOKEN, "extra": json.dumps(extra)}, expect=(201,))
    url = f"{api_server.url}/alerter/discord/http_discord/interactions"
    seen: dict[str, Any] = {}
    def click_from_outside() -> None:
        question = wait_for("question", lambda: discord_api.questions(DISCORD_CHANNEL))[-1]
        wait_for("pending request", lambda: api_server.call(
            "GET", "/variables?variable_key_pattern=airflow_alerter.hitl")["total_entries"])
        body = json.dumps({**button_interaction(), "message": {"id": question["id"]}}).encode()
        refused = httpx.post(url, content=body, headers=discord_signed(Ed25519PrivateKey.generate(), body))
        signed = httpx.post(url, content=body, headers=discord_signed(key, body), timeout=30)
        seen["statuses"], seen["answer"] = (refused.status_code, signed.status_code), signed.json()
        seen["bodies"] = [refused.text, signed.text]

    in_background(click_from_outside)
    try:
        result = run_dag(DISCORD_APPROVAL_DAG)
    finally:
        api_server.call("DELETE", "/connections/http_discord", expect=(204, 404))

    assert seen["statuses"] == (401, 200)
    assert seen["answer"]["type"] == 4 and seen["answer"]["data"]["flags"] == 64
    assert seen["answer"]["data"]["content"].startswith("Recorded: approved by Alice on discord at ")
    assert (result.state_of("approve"), result.state_of("publish")) == ("success", "success")
    assert api_server.log is not None
    assert_no_secrets(*seen["bodies"], api_server.log.read_text(errors="replace"),
                      where="the responses or the api-server's log")
