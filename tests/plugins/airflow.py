"""Fixtures for real Airflow runs: a migrated SQLite metadata DB, connections and ``dag.test()`` runs.

Airflow 3 runs ``dag.test()`` only for DAGs found in the DAG bundle, so a test writes its DAG file
into a fresh dags folder and runs it from there, exactly as a user's file would be.
"""

from __future__ import annotations

import importlib.util
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


@pytest.fixture
def dags_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: str) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    return folder


def _load_dag(path: Path, dag_id: str | None) -> Any:
    from airflow.sdk import DAG

    spec = importlib.util.spec_from_file_location(f"test_dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    return next(dag for dag in dags if dag_id in (None, dag.dag_id))


@pytest.fixture
def run_dag(dags_folder: Path) -> RunDag:
    """Write DAG source (a module binding its DAG to a name) into the dags folder and ``dag.test()`` it."""

    def run(source: str, dag_id: str | None = None, **test_kwargs: Any) -> DagRunResult:
        path = dags_folder / f"dag_{len(list(dags_folder.glob('*.py')))}.py"
        path.write_text(textwrap.dedent(source))
        dag_run = _load_dag(path, dag_id).test(**test_kwargs)
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
