"""Answer buttons on Discord questions, against the local Discord API: layout, limits, styles, the link,
and the question giving its buttons way to the outcome."""

from __future__ import annotations

from typing import Any

import httpx

from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.discord_render import answer_components
from airflow_alerter.alerters.rendering import MAX_BUTTONS, VIEW_IN_AIRFLOW, button_id
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.servers.discord_api import BOT_TOKEN, DiscordAPIServer

APPROVER = "700000000000000001"
REQUIRED_ACTIONS = "https://airflow.example.com/dags/d/runs/r/tasks/t/required_actions"


def _ask(discord_api: DiscordAPIServer, **settings: Any) -> tuple[DiscordAlerter, QuestionHandle]:
    alerter = DiscordAlerter(discord_config(discord_api), settings=settings)
    return alerter, alerter.send_question("Deploy model v7?")


def _question(discord_api: DiscordAPIServer) -> dict[str, Any]:
    [question] = discord_api.questions(DISCORD_CHANNEL)
    return question


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [button for row in message.get("components", []) for button in row["components"]]


def test_a_question_shows_one_button_per_option_styled_by_meaning_and_the_link(discord_api: DiscordAPIServer) -> None:
    _ask(discord_api, buttons=["Approve", "Reject", "Retrain"], view_url=REQUIRED_ACTIONS)

    assert _question(discord_api)["components"] == [{"type": 1, "components": [
        {"type": 2, "style": 3, "label": "Approve", "custom_id": button_id(0)},
        {"type": 2, "style": 4, "label": "Reject", "custom_id": button_id(1)},
        {"type": 2, "style": 2, "label": "Retrain", "custom_id": button_id(2)},
        {"type": 2, "style": 5, "label": VIEW_IN_AIRFLOW, "url": REQUIRED_ACTIONS},
    ]}]


def test_many_options_fit_discords_limits_five_buttons_a_row_five_rows(discord_api: DiscordAPIServer) -> None:
    options = [f"option {n} " + "x" * 90 for n in range(30)]

    _ask(discord_api, buttons=options, view_url=REQUIRED_ACTIONS)  # the stand-in refuses what Discord refuses

    rows = _question(discord_api)["components"]
    buttons = _buttons(_question(discord_api))
    assert len(rows) == 5 and all(len(row["components"]) <= 5 for row in rows)
    assert [b.get("custom_id") for b in buttons[:-1]] == [button_id(n) for n in range(MAX_BUTTONS)]
    assert buttons[-1]["label"] == VIEW_IN_AIRFLOW
    assert max(len(b["label"]) for b in buttons) == 80


def test_a_question_without_buttons_carries_no_components_and_asks_for_a_reply(discord_api: DiscordAPIServer) -> None:
    _ask(discord_api)

    question = _question(discord_api)
    assert "components" not in question
    assert "\nReply to this message with **approve**" in question["content"]


def test_a_question_with_buttons_still_takes_a_reply(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api, buttons=["Approve", "Reject"])
    discord_api.add_message(DISCORD_CHANNEL, APPROVER, "approve", reply_to=handle.message_id)

    assert "Click a button below, or reply to this message" in _question(discord_api)["content"]
    assert alerter.check_answer(handle).status is AskStatus.APPROVED


def test_show_decision_replaces_the_buttons_with_the_outcome_and_posts_no_reply(
    discord_api: DiscordAPIServer,
) -> None:
    alerter, handle = _ask(discord_api, buttons=["Approve", "Reject"], view_url=REQUIRED_ACTIONS)

    alerter.show_decision(handle, AskResult(status=AskStatus.APPROVED, responder=APPROVER))

    question = _question(discord_api)
    assert question["components"] == []
    assert question["content"] == f"Deploy model v7?\n✅ Approved by <@{APPROVER}>"
    assert discord_api.replies_to(DISCORD_CHANNEL, handle.message_id) == []


def test_conclude_replies_in_the_thread_and_removes_the_buttons_too(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api, buttons=["Approve", "Reject"])

    alerter.conclude(handle, AskResult(status=AskStatus.REJECTED, responder=APPROVER))

    [reply] = discord_api.replies_to(DISCORD_CHANNEL, handle.message_id)
    assert reply["content"] == f"❌ Rejected by <@{APPROVER}>"
    assert _question(discord_api)["components"] == []


def test_show_decision_that_discord_refuses_is_only_logged(discord_api: DiscordAPIServer) -> None:
    alerter, handle = _ask(discord_api, buttons=["Approve"])
    gone = handle.model_copy(update={"message_id": "1"})

    alerter.show_decision(gone, AskResult(status=AskStatus.APPROVED, responder=APPROVER))  # no exception

    assert _buttons(_question(discord_api))


def test_the_stand_in_refuses_components_discord_refuses(discord_api: DiscordAPIServer) -> None:
    extra_row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "extra", "custom_id": "extra"}]}
    too_many_rows = [*answer_components([str(n) for n in range(20)], REQUIRED_ACTIONS), extra_row]
    six_in_a_row = [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": str(n), "custom_id": f"b{n}"} for n in range(6)]}]
    long_id = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": "i" * 101}]}]
    long_label = [{"type": 1, "components": [{"type": 2, "style": 2, "label": "l" * 81, "custom_id": "x"}]}]
    url = f"{discord_api.api_base_url}/channels/{DISCORD_CHANNEL}/messages"

    answers = [httpx.post(url, json={"content": "q", "components": components},
                          headers={"Authorization": f"Bot {BOT_TOKEN}"})
               for components in (too_many_rows, six_in_a_row, long_id, long_label)]

    assert [answer.status_code for answer in answers] == [400, 400, 400, 400]
