"""Answer buttons on Slack questions, the payloads a responder reads back, and the heartbeat that turns them on.

Real slack_sdk against the local Slack stand-in; the payload readers and the heartbeat are pure."""

from __future__ import annotations

import calendar
import time
from typing import Any

import pytest

from airflow_alerter.alerters.rendering import MAX_BUTTONS, button_id, button_option
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.exceptions import AlerterConfigError
from airflow_alerter.hooks.heartbeat import LIVE_FOR, Heartbeat, is_live
from airflow_alerter.models import AskResult, AskStatus
from airflow_alerter.responder.slack_events import click_from_actions, question_of_event
from tests.plugins.slack import CHANNEL, slack_config
from tests.servers.slack_api import SlackAPIServer


def _ask(slack_api: SlackAPIServer, **params: Any) -> tuple[SlackAlerter, Any]:
    alerter = SlackAlerter(config=slack_config(slack_api))
    return alerter, alerter.send_question("Deploy model v7?", alerter.coerce_params(params))


def _buttons(slack_api: SlackAPIServer) -> list[dict[str, Any]]:
    return [element for block in slack_api.questions(CHANNEL)[0]["blocks"] if block["type"] == "actions"
            for element in block["elements"]]


def test_a_question_asked_with_buttons_shows_one_per_option_in_order(slack_api: SlackAPIServer) -> None:
    _ask(slack_api, buttons=["Approve", "Reject", "Retrain first"])

    assert [(b["action_id"], b["text"]["text"], b.get("style")) for b in _buttons(slack_api)] == [
        (button_id(0), "Approve", "primary"), (button_id(1), "Reject", "danger"), (button_id(2), "Retrain first", None)]


def test_the_reject_button_asks_for_confirmation_and_approve_does_not(slack_api: SlackAPIServer) -> None:
    _ask(slack_api, buttons=["Approve", "Reject"])

    approve, reject = _buttons(slack_api)
    assert "confirm" not in approve and reject["confirm"]["confirm"]["text"] == "Reject"


def test_the_view_in_airflow_button_links_to_the_page(slack_api: SlackAPIServer) -> None:
    _ask(slack_api, buttons=["Approve", "Reject"], view_url="https://airflow.example.com/dags/d/required_actions")

    assert _buttons(slack_api)[-1] == {"type": "button", "action_id": "airflow_alerter.view",
                                       "url": "https://airflow.example.com/dags/d/required_actions",
                                       "text": {"type": "plain_text", "text": "View in Airflow"}}


def test_a_view_url_that_is_not_a_web_link_is_refused_by_name(slack_api: SlackAPIServer) -> None:
    with pytest.raises(AlerterConfigError, match="view_url"):
        _ask(slack_api, buttons=["Approve"], view_url="javascript:alert(1)")


def test_more_options_than_a_question_can_show_are_cut_to_the_limit(slack_api: SlackAPIServer) -> None:
    _ask(slack_api, buttons=[f"option {n}" for n in range(MAX_BUTTONS + 5)])

    assert len(_buttons(slack_api)) == MAX_BUTTONS


def test_a_question_asked_without_buttons_has_none(slack_api: SlackAPIServer) -> None:
    _ask(slack_api)

    assert _buttons(slack_api) == []


def test_showing_the_decision_takes_the_buttons_away_and_says_who_and_when(slack_api: SlackAPIServer) -> None:
    alerter, handle = _ask(slack_api, buttons=["Approve", "Reject"])
    at = calendar.timegm((2026, 12, 2, 14, 2, 0))

    alerter.show_decision(handle, AskResult(status=AskStatus.APPROVED, responder="UALICE01", answered_at=at))

    question = slack_api.questions(CHANNEL)[0]
    assert _buttons(slack_api) == [] and question["text"].endswith("✅ Approved by <@UALICE01> at 14:02 UTC")
    assert slack_api.calls("chat.postMessage")[1:] == []  # no thread reply: the gate concludes that itself


def test_a_click_on_an_answer_button_is_read_with_its_question_and_clicker() -> None:
    payload = {"type": "block_actions", "user": {"id": "UALICE01", "name": "alice"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "17.5"},
               "actions": [{"action_id": button_id(1)}]}

    click = click_from_actions("ml_slack", payload)

    assert click is not None
    assert (click.channel, click.message_id, click.option, click.user_id, click.user_name) == (
        "C1", "17.5", 1, "UALICE01", "alice")


@pytest.mark.parametrize("payload", [
    {"type": "block_actions", "user": {"id": "U1"}, "container": {"channel_id": "C1", "message_ts": "1.0"},
     "actions": [{"action_id": "another_app.approve"}]},
    {"type": "view_submission", "user": {"id": "U1"}, "actions": [{"action_id": button_id(0)}]},
    {"type": "block_actions", "container": {"channel_id": "C1", "message_ts": "1.0"},
     "actions": [{"action_id": button_id(0)}]},
    {"type": "block_actions", "user": {"id": "U1"}, "actions": "not a list"},
    {"type": "block_actions", "user": ["U1"], "container": "C1", "actions": [{"action_id": button_id(0)}]},
], ids=["another app's button", "not a click", "no clicker", "malformed actions", "malformed fields"])
def test_anything_but_a_click_on_our_button_is_not_read_as_one(payload: dict[str, Any]) -> None:
    assert click_from_actions("ml_slack", payload) is None


@pytest.mark.parametrize(("action_id", "option"), [
    (button_id(3), 3), ("airflow_alerter.option.-1", None), ("airflow_alerter.option.9999", None),
    ("airflow_alerter.option.", None), (None, None)])
def test_a_button_id_names_an_option_index_or_nothing(action_id: Any, option: int | None) -> None:
    assert button_option(action_id) == option


def test_a_thread_reply_and_a_reaction_point_at_their_question_and_a_bots_message_does_not() -> None:
    assert question_of_event({"type": "message", "channel": "C1", "ts": "2.0", "thread_ts": "1.0"}) == ("C1", "1.0")
    assert question_of_event({"type": "reaction_added", "item": {"type": "message", "channel": "C1",
                                                                  "ts": "1.0"}}) == ("C1", "1.0")
    assert question_of_event({"type": "message", "channel": "C1", "ts": "2.0", "thread_ts": "1.0",
                              "bot_id": "B1"}) is None
    assert question_of_event({"type": "message", "channel": "C1", "ts": "1.0"}) is None  # not in a thread


def test_a_heartbeat_counts_while_fresh_and_not_once_old_or_unreadable() -> None:
    now = time.time()
    beat = Heartbeat(at=now, responder="host:1", mode="socket_mode").model_dump_json()

    assert is_live(beat, now + LIVE_FOR - 1)
    assert not is_live(beat, now + LIVE_FOR + 1)
    assert not is_live("{not json", now) and not is_live(None, now)
