"""Replies to a question email, read into answer candidates: what each mail client sends, and what we read.

The messages are raw bytes as Gmail, Outlook and Apple Mail send them (structure, headers and
quote blocks as those clients write them), or built with :class:`email.message.EmailMessage`.
"""

from __future__ import annotations

import base64
import contextlib
import quopri
import unicodedata
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_alerter.alerters.answers import AskOptions, read_reply
from airflow_alerter.alerters.email_replies import (
    MAX_REPLY_BYTES,
    MAX_REPLY_PARTS,
    Reply,
    parse_reply,
    question_tag,
    reply_text,
)
from airflow_alerter.exceptions import ReplyUnreadable

QUESTION_ID = "3f9a1c2b7d4e"
QUESTION_MESSAGE_ID = "q-3f9a1c2b7d4e@alerts.example.com"
SUBJECT = f"[Airflow] Deploy model v7? [ref:{QUESTION_ID}]"


def _mail(body: str | bytes = "Approve", *headers: str, content_type: str = "text/plain; charset=utf-8",
          transfer_encoding: str = "8bit") -> bytes:
    """A single-part reply as a plain mail client sends it; ``headers`` ("Name: value") come first, on top."""
    lines = [
        *headers,
        "From: Alice Example <alice@example.com>",
        "To: Airflow Alerter <alerts@alerts.example.com>",
        f"Subject: Re: {SUBJECT}",
        "Date: Thu, 3 Dec 2026 14:05:11 +0100",
        "Message-ID: <reply-1@mail.example.com>",
        f"In-Reply-To: <{QUESTION_MESSAGE_ID}>",
        "MIME-Version: 1.0",
        f"Content-Type: {content_type}",
        f"Content-Transfer-Encoding: {transfer_encoding}",
    ]
    names = {line.split(":", 1)[0].lower() for line in headers}
    kept = [line for index, line in enumerate(lines)
            if index < len(headers) or line.split(":", 1)[0].lower() not in names]
    payload = body.encode() if isinstance(body, str) else body
    return "\r\n".join(kept).encode() + b"\r\n\r\n" + payload.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _html_part_alone(raw: bytes) -> EmailMessage:
    """The reply's text/html part as a message of its own: what an HTML-only client would have sent."""
    part = message_from_bytes(raw, policy=default_policy).get_body(preferencelist=("html",))
    assert part is not None
    return message_from_bytes(part.as_bytes(), policy=default_policy)


# --- what real clients send -----------------------------------------------------------------------

GMAIL_REPLY = b"""\
Delivered-To: alerts@alerts.example.com
Authentication-Results: mx.alerts.example.com; dkim=pass header.i=@example.com header.s=20230601 header.b=Xq1;
       spf=pass (mx.alerts.example.com: domain of alice@example.com designates 209.85.220.41 as permitted sender)
       smtp.mailfrom=alice@example.com; dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=example.com
MIME-Version: 1.0
References: <q-3f9a1c2b7d4e@alerts.example.com>
In-Reply-To: <q-3f9a1c2b7d4e@alerts.example.com>
From: Alice Example <alice@example.com>
Date: Thu, 3 Dec 2026 14:05:11 +0100
Message-ID: <CAF7kq=0Zf1x+example@mail.gmail.com>
Subject: Re: [Airflow] Deploy model v7? [ref:3f9a1c2b7d4e]
To: Airflow Alerter <alerts@alerts.example.com>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

--000000000000a1b2c3d4e5f60718
Content-Type: text/plain; charset="UTF-8"

Approve

On Thu, 3 Dec 2026 at 14:02, Airflow Alerter <alerts@alerts.example.com>
wrote:

> Deploy model v7?
>
> Reply "approve" or "reject".
>

--000000000000a1b2c3d4e5f60718
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">Approve</div><br><div class=3D"gmail_quote"><div dir=3D"lt=
r" class=3D"gmail_attr">On Thu, 3 Dec 2026 at 14:02, Airflow Alerter &lt;<a=
 href=3D"mailto:alerts@alerts.example.com">alerts@alerts.example.com</a>&gt=
; wrote:<br></div><blockquote class=3D"gmail_quote" style=3D"margin:0px 0px=
 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">Deploy =
model v7?<br>Reply &quot;approve&quot; or &quot;reject&quot;.</blockquote><=
/div>

--000000000000a1b2c3d4e5f60718--
""".replace(b"\n", b"\r\n")

