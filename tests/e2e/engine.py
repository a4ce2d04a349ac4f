"""Airflow's distributed engine, for real: api-server, scheduler, dag-processor, triggerer and a Celery worker.

Each component is its own ``airflow`` process (in its own process group, its output in its own log
file), sharing what a multi-machine deployment shares: a PostgreSQL metadata database (a fresh
database per run, dropped at the end), a Redis broker (a Redis database number claimed for this
run, flushed at the end), a Postgres result backend, the JWT secret, the fernet key, the execution
API URL, a DAGs folder and connections as ``AIRFLOW_CONN_*`` environment variables.

Nothing here imports Airflow: the test process talks to the engine the way a user does, through
the REST API (``/api/v2``, a token from the simple auth manager in all-admins mode).

``python -m tests.e2e.engine`` starts an engine with the e2e DAGs and keeps it up until Ctrl-C,
which is handy when writing a scenario.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

E2E_DAGS = Path(__file__).parent / "dags"
PG_DSN = os.environ.get("AIRFLOW_ALERTER_E2E_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("AIRFLOW_ALERTER_E2E_REDIS", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("AIRFLOW_ALERTER_E2E_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
#: Redis database numbers the engine may claim (one per concurrent run); 0 is left to other users.
REDIS_DBS = range(15, 0, -1)
REDIS_CLAIM_KEY = "airflow-alerter-e2e:owner"
#: Databases are named ``<prefix><pid of the test process>_<random>``, so a later run can drop the
#: ones a killed run (SIGKILL: no teardown) left behind.
DB_PREFIX = "airflow_alerter_e2e_"

FINAL_RUN_STATES = frozenset({"success", "failed"})
FINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: In all-admins mode it hands out an admin token without credentials: enough for tests, never for production.
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")


class EngineError(RuntimeError):
    """The engine did not do what was asked in time; the message says what and where the logs are."""


class ServiceUnavailable(RuntimeError):
    """A service the engine needs (PostgreSQL, Redis, the Celery provider) is not there; why is in the message."""


# --- the services the engine stands on -----------------------------------------------------------


def _pg_connect(dbname: str) -> Any:
    import psycopg2  # type: ignore[import-untyped]

    conn = psycopg2.connect(f"{PG_DSN}/{dbname}", connect_timeout=3)
    conn.autocommit = True
    return conn


def _redis(db: int) -> Any:
    import redis

    return redis.Redis.from_url(f"{REDIS_URL}/{db}", socket_connect_timeout=3, socket_timeout=5)


def check_services() -> None:
    """Raise ServiceUnavailable naming the first missing piece: drivers, the Celery provider, PostgreSQL, Redis."""
    missing = [name for name in ("psycopg2", "redis", "celery") if _find_spec(name) is None]
    if missing:
        raise ServiceUnavailable(f"Python packages missing: {', '.join(missing)} (pip install -e '.[test]')")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="airflow-alerter-probe-") as home:
        probe = subprocess.run(
            [sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**_clean_environ(), "AIRFLOW_HOME": home},
        )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServiceUnavailable(f"the Celery provider cannot be imported: {last}")
    try:
        _pg_connect("postgres").close()
    except Exception as err:
        raise ServiceUnavailable(f"PostgreSQL is not reachable at {PG_DSN}: {_one_line(err)}") from None
    try:
        _redis(0).ping()
    except Exception as err:
        raise ServiceUnavailable(f"Redis is not reachable at {REDIS_URL}: {_one_line(err)}") from None


def check_rabbitmq() -> None:
    """Raise ServiceUnavailable when RabbitMQ (the second broker) is not reachable."""
    import kombu

    try:
        with kombu.Connection(RABBITMQ_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as err:
        raise ServiceUnavailable(
            f"RabbitMQ is not reachable at {_hide_password(RABBITMQ_URL)}: {_one_line(err)}"
        ) from None


def _hide_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _find_spec(name: str) -> Any:
    import importlib.util

    return importlib.util.find_spec(name)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _clean_environ() -> dict[str, str]:
    """The test process's environment minus its own Airflow settings (the unit tests' SQLite home)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and key != "AIRFLOW_HOME"
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``predicate`` until it returns something truthy; EngineError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise EngineError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- components --------------------------------------------------------------------------------


