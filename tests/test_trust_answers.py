"""Approvals you can trust: only an answer whose intent is unambiguous, from a person allowed to give it, counts.

Each test goes through a flavor's public ``check_answer`` against the local Slack or Discord
stand-in (or a real ``dag.test()`` run); the phrase table is the documentation of what counts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_alerter import AskOptions, SlackAlerter
from airflow_alerter.alerters.answers import NEGATIONS, classify_text
from airflow_alerter.alerters.base import AlerterConfigError
from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.retry import MAX_CHECK_WAIT, wait_before_next_check
from airflow_alerter.models import AskStatus, QuestionHandle
from tests.plugins.airflow import RunDag
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.plugins.slack import CHANNEL, slack_config
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.http import Fault
from tests.servers.slack_api import SlackAPIServer
from tests.test_ask_sensor import gate_dag

APPROVER, OTHER = "UALICE01", "UBOB0001"
APPROVE, REJECT, IGNORED = AskStatus.APPROVED, AskStatus.REJECTED, AskStatus.PENDING

#: what a person writes in the thread → what the gate does with it (default keywords)
PHRASES: list[tuple[str, AskStatus]] = [
    # approve: a keyword first, after any mention, emoji or white space; trailing punctuation is fine
    ("approve", APPROVE), ("Approve!", APPROVE), ("APPROVE.", APPROVE), ("ok", APPROVE), ("OK 👍", APPROVE),
    ("yes", APPROVE), ("Yes, ship it", APPROVE), ("LGTM", APPROVE), ("lgtm!!", APPROVE),
    ("<@UBOT0001> approve", APPROVE), ("@alerter LGTM", APPROVE), ("✅ approve", APPROVE),
    (":rocket: ok", APPROVE), ("   yes\nthanks for checking", APPROVE), ("ok - metrics look fine", APPROVE),
    # reject: a keyword first rejects, whatever follows (a rejection can only stop a gate)
    ("reject", REJECT), ("Reject: metrics regressed", REJECT), ("no", REJECT), ("No — not yet", REJECT),
    ("decline", REJECT), ("disapprove", REJECT), ("no, don't approve", REJECT), ("<@UBOT0001> reject", REJECT),
    ("❌ no", REJECT), ("NO!", REJECT),
    # ignored: negations, questions, keywords that are not first, ambiguous mixes, chatter
    ("I don't approve", IGNORED), ("do NOT approve this", IGNORED), ("not ok", IGNORED),
    ("is this ok?", IGNORED), ("who can approve this?", IGNORED), ("I would never approve this", IGNORED),
    ("ok?", IGNORED), ("approve? not sure", IGNORED), ("ok, not yet", IGNORED), ("yes no", IGNORED),
    ("approve, never mind", IGNORED), ("yes but I can’t check today", IGNORED), ("LGTM, no concerns", IGNORED),
    ("approve or reject, your call", IGNORED), ("looks ok to me", IGNORED), ("please approve", IGNORED),
    ("approved", IGNORED), ("okay", IGNORED), ("nothing to add", IGNORED), ("yesterday's run was fine", IGNORED),
    ("can we wait until Monday", IGNORED), ("", IGNORED), ("👍", IGNORED),
]


def _ask(slack_api: SlackAPIServer, **settings: Any) -> tuple[SlackAlerter, QuestionHandle]:
    alerter = SlackAlerter(slack_config(slack_api), settings=settings or None)
    return alerter, alerter.send_question("Deploy model v7?")


def _thread(slack_api: SlackAPIServer, handle: QuestionHandle) -> list[dict[str, Any]]:
    return [m for m in slack_api.messages[CHANNEL] if m.get("thread_ts") == handle.message_id]


def _notes(slack_api: SlackAPIServer, handle: QuestionHandle) -> list[str]:
    return [m["text"] for m in _thread(slack_api, handle) if m["text"].startswith("How to answer:")]


# --- 1. only an unambiguous intent counts ---------------------------------------------------------


def test_the_phrase_table_has_at_least_forty_rows() -> None:
    assert len(PHRASES) >= 40 and {status for _, status in PHRASES} == {APPROVE, REJECT, IGNORED}


@pytest.mark.parametrize(("text", "expected"), PHRASES, ids=[repr(text) for text, _ in PHRASES])
def test_what_a_reply_says(slack_api: SlackAPIServer, text: str, expected: AskStatus) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, text)

    assert alerter.check_answer(handle).status is expected


_APPROVE_WORDS = st.sampled_from(["approve", "ok", "yes", "LGTM", "Approve", "OK"])
_NEGATION_WORDS = st.sampled_from([*sorted(NEGATIONS), "don't", "won't", "can’t", "isn't", "NOT", "Never"])
_FILLER = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(approve=_APPROVE_WORDS, before=_FILLER, negation=_NEGATION_WORDS, after=_FILLER)
def test_no_text_holding_a_negation_word_ever_approves(approve: str, before: str, negation: str, after: str) -> None:
    text = f"{approve} {before} {negation} {after}"

    assert classify_text(text, AskOptions()) is not AskStatus.APPROVED


@settings(max_examples=300, deadline=None)
@given(approve=_APPROVE_WORDS, middle=_FILLER)
def test_no_text_ending_in_a_question_mark_ever_approves(approve: str, middle: str) -> None:
    assert classify_text(f"{approve}{middle}?", AskOptions()) is not AskStatus.APPROVED


def test_an_unclear_reply_gets_one_note_on_how_to_answer(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "I don't approve")
    alerter.check_answer(handle)
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "is this ok?")

    assert alerter.check_answer(handle).status is AskStatus.PENDING
    [note] = _notes(slack_api, handle)
    assert "'approve'" in note and "'decline'" in note


def test_chatter_without_a_keyword_gets_no_note(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "looking at the dashboards now")

    alerter.check_answer(handle)

    assert _notes(slack_api, handle) == []


def test_a_note_that_cannot_be_posted_does_not_fail_the_check(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "not ok")
    slack_api.fail_next("chat.postMessage", Fault(500), times=5)

    assert alerter.check_answer(handle).status is AskStatus.PENDING


def test_discord_unclear_reply_gets_one_note_too(discord_api: DiscordAPIServer) -> None:
    alerter = DiscordAlerter(discord_config(discord_api))
    handle = alerter.send_question("Deploy?")
    discord_api.add_message(DISCORD_CHANNEL, "UALICE", "do NOT approve this", reply_to=handle.message_id)

    alerter.check_answer(handle)
    alerter.check_answer(handle)

    notes = [m for m in discord_api.replies_to(DISCORD_CHANNEL, handle.message_id)
             if str(m.get("content")).startswith("How to answer:")]
    assert len(notes) == 1 and notes[0]["allowed_mentions"] == {"parse": []}


# --- 2. an empty allowlist is an error, never "everyone" ------------------------------------------


def test_an_empty_approvers_list_fails_at_dag_parse() -> None:
    from airflow_alerter import AlerterAskSensor

    with pytest.raises(AlerterConfigError, match="approvers: must name at least one user id"):
        AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy?", approvers=[])


def test_a_templated_approvers_list_that_renders_empty_fails_the_gate_unapproved(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, read_logs: Any
) -> None:
    slack_api.answer_on_check(1, user=OTHER, text="approve")

    result = run_dag(gate_dag("approvers=\"{{ var.value.get('release_approvers', '') }}\","))

    assert (result.state_of("approve_deploy"), result.state_of("deploy")) == ("failed", "upstream_failed")
    assert "approvers: Value error, must name at least one user id" in read_logs()
    assert slack_api.questions(CHANNEL) == []


def test_a_call_level_empty_list_does_not_widen_a_task_level_one(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api, approvers=[APPROVER])
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "approve")

    with pytest.raises(AlerterConfigError, match="approvers: Value error, must name at least one user id"):
        alerter.check_answer(handle, {"approvers": []})
    assert alerter.check_answer(handle, {"approvers": [" ", APPROVER]}).status is AskStatus.PENDING


def test_a_comma_separated_approvers_string_is_a_list(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api, approvers=f"{OTHER}, {APPROVER}")
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "approve")

    assert alerter.check_answer(handle).responder == APPROVER


# --- 3. bots' reactions do not count ---------------------------------------------------------------


def test_a_check_mark_from_another_bot_does_not_approve(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "white_check_mark", "UOTHERBOT", bot=True)

    assert alerter.check_answer(handle).status is AskStatus.PENDING
    slack_api.add_reaction(CHANNEL, handle.message_id, "white_check_mark", APPROVER)
    assert alerter.check_answer(handle).responder == APPROVER


def test_who_reacted_is_looked_up_once_per_user(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "x", "UOTHERBOT", bot=True)

    for _ in range(3):
        alerter.check_answer(handle)

    assert [call.args["user"] for call in slack_api.calls("users.info")] == ["UOTHERBOT"]


def test_a_reaction_whose_author_cannot_be_looked_up_does_not_count(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "white_check_mark", APPROVER)
    slack_api.fail_next("users.info", Fault(200, raw=b'{"ok": false, "error": "missing_scope"}'))

    assert alerter.check_answer(handle).status is AskStatus.PENDING
    assert alerter.check_answer(handle).status is AskStatus.APPROVED


# --- 4. an approval and a rejection whose order is unknown: the rejection wins -------------------


def test_slack_cross_mark_beats_an_approving_reply_seen_in_the_same_check(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "x", APPROVER)
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "approve")

    result = alerter.check_answer(handle)

    assert (result.status, result.responder, result.text) == (AskStatus.REJECTED, APPROVER, ":x:")


def test_slack_rejecting_reply_beats_a_check_mark_seen_in_the_same_check(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.add_reaction(CHANNEL, handle.message_id, "white_check_mark", APPROVER)
    slack_api.add_reply(CHANNEL, handle.message_id, OTHER, "reject")

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


def test_discord_cross_mark_beats_an_approving_reply(discord_api: DiscordAPIServer) -> None:
    alerter = DiscordAlerter(discord_config(discord_api))
    handle = alerter.send_question("Deploy?")
    discord_api.add_reaction(DISCORD_CHANNEL, handle.message_id, "❌", "UALICE")
    discord_api.add_message(DISCORD_CHANNEL, "UBOB", "approve", reply_to=handle.message_id)

    assert alerter.check_answer(handle).status is AskStatus.REJECTED


# --- 5. errors that waiting cannot cure end the gate at once -------------------------------------


@pytest.mark.parametrize("code", ["channel_not_found", "thread_not_found", "invalid_auth", "not_in_channel",
                                  "token_revoked", "account_inactive"])
def test_a_permanent_slack_error_ends_the_question_with_its_name(slack_api: SlackAPIServer, code: str) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.fail_next("conversations.replies", Fault(200, raw=json.dumps({"ok": False, "error": code}).encode()))

    result = alerter.check_answer(handle)

    assert result.status is AskStatus.ERROR and code in (result.reason or "")


def test_a_permanent_error_in_the_async_check_ends_the_question_too(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    slack_api.fail_next("conversations.replies", Fault(200, raw=b'{"ok": false, "error": "token_revoked"}'))

    assert asyncio.run(alerter.acheck_answer(handle)).status is AskStatus.ERROR


def test_a_gate_whose_channel_vanished_fails_now_instead_of_at_its_timeout(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer, read_logs: Any
) -> None:
    slack_api.fail_next("conversations.replies", Fault(200, raw=b'{"ok": false, "error": "channel_not_found"}'))

    result = run_dag(gate_dag().replace("timeout=30", "timeout=3600"))

    assert result.state_of("approve_deploy") == "failed"
    assert "channel_not_found" in read_logs()


# --- 6. a service's Retry-After never holds a gate past 10 minutes or its deadline ----------------


def test_retry_after_is_honoured_up_to_ten_minutes_and_never_past_the_deadline() -> None:
    assert wait_before_next_check(60, None, None) == 60
    assert wait_before_next_check(60, 120, None) == 120
    assert wait_before_next_check(60, 86400, None) == MAX_CHECK_WAIT == 600
    assert wait_before_next_check(60, 86400, 30) == 30
    assert wait_before_next_check(3600, 86400, None) == 3600  # the poll interval the DAG chose stays its own


def test_the_trigger_waits_at_most_ten_minutes_when_slack_asks_for_a_day(
    slack_conn: str, slack_api: SlackAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_alerter.triggers.alerter import AlerterAskTrigger

    _, handle = _ask(slack_api)
    slack_api.fail_next("conversations.replies", Fault(429, retry_after=86400), times=3)
    slack_api.answer_on_check(4, user=APPROVER, text="approve")
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:  # the triggerer's clock, not the thing under test
        waits.append(seconds)

    monkeypatch.setattr("airflow_alerter.triggers.alerter.asyncio.sleep", no_sleep)
    trigger = AlerterAskTrigger(alerter_conn_id=slack_conn, handle=handle.model_dump(mode="json"),
                                poll_interval=60, timeout_at=None)

    async def first_event() -> Any:
        return await anext(aiter(trigger.run()))

    event = asyncio.run(first_event())

    assert event.payload["result"]["status"] == "approved"
    assert waits == [600, 600, 600]


# --- also checked ----------------------------------------------------------------------------------


def test_an_answer_after_two_hundred_replies_is_found_on_the_next_page(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api)
    for number in range(250):
        slack_api.add_reply(CHANNEL, handle.message_id, OTHER, f"chatter {number}")
    slack_api.add_reply(CHANNEL, handle.message_id, APPROVER, "approve")

    assert alerter.check_answer(handle).responder == APPROVER
    assert len(slack_api.calls("conversations.replies")) == 2


def test_a_gate_whose_ids_are_long_keeps_its_question_under_a_hashed_key(
    run_dag: RunDag, slack_conn: str, slack_api: SlackAPIServer
) -> None:
    slack_api.answer_on_check(3, user=APPROVER, text="approve")
    source = gate_dag('mode="reschedule",').replace('"release"', f'"{"r" * 240}"').replace(
        'task_id="approve_deploy"', f'task_id="{"g" * 240}"')

    result = run_dag(source)

    assert result.state_of("g" * 240) == "success" and len(slack_api.questions(CHANNEL)) == 1
