"""The bad-input matrix: hostile, huge, broken or empty input to every chat flavor, checked on what the servers got.

Each case ends in a safe escape (the target shows the text and pings nobody), a cut with a visible
marker, or a clear error naming the field before anything is sent: never a crash, never half a message.
The email flavor's own matrix is in ``test_email_inputs.py``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_alerter import AlerterConfigError, AlerterHook, AlerterMessage, SMTPEmailAlerter
from airflow_alerter.alerters.base import BaseAlerter
from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.alerters.webhook import WebhookAlerter
from airflow_alerter.notifications.alerter import task_alert_message
from tests.plugins.airflow import AIRFLOW_VERSION, RunDag
from tests.plugins.discord import DISCORD_CHANNEL, discord_config
from tests.plugins.slack import CHANNEL, slack_config
from tests.plugins.smtp import alerter_config
from tests.plugins.webhook import webhook_config
from tests.servers.discord_api import BOT_TOKEN as DISCORD_TOKEN
from tests.servers.discord_api import DiscordAPIServer
from tests.servers.slack_api import BOT_TOKEN as SLACK_TOKEN
from tests.servers.slack_api import SlackAPIServer
from tests.servers.smtp import LocalSMTPServer
from tests.servers.webhook import WebhookServer

ZWSP = "\u200b"
LOG_URL = "http://airflow.example/log?x=1"
HOSTILE = ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C0GENERAL>", "<http://x|y>", "@everyone", "@here",
           "@channel", "@all", "<users/all>", "<script>alert(1)</script>", "<b>bold</b>", "<@&456>", "AT&T & co"]
WORLD = ["🚀", "🔥💥", "שלום עולם", "مرحبا بالعالم", "\u202eevil\u202c", "データ"]
# arbitrary text; "&" and the zero-width space are left to the explicit cases (the escapes use them)
PLAIN = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="&\u200b`"), max_size=30)
TOKEN = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(WORLD), PLAIN)
LINE = st.lists(TOKEN, min_size=1, max_size=4).map(" ".join)
TEXT = st.lists(st.tuples(TOKEN, st.sampled_from([" ", "\n"])), min_size=1, max_size=8).map(
    lambda parts: "".join(token + sep for token, sep in parts))
FACT_KEY = st.sampled_from(["owner", "<!here>", "@everyone team", "note 🚀", "<users/all>"])
HYPOTHESIS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the targets: how to post to each, and what its people would see --------------------------------


@dataclass
class Target:
    """One flavor (or webhook preset) on its local server: send, then read back what arrived."""

    name: str
    build: Callable[..., BaseAlerter]
    received: Callable[[], list[Any]]
    visible: Callable[[list[Any]], str]
    assert_inert: Callable[[list[Any]], None]

    def send(self, message: AlerterMessage, **config: Any) -> list[Any]:
        before = len(self.received())
        assert self.build(**config).post(message) is True
        return self.received()[before:]


def _slack_texts(posted: list[dict[str, Any]]) -> Iterator[str]:
    """Every string Slack parses as mrkdwn (and the notification text)."""
    for message in posted:
        yield message["text"]
        for block in message["blocks"] or []:
            if block.get("text", {}).get("type") == "mrkdwn":
                yield block["text"]["text"]
            yield from (field["text"] for field in block.get("fields", []))
            yield from (element["text"] for element in block.get("elements", []))


def _slack_unescape(text: str) -> str:
    """What a reader sees of mrkdwn text: Slack shows &lt; &gt; &amp; as the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_visible(posted: list[dict[str, Any]]) -> str:
    header = [b["text"]["text"] for m in posted for b in m["blocks"] or [] if b["type"] == "header"]
    return _slack_unescape("\n".join([*header, *_slack_texts(posted)]))


def _slack_inert(posted: list[dict[str, Any]]) -> None:
    for text in _slack_texts(posted):
        ours = re.sub(r"<https?://[^\s<>|]+\|View log>", "", text)  # the one link we make: the task log
        assert "<" not in ours and ">" not in ours, f"mrkdwn control sequence survived: {text!r}"


def _discord_visible(posted: list[dict[str, Any]]) -> str:
    parts = []
    for message in posted:
        parts.append(message.get("content") or "")
        for embed in message.get("embeds") or []:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [text for f in embed.get("fields") or [] for text in (f["name"], f["value"])]
    return "\n".join(parts).replace(ZWSP, "")