OUTLOOK_REPLY = b"""\
From: Bob Builder <Bob.Builder@Example.com>
To: Airflow Alerter <alerts@alerts.example.com>
Subject: RE: [Airflow] Deploy model v7? [ref:3f9a1c2b7d4e]
Thread-Topic: [Airflow] Deploy model v7? [ref:3f9a1c2b7d4e]
Thread-Index: AQHbRkVxk0vT1jv0hUeh2yE8vI1kHA==
Date: Thu, 3 Dec 2026 13:10:42 +0000
Message-ID: <AM0PR01MB1234ABCD5678EF@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>
References: <q-3f9a1c2b7d4e@alerts.example.com>
In-Reply-To: <q-3f9a1c2b7d4e@alerts.example.com>
Accept-Language: en-US
Content-Language: en-US
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
Content-Type: multipart/alternative;
\tboundary="_000_AM0PR01MB1234ABCD5678EFAM0PR01MB1234eurp_"
MIME-Version: 1.0

--_000_AM0PR01MB1234ABCD5678EFAM0PR01MB1234eurp_
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Approve - checked the metrics.

From: Airflow Alerter <alerts@alerts.example.com>
Sent: Thursday, December 3, 2026 2:02 PM
To: Bob Builder <Bob.Builder@Example.com>
Subject: [Airflow] Deploy model v7? [ref:3f9a1c2b7d4e]

Deploy model v7?
Reply "approve" or "reject".

--_000_AM0PR01MB1234ABCD5678EFAM0PR01MB1234eurp_
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><head><meta http-equiv=3D"Content-Type" content=3D"text/html; charset=
=3Dus-ascii"><style type=3D"text/css" style=3D"display:none;"> P {margin-to=
p:0;margin-bottom:0;} </style></head><body dir=3D"ltr"><div class=3D"elemen=
tToProof" style=3D"font-family: Aptos, sans-serif; font-size: 12pt;">Approv=
e - checked the metrics.</div><div id=3D"appendonsend"></div><hr style=3D"d=
isplay:inline-block;width:98%" tabindex=3D"-1"><div id=3D"divRplyFwdMsg" di=
r=3D"ltr"><font face=3D"Calibri, sans-serif" style=3D"font-size:11pt" color=
=3D"#000000"><b>From:</b> Airflow Alerter &lt;alerts@alerts.example.com&gt;=
<br><b>Sent:</b> Thursday, December 3, 2026 2:02 PM<br><b>To:</b> Bob Build=
er &lt;Bob.Builder@Example.com&gt;<br><b>Subject:</b> [Airflow] Deploy mode=
l v7? [ref:3f9a1c2b7d4e]</font><div>&nbsp;</div></div><div>Deploy model v7?=
<br>Reply &quot;approve&quot; or &quot;reject&quot;.</div></body></html>

--_000_AM0PR01MB1234ABCD5678EFAM0PR01MB1234eurp_--
""".replace(b"\n", b"\r\n")

