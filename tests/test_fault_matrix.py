"""The HTTP fault matrix: every fault a chat API can throw, for every flavor that talks HTTP.

Each cell states what the fault costs and how it ends:

- the attempts the server saw (bounded, whatever the fault);
- the outcome: ``post()`` returns False, and ``deliver()`` raises AlerterDeliveryError whose
  message names the cause and holds no token or webhook URL;
- the time spent, under a bound computed from the configuration.

The SMTP matrix is tests/test_smtp_faults.py; both are summarised in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_alerter import AlerterDeliveryError
from airflow_alerter.alerters.base import BaseAlerter
from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.alerters.webhook import WebhookAlerter
from airflow_alerter.models import AskStatus, QuestionHandle
from tests.plugins.airflow import RunDag
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.plugins.secrets import assert_no_secrets
from tests.plugins.slack import CHANNEL, slack_config
from tests.plugins.webhook import webhook_config
from tests.servers.discord_api import BOT_TOKEN as DISCORD_TOKEN
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.http import Fault, LocalHTTPServer
from tests.servers.slack_api import BOT_TOKEN as SLACK_TOKEN
from tests.servers.slack_api import SlackAPIServer
from tests.servers.smtp import free_port
from tests.servers.webhook import WEBHOOK_PATH, WebhookServer

RETRY_LIMIT = 2  # retries after the first try, in every flavor
ATTEMPTS = RETRY_LIMIT + 1
TIMEOUT = 1.0
SLOW = 1.6  # seconds a slow server takes: past TIMEOUT


@dataclass(frozen=True)
class Flavor:
    """How to aim one flavor at a server (or at a URL of our choosing), and which requests are its sends."""

    name: str
    server: Callable[[], LocalHTTPServer]
    alerter: Callable[[LocalHTTPServer, str | None], BaseAlerter]
    path: str  # the part of the request path that a send hits
    attempts: int  # attempts a transient fault costs before giving up

    def sends(self, server: LocalHTTPServer) -> int:
        return sum(1 for request in server.requests if self.path in request.path)


def _slack(server: LocalHTTPServer, base: str | None) -> BaseAlerter:
    assert isinstance(server, SlackAPIServer)
    return SlackAlerter(slack_config(server, base_url=base or server.base_url, timeout=int(TIMEOUT),
                                     retry_limit=RETRY_LIMIT))


def _discord(server: LocalHTTPServer, base: str | None) -> BaseAlerter:
    assert isinstance(server, DiscordAPIServer)
    return DiscordAlerter(discord_config(server, api_base_url=base or server.api_base_url, timeout=TIMEOUT,
                                         retry_limit=RETRY_LIMIT))


def _webhook(server: LocalHTTPServer, base: str | None) -> BaseAlerter:
    assert isinstance(server, WebhookServer)
    url = f"{base}{WEBHOOK_PATH}" if base else server.webhook_url
    return WebhookAlerter(webhook_config(server, webhook_url=url, timeout=TIMEOUT, retry_limit=RETRY_LIMIT))


FLAVORS = [
    Flavor("slack", SlackAPIServer, _slack, "chat.postMessage", ATTEMPTS),
    Flavor("discord", DiscordAPIServer, _discord, "/messages", ATTEMPTS),
    Flavor("webhook", WebhookServer, _webhook, WEBHOOK_PATH, ATTEMPTS),
]


@dataclass(frozen=True)
class Cell:
    """One fault: what the server does, how many attempts it costs, and what the error must name."""

    name: str
    fault: Fault | None  # None: the fault is in the address (refused, TLS)
    transient: bool
    reason: str


CELLS = [
    Cell("reset mid-send", Fault(reset=True), True, ""),
    # below HTTP, found by issue #14 (finding 8): each escaped post() as a raw http.client/aiohttp error
    Cell("hang-up without an answer", Fault(hangup=True), True, ""),
    Cell("status line that is not HTTP", Fault(bad_status_line=True), True, ""),
    Cell("body cut short", Fault(truncated=True), False, ""),
    Cell("slow past the timeout", Fault(status=200, delay=SLOW), True, "timed out"),
    Cell("429 with Retry-After", Fault(status=429, retry_after=1), True, "429"),
    Cell("429 asking to wait an hour", Fault(status=429, retry_after=3600), False, "429"),
    Cell("500", Fault(status=500), True, "500"),
    Cell("502", Fault(status=502), True, "502"),
    Cell("503", Fault(status=503), True, "503"),
    Cell("invalid JSON answer", Fault(status=200, raw=b"<html>proxy error</html>"), False, ""),
    Cell("401 bad credentials", Fault(status=401), False, "401"),
    Cell("403 forbidden", Fault(status=403), False, "403"),
    Cell("404 unknown", Fault(status=404), False, "404"),
]


#: where a flavor departs from the table, and why
EXCEPTIONS: dict[tuple[str, str], str] = {
    # slack_sdk does not retry a request that timed out: Slack may have posted it already
    ("slack", "slow past the timeout"): "one attempt",
    # webhook answers are not read (Mattermost says "ok", Teams nothing): any 2xx is delivered
    ("webhook", "invalid JSON answer"): "delivered",
}


@pytest.fixture(params=FLAVORS, ids=[flavor.name for flavor in FLAVORS])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(flavor: Flavor) -> Iterator[LocalHTTPServer]:
    with flavor.server() as running:
        yield running


def bound(attempts: int, per_attempt: float) -> float:
    """Generous: each attempt's own time, the backoff between attempts (short here), and start-up slack."""
    return attempts * per_attempt + attempts * 1.0 + 3.0


