"""The discord flavor against a local Discord API: embeds, limits, mentions, and answers."""

from __future__ import annotations

import pytest

from airflow_alerter import AlerterMessage, DiscordAlerter
from airflow_alerter.alerters.base import AlerterConfigError, AlerterDeliveryError, ConnectionFields
from airflow_alerter.models import AskStatus, QuestionHandle
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.servers.discord_api import BOT_TOKEN, WEBHOOK_PATH, DiscordAPIServer
from tests.servers.http import Fault

APPROVER, OTHER = "700000000000000001", "700000000000000002"


def _ask(discord_api: DiscordAPIServer, **settings: object) -> tuple[DiscordAlerter, QuestionHandle]:
    alerter = DiscordAlerter(discord_config(discord_api), settings=settings or None)
    return alerter, alerter.send_question("Deploy model v7?")


def test_post_sends_an_embed_with_a_content_fallback(discord_api: DiscordAPIServer) -> None:
    message = AlerterMessage(title="Task Failure Alert", body="train failed",
                             metadata={"kind": "failure", "dag_id": "ml", "exception": "ValueError: nan"})

    assert DiscordAlerter(discord_config(discord_api)).post(message) is True

    [posted] = discord_api.channels[DISCORD_CHANNEL]
    assert posted["content"] == "Task Failure Alert"
    assert posted["embeds"][0]["title"] == "Task Failure Alert" and posted["embeds"][0]["color"] == 0xDE350B
    assert "```ValueError: nan```" in [embed.get("description") for embed in posted["embeds"]]
    assert posted["embeds"][-1]["fields"] == [{"name": "dag_id", "value": "ml", "inline": True}]


def test_mentions_are_neutralised(discord_api: DiscordAPIServer) -> None:
    DiscordAlerter(discord_config(discord_api)).post(AlerterMessage(title="@everyone", body="@here <@123>"))

    assert discord_api.channels[DISCORD_CHANNEL][0]["allowed_mentions"] == {"parse": []}


def test_long_message_is_split_across_embeds_and_messages(discord_api: DiscordAPIServer) -> None:
    metadata = {f"key{i}": "v" * 1500 for i in range(60)}
    DiscordAlerter(discord_config(discord_api)).post(AlerterMessage(title="T" * 400, body="b" * 30_000,
                                                                    metadata=metadata))

    messages = discord_api.channels[DISCORD_CHANNEL]
    assert len(messages) > 1
    for message in messages:
        assert len(message["embeds"]) <= 10 and len(message.get("content", "")) <= 2000
        assert sum(len(e.get("title", "")) + len(e.get("description", "")) + sum(
            len(f["name"]) + len(f["value"]) for f in e.get("fields", [])) for e in message["embeds"]) <= 6000
        for embed in message["embeds"]:
            assert len(embed.get("title", "")) <= 256 and len(embed.get("description", "")) <= 4096
            assert len(embed.get("fields", [])) <= 25
            assert all(len(field["value"]) <= 1024 for field in embed.get("fields", []))
    assert "".join(e.get("description", "") for m in messages for e in m["embeds"]).count("b") == 30_000


def test_webhook_posts_without_a_bot(discord_api: DiscordAPIServer) -> None:
    assert DiscordAlerter({"webhook_url": discord_api.webhook_url}).post("hello @everyone") is True

    assert discord_api.webhook_posts[0]["allowed_mentions"] == {"parse": []}


def test_airflow_discord_connection_maps_to_the_webhook() -> None:
    conn = ConnectionFields("d", "discord", host="https://discord.com/api/",
                            extra={"webhook_endpoint": "webhooks/1/abc"})

    assert DiscordAlerter.config_from_connection(conn) == {"webhook_url": "https://discord.com/api/webhooks/1/abc"}


def test_rate_limit_is_retried_after_retry_after(discord_api: DiscordAPIServer) -> None:
    discord_api.fail_next("/messages", Fault(429, retry_after=0.2))

    assert DiscordAlerter(discord_config(discord_api)).post("hello") is True
    assert len(discord_api.channels[DISCORD_CHANNEL]) == 1


def test_unknown_channel_is_permanent_and_named(discord_api: DiscordAPIServer) -> None:
    with pytest.raises(AlerterDeliveryError, match="HTTP 404 \\(Unknown Channel\\)"):
        DiscordAlerter(discord_config(discord_api, channel_id="404404")).deliver("hello")
    assert len([r for r in discord_api.requests if "/messages" in r.path]) == 1


def test_webhook_errors_never_show_the_url(discord_api: DiscordAPIServer, caplog: pytest.LogCaptureFixture) -> None:
    discord_api.fail_next("webhooks", Fault(500), times=5)

    assert DiscordAlerter({"webhook_url": discord_api.webhook_url, "retry_backoff": 0.01}).post("x") is False
    assert "HTTP 500" in caplog.text and WEBHOOK_PATH not in caplog.text and discord_api.url not in caplog.text


def test_connection_check_uses_users_me(discord_api: DiscordAPIServer) -> None:
    ok, reason = DiscordAlerter(discord_config(discord_api)).test_connection()
    bad, why = DiscordAlerter(discord_config(discord_api, token="wrong-token-xyz")).test_connection()

    assert ok and "alerter" in reason
    assert not bad and "401" in why and BOT_TOKEN not in why


def test_reply_approves(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "Approve!", reply_to=handle.message_id)

    result = alerter.check_answer(handle)

    assert (result.status, result.responder) == (AskStatus.APPROVED, APPROVER)


def test_keywords_are_case_insensitive(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "REJECT", reply_to=handle.message_id)

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_check_mark_reaction_approves(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", APPROVER)

    assert alerter.check_answer(handle).status is AskStatus.APPROVED


def test_bots_non_approvers_and_earlier_messages_do_not_count(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api, approvers=[APPROVER])
    discord_api.add_message(DISCORD_CHANNEL, "800000000000000001", "approve", reply_to=handle.message_id, bot=True)
    discord_api.add_message(DISCORD_CHANNEL, OTHER, "approve", reply_to=handle.message_id)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "approve", offset_s=-60)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "✅", "800000000000000001", bot=True)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_a_check_is_one_call_unless_someone_reacted(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    before = len(discord_api.requests)
    alerter.check_answer(handle)
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "❌", APPROVER)
    alerter.check_answer(handle)

    assert len(discord_api.requests) - before == 1 + 2


def test_rate_limited_check_stays_pending(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.fail_next("/messages", Fault(429, retry_after=7))

    result = alerter.check_answer(handle)

    assert (result.status, result.retry_after) == (AskStatus.PENDING, 7)


def test_blocking_ask_replies_with_the_outcome(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api)
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "lgtm", reply_to=handle.message_id)

    alerter.conclude(handle, alerter.check_answer(handle))

    last = discord_api.channels[DISCORD_CHANNEL][-1]
    assert last["content"] == f"✅ Approved by <@{APPROVER}>" and last["allowed_mentions"] == {"parse": []}


def test_webhook_cannot_ask(discord_api: DiscordAPIServer) -> None:
    with pytest.raises(AlerterConfigError, match="token: asking questions needs a bot token"):
        DiscordAlerter({"webhook_url": discord_api.webhook_url}).send_question("Deploy?")