APPLE_MAIL_REPLY = b"""\
From: Carol Ops <carol@example.com>
Content-Type: multipart/alternative;
\tboundary="Apple-Mail=_6A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9"
Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.300.87.4.3\\))
Subject: Re: [Airflow] Deploy model v7? [ref:3f9a1c2b7d4e]
Date: Thu, 3 Dec 2026 14:06:00 +0100
References: <q-3f9a1c2b7d4e@alerts.example.com>
To: Airflow Alerter <alerts@alerts.example.com>
In-Reply-To: <q-3f9a1c2b7d4e@alerts.example.com>
Message-Id: <5D1E7A3C-0B9F-4C2D-9E8A-1F2B3C4D5E6F@example.com>
X-Mailer: Apple Mail (2.3826.300.87.4.3)


--Apple-Mail=_6A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
\tcharset=us-ascii

LGTM

> On 3 Dec 2026, at 14:02, Airflow Alerter <alerts@alerts.example.com> wrote:
>\x20
> Deploy model v7?
> Reply "approve" or "reject".


--Apple-Mail=_6A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9
Content-Transfer-Encoding: 7bit
Content-Type: text/html;
\tcharset=us-ascii

<html><head><meta http-equiv="content-type" content="text/html; charset=us-ascii"></head><body style="overflow-wrap: \
break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">LGTM<br id="lineBreakAtBeginningOfMessage"><div>\
<br><blockquote type="cite"><div>On 3 Dec 2026, at 14:02, Airflow Alerter &lt;alerts@alerts.example.com&gt; wrote:\
</div><br class="Apple-interchange-newline"><div><div>Deploy model v7?</div><div>Reply "approve" or "reject".</div>\
</div></blockquote></div><br></body></html>
--Apple-Mail=_6A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F9--
""".replace(b"\n", b"\r\n")


def test_gmail_reply_reads_the_text_above_its_attribution_wrapped_over_two_lines() -> None:
    reply = parse_reply(GMAIL_REPLY)

    assert (reply.first_line, reply.text) == ("Approve", "Approve")


def test_gmail_html_part_alone_drops_the_gmail_quote_block() -> None:
    assert reply_text(_html_part_alone(GMAIL_REPLY)) == "Approve"


def test_outlook_reply_ends_at_its_from_sent_header_block() -> None:
    reply = parse_reply(OUTLOOK_REPLY)

    assert (reply.first_line, reply.text) == ("Approve - checked the metrics.", "Approve - checked the metrics.")


def test_outlook_html_part_alone_ends_where_the_quoted_message_starts() -> None:
    assert reply_text(_html_part_alone(OUTLOOK_REPLY)) == "Approve - checked the metrics."


def test_apple_mail_reply_skips_its_quoted_attribution_and_question() -> None:
    reply = parse_reply(APPLE_MAIL_REPLY)

    assert (reply.first_line, reply.text, reply.sender) == ("LGTM", "LGTM", "carol@example.com")


def test_apple_mail_html_part_alone_drops_the_cite_blockquote() -> None:
    assert reply_text(_html_part_alone(APPLE_MAIL_REPLY)) == "LGTM"


def test_a_real_clients_reply_names_its_question_by_id_and_by_tag() -> None:
    reply = parse_reply(OUTLOOK_REPLY)

    assert QUESTION_MESSAGE_ID in reply.refers_to and question_tag(QUESTION_ID) in reply.subject_tags


# --- the reply's own text -------------------------------------------------------------------------


def test_a_plain_approve_without_a_quote_is_its_first_line() -> None:
    reply = parse_reply(_mail("Approve\n"))

    assert reply == Reply(sender="alice@example.com", first_line="Approve", refers_to=frozenset({QUESTION_MESSAGE_ID}),
                          subject_tags=frozenset({question_tag(QUESTION_ID)}), authentication="none",
                          automatic=False, text="Approve")


def test_a_negated_reply_keeps_its_words_in_the_first_line() -> None:
    assert parse_reply(_mail("I don't approve\n\n> Deploy model v7?\n")).first_line == "I don't approve"


def test_the_trust_rules_give_no_approval_for_a_negated_first_line() -> None:
    first_line = parse_reply(_mail("I don't approve\n")).first_line

    assert read_reply(first_line, AskOptions()) == (None, True)


def test_a_reply_that_only_quotes_the_question_has_no_first_line() -> None:
    reply = parse_reply(_mail("> Approve?\n"))

    assert (reply.first_line, reply.text) == ("", "")


def test_a_bottom_posted_answer_below_the_quoted_lines_is_read() -> None:
    assert parse_reply(_mail("> Deploy model v7?\n\nApprove\n")).first_line == "Approve"


