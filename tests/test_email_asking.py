"""smtp_email asks: one email per recipient with answer links of their own, a tag to match replies, the outcome
in the thread."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_alerter import AlerterMessage, SMTPEmailAlerter
from airflow_alerter.alerters.email_links import read_link
from airflow_alerter.models import AskResult, AskStatus
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.plugins.smtp import alerter_config
from tests.servers.smtp import LocalSMTPServer

LINK_SECRET = "email-question-signing-secret-5d1e"
register_secret(LINK_SECRET)
ANSWER_URL = "https://airflow.example.test/alerter/email/ops_email/answer"
RECIPIENTS = ["alice@example.test", "Bob@Example.test"]
QUESTION = AlerterMessage(title="Deploy model v7?", body="Accuracy 0.93 on the holdout set.",
                          metadata={"dag_id": "release", "task_id": "gate"})
ASKING = {"buttons": ["Approve", "Reject"], "answer_url": ANSWER_URL, "answer_until": time.time() + 3600,
          "record": ("release", "manual__1", "gate", -1), "view_url": "https://airflow.example.test/required"}


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value or "" for name, value in attrs if tag == "a" and name == "href"]


def links_in(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return [href for href in parser.hrefs if href.startswith(ANSWER_URL)]


def asker(server: LocalSMTPServer, **overrides: Any) -> SMTPEmailAlerter:
    return SMTPEmailAlerter(alerter_config(server, recipient_email=RECIPIENTS,
                                           signing_secret=LINK_SECRET, **overrides))


def test_smtp_email_can_ask() -> None:
    assert SMTPEmailAlerter.can_ask()


def test_each_recipient_gets_the_question_with_answer_links_of_their_own(smtp_server: LocalSMTPServer) -> None:
    handle = asker(smtp_server).send_question(QUESTION, ASKING)

    assert [received.rcpt_tos for received in smtp_server.received] == [[RECIPIENTS[0]], [RECIPIENTS[1]]]
    for received, recipient in zip(smtp_server.received, RECIPIENTS, strict=True):
        links = links_in(received.part("html") or "")
        answers = [read_link(LINK_SECRET, parse_qs(urlsplit(url).query)["t"][0], time.time()) for url in links]
        assert [(a.question, a.option, a.recipient, a.record) for a in answers] == [
            (handle.message_id, 0, recipient.casefold(), ASKING["record"]),
            (handle.message_id, 1, recipient.casefold(), ASKING["record"])]
        assert all(url in (received.part("plain") or "") for url in links)  # the text part has them too


def test_the_question_email_names_its_tag_and_how_to_reply(smtp_server: LocalSMTPServer) -> None:
    handle = asker(smtp_server).send_question(QUESTION, ASKING)

    email = smtp_server.received[0].message
    assert email["Subject"] == f"[Airflow] Deploy model v7? [ref:{handle.message_id}]"
    assert email["Message-ID"] == handle.extra["message_ids"][0]
    text = smtp_server.received[0].part("plain") or ""
    assert "reply to this email with “approve” or “decline” as the first line" in text
    assert "https://airflow.example.test/required" in text


def test_the_question_email_holds_no_secret(smtp_server: LocalSMTPServer) -> None:
    handle = asker(smtp_server).send_question(QUESTION, ASKING)

    assert_no_secrets(*(received.raw.decode(errors="replace") for received in smtp_server.received),
                      handle.model_dump_json(), where="the question emails or the stored handle")


def test_without_a_signing_secret_the_question_has_no_links_and_is_still_asked(
    smtp_server: LocalSMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    SMTPEmailAlerter(alerter_config(smtp_server, recipient_email=RECIPIENTS)).send_question(QUESTION, ASKING)

    assert len(smtp_server.received) == 2
    assert links_in(smtp_server.received[0].part("html") or "") == []
    assert "no extra 'signing_secret'" in caplog.text


def test_answer_rules_default_to_the_recipients_in_any_case(smtp_server: LocalSMTPServer) -> None:
    assert asker(smtp_server).ask_options(None).approvers == ["alice@example.test", "bob@example.test"]


def test_the_outcome_is_mailed_to_every_recipient_in_the_question_thread(smtp_server: LocalSMTPServer) -> None:
    alerter = asker(smtp_server)
    handle = alerter.send_question(QUESTION, ASKING)

    alerter.conclude(handle, AskResult(status=AskStatus.APPROVED, responder="alice@example.test", channel="email",
                                       answered_at=time.mktime((2026, 12, 3, 14, 2, 0, 0, 0, 0)) - time.timezone))

    outcome = smtp_server.received[-1]
    assert outcome.rcpt_tos == RECIPIENTS
    assert outcome.message["In-Reply-To"] == handle.extra["message_ids"][0]
    assert outcome.message["References"].split() == handle.extra["message_ids"]
    assert outcome.message["Subject"] == "Re: [Airflow] Deploy model v7?"
    assert re.search(r"✅ Approved by alice@example.test \(email\) at 14:02 UTC", outcome.part("plain") or "")


def test_those_copied_get_the_question_without_anyones_links(smtp_server: LocalSMTPServer) -> None:
    asker(smtp_server).send_question(QUESTION, {**ASKING, "cc": ["lead@example.test"], "bcc": ["audit@example.test"]})

    copies = [received for received in smtp_server.received if received.rcpt_tos == ["lead@example.test",
                                                                                       "audit@example.test"]]
    assert len(copies) == 1 and links_in(copies[0].part("html") or "") == []
    assert all("lead@example.test" not in received.rcpt_tos for received in smtp_server.received[:2])
