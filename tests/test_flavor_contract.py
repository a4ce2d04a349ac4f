"""The flavor contract: public template methods over protected hooks, and an honest ``can_ask()``.

Custom flavors here are real classes, registered in-process as a plugin author registers them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_alerter import AlerterMessage, AlerterPostOperator, BaseAlerter, registry
from airflow_alerter.alerters.base import ASK_HOW_TO, AnyConfig, NoSettings
from airflow_alerter.exceptions import AlerterConfigError, AlerterDeliveryError, AskNotSupported
from airflow_alerter.models import AskResult, AskStatus, BaseAlerterParameters, QuestionHandle
from tests.plugins.airflow import RunDag

#: what the flavors below were handed, newest last (cleared by the ``flavors`` fixture)
received: list[object] = []


class ZenPost(BaseAlerter):
    """ZenML style: post() returns a bool, nothing else."""

    FLAVOR = "zen_post"

    def post(self, message, params=None):  # type: ignore[no-untyped-def]
        received.append(message)
        return "fail" not in AlerterMessage.coerce(message).body


class ZenAsk(BaseAlerter):
    """ZenML style: post() and a blocking ask(), which no sensor can poll."""

    FLAVOR = "zen_ask"

    def post(self, message, params=None):  # type: ignore[no-untyped-def]
        return True

    def ask(self, question, params=None, **_):  # type: ignore[no-untyped-def]
        return True


class HookParameters(BaseAlerterParameters):
    channel: str | None = None


class HookFlavor(BaseAlerter[AnyConfig, NoSettings, HookParameters]):
    """The contract as built-in flavors follow it: protected hooks on validated models."""

    FLAVOR = "hook_flavor"
    Parameters = HookParameters

    def _deliver(self, message: AlerterMessage, params: HookParameters | None) -> None:
        received.append((message, params))

    def _send_question(self, question: AlerterMessage, params: HookParameters | None) -> QuestionHandle:
        received.append((question, params))
        return QuestionHandle(flavor=self.FLAVOR, channel="c", message_id="1")

    def _check_answer(self, handle: QuestionHandle, params: HookParameters | None) -> AskResult:
        return AskResult(status=AskStatus.APPROVED, responder="alice")


@pytest.fixture
def flavors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flavors above, registered for this test only."""
    monkeypatch.setattr(registry, "_registered", {})
    for flavor in (ZenPost, ZenAsk, HookFlavor):
        registry.register(flavor)
    received.clear()


def test_post_only_flavor_posts_through_the_operator(flavors: None, airflow_conn: Callable[..., str]) -> None:
    airflow_conn("zen", "alerter", extra={"flavor": "zen_post"})

    sent = AlerterPostOperator(task_id="announce", alerter_conn_id="zen", message="deployed").execute({})

    assert sent is True
    assert [message.body for message in received] == ["deployed"]  # type: ignore[attr-defined]


def test_post_only_flavor_returning_false_is_a_delivery_error(flavors: None) -> None:
    with pytest.raises(AlerterDeliveryError, match="the zen_post alerter's post\\(\\) returned False"):
        ZenPost().deliver("this will fail")


def test_post_only_flavor_cannot_ask() -> None:
    assert ZenPost.can_ask() is False


def test_ask_only_flavor_reports_it_cannot_ask() -> None:
    assert ZenAsk.can_ask() is False


def test_ask_only_flavor_says_what_to_implement_when_polled() -> None:
    with pytest.raises(AskNotSupported) as raised:
        ZenAsk().send_question("Deploy?")

    assert raised.value.hints == (ASK_HOW_TO,)


def test_ask_only_flavor_fails_the_sensor_as_can_ask_says(
    flavors: None, airflow_conn: Callable[..., str], run_dag: RunDag, read_logs: Callable[[], str]
) -> None:
    airflow_conn("zen", "alerter", extra={"flavor": "zen_ask"})

    result = run_dag("""
        from airflow.sdk import DAG
        from airflow_alerter import AlerterAskSensor

        with DAG("gate", schedule=None) as dag:
            AlerterAskSensor(task_id="approve", alerter_conn_id="zen", question="Deploy?", poke_interval=0.05,
                             timeout=5)
    """)

    assert result.state_of("approve") == "failed"
    logs = read_logs()
    assert "'zen_ask' alerter flavor cannot ask questions (post only)" in logs and ASK_HOW_TO in logs
    assert "zen_ask" not in registry.flavors_that_can_ask()


def test_hook_flavor_can_ask_without_declaring_it() -> None:
    assert HookFlavor.can_ask() is True


def test_hook_flavor_receives_a_validated_message_and_params(flavors: None) -> None:
    HookFlavor().deliver("hello", {"channel": "#ops"})

    assert received == [(AlerterMessage(body="hello"), HookParameters(channel="#ops"))]


def test_hook_flavor_answers_a_blocking_ask(flavors: None) -> None:
    assert HookFlavor().ask("Deploy?", timeout=1, poll_interval=0) is True


def test_bad_params_name_the_field_before_the_hook_runs(flavors: None) -> None:
    with pytest.raises(AlerterConfigError, match="hook_flavor alerter parameters: chanel: Extra inputs"):
        HookFlavor().send_question("Deploy?", {"chanel": "#ops"})  # type: ignore[arg-type]

    assert received == []


class Quiet(HookFlavor):
    """Defines the asking hooks but says it cannot ask."""

    FLAVOR = "quiet"
    CAN_ASK = False


def test_a_stated_can_ask_wins_over_what_the_flavor_defines() -> None:
    assert Quiet.can_ask() is False


def test_a_stated_can_ask_is_inherited() -> None:
    class QuieterStill(Quiet):
        FLAVOR = "quieter_still"

    assert QuieterStill.can_ask() is False


def test_a_derived_can_ask_is_derived_again_for_a_subclass() -> None:
    class Polled(ZenAsk):
        FLAVOR = "polled"

        def _send_question(self, question: AlerterMessage, params: object) -> QuestionHandle:
            return QuestionHandle(flavor=self.FLAVOR, channel="c", message_id="1")

        def _check_answer(self, handle: QuestionHandle, params: object) -> AskResult:
            return AskResult(status=AskStatus.PENDING)

    assert Polled.can_ask() is True
