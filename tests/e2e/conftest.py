"""The distributed end-to-end suite: one real Airflow engine per session, and the local servers it reaches.

The engine (``engine.py``) is started once, by the first test that asks for it, and stopped at the
end of the session, on Ctrl-C and on SIGTERM. Connections reach its components as
``AIRFLOW_CONN_*`` variables, like a secrets backend would hand them out; two of them exist on one
component only, so a test can tell where a callback ran by the address its email came from.

When a test fails, the report carries the engine's diagnostics: every component's log path and
last lines, and the task logs written during the test. The terminal summary gives the engine's
start-up time and each scenario's wall time.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from tests.e2e.engine import (
    E2E_DAGS,
    AirflowEngine,
    ServiceUnavailable,
    check_rabbitmq,
    check_services,
    wait_until,
)
from tests.plugins.secrets import assert_no_secrets
from tests.plugins.slack import CHANNEL
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER
from tests.servers.slack_api import BOT_TOKEN, Request, SlackAPIServer
from tests.servers.slack_socket import APP_TOKEN, SlackSocketServer
from tests.servers.smtp import LocalSMTPServer, ReceivedEmail

#: From-addresses of the connections: which one an email came through says which component sent it.
SENDERS = {
    "ops_email": "airflow@e2e.example.com",
    "worker_email": "celery-worker@e2e.example.com",
    "dag_processor_email": "dag-processor@e2e.example.com",
    "metastore_email": "metastore@e2e.example.com",
}
RECIPIENT = "oncall@e2e.example.com"

ENGINES = pytest.StashKey[dict[str, AirflowEngine]]()  # by fixture name
STARTED_AT = pytest.StashKey[float]()
DURATIONS = pytest.StashKey[dict[str, dict[str, float]]]()


@pytest.fixture(scope="session")
def e2e_services() -> None:
    """Skip the e2e tests, saying what is missing, when PostgreSQL, Redis or the Celery provider is not there."""
    try:
        check_services()
    except ServiceUnavailable as err:
        pytest.skip(f"e2e suite needs PostgreSQL, Redis and the Celery provider: {err}")


@pytest.fixture(scope="session")
def e2e_smtp() -> Iterator[LocalSMTPServer]:
    """One SMTP server (AUTH required) for the whole session: the engine's connections point at it."""
    with LocalSMTPServer(users={SMTP_USER: SMTP_PASSWORD}) as server:
        yield server


def smtp_connection(server: LocalSMTPServer, conn_id: str) -> dict[str, Any]:
    """An Airflow ``smtp`` connection to ``server`` that logs in and sends as ``SENDERS[conn_id]``."""
    return {
        "conn_type": "smtp",
        "host": server.host,
        "port": server.port,
        "login": SMTP_USER,
        "password": SMTP_PASSWORD,
        "extra": {
            **server.connection_extra(),
            "from_email": SENDERS[conn_id],
            "to": RECIPIENT,
            "timeout": 10,
            "retry_backoff": 0.2,
        },
    }


@pytest.fixture(scope="session")
def e2e_slack_socket() -> Iterator[SlackSocketServer]:
    """Socket Mode for the session's Slack: where ``apps.connections.open`` sends a pushed responder."""
    with SlackSocketServer() as server:
        yield server


@pytest.fixture(scope="session")
def e2e_slack(e2e_slack_socket: SlackSocketServer) -> Iterator[SlackAPIServer]:
    """The local Slack Web API for the whole session: the ``ml_slack`` connection points at it."""
    with SlackAPIServer() as server:
        server.socket_url, server.app_token = (lambda: e2e_slack_socket.ws_url), APP_TOKEN
        yield server


def slack_connection(server: SlackAPIServer) -> dict[str, Any]:
    """An Airflow ``slack`` connection as the Slack provider defines it: the bot token is the password,
    the app-level token (Socket Mode, for the pushed responder) an extra."""
    return {"conn_type": "slack", "password": BOT_TOKEN,
            "extra": {"base_url": server.base_url, "channel": CHANNEL, "app_token": APP_TOKEN}}


@pytest.fixture(scope="session")
def engine(
    request: pytest.FixtureRequest,
    e2e_services: None,
    e2e_smtp: LocalSMTPServer,
    e2e_slack: SlackAPIServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AirflowEngine]:
    """api-server, scheduler, dag-processor, triggerer and a Celery worker on PostgreSQL + Redis."""
    yield from _running_engine(request, "engine", e2e_smtp, e2e_slack, tmp_path_factory)


@pytest.fixture(scope="module")
def rabbitmq_engine(
    request: pytest.FixtureRequest,
    e2e_services: None,
    e2e_smtp: LocalSMTPServer,
    e2e_slack: SlackAPIServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AirflowEngine]:
    """The same engine with RabbitMQ as Celery's broker; up only for the module that uses it."""
    try:
        check_rabbitmq()
    except ServiceUnavailable as err:
        pytest.skip(f"the RabbitMQ scenario needs RabbitMQ: {err}")
    yield from _running_engine(request, "rabbitmq_engine", e2e_smtp, e2e_slack, tmp_path_factory, broker="rabbitmq")


