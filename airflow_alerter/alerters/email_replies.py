"""Replies to a question email, read into the facts the answer rules need: pure, standard library only.

The ``smtp_email`` flavor asks by email and a person answers by replying. An IMAP client fetches
each raw reply; :func:`parse_reply` turns its bytes into a :class:`Reply`: who sent it, the first
line of what they wrote, which question it answers, whether the receiving server vouches for the
sender, and whether a machine wrote it. Nothing here decides: :mod:`airflow_alerter.alerters.answers`
does, with the same rules as for chat replies. Where a reply could be read two ways, this module
takes the reading that yields fewer answers: a gate that waits can be answered again, a gate opened
by a misread reply cannot be closed.

The reply's own text (:func:`reply_text`)
------------------------------------------
The text/plain part is read; a reply without one (or with a blank one) is read from its text/html
part, converted to the text a reader sees: ``<blockquote>``, ``<style>``, ``<script>`` and
``<head>`` are dropped, ``<br>``, ``<p>``, ``<div>`` and other blocks break lines, and white space
inside the markup collapses to one space as a browser shows it (so ``<p>Approve\\nnot yet</p>`` is
one line, "Approve not yet", not an approval followed by a second line). The quote blocks of
Gmail (``gmail_quote``, ``gmail_attr``), Outlook (``appendonsend``, ``divRplyFwdMsg``), Yahoo and
Thunderbird end the own text where they start.

Then, line by line (a ``format=flowed`` part is first rejoined into the lines its sender saw):

- a line starting with ``>`` (after any indentation) is quoted and skipped; text after it is still
  read, so a bottom-posted "> Approve?" / "Approve" reads "Approve";
- an attribution line ends the own text: "On Tue, 3 Dec 2026 at 14:02, Alerter <a@b> wrote:",
  also wrapped over two lines, and its German, French, Spanish, Dutch, Italian, Portuguese and
  Swedish forms ("Am … schrieb …:", "Le … a écrit :" …); "-----Original Message-----" (and
  "---------- Forwarded message ---------"); a line of ten or more underscores (Outlook's
  "________________________________"); Outlook's header block, a "From:" line followed within
  three lines by "Sent:" or "Date:" (or their translations). A bottom-posted answer below an
  attribution is therefore not read: the gate waits rather than guess where a quote ends;
- the signature delimiter "-- " (also without its trailing space) ends the own text.

A reply that only quotes the question ("> Approve?") has no own text: ``first_line`` is "".

Unicode: the text is decoded with the charset its part declares (UTF-8 when it declares none or
one Python does not know), undecodable bytes become U+FFFD, never an error. Invisible characters
(Unicode's format characters: zero-width spaces and joiners, bidi controls, soft hyphens; and
control characters) are removed, other line and paragraph separators become spaces, and the text
is NFKC-normalised: what the rules read is what a reader sees, so "approve, n\\u200bot yet" holds
the "not" it shows and "ａｐｐｒｏｖｅ" is "approve".

Who sent it (:attr:`Reply.sender`)
----------------------------------
The address of the one From header holding exactly one mailbox, lower-cased; None when From is
missing, repeated, names several or no mailboxes, does not parse cleanly (any defect the standard
library reports), or is not an address the alerter could send to. A Sender header naming another
mailbox than From also gives None: Sender says who actually sent the mail (a delegate, a list),
and an answer must not be credited to a person who did not write it. A From header is easy to
forge; :attr:`Reply.authentication` is what says whether to believe it.

Authentication (:attr:`Reply.authentication`)
---------------------------------------------
Only the topmost Authentication-Results header counts: the receiving server adds its own on top,
and anything below it came with the message, where a forger can write "dkim=pass". Of it, only
``dkim`` and ``dmarc`` results count (they vouch for the From domain; SPF vouches for the envelope
sender only), read from the start of each ``;``-separated result, after comments and quoted
strings are removed (a "dkim=pass" inside a comment or a ``header.i`` value is not a result).

- "fail" when any of them is ``fail``, ``permerror`` or ``temperror``: a signature that could not
  be verified vouches for nobody, whether the record was broken or DNS did not answer (the person
  can answer again; a forger must not get a second reading);
- "pass" when one of them is ``pass`` and none failed;
- "none" when there is no such header, or it holds no dkim or dmarc verdict (``none``, ``neutral``).

The verdict means something only if the mailbox's server adds the header. ``parse_reply``'s
``authserv_id`` names that server: the topmost header must carry its id, else the verdict is "none".

Machines (:attr:`Reply.automatic`)
----------------------------------
Out-of-office replies and bounces must never answer a question: Auto-Submitted other than "no"
(RFC 3834), Precedence bulk, junk, list or auto_reply, any X-Autoreply or X-Autorespond header,
or a report (multipart/report: delivery status, read receipts). A Content-Type that cannot be
read counts as automatic.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser
from typing import Any, Literal

from airflow_alerter.exceptions import ReplyUnreadable
from airflow_alerter.validation import email_address

#: a larger reply is not read at all; a human's reply with its quote is a few kilobytes
MAX_REPLY_BYTES = 1_000_000
#: a reply with more lines starting with "--" (the most MIME part boundaries it can hold) is not read
#: either: the standard library parses each part's headers, about 0.25 ms a part, so a megabyte of
#: empty parts would cost seconds; a person's reply has a handful (text, HTML, a few inline images)
MAX_REPLY_PARTS = 500

AuthVerdict = Literal["pass", "fail", "none"]

#: what the standard library's email parser may raise on malformed input instead of recording a
#: defect: fuzzing a From header alone raised IndexError, AttributeError, TypeError and
#: UnboundLocalError (tests/test_email_replies.py keeps the property that found them), so any
#: Exception. It guards calls into the email package only, never code of ours, and each guard says
#: what an unreadable header means (no sender, no tags, automatic, unreadable reply).
_PARSER_ERRORS = (Exception,)


@dataclass(frozen=True)
class Reply:
    """What one reply says and what is known about where it came from (see the module docstring)."""

    #: the single From address, lower-cased; None when missing, unparseable, several, or Sender differs
    sender: str | None
    #: the first non-empty line of the reply's own text; "" when it has none
    first_line: str
    #: every Message-ID in In-Reply-To and References, without the angle brackets
    refers_to: frozenset[str]
    #: every question tag in the Subject, as :func:`question_tag` writes it
    subject_tags: frozenset[str]
    #: the topmost Authentication-Results header's verdict on the sender
    authentication: AuthVerdict
    #: an auto-reply, bulk mail or delivery report: never an answer
    automatic: bool
    #: all of the reply's own text (quotes and signature removed), for rules that read more than the
    #: first line: :func:`~airflow_alerter.alerters.answers.read_reply` on it also sees a negation or a
    #: question on a later line ("Approve" / "actually no, wait"), as it does for a chat reply
    text: str = ""


# --- question tags ---------------------------------------------------------------------------------

_QUESTION_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_TAG = re.compile(rf"\[ref:({_QUESTION_ID})\]", re.IGNORECASE)


def question_tag(question_id: str) -> str:
    """The tag a question email puts in its Subject, ``[ref:<id>]``, which a reply's "Re:" subject keeps.

    Replies lose In-Reply-To more often than their subject (some clients, forwarding rules); the tag
    ties them to the question anyway. Ids are limited to what :func:`parse_reply` reads back (letters,
    digits, ``.``, ``_``, ``-``; up to 64), so every tag written is found, and none breaks a header.
    """
    if not re.fullmatch(_QUESTION_ID, question_id):
        raise ValueError("question_id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit")
    return f"[ref:{question_id}]"


# --- parsing ---------------------------------------------------------------------------------------


def parse_reply(raw: bytes, *, authserv_id: str | None = None) -> Reply:
    """The :class:`Reply` in ``raw``, a message as fetched over IMAP.

    ``authserv_id``: the id the mailbox's server writes in its Authentication-Results ("mx.google.com");
    given, a topmost header from anyone else counts as no header. Raises :class:`ReplyUnreadable` for a
    reply over :data:`MAX_REPLY_BYTES` or :data:`MAX_REPLY_PARTS` (both checked before parsing anything)
    or without a text part.
    """
    if len(raw) > MAX_REPLY_BYTES:
        raise ReplyUnreadable(f"the reply is {len(raw):,} bytes; replies over {MAX_REPLY_BYTES:,} bytes are not read")
    if raw.count(b"\n--") > MAX_REPLY_PARTS:
        raise ReplyUnreadable(f"the reply may hold more than {MAX_REPLY_PARTS} MIME parts; it is not read")
    message = _parse(raw)
    text = reply_text(message)
    return Reply(
        sender=_sender(message),
        first_line=next((line.strip() for line in text.split("\n") if line.strip()), ""),
        refers_to=_refers_to(message),
        subject_tags=_subject_tags(message),
        authentication=_authentication(message, authserv_id),
        automatic=_automatic(message),
        text=text,
    )


def _parse(raw: bytes) -> EmailMessage:
    try:
        return message_from_bytes(raw, policy=default_policy)
    except _PARSER_ERRORS as err:
        raise ReplyUnreadable(f"the reply is not a readable email message ({type(err).__name__})") from None


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _raw_values(message: EmailMessage, name: str) -> list[str]:
    """Every ``name`` header's value as it arrived (unfolded), topmost first.

    For the headers whose syntax is a list of tokens or ids (References, Authentication-Results,
    Auto-Submitted, Precedence): nothing to decode, and never parsed by the standard library, which
    costs seconds for a megabyte of them and can raise on malformed ones.
    """
    wanted = name.lower()
    return [_FOLD.sub("", str(value)) for key, value in message.raw_items() if key.lower() == wanted]


def _single_address(message: EmailMessage, name: str) -> str | None:
    """The one mailbox of the one ``name`` header, lower-cased; None for none, several, or a defect."""
    if len(_raw_values(message, name)) != 1:
        return None
    try:
        header: Any = message[name]
        addresses: tuple[Any, ...] = () if header.defects else header.addresses
        address = str(addresses[0].addr_spec) if len(addresses) == 1 else None
    except _PARSER_ERRORS:
        return None
    try:
        return None if address is None else email_address(address, name).lower()
    except ValueError:
        return None


def _sender(message: EmailMessage) -> str | None:
    """From's address, unless a Sender header names anyone else (see the module docstring)."""
    sender = _single_address(message, "From")
    if "Sender" in message and _single_address(message, "Sender") != sender:
        return None
    return sender


