"""Answers by reply: the replies to an email question, read over IMAP and weighed by the trust rules.

One check opens the folder, finds the replies (``In-Reply-To`` / ``References`` naming one of the
question's emails, or its tag in the subject), downloads each up to :data:`~.email_replies.MAX_REPLY_BYTES`
without marking it read, and turns each into a :class:`~.answers.Candidate`: the sender's address, the
time the server received it (a ``Date`` header is whatever the sender wrote), the first line of the
reply's own text. Then the rules of every chat answer apply (:func:`~.answers.weigh`): from an
approver, after the question, a clear intent on the first line.

Not counted, and logged: auto-replies and bounces; a reply whose ``Authentication-Results`` (the
receiving server's) says DKIM or DMARC failed — a forged ``From`` —, and with
``require_authenticated_replies`` any reply the server did not authenticate.

An IMAP server that cannot be reached is not an answer and not an end: the check stays pending (the
links and Airflow's page still work) and the reason is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_alerter.alerters.answers import AskOptions, Candidate, weigh
from airflow_alerter.exceptions import AlerterError
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"


def read_answer(settings: Any, handle: QuestionHandle, options: AskOptions, alerter_address: str,
                require_authenticated: bool, warned: bool = False) -> AskResult:
    """The first valid reply to the question in ``handle``, or pending.

    A mailbox that cannot be read is a warning the first time (``warned`` False), then a debug line:
    a gate checks every interval, and one warning per outage says it.
    """
    from airflow_alerter.alerters.email_replies import question_tag
    from airflow_alerter.alerters.imap import Mailbox

    refs = [str(message_id).strip("<>") for message_id in handle.extra.get("message_ids") or []]
    try:
        with Mailbox(settings) as mailbox:
            candidates = [candidate for uid in mailbox.search_replies(refs, question_tag(handle.message_id))
                          if (candidate := _candidate(mailbox, uid, require_authenticated)) is not None]
    except AlerterError as err:
        log.log(logging.DEBUG if warned else logging.WARNING,
                "Replies to the email question cannot be read (answer links and Airflow still work): %s", err)
        return AskResult(status=AskStatus.PENDING, reason=str(err))
    result = weigh(candidates, options, asked_at=handle.posted_at - 1.0, alerter_user=alerter_address.casefold()).result
    return result.model_copy(update={"channel": EMAIL_CHANNEL}) if result.is_final else result


def _candidate(mailbox: Any, uid: int, require_authenticated: bool) -> Candidate | None:
    """The reply ``uid`` as an answer candidate, or None when it cannot count at all (and why, logged)."""
    from airflow_alerter.alerters.email_replies import MAX_REPLY_BYTES, parse_reply
    from airflow_alerter.exceptions import ReplyUnreadable

    fetched = mailbox.fetch(uid, MAX_REPLY_BYTES)
    if fetched.raw is None:
        log.info("A reply to the email question is not read: %d bytes, more than %d", fetched.size, MAX_REPLY_BYTES)
        return None
    try:
        reply = parse_reply(fetched.raw)
    except ReplyUnreadable as err:
        log.info("A reply to the email question is not read: %s", err)
        return None
    if reply.authentication == "fail" or (require_authenticated and reply.authentication != "pass"):
        log.warning("A reply from %s is not counted: the receiving server %s its sender", reply.sender,
                    "could not authenticate" if reply.authentication == "fail" else "did not authenticate")
        return None
    return Candidate(user=reply.sender, at=fetched.received_at, text=reply.first_line, is_bot=reply.automatic)
