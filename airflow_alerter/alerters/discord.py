"""The ``discord`` flavor: embeds through the REST API (v10) with a bot token, or a webhook for posting only.

Mentions are neutralised on every message (``allowed_mentions: {"parse": []}``), so an exception
text holding ``@everyone`` pings nobody. Long messages are split across embeds and messages to fit
Discord's limits instead of failing. ZenML's Discord alerter matches answers case-sensitively and
gives up after 60 s; here answers are case-insensitive whole words (or ✅/❌ reactions) with no
such limit, from approvers only when a list is given, never from bots.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from airflow_alerter.alerters.answers import AnswerRules, AskOptions, Candidate, decide, resolve_options
from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError, BaseAlerter, ConnectionFields
from airflow_alerter.alerters.http import HttpError, JsonClient
from airflow_alerter.alerters.retry import RetryPolicy
from airflow_alerter.models import AlerterMessage, AskResult, AskStatus, BaseAlerterParameters, QuestionHandle

DISCORD_API = "https://discord.com/api/v10"
DISCORD_EPOCH_MS = 1420070400000
CONTENT_LIMIT, TITLE_LIMIT, DESCRIPTION_LIMIT = 2000, 256, 4096
FIELDS_LIMIT, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT = 25, 256, 1024
EMBEDS_PER_MESSAGE, EMBED_TOTAL_LIMIT = 10, 6000
NO_MENTIONS: dict[str, Any] = {"parse": []}
REACTIONS = {"✅": "white_check_mark", "❌": "x"}
BLOCK_KEYS = frozenset({"exception", "traceback", "log_url", "kind"})
COLOURS = {"failure": 0xDE350B, "retry": 0xFF991F, "success": 0x00875A}


class DiscordAlerterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(default=None, description="bot token: post and ask")
    channel_id: str | None = None
    webhook_url: SecretStr | None = Field(default=None, description="webhook URL: post only")
    api_base_url: str = DISCORD_API
    timeout: float = Field(default=30.0, gt=0)
    retry_limit: int = Field(default=3, ge=1)
    retry_backoff: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _needs_a_credential(self) -> DiscordAlerterConfig:
        if self.token is None and self.webhook_url is None:
            raise ValueError("token or webhook_url: one of them is required")
        return self


class DiscordAlerterSettings(AnswerRules):
    model_config = ConfigDict(extra="forbid")

    channel_id: str | None = None


class DiscordAlerterParameters(AnswerRules, BaseAlerterParameters):
    channel_id: str | None = None
    embeds: list[dict[str, Any]] | None = None


def snowflake_time(snowflake: str) -> float:
    """When a Discord id was made: ids encode their creation time."""
    try:
        return ((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000
    except ValueError:
        return 0.0


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def build_embeds(message: AlerterMessage) -> list[dict[str, Any]]:
    """Embeds for ``message``: title, description, fields, exception; continued in more embeds when long."""
    colour = COLOURS.get(str(message.metadata.get("kind")), 0x0052CC)
    extras = [f"```{_cut(str(message.metadata[key]), DESCRIPTION_LIMIT - 8)}```"
              for key in ("exception", "traceback") if message.metadata.get(key)]
    descriptions = _chunks(message.body, DESCRIPTION_LIMIT) + extras or [""]
    fields = [{"name": _cut(str(key), FIELD_NAME_LIMIT), "value": _cut(str(value), FIELD_VALUE_LIMIT), "inline": True}
              for key, value in message.metadata.items() if key not in BLOCK_KEYS and value not in (None, "")]
    embeds: list[dict[str, Any]] = []
    for index, description in enumerate(descriptions):
        embed: dict[str, Any] = {"description": description, "color": colour}
        if index == 0 and message.title:
            embed["title"] = _cut(message.title, TITLE_LIMIT)
            if message.metadata.get("log_url"):
                embed["url"] = str(message.metadata["log_url"])
        embeds.append(embed)
    embeds += [{"fields": group, "color": colour} for group in _field_groups(fields)]
    return embeds


def _field_groups(fields: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """At most 25 fields an embed, and few enough that one embed stays within the 6000-character total."""
    group: list[dict[str, Any]] = []
    size = 0
    for field in fields:
        field_size = len(field["name"]) + len(field["value"])
        if group and (len(group) == FIELDS_LIMIT or size + field_size > EMBED_TOTAL_LIMIT):
            yield group
            group, size = [], 0
        group.append(field)
        size += field_size
    if group:
        yield group


def _embed_size(embed: Mapping[str, Any]) -> int:
    return len(embed.get("title", "")) + len(embed.get("description", "")) + sum(
        len(field["name"]) + len(field["value"]) for field in embed.get("fields", []))


def pack_messages(content: str, embeds: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Messages of at most 10 embeds and 6000 embed characters each; the content goes on the first."""
    batch: list[dict[str, Any]] = []
    for embed in embeds:
        if batch and (len(batch) == EMBEDS_PER_MESSAGE or sum(map(_embed_size, batch)) + _embed_size(embed)
                      > EMBED_TOTAL_LIMIT):
            yield {"embeds": batch, "allowed_mentions": NO_MENTIONS}
            batch = []
        batch.append(embed)
    yield {"embeds": batch, "allowed_mentions": NO_MENTIONS}


