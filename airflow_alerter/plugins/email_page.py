"""The answer page of an email question: a signed link shows what it would decide; only its form's POST decides.

``GET /alerter/email/{conn_id}/answer?t=<token>`` checks the token (:mod:`..alerters.email_links`:
signature with the connection's ``signing_secret``, expiry) and that its recipient was sent the
question, then shows the question, the option and the recipient with one button. Mail security
scanners and link previews fetch every link in an email: a GET never changes anything.

``POST`` of that form (the token and its :func:`~..alerters.email_links.confirm_code`) records the
answer through the Decider like a chat click (first answer wins across email, chat and Airflow), with
responder = the recipient's address and channel = ``email``. Once the question is answered, its links
show who decided and when: read from the Human-in-the-loop record, which outlives the question.

Pages are rendered on the server from an autoescaped template, work without JavaScript, send no
referrer (the token is in the URL), and name no secret. Refusals say why and change nothing:
400 for a malformed or changed link, 410 for an expired one, 403 for a form without its code or a
link made for an address the question was not sent to, 404 for a connection that makes no links.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from airflow_alerter.alerters.email_links import (
    AnswerLink,
    LinkProblem,
    LinkRefused,
    confirm_code,
    confirm_code_matches,
    read_link,
)
from airflow_alerter.alerters.rendering import button_style
from airflow_alerter.responder.decisions import Click, Verdict, decision_text

if TYPE_CHECKING:
    from airflow_alerter.hooks.hitl import PendingRequest
    from airflow_alerter.plugins.interactivity import Interactivity

log = logging.getLogger(__name__)

EMAIL_CHANNEL = "email"
#: the largest form read: a token and a code
MAX_FORM = 16 * 1024
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
}
REFUSED_STATUS = {LinkProblem.MALFORMED: 400, LinkProblem.TAMPERED: 400, LinkProblem.EXPIRED: 410}


@dataclass
class Page:
    heading: str
    message: str = ""
    status: int = 200
    question_title: str = ""
    question_text: str = ""
    form: dict[str, str] | None = field(default=None)

    def response(self) -> HTMLResponse:
        from airflow_alerter.alerters.smtp_email import _templates

        html = _templates().get_template("email/answer_page.html").render(
            heading=self.heading, message=self.message, question_title=self.question_title,
            question_text=self.question_text, form=self.form)
        return HTMLResponse(html, status_code=self.status, headers=HEADERS)


def _question_page(pending: PendingRequest, heading: str, message: str, status: int = 200,
                   form: dict[str, str] | None = None) -> Page:
    extra = pending.handle.extra
    return Page(heading, message, status, str(extra.get("title") or extra.get("subject") or ""),
                str(extra.get("text") or ""), form)


class EmailAnswers:
    """The GET and POST of the answer endpoint, over the plugin's shared Decider."""

    def __init__(self, shared: Interactivity) -> None:
        self.shared = shared

    def _secret(self, conn_id: str) -> str | None:
        from airflow_alerter.plugins.interactivity import _alerter, _key

        return _key(_alerter(conn_id, "smtp_email"), "signing_secret")

    def _link(self, conn_id: str, token: str) -> tuple[AnswerLink, str] | Page:
        """The link ``token`` stands for and the connection's secret that checked it, or the page refusing it."""
        secret = self._secret(conn_id)
        if secret is None:
            log.warning("Email answer link for connection %r refused: no smtp_email connection with the extra "
                        "'signing_secret'", conn_id)
            return Page("This link cannot be answered here", "This deployment makes no answer links for this "
                        "connection.", 404)
        try:
            return read_link(secret, token, self.shared.clock()), secret
        except LinkRefused as err:
            log.info("Email answer link for connection %r refused: %s", conn_id, err.problem.value)
            return Page("This link cannot be used", f"Nothing was changed: {err}.", REFUSED_STATUS[err.problem])

    def _pending(self, conn_id: str, link: AnswerLink) -> PendingRequest | Page:
        """The question the link answers, or the page saying it is decided (and by whom) or gone."""
        found = self.shared.decider.find(conn_id, EMAIL_CHANNEL, link.question)
        if found is None:
            return self._closed(link)
        pending = found[1]
        recipients = {str(address).casefold() for address in pending.handle.extra.get("recipients") or []}
        if link.recipient not in recipients:
            log.info("Email answer link for connection %r refused: made for an address the question was not "
                     "sent to", conn_id)
            return _question_page(pending, "This link is not for this question",
                                  "Nothing was changed: the link was made for an address this question was not "
                                  "sent to.", 403)
        return pending

    def _closed(self, link: AnswerLink) -> Page:
        """What became of a question no longer pending: its record's answer, when the link names the record."""
        from airflow_alerter.alerters.http import HttpError
        from airflow_alerter.hooks.hitl import record_api_path, result_from_event

        if link.record is not None:
            try:
                record = self.shared.decider.api.call("GET", record_api_path(*link.record))
            except HttpError as err:
                log.info("The record of an answered email question cannot be read: %s", err)
                record = {}
            if record.get("response_received"):
                return Page("Already answered", f"This question was {decision_text(result_from_event(record))}. "
                            "Nothing was changed.")
        return Page("No longer waiting for an answer", "This question is not waiting for an answer any more (it "
                    "was answered, closed, or asked again). Nothing was changed.")

    def _answered_already(self, pending: PendingRequest) -> Page | None:
        from airflow_alerter.hooks.hitl import result_from_event

        record = self.shared.decider.api.call("GET", pending.api_path)
        if not record.get("response_received"):
            return None
        return _question_page(pending, "Already answered",
                              f"This question was {decision_text(result_from_event(record))}. Nothing was changed.")

    def show(self, conn_id: str, token: str, action: str) -> Page:
        """GET: the confirmation page (or why there is none). Never decides."""
        checked = self._link(conn_id, token)
        if isinstance(checked, Page):
            return checked
        link, secret = checked
        pending = self._pending(conn_id, link)
        if isinstance(pending, Page):
            return pending
        if not 0 <= link.option < len(pending.options):
            return _question_page(pending, "This link cannot be used", "It names an option this question does not "
                                  "have. Nothing was changed.", 400)
        if (answered := self._answered_already(pending)) is not None:
            return answered
        option = pending.options[link.option]
        form = {"option": option, "recipient": link.recipient, "token": token, "code": confirm_code(secret, token),
                "action": action, "style": button_style(option) or ""}
        return _question_page(pending, f"{option}?", "Please confirm your answer.", form=form)

    def decide(self, conn_id: str, token: str, code: str) -> Page:
        """POST: record the answer when the form came from its confirmation page."""
        checked = self._link(conn_id, token)
        if isinstance(checked, Page):
            return checked
        link, secret = checked
        if not confirm_code_matches(secret, token, code):
            log.info("Email answer for connection %r refused: the form did not come from its confirmation page",
                     conn_id)
            return Page("This answer was not recorded", "The form did not come from this link's confirmation page. "
                        "Open the link from your email again. Nothing was changed.", 403)
        pending = self._pending(conn_id, link)
        if isinstance(pending, Page):
            return pending
        outcome = self.shared.decide(Click(conn_id, EMAIL_CHANNEL, EMAIL_CHANNEL, link.question, link.option,
                                           link.recipient, link.recipient, self.shared.clock()))
        if outcome.verdict is Verdict.RECORDED and outcome.result is not None:
            return _question_page(pending, "Thank you: your answer is recorded",
                                  f"This question was {decision_text(outcome.result)}.")
        if outcome.verdict is Verdict.ALREADY_ANSWERED:
            return _question_page(pending, "Already answered", outcome.notice + " Nothing was changed.")
        if outcome.verdict is Verdict.NOT_PENDING:
            return self._closed(link)
        return _question_page(pending, "This answer was not recorded", outcome.notice, 403)