_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def _refers_to(message: EmailMessage) -> frozenset[str]:
    values = [*_raw_values(message, "In-Reply-To"), *_raw_values(message, "References")]
    return frozenset(_MESSAGE_ID.findall(" ".join(values)))


def _subject_tags(message: EmailMessage) -> frozenset[str]:
    """The tags in the (first) Subject, decoded from RFC 2047 and normalised; none when it cannot be read."""
    try:
        subject = str(message.get("Subject", ""))
    except _PARSER_ERRORS:
        return frozenset()
    return frozenset(question_tag(found) for found in _TAG.findall(_visible(subject)))


# --- authentication --------------------------------------------------------------------------------

_COMMENT = re.compile(r"\([^()]*\)")
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
#: a result at the start of a resinfo: "dkim=pass", "dmarc = fail"
_RESULT = re.compile(r"\s*([A-Za-z0-9-]+)\s*=\s*([A-Za-z0-9-]+)")
_VOUCHING_METHODS = frozenset({"dkim", "dmarc"})
_FAILED = frozenset({"fail", "permerror", "temperror"})


def _authentication(message: EmailMessage, authserv_id: str | None) -> AuthVerdict:
    headers = _raw_values(message, "Authentication-Results")
    return _verdict(headers[0], authserv_id) if headers else "none"