ATTRIBUTIONS = [
    "On Thu, 3 Dec 2026 at 14:02, Airflow Alerter <alerts@alerts.example.com> wrote:",
    "On Thu, 3 Dec 2026 at 14:02, Airflow Alerter <alerts@alerts.example.com>\nwrote:",
    "On 3 Dec 2026, at 14:02, Airflow Alerter <alerts@alerts.example.com> wrote:",
    "Am Do., 3. Dez. 2026 um 14:02 Uhr schrieb Airflow Alerter <alerts@alerts.example.com>:",
    "Le jeu. 3 déc. 2026 à 14:02, Airflow Alerter <alerts@alerts.example.com> a écrit :",
    "-----Original Message-----",
    "---------- Forwarded message ---------",
    "________________________________",
    "From: Airflow Alerter <alerts@alerts.example.com>\nSent: Thursday, December 3, 2026 2:02 PM",
    "From: Airflow Alerter <alerts@alerts.example.com>\nTo: Alice <alice@example.com>\nDate: 3 Dec 2026",
    "De : Airflow Alerter <alerts@alerts.example.com>\nEnvoyé : jeudi 3 décembre 2026 14:02",
]


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_an_attribution_line_ends_the_replys_own_text(attribution: str) -> None:
    reply = parse_reply(_mail(f"Approve\n\n{attribution}\nDeploy model v7?\nReply approve or reject.\n"))

    assert reply.text == "Approve"


@pytest.mark.parametrize("attribution", ATTRIBUTIONS)
def test_text_below_an_attribution_is_never_read_as_the_answer(attribution: str) -> None:
    assert parse_reply(_mail(f"{attribution}\nApprove\n")).first_line == ""


def test_a_line_that_only_opens_like_an_attribution_is_the_replys_own_text() -> None:
    assert parse_reply(_mail("On it: approve\nthe metrics look fine\n")).text == "On it: approve\nthe metrics look fine"


@pytest.mark.parametrize("delimiter", ["-- ", "--"])
def test_a_signature_after_the_delimiter_is_dropped(delimiter: str) -> None:
    reply = parse_reply(_mail(f"Approve\n{delimiter}\nAlice Example\nData platform, not on call\n"))

    assert reply.text == "Approve"


def test_a_format_flowed_paragraph_is_one_line_as_its_sender_saw_it() -> None:
    raw = _mail("Approve \nnot yet, wait for the canary\n", content_type="text/plain; charset=utf-8; format=flowed")

    assert parse_reply(raw).first_line == "Approve not yet, wait for the canary"


def test_format_flowed_with_delsp_joins_without_the_soft_break_space() -> None:
    raw = _mail("Appro \nve\n", content_type="text/plain; charset=utf-8; format=flowed; delsp=yes")

    assert parse_reply(raw).first_line == "Approve"


def test_invisible_characters_are_removed_so_the_rules_read_what_a_reader_sees() -> None:
    reply = parse_reply(_mail("\u200bapprove, n\u200bo\u200dt yet\u2060 \ufeff\u202e\n"))

    assert reply.first_line == "approve, not yet"