def _discord_inert(posted: list[dict[str, Any]]) -> None:
    # Discord pings only what allowed_mentions allows: with "parse": [] and no ids listed, nobody
    assert all(message["allowed_mentions"] == {"parse": []} for message in posted)


def _mattermost_texts(posted: list[dict[str, Any]]) -> Iterator[str]:
    for payload in posted:
        yield payload["text"]
        for attachment in payload.get("attachments", []):
            yield attachment["fallback"]
            for field in attachment["fields"]:
                yield from (field["title"], field["value"])


def _mattermost_visible(posted: list[dict[str, Any]]) -> str:
    return html.unescape("\n".join(_mattermost_texts(posted))).replace(ZWSP, "")


def _mattermost_inert(posted: list[dict[str, Any]]) -> None:
    """What Mattermost does to a webhook's text (app/webhook.go): expand Slack markup, then look for mentions."""
    for text in _mattermost_texts(posted):
        assert not any(token in text for token in ("<!channel>", "<!here>", "<!all>")), text
        assert not re.search(r"<@[a-zA-Z0-9]+>", text), text
        assert not re.search(r"<([^\n<|>]+)\|([^|\n>]+)>", text), f"a Slack link would become a link: {text!r}"
        assert not re.search(r"(?<![\w@])@(channel|all|here)\b", text, re.IGNORECASE), text


def _teams_visible(posted: list[dict[str, Any]]) -> str:
    card = posted[0]["attachments"][0]["content"]
    texts = [block.get("text", "") for block in card["body"]]
    texts += [text for block in card["body"] for f in block.get("facts", []) for text in (f["title"], f["value"])]
    return "\n".join(texts)


def _teams_inert(posted: list[dict[str, Any]]) -> None:
    # Teams mentions need <at> tags *and* msteams.entities; the card never carries entities, and
    # user text sits only in TextBlock/FactSet, which Teams never renders as HTML
    card = posted[0]["attachments"][0]["content"]
    assert "msteams" not in card and {block["type"] for block in card["body"]} <= {"TextBlock", "FactSet"}


OUR_CARD_TAGS = re.compile(r'<b>Exception</b><br><font color="#DE350B">|</font>')


def _google_chat_visible(posted: list[dict[str, Any]]) -> str:
    card = posted[0]["cardsV2"][0]["card"]
    texts = [posted[0]["text"], card["header"]["title"]]
    for widget in card.get("sections", [{}])[0].get("widgets", []):
        texts += [widget.get("textParagraph", {}).get("text", "")]
        texts += [widget.get("decoratedText", {}).get(key, "") for key in ("topLabel", "text")]
    return html.unescape(OUR_CARD_TAGS.sub("", "\n".join(texts))).replace(ZWSP, "")


def _google_chat_inert(posted: list[dict[str, Any]]) -> None:
    assert not re.search(f"<(?!{ZWSP})", posted[0]["text"]), "the text line would ping <users/all> or make a link"
    card = posted[0]["cardsV2"][0]["card"]
    for widget in card.get("sections", [{}])[0].get("widgets", []):
        for text in [widget.get("textParagraph", {}).get("text", ""),
                     *(widget.get("decoratedText", {}).get(key, "") for key in ("topLabel", "text"))]:
            assert "<" not in OUR_CARD_TAGS.sub("", text), f"card HTML not escaped: {text!r}"


@dataclass
class Servers:
    slack: SlackAPIServer
    discord: DiscordAPIServer
    webhook: WebhookServer


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """One server of each kind for the whole module: every case reads only what arrived after it started."""
    with SlackAPIServer() as slack, DiscordAPIServer() as discord, WebhookServer() as webhook:
        yield Servers(slack, discord, webhook)  # type: ignore[arg-type]


def _targets(s: Servers) -> dict[str, Target]:
    def preset(name: str, visible: Callable[[list[Any]], str], inert: Callable[[list[Any]], None]) -> Target:
        return Target(name, lambda **c: WebhookAlerter(webhook_config(s.webhook, preset=name, **c)),
                      lambda: s.webhook.posts, visible, inert)

    return {
        "slack": Target("slack", lambda **c: SlackAlerter(slack_config(s.slack, **c)),
                        lambda: s.slack.messages.setdefault(CHANNEL, []), _slack_visible, _slack_inert),
        "discord": Target("discord", lambda **c: DiscordAlerter(discord_config(s.discord, **c)),
                          lambda: s.discord.channels.setdefault(DISCORD_CHANNEL, []), _discord_visible,
                          _discord_inert),
        "mattermost": preset("mattermost", _mattermost_visible, _mattermost_inert),
        "msteams": preset("msteams", _teams_visible, _teams_inert),
        "google_chat": preset("google_chat", _google_chat_visible, _google_chat_inert),
    }


