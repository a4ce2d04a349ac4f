"""The discord flavor against a local Discord API: embeds, limits, mentions, faults, connections and answers."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from airflow_alerter import AlerterMessage, DiscordAlerter, DiscordAlerterParameters
from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError, ConnectionFields
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle
from tests.plugins.discord import DISCORD_CHANNEL, discord_config, discord_webhook_config
from tests.servers.discord_api import (
    BOT,
    BOT_TOKEN,
    UNKNOWN_CHANNEL,
    WEBHOOK_CHANNEL,
    WEBHOOK_ENDPOINT,
    WEBHOOK_TOKEN,
    DiscordAPIServer,
)
from tests.servers.http import Fault

APPROVER, OTHER, SOME_BOT = "700000000000000001", "700000000000000002", "800000000000000001"


def _alerter(discord_api: DiscordAPIServer, **config: object) -> DiscordAlerter:
    return DiscordAlerter(discord_config(discord_api, **config))


def _ask(discord_api: DiscordAPIServer, **settings: object) -> tuple[DiscordAlerter, QuestionHandle]:
    alerter = DiscordAlerter(discord_config(discord_api), settings=settings or None)
    return alerter, alerter.send_question("Deploy model v7?")


def _posted(discord_api: DiscordAPIServer, channel: str = DISCORD_CHANNEL) -> list[dict[str, Any]]:
    return discord_api.channels.get(channel, [])


def _calls(discord_api: DiscordAPIServer) -> int:
    return len(discord_api.requests)


# --- posting -------------------------------------------------------------------------------------


def test_post_sends_an_embed_under_a_one_line_preview(discord_api: DiscordAPIServer) -> None:
    message = AlerterMessage(
        title="Task Failure Alert",
        body="train failed",
        metadata={"kind": "failure", "dag_id": "ml", "exception": "ValueError: nan"},
    )

    assert _alerter(discord_api).post(message) is True

    [posted] = _posted(discord_api)
    assert posted["content"] == "Task Failure Alert"
    assert posted["embeds"] == [
        {"title": "Task Failure Alert", "description": "train failed", "color": 0xDE350B},
        {"description": "```\nValueError: nan\n```", "color": 0xDE350B},
        {"fields": [{"name": "dag_id", "value": "ml", "inline": True}], "color": 0xDE350B},
    ]


def test_log_url_links_the_title(discord_api: DiscordAPIServer) -> None:
    _alerter(discord_api).post(AlerterMessage(title="Failed", metadata={"log_url": "https://airflow.example/log?x=1"}))

    assert _posted(discord_api)[0]["embeds"][0]["url"] == "https://airflow.example/log?x=1"


def test_log_url_that_discord_would_refuse_is_left_out(discord_api: DiscordAPIServer) -> None:
    assert _alerter(discord_api).post(AlerterMessage(title="Failed", metadata={"log_url": "/log?x=1"})) is True

    assert "url" not in _posted(discord_api)[0]["embeds"][0]


def test_exception_text_cannot_close_its_code_block(discord_api: DiscordAPIServer) -> None:
    _alerter(discord_api).post(AlerterMessage(title="t", metadata={"exception": "boom ``` **not bold**"}))

    [description] = [embed["description"] for embed in _posted(discord_api)[0]["embeds"]]
    assert description.count("```") == 2 and "`\u200b`` **not bold**" in description


def test_long_message_is_split_into_messages_discord_accepts(discord_api: DiscordAPIServer) -> None:
    metadata = {f"key{i}": "v" * 1500 for i in range(60)}
    message = AlerterMessage(title="T" * 400, body="b" * 30_000, metadata=metadata)

    assert _alerter(discord_api).post(message) is True  # the local API answers 400 to anything over a limit

    messages = _posted(discord_api)
    assert len(messages) > 1
    assert "".join(e.get("description", "") for m in messages for e in m["embeds"]).count("b") == 30_000
    assert sum(len(e.get("fields", [])) for m in messages for e in m["embeds"]) == 60


def test_more_than_25_facts_go_into_several_embeds(discord_api: DiscordAPIServer) -> None:
    _alerter(discord_api).post(AlerterMessage(title="t", metadata={f"k{i}": i for i in range(30)}))

    field_counts = [len(e["fields"]) for m in _posted(discord_api) for e in m["embeds"] if "fields" in e]
    assert field_counts == [25, 5]


def test_an_embed_discord_refuses_is_sent_again_as_plain_text(
    discord_api: DiscordAPIServer, caplog: pytest.LogCaptureFixture
) -> None:
    bad = DiscordAlerterParameters(embeds=[{"title": "custom", "url": "not-a-url"}])

    assert _alerter(discord_api).post(AlerterMessage(title="Nightly load", body="done"), bad) is True

    [posted] = _posted(discord_api)
    assert posted["content"] == "Nightly load\n\ndone" and "embeds" not in posted
    assert "refused the embed" in caplog.text


def test_webhook_posts_without_a_bot(discord_api: DiscordAPIServer) -> None:
    assert DiscordAlerter(discord_webhook_config(discord_api)).post("hello @everyone") is True

    assert discord_api.webhook_posts == [{"content": "hello @everyone", "allowed_mentions": {"parse": []}}]


def test_a_bare_text_is_a_plain_message_split_at_2000_characters(discord_api: DiscordAPIServer) -> None:
    _alerter(discord_api).post("x" * 4500)

    assert [len(message["content"]) for message in _posted(discord_api)] == [2000, 2000, 500]
    assert not any("embeds" in message for message in _posted(discord_api))


def test_rate_limit_is_retried_after_the_time_discord_asks(discord_api: DiscordAPIServer) -> None:
    discord_api.fail_next("/messages", Fault(429, retry_after=0.2))

    assert _alerter(discord_api).post("hello") is True
    assert len(_posted(discord_api)) == 1
    assert [r.method for r in discord_api.requests] == ["POST", "POST"]


def test_a_post_that_landed_but_answered_too_late_is_retried_without_posting_twice(
    discord_api: DiscordAPIServer,
) -> None:
    discord_api.fail_next("/messages", Fault(200, delay=1.5, lands=True))

    assert _alerter(discord_api, timeout=1.0).post("the nightly load failed") is True
    assert [r.method for r in discord_api.requests] == ["POST", "POST"]
    assert len(_posted(discord_api)) == 1


def test_unknown_channel_is_permanent_and_named(discord_api: DiscordAPIServer) -> None:
    with pytest.raises(AlerterDeliveryError, match="HTTP 404 \\(Unknown Channel\\)"):
        _alerter(discord_api, channel_id=UNKNOWN_CHANNEL).deliver("hello")
    assert _calls(discord_api) == 1


def test_webhook_errors_never_show_the_url(discord_api: DiscordAPIServer, caplog: pytest.LogCaptureFixture) -> None:
    echo = f'{{"message": "no webhook at {discord_api.webhook_url}, token {WEBHOOK_TOKEN}"}}'.encode()
    discord_api.fail_next("webhooks", Fault(404, raw=echo))

    assert DiscordAlerter(discord_webhook_config(discord_api)).post("x") is False

    assert "webhook: HTTP 404" in caplog.text
    assert WEBHOOK_TOKEN not in caplog.text and discord_api.url not in caplog.text


# --- connections ---------------------------------------------------------------------------------


def test_airflow_discord_connection_posts_through_its_webhook(discord_api: DiscordAPIServer) -> None:
    conn = ConnectionFields(
        "d", "discord", host=f"{discord_api.url}/api/", extra={"webhook_endpoint": WEBHOOK_ENDPOINT}
    )

    assert DiscordAlerter(DiscordAlerter.config_from_connection(conn)).post("hi") is True
    assert len(_posted(discord_api, WEBHOOK_CHANNEL)) == 1


def test_airflow_discord_connection_without_host_uses_discord_com() -> None:
    conn = ConnectionFields("d", "discord", extra={"webhook_endpoint": "webhooks/1/abc"})

    assert DiscordAlerter.config_from_connection(conn) == {"webhook_url": "https://discord.com/api/webhooks/1/abc"}


def test_malformed_webhook_endpoint_is_refused_without_echoing_it() -> None:
    conn = ConnectionFields("d", "discord", extra={"webhook_endpoint": "https://discord.com/api/webhooks/1/Sekrit"})

    with pytest.raises(AlerterConfigError, match="webhook_endpoint: expected the form webhooks/") as err:
        DiscordAlerter.config_from_connection(conn)
    assert "Sekrit" not in str(err.value)


def test_alerter_connection_password_is_the_bot_token() -> None:
    conn = ConnectionFields("d", "alerter", password="bot-token", extra={"flavor": "discord", "channel_id": "42"})

    assert DiscordAlerter.config_from_connection(conn) == {"token": "bot-token", "channel_id": "42"}


def test_channel_id_must_be_a_discord_id() -> None:
    with pytest.raises(AlerterConfigError, match="channel_id: .*digits only"):
        DiscordAlerter({"token": "t", "channel_id": "1/../../webhooks/2"})


def test_connection_check_reads_users_me_and_the_channel(discord_api: DiscordAPIServer) -> None:
    ok, reason = _alerter(discord_api).test_connection()

    assert ok and reason == f"authenticated as alerter ({BOT['id']}); can see channel #deployments ({DISCORD_CHANNEL})"


def test_connection_check_with_a_wrong_token_says_401_without_the_token(discord_api: DiscordAPIServer) -> None:
    ok, reason = _alerter(discord_api, token="wrong-token-xyz").test_connection()

    assert not ok and reason == "Discord users/@me: HTTP 401 (401: Unauthorized)"


def test_connection_check_of_a_webhook_sends_nothing(discord_api: DiscordAPIServer) -> None:
    ok, reason = DiscordAlerter(discord_webhook_config(discord_api)).test_connection()

    assert ok and reason == "the webhook 'alerts' is valid (post only)"
    assert discord_api.webhook_posts == []


# --- asking --------------------------------------------------------------------------------------


def test_question_asks_for_a_reply_or_a_reaction(discord_api: DiscordAPIServer) -> None:
    _, handle = _ask(discord_api, approvers=[APPROVER])

    [question] = discord_api.questions(DISCORD_CHANNEL)
    assert question["id"] == handle.message_id
    assert question["content"] == (
        "Deploy model v7?\nReply to this message with **approve** or **decline**, or react with ✅ / ❌. "
        f"Answers count from: <@{APPROVER}>."
    )
    assert question["allowed_mentions"] == {"parse": []}


def test_reply_with_an_approve_keyword_approves(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "LGTM, ship it", reply_to=handle.message_id)

    result = alerter.check_answer(handle)

    assert (result.status, result.responder, result.text) == (AskStatus.APPROVED, APPROVER, "LGTM, ship it")


def test_keywords_are_case_insensitive(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "REJECT", reply_to=handle.message_id)

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_check_mark_reaction_approves(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", APPROVER)

    result = alerter.check_answer(handle)

    assert (result.status, result.responder) == (AskStatus.APPROVED, APPROVER)


def test_cross_mark_reaction_rejects(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "❌", APPROVER)

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_reply_from_someone_not_in_the_approvers_is_ignored(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api, approvers=[APPROVER])
    discord_api.add_message(DISCORD_CHANNEL, OTHER, "approve", reply_to=handle.message_id)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", OTHER)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_replies_and_reactions_from_bots_are_ignored(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, SOME_BOT, "approve", reply_to=handle.message_id, bot=True)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", SOME_BOT, bot=True)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_an_approval_of_an_earlier_question_does_not_answer_this_one(discord_api: DiscordAPIServer) -> None:
    alerter = _alerter(discord_api)
    earlier = alerter.send_question("Deploy model v6?")
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "approve", reply_to=earlier.message_id)

    handle = alerter.send_question("Deploy model v7?")

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_a_keyword_in_the_channel_that_is_not_a_reply_is_not_an_answer(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "ok, lunch?")

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_a_check_is_one_api_call(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, OTHER, "looking", reply_to=handle.message_id)
    before = _calls(discord_api)

    alerter.check_answer(handle)

    assert _calls(discord_api) - before == 1


def test_a_reaction_costs_one_more_call_to_learn_who_reacted(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "❌", APPROVER)
    before = _calls(discord_api)

    alerter.check_answer(handle)

    assert _calls(discord_api) - before == 2
    assert discord_api.requests[-1].path.endswith(f"/messages/{handle.message_id}/reactions/❌")


def test_a_reply_buried_under_chatter_is_found_on_the_next_page(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_chatter(DISCORD_CHANNEL, 150)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "approve", reply_to=handle.message_id)
    before = _calls(discord_api)

    assert alerter.check_answer(handle).status is AskStatus.APPROVED
    assert _calls(discord_api) - before == 2


def test_the_async_check_for_triggers_makes_the_same_calls_and_decision(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", APPROVER)
    before = _calls(discord_api)

    result = asyncio.run(alerter.acheck_answer(handle))

    assert (result.status, result.responder) == (AskStatus.APPROVED, APPROVER)
    assert _calls(discord_api) - before == 2


def test_the_async_check_honours_retry_after_too(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.fail_next("/messages", Fault(429, retry_after=3))

    result = asyncio.run(alerter.acheck_answer(handle))

    assert (result.status, result.retry_after) == (AskStatus.PENDING, 3)


def test_an_unreachable_api_leaves_the_async_check_pending(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.stop()

    result = asyncio.run(alerter.acheck_answer(handle))

    assert result.status is AskStatus.PENDING and "unreachable" in (result.reason or "")


def test_rate_limited_check_stays_pending_and_says_how_long_to_wait(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.fail_next("/messages", Fault(429, retry_after=7.5))

    result = alerter.check_answer(handle)

    assert (result.status, result.retry_after) == (AskStatus.PENDING, 7.5)


def test_server_error_during_a_check_stays_pending(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.fail_next("/messages", Fault(503))

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_a_channel_that_is_gone_ends_the_question_with_the_reason(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    gone = handle.model_copy(update={"channel": UNKNOWN_CHANNEL})

    result = alerter.check_answer(gone)

    assert result.status is AskStatus.ERROR and "HTTP 404 (Unknown Channel)" in (result.reason or "")


def test_conclude_replies_with_the_outcome_and_marks_the_question(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "lgtm", reply_to=handle.message_id)

    alerter.conclude(handle, alerter.check_answer(handle))

    [question] = discord_api.questions(DISCORD_CHANNEL)
    [_, outcome] = discord_api.replies_to(DISCORD_CHANNEL, handle.message_id)
    assert outcome["content"] == f"✅ Approved by <@{APPROVER}>" and outcome["allowed_mentions"] == {"parse": []}
    assert question["content"] == f"Deploy model v7?\n✅ Approved by <@{APPROVER}>"


def test_conclude_shows_an_error_reason_as_it_is(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)

    alerter.conclude(handle, AskResult(status=AskStatus.ERROR, reason="HTTP 403 ({code} missing access)"))

    [outcome] = discord_api.replies_to(DISCORD_CHANNEL, handle.message_id)
    assert outcome["content"] == "⚠️ Closed: HTTP 403 ({code} missing access)"


def test_blocking_ask_returns_when_someone_reacts(discord_api: DiscordAPIServer) -> None:
    def react_once_asked() -> None:
        while not (questions := discord_api.questions(DISCORD_CHANNEL)):
            time.sleep(0.02)
        discord_api.add_reaction(DISCORD_CHANNEL, questions[0]["id"], "✅", APPROVER)

    threading.Thread(target=react_once_asked, daemon=True).start()

    assert _alerter(discord_api).ask("Deploy?", timeout=30, poll_interval=0.05) is True


def test_a_webhook_alone_cannot_ask(discord_api: DiscordAPIServer) -> None:
    with pytest.raises(AlerterConfigError, match="token: asking questions needs a bot token"):
        DiscordAlerter(discord_webhook_config(discord_api)).send_question("Deploy?")


def test_the_bot_token_never_reaches_the_logs(discord_api: DiscordAPIServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    discord_api.fail_next("/messages", Fault(500), times=3)

    _alerter(discord_api, retry_limit=2).post("x")

    assert "HTTP 500" in caplog.text and BOT_TOKEN not in caplog.text
