"""Importing the package is free: DAG files import it and the dag-processor parses them again and again."""

from __future__ import annotations

import subprocess
import sys

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
