"""The ``slack`` flavor: Block Kit alerts, and approval questions answered in a thread or by a reaction.

Posting goes through slack_sdk's ``WebClient`` (bot token), with slack_sdk's own retry handlers for
429s, 5xx and dropped connections, or the package's JSON client (incoming webhook, post only); neither
follows a redirect (``alerters/slack_transport.py``, ``alerters/http.py``). The blocks are built by
``alerters/slack_render.py``, which escapes all user text for mrkdwn.

Checking for an answer is one ``conversations.replies`` call: it returns the question (with its
reactions) and every reply in its thread. Slack limits that method to about one call a minute for
apps outside the Slack Marketplace (since 2025), hence the 60 s default poll interval; a 429 while
checking never fails the question, it only pushes the next check back by Retry-After.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from airflow_alerter.alerters.answers import (
    HOW_TO_ANSWER_MARK,
    AnswerRules,
    AskOptions,
    Candidate,
    Step,
    Steps,
    answered_by,
    arun_steps,
    choice_line,
    classify_reaction,
    how_to_answer,
    keyword_alternatives,
    resolve_options,
    run_steps,
    weigh,
)
from airflow_alerter.alerters.base import (
    AlerterConfigError,
    AlerterDeliveryError,
    BaseAlerter,
    ConnectionFields,
)
from airflow_alerter.alerters.http import HttpError, JsonClient
from airflow_alerter.alerters.rendering import STATUS_ICONS, cut, is_web_url
from airflow_alerter.alerters.retry import MAX_SERVER_WAIT, TRANSIENT_STATUSES, RetryPolicy, retry_limit_field
from airflow_alerter.alerters.slack_render import (
    SECTION_LIMIT,
    TEXT_LIMIT,
    answer_buttons,
    build_blocks,
    escape,
    section,
)
from airflow_alerter.models import AlerterMessage, AskResult, AskStatus, BaseAlerterParameters, QuestionHandle

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

DEFAULT_WEBHOOK_BASE = "https://hooks.slack.com/services"
#: the message-metadata event type that marks our questions, so a restarted sensor can find its own
QUESTION_EVENT = "airflow_alerter_question"
#: seconds subtracted from "since" when searching: the worker's clock may run ahead of Slack's
CLOCK_SKEW = 120.0
#: pages of a long thread one check reads (200 replies each; apps outside Slack's Marketplace get 15)
MAX_REPLY_PAGES = 5
#: Slack errors of an answer check that waiting cannot cure: the gate ends at once with the reason
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "thread_not_found", "invalid_auth", "not_authed", "not_in_channel", "token_revoked",
    "token_expired", "account_inactive", "missing_scope", "no_permission", "team_access_not_granted",
})


#: a channel, group, DM or user id (C0123ABCD) or a channel name, with or without its #
_CHANNEL = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _slack_channel(value: Any) -> str | None:
    """A channel as chat.postMessage takes it; anything else is refused before a request is made."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CHANNEL.fullmatch(value):
        raise ValueError("must be a Slack channel id (C0123ABCD) or a channel name such as #alerts")
    return value


SlackChannel = Annotated[str | None, BeforeValidator(_slack_channel)]


class SlackAlerterPayload(BaseModel):
    """ZenML's Slack payload: where the message comes from, shown as fields."""

    pipeline_name: str | None = None
    step_name: str | None = None
    stack_name: str | None = None