async def read_form(request: Request) -> dict[str, str]:
    """The POSTed form's first value of each field (up to :data:`MAX_FORM` bytes; more is refused)."""
    from fastapi import HTTPException

    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise HTTPException(413, "form too large")
    fields = parse_qs(body.decode(errors="replace"))
    return {name: values[0] for name, values in fields.items() if values}


async def answer_page(answers: EmailAnswers, request: Request, conn_id: str) -> Response:
    """The endpoint: GET shows, POST decides; both in a thread (the Decider talks to Airflow's API)."""
    action = request.url.path
    try:
        if request.method == "POST":
            form = await read_form(request)
            page = await run_in_threadpool(answers.decide, conn_id, form.get("t", ""), form.get("c", ""))
        else:
            page = await run_in_threadpool(answers.show, conn_id, request.query_params.get("t", ""), action)
    except Exception as err:  # the person gets a page saying so, the log says why; never a secret
        from airflow_alerter.exceptions import AlerterError

        log.warning("Email answer for connection %r failed: %s", conn_id,
                    err if isinstance(err, AlerterError) else type(err).__name__)
        if getattr(err, "status_code", None) == 413:
            raise
        page = Page("Something went wrong", "Your answer could not be recorded just now (the api-server logged "
                    "why). Try the link again, or answer in Airflow.", 503)
    return page.response()


def route_answer_page(app: FastAPI, shared: Interactivity) -> None:
    answers = EmailAnswers(shared)

    @app.api_route("/email/{conn_id}/answer", methods=["GET", "POST"], response_class=HTMLResponse)
    async def email_answer(conn_id: str, request: Request) -> Response:
        return await answer_page(answers, request, conn_id)
