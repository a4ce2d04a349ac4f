"""Importing the package is free: DAG files import it and the dag-processor parses them again and again."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

HEAVY = ("slack_sdk", "smtplib", "jinja2", "airflow", "aiohttp")


def test_import_loads_no_client_library_template_engine_or_airflow() -> None:
    code = "import sys, airflow_alerter; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in %r)))"
    loaded = subprocess.run([sys.executable, "-c", code % (HEAVY,)], capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == ""


def test_public_names_resolve_lazily() -> None:
    import airflow_alerter

    for name in airflow_alerter.__all__:
        assert getattr(airflow_alerter, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    import airflow_alerter

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        airflow_alerter.Nope  # noqa: B018


# Each public name imported on its own, in a fresh interpreter: a name whose module imports something
# that moved between Airflow versions fails here on that version, not in a user's DAG file. Warnings
# raised from the package's own code (an Airflow import it should not use there) count as failures.
FRESH_IMPORT = """
import json, sys, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from airflow_alerter import {name}
ours = [f"{{w.category.__name__}}: {{w.message}} ({{w.filename}}:{{w.lineno}})" for w in caught
        if "airflow_alerter" in w.filename.replace("\\\\", "/").split("/site-packages/")[-1]]
print(json.dumps({{"module": {name}.__module__ if hasattr({name}, "__module__") else None, "warnings": ours}}))
"""


@pytest.fixture(scope="module")
def fresh_imports() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every public name imported in its own interpreter, two at a time (the import of Airflow dominates)."""
    import airflow_alerter

    def one(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", FRESH_IMPORT.format(name=name)], capture_output=True, text=True,
                              timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(airflow_alerter.__all__, pool.map(one, airflow_alerter.__all__), strict=True))


@pytest.mark.parametrize("name", sorted(__import__("airflow_alerter")._EXPORTS))
def test_public_name_imports_cleanly_on_its_own(
    name: str, fresh_imports: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    from airflow_alerter import _EXPORTS

    run = fresh_imports[name]

    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["module"] == _EXPORTS[name]
    assert result["warnings"] == []


# What a DAG file with our callbacks, approval gate and post operator loads of this package when the dag-processor
# parses it (once per file, in a forked child): the notifier and the sensor, nothing that builds or
# sends an alert (our pydantic models, validation, flavors, the SMTP connection pool, the hook, the trigger).
DAG_FILE = """
import sys
import airflow.sdk
before = set(sys.modules)
from airflow.sdk import DAG
from airflow_alerter import AlerterAskSensor, AlerterPostOperator, alerter_failure_callback
with DAG("d", schedule=None, on_failure_callback=alerter_failure_callback("ops_email")):
    AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy?", mode="reschedule")
    AlerterPostOperator(task_id="post", alerter_conn_id="ops_email", message="Deployed {{ ds }}")
watched = {"airflow_alerter", *%r} - {"airflow"}
print(" ".join(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in watched)))
"""
PARSE_TIME_MODULES = {
    "airflow_alerter._compat",
    "airflow_alerter.notifications",
    "airflow_alerter.notifications.alerter",
    "airflow_alerter.operators",
    "airflow_alerter.operators.alerter",
    "airflow_alerter.sensors",
    "airflow_alerter.sensors.alerter",
}


def test_dag_file_loads_only_the_notifier_the_sensor_and_the_operator() -> None:
    loaded = subprocess.run([sys.executable, "-c", DAG_FILE % (HEAVY,)], capture_output=True, text=True,
                            timeout=120, check=True)

    assert set(loaded.stdout.split()) - {"airflow_alerter"} <= PARSE_TIME_MODULES, loaded.stdout
