"""A gate asked by email on the distributed engine: a recipient's signed link, opened and confirmed, resolves it.

The link goes to the api-server plugin (GET: a confirmation page, nothing decided; POST: the answer,
written into the gate's Human-in-the-loop record); the deferred gate resumes and the outcome is mailed
back in the question's thread. Replies read over IMAP are in tests/e2e/test_email_replies_gate.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.engine import AirflowEngine, wait_until
from tests.plugins.secrets import register_secret
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER
from tests.servers.smtp import LocalSMTPServer, ReceivedEmail, free_port

pytestmark = pytest.mark.e2e

GATE = "e2e_gate_email"
LINK_SECRET = "e2e-email-gate-signing-secret-41af"
register_secret(LINK_SECRET)
ALICE, BOB = "alice@e2e.example.com", "bob@e2e.example.com"


@pytest.fixture
def ask_email(engine: AirflowEngine, e2e_smtp: LocalSMTPServer) -> Iterator[str]:
    """``ask_email`` in the engine's metadata DB: every component (worker, triggerer, api-server) reads it there."""
    extra = {**e2e_smtp.connection_extra(), "from_email": "gate@e2e.example.com", "to": f"{ALICE},{BOB}",
             "signing_secret": LINK_SECRET, "imap_port": free_port(), "timeout": 10, "retry_backoff": 0.2}
    engine.api("DELETE", "/connections/ask_email", expect=(204, 404))
    engine.api("POST", "/connections", {"connection_id": "ask_email", "conn_type": "smtp", "host": e2e_smtp.host,
                                        "port": e2e_smtp.port, "login": SMTP_USER, "password": SMTP_PASSWORD,
                                        "extra": json.dumps(extra)}, expect=(201,))
    yield "ask_email"
    engine.api("DELETE", "/connections/ask_email", expect=(204, 404))


def question_to(server: LocalSMTPServer, address: str, run_id: str) -> ReceivedEmail:
    return wait_until(lambda: next((r for r in list(server.received) if r.rcpt_tos == [address]
                                    and run_id in str(r.message["Subject"])), None), 120, f"the question to {address}")


def approve_link(question: ReceivedEmail) -> str:
    [link] = re.findall(r"^Approve: (\S+?)\r?$", question.part("plain") or "", re.MULTILINE)
    return str(link)


def press_confirm(link: str) -> httpx.Response:
    """What a browser does on the confirmation page: POST its form (the token and the page's code)."""
    page = httpx.get(link, timeout=30)
    assert page.status_code == 200, page.text[:500]
    fields = dict(re.findall(r'<input type="hidden" name="(\w)" value="([^"]*)"', page.text))
    return httpx.post(link.split("?")[0], data=fields, timeout=30)


def test_a_confirmed_link_resolves_the_gate_and_the_outcome_is_mailed_in_the_thread(
    engine: AirflowEngine, ask_email: str, e2e_smtp: LocalSMTPServer
) -> None:
    engine.wait_for_dag(GATE)
    run_id = engine.trigger(GATE)
    question = question_to(e2e_smtp, ALICE, run_id)
    engine.wait_for_task_state(GATE, run_id, "gate", {"deferred"})
    link = approve_link(question)
    for _ in range(3):  # a mail scanner, a link preview, a second look
        assert httpx.get(link, timeout=30).status_code == 200
    time.sleep(4)  # two of the gate's intervals
    assert engine.task_states(GATE, run_id)["gate"] == "deferred"

    clicked = time.monotonic()
    answered = press_confirm(link)
    engine.wait_for_task_state(GATE, run_id, "ship", {"queued", "running", "success"})
    downstream = time.monotonic() - clicked

    assert answered.status_code == 200 and "your answer is recorded" in answered.text
    assert engine.wait_for_run(GATE, run_id) == "success"
    outcome = wait_until(lambda: next((r for r in list(e2e_smtp.received) if str(r.message["Subject"]).startswith(
        "Re: ") and run_id in str(r.message["Subject"])), None), 60, "the outcome email")
    assert outcome.rcpt_tos == [ALICE, BOB] and f"Approved by {ALICE} (email)" in (outcome.part("plain") or "")
    assert outcome.message["In-Reply-To"] == question.message["Message-ID"]
    xcom: Any = engine.api("GET", f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/gate/xcomEntries/return_value")
    assert (xcom["value"]["responder"], xcom["value"]["channel"]) == (ALICE, "email")
    print(f"link confirmed -> downstream task queued or running: {downstream:.2f} s")  # the benchmark figure