def test_every_unicode_format_character_is_removed() -> None:
    format_chars = "".join(chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf")

    assert parse_reply(_mail(f"ok{format_chars}\n")).first_line == "ok"


def test_the_text_is_nfkc_normalised() -> None:
    assert parse_reply(_mail("ａｐｐｒｏｖｅ\u00a0ﬁne\n")).first_line == "approve fine"


def test_a_unicode_line_separator_is_a_space_not_a_new_line() -> None:
    assert parse_reply(_mail("Approve\u2028not yet\n")).first_line == "Approve not yet"


# --- HTML -----------------------------------------------------------------------------------------

HTML_ONLY = """\
<html><head><title>Re: Deploy</title><style>div { color: red }</style></head>
<body><script>document.write("approve")</script>
<div>Approve<br>checked the
  dashboards</div><p>thanks</p>
<blockquote>Deploy model v7?</blockquote>
</body></html>
"""


def test_an_html_only_reply_becomes_its_text_without_head_style_script_or_quote() -> None:
    reply = parse_reply(_mail(HTML_ONLY, content_type="text/html; charset=utf-8"))

    assert reply.text == "Approve\nchecked the dashboards\n\nthanks"


def test_html_white_space_collapses_as_a_browser_shows_it() -> None:
    raw = _mail("<p>Approve\n   not yet</p>", content_type="text/html; charset=utf-8")

    assert parse_reply(raw).first_line == "Approve not yet"


def test_an_unclosed_head_ends_where_the_body_starts() -> None:
    raw = _mail("<html><head><title>Re</title><body>Approve</body></html>", content_type="text/html")

    assert parse_reply(raw).first_line == "Approve"


def test_html_entities_are_decoded() -> None:
    raw = _mail("<div>Approve&nbsp;&amp; ship &#x2705;</div>", content_type="text/html")

    assert parse_reply(raw).first_line == "Approve & ship ✅"


def test_a_blank_plain_part_falls_back_to_the_html_part() -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message.set_content("\n")
    message.add_alternative("<div>Approve</div>", subtype="html")

    assert parse_reply(message.as_bytes()).first_line == "Approve"


def test_html_that_the_parser_cannot_read_is_unreadable_not_a_crash() -> None:
    with pytest.raises(ReplyUnreadable, match="HTML could not be read"):
        parse_reply(_mail("<div>Approve</div><![ x [", content_type="text/html"))


# --- encodings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-8"])
@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_an_encoded_reply_is_decoded_in_the_charset_of_its_part(charset: str, encoding: str) -> None:
    text = "Approve, le déploiement peut partir\n\n> Deploy model v7?\n".replace("\n", "\r\n").encode(charset)
    body = base64.encodebytes(text) if encoding == "base64" else quopri.encodestring(text)

    raw = _mail(body, content_type=f"text/plain; charset={charset}", transfer_encoding=encoding)

    assert parse_reply(raw).first_line == "Approve, le déploiement peut partir"


def test_bytes_invalid_in_the_declared_charset_are_replaced_not_raised() -> None:
    raw = _mail(b"Approve \xff\xfe done\n", content_type="text/plain; charset=utf-8")

    assert parse_reply(raw).first_line == "Approve \ufffd\ufffd done"


def test_an_unknown_charset_reads_as_utf8() -> None:
    raw = _mail("Approve ✅\n".encode(), content_type="text/plain; charset=x-no-such-charset")

    assert parse_reply(raw).first_line == "Approve ✅"


def test_a_part_without_a_charset_reads_as_utf8() -> None:
    raw = _mail("Approve — déployé\n".encode(), content_type="text/plain")

    assert parse_reply(raw).first_line == "Approve — déployé"


# --- what is not read -----------------------------------------------------------------------------


def _no_parsing(*args: object, **kwargs: object) -> None:
    raise AssertionError("a reply over the limits was parsed")


def test_a_ten_megabyte_reply_is_refused_without_being_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BytesParser, "parsebytes", _no_parsing)
    raw = _mail(b"Approve\n" + b"x" * 10_000_000)

    with pytest.raises(ReplyUnreadable, match=r"10,000,\d+ bytes; replies over 1,000,000 bytes are not read"):
        parse_reply(raw)


def test_a_reply_of_thousands_of_mime_parts_is_refused_without_being_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BytesParser, "parsebytes", _no_parsing)
    parts = b"--b\r\nContent-Type: image/png\r\n\r\nx\r\n" * 25_000
    raw = _mail(parts + b"--b--\r\n", content_type="multipart/mixed; boundary=b")

    with pytest.raises(ReplyUnreadable, match=f"more than {MAX_REPLY_PARTS} MIME parts"):
        parse_reply(raw)


def test_a_reply_of_exactly_the_limit_is_read() -> None:
    head = _mail(b"Approve\n")
    raw = head + b"x" * (MAX_REPLY_BYTES - len(head))

    assert len(raw) == MAX_REPLY_BYTES and parse_reply(raw).first_line == "Approve"


def test_a_text_attachment_is_not_read_as_the_reply() -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message.set_content("Looking at it now\n")
    message.add_attachment("Approve\n", filename="approve.txt")

    assert parse_reply(message.as_bytes()).text == "Looking at it now"


