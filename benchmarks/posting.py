"""3. What a post costs on top of the raw client, to real local servers, counting TCP connections.

Every variant sends the same message: for email the raw client builds the same
``multipart/alternative`` email (same headers, the text and HTML bodies our flavor renders, made
once up front), so the gap is our own work per email: validation, rendering, retry policy. Each
figure is the wall time of N posts, median over interleaved repeats. The servers (aiosmtpd, the
Slack Web API stand-in from tests/servers) run in processes of their own, so their work is not
charged to the client and does not fight it for the GIL.
"""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from benchmarks.common import SLACK_SERVER, ConnectionCounter, Row, clock, interleaved, local_server, median

SENDER, RECIPIENT = "airflow@example.com", "ops@example.com"
HOST = "127.0.0.1"
SMTP_SERVER = """
import threading
from tests.servers.smtp import LocalSMTPServer
server = LocalSMTPServer().start()
print(server.port, flush=True)
threading.Event().wait()
"""


def _measure(
    variants: dict[str, Callable[[], None]], repeats: int, port: int
) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds per variant, and the connections one run of each opens (a counted run after the timed ones)."""
    seconds = {
        name: median(runs)
        for name, runs in interleaved({name: clock(action) for name, action in variants.items()}, repeats).items()
    }
    connections = {}
    for name, action in variants.items():
        with ConnectionCounter.counting(port) as opened:
            action()
            connections[name] = opened()
    return seconds, connections


def _connections(n: int) -> str:
    return f"{n} connection{'s' * (n != 1)}"


def bench_email(count: int, repeats: int) -> list[Row]:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from airflow_alerter.alerters.smtp_email import SMTPEmailAlerter
    from airflow_alerter.alerters.smtp_pool import POOL
    from airflow_alerter.models import AlerterMessage

    message = AlerterMessage(
        title="Task Failure Alert",
        body="Task train in DAG ml failed (run manual_1, try 2).",
        metadata={
            "dag_id": "ml",
            "task_id": "train",
            "run_id": "manual_1",
            "try_number": 2,
            "exception": "ValueError: loss is NaN",
        },
    )
    with local_server(SMTP_SERVER) as port_line:
        port = int(port_line)
        os.environ["AIRFLOW_CONN_BENCH_SMTP"] = json.dumps(
            {
                "conn_type": "smtp",
                "host": HOST,
                "port": port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": SENDER},
            }
        )
        alerter = SMTPEmailAlerter(
            {
                "smtp_server": HOST,
                "smtp_port": port,
                "security": "none",
                "sender_email": SENDER,
                "recipient_email": RECIPIENT,
            }
        )
        rendered = alerter.build_email(message)
        subject = str(rendered["Subject"])
        text, html = (_part(rendered, "plain"), _part(rendered, "html"))

        def raw_email() -> EmailMessage:
            email = EmailMessage()
            email["Subject"], email["From"], email["To"] = subject, SENDER, RECIPIENT
            email["Date"] = formatdate(localtime=True)
            email["Message-ID"] = make_msgid(domain="example.com")
            email.set_content(text)
            email.add_alternative(html, subtype="html")
            return email

        def official_send(hook: Any) -> None:
            hook.send_email_smtp(to=RECIPIENT, subject=subject, html_content=html, from_email=SENDER)

        def ours_each() -> None:
            POOL.close_all()  # every run opens its connection, as the one-connection baselines do
            for _ in range(count):
                assert alerter.post(message), "delivered"

        def raw_each() -> None:
            for _ in range(count):
                with smtplib.SMTP(HOST, port, timeout=30) as client:
                    client.send_message(raw_email())

        def official_each() -> None:
            for _ in range(count):
                with SmtpHook(smtp_conn_id="bench_smtp") as hook:
                    official_send(hook)

        def raw_batch() -> None:
            with smtplib.SMTP(HOST, port, timeout=30) as client:
                for _ in range(count):
                    client.send_message(raw_email())

        def official_batch() -> None:
            with SmtpHook(smtp_conn_id="bench_smtp") as hook:
                for _ in range(count):
                    official_send(hook)

        def ours_built_batch() -> None:  # our emails alone, without post()'s validation, retry policy and pool
            with smtplib.SMTP(HOST, port, timeout=30) as client:
                for _ in range(count):
                    client.send_message(alerter.build_email(message), from_addr=SENDER, to_addrs=[RECIPIENT])

        each, each_conns = _measure({"ours": ours_each, "raw": raw_each, "official": official_each}, repeats, port)
        batch, batch_conns = _measure(
            {"raw": raw_batch, "official": official_batch, "ours built": ours_built_batch}, repeats, port
        )

    raw_one, official_one = "raw smtplib, one connection", "Airflow SmtpHook, one `with`"
    return [
        Row(
            f"{count} emails, `post()` in a loop (ours reuses its connection since #17) against baselines that "
            "open one connection per email",
            "s",
            each["ours"],
            {"raw smtplib + email.message": each["raw"], "Airflow SmtpHook": each["official"]},
            "≤ 1.15× raw",
            each["ours"] / each["raw"] <= 1.15,
            detail={
                "ours": _connections(each_conns["ours"]),
                "raw smtplib + email.message": _connections(each_conns["raw"]),
                "Airflow SmtpHook": _connections(each_conns["official"]),
            },
        ),
        Row(
            f"{count} emails in a row from one process (ours: `post()` in a loop; the baselines reuse one connection)",
            "s",
            each["ours"],
            {raw_one: batch["raw"], official_one: batch["official"]},
            "≤ 1.15× raw",
            each["ours"] / batch["raw"] <= 1.15,
            detail={
                "ours": _connections(each_conns["ours"]),
                raw_one: _connections(batch_conns["raw"]),
                official_one: _connections(batch_conns["official"]),
            },
        ),
        Row(
            f"{count} of our emails (`build_email()`) sent with smtplib over one connection: what `post()` "
            "adds to building the email is the rest of the row above",
            "s",
            batch["ours built"],
            {raw_one: batch["raw"]},
            "≤ 1.15× raw",
            batch["ours built"] / batch["raw"] <= 1.15,
            detail={"ours": _connections(batch_conns["ours built"]), raw_one: _connections(batch_conns["raw"])},
        ),
    ]


def _part(email: EmailMessage, subtype: str) -> str:
    body = email.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(body.get_content())


def bench_slack(count: int, repeats: int) -> list[Row]:
    from airflow.providers.slack.notifications.slack import SlackNotifier
    from slack_sdk import WebClient

    from airflow_alerter.alerters.slack import SlackAlerter
    from airflow_alerter.models import AlerterMessage
    from tests.servers.slack_api import BOT_TOKEN

    message = AlerterMessage(
        title="Task Failure Alert",
        body="Task train in DAG ml failed (run manual_1, try 2).",
        metadata={"dag_id": "ml", "task_id": "train", "run_id": "manual_1", "try_number": 2},
    )
    with local_server(SLACK_SERVER) as base_url:
        port = int(base_url.split(":")[2].split("/")[0])
        os.environ["AIRFLOW_CONN_BENCH_SLACK"] = json.dumps(
            {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": base_url}}
        )
        alerter = SlackAlerter({"token": BOT_TOKEN, "base_url": base_url, "channel": "C0BENCH"})
        payload = alerter.payload_for(message, None)
        client = WebClient(token=BOT_TOKEN, base_url=base_url)
        notifier = SlackNotifier(slack_conn_id="bench_slack", channel="C0BENCH", **payload)

        def ours() -> None:
            for _ in range(count):
                assert alerter.post(message), "delivered"

        def raw() -> None:
            for _ in range(count):
                client.chat_postMessage(channel="C0BENCH", **payload)

        def official() -> None:
            for _ in range(count):
                notifier.notify({})  # type: ignore[no-untyped-call]  # Airflow leaves it untyped

        seconds, connections = _measure({"ours": ours, "raw": raw, "official": official}, repeats, port)

    labels = {"ours": "ours", "raw": "raw WebClient.chat_postMessage", "official": "Airflow SlackNotifier"}
    return [
        Row(
            f"{count} Slack posts to a local Slack Web API (each client reused)",
            "s",
            seconds["ours"],
            {labels["raw"]: seconds["raw"], labels["official"]: seconds["official"]},
            "≤ 1.15× raw",
            seconds["ours"] / seconds["raw"] <= 1.15,
            detail={labels[name]: _connections(n) for name, n in connections.items()},
        )
    ]