def _verdict(header: str, authserv_id: str | None) -> AuthVerdict:
    """One Authentication-Results value's verdict on the From domain (see the module docstring)."""
    text = _QUOTED_STRING.sub('""', header)
    while (uncommented := _COMMENT.sub(" ", text)) != text:
        text = uncommented
    served_by, *results = text.split(";")
    if authserv_id is not None and served_by.lower().split()[:1] != [authserv_id.lower()]:
        return "none"
    found = {match[2].lower() for part in results if (match := _RESULT.match(part))
             and match[1].lower() in _VOUCHING_METHODS}
    if found & _FAILED:
        return "fail"
    return "pass" if "pass" in found else "none"


# --- machines --------------------------------------------------------------------------------------

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def _automatic(message: EmailMessage) -> bool:
    if "X-Autoreply" in message or "X-Autorespond" in message:
        return True
    if any(_first_token(value) != "no" for value in _raw_values(message, "Auto-Submitted")):
        return True
    if any(_first_token(value) in _BULK_PRECEDENCE for value in _raw_values(message, "Precedence")):
        return True
    try:
        return message.get_content_type() == "multipart/report"
    except _PARSER_ERRORS:
        return True


def _first_token(value: str) -> str:
    """``auto-replied`` of ``Auto-Submitted: Auto-Replied; owner-email=…``."""
    return value.split(";", 1)[0].strip().lower()