def test_a_reply_without_a_text_part_is_unreadable_and_the_error_holds_no_content() -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["Subject"] = "Re: secret-subject"
    message.add_attachment(b"secret-bytes", maintype="image", subtype="png", filename="approve.png")

    with pytest.raises(ReplyUnreadable, match="no text/plain or text/html part") as raised:
        parse_reply(message.as_bytes())
    assert isinstance(raised.value, ValueError) and "secret" not in str(raised.value)


# --- who sent it ----------------------------------------------------------------------------------


def test_the_sender_is_the_from_address_lower_cased_without_its_name() -> None:
    assert parse_reply(_mail("Approve", "From: \"Alice (Ops)\" <Alice.Example@Example.COM>")).sender == \
        "alice.example@example.com"


@pytest.mark.parametrize("from_header", [
    "From: alice@example.com, mallory@example.net",
    "From: Alice <alice@example.com>\r\nFrom: Mallory <mallory@example.net>",
    "From: approvers: alice@example.com, bob@example.com;",
    "From: undisclosed-recipients:;",
    "From: Alice <alice@example.com> mallory@example.net",
    "From: alice",
    "From: alice@[192.0.2.1]",
])
def test_a_from_header_without_exactly_one_clean_address_gives_no_sender(from_header: str) -> None:
    assert parse_reply(_mail("Approve", from_header)).sender is None


def test_a_reply_without_from_gives_no_sender() -> None:
    raw = b"Subject: Re: Deploy\r\nContent-Type: text/plain\r\n\r\nApprove\r\n"

    assert parse_reply(raw).sender is None


def test_a_sender_header_naming_someone_else_gives_no_sender() -> None:
    raw = _mail("Approve", "Sender: assistant@example.com", "From: Alice <alice@example.com>")

    assert parse_reply(raw).sender is None


def test_a_sender_header_naming_the_from_address_keeps_the_sender() -> None:
    raw = _mail("Approve", "Sender: ALICE@example.com", "From: Alice <alice@example.com>")

    assert parse_reply(raw).sender == "alice@example.com"


# --- authentication -------------------------------------------------------------------------------


def test_a_forged_from_the_receiving_server_failed_reads_authentication_fail() -> None:
    raw = _mail("Approve", "Authentication-Results: mx.alerts.example.com; dkim=fail (signature did not verify) "
                "header.d=example.com; spf=pass smtp.mailfrom=mallory.example.net; dmarc=fail header.from=example.com",
                "From: Alice Example <alice@example.com>")

    reply = parse_reply(raw)

    assert (reply.sender, reply.authentication) == ("alice@example.com", "fail")


@pytest.mark.parametrize(("topmost", "below", "verdict"), [
    ("dkim=fail header.d=example.com", "dkim=pass header.d=example.com", "fail"),  # a forger's own header below
    ("dkim=pass header.d=example.com", "dkim=fail header.d=example.com", "pass"),  # an earlier hop's verdict
])
def test_only_the_topmost_authentication_results_header_counts(topmost: str, below: str, verdict: str) -> None:
    raw = _mail("Approve", f"Authentication-Results: mx.alerts.example.com; {topmost}",
                "Received: from relay.example.net by mx.alerts.example.com; Thu, 3 Dec 2026 14:05:12 +0100",
                f"Authentication-Results: mx.alerts.example.com; {below}")

    assert parse_reply(raw).authentication == verdict


@pytest.mark.parametrize(("results", "verdict"), [
    ("dkim=pass header.d=example.com; dmarc=pass header.from=example.com", "pass"),
    ("dkim=none; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com", "pass"),
    ("dkim=pass header.d=example.com; dkim=fail header.d=list.example.net", "fail"),
    ("dkim=permerror (no key for signature) header.d=example.com", "fail"),
    ("dkim=pass header.d=example.com; dmarc=temperror header.from=example.com", "fail"),
    ("DKIM=Fail header.d=example.com", "fail"),
    ("spf=pass smtp.mailfrom=example.com", "none"),
    ("dkim=neutral (no signature) header.d=example.com", "none"),
    ("none", "none"),
    ("spf=fail (dkim=pass; dmarc=pass) smtp.mailfrom=example.net", "none"),
    ('dkim=fail header.i="dkim=pass;dmarc=pass"', "fail"),
    ("spf=pass smtp.mailfrom=dmarc=pass@example.net", "none"),
])
def test_the_authentication_verdict_reads_dkim_and_dmarc_results_only(results: str, verdict: str) -> None:
    raw = _mail("Approve", f"Authentication-Results: mx.alerts.example.com; {results}")

    assert parse_reply(raw).authentication == verdict


