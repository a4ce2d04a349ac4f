"""The ``discord`` flavor: embeds through the REST API (v10) with a bot token, or a webhook for posting only.

Mentions are neutralised on every message (``allowed_mentions: {"parse": []}``), so an exception
text holding ``@everyone`` pings nobody. Long messages are split across embeds and messages to fit
Discord's limits instead of failing (``alerters/discord_render.py`` builds the messages), and an
embed Discord refuses (HTTP 400) is sent again as plain text, so an alert is never lost to formatting.

Answers: ZenML's Discord alerter matches keywords case-sensitively and gives up after 60 s. Here a
*reply* to the question (Discord's Reply, so one "ok" cannot approve every open question in the
channel) holding an approve/reject keyword as a whole word in any case, or a ✅/❌ reaction on the
question, answers it; from approvers only when a list is given, never from bots or the alerter.

What a check costs, in API calls:

- **1** in the usual case: ``GET channels/{id}/messages?after=<question id - 1>&limit=100`` returns
  the question itself, with its reaction *counts*, and the 99 messages after it;
- **+1 per further 100 messages** when the channel is busy and no valid reply was found yet
  (at most :data:`MAX_PAGES` pages in all; beyond that only reactions can answer);
- **+1 per ✅/❌-type emoji** the counts show (Discord lists who reacted only on a second call),
  skipped when a reply already decided the question.

Discord does not say when a reaction was added, so a valid reply always counts before a reaction.
Reading replies needs the bot's *Message Content* intent (Developer Portal → Bot), except for
replies that keep Discord's default @mention of the bot; reactions work without it.

Buttons: with ``buttons`` (a list of options) a question also carries one button per option and,
with ``view_url``, a "View in Airflow" link button. Clicks reach only a responder holding the
bot's Gateway connection (:mod:`airflow_alerter.responder.discord_gateway`); replies and reactions
keep working without one. Once decided, the buttons give way to the outcome line (``show_decision``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from airflow_alerter.alerters.answers import (
    HOW_TO_ANSWER_MARK,
    AnswerRules,
    AskOptions,
    Candidate,
    Step,
    Steps,
    arun_steps,
    classify_reaction,
    decide,
    how_to_answer,
    resolve_options,
    run_steps,
    weigh,
)
from airflow_alerter.alerters.base import (
    AlerterConfigError,
    AlerterDeliveryError,
    BaseAlerter,
    ConnectionFields,
    SecretWebUrl,
)
from airflow_alerter.alerters.discord_render import (
    NO_MENTIONS,
    answer_components,
    build_embeds,
    embed_messages,
    outcome_line,
    text_messages,
    with_line,
)
from airflow_alerter.alerters.http import HttpError, JsonClient, with_query
from airflow_alerter.alerters.retry import RetryPolicy, retry_limit_field
from airflow_alerter.models import AlerterMessage, AskResult, AskStatus, BaseAlerterParameters, QuestionHandle

log = logging.getLogger(__name__)

DISCORD_API = "https://discord.com/api/v10"
#: where Airflow's ``discord`` connections point by default (the provider documents this host)
DISCORD_WEBHOOK_HOST = "https://discord.com/api/"
DISCORD_EPOCH_MS = 1420070400000
NONCE_LENGTH = 25  # Discord's limit, as for a question_key
PAGE_LIMIT = 100
MAX_PAGES = 5
#: seconds subtracted from "since" when looking for a question: the worker's clock may run ahead of Discord's
CLOCK_SKEW = 120.0
#: the form Airflow's Discord provider requires of ``webhook_endpoint``
_WEBHOOK_ENDPOINT = re.compile(r"webhooks/[0-9]+/[A-Za-z0-9_-]+")
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")


def _snowflake(value: Any) -> str | None:
    """Channel ids go into URL paths: only digits, so no id can reach another endpoint."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not _SNOWFLAKE.fullmatch(text):
        raise ValueError("must be a Discord channel id (digits only; Developer Mode → Copy Channel ID)")
    return text


ChannelId = Annotated[str | None, BeforeValidator(_snowflake)]