@dataclass
class Component:
    """One ``airflow`` process: started in its own process group so stopping it stops its children too."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    log_offset: int = 0

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"\n===== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # setpriv --pdeathsig: if the test process dies without cleaning up, the component gets SIGTERM.
            prefix = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
            self.process = subprocess.Popen(
                [*prefix, *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=cwd,
                process_group=0,
            )
        self.started_at = time.time()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, grace: float = 15.0, *, terminated: bool = False) -> None:
        """SIGTERM the group (unless ``terminated`` already), SIGKILL what is left after ``grace`` s, reap."""
        if self.process is None:
            return
        if not terminated:
            self.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(grace)
        self.send_signal(signal.SIGKILL)  # stragglers in the group (task processes, pool children)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as when the machine under it dies."""
        self.send_signal(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self.process = None

    def new_output(self) -> str:
        """What the component logged since its last start."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_bytes().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --- the engine --------------------------------------------------------------------------------


@dataclass
class TaskInstance:
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    hostname: str | None
    queue: str | None


@dataclass
class AirflowEngine:
    """A running Airflow deployment; ``start()``/``stop()`` or use as a context manager.

    :param workdir: holds AIRFLOW_HOME, the DAGs folder and every component's log (kept after stop).
    :param connections: conn_id -> Airflow connection as a dict (``conn_type``, ``host``, ``extra``...),
        given to every component as ``AIRFLOW_CONN_<ID>`` JSON, as a secrets backend would.
    :param component_connections: component name -> connections only that component has; a test
        proves where a callback ran by the connection it could reach.
    :param dags: DAG files copied into the DAGs folder before the components start.
    :param worker_concurrency: Celery worker processes; each runs one task at a time.
    :param broker: ``redis`` (a Redis database claimed for the run) or ``rabbitmq`` (the default vhost;
        the run's queue is deleted at the end).
    """

    workdir: Path
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    component_connections: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    dags: Iterable[Path] = ()
    worker_concurrency: int = 4
    broker: Literal["redis", "rabbitmq"] = "redis"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    api_port: int = field(default_factory=free_port)
    db_name: str = field(default_factory=lambda: f"{DB_PREFIX}{os.getpid()}_{secrets.token_hex(4)}")
    queue: str = field(default_factory=lambda: f"e2e-{secrets.token_hex(4)}")
    redis_db: int | None = None
    components: dict[str, Component] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _token: str | None = None
    _db_created: bool = False
    _secrets: dict[str, str] = field(default_factory=dict)
    _ports: dict[str, int] = field(default_factory=dict)

    # --- layout ---------------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.workdir / "airflow-home"

    @property
    def dags_folder(self) -> Path:
        return self.workdir / "dags"

    @property
    def logs_folder(self) -> Path:
        return self.workdir / "component-logs"

    @property
    def task_logs_folder(self) -> Path:
        return self.home / "logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self, component: str | None = None) -> dict[str, str]:
        """The configuration every component shares, plus ``component``'s own connections."""
        if self.broker == "redis" and self.redis_db is None:
            raise EngineError("no Redis database claimed yet")
        broker_url = RABBITMQ_URL if self.broker == "rabbitmq" else f"{REDIS_URL}/{self.redis_db}"
        # name the driver: SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which Airflow does not bring
        db_url = f"{PG_DSN}/{self.db_name}".replace("postgresql://", "postgresql+psycopg2://", 1)
        env = _clean_environ()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__FERNET_KEY": self._secret("fernet_key"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt_secret"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
                "AIRFLOW__CELERY__BROKER_URL": broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db_url}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._port("worker_log")),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._port("trigger_log")),
                # new DAG files show up within seconds; unchanged ones are not re-parsed all the time (2 cores)
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            }
        )
        connections = {**self.connections, **self.component_connections.get(component or "", {})}
        for conn_id, conn in connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env.update(self.extra_env)
        return env

    def _secret(self, name: str) -> str:
        if name not in self._secrets:
            self._secrets[name] = (
                base64.urlsafe_b64encode(os.urandom(32)).decode() if name == "fernet_key" else secrets.token_urlsafe(32)
            )
        return self._secrets[name]

    def _port(self, name: str) -> int:
        return self._ports.setdefault(name, free_port())

    def _argv(self, name: str) -> list[str]:
        airflow = [sys.executable, "-m", "airflow"]
        return {
            "api-server": [
                *airflow,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
                "--workers",
                "1",
            ],
            "scheduler": [*airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [*airflow, "dag-processor"],
            "triggerer": [*airflow, "triggerer"],
            # not started with the engine: the tests that need it start it (start_component)
            "responder": [str(Path(sys.executable).parent / "airflow-alerter"), "responder", "--api-url",
                          self.api_url, "--interval", "1"],
            # the pushed responder: Slack Socket Mode for ml_slack; a second one for availability
            **{name: [str(Path(sys.executable).parent / "airflow-alerter"), "responder", "--api-url", self.api_url,
                      "--conn-id", "ml_slack", "--interval", "5"]
               for name in ("pushed-responder", "pushed-responder-2")},
            "celery-worker": [
                *airflow,
                "celery",
                "worker",
                "--queues",
                self.queue,
                "--celery-hostname",
                f"{self.queue}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        }[name]

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> AirflowEngine:
        """Create the database, migrate it, start every component and wait until all are healthy."""
        atexit.register(self.stop)
        began = time.monotonic()
        for folder in (self.home, self.dags_folder, self.logs_folder):
            folder.mkdir(parents=True, exist_ok=True)
        for dag in self.dags:
            shutil.copy(dag, self.dags_folder / Path(dag).name)
        if self.broker == "redis":
            self._claim_redis_db()
        self._create_database()
        self.timings["database"] = time.monotonic() - began
        self._migrate(timeout)
        self.timings["migrate"] = time.monotonic() - began - self.timings["database"]
        components_began = time.monotonic()
        for name in COMPONENTS:
            self.start_component(name, wait=False)
        for name in COMPONENTS:
            self.wait_ready(name, timeout - (time.monotonic() - began))
        self.timings["components"] = time.monotonic() - components_began
        self.timings["total"] = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every component (by process group), drop the database, free the Redis database. Idempotent."""
        for component in self.components.values():  # all at once: each takes seconds to shut down
            component.send_signal(signal.SIGTERM)
        for component in self.components.values():
            component.stop(terminated=True)
        if self._db_created:
            with contextlib.suppress(Exception), _closing(_pg_connect("postgres")) as conn, conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self._db_created = False
        if self.redis_db is not None:
            with contextlib.suppress(Exception):
                _redis(self.redis_db).flushdb()
            self.redis_db = None
        if self.broker == "rabbitmq":
            with contextlib.suppress(Exception):
                _delete_rabbitmq_queue(self.queue)
        atexit.unregister(self.stop)

    def __enter__(self) -> AirflowEngine:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _claim_redis_db(self) -> None:
        """Take the first Redis database no living run holds, so parallel runs never share a broker."""
        for number in REDIS_DBS:
            client = _redis(number)
            owner = client.get(REDIS_CLAIM_KEY)
            if owner is not None and not _alive(int(owner.split(b":")[0])):
                client.flushdb()  # left by a run that was killed before its teardown
            if client.set(REDIS_CLAIM_KEY, f"{os.getpid()}:{self.queue}", nx=True, ex=6 * 3600):
                self.redis_db = number
                return
        raise EngineError(f"no free Redis database among {list(REDIS_DBS)} (key {REDIS_CLAIM_KEY!r} set in all)")

    def _create_database(self) -> None:
        with _closing(_pg_connect("postgres")) as conn, conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (DB_PREFIX + "%",))
            for (name,) in cur.fetchall():
                pid = name[len(DB_PREFIX) :].partition("_")[0]
                if pid.isdigit() and not _alive(int(pid)):
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{self.db_name}"')
        self._db_created = True

    def _migrate(self, timeout: float) -> None:
        log_path = self.logs_folder / "db-migrate.log"
        with log_path.open("wb") as log:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=self.workdir,
                timeout=timeout,
            )
        if done.returncode != 0:
            raise EngineError(
                f"airflow db migrate failed (exit {done.returncode}), see {log_path}:\n"
                + "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            )

    def start_component(self, name: str, *, wait: bool = True, timeout: float = 120.0) -> Component:
        component = self.components.get(name) or Component(name, self._argv(name), self.logs_folder / f"{name}.log")
        if component.running:
            raise EngineError(f"{name} is already running (pid {component.process.pid})")  # type: ignore[union-attr]
        self.components[name] = component
        component.start(self.env(name), self.workdir)
        if wait:
            self.wait_ready(name, timeout)
        return component

    def kill(self, name: str) -> None:
        """SIGKILL a component and all its children (a Celery worker's pool and task processes too)."""
        self.components[name].kill()

    def restart(self, name: str, *, hard: bool = False, timeout: float = 120.0) -> float:
        """Stop (SIGTERM, or SIGKILL when ``hard``) and start a component again; seconds until it is ready."""
        began = time.monotonic()
        component = self.components[name]
        component.kill() if hard else component.stop()
        self.start_component(name, timeout=timeout)
        return time.monotonic() - began

    def wait_ready(self, name: str, timeout: float) -> None:
        component = self.components[name]

        def ready() -> bool:
            if not component.running:
                raise EngineError(
                    f"{name} exited with code {component.process and component.process.returncode}, "
                    f"see {component.log_path}:\n{component.tail(40)}"
                )
            return self._is_ready(component)

        try:
            wait_until(ready, max(timeout, 1.0), f"{name} to become ready (log: {component.log_path})")
        except EngineError as err:
            raise EngineError(f"{err}\n--- last lines of {name} ---\n{component.tail(40)}") from None

    def _is_ready(self, component: Component) -> bool:
        if component.name == "celery-worker":
            return " ready." in component.new_output()
        if component.name in ("responder", "pushed-responder", "pushed-responder-2"):
            return "Responder serving" in component.new_output()
        health = self.health()
        if health is None:
            return False
        if component.name == "api-server":
            return True
        key = component.name.replace("-", "_")
        beat_key = {
            "scheduler": "latest_scheduler_heartbeat",
            "triggerer": "latest_triggerer_heartbeat",
            "dag_processor": "latest_dag_processor_heartbeat",
        }[key]
        info = health.get(key) or {}
        beat = info.get(beat_key)
        return info.get("status") == "healthy" and beat is not None and _epoch(beat) >= component.started_at - 1

    def health(self) -> dict[str, Any] | None:
        """``/api/v2/monitor/health``, or None while the api-server is not answering."""
        try:
            with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=5) as response:
                return dict(json.load(response))
        except (OSError, ValueError):
            return None

    # --- the REST API --------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from the simple auth manager (all-admins mode hands one out without credentials)."""
        if self._token is None:
            with urllib.request.urlopen(f"{self.api_url}/auth/token", timeout=10) as response:
                self._token = str(json.load(response)["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None, *, expect: Iterable[int] = (200,)) -> Any:
        """Call ``/api/v2<path>`` with the token; EngineError with the response body on an unexpected status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api_url}/api/v2{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode(errors="replace")
        if status not in tuple(expect):
            raise EngineError(f"{method} /api/v2{path} answered {status}: {text[:1000]}")
        return json.loads(text) if text else None

    def deploy_dag(self, source: Path) -> None:
        """Copy a DAG file into the DAGs folder; the dag-processor lists it within seconds (``wait_for_dag``)."""
        shutil.copy(source, self.dags_folder / source.name)

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed and serialized ``dag_id``.

        The suite's DAG files are named after their DAG, so an import error of ``<dag_id>.py`` fails
        at once with Airflow's message; another file's import error does not stop this DAG.
        """

        def parsed() -> dict[str, Any] | None:
            found = self.api("GET", f"/dags/{_q(dag_id)}", expect=(200, 404))
            if found and found.get("dag_id") == dag_id:
                return dict(found)
            for error in self.api("GET", "/importErrors")["import_errors"]:
                if Path(error["filename"]).name == f"{dag_id}.py":
                    raise EngineError(f"{error['filename']} does not import:\n{error['stack_trace']}")
            return None

        return wait_until(parsed, timeout, f"DAG {dag_id!r} to be parsed", interval=1.0)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a DAG run through the REST API, as a user or an external system does; its run_id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        run = self.api("POST", f"/dags/{_q(dag_id)}/dagRuns", body)
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> str:
        """Wait for a run's final state (success or failed) and return it."""

        def final() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in FINAL_RUN_STATES else None

        return wait_until(final, timeout, f"run {run_id!r} of {dag_id!r} to finish", interval=1.0)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
        """Task instances of a run by ``task_id`` (``task_id[i]`` for mapped ones)."""
        listed: list[dict[str, Any]] = []
        while True:  # the REST API pages by 100 at most, whatever limit is asked
            path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=100&offset={len(listed)}"
            page = self.api("GET", path)
            listed += page["task_instances"]
            if not page["task_instances"] or len(listed) >= page["total_entries"]:
                break
        tis = {}
        for ti in listed:
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            tis[key] = TaskInstance(
                ti["task_id"], ti["map_index"], ti["state"], ti["try_number"], ti["hostname"], ti["queue"]
            )
        return tis

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        return {key: ti.state for key, ti in self.task_instances(dag_id, run_id).items()}

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: Iterable[str], timeout: float = 120.0
    ) -> str:
        """Wait until ``task_id`` is in one of ``states``; fail early when it ends in another final state."""
        wanted = frozenset(states)

        def reached() -> str | None:
            state = self.task_states(dag_id, run_id).get(task_id)
            if state in wanted:
                return state
            if state in FINAL_TI_STATES:
                raise EngineError(f"{dag_id}.{task_id} in {run_id!r} ended {state!r}, expected one of {sorted(wanted)}")
            return None

        return wait_until(reached, timeout, f"{dag_id}.{task_id} in {run_id!r} to be {sorted(wanted)}")

    def task_log_files(self, since: float = 0.0) -> list[Path]:
        """Task log files written after ``since`` (epoch seconds), oldest first."""
        files = [path for path in self.task_logs_folder.rglob("*.log") if path.stat().st_mtime >= since]
        return sorted(files, key=lambda path: path.stat().st_mtime)

    def diagnostics(self, since: float = 0.0, lines: int = 60) -> str:
        """Where every log is, and the last lines of each component's log and of recent task logs."""
        parts = [f"engine workdir: {self.workdir}"]
        for component in self.components.values():
            state = "running" if component.running else "stopped"
            parts.append(f"--- {component.name} ({state}) {component.log_path} ---\n{component.tail(lines)}")
        for path in self.task_log_files(since)[-6:]:
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            parts.append(f"--- task log {path.relative_to(self.task_logs_folder)} ---\n{tail}")
        return "\n".join(parts)


def _delete_rabbitmq_queue(queue: str) -> None:
    import kombu

    with kombu.Connection(RABBITMQ_URL, connect_timeout=3) as conn:
        conn.default_channel.queue_delete(queue)
        conn.default_channel.exchange_delete(queue)  # Celery declares an exchange named after each queue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@contextlib.contextmanager
def _closing(conn: Any) -> Any:
    try:
        yield conn
    finally:
        conn.close()


def main() -> None:  # pragma: no cover - a developer's tool
    import tempfile

    check_services()
    workdir = Path(tempfile.mkdtemp(prefix="airflow-alerter-engine-"))
    engine = AirflowEngine(workdir, dags=sorted(E2E_DAGS.glob("*.py")))
    with engine:
        print(
            f"engine up in {engine.timings['total']:.1f}s ({engine.timings}); API {engine.api_url}; "
            f"logs {engine.logs_folder}; Ctrl-C stops it",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":  # pragma: no cover
    main()