CHAT_TARGETS = ["slack", "discord", "mattermost", "msteams", "google_chat"]


@pytest.fixture(scope="module", params=CHAT_TARGETS)
def target(request: pytest.FixtureRequest, servers: Servers) -> Target:
    return _targets(servers)[request.param]


def _failure_alert(exception_text: str, title: str, body: str, fact: tuple[str, str]) -> AlerterMessage:
    """A failure alert built as the callbacks build it, from an exception whose message is ``exception_text``."""
    ti = SimpleNamespace(dag_id="etl", task_id="load", run_id="manual__1", map_index=-1, try_number=1,
                         log_url=LOG_URL)
    message = task_alert_message({"ti": ti, "exception": ValueError(exception_text)}, "failure",
                                 title=title, body=body)
    return message.model_copy(update={"metadata": {**message.metadata, fact[0]: fact[1]}})


# --- 1. hostile text --------------------------------------------------------------------------------


@HYPOTHESIS
@given(title=LINE, body=TEXT, exception_text=TEXT, fact_key=FACT_KEY, fact_value=LINE)
# found by hypothesis: escaping the second < of "< <a|b>" made the first one start a Slack link
@example(title="<!channel>", body="<!channel> ", exception_text="< <http://x|y> ", fact_key="owner",
         fact_value="<!channel>")
def test_hostile_text_anywhere_pings_nobody_and_is_still_shown_whole(
    target: Target, title: str, body: str, exception_text: str, fact_key: str, fact_value: str
) -> None:
    message = _failure_alert(exception_text, title, body, (fact_key, fact_value))

    posted = target.send(message)

    target.assert_inert(posted)
    shown = target.visible(posted)
    for part in (title, body.strip(), fact_value, f"ValueError: {exception_text}".strip()):
        assert part in shown, f"{target.name} dropped {part!r}"


# --- 2. a one-megabyte body ---------------------------------------------------------------------------

MEGABYTE = ("All work and no play makes Jack a dull boy. 🚂 <!channel>\n" * 20_000)[:1_000_000]
BIG = AlerterMessage(title="big", body=MEGABYTE, metadata={"exception": "KeyError: 'the end'", "owner": "ml"})


def test_a_megabyte_body_reaches_discord_whole_across_as_many_messages_as_it_takes(servers: Servers) -> None:
    posted = _targets(servers)["discord"].send(BIG)

    descriptions = [e.get("description", "") for m in posted for e in m["embeds"]]
    assert "".join(d for d in descriptions if not d.startswith("```")) == MEGABYTE
    assert any("KeyError: 'the end'" in d for d in descriptions)


def test_a_megabyte_body_on_slack_is_cut_with_a_marker_keeping_the_exception_and_facts(servers: Servers) -> None:
    [posted] = _targets(servers)["slack"].send(BIG)

    texts = [b["text"]["text"] for b in posted["blocks"] if b.get("text", {}).get("type") == "mrkdwn"]
    assert len(posted["blocks"]) <= 50 and "_… (message shortened to fit Slack's limits)_" in texts
    first_part = _slack_unescape(texts[0])
    assert len(first_part) > 2000 and MEGABYTE.startswith(first_part)
    assert any("KeyError" in t for t in texts) and any(f["text"] == "*owner*\nml" for b in posted["blocks"]
                                                        for f in b.get("fields", []))


@pytest.mark.parametrize("preset, size_cap", [("mattermost", 16_383), ("msteams", 28_000), ("google_chat", 32_000)])
def test_a_megabyte_body_to_a_webhook_is_one_request_within_its_cap_ending_in_a_visible_marker(
    servers: Servers, preset: str, size_cap: int
) -> None:
    [payload] = _targets(servers)[preset].send(BIG)

    measured = payload["text"] if preset == "mattermost" else json.dumps(payload, ensure_ascii=False)
    assert len(measured.encode()) <= size_cap
    shown = _targets(servers)[preset].visible([payload])
    assert "… (shortened to fit the chat's size limit)" in shown and "KeyError: 'the end'" in shown
    assert MEGABYTE[:5000] in shown