class SlackAlerterConfig(BaseModel):
    """What a ``slack`` (bot token) or ``slackwebhook`` (post only) connection provides."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(default=None, description="bot token (xoxb-…): post and ask")
    webhook_url: SecretStr | None = Field(default=None, description="incoming webhook URL: post only")
    channel: SlackChannel = Field(default=None, description="default channel id or #name")
    base_url: str | None = Field(default=None, description="Slack Web API base URL (for proxies and tests)")
    app_token: SecretStr | None = Field(default=None, description="app-level token (xapp-…): the responder's "
                                                                  "Socket Mode connection")
    timeout: int = Field(default=30, gt=0)
    proxy: str | None = None
    retry_limit: int = retry_limit_field()
    signing_secret: SecretStr | None = Field(
        default=None, description="the Slack app's signing secret: verifies the clicks and events Slack sends to "
        "the api-server's HTTP endpoints (airflow_alerter/plugins)")

    @model_validator(mode="after")
    def _needs_a_credential(self) -> SlackAlerterConfig:
        if self.token is None and self.webhook_url is None:
            raise ValueError("token or webhook_url: one of them is required")
        return self


class SlackAlerterSettings(AnswerRules):
    """Per-task overrides: where to post and who may answer with which words."""

    model_config = ConfigDict(extra="forbid")

    channel: SlackChannel = None


class SlackAlerterParameters(AnswerRules, BaseAlerterParameters):
    """Per-call overrides; ``blocks`` replaces the generated Block Kit (ZenML parity)."""

    channel: SlackChannel = None
    blocks: list[dict[str, Any]] | None = None
    payload: SlackAlerterPayload | None = None


def _retry_handlers(count: int) -> list[Any]:
    """slack_sdk's own handlers for 429 and dropped connections, and ours for every transient 5xx.

    slack_sdk's ServerErrorRetryHandler retries only 500 and 503; the fault matrix showed a 502 or
    504 (a proxy or load balancer in between) costing the alert on the first try.
    """
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
    from slack_sdk.http_retry.handler import RetryHandler

    from airflow_alerter.alerters.slack_transport import RETRIED_CONNECTION_ERRORS

    class TransientServerErrorRetryHandler(RetryHandler):
        def _can_retry(self, *, response: Any = None, **_: Any) -> bool:
            return response is not None and response.status_code in TRANSIENT_STATUSES

    class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
        """slack_sdk sleeps for any Retry-After, even an hour; past MAX_SERVER_WAIT the 429 is final."""

        def _can_retry(self, *, response: Any = None, **rest: Any) -> bool:
            return bool(super()._can_retry(response=response, **rest)) and _asked_wait(response) <= MAX_SERVER_WAIT

    handlers: list[RetryHandler] = [BoundedRateLimitRetryHandler(max_retry_count=count),
                                    TransientServerErrorRetryHandler(max_retry_count=count),
                                    ConnectionErrorRetryHandler(max_retry_count=count,
                                                                error_types=RETRIED_CONNECTION_ERRORS)]
    return handlers


def _asked_wait(response: Any, default: float = 0.0) -> float:
    """Seconds a slack_sdk response's Retry-After asks for, whatever the header's case.

    A retry handler's HttpResponse maps names to lists of values, a SlackResponse to one value.
    """
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            return _ts(values[0] if isinstance(values, list) and values else values)
    return default


def _slack_error(err: Exception) -> str:
    """The Slack error code (``channel_not_found``, ``ratelimited``…) or the transport error; never the token."""
    from airflow_alerter.alerters.slack_transport import SlackTransportError

    if isinstance(err, SlackTransportError):  # says what broke (a refused redirect names its host)
        return str(err)
    response = getattr(err, "response", None)
    if response is not None:
        code = response.get("error") if hasattr(response, "get") else None
        return f"Slack answered HTTP {response.status_code}: {code or 'error'}"
    return f"{type(err).__name__}: {err}"


def _ts(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _data(response: Any) -> Mapping[str, Any]:
    data = getattr(response, "data", None)
    return data if isinstance(data, dict) else {}


def _reply(message: Mapping[str, Any]) -> Candidate:
    return Candidate(user=message.get("user"), at=_ts(message.get("ts")), text=str(message.get("text") or ""),
                     is_bot=bool(message.get("bot_id")) or message.get("subtype") == "bot_message")


def _is_bot(user: Mapping[str, Any]) -> bool:
    """A ``users.info`` user that is not a person: an app's bot, Slackbot, or a deactivated account."""
    return bool(user.get("is_bot") or user.get("is_app_user") or user.get("deleted")) or user.get("id") == "USLACKBOT"


def _is_how_to_answer(message: Mapping[str, Any], handle: QuestionHandle) -> bool:
    """Whether ``message`` is this alerter's note on how to answer (posted once per question)."""
    return message.get("user") == handle.extra.get("bot_user") and str(message.get("text") or "").startswith(
        HOW_TO_ANSWER_MARK)


