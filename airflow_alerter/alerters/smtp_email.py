"""The ``smtp_email`` flavor: ZenML's SMTP Email Alerter, rebuilt on the standard library, and able to ask.

Every email is ``multipart/alternative`` with a plain-text part (always) and an HTML part (when
``include_html``), built with :class:`email.message.EmailMessage`. User text is HTML-escaped by
the jinja2 templates; a caller's own ``html_body`` is the one explicit way to send trusted HTML.

A question goes to each recipient as an email of their own, because its answer links are theirs
(:mod:`.email_links`: signed per question, option and recipient, expiring with the gate). The link
opens a confirmation page in the api-server plugin; only its POST decides. A reply counts too: it
is read over IMAP (:mod:`.imap`, :mod:`.email_replies`), matched by ``In-Reply-To`` / ``References``
or the question's tag in the subject, and held to the trust rules of every chat answer. The outcome
is mailed back in the same thread.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from airflow_alerter.alerters.answers import AnswerRules, AskOptions, keyword_alternatives, resolve_options
from airflow_alerter.alerters.base import (
    AlerterConfigError,
    AlerterDeliveryError,
    BaseAlerter,
    ConnectionFields,
)
from airflow_alerter.alerters.rendering import BLOCK_KEYS, STATUS_ICONS, button_style, facts, hex_colour, is_web_url
from airflow_alerter.alerters.retry import RetryPolicy, retry_limit_field
from airflow_alerter.models import (
    EMPTY_MESSAGE_TITLE,
    AlerterMessage,
    AskResult,
    AskStatus,
    BaseAlerterParameters,
    QuestionHandle,
)
from airflow_alerter.validation import email_address, email_address_list, reject_control_chars

if TYPE_CHECKING:
    import smtplib
    from email.message import EmailMessage

    import jinja2

log = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
MAX_SUBJECT_LENGTH = 200
FACT_LABELS = {"map_index": "Map index", "dag_id": "DAG", "task_id": "Task", "run_id": "Run"}


def _recipients(field: str) -> Any:
    """A validator turning one address, a comma-separated string or a list into a list of addresses."""

    def validate(cls: type[BaseModel], value: Any) -> list[str] | None:
        return None if value is None else email_address_list(value, field)

    return field_validator(field, mode="before")(classmethod(validate))


class SMTPEmailAlerterPayload(BaseModel):
    """Where an alert comes from: ZenML's pipeline/step/stack names plus Airflow's run coordinates."""

    pipeline_name: str | None = None
    step_name: str | None = None
    stack_name: str | None = None
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int | None = None
    try_number: int | None = None
    logical_date: str | None = None
    log_url: str | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> SMTPEmailAlerterPayload:
        known = {name: metadata[name] for name in cls.model_fields if metadata.get(name) not in (None, "")}
        if "logical_date" in known:
            known["logical_date"] = str(known["logical_date"])
        return cls.model_validate(known)

    def facts(self) -> list[tuple[str, str]]:
        return [
            (fact_label(name), str(value))
            for name, value in self.model_dump(exclude={"log_url"}).items()
            if value is not None and not (name == "map_index" and value < 0)
        ]


def fact_label(name: str) -> str:
    """``task_instances`` → "Task instances": how a metadata key reads in the email's table."""
    return FACT_LABELS.get(name, name.replace("_", " ").capitalize())


