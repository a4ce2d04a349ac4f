"""Trust issue #14, finding 7: no API or webhook call follows a redirect, in any flavor, sync or async.

Every flavor is pointed at a local redirector that answers 301/302/307/308 with a ``Location`` on a
second local host name (``localhost`` instead of ``127.0.0.1``), keeping the path and query. The
host it points at records every request: it must see none, so no token, bot header or webhook key
ever leaves for another host. The call itself ends as a delivery error (post), a failed connection
test, or a check that is not an answer, each naming the status and the target host and holding no
secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from airflow_alerter import AlerterDeliveryError
from airflow_alerter.alerters.base import BaseAlerter
from airflow_alerter.alerters.discord import DiscordAlerter
from airflow_alerter.alerters.slack import SlackAlerter
from airflow_alerter.alerters.webhook import WebhookAlerter
from airflow_alerter.models import AskStatus, QuestionHandle
from tests.plugins.discord import DISCORD_CHANNEL
from tests.plugins.secrets import assert_no_secrets, register_secret
from tests.plugins.slack import CHANNEL
from tests.servers.discord_api import BOT_TOKEN as DISCORD_TOKEN
from tests.servers.discord_api import WEBHOOK_PATH as DISCORD_WEBHOOK_PATH
from tests.servers.redirect import OTHER_HOST, Redirector, RedirectTarget
from tests.servers.slack_api import BOT_TOKEN as SLACK_TOKEN
from tests.servers.slack_api import WEBHOOK_PATH as SLACK_WEBHOOK_PATH
from tests.servers.webhook import WEBHOOK_PATH

WEBHOOK_KEY = "webhook-X-Api-Key-Secret-9931"
register_secret(WEBHOOK_KEY)
STATUSES = [301, 302, 307, 308]


@dataclass(frozen=True)
class Flavor:
    name: str
    build: Callable[[str], BaseAlerter]  # the redirector's base URL -> an alerter aimed at it
    operations: tuple[str, ...]
    handle: QuestionHandle | None = None


FLAVORS = [
    Flavor("slack bot", lambda base: SlackAlerter({"token": SLACK_TOKEN, "base_url": f"{base}/api/",
                                                   "channel": CHANNEL, "retry_limit": 0}),
           ("post", "check_answer", "acheck_answer", "test_connection"),
           QuestionHandle(flavor="slack", channel=CHANNEL, message_id="1700000000.000100", posted_at=1700000000.0)),
    Flavor("slack webhook", lambda base: SlackAlerter({"webhook_url": f"{base}{SLACK_WEBHOOK_PATH}", "retry_limit": 0}),
           ("post",)),
    Flavor("discord bot", lambda base: DiscordAlerter({"token": DISCORD_TOKEN, "channel_id": DISCORD_CHANNEL,
                                                       "api_base_url": f"{base}/api/v10", "retry_limit": 0}),
           ("post", "check_answer", "acheck_answer", "test_connection"),
           QuestionHandle(flavor="discord", channel=DISCORD_CHANNEL, message_id="1180000000000000000",
                          posted_at=1700000000.0)),
    Flavor("discord webhook", lambda base: DiscordAlerter({"webhook_url": f"{base}{DISCORD_WEBHOOK_PATH}?thread_id=7",
                                                           "retry_limit": 0}),
           ("post", "test_connection")),
    Flavor("webhook", lambda base: WebhookAlerter({"webhook_url": f"{base}{WEBHOOK_PATH}", "retry_limit": 0,
                                                   "headers": {"X-Api-Key": WEBHOOK_KEY}}),
           ("post",)),
]
CASES = [(flavor, operation) for flavor in FLAVORS for operation in flavor.operations]


@pytest.fixture
def target() -> Iterator[RedirectTarget]:
    with RedirectTarget() as server:
        yield server


@pytest.fixture(params=STATUSES)
def redirector(request: pytest.FixtureRequest, target: RedirectTarget) -> Iterator[Redirector]:
    with Redirector(status=request.param, target=target) as server:
        yield server


@pytest.mark.parametrize("flavor, operation", CASES, ids=[f"{f.name}-{op}" for f, op in CASES])
def test_a_redirect_is_never_followed_and_ends_naming_the_status_and_the_host(
    flavor: Flavor, operation: str, redirector: Redirector, target: RedirectTarget
) -> None:
    alerter = flavor.build(redirector.url)
    status = str(redirector.status)

    if operation == "post":
        with pytest.raises(AlerterDeliveryError) as caught:
            alerter.deliver("the nightly load failed")
        reason = str(caught.value)
        assert alerter.post("the nightly load failed") is False
    elif operation == "test_connection":
        ok, reason = alerter.test_connection()
        assert not ok
    else:
        assert flavor.handle is not None
        if operation == "check_answer":
            result = alerter.check_answer(flavor.handle)
        else:
            result = asyncio.run(alerter.acheck_answer(flavor.handle))
        assert result.status is AskStatus.ERROR  # a redirect will not heal: the gate ends with the reason
        reason = result.reason or ""

    assert target.requests == [], f"{len(target.requests)} request(s) followed the redirect"
    assert target.credentials_seen == []
    assert redirector.requests, "the call never reached the redirector"
    assert f"HTTP {status}" in reason and OTHER_HOST in reason, reason
    assert_no_secrets(reason, where=f"the {flavor.name} {operation} error")
