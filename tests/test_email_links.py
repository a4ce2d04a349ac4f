"""Answer links: signed per question, option and recipient, expiring; anything else is refused with the reason."""

from __future__ import annotations

import time

import pytest

from airflow_alerter.alerters.email_links import (
    AnswerLink,
    LinkProblem,
    LinkRefused,
    confirm_code,
    confirm_code_matches,
    read_link,
    sign_link,
)

SECRET = "email-links-signing-secret-9f3c"
LINK = AnswerLink("3f9a1c2b7d4e5f60", 0, "alice@example.test", int(time.time()) + 3600,
                  ("deploy", "manual__1", "gate", -1))


def refused(token: str, secret: str = SECRET, now: float | None = None) -> LinkProblem:
    with pytest.raises(LinkRefused) as caught:
        read_link(secret, token, time.time() if now is None else now)
    return caught.value.problem


def test_a_signed_link_reads_back_as_the_same_answer() -> None:
    assert read_link(SECRET, sign_link(SECRET, LINK), time.time()) == LINK


def test_the_token_does_not_hold_the_secret() -> None:
    token = sign_link(SECRET, LINK)
    assert SECRET not in token and SECRET not in confirm_code(SECRET, token)


def test_a_changed_payload_is_refused_as_tampered() -> None:
    version, payload, signature = sign_link(SECRET, LINK).split(".")
    other = sign_link(SECRET, AnswerLink(LINK.question, 0, "mallory@example.test", LINK.expires_at)).split(".")[1]
    assert refused(f"{version}.{other}.{signature}") is LinkProblem.TAMPERED
    assert refused(f"{version}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}") in (
        LinkProblem.TAMPERED, LinkProblem.MALFORMED)


def test_a_link_signed_with_another_key_is_refused() -> None:
    assert refused(sign_link("another-deployments-secret", LINK)) is LinkProblem.TAMPERED


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_a_truncated_link_is_refused(cut: int) -> None:
    token = sign_link(SECRET, LINK)
    assert refused(token[:-cut]) in (LinkProblem.TAMPERED, LinkProblem.MALFORMED)


@pytest.mark.parametrize("token", ["", "v1", "v1..", "v2.abc.def", "not a token", "v1.@@@.###", "x" * 5000])
def test_anything_but_a_token_is_refused_as_malformed(token: str) -> None:
    assert refused(token) is LinkProblem.MALFORMED


def test_an_expired_link_is_refused() -> None:
    assert refused(sign_link(SECRET, LINK), now=LINK.expires_at) is LinkProblem.EXPIRED


def test_the_confirm_code_belongs_to_its_own_token() -> None:
    mine, other = sign_link(SECRET, LINK), sign_link(SECRET, AnswerLink(LINK.question, 1, LINK.recipient,
                                                                        LINK.expires_at))
    assert confirm_code_matches(SECRET, mine, confirm_code(SECRET, mine))
    assert not confirm_code_matches(SECRET, mine, confirm_code(SECRET, other))
    assert not confirm_code_matches(SECRET, mine, "")


def test_a_confirm_code_cannot_pass_for_a_link_signature() -> None:
    token = sign_link(SECRET, LINK)
    body = token.rsplit(".", 1)[0]
    assert refused(f"{body}.{confirm_code(SECRET, body)}") is LinkProblem.TAMPERED
