"""The answer page of an email question: a GET shows, only its form's POST decides, first answer wins.

The real Decider records answers through a local stand-in of Airflow's REST API (variables and HITL
records, 409 on a second answer); the real api-server is in tests/test_email_gate_browser.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from airflow_alerter.alerters.email_links import AnswerLink, confirm_code, sign_link
from airflow_alerter.hooks.hitl import PendingRequest, record_api_path, request_key
from airflow_alerter.models import QuestionHandle
from airflow_alerter.plugins.interactivity import build_app
from airflow_alerter.responder.api import AirflowAPI
from airflow_alerter.responder.decisions import Decider
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.servers.airflow_api import AirflowAPIServer
from tests.servers.smtp import LocalSMTPServer

SECRET = "answer-page-signing-secret-77c2"
register_secret(SECRET)
QUESTION_ID = "5e1f0c9a2b3d4e6f"
RECORD = ("release", "manual__1", "gate", -1)
ALICE, BOB = "alice@example.test", "bob@example.test"
PAGE = "/email/ops_email/answer"


@pytest.fixture
def airflow() -> Iterator[AirflowAPIServer]:
    with AirflowAPIServer() as server:
        yield server


@pytest.fixture
def question(airflow: AirflowAPIServer, airflow_conn: Callable[..., str], smtp_server: LocalSMTPServer
             ) -> PendingRequest:
    """A gate waiting on an email question sent to Alice and Bob."""
    airflow_conn("ops_email", "smtp", host=smtp_server.host, port=smtp_server.port, extra={
        "from_email": "alerts@example.test", "disable_ssl": True, "disable_tls": True, "signing_secret": SECRET})
    handle = QuestionHandle(flavor="smtp_email", channel="email", message_id=QUESTION_ID, extra={
        "recipients": [ALICE, BOB], "message_ids": [f"<q.{QUESTION_ID}.0@example.test>"],
        "subject": "[Airflow] Deploy model v7?", "title": "Deploy <model> v7?", "text": "Accuracy 0.93."})
    pending = PendingRequest(conn_id="ops_email", handle=handle, dag_id=RECORD[0], run_id=RECORD[1],
                             task_id=RECORD[2], map_index=RECORD[3], options=["Approve", "Reject"], gate=True)
    airflow.variables[request_key(*RECORD)] = pending.model_dump_json()
    airflow.add_record(record_api_path(*RECORD))
    return pending


@pytest.fixture
def client(airflow: AirflowAPIServer) -> Iterator[TestClient]:
    with TestClient(build_app(decider=lambda: Decider(AirflowAPI(airflow.url)))) as test_client:
        yield test_client


def token(option: int = 0, recipient: str = ALICE, expires_in: float = 3600, secret: str = SECRET,
          question: str = QUESTION_ID) -> str:
    return sign_link(secret, AnswerLink(question, option, recipient, int(time.time() + expires_in), RECORD))


def answered(airflow: AirflowAPIServer) -> dict[str, Any]:
    return airflow.records[f"/api/v2{record_api_path(*RECORD)}"]


def confirm(client: TestClient, link: str) -> Any:
    """Press the confirmation page's button: POST its form as a browser would."""
    page = client.get(PAGE, params={"t": link})
    fields = dict(re.findall(r'<input type="hidden" name="(\w)" value="([^"]*)"', page.text))
    return client.post(PAGE, data=fields)