class SMTPEmailAlerterConfig(BaseModel):
    """What an Airflow connection provides: server, credentials and defaults for every email."""

    model_config = ConfigDict(extra="forbid")

    smtp_server: str
    smtp_port: int | None = Field(default=None, description="587 for starttls, 465 for ssl, 25 for none")
    sender_email: str
    username: str | None = Field(default=None, description="SMTP login; defaults to sender_email")
    password: SecretStr | None = None
    recipient_email: list[str] = Field(default_factory=list)
    security: Security = "starttls"
    timeout: float = Field(default=30.0, gt=0)
    retry_limit: int = retry_limit_field()
    retry_backoff: float = Field(default=1.0, ge=0)
    subject_prefix: str = "[Airflow]"
    include_html: bool = True
    ssl_verify: bool = True
    ssl_ca_file: str | None = Field(default=None, description="CA bundle to trust, e.g. a private mail relay's")
    signing_secret: SecretStr | None = Field(
        default=None, description="the key that signs a question's answer links (HMAC-SHA256); without it, no links")
    imap_host: str | None = Field(default=None, description="where replies are read; defaults to smtp_server")
    imap_port: int = Field(default=993, description="993: implicit TLS; 143: STARTTLS")
    imap_login: str | None = Field(default=None, description="defaults to the SMTP login")
    imap_password: SecretStr | None = Field(default=None, description="defaults to the SMTP password")
    imap_folder: str = "INBOX"
    require_authenticated_replies: bool = Field(
        default=False, description="count a reply only when the receiving server says its DKIM or DMARC passed")

    _check_recipients = _recipients("recipient_email")

    @field_validator("sender_email")
    @classmethod
    def _sender_is_address(cls, value: str) -> str:
        return email_address(value, "sender_email")

    @field_validator("subject_prefix", "smtp_server", "username")
    @classmethod
    def _one_line(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else reject_control_chars(value, info.field_name)

    @property
    def port(self) -> int:
        return self.smtp_port or DEFAULT_PORTS[self.security]


class SMTPEmailAlerterSettings(AnswerRules):
    """Per-task overrides (ZenML's ``SMTPEmailAlerterSettings``) and who may answer with which words."""

    model_config = ConfigDict(extra="forbid")

    recipient_email: list[str] | None = None
    subject_prefix: str | None = None
    include_html: bool | None = None

    _check_recipients = _recipients("recipient_email")

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return None if value is None else reject_control_chars(value, "subject_prefix")


class SMTPEmailAlerterParameters(AnswerRules, BaseAlerterParameters):
    """Per-call overrides; ``html_body`` is trusted HTML sent as given.

    A question's answer links need ``buttons`` (the options), ``answer_url`` (the api-server plugin's
    answer endpoint for this connection) and the connection's ``signing_secret``; ``answer_until``
    (the gate's deadline, epoch seconds) is when they expire, ``record`` the task instance whose
    Human-in-the-loop record holds the answer. The ask sensor sets all four.
    """

    recipient_email: list[str] | None = None
    subject: str | None = None
    html_body: str | None = None
    payload: SMTPEmailAlerterPayload | None = None
    cc: list[str] | None = None
    bcc: list[str] | None = None
    answer_url: str | None = None
    answer_until: float | None = None
    record: tuple[str, str, str, int] | None = None

    @field_validator("answer_url")
    @classmethod
    def _web_answer_url(cls, value: str | None) -> str | None:
        if value is not None and not is_web_url(value):
            raise ValueError("answer_url: must be an http(s) link")
        return value

    _check_recipients = _recipients("recipient_email")
    _check_cc = _recipients("cc")
    _check_bcc = _recipients("bcc")

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return None if value is None else reject_control_chars(value, "subject")


@cache
def _templates() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_alerter", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _readable_line(text: str) -> str:
    """Other control characters become spaces and whitespace runs one space: a subject is read, not parsed.

    Found by a property test: with C1 control characters in a title, Python's header encoder put a
    space between two RFC 2047 encoded-words, where every decoder drops it.
    """
    return " ".join("".join(" " if unicodedata.category(char) == "Cc" else char for char in text).split())


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _classify_smtp_error(err: BaseException) -> float | None:
    """Transient (retry) for dropped or refused connections and 4xx replies; permanent for 5xx and TLS."""
    import smtplib
    import ssl

    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in err.recipients.values()]
        return 0.0 if codes and all(400 <= code < 500 for code in codes) else None
    if isinstance(err, smtplib.SMTPResponseException):
        return 0.0 if 400 <= err.smtp_code < 500 else None
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return 0.0
    if isinstance(err, ssl.SSLError):
        return None
    if isinstance(err, OSError):
        return 0.0
    return None