def ends_clearly(alerter: BaseAlerter, reason: str) -> AlerterDeliveryError:
    """``deliver()`` raises with ``reason`` in its message, and no registered token or webhook URL."""
    with pytest.raises(AlerterDeliveryError) as caught:
        alerter.deliver("the nightly load failed")
    assert reason in str(caught.value)
    assert_no_secrets(str(caught.value), where="the delivery error")
    return caught.value


@pytest.mark.parametrize("cell", CELLS, ids=[cell.name for cell in CELLS])
def test_a_fault_that_never_clears_costs_bounded_attempts_and_ends_with_the_reason(
    flavor: Flavor, server: LocalHTTPServer, cell: Cell
) -> None:
    assert cell.fault is not None
    server.fail_next(flavor.path, cell.fault, times=10)
    alerter = flavor.alerter(server, None)
    exception = EXCEPTIONS.get((flavor.name, cell.name))
    started = time.monotonic()

    if exception == "delivered":
        assert alerter.post("the nightly load failed") is True
    else:
        ends_clearly(alerter, cell.reason)

    attempts = flavor.attempts if cell.transient and exception is None else 1
    assert flavor.sends(server) == attempts
    assert time.monotonic() - started < bound(attempts, max(cell.fault.delay, TIMEOUT))


@pytest.mark.parametrize("cell", [c for c in CELLS if c.transient], ids=[c.name for c in CELLS if c.transient])
def test_a_transient_fault_that_clears_is_delivered_on_the_next_attempt(
    flavor: Flavor, server: LocalHTTPServer, cell: Cell
) -> None:
    assert cell.fault is not None
    one_attempt = EXCEPTIONS.get((flavor.name, cell.name)) == "one attempt"
    server.fail_next(flavor.path, cell.fault, times=1)

    assert flavor.alerter(server, None).post("the nightly load failed") is not one_attempt
    assert flavor.sends(server) == (1 if one_attempt else 2)


