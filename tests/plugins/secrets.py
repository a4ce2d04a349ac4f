"""The secret leakage guard: every test fails if a secret the tests configure shows up where people read.

Test modules and fixtures register the secrets they configure (passwords, tokens, webhook URLs)
with :func:`register_secret`. After each test the guard scans what the test printed and logged
(pytest's captured stdout, stderr and log sections, which include Airflow's task logs in
``dag.test()`` runs); ``run_dag`` also scans the XCom and rendered-template tables.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable

import pytest

_SECRETS: set[str] = set()


def register_secret(*values: str) -> None:
    """Declare values that must never appear in logs, output, XCom or rendered templates."""
    _SECRETS.update(value for value in values if value and len(value) >= 6)


def leaked_in(texts: Iterable[str]) -> list[str]:
    """The registered secrets found in ``texts``, shown only by length and first two characters."""
    joined = "\n".join(texts)
    return sorted(f"{secret[:2]}…({len(secret)} chars)" for secret in _SECRETS if secret in joined)


def assert_no_secrets(*texts: str, where: str) -> None:
    leaked = leaked_in(texts)
    assert not leaked, f"secret(s) leaked into {where}: {', '.join(leaked)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    leaked = leaked_in(content for _, content in report.sections)
    if not leaked:
        return
    report.sections = [(name, _redact(content)) for name, content in report.sections]  # keep CI logs clean
    if report.when == "call":
        report.outcome = "failed"
        report.longrepr = f"Secret leak guard: {', '.join(leaked)} appeared in the captured output or logs"


def _redact(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


@pytest.fixture(autouse=True)
def _forget_masked_values() -> Generator[None, None, None]:
    """Airflow's secrets masker is process-wide: what one test's connections taught it stays for the next.

    Alerts now pass that masker (a malformed extra such as ``["flavor", "slack"]`` is masked whole by
    Airflow), so each test starts with a masker that knows only what the test itself registers.
    """
    yield
    import importlib
    import sys

    if "airflow.sdk.log" in sys.modules:
        from airflow.sdk.log import redact  # type: ignore[attr-defined]

        importlib.import_module(redact.__module__)._secrets_masker().reset_masker()