# --- 3. text that is not valid Unicode ----------------------------------------------------------------

UNDECODABLE = b"caf\xe9 \xff\xfe r\xc3sum\xe9".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("name", CHAT_TARGETS)
def test_undecodable_bytes_arrive_as_replacement_characters(servers: Servers, name: str) -> None:
    message = AlerterMessage(title="bad \udcff bytes", body=UNDECODABLE,
                             metadata={"exception": "OSError: \udc80", "path \udcff": "/tmp/\udcfe"})

    posted = _targets(servers)[name].send(message)

    raw = json.dumps(posted, ensure_ascii=False)
    assert not re.search("[\ud800-\udfff]", raw) and "caf\ufffd \ufffd\ufffd r\ufffdsum\ufffd" in raw


def test_undecodable_bytes_in_an_email_are_replaced_not_a_crash_mid_send(smtp_server: LocalSMTPServer) -> None:
    message = AlerterMessage(title="bad \udcff bytes", body=UNDECODABLE, metadata={"exception": "OSError: \udc80"})

    assert SMTPEmailAlerter(alerter_config(smtp_server)).post(message) is True

    assert "caf\ufffd \ufffd\ufffd r\ufffdsum\ufffd" in smtp_server.received[0].part("plain")


def test_an_undecodable_email_address_is_refused_naming_the_field() -> None:
    with pytest.raises(AlerterConfigError, match="recipient_email"):
        SMTPEmailAlerter({"smtp_server": "h", "sender_email": "a@example.com", "recipient_email": "b\udcff@x.com"})


# --- 4. nothing to say --------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [AlerterMessage(), AlerterMessage(body="   "), ""], ids=["empty", "blank", "str"])
def test_an_empty_message_still_posts_a_sensible_alert(target: Target, message: AlerterMessage | str) -> None:
    posted = target.send(message)  # type: ignore[arg-type]

    assert posted and "Airflow alert" in target.visible(posted)


# --- 5. channel ids that are not ids ------------------------------------------------------------------


@pytest.mark.parametrize("channel", [" ", "#", "C 1", "C1/../chat.delete", "../C1", "C1?x=1"])
def test_a_slack_channel_that_is_not_an_id_or_name_is_refused_before_anything_is_sent(
    servers: Servers, channel: str
) -> None:
    before = len(servers.slack.requests)

    with pytest.raises(AlerterConfigError, match="channel: .*Slack channel id"):
        SlackAlerter(slack_config(servers.slack, channel=channel))
    with pytest.raises(AlerterConfigError, match="channel: .*Slack channel id"):
        SlackAlerter(slack_config(servers.slack)).post("x", {"channel": channel})  # type: ignore[arg-type]
    assert len(servers.slack.requests) == before


def test_an_empty_slack_channel_is_named_as_missing_before_anything_is_sent(servers: Servers) -> None:
    before = len(servers.slack.requests)

    with pytest.raises(AlerterConfigError, match="channel: no Slack channel configured"):
        SlackAlerter(slack_config(servers.slack, channel="")).post("x")
    assert len(servers.slack.requests) == before


@pytest.mark.parametrize("channel_id", ["abc", "../1", "1/../../webhooks/2", "-1", "1e5", " ", "１２３", True])
def test_a_discord_channel_id_that_is_not_digits_is_refused_before_anything_is_sent(
    servers: Servers, channel_id: object
) -> None:
    before = len(servers.discord.requests)

    with pytest.raises(AlerterConfigError, match="channel_id: .*digits only"):
        DiscordAlerter(discord_config(servers.discord, channel_id=channel_id))
    with pytest.raises(AlerterConfigError, match="channel_id: .*digits only"):
        DiscordAlerter(discord_config(servers.discord)).post("x", {"channel_id": channel_id})  # type: ignore[arg-type]
    assert len(servers.discord.requests) == before


# --- 6. connection extras that are wrong ----------------------------------------------------------------

SECRET = "conn-Pa55word-never-shown"