def _public_key(value: Any) -> str | None:
    """An Ed25519 public key as the Developer Portal shows it: 64 hex digits."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError("must be the application's public key: 64 hex digits (Developer Portal → General Information)")
    return text


PublicKeyHex = Annotated[str | None, BeforeValidator(_public_key)]


class DiscordAlerterConfig(BaseModel):
    """What a ``discord`` or ``alerter`` connection provides: a bot token (post and ask) or a webhook (post)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(default=None, description="bot token: post and ask")
    channel_id: ChannelId = Field(default=None, description="channel to post to with the bot token")
    webhook_url: SecretWebUrl | None = Field(default=None, description="webhook URL: post only")
    api_base_url: str = Field(default=DISCORD_API, description="Discord REST API base URL (for proxies and tests)")
    timeout: float = Field(default=30.0, gt=0)
    retry_limit: int = retry_limit_field()
    retry_backoff: float = Field(default=1.0, ge=0)
    public_key: PublicKeyHex = Field(
        default=None, description="the application's public key (hex, Developer Portal → General Information): "
        "verifies the interactions Discord sends to the api-server's HTTP endpoint (airflow_alerter/plugins)")

    @model_validator(mode="after")
    def _needs_a_credential(self) -> DiscordAlerterConfig:
        if self.token is None and self.webhook_url is None:
            raise ValueError("token or webhook_url: one of them is required")
        return self


class DiscordAlerterSettings(AnswerRules):
    """Per-task overrides: where to post and who may answer with which words."""

    model_config = ConfigDict(extra="forbid")

    channel_id: ChannelId = None


class DiscordAlerterParameters(AnswerRules, BaseAlerterParameters):
    """Per-call overrides; ``embeds`` replaces the generated embeds (still split to fit, mentions off)."""

    channel_id: ChannelId = None
    embeds: list[dict[str, Any]] | None = None


# --- message ids ---------------------------------------------------------------------------------


def snowflake_at(seconds: float) -> int:
    """The smallest Discord id made at epoch ``seconds``: ``after=`` it lists what was posted since then."""
    return max(int(seconds * 1000) - DISCORD_EPOCH_MS, 0) << 22


def snowflake_time(snowflake: str) -> float:
    """When a Discord id was made: ids encode their creation time (ms since 2015) in their top bits."""
    try:
        return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000
    except ValueError:
        return 0.0


# --- the flavor ----------------------------------------------------------------------------------


