"""Fixtures for real Airflow runs: a migrated SQLite metadata DB, connections and ``dag.test()`` runs.

Airflow 3 runs ``dag.test()`` only for DAGs found in the DAG bundle, so a test writes its DAG file
into a fresh dags folder and runs it from there, exactly as a user's file would be.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.secrets import assert_no_secrets

#: (major, minor) of the installed Airflow, read without importing it (conftest sets its env first)
AIRFLOW_VERSION: tuple[int, int] = tuple(  # type: ignore[assignment]
    int(part) for part in importlib.metadata.version("apache-airflow").split(".")[:2]
)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the throwaway metadata DB (conftest points AIRFLOW_HOME at a temp dir) once per session."""
    home = os.environ["AIRFLOW_HOME"]
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env=os.environ.copy(), timeout=300)
    return home


@dataclass
class DagRunResult:
    state: str
    task_states: dict[str, str]

    def state_of(self, task_id: str) -> str:
        return self.task_states[task_id]


RunDag = Callable[..., DagRunResult]
_dag_files = itertools.count()  # a new file name per run: Airflow caches parsed files by path


@pytest.fixture
def dags_folder(airflow_db: str) -> Path:
    """The DAG bundle folder, emptied for each test (Airflow fixes the bundle path once per process)."""
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.py"):
        old.unlink()
    return folder


def _load_dag(path: Path, dag_id: str | None) -> Any:
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location(f"test_dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    return next(dag for dag in dags if dag_id in (None, dag.dag_id))


def _forget_stored_dag(dag_id: str) -> None:
    """Delete what the metadata DB holds of ``dag_id``, so ``dag.test()`` serializes the file just written.

    Airflow 3.1 and 3.2's ``dag.test()`` re-parse the bundle only when the DAG id has no stored
    version yet, and otherwise run the stored one: a test reusing an earlier test's DAG id would run
    that test's tasks ("Task deploy not found"). 3.3 re-syncs on every call (apache/airflow#64884).
    Tests write a new DAG per run, so every version starts from none stored.
    """
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound

    with suppress(DagNotFound):
        delete_dag(dag_id)


@contextmanager
def _dag_test_as_deployed() -> Iterator[None]:
    """Run ``dag.test()`` as a deployed Airflow runs tasks, on every supported version.

    Two things only ``dag.test()`` on Airflow 3.1/3.2 does differently, neither a promise to users:

    - A worker's task runner sets ``context["exception"]`` before the task callbacks run
      (``task_runner.main`` on 3.1, 3.2 and 3.3); ``dag.test()``'s in-process runner does so only from
      3.3 on, so failure alerts in 3.1/3.2 ``dag.test()`` runs lacked the exception.
    - 3.2's in-process execution API ends its app's lifespan when the ``InProcessExecutionAPI``
      object is garbage-collected, which the supervisor lets happen as soon as it has taken the
      transport; the task's next API call then fails (``'State' object has no attribute
      'svcs_registry'``) and the task ends ``failed``. 3.3 ties the lifespan to the transport; an
      api-server keeps its app for its whole life. The fixture keeps the object for the run.

    On 3.3 both wrappers find the work already done and change nothing.
    """
    from airflow.sdk.execution_time import supervisor, task_runner

    original_finalize = task_runner.finalize
    original_api_server = supervisor.in_process_api_server

    def finalize(ti: Any, state: Any, context: Any, log: Any, error: BaseException | None = None) -> Any:
        context.setdefault("exception", error)
        return original_finalize(ti, state, context, log, error)

    kept: list[Any] = []

    def in_process_api_server() -> Any:
        api = original_api_server()
        kept.append(api)
        return api

    task_runner.finalize = finalize  # type: ignore[assignment]
    supervisor.in_process_api_server = in_process_api_server
    try:
        yield
    finally:
        task_runner.finalize = original_finalize  # type: ignore[assignment]
        supervisor.in_process_api_server = original_api_server


def _stored_texts() -> list[str]:
    """What Airflow keeps for anyone with UI access to read: XCom values and rendered template fields."""
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        rows = session.execute(text("SELECT value FROM xcom UNION ALL "
                                    "SELECT rendered_fields FROM rendered_task_instance_fields")).all()
    return [str(value) for (value,) in rows]


@pytest.fixture
def run_dag(dags_folder: Path) -> RunDag:
    """Write DAG source (a module binding its DAG to a name) into the dags folder and ``dag.test()`` it."""

    def run(source: str, dag_id: str | None = None, **test_kwargs: Any) -> DagRunResult:
        path = dags_folder / f"dag_{next(_dag_files)}.py"
        path.write_text(textwrap.dedent(source))
        dag = _load_dag(path, dag_id)
        _forget_stored_dag(dag.dag_id)
        with _dag_test_as_deployed():
            dag_run = dag.test(**test_kwargs)
        assert_no_secrets(*_stored_texts(), where="XCom or rendered template fields")
        states = {}
        for ti in dag_run.get_task_instances():
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = str(getattr(ti.state, "value", ti.state))
        return DagRunResult(state=str(getattr(dag_run.state, "value", dag_run.state)), task_states=states)

    return run


@pytest.fixture
def airflow_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define a connection as users of secrets backends do: an ``AIRFLOW_CONN_<ID>`` JSON env var."""

    def define(conn_id: str, conn_type: str, **fields: Any) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": conn_type, **fields}))
        return conn_id

    return define


@pytest.fixture
def read_logs(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """Everything logged so far, through stdlib logging or straight to stdout/stderr (task logs in dag.test)."""
    caplog.set_level("INFO")

    def read() -> str:
        output = capfd.readouterr()
        return "\n".join([caplog.text, output.out, output.err])

    return read


@dataclass
class ApiServer:
    """A real ``airflow api-server`` on the tests' metadata DB; ``call`` uses a real JWT from it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path | None = None  # what the server wrote (stdout and stderr), for tests that read its log

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        """One REST call; SQLite's "database is locked" (a 500 "Database error") is retried, as a client would.

        The tests' metadata DB is SQLite, which lets one writer in at a time: ``dag.test()``, the
        responder and this server write at once in the race tests. PostgreSQL (tests/e2e) has row locks.
        """
        import time

        import httpx

        token = httpx.get(f"{self.url}/auth/token", timeout=30).json()["access_token"]
        for _ in range(20):
            response = httpx.request(method, f"{self.url}/api/v2{path}", json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 500 or "Database error" not in response.text:
                break
            time.sleep(0.25)
        assert response.status_code in expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None


@pytest.fixture(scope="session")
def api_server(airflow_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Airflow's api-server, as the Required actions page and REST API users reach it (all-admins auth)."""
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    log = (tmp_path_factory.mktemp("api-server") / "api-server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                                str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ApiServer(f"http://127.0.0.1:{port}", process, Path(log.name))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            if process.poll() is not None:
                pytest.fail(f"airflow api-server exited {process.returncode}; see {log.name}")
            time.sleep(0.5)
        else:
            pytest.fail(f"airflow api-server did not answer within 120 s; see {log.name}")
        yield server
    finally:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        process.kill()
        log.close()


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60) -> Any:
    """What ``found()`` returns once it is truthy (polled every 0.2 s); AssertionError naming ``what`` at timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


@pytest.fixture
def in_background() -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Run an outside party (a REST client, the responder) beside ``dag.test()``; its errors fail the test."""
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def start(action: Callable[[], Any]) -> None:
        def guarded() -> None:
            try:
                action()
            except BaseException as err:
                errors.append(err)

        thread = threading.Thread(target=guarded, daemon=True)
        threads.append(thread)
        thread.start()

    yield start
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
