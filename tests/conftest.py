"""Shared fixtures: a throwaway Airflow home, and one real local server per remote service.

Airflow reads its configuration when first imported, so the environment is set here, before any
test module imports Airflow. Each server lives in ``tests/servers/``; its fixture in ``tests/plugins/``.
"""

from __future__ import annotations

import os
import tempfile

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-alerter-test-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_AIRFLOW_HOME, "dags")
# Airflow 3.2's in-process execution API (dag.test()) validates tokens with [api_auth] jwt_secret
# when it starts, and fails to start without one. Airflow writes a generated secret into a new
# home's airflow.cfg, but a process that imported Airflow before that file existed (this one, when
# a test module imports Airflow at collection) never reads it. 3.1 and 3.3 start without it.
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "airflow-alerter-tests-only-jwt-secret")
# A deployment has a Fernet key; without one Airflow 3.1 logs "empty cryptography key" onto the
# stderr of the first command that reads a connection (the CLI tests expect one line there).
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "Z7Vd1xXq0cTq3W3h0sGXoUeQG2u3wq3Jm5b9QqkF2mA=")

pytest_plugins = [
    "tests.plugins.secrets",
    "tests.plugins.smtp",
    "tests.plugins.mail",
    "tests.plugins.slack",
    "tests.plugins.discord",
    "tests.plugins.webhook",
    "tests.plugins.airflow",
    "tests.plugins.cli",
]