@pytest.mark.parametrize("conn_type, extra, named", [
    ("alerter", "{not json", "extra is not valid JSON"),
    ("alerter", '["listed-flavor", "listed-slack"]', "extra must be a JSON object"),  # Airflow masks each item
    ("slack", "{'channel': 'C1'}", "extra is not valid JSON"),
    ("alerter", {"flavor": "pigeon"}, "Unknown alerter flavor 'pigeon'. Known flavors:"),
    ("alerter", {"flavor": "slack", "timeout": "abc"}, "timeout: Input should be a valid integer"),
    ("alerter", {"flavor": "slack", "retry_limit": -1}, "retry_limit: Input should be greater than or equal to 0"),
    ("alerter", {"flavor": "discord", "channel_id": "1", "timeout": "abc"}, "timeout: Input should be a valid number"),
    ("alerter", {"flavor": "discord", "retry_limit": -1}, "retry_limit: Input should be greater than or equal to 0"),
    ("alerter", {"flavor": "webhook", "headers": ["X-Token: 1"]}, "headers: Input should be a valid dictionary"),
    ("alerter", {"flavor": "webhook", "preset": "irc"}, "preset: Input should be 'mattermost', 'msteams'"),
    ("alerter", {"flavor": "slack", "chanel": "C1"}, "extra: unknown key(s) 'chanel'; known: "),
    ("alerter", {"flavor": "discord", "channelid": "1"}, "extra: unknown key(s) 'channelid'; known: "),
    ("alerter", {"flavor": "webhook", "preset": "msteams", "header": {}}, "extra: unknown key(s) 'header'"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 12 else None)
def test_a_malformed_connection_extra_is_a_clear_error_naming_the_field_never_the_password(
    airflow_conn: Callable[..., str], conn_type: str, extra: Any, named: str
) -> None:
    password = f"https://chat.example/hook/{SECRET}" if "webhook" in str(extra) else SECRET
    airflow_conn("broken", conn_type, password=password, extra=extra if isinstance(extra, str) else json.dumps(extra))

    if AIRFLOW_VERSION < (3, 2) and named in ("extra is not valid JSON", "extra must be a JSON object"):
        # Airflow 3.1's env-var secrets backend refuses such a connection itself ("Encountered non-JSON
        # in `extra` field"), so the hook never sees it: the user gets Airflow's error, still no secret.
        from airflow.exceptions import AirflowNotFoundException

        with pytest.raises(AirflowNotFoundException, match="The conn_id `broken` isn't defined") as refused:
            AlerterHook("broken").get_alerter()
        assert SECRET not in str(refused.value)
        return
    with pytest.raises(AlerterConfigError) as error:
        AlerterHook("broken").get_alerter()

    assert "'broken'" in str(error.value) and named in str(error.value)
    assert SECRET not in str(error.value)


def test_extras_of_a_providers_own_connection_type_are_left_alone(airflow_conn: Callable[..., str]) -> None:
    airflow_conn("provider_slack", "slack", password=SLACK_TOKEN, extra={"channel": "C1", "some_provider_key": 1})

    assert AlerterHook("provider_slack").get_alerter().config.channel == "C1"


# --- 7. through Airflow -----------------------------------------------------------------------------------


def test_a_failing_task_whose_exception_pings_everyone_is_alerted_escaped_and_stays_failed(
    run_dag: RunDag, airflow_conn: Callable[..., str], slack_api: SlackAPIServer, discord_api: DiscordAPIServer
) -> None:
    airflow_conn("ops_slack", "slack", password=SLACK_TOKEN,
                 extra={"base_url": slack_api.base_url, "channel": CHANNEL, "retry_limit": 1})
    airflow_conn("ops_discord", "alerter", password=DISCORD_TOKEN, extra={
        "flavor": "discord", "channel_id": DISCORD_CHANNEL, "api_base_url": discord_api.api_base_url})

    result = run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        with DAG("hostile_errors", schedule=None) as dag:
            @task(on_failure_callback=[alerter_failure_callback("ops_slack"), alerter_failure_callback("ops_discord")])
            def load():
                raise ValueError("<!channel> @everyone the <http://evil.example|docs> say hi")
            load()
    """)

    assert result.state_of("load") == "failed"
    [slack] = slack_api.messages[CHANNEL]
    _slack_inert([slack])
    assert "ValueError: <!channel> @everyone the <http://evil.example|docs> say hi" in _slack_visible([slack])
    discord = discord_api.channels[DISCORD_CHANNEL]
    _discord_inert(discord)
    assert "ValueError: <!channel> @everyone the <http://evil.example|docs> say hi" in _discord_visible(discord)