def _running_engine(
    request: pytest.FixtureRequest,
    name: str,
    smtp: LocalSMTPServer,
    slack: SlackAPIServer,
    tmp_path_factory: pytest.TempPathFactory,
    **options: Any,
) -> Iterator[AirflowEngine]:
    engine = AirflowEngine(
        tmp_path_factory.mktemp(name),
        dags=sorted(E2E_DAGS.glob("*.py")),
        connections={"ops_email": smtp_connection(smtp, "ops_email"), "ml_slack": slack_connection(slack)},
        component_connections={
            "celery-worker": {"worker_email": smtp_connection(smtp, "worker_email")},
            "dag-processor": {"dag_processor_email": smtp_connection(smtp, "dag_processor_email")},
        },
        **options,
    )
    request.config.stash.setdefault(ENGINES, {})[name] = engine
    with _sigterm_as_interrupt(), engine:
        yield engine


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A CI runner's SIGTERM stops the session like Ctrl-C does, so the engine is torn down, not orphaned."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def _no_secret_in_engine_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the engine: no password or token in any component log or task log it wrote."""
    yield
    for engine in _engines_of(request.node):
        since = request.node.stash.get(STARTED_AT, 0)
        logs = [*engine.logs_folder.glob("*.log"), *engine.task_log_files(since)]
        assert_no_secrets(*(path.read_text(errors="replace") for path in logs), where="the engine's logs")


def _engines_of(item: pytest.Item) -> list[AirflowEngine]:
    """The running engines ``item`` uses."""
    engines = item.config.stash.get(ENGINES, {})
    return [engine for name, engine in engines.items() if name in getattr(item, "fixturenames", ())]


@pytest.fixture
def inbox(e2e_smtp: LocalSMTPServer) -> Inbox:
    return Inbox(e2e_smtp)


class Inbox:
    """What the session's SMTP server received, filtered the ways the scenarios ask."""

    def __init__(self, server: LocalSMTPServer) -> None:
        self.server = server

    def about(self, run_id: str, sender: str | None = None) -> list[ReceivedEmail]:
        """Emails whose text names ``run_id`` (every alert does), optionally only those from ``sender``."""
        return [
            email
            for email in list(self.server.received)
            if run_id in (email.part("plain") or "") and sender in (None, email.mail_from)
        ]

    def wait_for(self, run_id: str, sender: str, count: int = 1, timeout: float = 60.0) -> list[ReceivedEmail]:
        """Wait until ``count`` emails about ``run_id`` came from ``sender``; then a short settle for extras."""
        wait_until(
            lambda: len(self.about(run_id, sender)) >= count, timeout, f"{count} email(s) from {sender} about {run_id}"
        )
        time.sleep(1.0)  # a duplicate would come right behind the first: give it the chance to show
        return self.about(run_id, sender)


@pytest.fixture
def slack(e2e_slack: SlackAPIServer) -> SlackChannel:
    return SlackChannel(e2e_slack)


class SlackChannel:
    """The alerts channel on the session's Slack API: what was posted there, and a person answering."""

    def __init__(self, server: SlackAPIServer) -> None:
        self.server = server

    def posts_about(self, run_id: str) -> list[Request]:
        """``chat.postMessage`` calls (alerts and questions, not thread replies) whose text names ``run_id``."""
        return [
            call
            for call in self.server.calls("chat.postMessage")
            if run_id in str(call.args.get("text")) and not call.args.get("thread_ts")
        ]

    def question_about(self, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The question message whose text names ``run_id``, once it has been posted."""

        def posted() -> dict[str, Any] | None:
            found = [message for message in self.server.questions(CHANNEL) if run_id in message["text"]]
            return found[0] if found else None

        return wait_until(posted, timeout, f"the question about {run_id} in {CHANNEL}")

    def current_text(self, question: dict[str, Any]) -> str:
        """The question's text as the channel shows it now (the alerter edits it when the question closes)."""
        return str(next(m for m in self.server.questions(CHANNEL) if m["ts"] == question["ts"])["text"])

    def answer(self, question: dict[str, Any], text: str, user: str = "U0APPROVER") -> None:
        """A person replies in the question's thread."""
        self.server.add_reply(CHANNEL, question["ts"], user, text)

    def replies_checks(self, question: dict[str, Any]) -> int:
        """How many times the question's thread was read (``conversations.replies``)."""
        return sum(1 for call in self.server.calls("conversations.replies") if call.args.get("ts") == question["ts"])


# --- reporting ----------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for engine in _engines_of(item):
            report.sections.append(("e2e engine diagnostics", engine.diagnostics(item.stash.get(STARTED_AT, 0))))
    durations = item.config.stash.setdefault(DURATIONS, {})
    durations.setdefault(item.nodeid, {})[report.when] = report.duration
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[STARTED_AT] = time.time() - 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    engines = config.stash.get(ENGINES, {})
    durations = {nodeid: phases for nodeid, phases in config.stash.get(DURATIONS, {}).items() if "tests/e2e/" in nodeid}
    if not engines or not durations:
        return
    write: Callable[[str], None] = terminalreporter.write_line
    terminalreporter.section("airflow engine (e2e)")
    for name, engine in engines.items():
        if "total" in engine.timings:
            parts = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in engine.timings.items() if step != "total")
            write(f"{name} ({engine.broker}) up in {engine.timings['total']:.1f}s ({parts})")
        write(f"  component logs: {engine.logs_folder}; task logs: {engine.task_logs_folder}")
    for nodeid, phases in durations.items():
        write(f"{phases.get('call', 0.0):7.1f}s  {nodeid.split('::')[-1]}")
    total = sum(sum(phases.values()) for phases in durations.values())
    write(f"whole e2e run: {total:.1f}s (engine start-up, tests and teardown)")
