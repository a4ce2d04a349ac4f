"""The names that moved between Airflow 3.1, 3.2 and 3.3 work on the Airflow installed (CI runs all three)."""

from __future__ import annotations

import airflow
import pytest

from airflow_alerter import _compat


def test_redact_hides_a_registered_secret_in_text_and_containers() -> None:
    from airflow.sdk.log import mask_secret

    secret = "compat-Redact-Secret-4411"
    mask_secret(secret)

    assert _compat.redact(f"failed with {secret} in the URL") == "failed with *** in the URL"
    assert _compat.redact({"detail": [f"token={secret}"], "n": 3}) == {"detail": ["token=***"], "n": 3}


def test_redact_hides_values_under_sensitive_keys() -> None:
    assert _compat.redact({"password": "not-registered-anywhere"}) == {"password": "***"}


def test_redact_leaves_text_without_secrets_alone() -> None:
    assert _compat.redact("nothing to hide here") == "nothing to hide here"


def test_conf_reads_airflow_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "17")

    assert _compat.conf.getfloat("core", "task_success_overtime", fallback=20.0) == 17.0


def test_not_in_dag_test_outside_a_run() -> None:
    assert _compat.runs_in_dag_test() is False


def test_task_control_exceptions_are_the_ones_this_airflow_raises_for_tasks() -> None:
    major_minor = tuple(int(part) for part in airflow.__version__.split(".")[:2])
    home = "airflow.exceptions" if major_minor < (3, 2) else "airflow.sdk.exceptions"

    for exc in (_compat.AirflowFailException, _compat.AirflowSensorTimeout, _compat.AirflowSkipException):
        assert exc.__module__ == home
