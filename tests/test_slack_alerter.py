"""The slack flavor against a local Slack-compatible API: what lands in the channel, and which answers count."""

from __future__ import annotations

import pytest

from airflow_alerter import AlerterMessage, SlackAlerter, SlackAlerterParameters
from airflow_alerter.alerters.base import AlerterConfigError, ConnectionFields
from airflow_alerter.models import AskStatus, QuestionHandle
from tests.plugins.slack import CHANNEL, slack_config
from tests.servers.http import Fault
from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer

APPROVER, OTHER = "UALICE01", "UBOB0001"


def _ask(slack_api: SlackAPIServer, **settings: object) -> tuple[SlackAlerter, QuestionHandle]:
    alerter = SlackAlerter(slack_config(slack_api), settings=settings or None)
    return alerter, alerter.send_question("Deploy model v7?")


def test_post_sends_block_kit_with_a_text_fallback(slack_api: SlackAPIServer) -> None:
    message = AlerterMessage(title="Task Failure Alert", body="train failed", metadata={
        "dag_id": "ml", "task_id": "train", "run_id": "r1", "log_url": "http://airflow/log?a=1&b=2",
        "exception": "ValueError: nan", "accuracy": "0.9"})

    assert SlackAlerter(slack_config(slack_api)).post(message) is True

    [posted] = slack_api.messages[CHANNEL]
    types = [block["type"] for block in posted["blocks"]]
    assert types == ["header", "section", "section", "section", "context"]
    assert posted["blocks"][2]["fields"][0]["text"] == "*accuracy*\n0.9"
    assert posted["blocks"][-1]["elements"][0]["text"] == (
        "DAG `ml` · task `train` · run `r1` · <http://airflow/log?a=1&amp;b=2|View log>")
    assert "Task Failure Alert" in posted["text"] and "train failed" in posted["text"]


def test_long_text_is_split_to_slacks_limits_instead_of_failing(slack_api: SlackAPIServer) -> None:
    metadata = {f"key{i}": "v" * 3000 for i in range(30)}
    SlackAlerter(slack_config(slack_api)).post(AlerterMessage(title="T" * 400, body="b" * 200_000, metadata=metadata))

    blocks = slack_api.messages[CHANNEL][0]["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in blocks)
    assert all(len(field["text"]) <= 2000 for block in blocks for field in block.get("fields", []))


def test_custom_blocks_and_channel_from_parameters(slack_api: SlackAPIServer) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*custom*"}}]
    SlackAlerter(slack_config(slack_api)).post("x", SlackAlerterParameters(channel="C0OTHER", blocks=blocks))

    assert slack_api.messages["C0OTHER"][0]["blocks"] == blocks


def test_rate_limited_post_is_retried_after_retry_after(slack_api: SlackAPIServer) -> None:
    slack_api.fail_next("chat.postMessage", Fault(429, retry_after=1))

    assert SlackAlerter(slack_config(slack_api)).post("hello") is True
    assert len(slack_api.calls("chat.postMessage")) == 2


def test_slack_error_code_is_reported_without_the_token(
    slack_api: SlackAPIServer, caplog: pytest.LogCaptureFixture
) -> None:
    alerter = SlackAlerter(slack_config(slack_api, channel="CNOPE000"))

    assert alerter.post("hello") is False
    assert "channel_not_found" in caplog.text and BOT_TOKEN not in caplog.text


def test_webhook_connection_posts_without_a_token(slack_api: SlackAPIServer) -> None:
    alerter = SlackAlerter({"webhook_url": slack_api.webhook_url})

    assert alerter.post(AlerterMessage(title="hi", body="<!channel>")) is True
    assert slack_api.webhook_posts[0]["text"].endswith("&lt;!channel&gt;")


def test_webhook_cannot_ask(slack_api: SlackAPIServer) -> None:
    with pytest.raises(AlerterConfigError, match="token: asking questions needs a bot token"):
        SlackAlerter({"webhook_url": slack_api.webhook_url}).send_question("Deploy?")


def test_airflow_slack_and_slackwebhook_connections_map_unchanged() -> None:
    slack = SlackAlerter.config_from_connection(
        ConnectionFields("s", "slack", password="xoxb-1", extra={"timeout": 5, "base_url": "http://x/"}))
    hook = SlackAlerter.config_from_connection(ConnectionFields("w", "slackwebhook", password="T0/B0/XYZ"))

    assert slack == {"token": "xoxb-1", "timeout": 5, "base_url": "http://x/"}
    assert hook == {"webhook_url": "https://hooks.slack.com/services/T0/B0/XYZ"}


def test_connection_check_uses_auth_test(slack_api: SlackAPIServer) -> None:
    ok, reason = SlackAlerter(slack_config(slack_api)).test_connection()
    bad, why = SlackAlerter(slack_config(slack_api, token="xoxb-wrong")).test_connection()

    assert ok and "UBOT0001" in reason
    assert not bad and "invalid_auth" in why


# --- asking ---------------------------------------------------------------------------------


def test_question_is_posted_with_how_to_answer(slack_api: SlackAPIServer) -> None:
    _, handle = _ask(slack_api)

    [question] = slack_api.questions(CHANNEL)
    assert handle.message_id == question["ts"] and "Deploy model v7?" in question["text"]
    assert "react with ✅ / ❌" in question["blocks"][-1]["elements"][0]["text"]


def test_thread_reply_approves(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "approve")

    result = alerter.check_answer(handle)

    assert (result.status, result.responder, result.text) == (AskStatus.APPROVED, APPROVER, "approve")


def test_mixed_case_lgtm_approves(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "lgTm, ship it")

    assert alerter.check_answer(handle).status is AskStatus.APPROVED


def test_reject_keyword_rejects(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "No — metrics look off")

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_keyword_must_be_a_whole_word(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "nothing to add, looking at the token budget")

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_check_mark_reaction_approves(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "white_check_mark", APPROVER)

    assert alerter.check_answer(handle).status is AskStatus.APPROVED


def test_reply_from_a_non_approver_is_ignored(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api, approvers=[APPROVER])
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "approve")

    assert alerter.check_answer(handle).status is AskStatus.PENDING
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "reject")
    assert alerter.check_answer(handle).responder == APPROVER


