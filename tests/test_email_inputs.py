"""Whatever text a task throws at the email flavor: it arrives intact and escaped, or is refused naming the field."""

from __future__ import annotations

import email
import email.policy
import unicodedata

import markupsafe
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_alerter import AlerterMessage, SMTPEmailAlerter, SMTPEmailAlerterParameters
from tests.plugins.smtp import alerter_config
from tests.servers.smtp import LocalSMTPServer

LINE_BREAKERS = ["\r", "\n", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]

ALERTER = SMTPEmailAlerter({"smtp_server": "localhost", "sender_email": "a@example.com",
                            "recipient_email": "b@example.com"})
# any text a person or a traceback can produce, NUL and lone surrogates aside (they cannot be encoded)
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300)


def _reparsed(message: AlerterMessage) -> email.message.EmailMessage:
    raw = ALERTER.build_email(message).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@settings(max_examples=150, deadline=None)
@given(body=ANY_TEXT)
def test_any_body_arrives_intact_in_the_text_part(body: str) -> None:
    parsed = _reparsed(AlerterMessage(title="t", body=body))

    text = parsed.get_body(("plain",)).get_content()
    assert body.strip().replace("\r\n", "\n").replace("\r", "\n") in text.replace("\r\n", "\n")


MARKUP = st.lists(st.sampled_from(["<script>alert(1)</script>", "<b>", "&amp;", "<!-- x -->", '"', "'", " ", "é"]),
                  min_size=1, max_size=8).map("".join)


@settings(max_examples=150, deadline=None)
@given(body=MARKUP)
def test_markup_in_any_body_arrives_escaped_in_the_html_part(body: str) -> None:
    html = _reparsed(AlerterMessage(title="t", body=body)).get_body(("html",)).get_content()

    assert str(markupsafe.escape(body)) in html
    if "<" in body:
        assert body not in html


@settings(max_examples=300, deadline=None)
@example(title="0𐀀𐀀𐀀𐀀𐀀𐀀𐀀𐀀 \x80 \x80")  # these lost a space between two encoded-words
@example(title="データ パイプライン 失敗 " * 8)
@example(title="𐀀 " * 150)
@given(title=ANY_TEXT.filter(lambda s: not any(breaker in s for breaker in LINE_BREAKERS)))
def test_any_single_line_title_becomes_the_one_subject_header(title: str) -> None:
    readable = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in title).split())
    expected = f"[Airflow] {readable or 'Airflow alert'}"
    parsed = _reparsed(AlerterMessage(title=title))

    assert parsed.get_all("Subject") == [expected if len(expected) <= 200 else expected[:199] + "…"]
    assert parsed.get_all("Bcc") is None


@given(before=ANY_TEXT, after=ANY_TEXT, breaker=st.sampled_from(LINE_BREAKERS))
def test_any_title_with_a_line_break_or_nul_is_refused(before: str, after: str, breaker: str) -> None:
    with pytest.raises(ValueError, match="title must be a single line"):
        AlerterMessage(title=before + breaker + after)


@given(local=st.from_regex(r"[a-z]{1,10}", fullmatch=True), breaker=st.sampled_from(["\r\n", "\n", "\r", "\x00"]))
def test_any_address_with_a_line_break_is_refused_naming_the_field(local: str, breaker: str) -> None:
    with pytest.raises(ValueError, match="cc"):
        SMTPEmailAlerterParameters(cc=[f"{local}@example.com{breaker}Bcc: x@evil.example"])


def test_a_one_megabyte_body_is_delivered_whole(smtp_server: LocalSMTPServer) -> None:
    body = ("All work and no play makes Jack a dull boy. 🚂\n" * 22_000)[:1_000_000]

    assert SMTPEmailAlerter(alerter_config(smtp_server)).post(AlerterMessage(title="big", body=body)) is True

    assert body.strip() in smtp_server.received[0].part("plain").replace("\r\n", "\n")


def test_empty_title_and_body_still_make_a_sensible_email(smtp_server: LocalSMTPServer) -> None:
    assert SMTPEmailAlerter(alerter_config(smtp_server)).post(AlerterMessage()) is True

    assert smtp_server.received[0].message["Subject"] == "[Airflow] Airflow alert"
