"""The flavor-neutral rendering module and the typed alert context every flavor reads."""

from __future__ import annotations

import pytest

from airflow_alerter.alerters.discord_render import build_embeds
from airflow_alerter.alerters.rendering import (
    DEFAULT_COLOUR,
    chunks,
    code_block,
    colour,
    cut,
    facts,
    hex_colour,
    preview,
    verb,
    web_log_url,
)
from airflow_alerter.alerters.slack_render import build_blocks
from airflow_alerter.alerters.smtp_email import SMTPEmailAlerter
from airflow_alerter.alerters.webhook import mattermost
from airflow_alerter.models import AlertContext, AlerterMessage

ALERT = AlertContext(kind="failure", log_url="https://airflow.example/log", exception="ValueError: x", traceback="tb")


def test_cut_ends_a_shortened_text_in_an_ellipsis_within_the_size() -> None:
    assert cut("abcdef", 4) == "abc…"


def test_cut_leaves_a_text_that_fits_alone() -> None:
    assert cut("abcd", 4) == "abcd"


def test_chunks_of_an_empty_text_are_none() -> None:
    assert chunks("", 10) == []


def test_chunks_join_back_to_the_text_each_within_the_size() -> None:
    pieces = chunks("x" * 25, 10)

    assert "".join(pieces) == "x" * 25
    assert [len(piece) for piece in pieces] == [10, 10, 5]


def test_chunking_never_splits_inside_a_code_fence_that_fits_a_chunk() -> None:
    pieces = chunks("intro " * 3 + "```\ncode\n```" + " outro", 25)

    assert "".join(pieces) == "intro " * 3 + "```\ncode\n```" + " outro"
    assert [piece.count("```") % 2 for piece in pieces] == [0] * len(pieces)


def test_a_fence_longer_than_a_chunk_is_still_chunked_within_the_size() -> None:
    pieces = chunks("```" + "z" * 30 + "```", 10)

    assert "".join(pieces) == "```" + "z" * 30 + "```"
    assert max(map(len, pieces)) == 10


def test_a_long_code_block_is_cut_inside_its_fence_which_stays_closed() -> None:
    block = code_block("y" * 100, 40)

    assert len(block) <= 40
    assert block.startswith("```\n") and block.endswith("…\n```")


def test_user_fences_cannot_close_a_code_block_early() -> None:
    assert code_block("before ``` after", 100).count("```") == 2


def test_slack_keeps_an_exception_holding_a_fence_in_one_code_block() -> None:
    blocks = build_blocks(AlerterMessage(title="t", metadata={"exception": "bad ``` input"}))

    assert blocks[-1]["text"]["text"].count("```") == 2


@pytest.mark.parametrize("kind", ["failure", "retry", "success", "info"])
def test_each_flavor_converts_the_one_colour_table(kind: str) -> None:
    message = AlerterMessage(title="t", metadata=AlertContext(kind=kind).as_metadata({"dag_id": "d"}))
    email = SMTPEmailAlerter({"smtp_server": "localhost", "sender_email": "airflow@example.com"})

    assert build_embeds(message)[0]["color"] == colour(kind)
    assert mattermost(message)["attachments"][0]["color"] == f"#{colour(kind):06X}"
    assert email.template_context(message, None)["accent"] == f"#{colour(kind):06x}"


def test_an_unknown_kind_gets_the_default_colour() -> None:
    assert colour("weird") == colour(None) == DEFAULT_COLOUR
    assert hex_colour(None) == "#0052cc"


def test_verb_names_a_known_kind_and_shows_an_unknown_one_as_it_is() -> None:
    assert (verb("retry"), verb("custom")) == ("failed and will be retried", "custom")


def test_preview_is_the_title_when_there_is_one() -> None:
    assert preview(AlerterMessage(title="Title", body="first\nsecond"), 200) == "Title"


def test_preview_is_the_first_body_line_without_a_title() -> None:
    assert preview(AlerterMessage(body="\n  first\nsecond"), 200) == "first"


def test_preview_fits_its_size() -> None:
    assert len(preview(AlerterMessage(title="t" * 300), 200)) == 200


def test_facts_leave_out_block_keys_and_empty_values() -> None:
    metadata = {**ALERT.as_metadata({}), "dag_id": "d", "note": "", "gone": None}

    assert facts(metadata) == [("dag_id", "d")]


def test_only_a_web_url_becomes_a_link() -> None:
    assert web_log_url(AlertContext(log_url="javascript:alert(1)")) is None
    assert web_log_url(ALERT) == "https://airflow.example/log"


def test_alert_context_reads_the_metadata_keys_back_typed() -> None:
    message = AlerterMessage(metadata={"kind": "retry", "exception": 42, "traceback": "", "log_url": None, "x": 1})

    assert message.alert == AlertContext(kind="retry", exception="42")


def test_alert_metadata_lists_the_kind_first_and_the_error_last() -> None:
    assert list(ALERT.as_metadata({"dag_id": "d", "run_id": None})) == [
        "kind", "dag_id", "log_url", "exception", "traceback"]


def test_a_message_built_by_hand_renders_as_one_built_typed() -> None:
    by_hand = AlerterMessage(title="t", body="b", metadata={
        "kind": "failure", "dag_id": "d", "log_url": "https://airflow.example/log", "exception": "ValueError: x",
        "traceback": "tb"})
    typed = AlerterMessage(title="t", body="b", metadata=ALERT.as_metadata({"dag_id": "d"}))

    assert build_blocks(by_hand) == build_blocks(typed)
    assert build_embeds(by_hand) == build_embeds(typed)
    assert by_hand.as_text() == typed.as_text()
