"""Answer links that are safe to put in an email: signed, per recipient, expiring, and never decisive on GET.

A link carries a token naming one answer to one question for one recipient::

    v1.<base64url JSON [question, option, recipient, expires, record]>.<base64url HMAC-SHA256>

The HMAC key is the connection's ``signing_secret``, kept by the deployment (a connection field or a
secrets backend) and never put into an email, a page or a log; each use of it is bound to a purpose
(``link``, ``confirm``), so a confirmation code can never pass for a link. Anyone can read a token
(it names the recipient and the question, both in the email anyway); nobody without the key can make
or change one: a changed byte, a cut-off token, another key or a passed expiry are refused with the
reason, and nothing changes.

A token only *shows* a confirmation page. Mail scanners and link previews fetch every link in an
email, so only the page's POST, carrying :func:`confirm_code` of the token, records the answer
(airflow_alerter.plugins.interactivity). ``record`` names the task instance whose Human-in-the-loop
record holds the answer, so a link clicked after the question closed still shows who decided.

Pure and standard-library only: the flavor signs, the api-server plugin reads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from enum import Enum

from airflow_alerter.exceptions import AlerterError

VERSION = "v1"
#: how long a link lives when the question has no deadline (an ask sensor's default timeout)
DEFAULT_LIFETIME = 7 * 24 * 3600.0
#: the longest token read: a real one is a few hundred characters
MAX_TOKEN_LENGTH = 4096
#: a version, a base64url payload and a base64url SHA-256 (43 characters): anything else is not a token
_SHAPE = re.compile(rf"{VERSION}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{{43}}")


class LinkProblem(str, Enum):
    MALFORMED = "malformed"
    TAMPERED = "tampered"
    EXPIRED = "expired"


class LinkRefused(AlerterError):
    """A token that is not ours, not whole, changed or expired; :attr:`problem` says which."""

    def __init__(self, problem: LinkProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class AnswerLink:
    """One answer (``option``, an index into the question's options) to one question, for one recipient."""

    question: str
    option: int
    recipient: str
    expires_at: int
    #: the task instance's coordinates (dag_id, run_id, task_id, map_index); empty when not recorded in Airflow
    record: tuple[str, str, str, int] | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, data: str) -> bytes:
    return hmac.new(secret.encode(), f"airflow-alerter {purpose}|{data}".encode(), hashlib.sha256).digest()


def sign_link(secret: str, link: AnswerLink) -> str:
    """The token of ``link``, signed with ``secret``."""
    fields = [link.question, link.option, link.recipient, link.expires_at,
              list(link.record) if link.record else None]
    body = f"{VERSION}.{_b64(json.dumps(fields, separators=(',', ':')).encode())}"
    return f"{body}.{_b64(_mac(secret, 'link', body))}"


def read_link(secret: str, token: str, now: float) -> AnswerLink:
    """The link ``token`` stands for, when ``secret`` signed it and it has not expired.

    The signature is checked (in constant time) before anything in the token is believed. The
    connection is the one whose secret checks it (the endpoint's URL names it): a token moved to another
    connection's URL fails there, or names a question that connection never asked.
    """
    if len(token) > MAX_TOKEN_LENGTH or _SHAPE.fullmatch(token) is None:
        raise LinkRefused(LinkProblem.MALFORMED, "this link is incomplete or not an answer link")
    parts = token.split(".")
    body = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_unb64(parts[2]), _mac(secret, "link", body)):
        raise LinkRefused(LinkProblem.TAMPERED, "this link was changed, cut short or not made by this deployment")
    link = _fields(parts[1])
    if now >= link.expires_at:
        raise LinkRefused(LinkProblem.EXPIRED, "this link has expired: the question's deadline has passed")
    return link


def _fields(encoded: str) -> AnswerLink:
    try:
        question, option, recipient, expires_at, record = json.loads(_unb64(encoded))
        return AnswerLink(str(question), int(option), str(recipient), int(expires_at),
                          (str(record[0]), str(record[1]), str(record[2]), int(record[3])) if record else None)
    except (ValueError, TypeError, IndexError, binascii.Error):  # signed by us, so only a bug of ours gets here
        raise LinkRefused(LinkProblem.MALFORMED, "this link's contents cannot be read") from None


def confirm_code(secret: str, token: str) -> str:
    """The code the confirmation page's form sends back with ``token``: only that POST records the answer.

    Tied to the token and the key, so a form posted from elsewhere, or with another link's code, is refused.
    """
    return _b64(_mac(secret, "confirm", token))


def confirm_code_matches(secret: str, token: str, code: str) -> bool:
    return hmac.compare_digest(code.encode(), confirm_code(secret, token).encode())