class DiscordAlerter(BaseAlerter[DiscordAlerterConfig, DiscordAlerterSettings, DiscordAlerterParameters]):
    """Alerts and approval questions on Discord."""

    FLAVOR: ClassVar[str] = "discord"
    CAN_ASK: ClassVar[bool] = True
    CONN_TYPES: ClassVar[tuple[str, ...]] = ("discord",)
    Config = DiscordAlerterConfig
    Settings = DiscordAlerterSettings
    Parameters = DiscordAlerterParameters
    DEFAULT_POLL_INTERVAL: ClassVar[float] = 15.0
    CONNECTION_EXTRAS: ClassVar[frozenset[str]] = frozenset({"webhook_endpoint"})

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """Airflow's ``discord`` connection and our ``alerter`` one, read the same way.

        - extra ``webhook_endpoint`` (``webhooks/{id}/{token}``) on ``host`` (default
          ``https://discord.com/api/``): the webhook, exactly as Airflow's Discord provider reads it;
        - ``password``: a bot token, or a whole webhook URL (``https://…``); both are masked by Airflow;
        - other extras: the config fields (``channel_id``, ``api_base_url``, ``timeout``, …).
        """
        data = {key: value for key, value in conn.extra.items() if key in cls.Config.model_fields}
        password = (conn.password or "").strip()
        if password.startswith(("https://", "http://")):
            data.setdefault("webhook_url", password)
        elif password:
            data.setdefault("token", password)
        endpoint = conn.extra.get("webhook_endpoint")
        if endpoint and "webhook_url" not in data:
            data["webhook_url"] = _webhook_from_endpoint(conn, str(endpoint).strip().strip("/"))
        return data

    # --- transport -------------------------------------------------------------------------------

    def _client(self) -> JsonClient:
        token = self.config.token
        webhook = self.config.webhook_url
        if token is not None:
            self.warn_if_http(self.config.api_base_url, "the bot token")
        self.warn_if_http(webhook.get_secret_value() if webhook else None, "the webhook URL")
        return JsonClient(
            "Discord",
            self.config.timeout,
            RetryPolicy.retrying(self.config.retry_limit, self.config.retry_backoff),
            {"Authorization": f"Bot {token.get_secret_value()}"} if token else {},
            secret_url=webhook.get_secret_value() if webhook else None,
        )

    def _api(self, path: str) -> str:
        return f"{self.config.api_base_url.rstrip('/')}/{path}"

    def _channel(self, params: DiscordAlerterParameters | None) -> str | None:
        channel = self.resolve("channel_id", params)
        return str(channel) if channel else None

    def _bot_channel(self, params: DiscordAlerterParameters | None) -> str:
        channel = self._channel(params)
        if self.config.token is None:
            raise AlerterConfigError("token: asking questions needs a bot token (a webhook can only post)")
        if channel is None:
            raise AlerterConfigError("channel_id: no Discord channel configured (connection, settings or parameters)")
        return channel

    def _send(self, payload: dict[str, Any], params: DiscordAlerterParameters | None) -> dict[str, Any]:
        """One message, through the bot when it has a channel, else through the webhook.

        A bot post carries a nonce Discord enforces, so when a request lands but its answer times
        out, the retry gets that message back instead of posting it twice. Webhooks take no nonce.
        """
        channel = self._channel(params)
        if self.config.token is not None and channel is not None:
            path = f"channels/{channel}/messages"
            once = {"nonce": uuid.uuid4().hex[:NONCE_LENGTH], "enforce_nonce": True, **payload}
            return self._client().call("POST", self._api(path), once, name=path) or {}
        if self.config.webhook_url is None:
            raise AlerterConfigError("channel_id: no Discord channel configured (connection, settings or parameters)")
        url = self.config.webhook_url.get_secret_value()
        return self._client().call("POST", with_query(url, wait="true"), payload, name="webhook") or {}

    def _post_all(
        self, message: str | AlerterMessage, params: DiscordAlerterParameters | None, line: str = "",
        components: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Post ``message`` (split to fit) and return the first posted message (the one carrying ``components``).

        A bare text (no title, no metadata: ``post("hello")``) goes as a plain message, like one a
        person writes; anything richer as embeds, and as plain text again if Discord refuses the embed.
        """
        message = AlerterMessage.coerce(message)
        embeds = params.embeds if params is not None and params.embeds else None
        if embeds is None and (message.title or message.metadata):
            embeds = build_embeds(message)
        payloads = embed_messages(message, embeds, line) if embeds else text_messages(message, line)
        extra = {"components": components} if components else {}
        try:
            first = self._send(_once_only({**payloads[0], **extra}, params), params)
        except HttpError as err:
            if err.status != 400 or not embeds:
                raise
            log.warning("Discord refused the embed (%s); sending the message as plain text", err)
            payloads = text_messages(message, line)
            first = self._send(_once_only({**payloads[0], **extra}, params), params)
        for payload in payloads[1:]:
            self._send(payload, params)
        return first

    def _deliver(self, message: AlerterMessage, params: DiscordAlerterParameters | None) -> None:
        try:
            self._post_all(message, params)
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None

    def test_connection(self) -> tuple[bool, str]:
        """``GET users/@me`` (and the channel, when one is set) with the bot token, or ``GET`` the webhook.

        Nothing is sent: reading a webhook returns its name and channel without posting.
        """
        client = self._client()
        try:
            if self.config.token is None:
                assert self.config.webhook_url is not None
                hook = client.call("GET", self.config.webhook_url.get_secret_value(), name="webhook", retry=False)
                name = hook.get("name") if isinstance(hook, dict) else None
                return True, f"the webhook{f' {name!r}' if name else ''} is valid (post only)"
            me = client.call("GET", self._api("users/@me"), name="users/@me", retry=False) or {}
            reason = f"authenticated as {me.get('username')} ({me.get('id')})"
            if self.config.channel_id:
                path = f"channels/{self.config.channel_id}"
                channel = client.call("GET", self._api(path), name=path, retry=False) or {}
                reason += f"; can see channel #{channel.get('name')} ({self.config.channel_id})"
            return True, reason
        except HttpError as err:
            return False, str(err)

    # --- asking ----------------------------------------------------------------------------------

    def ask_options(self, params: DiscordAlerterParameters | None) -> AskOptions:
        return resolve_options(self.resolve, params)

    def _send_question(self, question: AlerterMessage, params: DiscordAlerterParameters | None) -> QuestionHandle:
        channel = self._bot_channel(params)
        line = self._question_line(params)
        options = self.ask_options(params)
        try:
            posted = self._post_all(question, params, line, answer_components(options.buttons, options.view_url))
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None
        return self._handle(channel, posted, line)

    def _find_question(
        self, question_key: str, since: float, params: DiscordAlerterParameters | None
    ) -> QuestionHandle | None:
        """The bot's message marked with ``question_key`` posted since ``since``: one call per 100 messages.

        Discord drops a second post with the same nonce only for a few minutes, less than Airflow's
        default ``retry_delay``; the key in the question's last line finds it for as long as it exists.
        """
        channel = self._bot_channel(params)
        path, mark = f"channels/{channel}/messages", _key_mark(question_key)
        anchor = snowflake_at(since - CLOCK_SKEW)
        client = self._client()
        try:
            for _ in range(MAX_PAGES):
                url = self._api(f"{path}?after={anchor}&limit={PAGE_LIMIT}")
                page = client.call("GET", url, name=path, retry=False)
                page = page if isinstance(page, list) else []
                found = next((m for m in page if (m.get("author") or {}).get("bot")
                              and str(m.get("content") or "").endswith(mark)), None)
                if found is not None:
                    return self._handle(channel, found, self._question_line(params))
                if len(page) < PAGE_LIMIT:
                    return None
                anchor = max(int(m["id"]) for m in page)
        except HttpError as err:
            log.warning("Could not look for the question an earlier attempt posted: %s", err)
        return None

    def _question_line(self, params: DiscordAlerterParameters | None) -> str:
        """The lines under a question: how to answer, and the key a restarted sensor finds it by."""
        line = _instructions(self.ask_options(params))
        return f"{line}\n{_key_mark(params.question_key)}" if params is not None and params.question_key else line

    def _handle(self, channel: str, posted: Mapping[str, Any], line: str) -> QuestionHandle:
        question_id = str(posted.get("id"))
        content = str(posted.get("content") or "")
        return QuestionHandle(
            flavor=self.FLAVOR,
            channel=channel,
            message_id=question_id,
            posted_at=snowflake_time(question_id) or time.time(),
            extra={"bot_user": (posted.get("author") or {}).get("id"), "text": content.removesuffix(line).rstrip()},
        )

    def _check_answer(self, handle: QuestionHandle, params: DiscordAlerterParameters | None) -> AskResult:
        """Usually one call; see the module docstring for when (and why) a check takes more."""
        checking = self._checking(handle, self.ask_options(params))
        client = self._client()
        try:
            return run_steps(checking, lambda step: client.call(step.call, **step.arguments, retry=False))
        except HttpError as err:
            return _failed_check(err)

    async def _acheck_answer(self, handle: QuestionHandle, params: DiscordAlerterParameters | None) -> AskResult:
        """:meth:`check_answer` on the async HTTP client for the triggerer: the same steps, only the call differs."""
        checking = self._checking(handle, self.ask_options(params))
        client = self._client()

        async def call(step: Step) -> Any:
            return await client.acall(step.call, **step.arguments)

        try:
            return await arun_steps(checking, call)
        except HttpError as err:
            return _failed_check(err)

    def _checking(self, handle: QuestionHandle, options: AskOptions) -> Steps:
        """The steps of one check, free of I/O: yields each call to make, receives its JSON, returns the result.

        Both :meth:`check_answer` and :meth:`acheck_answer` drive it, so the sync and async paths
        cannot disagree on what counts as an answer or on how many calls a check makes.
        """
        if not handle.message_id.isdigit():
            return AskResult(status=AskStatus.ERROR, reason="the question handle holds no Discord message id")
        alerter_user = handle.extra.get("bot_user")
        path = f"channels/{handle.channel}/messages"
        anchor = int(handle.message_id) - 1  # "after the id just below the question" includes the question
        question: dict[str, Any] | None = None
        seen: list[dict[str, Any]] = []
        replies: list[Candidate] = []
        result = AskResult(status=AskStatus.PENDING)
        for _ in range(MAX_PAGES):
            page = yield Step("GET", {"url": self._api(f"{path}?after={anchor}&limit={PAGE_LIMIT}"), "name": path})
            page = page if isinstance(page, list) else []
            seen += page
            question = question or next((m for m in page if str(m.get("id")) == handle.message_id), None)
            replies += _replies(page, handle)
            result = decide(replies, options, asked_at=handle.posted_at, alerter_user=alerter_user)
            if result.is_final or len(page) < PAGE_LIMIT:
                break
            anchor = max(int(m["id"]) for m in page)
        if result.status is AskStatus.REJECTED:
            return result  # nothing a reaction says can make a rejection safer
        if question is None:
            return AskResult(status=AskStatus.ERROR, reason="the question is no longer in the channel (deleted?)")
        # Discord does not date reactions: date them after every reply seen, and never before the question;
        # an approving reply is weighed with them, so a ❌ whose order is unknown still stops the gate.
        reacted_at = max(time.time(), handle.posted_at, *(c.at for c in replies))
        reactions: list[Candidate] = []
        wanted = AskStatus.REJECTED if result.approved else None
        for emoji in _answer_emojis(question, wanted):
            reactions_path = f"{path}/{handle.message_id}/reactions"
            users = yield Step("GET", {"url": self._api(f"{reactions_path}/{quote(emoji)}?limit=100"),
                                       "name": reactions_path})
            reactions += [
                Candidate(user=str(user.get("id")), at=reacted_at, reaction=emoji, is_bot=bool(user.get("bot")))
                for user in (users if isinstance(users, list) else [])
            ]
        decision = weigh(replies + reactions, options, asked_at=handle.posted_at, alerter_user=alerter_user)
        if decision.unclear and not any(_is_how_to_answer(m, handle) for m in seen):
            note = {"content": how_to_answer(options), "allowed_mentions": NO_MENTIONS,
                    "message_reference": {"message_id": handle.message_id}}
            yield Step("POST", {"url": self._api(path), "payload": note, "name": path}, best_effort=True)
        return decision.result

    def _conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        """Reply to the question with the outcome and edit it, so the channel shows the question is closed."""
        line = outcome_line(result, self.FLAVOR)
        path = f"channels/{handle.channel}/messages"
        client = self._client()
        reply = {
            "content": line,
            "allowed_mentions": NO_MENTIONS,
            "message_reference": {"message_id": handle.message_id},
        }
        try:
            client.call("POST", self._api(path), reply, name=path)
            self._edit_question(client, handle, line)
        except HttpError as err:  # the decision stands even if Discord cannot show it
            log.warning("Could not post the outcome of the Discord question: %s", err)

    def _show_decision(self, handle: QuestionHandle, result: AskResult) -> None:
        """The question shows the outcome line in place of its buttons (no thread reply: ``conclude`` adds it)."""
        try:
            self._edit_question(self._client(), handle, outcome_line(result, self.FLAVOR))
        except HttpError as err:  # the decision stands even if Discord cannot show it
            log.warning("Could not show the decision on the Discord question: %s", err)

    def _edit_question(self, client: JsonClient, handle: QuestionHandle, line: str) -> None:
        """Edit the question: its text with ``line`` under it, and no buttons left to click."""
        path = f"channels/{handle.channel}/messages/{handle.message_id}"
        edit = {"content": with_line(str(handle.extra.get("text") or ""), line), "components": [],
                "allowed_mentions": NO_MENTIONS}
        client.call("PATCH", self._api(path), edit, name=f"channels/{handle.channel}/messages/…")


def _key_mark(question_key: str) -> str:
    """The question's last line: Discord's small grey subtext, holding the key a restarted sensor looks for."""
    return f"-# question {question_key}"


def _once_only(payload: dict[str, Any], params: DiscordAlerterParameters | None) -> dict[str, Any]:
    """With a ``question_key``, Discord itself drops a second post of the same question.

    ``enforce_nonce``: a message with the same nonce from the same author in the last few minutes
    is returned instead of created, so a sensor restarted after posting cannot ask twice.
    """
    if params is None or not params.question_key:
        return payload
    return {**payload, "nonce": params.question_key, "enforce_nonce": True}


def _instructions(options: AskOptions) -> str:
    line = (
        f"Reply to this message with **{options.approve_keywords[0]}** or **{options.reject_keywords[0]}**, "
        f"or react with ✅ / ❌."
    )
    if options.buttons:
        line = "Click a button below, or r" + line[1:]
    if options.approvers:
        line += " Answers count from: " + ", ".join(f"<@{user}>" for user in options.approvers) + "."
    return line


def _answer_emojis(question: Mapping[str, Any], wanted: AskStatus | None = None) -> list[str]:
    """The ✅/❌-type emojis someone other than the bot put on the question (those meaning ``wanted``, if given)."""
    emojis = []
    for reaction in question.get("reactions") or []:
        emoji = str((reaction.get("emoji") or {}).get("name") or "")
        meaning = classify_reaction(emoji)
        by_others = reaction.get("count", 0) > int(bool(reaction.get("me")))
        if meaning is not None and wanted in (None, meaning) and by_others:
            emojis.append(emoji)
    return emojis


def _is_how_to_answer(message: Mapping[str, Any], handle: QuestionHandle) -> bool:
    """Whether ``message`` is this alerter's note on how to answer (posted once per question)."""
    return (str((message.get("author") or {}).get("id")) == str(handle.extra.get("bot_user"))
            and str(message.get("content") or "").startswith(HOW_TO_ANSWER_MARK))


def _replies(messages: list[dict[str, Any]], handle: QuestionHandle) -> list[Candidate]:
    """Messages that answer the question through Discord's Reply (their reference is the question)."""
    candidates = []
    for message in messages:
        if str((message.get("message_reference") or {}).get("message_id")) != handle.message_id:
            continue
        author = message.get("author") or {}
        candidates.append(
            Candidate(
                user=str(author.get("id")),
                at=snowflake_time(str(message.get("id"))),
                text=str(message.get("content") or ""),
                is_bot=bool(author.get("bot")),
            )
        )
    return candidates


def _failed_check(err: HttpError) -> AskResult:
    """A check that failed is not an answer: wait (429, 5xx, no answer) or stop with the reason (other 4xx).

    A 401/403/404 will not heal by itself — a bad token, a bot without *Read Message History*, a
    deleted channel — so the ask sensor fails now with the reason instead of waiting for its timeout.
    """
    if err.status is not None and not err.transient:
        return AskResult(status=AskStatus.ERROR, reason=str(err))
    log.warning("Checking the Discord question failed (%s); will check again", err)
    return AskResult(
        status=AskStatus.PENDING, reason=str(err), retry_after=err.retry_after if err.status == 429 else None
    )


def _webhook_from_endpoint(conn: ConnectionFields, endpoint: str) -> str:
    """The webhook URL an Airflow ``discord`` connection describes, built as the provider's HttpHook builds it.

    The one difference: a host without a scheme gets ``https`` (Discord serves nothing on http).
    """
    if not _WEBHOOK_ENDPOINT.fullmatch(endpoint):
        raise AlerterConfigError("webhook_endpoint: expected the form webhooks/{webhook id}/{webhook token}")
    host = (conn.host or DISCORD_WEBHOOK_HOST).strip()
    if "://" not in host:
        host = f"{conn.schema or 'https'}://{host}{f':{conn.port}' if conn.port else ''}"
    return f"{host.rstrip('/')}/{endpoint}"