def test_a_link_shows_the_question_and_the_answer_it_would_give_and_decides_nothing(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    page = client.get(PAGE, params={"t": token()})

    assert page.status_code == 200
    assert "Deploy &lt;model&gt; v7?" in page.text and "Accuracy 0.93." in page.text
    assert f"Answer <strong>Approve</strong> as <strong>{ALICE}</strong>?" in page.text
    assert '<form method="post"' in page.text and "<script" not in page.text
    assert answered(airflow)["response_received"] is False


def test_the_page_sends_no_referrer_and_is_not_cached_or_framed(client: TestClient, question: PendingRequest) -> None:
    headers = client.get(PAGE, params={"t": token()}).headers

    assert (headers["referrer-policy"], headers["cache-control"], headers["x-frame-options"]) == (
        "no-referrer", "no-store", "DENY")


def test_a_scanner_fetching_every_link_decides_nothing(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    for recipient in (ALICE, BOB):
        for option in (0, 1):
            for _ in range(3):
                assert client.get(PAGE, params={"t": token(option, recipient)}).status_code == 200
            assert client.head(PAGE, params={"t": token(option, recipient)}).status_code in (200, 405)

    assert answered(airflow)["response_received"] is False
    assert request_key(*RECORD) in airflow.variables


def test_pressing_the_button_records_the_answer_with_the_address_and_the_channel(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    result = confirm(client, token())

    assert result.status_code == 200 and "Thank you: your answer is recorded" in result.text
    assert f"approved by {ALICE} on email" in result.text
    record = answered(airflow)
    assert record["chosen_options"] == ["Approve"]
    answer = record["params_input"]["airflow_alerter"]
    assert (answer["status"], answer["responder"], answer["channel"]) == ("approved", ALICE, "email")


def test_the_reject_link_rejects(client: TestClient, question: PendingRequest, airflow: AirflowAPIServer) -> None:
    confirm(client, token(option=1, recipient=BOB))

    assert answered(airflow)["chosen_options"] == ["Reject"]


def test_a_second_click_shows_who_answered_first_and_changes_nothing(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    bobs = token(option=1, recipient=BOB)
    client.get(PAGE, params={"t": bobs})  # Bob opened his confirmation page ...
    confirm(client, token(option=0, recipient=ALICE))  # ... Alice confirmed hers first

    again = client.post(PAGE, data={"t": bobs, "c": confirm_code(SECRET, bobs)})
    shown_later = client.get(PAGE, params={"t": bobs})

    assert answered(airflow)["chosen_options"] == ["Approve"]
    for page in (again, shown_later):
        assert "Already answered" in page.text and f"approved by {ALICE} on email" in page.text


def test_a_link_clicked_after_the_gate_closed_shows_the_decision_from_the_record(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    confirm(client, token())
    del airflow.variables[request_key(*RECORD)]  # the gate finished and forgot its question

    page = client.get(PAGE, params={"t": token(option=1, recipient=BOB)})

    assert "Already answered" in page.text and f"approved by {ALICE} on email" in page.text


def test_a_decision_made_in_airflow_first_is_shown(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    answered(airflow).update(response_received=True, chosen_options=["Reject"], responded_at=time.time(),
                             responded_by_user={"id": "carol", "name": "Carol"}, params_input={})

    page = client.get(PAGE, params={"t": token()})

    assert "Already answered" in page.text and "rejected by Carol on airflow" in page.text
    assert "<form" not in page.text


def test_a_post_without_the_pages_code_is_refused(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    link = token()
    for form in ({"t": link}, {"t": link, "c": "forged"}, {"t": link, "c": confirm_code(SECRET, token(option=1))}):
        page = client.post(PAGE, data=form)
        assert page.status_code == 403 and "Nothing was changed" in page.text

    assert answered(airflow)["response_received"] is False


@pytest.mark.parametrize(("make", "status", "says"), [
    pytest.param(lambda: token()[:-5], 400, "incomplete", id="truncated"),
    pytest.param(lambda: token().replace(".", ".x", 1), 400, "changed, cut short", id="tampered"),
    pytest.param(lambda: token(secret="another-deployment"), 400, "not made by this deployment", id="other key"),
    pytest.param(lambda: token(expires_in=-1), 410, "expired", id="expired"),
    pytest.param(lambda: token(recipient="mallory@example.test"), 403, "not sent to", id="other recipient"),
    pytest.param(lambda: "garbage", 400, "not an answer link", id="garbage"),
    pytest.param(lambda: token(option=7), 400, "option this question does not have", id="unknown option"),
])
def test_a_bad_link_gets_a_page_saying_why_and_changes_nothing(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer,
    make: Callable[[], str], status: int, says: str,
) -> None:
    link = make()
    shown = client.get(PAGE, params={"t": link})
    posted = client.post(PAGE, data={"t": link, "c": confirm_code(SECRET, link)})

    assert shown.status_code == status and says in shown.text and "<form" not in shown.text
    assert posted.status_code in (status, 403)
    assert answered(airflow)["response_received"] is False


def test_a_recipient_who_is_not_an_approver_is_told_so(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    airflow.variables[request_key(*RECORD)] = question.model_copy(update={"approvers": [BOB.upper()]}
                                                                  ).model_dump_json()

    page = confirm(client, token(recipient=ALICE))
    bobs = confirm(client, token(recipient=BOB))

    assert page.status_code == 403 and "not an approver" in page.text
    assert bobs.status_code == 200 and answered(airflow)["params_input"]["airflow_alerter"]["responder"] == BOB


def test_a_question_of_another_deployment_is_not_waiting_here(client: TestClient, question: PendingRequest) -> None:
    page = client.get(PAGE, params={"t": token(question="0000000000000000")})

    assert "No longer waiting for an answer" in page.text and "<form" not in page.text


def test_a_connection_without_a_signing_secret_answers_no_link(
    client: TestClient, question: PendingRequest, airflow_conn: Callable[..., str], smtp_server: LocalSMTPServer
) -> None:
    airflow_conn("ops_email", "smtp", host=smtp_server.host, port=smtp_server.port,
                 extra={"from_email": "alerts@example.test"})

    assert client.get(PAGE, params={"t": token()}).status_code == 404


def test_a_huge_form_is_refused(client: TestClient, question: PendingRequest, airflow: AirflowAPIServer) -> None:
    page = client.post(PAGE, content=b"t=" + b"a" * 200_000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert page.status_code == 413 and answered(airflow)["response_received"] is False


def test_no_page_and_no_log_line_holds_the_secret(
    client: TestClient, question: PendingRequest, read_logs: Callable[[], str]
) -> None:
    pages = [client.get(PAGE, params={"t": link}).text for link in (token(), token(secret="x" * 10), "junk")]
    pages.append(confirm(client, token()).text)

    assert_no_secrets(*pages, read_logs(), json.dumps(dict(parse_qs(urlsplit(PAGE).query))),
                      where="the answer pages or the logs")


def test_a_replayed_post_changes_nothing(
    client: TestClient, question: PendingRequest, airflow: AirflowAPIServer
) -> None:
    link = token(option=1, recipient=BOB)
    form = {"t": link, "c": confirm_code(SECRET, link)}

    first, replayed = client.post(PAGE, data=form), client.post(PAGE, data=form)

    assert "your answer is recorded" in first.text
    assert "Already answered" in replayed.text and f"rejected by {BOB} on email" in replayed.text
    assert answered(airflow)["chosen_options"] == ["Reject"]
