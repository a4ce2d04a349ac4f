"""Fixtures for real Airflow runs: a migrated SQLite metadata DB, connections and ``dag.test()`` runs.

Airflow 3 runs ``dag.test()`` only for DAGs found in the DAG bundle, so a test writes its DAG file
into a fresh dags folder and runs it from there, exactly as a user's file would be.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.secrets import assert_no_secrets


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
        dag_run = _load_dag(path, dag_id).test(**test_kwargs)
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