class SlackAlerter(BaseAlerter[SlackAlerterConfig, SlackAlerterSettings, SlackAlerterParameters]):
    """Alerts and approval questions on Slack."""

    FLAVOR: ClassVar[str] = "slack"
    CAN_ASK: ClassVar[bool] = True
    CONN_TYPES: ClassVar[tuple[str, ...]] = ("slack", "slackwebhook")
    Config = SlackAlerterConfig
    Settings = SlackAlerterSettings
    Parameters = SlackAlerterParameters
    DEFAULT_POLL_INTERVAL: ClassVar[float] = 60.0

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """``slack``: password is the bot token. ``slackwebhook``: password is the webhook URL (or its path)."""
        extra = {key: value for key, value in conn.extra.items() if key in cls.Config.model_fields}
        if conn.conn_type == "slackwebhook":
            secret = conn.password or ""
            if secret and not secret.startswith(("http://", "https://")):
                secret = f"{(conn.host or DEFAULT_WEBHOOK_BASE).rstrip('/')}/{secret.lstrip('/')}"
            extra.setdefault("webhook_url", secret or None)
        elif conn.password:
            extra.setdefault("token", conn.password)
        return extra

    # --- clients ---------------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"timeout": self.config.timeout, "proxy": self.config.proxy}
        self.warn_if_http(self.config.base_url, "the bot token")
        if self.config.base_url:
            options["base_url"] = self.config.base_url.rstrip("/") + "/"
        return options

    @cached_property
    def _poster(self) -> WebClient:
        """One client per alerter, reused by every post (a client per post doubled the cost, measured)."""
        return self._web_client(_retry_handlers(self.config.retry_limit))

    @cached_property
    def _checker(self) -> WebClient:
        """For answer checks: no rate-limit retry inside a check; a 429 is reported and the caller waits."""
        return self._web_client(_retry_handlers(self.config.retry_limit)[1:])

    def _web_client(self, handlers: list[Any]) -> WebClient:
        """slack_sdk's WebClient that follows no redirect (see alerters/slack_transport.py)."""
        from airflow_alerter.alerters.slack_transport import AlerterWebClient

        return AlerterWebClient(token=self._require_token(), retry_handlers=handlers, **self._client_options())

    def socket_web_client(self) -> AsyncWebClient:
        """The Web API client a Socket Mode client opens its connections with (no redirects, this base URL)."""
        return self._async_client()

    def _async_client(self) -> AsyncWebClient:
        """slack_sdk's AsyncWebClient on an aiohttp session that follows no redirect (alerters/slack_transport.py)."""
        from airflow_alerter.alerters.slack_transport import AlerterAsyncWebClient

        return AlerterAsyncWebClient(token=self._require_token(), **self._client_options())

    def _require_token(self) -> str:
        if self.config.token is None:
            raise AlerterConfigError("token: asking questions needs a bot token (a webhook can only post)")
        return self.config.token.get_secret_value()

    def _channel(self, params: SlackAlerterParameters | None) -> str:
        channel = self.resolve("channel", params)
        if not channel:
            raise AlerterConfigError("channel: no Slack channel configured (connection extra, settings or parameters)")
        return str(channel)

    # --- posting ---------------------------------------------------------------------------------

    def payload_for(self, message: str | AlerterMessage, params: SlackAlerterParameters | None) -> dict[str, Any]:
        """``text`` + ``blocks`` for ``chat.postMessage`` or a webhook: built once for every path."""
        message = AlerterMessage.coerce(message)
        blocks = params.blocks if params is not None and params.blocks else build_blocks(
            message, params.payload if params is not None else None)
        return {"text": cut(escape(message.as_text()), TEXT_LIMIT), "blocks": blocks}

    def _deliver(self, message: AlerterMessage, params: SlackAlerterParameters | None) -> None:
        payload = self.payload_for(message, params)
        if self.config.token is None:
            self._send_webhook(payload)
        else:
            self._post(channel=self._channel(params), **payload)

    def _post(self, **arguments: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self._poster.chat_postMessage(**arguments)
        except ValueError as err:  # slack_sdk parsing a malformed answer (e.g. Retry-After: 0.5)
            raise AlerterDeliveryError(f"chat.postMessage to {arguments.get('channel')}: malformed answer "
                                       f"({type(err).__name__})") from None
        except (SlackApiError, SlackClientError, OSError) as err:
            raise AlerterDeliveryError(f"chat.postMessage to {arguments.get('channel')}: {_slack_error(err)}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _send_webhook(self, payload: dict[str, Any]) -> None:
        """One JSON POST on the package's own HTTP client, which scrubs the secret URL from whatever comes back.

        An incoming webhook needs nothing of slack_sdk: its answer is "ok" or an error word, and the
        same client already carries the Discord and chat webhooks (retries, no redirects, scrubbing).
        """
        assert self.config.webhook_url is not None
        url = self.config.webhook_url.get_secret_value()
        self.warn_if_http(url, "the webhook URL")
        policy = RetryPolicy.retrying(self.config.retry_limit)
        client = JsonClient("Slack webhook", float(self.config.timeout), policy, {}, secret_url=url, expect_json=False,
                            proxy=self.config.proxy)
        try:
            client.call("POST", url, payload)
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None

    def test_connection(self) -> tuple[bool, str]:
        """``auth.test`` with the bot token; a webhook cannot be checked without posting."""
        if self.config.token is None:
            return True, "incoming webhook configured (it cannot be checked without posting)"
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self._poster.auth_test()
        except (SlackApiError, SlackClientError, OSError) as err:
            return False, f"auth.test failed: {_slack_error(err)}"
        return True, f"authenticated as {response.get('user')} ({response.get('user_id')}) in {response.get('team')}"

    # --- asking ----------------------------------------------------------------------------------

    def ask_options(self, params: SlackAlerterParameters | None) -> AskOptions:
        return resolve_options(self.resolve, params)

    def _send_question(self, question: AlerterMessage, params: SlackAlerterParameters | None) -> QuestionHandle:
        self._require_token()
        options = self.ask_options(params)
        payload = self.payload_for(question, params)
        how = (f"Reply in this thread with *{escape(options.approve_keywords[0])}* or "
               f"*{escape(options.reject_keywords[0])}*{escape(keyword_alternatives(options))}, or react with ✅ / ❌.")
        if options.approvers:
            how += " Answers count from: " + ", ".join(f"<@{escape(user)}>" for user in options.approvers) + "."
        blocks = [*payload["blocks"], {"type": "context", "elements": [{"type": "mrkdwn", "text": how}]}]
        if options.buttons:
            blocks.append(answer_buttons(options.buttons, options.view_url))
        key = params.question_key if params is not None else None
        metadata = {"event_type": QUESTION_EVENT, "event_payload": {"question_key": key}} if key else None
        response = self._post(channel=self._channel(params), text=payload["text"], blocks=blocks,
                              metadata=metadata)
        return self._handle(str(response.get("channel")), response.get("message") or {}, payload["text"])

    def _find_question(
        self, question_key: str, since: float, params: SlackAlerterParameters | None
    ) -> QuestionHandle | None:
        """One ``conversations.history`` call: the question whose message metadata holds ``question_key``."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        channel = self._channel(params)
        try:
            response = self._checker.conversations_history(
                channel=channel, oldest=f"{since - CLOCK_SKEW:.6f}", include_all_metadata=True, limit=200)
        except (SlackApiError, SlackClientError, OSError) as err:
            log.warning("Could not look for the question an earlier attempt posted: %s", _slack_error(err))
            return None
        data = response.data if isinstance(response.data, dict) else {}
        for message in data.get("messages") or []:
            metadata = message.get("metadata") or {}
            if metadata.get("event_type") == QUESTION_EVENT and (
                    (metadata.get("event_payload") or {}).get("question_key") == question_key):
                return self._handle(channel, message, str(message.get("text") or ""))
        return None

    def _handle(self, channel: str, posted: Mapping[str, Any], text: str) -> QuestionHandle:
        return QuestionHandle(
            flavor=self.FLAVOR, channel=channel, message_id=str(posted.get("ts")),
            posted_at=_ts(posted.get("ts")) or time.time(),
            extra={"bot_user": posted.get("user"), "bot_id": posted.get("bot_id"), "text": text[:500]},
        )

    def _checking(self, handle: QuestionHandle, options: AskOptions) -> Steps:
        """The steps of one check, free of I/O (the sync and async checks drive the same steps).

        Usually one ``conversations.replies`` call: the question with its reactions and its thread.
        More only when the thread is longer than a page (up to :data:`MAX_REPLY_PAGES`), when a
        ✅/❌ comes from someone not yet known to be a person (``users.info``, cached), and once per
        question to say how to answer after a reply that named a keyword without a clear intent.
        """
        messages: list[Mapping[str, Any]] = []
        cursor = None
        for _ in range(MAX_REPLY_PAGES):
            page = yield Step("conversations_replies", {"channel": handle.channel, "ts": handle.message_id,
                                                        "limit": 200, **({"cursor": cursor} if cursor else {})})
            messages += page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not (page.get("has_more") and cursor):
                break
        parent = next((m for m in messages if m.get("ts") == handle.message_id), {})
        replies = [_reply(m) for m in messages if m.get("ts") != handle.message_id]
        # Reactions carry no time: date them after every reply seen in this check, and never before the
        # question (the worker's clock may lag Slack's; a reaction cannot predate its message).
        reacted_at = max(time.time(), handle.posted_at, *(c.at for c in replies))
        reactions = [(str(reaction.get("name")), str(user)) for reaction in parent.get("reactions") or []
                     if classify_reaction(str(reaction.get("name"))) is not None
                     for user in reaction.get("users") or []]
        for user in {user for _, user in reactions if self._worth_looking_up(user, handle, options)}:
            info = yield Step("users_info", {"user": user}, best_effort=True)
            if info is not None:
                self._bots[user] = _is_bot(info.get("user") or {})
        candidates = replies + [Candidate(user=user, at=reacted_at, reaction=name, is_bot=self._bots.get(user, True))
                                for name, user in reactions]
        decision = weigh(candidates, options, asked_at=handle.posted_at, alerter_user=handle.extra.get("bot_user"))
        if decision.unclear and not any(_is_how_to_answer(m, handle) for m in messages):
            yield Step("chat_postMessage", {"channel": handle.channel, "thread_ts": handle.message_id,
                                            "text": how_to_answer(options)}, best_effort=True)
        return decision.result

    def _worth_looking_up(self, user: str, handle: QuestionHandle, options: AskOptions) -> bool:
        """Whether a reaction's author must be looked up to tell a person from a bot (unknown, and could count)."""
        return (user not in self._bots and user != handle.extra.get("bot_user")
                and (options.approvers is None or user in options.approvers))

    @cached_property
    def _bots(self) -> dict[str, bool]:
        """``users.info`` answers of this alerter's life: user id → is a bot (Slack rate-limits the lookups)."""
        return {}

    def _check_answer(self, handle: QuestionHandle, params: SlackAlerterParameters | None) -> AskResult:
        from slack_sdk.errors import SlackApiError, SlackClientError

        steps = self._checking(handle, self.ask_options(params))
        try:
            return run_steps(steps, lambda step: _data(getattr(self._checker, step.call)(**step.arguments)))
        except (SlackApiError, SlackClientError, OSError) as err:
            return self._failed_check(err)

    async def _acheck_answer(self, handle: QuestionHandle, params: SlackAlerterParameters | None) -> AskResult:
        from slack_sdk.errors import SlackApiError, SlackClientError

        steps = self._checking(handle, self.ask_options(params))
        client = self._async_client()

        async def call(step: Step) -> Mapping[str, Any]:
            return _data(await getattr(client, step.call)(**step.arguments))

        try:
            return await arun_steps(steps, call)
        except (SlackApiError, SlackClientError, OSError) as err:
            return self._failed_check(err)

    def _failed_check(self, err: Exception) -> AskResult:
        """A failed check is not an answer: wait (honouring Retry-After), or end now when waiting cannot help.

        ``channel_not_found``, ``invalid_auth``, ``token_revoked`` … and a refused redirect will not heal
        by themselves, so the gate fails at once with the reason instead of waiting for its timeout
        (7 days by default), as Discord's permanent 3xx/4xx do.
        """
        from airflow_alerter.alerters.slack_transport import SlackRedirectRefused

        response = getattr(err, "response", None)
        code = response.get("error") if response is not None and hasattr(response, "get") else None
        if code in PERMANENT_ERRORS or isinstance(err, SlackRedirectRefused):
            return AskResult(status=AskStatus.ERROR, reason=f"checking the Slack question failed: {_slack_error(err)}")
        retry_after = None
        if response is not None and response.status_code == 429:
            retry_after = _asked_wait(response, default=60.0)
        log.warning("Checking the Slack question failed (%s); will check again", _slack_error(err))
        return AskResult(status=AskStatus.PENDING, reason=_slack_error(err), retry_after=retry_after)

    def _question_link(self, handle: QuestionHandle) -> str | None:
        """The question's permalink (``chat.getPermalink``, one call); None when Slack cannot give it."""
        try:
            link = self._poster.chat_getPermalink(channel=handle.channel, message_ts=handle.message_id).get("permalink")
        except Exception as err:  # a missing link must not stop the question being asked
            log.warning("Could not get the Slack question's permalink: %s", _slack_error(err))
            return None
        return str(link) if is_web_url(str(link)) else None

    def _answered_by(self, result: AskResult) -> str:
        return answered_by(result, self.FLAVOR, lambda user: f"<@{escape(user)}>", escape)

    def _outcome_line(self, result: AskResult) -> str:
        outcome = {
            AskStatus.APPROVED: f"Approved by {self._answered_by(result)}",
            AskStatus.REJECTED: f"Rejected by {self._answered_by(result)}",
            AskStatus.TIMED_OUT: "Timed out: no valid answer arrived in time",
        }.get(result.status, f"Closed: {escape(result.reason or result.status.value)}")
        return (choice_line(result, self._answered_by(result), escape)
                or f"{STATUS_ICONS.get(result.status, '')} {outcome}".strip())

    def _conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        """Reply in the thread with the outcome and mark the question, so the channel shows the state."""
        line = self._outcome_line(result)
        try:
            self._poster.chat_postMessage(channel=handle.channel, thread_ts=handle.message_id, text=line)
        except Exception as err:  # the decision stands even if Slack cannot show it
            log.warning("Could not post the outcome of the Slack question: %s", _slack_error(err))
        self._show_decision(handle, result)

    def _show_decision(self, handle: QuestionHandle, result: AskResult) -> None:
        """The question gives way to its outcome line, with the time of the answer (``chat.update``).

        The question is shown again from its handle's text, so its answer buttons are gone.
        """
        line = self._outcome_line(result)
        if result.answered_at and result.status in (AskStatus.APPROVED, AskStatus.REJECTED):
            line += time.strftime(" at %H:%M UTC", time.gmtime(result.answered_at))
        try:
            self._poster.chat_update(channel=handle.channel, ts=handle.message_id,
                                     text=f"{handle.extra.get('text', '')}\n\n{line}"[:TEXT_LIMIT],
                                     # the handle's text is the question as posted: already escaped for mrkdwn
                                     blocks=[section(str(handle.extra.get("text", ""))[:SECTION_LIMIT] or " "),
                                             {"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}])
        except Exception as err:  # the decision stands even if Slack cannot show it
            log.warning("Could not mark the Slack question with its outcome: %s", _slack_error(err))

    def tell(self, channel: str, user: str, text: str) -> None:
        """Show ``text`` to ``user`` alone (``chat.postEphemeral``), e.g. why their click changed nothing."""
        try:
            self._poster.chat_postEphemeral(channel=channel, user=user, text=escape(text))
        except Exception as err:  # only a courtesy: the decision, or its absence, stands
            log.warning("Could not tell a Slack user why their click changed nothing: %s", _slack_error(err))