def test_connection_refused_ends_with_the_reason_within_the_bound(
    flavor: Flavor, server: LocalHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="airflow_alerter")
    alerter = flavor.alerter(server, f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()

    ends_clearly(alerter, "")

    assert time.monotonic() - started < bound(flavor.attempts, TIMEOUT)
    if flavor.name != "slack":  # our RetryPolicy logs each retry; slack_sdk retries on its own
        assert caplog.text.count("retrying in") == flavor.attempts - 1


def test_tls_handshake_failure_ends_with_the_reason_and_is_not_sent(flavor: Flavor, server: LocalHTTPServer) -> None:
    """An https:// URL to a server speaking plain HTTP: the handshake cannot succeed."""
    alerter = flavor.alerter(server, server.url.replace("http://", "https://"))
    started = time.monotonic()

    ends_clearly(alerter, "")

    assert flavor.sends(server) == 0
    assert time.monotonic() - started < bound(flavor.attempts, TIMEOUT)


def test_post_returns_false_instead_of_raising(flavor: Flavor, server: LocalHTTPServer) -> None:
    server.fail_next(flavor.path, Fault(status=503), times=10)

    assert flavor.alerter(server, None).post("the nightly load failed") is False


def test_slack_answering_a_malformed_retry_after_ends_as_a_delivery_error_not_a_crash(
    slack_api: SlackAPIServer,
) -> None:
    """slack_sdk parses Retry-After as an integer; a proxy sending "0.5" made it raise ValueError."""
    slack_api.fail_next("chat.postMessage", Fault(status=429, retry_after=0.5), times=10)

    with pytest.raises(AlerterDeliveryError, match="malformed answer"):
        _slack(slack_api, None).deliver("the nightly load failed")


def test_a_failure_callback_on_a_failing_server_only_warns_and_the_task_stays_failed(
    flavor: Flavor, server: LocalHTTPServer, run_dag: RunDag, airflow_conn: Callable[..., str],
    read_logs: Callable[[], str],
) -> None:
    server.fail_next(flavor.path, Fault(status=503), times=10)
    alerter = flavor.alerter(server, None)
    airflow_conn("chat_alerts", "alerter", password=_password_of(alerter),
                 extra={"flavor": flavor.name, **_extras_of(alerter)})

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("nightly_etl", schedule=None) as dag:
            @task(on_failure_callback=alerter_failure_callback("chat_alerts"))
            def load():
                raise ValueError("warehouse is read-only")
            load()
    """)

    assert result.state_of("load") == "failed"
    assert "Failure alert through connection 'chat_alerts' was not sent: AlerterDeliveryError" in read_logs()
    assert flavor.sends(server) == flavor.attempts


def _password_of(alerter: BaseAlerter) -> str:
    """The one secret of each flavor's config, as a connection's password holds it."""
    for name in ("token", "webhook_url"):
        secret = getattr(alerter.config, name, None)
        if secret is not None:
            return str(secret.get_secret_value())
    raise AssertionError("no secret in the config")


def _extras_of(alerter: BaseAlerter) -> dict[str, object]:
    """The rest of the config as connection extras (the secret goes in the password)."""
    config = alerter.config.model_dump(exclude={"token", "webhook_url"}, exclude_defaults=True)
    return {key: value for key, value in config.items() if value is not None}


# --- answer checks and the trigger under the same broken answers (issue #14, finding 8) -------------------------

BROKEN = [Cell("hang-up", Fault(hangup=True), True, ""), Cell("bad status line", Fault(bad_status_line=True), True, ""),
          Cell("body cut short", Fault(truncated=True), False, ""), Cell("reset", Fault(reset=True), True, "")]


def _slack_question(slack_api: SlackAPIServer) -> tuple[SlackAlerter, QuestionHandle]:
    alerter = SlackAlerter(slack_config(slack_api, timeout=int(TIMEOUT), retry_limit=0))
    return alerter, alerter.send_question("Deploy model v7?")


def _discord_question(discord_api: DiscordAPIServer) -> tuple[DiscordAlerter, QuestionHandle]:
    alerter = DiscordAlerter(discord_config(discord_api, timeout=TIMEOUT, retry_limit=0))
    return alerter, alerter.send_question("Deploy model v7?")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("cell", BROKEN, ids=[cell.name for cell in BROKEN])
def test_a_broken_answer_to_a_check_is_still_pending_with_a_logged_reason(
    slack_api: SlackAPIServer, discord_api: DiscordAPIServer, cell: Cell, mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert cell.fault is not None
    for (alerter, handle), server, path in [(_slack_question(slack_api), slack_api, "conversations.replies"),
                                            (_discord_question(discord_api), discord_api, "/messages")]:
        server.fail_next(path, cell.fault, times=5)

        result = alerter.check_answer(handle) if mode == "sync" else asyncio.run(alerter.acheck_answer(handle))

        assert result.status is AskStatus.PENDING, (alerter.FLAVOR, result)
        assert result.reason and "will check again" in caplog.text
        assert_no_secrets(result.reason, where="the pending reason")


@pytest.mark.parametrize("cell", BROKEN, ids=[cell.name for cell in BROKEN])
def test_the_trigger_lives_through_broken_answers_and_fires_with_the_answer(
    slack_api: SlackAPIServer, airflow_conn: Callable[..., str], cell: Cell
) -> None:
    from airflow_alerter.triggers.alerter import AlerterAskTrigger

    assert cell.fault is not None
    airflow_conn("ml_slack", "slack", password=SLACK_TOKEN,
                 extra={"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 0, "timeout": 1})
    _, handle = _slack_question(slack_api)
    slack_api.fail_next("conversations.replies", cell.fault, times=2)
    slack_api.answer_on_check(3, user="UALICE01", text="approve")
    trigger = AlerterAskTrigger(alerter_conn_id="ml_slack", handle=handle.model_dump(mode="json"), poll_interval=0.05,
                                timeout_at=time.time() + 30)

    async def first_event() -> Any:
        return await anext(aiter(trigger.run()))

    event = asyncio.run(first_event())

    assert event.payload["result"]["status"] == "approved"
    assert len(slack_api.calls("conversations.replies")) == 3


@pytest.mark.parametrize("cell", BROKEN, ids=[cell.name for cell in BROKEN])
def test_the_discord_trigger_lives_through_broken_answers_and_fires_with_the_answer(
    discord_api: DiscordAPIServer, airflow_conn: Callable[..., str], cell: Cell
) -> None:
    from airflow_alerter.triggers.alerter import AlerterAskTrigger

    assert cell.fault is not None
    airflow_conn("ml_discord", "alerter", password=DISCORD_TOKEN, extra={
        "flavor": "discord", "channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url,
        "retry_limit": 0, "timeout": 1})
    _, handle = _discord_question(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, "700000000000000001", "approve", reply_to=handle.message_id)
    discord_api.fail_next("/messages", cell.fault, times=2)
    trigger = AlerterAskTrigger(alerter_conn_id="ml_discord", handle=handle.model_dump(mode="json"),
                                poll_interval=0.05, timeout_at=time.time() + 30)

    async def first_event() -> Any:
        return await anext(aiter(trigger.run()))

    event = asyncio.run(first_event())

    assert event.payload["result"]["status"] == "approved"
    assert sum(1 for r in discord_api.requests if r.method == "GET" and "/messages" in r.path) == 3