def test_bot_reply_is_ignored(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, "UOTHERBOT", "approve", bot=True)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_reply_dated_before_the_question_is_ignored(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    earlier = f"{float(handle.message_id) - 100:.6f}"
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "approve", ts=earlier)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_first_valid_answer_wins(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "reject")
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "approve")

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_each_check_is_one_api_call(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    before = len(slack_api.requests)

    for _ in range(3):
        alerter.check_answer(handle)

    assert [request.endpoint for request in slack_api.requests[before:]] == ["conversations.replies"] * 3


def test_rate_limited_check_stays_pending_and_says_when_to_retry(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.fail_next("conversations.replies", Fault(429, retry_after=42))

    result = alerter.check_answer(handle)

    assert (result.status, result.retry_after) == (AskStatus.PENDING, 42)
    assert len(slack_api.calls("conversations.replies")) == 1, "no hidden retry inside a check"


async def _acheck(alerter: SlackAlerter, handle: QuestionHandle) -> AskStatus:
    return (await alerter.acheck_answer(handle)).status


def test_async_check_finds_the_same_answer(slack_api: SlackAPIServer) -> None:
    import asyncio

    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "x", APPROVER)

    assert asyncio.run(_acheck(alerter, handle)) is AskStatus.REJECTED


def test_blocking_ask_waits_for_the_answer_and_shows_the_outcome(slack_api: SlackAPIServer) -> None:
    slack_api.answer_on_check(2, user=APPROVER, text="yes")
    alerter = SlackAlerter(slack_config(slack_api))

    assert alerter.ask("Deploy?", poll_interval=0.05, timeout=10) is True
    question = slack_api.questions(CHANNEL)[0]
    replies = [m["text"] for m in slack_api.messages[CHANNEL] if m.get("thread_ts") == question["ts"]]
    assert replies[-1] == f"✅ Approved by <@{APPROVER}>"
    assert "Approved by" in question["text"]


def test_blocking_ask_times_out(slack_api: SlackAPIServer) -> None:
    alerter = SlackAlerter(slack_config(slack_api))

    result = alerter.ask_for_result("Deploy?", poll_interval=0.05, timeout=0.2)

    assert result.status is AskStatus.TIMED_OUT
    assert slack_api.messages[CHANNEL][-1]["text"].startswith("⌛ Timed out")