# --- the reply's text ------------------------------------------------------------------------------


def reply_text(message: EmailMessage) -> str:
    """The reply's own text, normalised, without quotes and signature (see the module docstring).

    Raises :class:`ReplyUnreadable` when the message has no text/plain or text/html body part.
    """
    plain = _body(message, "plain")
    if plain is not None and plain[0].strip():
        text, flowed, delsp = plain
        text = _one_line_break(text)
        return _own_text(_visible(_unflow(text, delsp) if flowed else text))
    html = _body(message, "html")
    if html is not None:
        return _own_text(_visible(_one_line_break(_html_to_text(html[0]))))
    if plain is not None:
        return ""
    raise ReplyUnreadable("the reply has no text/plain or text/html part")


def _body(message: EmailMessage, subtype: str) -> tuple[str, bool, bool] | None:
    """The decoded ``text/<subtype>`` body part, and whether it is format=flowed (and delsp=yes)."""
    try:
        part = message.get_body(preferencelist=(subtype,))
        if part is None:
            return None
        payload = part.get_payload(decode=True)
        charset = part.get_content_charset()
        header = part.get("Content-Type")
        params = dict(header.params) if header is not None else {}
    except _PARSER_ERRORS as err:
        raise ReplyUnreadable(f"the reply's MIME structure could not be read ({type(err).__name__})") from None
    text = _decode(payload if isinstance(payload, bytes) else b"", charset)
    flowed = str(params.get("format", "")).lower() == "flowed"
    return text, flowed, str(params.get("delsp", "")).lower() == "yes"


def _decode(payload: bytes, charset: str | None) -> str:
    """``payload`` in its declared charset; without one, or one Python lacks, as UTF-8 (a superset of ASCII)."""
    try:
        return payload.decode(charset or "utf-8", errors="replace")
    except (LookupError, ValueError):  # an unknown name, or a codec such as idna that raises despite "replace"
        return payload.decode("utf-8", errors="replace")


#: characters that are not printable ASCII or a line feed: each is looked at (see _visible_char)
_UNUSUAL = re.compile(r"[^\x20-\x7e\n]")
_SPACING_CONTROLS = frozenset("\t\x0b\x0c\x1c\x1d\x1e\x85")


def _visible_char(match: re.Match[str]) -> str:
    char = match[0]
    category = unicodedata.category(char)
    if char in _SPACING_CONTROLS or category in ("Zl", "Zp"):
        return " "
    return "" if category in ("Cf", "Cc") else char


def _visible(text: str) -> str:
    """``text`` as a reader sees it: invisible characters removed, separators made spaces, NFKC."""
    return unicodedata.normalize("NFKC", _UNUSUAL.sub(_visible_char, text))