class SMTPEmailAlerter(BaseAlerter[SMTPEmailAlerterConfig, SMTPEmailAlerterSettings, SMTPEmailAlerterParameters]):
    """Send alerts and ask questions (signed answer links, replies over IMAP) as email through any SMTP server."""

    FLAVOR: ClassVar[str] = "smtp_email"
    CONN_TYPES: ClassVar[tuple[str, ...]] = ("smtp", "email")
    Config = SMTPEmailAlerterConfig
    Settings = SMTPEmailAlerterSettings
    Parameters = SMTPEmailAlerterParameters
    #: the Airflow smtp provider's extras, read with its meaning
    CONNECTION_EXTRAS: ClassVar[frozenset[str]] = frozenset({"from_email", "to", "disable_ssl", "disable_tls"})

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """Read an Airflow ``smtp`` connection with the smtp provider's meaning, or an ``alerter`` one.

        Airflow's ``disable_ssl``/``disable_tls`` extras map onto ``security``: implicit TLS unless
        ``disable_ssl``; then STARTTLS unless ``disable_tls``. Our own field names win when present.
        """
        extra = dict(conn.extra)
        data: dict[str, Any] = {
            key: extra.pop(key) for key in list(extra) if key in cls.Config.model_fields
        }
        if "security" not in data and ("disable_ssl" in extra or conn.conn_type in {"smtp", "email"}):
            no_ssl, no_tls = _truthy(extra.get("disable_ssl", False)), _truthy(extra.get("disable_tls", False))
            data["security"] = ("none" if no_tls else "starttls") if no_ssl else "ssl"
        from_email = extra.get("from_email") or (conn.login if conn.login and "@" in conn.login else None)
        defaults = {"smtp_server": conn.host, "smtp_port": conn.port, "username": conn.login or None,
                    "password": conn.password or None, "sender_email": from_email,
                    "recipient_email": extra.get("to")}
        data.update({key: value for key, value in defaults.items() if key not in data and value is not None})
        return data

    # --- building the email --------------------------------------------------------------------

    def recipients(self, params: SMTPEmailAlerterParameters | None) -> list[str]:
        to: list[str] = self.resolve("recipient_email", params) or []
        if not to:
            raise AlerterConfigError(
                "recipient_email: no recipient configured (set it in the connection, the task settings "
                "or the call's parameters)"
            )
        return to

    def subject(self, message: AlerterMessage, params: SMTPEmailAlerterParameters | None) -> str:
        if params is not None and params.subject:
            subject = params.subject
        else:
            body_lines = (_readable_line(line) for line in message.body.splitlines())
            headline = _readable_line(message.title) or next((line for line in body_lines if line), EMPTY_MESSAGE_TITLE)
            subject = f"{self.resolve('subject_prefix', params) or ''} {headline}".strip()
        subject = _readable_line(reject_control_chars(subject, "subject"))
        return subject if len(subject) <= MAX_SUBJECT_LENGTH else subject[: MAX_SUBJECT_LENGTH - 1] + "…"

    def template_context(self, message: AlerterMessage, params: SMTPEmailAlerterParameters | None) -> dict[str, Any]:
        payload = (params.payload if params is not None and params.payload else None) or (
            SMTPEmailAlerterPayload.from_metadata(message.metadata)
        )
        reserved = BLOCK_KEYS | set(SMTPEmailAlerterPayload.model_fields)
        extra_facts = [(fact_label(key), str(value)) for key, value in facts(message.metadata, reserved)]
        alert = message.alert
        return {
            "title": message.title,
            "subject": self.subject(message, params),
            "body": message.body,
            "facts": payload.facts() + extra_facts,
            "exception": alert.exception,
            "traceback": alert.traceback,
            # the HTML part makes it a link: only a web URL may become one (never javascript: or data:)
            "log_url": next((url for url in (payload.log_url, alert.log_url) if is_web_url(url)), None),
            "accent": hex_colour(alert.kind),
            "sent_from": payload.dag_id and f"DAG {payload.dag_id}",
        }

    def build_email(
        self, message: str | AlerterMessage, params: SMTPEmailAlerterParameters | Mapping[str, Any] | None = None
    ) -> EmailMessage:
        """The complete email for ``message``: what :meth:`deliver` sends, usable for previews."""
        message = AlerterMessage.coerce(message)
        call_params = self.coerce_params(params)
        context = self.template_context(message, call_params)
        return self._compose(context, self.recipients(call_params), call_params)

    def _compose(self, context: Mapping[str, Any], to: Sequence[str], params: SMTPEmailAlerterParameters | None,
                 message_id: str | None = None, thread: Sequence[str] = ()) -> EmailMessage:
        """An email from a template context: to ``to``, as ``message_id``, in the thread of ``thread``'s ids."""
        from email import policy as email_policy
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        # Fold only at RFC 5322's 998-character limit: Python's folding at 78 drops the space between
        # two encoded-words, so a long non-ASCII subject ("データ パイプライン 失敗 …") lost its spaces.
        email = EmailMessage(policy=email_policy.SMTP.clone(max_line_length=998))
        email["Subject"] = context["subject"]
        email["From"] = self.config.sender_email
        email["To"] = ", ".join(to)
        if params is not None and params.cc:
            email["Cc"] = ", ".join(params.cc)
        email["Date"] = formatdate(localtime=True)
        email["Message-ID"] = message_id or make_msgid(domain=self._domain())
        if thread:
            email["In-Reply-To"] = thread[0]
            email["References"] = " ".join(thread)
        email.set_content(_templates().get_template("email/alert.txt").render(context))
        html_body = params.html_body if params is not None else None
        if html_body is not None or self.resolve("include_html", params):
            email.add_alternative(html_body or _templates().get_template("email/alert.html").render(context),
                                  subtype="html")
        return email

    def _domain(self) -> str:
        return self.config.sender_email.rpartition("@")[2]

    # --- asking ----------------------------------------------------------------------------------

    def ask_options(self, params: SMTPEmailAlerterParameters | None) -> AskOptions:
        """The answer rules in force; approvers default to the question's recipients (an inbox is open to anyone)."""
        options = resolve_options(self.resolve, params)
        approvers = options.approvers if options.approvers is not None else self.recipients(params)
        return options.model_copy(update={"approvers": [address.casefold() for address in approvers]})

    def _send_question(self, question: AlerterMessage, params: SMTPEmailAlerterParameters | None) -> QuestionHandle:
        """One email per recipient, each with its own signed answer links; all share the question's tag."""
        import time
        import uuid

        from airflow_alerter.alerters.email_replies import question_tag

        asked_at = time.time()
        question_id = uuid.uuid4().hex[:16]
        to = self.recipients(params)
        options = self.ask_options(params)
        context = self.template_context(question, params)
        subject = context["subject"]
        context = {**context, "subject": f"{subject} {question_tag(question_id)}",
                   "how_to_reply": self._how_to_reply(options), "view_url": options.view_url,
                   # the Required actions link is shown as a link, not also as a fact
                   "facts": [fact for fact in context["facts"] if fact[1] != options.view_url]}
        message_ids = [f"<airflow-alerter.{question_id}.{number}@{self._domain()}>" for number in range(len(to))]
        for recipient, message_id in zip(to, message_ids, strict=True):
            links = self._answer_links(question_id, recipient, params, asked_at)
            self.send(self._compose({**context, "answers": links}, [recipient], None, message_id), [recipient])
        if copies := [*(params.cc or []), *(params.bcc or [])] if params else []:
            # those copied read the question but get no links: a link answers as the recipient it was made for
            self.send(self._compose(context, to, params), copies)
        return QuestionHandle(flavor=self.FLAVOR, channel="email", message_id=question_id, posted_at=asked_at,
                              extra={"recipients": to, "message_ids": message_ids, "subject": subject,
                                     "title": question.title, "text": question.body[:2000]})

    @staticmethod
    def _how_to_reply(options: AskOptions) -> str:
        return (f"Or reply to this email with “{options.approve_keywords[0]}” or “{options.reject_keywords[0]}” "
                f"as the first line{keyword_alternatives(options)}.")

    def _answer_links(self, question_id: str, recipient: str, params: SMTPEmailAlerterParameters | None,
                      asked_at: float) -> list[tuple[str, str, str | None]]:
        """``(option, url, style)`` per option: the recipient's own signed links, or none when links are off.

        Links need the options (``buttons``), the api-server's answer endpoint (``answer_url``) and the
        connection's ``signing_secret``; without the secret the email says how to reply instead.
        """
        from urllib.parse import urlencode

        from airflow_alerter.alerters.email_links import DEFAULT_LIFETIME, AnswerLink, sign_link

        if params is None or not params.buttons or not params.answer_url:
            return []
        if self.config.signing_secret is None:
            log.warning("The email question has no answer links: the connection has no extra 'signing_secret' "
                        "(answers by reply and in Airflow still count)")
            return []
        secret = self.config.signing_secret.get_secret_value()
        expires = int(params.answer_until or asked_at + DEFAULT_LIFETIME)
        links = []
        for index, option in enumerate(params.buttons):
            token = sign_link(secret, AnswerLink(question_id, index, recipient.casefold(), expires, params.record))
            links.append((option, f"{params.answer_url}?{urlencode({'t': token})}", button_style(option)))
        return links

    def _check_answer(self, handle: QuestionHandle, params: SMTPEmailAlerterParameters | None) -> AskResult:
        """One look at the replies to the question in the IMAP folder; pending when replies cannot be read."""
        from airflow_alerter.alerters.email_answers import read_answer

        result = read_answer(self.imap_settings(), handle, self.ask_options(params), self.config.sender_email,
                             self.config.require_authenticated_replies, warned=self._mailbox_failing)
        self._mailbox_failing = result.reason is not None and not result.is_final
        return result

    #: whether the last check could not read the mailbox (its warning is not repeated at every check)
    _mailbox_failing: bool = False

    def imap_settings(self) -> Any:
        """Where replies are read: the ``imap_*`` extras, each defaulting to its SMTP counterpart."""
        from airflow_alerter.alerters.imap import ImapSettings

        config = self.config
        password = config.imap_password or config.password
        return ImapSettings(host=config.imap_host or config.smtp_server, port=config.imap_port,
                            login=config.imap_login or self._login(),
                            password=password.get_secret_value() if password is not None else "",
                            folder=config.imap_folder, timeout=config.timeout, ssl_verify=config.ssl_verify,
                            ssl_ca_file=config.ssl_ca_file)

    def _conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        """Mail the outcome to the question's recipients, in its thread ("Approved by alice@… at 14:02 UTC")."""
        line = outcome_line(result)
        subject = str(handle.extra.get("subject") or "Question")
        context = {"title": line, "subject": f"Re: {subject}", "body": "", "facts": [], "accent": hex_colour(
            "success" if result.approved else "failure" if result.status is AskStatus.REJECTED else None)}
        to = [str(address) for address in handle.extra.get("recipients") or []]
        if not to:
            return
        email = self._compose(context, to, None, thread=[str(m) for m in handle.extra.get("message_ids") or []])
        try:
            self.send(email, to)
        except AlerterDeliveryError as err:  # the decision stands even if the mail cannot tell it
            log.warning("Could not mail the outcome of the email question: %s", err)

    # --- sending ---------------------------------------------------------------------------------

    def _deliver(self, message: AlerterMessage, params: SMTPEmailAlerterParameters | None) -> None:
        email = self.build_email(message, params)
        copies = [*(params.cc or []), *(params.bcc or [])] if params else []
        self.send(email, [*self.recipients(params), *copies])

    def send(self, email: EmailMessage, envelope_recipients: Iterable[str]) -> None:
        """Send a built email, retrying transient failures; raise AlerterDeliveryError saying why."""
        import smtplib

        to = list(dict.fromkeys(envelope_recipients))
        where = self._where()
        policy = RetryPolicy.retrying(self.config.retry_limit, self.config.retry_backoff)
        try:
            refused = policy.call(lambda: self._send_once(email, to), _classify_smtp_error, f"SMTP send via {where}")
        except (smtplib.SMTPException, OSError) as err:
            raise AlerterDeliveryError(self._failure_reason(err, "could not send email via")) from err
        if refused:
            log.warning("SMTP server %s refused some recipients: %s", where, ", ".join(sorted(refused)))

    def test_connection(self) -> tuple[bool, str]:
        """Connect, negotiate TLS, log in and NOOP: proves the connection works without sending mail."""
        import smtplib

        try:
            with self._open() as client:
                self._authenticate(client)
                code, _ = client.noop()
        except (smtplib.SMTPException, OSError) as err:
            return False, self._failure_reason(err, "could not connect to")
        login = f", logged in as {self._login()!r}" if self.config.password is not None else ""
        smtp = f"connected to {self._where()} ({self.config.security}){login}; NOOP answered {code}"
        if not self.reads_replies:
            return True, smtp
        ok, imap = self._test_mailbox()
        return ok, f"{smtp}; {imap}"

    @property
    def reads_replies(self) -> bool:
        """Whether the connection names a mailbox for replies (an ``imap_*`` extra); else only its default is tried."""
        config = self.config
        return any(value is not None for value in (config.imap_host, config.imap_login, config.imap_password))

    def _test_mailbox(self) -> tuple[bool, str]:
        """Log in to the replies' mailbox and open its folder: what a check of the answers will do."""
        from airflow_alerter.alerters.imap import Mailbox
        from airflow_alerter.exceptions import ImapError

        settings = self.imap_settings()
        try:
            with Mailbox(settings) as mailbox:
                idle = "IDLE" if mailbox.supports_idle else "no IDLE: a responder polls"
        except ImapError as err:
            return False, f"replies cannot be read: {err}"
        where = f"{settings.host}:{settings.port}"
        return True, f"replies read from {settings.folder!r} of {settings.login!r} at {where} ({idle})"

    def _where(self) -> str:
        return f"{self.config.smtp_server}:{self.config.port}"

    def _failure_reason(self, err: BaseException, doing: str) -> str:
        """One line saying what failed; a refused login names the login, never the password."""
        import smtplib

        if isinstance(err, smtplib.SMTPAuthenticationError):
            return (f"SMTP server {self._where()} refused the login of {self._login()!r} ({err.smtp_code}): "
                    f"check the connection's login and password")
        return f"{doing} {self._where()}: {_describe(err)}"

    def _login(self) -> str:
        return self.config.username or self.config.sender_email

    def _ssl_context(self) -> Any:
        import ssl

        context = ssl.create_default_context(cafile=self.config.ssl_ca_file)
        if not self.config.ssl_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _open(self) -> smtplib.SMTP:
        import smtplib

        config = self.config
        if config.security == "ssl":
            return smtplib.SMTP_SSL(config.smtp_server, config.port, timeout=config.timeout,
                                    context=self._ssl_context())
        client = smtplib.SMTP(config.smtp_server, config.port, timeout=config.timeout)
        if config.security == "starttls":
            client.starttls(context=self._ssl_context())
        return client

    def _send_once(self, email: EmailMessage, to: list[str]) -> dict[str, Any]:
        """One attempt: over an idle connection of this process when one is open, else a new one.

        A reused connection the server closed while idle (:func:`~.smtp_pool.is_stale_error`) costs
        no attempt: the email goes again at once over a new connection. A connection goes back to the
        pool only after a successful send; any failure closes it.
        """
        from airflow_alerter.alerters.smtp_pool import POOL, is_stale_error

        key = self._pool_key()
        client = POOL.take(key)
        if client is not None:
            try:
                refused = client.send_message(email, from_addr=self.config.sender_email, to_addrs=to)
            except Exception as err:
                client.close()
                if not is_stale_error(err):
                    raise
                log.debug("SMTP connection to %s was closed while idle; sending over a new one", self._where())
            else:
                POOL.give(key, client)
                return refused
        client = self._open()
        try:
            self._authenticate(client)
            refused = client.send_message(email, from_addr=self.config.sender_email, to_addrs=to)
        except BaseException:
            client.close()
            raise
        POOL.give(key, client)
        return refused

    def _pool_key(self) -> tuple[Any, ...]:
        """What a reusable connection must match: server, port, security, TLS trust, timeout and login."""
        from airflow_alerter.alerters.smtp_pool import secret_digest

        config = self.config
        password = config.password.get_secret_value() if config.password is not None else None
        return ("smtp", config.smtp_server, config.port, config.security, config.ssl_verify, config.ssl_ca_file,
                config.timeout, self._login() if password is not None else None, secret_digest(password))

    def _authenticate(self, client: smtplib.SMTP) -> None:
        """Log in when a password is configured; a non-ASCII login or password is sent as UTF-8.

        smtplib's ``login`` encodes credentials as ASCII (``UnicodeEncodeError`` naming a password
        character). AUTH PLAIN carries UTF-8 by definition (RFC 4616) and AUTH LOGIN is read as UTF-8
        by the servers that take non-ASCII at all, so those two are sent as UTF-8 through ``docmd``;
        a server offering neither gets a clear error naming its mechanisms, never the password.
        """
        if self.config.password is None:
            return
        if self.config.security == "none":
            self.warn_cleartext(f"the SMTP password to {self._where()} (security 'none')",
                                "use security 'starttls' or 'ssl' (the smtp provider's disable_tls / disable_ssl off)")
        user, password = self._login(), self.config.password.get_secret_value()
        if user.isascii() and password.isascii():
            client.login(user, password)
            return
        _login_utf8(client, user, password, self._where())