def test_a_reply_without_authentication_results_is_none() -> None:
    assert parse_reply(_mail("Approve")).authentication == "none"


def test_with_an_authserv_id_a_topmost_header_from_another_server_vouches_for_nothing() -> None:
    raw = _mail("Approve", "Authentication-Results: mx.forger.example.net; dkim=pass; dmarc=pass")

    assert parse_reply(raw).authentication == "pass"
    assert parse_reply(raw, authserv_id="mx.alerts.example.com").authentication == "none"
    assert parse_reply(raw, authserv_id="MX.Forger.Example.NET").authentication == "pass"


# --- machines -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "Auto-Submitted: auto-replied",
    "Auto-Submitted: Auto-Generated; owner-email=\"it@example.com\"",
    "Precedence: bulk",
    "Precedence: junk",
    "Precedence: list",
    "Precedence: auto_reply",
    "X-Autoreply: yes",
    "X-Autorespond: Out of office",
])
def test_an_auto_reply_or_bulk_mail_is_automatic(header: str) -> None:
    assert parse_reply(_mail("Approve - I am out of office until Monday", header)).automatic is True


def test_auto_submitted_no_is_a_person() -> None:
    assert parse_reply(_mail("Approve", "Auto-Submitted: no")).automatic is False


def test_a_delivery_status_report_is_automatic() -> None:
    report = b"""\
From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com. I'm sorry to have to inform you that your message could not be
delivered. ok

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Final-Recipient: rfc822; nobody@example.com
Action: failed
Status: 5.1.1

--B1--
""".replace(b"\n", b"\r\n")

    assert parse_reply(report).automatic is True


# --- which question -------------------------------------------------------------------------------


def test_every_id_in_in_reply_to_and_references_is_read_without_brackets() -> None:
    raw = _mail("Approve", "In-Reply-To: <q-2@alerts.example.com>",
                "References: <thread-start@example.com> <q-1@alerts.example.com>\r\n\t<q-2@alerts.example.com>")

    assert parse_reply(raw).refers_to == frozenset({"thread-start@example.com", "q-1@alerts.example.com",
                                                    "q-2@alerts.example.com"})


def test_a_question_tag_is_found_behind_reply_and_forward_prefixes() -> None:
    raw = _mail("Approve", "Subject: Re: Fwd: [Airflow] Deploy? [ref:abc123]")

    assert parse_reply(raw).subject_tags == frozenset({"[ref:abc123]"})


def test_several_question_tags_in_one_subject_are_all_found() -> None:
    raw = _mail("Approve", "Subject: Re: [ref:abc123] and [REF:def-456] [ref:] [ref:bad id]")

    assert parse_reply(raw).subject_tags == frozenset({"[ref:abc123]", "[ref:def-456]"})


def test_a_question_tag_in_an_encoded_subject_is_found() -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["Subject"] = "Re: [Airflow] Déployer le modèle ? [ref:abc123]"
    message.set_content("Approve")

    assert b"=?utf-8?" in message.as_bytes() and parse_reply(message.as_bytes()).subject_tags == {"[ref:abc123]"}


def test_question_tag_formats_the_id() -> None:
    assert question_tag("3f9a1c2b7d4e") == "[ref:3f9a1c2b7d4e]"


@pytest.mark.parametrize("question_id", ["", "a]b", "a\r\nBcc: x@example.com", "a b", "-abc", "x" * 65])
def test_question_tag_refuses_an_id_it_could_not_read_back(question_id: str) -> None:
    with pytest.raises(ValueError, match="question_id"):
        question_tag(question_id)