def _one_line_break(text: str) -> str:
    """CRLF and a lone CR (old Mac clients) as LF, the one line break the rules split on."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676: a line ending in a space goes on in the next one; rejoin what the sender's client showed as one."""
    lines: list[list[str]] = []  # each shown line as its pieces, joined once (a long paragraph stays linear)
    previous = ""
    for line in text.split("\n"):
        if previous.endswith(" ") and previous != "-- " and not _quoted(previous) and not _quoted(line):
            lines[-1][-1] = previous[:-1] if delsp else previous
            lines[-1].append(line)
        else:
            lines.append([line])
        previous = line
    return "\n".join("".join(pieces) for pieces in lines)


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


_ATTRIBUTION = re.compile(
    r"(?:on|am|le|el|op|il|em|den)\s.{0,400}?"
    r"\b(?:wrote|schrieb|a écrit|escribió|schreef|ha scritto|escreveu|skrev)\b.{0,200}:",
    re.IGNORECASE,
)
_ATTRIBUTION_OPENER = re.compile(r"(?:on|am|le|el|op|il|em|den)\s", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|message d'origine)\s*-{2,}|_{10,}|--",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"\*?(?:from|de|von|van|da)\s?:", re.IGNORECASE)
_HEADER_SENT = re.compile(r"\*?(?:sent|date|envoyé|gesendet|verzonden|enviado|inviato|data)\s?:", re.IGNORECASE)


def _own_text(text: str) -> str:
    """The lines before the first attribution or signature, without quoted lines."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _ends_own_text(lines, index):
            break
        if not _quoted(line):
            kept.append(line.strip())
    return "\n".join(kept).strip()


def _ends_own_text(lines: list[str], index: int) -> bool:
    """Whether ``lines[index]`` starts what is not the reply's own text: an attribution or a signature."""
    line = lines[index].strip()
    if _SEPARATOR.fullmatch(line) or _ATTRIBUTION.fullmatch(line):
        return True
    following = [nearby.strip() for nearby in lines[index + 1:index + 4]]
    if _ATTRIBUTION_OPENER.match(line) and following and _ATTRIBUTION.fullmatch(f"{line} {following[0]}"):
        return True
    return bool(_HEADER_FROM.match(line)) and any(_HEADER_SENT.match(nearby) for nearby in following)


# --- HTML ------------------------------------------------------------------------------------------

_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "gmail_attr", "gmail_signature",
                            "yahoo_quoted", "moz-cite-prefix"})
_QUOTE_IDS = frozenset({"appendonsend", "divRplyFwdMsg", "x_divRplyFwdMsg"})
_HIDDEN_TAGS = frozenset({"blockquote", "style", "script", "head", "title", "template"})
_LINE_TAGS = frozenset({"br", "p", "div", "li", "tr", "hr", "table", "ul", "ol", "pre",
                        "h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


class _HTMLText(HTMLParser):
    """The text a reader sees in an HTML reply, up to its quote block (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = dict.fromkeys(_HIDDEN_TAGS, 0)
        self._quote_started = False

    @property
    def _showing(self) -> bool:
        return not self._quote_started and not any(self._hidden.values())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if set((attributes.get("class") or "").split()) & _QUOTE_CLASSES or attributes.get("id") in _QUOTE_IDS:
            self._quote_started = True
        if tag == "body":
            self._hidden["head"] = 0  # a <head> left open ends where the body starts, as in a browser
        if tag in _HIDDEN_TAGS:
            self._hidden[tag] += 1
        elif tag in _LINE_TAGS and self._showing:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden[tag] = max(0, self._hidden[tag] - 1)
        elif tag in _LINE_TAGS and self._showing:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._showing:
            self.parts.append(_HTML_SPACE.sub(" ", data))


def _html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser's answer to some malformed markup ("<![ x [")
        raise ReplyUnreadable("the reply's HTML could not be read") from None
    return "".join(parser.parts)