def _login_utf8(client: smtplib.SMTP, user: str, password: str, where: str) -> None:
    """AUTH PLAIN (else LOGIN) with UTF-8 credentials: the one way smtplib leaves open (``docmd``) to send them."""
    import base64
    import smtplib

    def b64(*parts: str) -> str:
        return base64.b64encode(b"\0".join(part.encode("utf-8") for part in parts)).decode("ascii")

    client.ehlo_or_helo_if_needed()
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = client.esmtp_features["auth"].upper().split()
    if "PLAIN" in offered:
        code, reply = client.docmd("AUTH", "PLAIN " + b64("", user, password))
    elif "LOGIN" in offered:
        code, reply = client.docmd("AUTH", "LOGIN " + b64(user))
        if code == 334:
            code, reply = client.docmd(b64(password))
    else:
        raise smtplib.SMTPException(
            f"SMTP server {where} offers only {', '.join(offered) or 'no'} AUTH mechanism(s), which cannot carry a "
            f"non-ASCII login or password; AUTH PLAIN or LOGIN can")
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


def _describe(err: BaseException) -> str:
    """A one-line reason from an SMTP or socket error (these never carry our password)."""
    import smtplib

    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return "all recipients were refused: " + ", ".join(
            f"{address} ({code})" for address, (code, _) in err.recipients.items()
        )
    if isinstance(err, smtplib.SMTPResponseException):
        reply = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return f"server replied {err.smtp_code} {reply}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def outcome_line(result: AskResult) -> str:
    """The outcome as the thread shows it: "✅ Approved by alice@example.com (email) at 14:02 UTC"."""
    import time

    who = result.responder_name or result.responder or "someone"
    where = f" ({'Airflow' if result.channel == 'airflow' else result.channel})" if result.channel else ""
    at = time.strftime(" at %H:%M UTC", time.gmtime(result.answered_at)) if result.answered_at else ""
    line = {AskStatus.APPROVED: f"Approved by {who}{where}{at}", AskStatus.REJECTED: f"Rejected by {who}{where}{at}",
            AskStatus.TIMED_OUT: "Timed out: no valid answer arrived in time"}.get(
        result.status, f"Closed: {result.reason or result.status.value}")
    if result.choice:
        line = f"Chose {', '.join(result.choice)}: {who}{where}{at}"
    return f"{STATUS_ICONS.get(result.status, '')} {line}".strip()
