"""The secret leakage guard itself: it must fail a test that lets a registered secret reach the output."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]

INNER_TEST = """
import logging
from tests.plugins.secrets import register_secret

register_secret("tok-xoxb-1234567890")

def test_logs_a_secret():
    logging.getLogger("airflow_alerter").warning("connecting with %s", "tok-xoxb-1234567890")

def test_prints_a_secret():
    print("token is tok-xoxb-1234567890")

def test_stays_quiet():
    logging.getLogger("airflow_alerter").warning("connecting with ***")
"""


def test_guard_fails_tests_that_log_or_print_a_secret(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=INNER_TEST)

    result = pytester.runpytest_subprocess("-p", "tests.plugins.secrets", "-p", "no:cacheprovider", "-rA")

    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*Secret leak guard: to…(19 chars) appeared*"])
    shown = result.stdout.str().replace('register_secret("tok-xoxb-1234567890")', "")
    assert "tok-xoxb-1234567890" not in shown, "the guard must redact what it reports"
