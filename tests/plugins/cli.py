"""Fixtures for the ``airflow-alerter`` command and the example custom flavor (dags/examples/custom_flavor).

The command runs as users run it: the console script pip installed, in a subprocess, with the
test's environment (AIRFLOW_HOME, ``AIRFLOW_CONN_*`` connections, the registry file below).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FLAVOR_DIR = ROOT / "dags" / "examples" / "custom_flavor"
EXAMPLE_FLAVOR_CLASS = "my_alerters.jsonl_file.JsonLinesFileAlerter"
CLI = Path(sys.executable).with_name("airflow-alerter")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def registry_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry file of this test's own (``AIRFLOW_ALERTER_REGISTRY``), for this process and the CLI."""
    path = tmp_path / "registry" / "airflow_alerter_flavors.json"
    monkeypatch.setenv("AIRFLOW_ALERTER_REGISTRY", str(path))
    return path


def _importable_from(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put ``folder`` on sys.path here and on PYTHONPATH for subprocesses; forget an earlier my_alerters."""
    for name in [name for name in sys.modules if name.split(".")[0] == "my_alerters"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))


@pytest.fixture
def example_flavor_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example package importable (as with PYTHONPATH), but declaring no entry point."""
    _importable_from(EXAMPLE_FLAVOR_DIR, monkeypatch)
    return EXAMPLE_FLAVOR_DIR


@pytest.fixture
def example_flavor_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example package laid out as ``pip install`` lays it out: the package and a dist-info whose
    ``entry_points.txt`` is generated from the example's own pyproject.toml."""
    site = tmp_path / "site-packages"
    shutil.copytree(EXAMPLE_FLAVOR_DIR / "my_alerters", site / "my_alerters")
    project = tomllib.loads((EXAMPLE_FLAVOR_DIR / "pyproject.toml").read_text())["project"]
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, targets in project["entry-points"].items():
        lines += [f"[{group}]", *(f"{name} = {target}" for name, target in targets.items()), ""]
    (dist_info / "entry_points.txt").write_text("\n".join(lines))
    _importable_from(site, monkeypatch)
    return site


@pytest.fixture
def cli(registry_file: Path) -> RunCli:
    """Run ``airflow-alerter ARGS...``; returns the exit code, stdout and stderr."""

    def run(*args: str, stdin: str | None = None, timeout: float = 120) -> CliResult:
        done = subprocess.run(
            [str(CLI), *args], capture_output=True, text=True, input=stdin, env=os.environ.copy(), timeout=timeout
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