@settings(max_examples=200, deadline=None)
@given(question_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"), prefix=st.sampled_from(["Re:", "RE: Fwd:"]))
def test_every_tag_question_tag_writes_is_found_in_a_reply_subject(question_id: str, prefix: str) -> None:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["Subject"] = f"{prefix} [Airflow] Deploy? {question_tag(question_id)}"
    message.set_content("Approve")

    assert question_tag(question_id) in parse_reply(message.as_bytes()).subject_tags


# --- any bytes at all -----------------------------------------------------------------------------

_HEADER_NAMES = ["From", "Sender", "Subject", "References", "In-Reply-To", "Authentication-Results",
                 "Auto-Submitted", "Precedence", "Content-Type", "Content-Transfer-Encoding",
                 "Content-Disposition", "MIME-Version"]
_TRICKY_VALUES = [
    b"multipart/alternative; boundary=b", b"multipart/report; boundary=b", b"text/html; charset=idna",
    b"text/plain; charset=rot13", b"text/plain; format=flowed; delsp=yes", b"text/plain; charset*=utf-8''%ff",
    b"base64", b"quoted-printable", b"x-uuencode", b"attachment", b"=?utf-8?b?####?=", b"=?x-bad?q?a?=",
    b"a@b, c@d", b"undisclosed:;", b'"\\', b"<a@b> (", b"(((", b"\xff\xfe<a@b>", b"mx; dkim=(; dmarc=\"",
]
#: the pieces of address, parameter and encoded-word syntax the header parsers trip over
_SYNTAX = ["<", ">", "@", '"', "\\", "(", ")", ",", ";", ":", "[", "]", "=", "?", ".", " ", "\t", "a", "\xff", "\x00",
           "=?utf-8?q?", "=?utf-8?b?", "?=", "=?x?q?", "\r\n ", "*", "'", "%ff", "''"]
_HEADER_VALUE = st.one_of(
    st.sampled_from(_TRICKY_VALUES),
    st.binary(max_size=80),
    st.lists(st.sampled_from(_SYNTAX), max_size=25).map(lambda pieces: "".join(pieces).encode()),
)
_HEADER = st.builds(lambda name, value: name.encode() + b": " + value, st.sampled_from(_HEADER_NAMES), _HEADER_VALUE)
_BODY = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.sampled_from([b"--b", b"--b--", b"Content-Type: text/html", b"Content-Type: text/plain",
                              b"<![ x [", b"<blockquote>", b"> quoted", b"-- ", b"approve", b"", b"=\xff"]),
             max_size=30).map(b"\r\n".join),
)
_MESSAGE = st.builds(lambda headers, body: b"\r\n".join(headers) + b"\r\n\r\n" + body, st.lists(_HEADER, max_size=8),
                     _BODY)


def _reads_or_refuses(raw: bytes) -> None:
    with contextlib.suppress(ReplyUnreadable):
        parse_reply(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=4000))
def test_arbitrary_bytes_give_a_reply_or_reply_unreadable_and_nothing_else(raw: bytes) -> None:
    _reads_or_refuses(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_MESSAGE)
def test_arbitrary_header_shaped_messages_give_a_reply_or_reply_unreadable_and_nothing_else(raw: bytes) -> None:
    _reads_or_refuses(raw)


_PARSED_HEADER = st.builds(
    lambda start, value: f"{start}{value}".encode(),
    st.sampled_from(["From: ", "Sender: ", "Subject: ", "Content-Type: text/plain; charset=",
                     "Content-Type: multipart/mixed; boundary=", "Content-Disposition: inline; filename="]),
    st.lists(st.sampled_from(_SYNTAX), min_size=1, max_size=25).map("".join),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_PARSED_HEADER)
def test_malformed_headers_the_standard_library_parses_give_a_reply_or_reply_unreadable(header: bytes) -> None:
    """The standard library raises IndexError, AttributeError, TypeError … on some of these (see _PARSER_ERRORS)."""
    _reads_or_refuses(header + b"\r\n\r\nApprove\r\n")