class DiscordAlerter(BaseAlerter):
    """Alerts and approval questions on Discord."""

    FLAVOR: ClassVar[str] = "discord"
    Config = DiscordAlerterConfig
    Settings = DiscordAlerterSettings
    Parameters = DiscordAlerterParameters
    DEFAULT_POLL_INTERVAL: ClassVar[float] = 15.0

    config: DiscordAlerterConfig
    settings: DiscordAlerterSettings

    @classmethod
    def config_from_connection(cls, conn: ConnectionFields) -> dict[str, Any]:
        """Airflow's ``discord`` connection: host + extra ``webhook_endpoint``; ``alerter``: password = bot token."""
        data = {key: value for key, value in conn.extra.items() if key in cls.Config.model_fields}
        password = conn.password or ""
        if conn.conn_type == "discord" or password.startswith(("http://", "https://")):
            endpoint = conn.extra.get("webhook_endpoint")
            url = password if password.startswith("http") else (
                f"{(conn.host or 'https://discord.com/api/').rstrip('/')}/{str(endpoint).lstrip('/')}" if endpoint
                else None)
            if url:
                data.setdefault("webhook_url", url)
        elif password:
            data.setdefault("token", password)
        return data

    def _client(self) -> JsonClient:
        headers = {"Authorization": f"Bot {self.config.token.get_secret_value()}"} if self.config.token else {}
        return JsonClient("Discord", self.config.timeout,
                          RetryPolicy(self.config.retry_limit, self.config.retry_backoff), headers)

    def _api(self, path: str) -> str:
        return f"{self.config.api_base_url.rstrip('/')}/{path}"

    def _channel(self, params: DiscordAlerterParameters | None) -> str:
        channel = self.resolve("channel_id", params)
        if not channel:
            raise AlerterConfigError("channel_id: no Discord channel configured (connection, settings or parameters)")
        return str(channel)

    def messages_for(
        self, message: str | AlerterMessage, params: DiscordAlerterParameters | None
    ) -> list[dict[str, Any]]:
        """The Discord messages that carry ``message``: built once for the bot and the webhook path."""
        message = AlerterMessage.coerce(message)
        embeds = params.embeds if params is not None and params.embeds else build_embeds(message)
        packed = list(pack_messages("", embeds))
        packed[0]["content"] = _cut(message.title or message.body, CONTENT_LIMIT)
        return packed

    def deliver(self, message: str | AlerterMessage, params: BaseAlerterParameters | None = None) -> None:
        call_params: DiscordAlerterParameters | None = self.coerce_params(params)
        for payload in self.messages_for(message, call_params):
            self._send(payload, call_params)

    def _send(self, payload: dict[str, Any], params: DiscordAlerterParameters | None) -> dict[str, Any]:
        try:
            if self.config.token is None:
                assert self.config.webhook_url is not None
                url = self.config.webhook_url.get_secret_value()
                return self._client().call("POST", f"{url}?wait=true", payload, name="webhook") or {}
            channel = self._channel(params)
            return self._client().call("POST", self._api(f"channels/{channel}/messages"), payload,
                                       name=f"channels/{channel}/messages") or {}
        except HttpError as err:
            raise AlerterDeliveryError(str(err)) from None

    def test_connection(self) -> tuple[bool, str]:
        """``GET users/@me`` with the bot token, or ``GET`` the webhook (which sends nothing)."""
        try:
            if self.config.token is not None:
                me = self._client().call("GET", self._api("users/@me"), name="users/@me", retry=False) or {}
                return True, f"authenticated as {me.get('username')} ({me.get('id')})"
            assert self.config.webhook_url is not None
            hook = self._client().call("GET", self.config.webhook_url.get_secret_value(), name="webhook", retry=False)
            return True, f"webhook {hook.get('name') if isinstance(hook, dict) else ''} is valid".replace("  ", " ")
        except HttpError as err:
            return False, str(err)

    # --- asking ----------------------------------------------------------------------------------

    def ask_options(self, params: DiscordAlerterParameters | None) -> AskOptions:
        return resolve_options(self.resolve, params)

    def send_question(self, question: str | AlerterMessage, params: BaseAlerterParameters | None = None
                      ) -> QuestionHandle:
        if self.config.token is None:
            raise AlerterConfigError("token: asking questions needs a bot token (a webhook can only post)")
        call_params: DiscordAlerterParameters | None = self.coerce_params(params)
        options = self.ask_options(call_params)
        [payload, *rest] = self.messages_for(question, call_params)
        payload["content"] = _cut(
            f"{payload['content']}\nReply to this message with **{options.approve_keywords[0]}** or "
            f"**{options.reject_keywords[0]}**, or react with ✅ / ❌.", CONTENT_LIMIT)
        posted = self._send(payload, call_params)
        for more in rest:
            self._send(more, call_params)
        question_id = str(posted.get("id"))
        return QuestionHandle(flavor=self.FLAVOR, channel=self._channel(call_params), message_id=question_id,
                              posted_at=snowflake_time(question_id) or time.time(),
                              extra={"bot_user": (posted.get("author") or {}).get("id")})

    def check_answer(self, handle: QuestionHandle, params: BaseAlerterParameters | None = None) -> AskResult:
        """One call (the messages around the question: the question with its reaction counts, and replies);
        a second one only when a ✅/❌ reaction is there, to learn who reacted."""
        call_params: DiscordAlerterParameters | None = self.coerce_params(params)
        client = self._client()
        path = f"channels/{handle.channel}/messages"
        try:
            around = client.call("GET", self._api(f"{path}?around={handle.message_id}&limit=100"),
                                 name=path, retry=False) or []
            candidates = self._replies(around, handle)
            question: dict[str, Any] = next((m for m in around if str(m.get("id")) == handle.message_id), {})
            for reaction in question.get("reactions") or []:
                emoji = (reaction.get("emoji") or {}).get("name")
                if emoji in REACTIONS and reaction.get("count", 0) > int(bool(reaction.get("me"))):
                    users = client.call("GET", self._api(f"{path}/{handle.message_id}/reactions/{quote(emoji)}"),
                                        name=f"{path}/…/reactions", retry=False) or []
                    reacted_at = max(time.time(), handle.posted_at, *(c.at for c in candidates))
                    candidates += [Candidate(user=str(u.get("id")), at=reacted_at, reaction=REACTIONS[emoji],
                                             is_bot=bool(u.get("bot"))) for u in users]
        except HttpError as err:
            return AskResult(status=AskStatus.PENDING, reason=str(err),
                             retry_after=err.retry_after if err.status == 429 else None)
        return decide(candidates, self.ask_options(call_params), asked_at=handle.posted_at,
                      alerter_user=handle.extra.get("bot_user"))

    @staticmethod
    def _replies(messages: list[dict[str, Any]], handle: QuestionHandle) -> list[Candidate]:
        """Messages after the question that reply to it, or reply to nothing (a plain "approve" in the channel)."""
        candidates = []
        for message in messages:
            reference = (message.get("message_reference") or {}).get("message_id")
            if str(message.get("id")) == handle.message_id or reference not in (None, handle.message_id):
                continue
            author = message.get("author") or {}
            candidates.append(Candidate(user=str(author.get("id")), at=snowflake_time(str(message.get("id"))),
                                        text=str(message.get("content") or ""), is_bot=bool(author.get("bot"))))
        return candidates

    def conclude(self, handle: QuestionHandle, result: AskResult) -> None:
        outcome = {AskStatus.APPROVED: f"✅ Approved by <@{result.responder}>",
                   AskStatus.REJECTED: f"❌ Rejected by <@{result.responder}>",
                   AskStatus.TIMED_OUT: "⌛ Timed out: no valid answer arrived in time"}.get(
            result.status, f"Closed: {result.reason}")
        payload = {"content": outcome, "allowed_mentions": NO_MENTIONS,
                   "message_reference": {"message_id": handle.message_id}}
        try:
            self._client().call("POST", self._api(f"channels/{handle.channel}/messages"), payload, name="reply")
        except HttpError as err:  # the decision stands even if Discord cannot show it
            import logging

            logging.getLogger(__name__).warning("Could not post the outcome of the Discord question: %s", err)
