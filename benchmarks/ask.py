"""4. What a pending approval costs: API calls per check, how fast an answer is seen, and many triggers at once.

Against the local Slack Web API stand-in. Memory and CPU of many pending triggers come from
``benchmarks/ask_triggers.py`` (the Slack flavor's benchmark), run in a fresh interpreter so that
what this process imported is not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any, cast

from benchmarks.common import ROOT, ConnectionCounter, Row, median

CHANNEL = "C0ASK"


def bench_ask(
    checks: int, poll_interval: float, trials: int, triggers: int, seconds: float, env: dict[str, str]
) -> tuple[list[Row], dict[str, Any]]:
    from airflow_alerter.alerters.slack import SlackAlerter
    from airflow_alerter.triggers.alerter import AlerterAskTrigger
    from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer

    with SlackAPIServer() as started:
        server = cast(SlackAPIServer, started)
        port = int(server.url.rsplit(":", 1)[1])
        os.environ["AIRFLOW_CONN_BENCH_ASK"] = json.dumps(
            {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": server.base_url, "channel": CHANNEL}}
        )
        alerter = SlackAlerter({"token": BOT_TOKEN, "base_url": server.base_url, "channel": CHANNEL})
        handle = alerter.send_question("Deploy the model?")

        def per_check(check: Any) -> tuple[float, float, Counter[str]]:
            before = len(server.requests)
            with ConnectionCounter.counting(port) as opened:
                for _ in range(checks):
                    assert not check().is_final
                connections = opened()
            endpoints = Counter(request.endpoint for request in server.requests[before:])
            return sum(endpoints.values()) / checks, connections / checks, endpoints

        sync_calls, sync_conns, sync_endpoints = per_check(lambda: alerter.check_answer(handle))
        async_calls, async_conns, _ = per_check(lambda: asyncio.run(alerter.acheck_answer(handle)))

        latencies = []
        for trial in range(trials):
            question = alerter.send_question(f"Deploy {trial}?")
            trigger = AlerterAskTrigger(
                alerter_conn_id="bench_ask", handle=question.model_dump(mode="json"), poll_interval=poll_interval
            )
            phase = (trial + 0.5) / trials  # answers land evenly across the interval between two checks
            latencies.append(asyncio.run(_detection_latency(trigger, server, question, poll_interval * phase)))

    memory = _pending_triggers(triggers, seconds, env)
    worst, typical = max(latencies), median(latencies)
    checks_per_minute = memory["triggers"] * 60 / memory["poll_interval_s"]
    ms_per_check = memory["cpu_s_per_min_after_warmup"] / checks_per_minute * 1000
    rows = [
        Row(
            f"API calls per answer check (sync `check_answer` / async `acheck_answer`, {checks} checks each)",
            "calls",
            max(sync_calls, async_calls),
            {},
            "1",
            max(sync_calls, async_calls) == 1,
            detail={
                "ours": f"sync {sync_calls:g}: {dict(sync_endpoints)}; async {async_calls:g}; "
                f"connections per check: sync {sync_conns:g}, async {async_conns:g}"
            },
        ),
        Row(
            f"approval seen by AlerterAskTrigger after the answer, poll interval {poll_interval:g} s "
            f"(worst of {trials}; median {typical:.2f} s)",
            "s",
            worst,
            {"poll interval": poll_interval},
            "≤ interval + 1 s",
            worst <= poll_interval + 1,
        ),
        Row(
            f"{memory['triggers']} pending AlerterAskTriggers in one asyncio loop: resident memory",
            "MB",
            memory["rss_mb"],
            {"same process before the triggers": memory["rss_before_triggers_mb"]},
            "< 200 MB",
            memory["rss_mb"] < 200,
        ),
        Row(
            f"{memory['triggers']} pending triggers: CPU while waiting, after a {memory['warmup_s']:g} s warm-up "
            f"(poll {memory['poll_interval_s']:g} s, {memory['seconds']:g} s in all)",
            "CPU-s/min",
            memory["cpu_s_per_min_after_warmup"],
            detail={
                "ours": f"≈ {ms_per_check:.1f} ms per check; {memory['cpu_s_per_min']:g} CPU-s/min over the whole run, "
                "start-up included"
            },
        ),
    ]
    return rows, {"latencies": latencies, "memory": memory}


async def _detection_latency(trigger: Any, server: Any, question: Any, answer_after: float) -> float:
    await asyncio.sleep(0)  # the trigger's first check happens as it starts; answer some time after it

    async def answer() -> float:
        await asyncio.sleep(answer_after)
        server.add_reply(question.channel, question.message_id, "UAPPROVER", "approve")
        return time.monotonic()

    answering = asyncio.create_task(answer())
    async for event in trigger.run():
        assert event.payload["result"]["status"] == "approved", event.payload
        return time.monotonic() - await answering
    raise AssertionError("the trigger ended without an event")


def _pending_triggers(triggers: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "ask_triggers.py"),
            "--triggers",
            str(triggers),
            "--seconds",
            str(seconds),
            "--poll-interval",
            "30",
            "--warmup",
            str(min(15.0, seconds / 4)),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"ask_triggers.py failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
