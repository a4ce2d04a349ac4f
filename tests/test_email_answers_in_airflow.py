"""Email answers through the real api-server: a person opens the question email in Chromium, follows Approve,
sees the confirmation page, presses its button, and the Human-in-the-loop request parked in ``dag.test()``
(Airflow 3.3) resolves; the outcome is mailed back in the thread. A scanner's GET of every link decides nothing.

Screenshots go to test-artifacts/email-answer/ (not the repository).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.plugins.airflow import AIRFLOW_VERSION, ApiServer, RunDag, wait_for
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.servers.smtp import LocalSMTPServer, ReceivedEmail

pytestmark = pytest.mark.skipif(AIRFLOW_VERSION < (3, 3), reason="HITL tasks park in awaiting_input from Airflow "
                                "3.3 on; before, dag.test() runs their trigger where the record cannot be read")

ARTIFACTS = Path(os.environ.get("AIRFLOW_ALERTER_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
LINK_SECRET = "email-answers-in-airflow-secret-3b8d"
register_secret(LINK_SECRET)
ALICE, BOB = "alice@example.test", "bob@example.test"
APPROVAL_DAG = """
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, task
    from airflow_alerter import alerter_hitl_notifier

    with DAG("release_by_email", schedule=None) as dag:
        approve = ApprovalOperator(task_id="approve", subject="Release model v7?", body="Accuracy 0.93.",
                                   notifiers=[alerter_hitl_notifier("ops_email")])

        @task
        def release():
            return "released"

        approve >> release()
"""


@pytest.fixture
def email_conn(api_server: ApiServer, airflow_conn: Callable[..., str], smtp_server: LocalSMTPServer,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``ops_email`` in this process's env (dag.test reads it) and in the api-server's DB (its plugin does)."""
    extra = {"from_email": "alerts@example.test", "disable_ssl": True, "disable_tls": True, "to": f"{ALICE},{BOB}",
             "signing_secret": LINK_SECRET, "imap_host": "127.0.0.1", "imap_port": 1, "retry_limit": 0}
    airflow_conn("ops_email", "smtp", host=smtp_server.host, port=smtp_server.port, extra=extra)
    api_server.call("DELETE", "/connections/ops_email", expect=(204, 404))
    api_server.call("POST", "/connections", {"connection_id": "ops_email", "conn_type": "smtp",
                                             "host": smtp_server.host, "port": smtp_server.port,
                                             "extra": json.dumps(extra)}, expect=(201,))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", api_server.url)  # where the links point
    yield "ops_email"
    api_server.call("DELETE", "/connections/ops_email", expect=(204, 404))


def _question_to(smtp_server: LocalSMTPServer, address: str) -> ReceivedEmail:
    return wait_for(f"question email to {address}", lambda: next(
        (r for r in smtp_server.received if r.rcpt_tos == [address] and "[ref:" in str(r.message["Subject"])), None))


def _pending(api_server: ApiServer) -> int:
    return int(api_server.call("GET", "/variables?variable_key_pattern=airflow_alerter.hitl")["total_entries"])


def _answer_links(html: str) -> list[str]:
    from html.parser import HTMLParser

    found: list[str] = []

    class Links(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(value or "" for name, value in attrs if tag == "a" and name == "href")

    Links().feed(html)
    return [url for url in found if "/alerter/email/" in url]


def _answer_in_airflow(api_server: ApiServer, option: str) -> None:
    from airflow_alerter.hooks.hitl import PendingRequest

    [variable] = api_server.call("GET", "/variables?variable_key_pattern=airflow_alerter.hitl")["variables"]
    pending = PendingRequest.model_validate_json(variable["value"])
    api_server.call("PATCH", pending.api_path, {"chosen_options": [option], "params_input": {}})


def test_a_person_follows_the_approve_link_in_chromium_confirms_and_the_request_resolves(
    run_dag: RunDag, api_server: ApiServer, email_conn: str, smtp_server: LocalSMTPServer,
    in_background: Callable[[Callable[[], Any]], None], tmp_path: Path,
) -> None:
    from tests.webdriver import Browser, BrowserUnavailable

    folder = ARTIFACTS / "email-answer"
    folder.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {}

    def open_the_email_and_approve() -> None:
        question = _question_to(smtp_server, ALICE)
        wait_for("pending request", lambda: _pending(api_server))
        email_file = tmp_path / "question.html"
        email_file.write_text(question.part("html") or "", encoding="utf-8")
        try:
            browser = Browser()
            browser.__enter__()
        except BrowserUnavailable as err:
            seen["unavailable"] = str(err)
            _answer_in_airflow(api_server, "Reject")  # let dag.test() end; the test is skipped below
            return
        try:
            browser.open_html_file(email_file)
            browser.screenshot(folder / "1-question-email.png")
            browser.click('a[href*="/alerter/email/ops_email/answer"]')
            seen["confirm_page"] = browser.text()
            browser.screenshot(folder / "2-confirmation-page.png")
            seen["before_confirming"] = _pending(api_server)
            browser.click("#confirm")
            seen["result_page"] = browser.text()
            browser.screenshot(folder / "3-answer-recorded.png")
        finally:
            browser.__exit__(None, None, None)

    in_background(open_the_email_and_approve)
    result = run_dag(APPROVAL_DAG)

    if "unavailable" in seen:
        pytest.skip(f"the browser test needs Chromium and chromedriver: {seen['unavailable']}")
    assert "Approve?" in seen["confirm_page"] and ALICE in seen["confirm_page"]
    assert seen["before_confirming"] == 1  # following the link decided nothing
    assert "Thank you: your answer is recorded" in seen["result_page"]
    assert f"approved by {ALICE} on email" in seen["result_page"]
    assert (result.state_of("approve"), result.state_of("release")) == ("success", "success")
    outcome = wait_for("outcome email", lambda: next(
        (r for r in smtp_server.received if str(r.message["Subject"]).startswith("Re: ")), None), timeout=30)
    assert outcome.rcpt_tos == [ALICE, BOB] and f"Approved by {ALICE} (email)" in (outcome.part("plain") or "")
    assert api_server.log is not None
    assert_no_secrets(seen["confirm_page"], seen["result_page"], api_server.log.read_text(errors="replace"),
                      where="the pages or the api-server's log")


def test_fetching_every_link_as_a_scanner_does_decides_nothing(
    run_dag: RunDag, api_server: ApiServer, email_conn: str, smtp_server: LocalSMTPServer,
    in_background: Callable[[Callable[[], Any]], None],
) -> None:
    seen: dict[str, Any] = {}

    def scan_then_answer_in_airflow() -> None:
        questions = [_question_to(smtp_server, address) for address in (ALICE, BOB)]
        wait_for("pending request", lambda: _pending(api_server))
        links = [url for question in questions for url in _answer_links(question.part("html") or "")]
        seen["statuses"] = [httpx.get(url, timeout=30, follow_redirects=True).status_code for url in links * 2]
        seen["still_pending"] = _pending(api_server)
        _answer_in_airflow(api_server, "Reject")

    in_background(scan_then_answer_in_airflow)
    result = run_dag(APPROVAL_DAG)

    assert seen["statuses"] == [200] * 8
    assert seen["still_pending"] == 1
    assert result.state_of("release") == "skipped"  # Airflow's own Reject, not any link, decided
