"""What pending approval gates cost the triggerer: N AlerterAskTriggers waiting in one asyncio loop.

Starts the local Slack stand-in in a separate process (so its CPU is not counted), posts N
questions, then runs N triggers concurrently for a while and reports the resident memory of this
process and the CPU seconds it spent per minute of waiting, plus API calls per check.

Usage: python benchmarks/ask_triggers.py [--triggers 500] [--seconds 70] [--poll-interval 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SLACK_SERVER, local_server


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _drain(trigger: Any) -> None:
    async for _event in trigger.run():
        return


async def _wait(triggers: list[Any], seconds: float, warmup: float) -> tuple[float, float]:
    """Run the triggers for ``seconds``; return (CPU, wall) seconds after ``warmup``, once they all started."""
    tasks = [asyncio.create_task(_drain(trigger)) for trigger in triggers]
    await asyncio.sleep(warmup)
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(max(seconds - warmup, 0.0))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu, wall


def measure(triggers: int, seconds: float, poll_interval: float, warmup: float = 0.0) -> dict[str, float]:
    with local_server(SLACK_SERVER) as base_url:
        from tests.servers.slack_api import BOT_TOKEN

        os.environ["AIRFLOW_CONN_BENCH_SLACK"] = json.dumps(
            {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": base_url, "channel": "C0BENCH"}})
        from airflow_alerter import SlackAlerter
        from airflow_alerter.triggers.alerter import AlerterAskTrigger

        alerter = SlackAlerter({"token": BOT_TOKEN, "base_url": base_url, "channel": "C0BENCH"})
        handles = [alerter.send_question(f"Deploy {i}?").model_dump(mode="json") for i in range(triggers)]
        before = rss_mb()
        pending = [AlerterAskTrigger(alerter_conn_id="bench_slack", handle=handle, poll_interval=poll_interval)
                   for handle in handles]
        cpu, wall = time.process_time(), time.monotonic()
        waiting_cpu, waiting_wall = asyncio.run(_wait(pending, seconds, warmup))
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {"triggers": triggers, "seconds": round(wall, 1), "rss_mb": round(rss_mb(), 1),
                "rss_before_triggers_mb": round(before, 1),
                "cpu_s_per_min": round(cpu / wall * 60, 2), "poll_interval_s": poll_interval,
                # after the warm-up (building 500 alerters, the first round of checks): the steady cost of waiting
                "warmup_s": warmup, "cpu_s_per_min_after_warmup": round(waiting_cpu / max(waiting_wall, 1e-9) * 60, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triggers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=70.0, help="how long the triggers wait (default 70)")
    parser.add_argument("--poll-interval", type=float, default=30.0, help="seconds between checks (default 30)")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="seconds left out of cpu_s_per_min_after_warmup (start-up and the first checks)")
    args = parser.parse_args()
    print(json.dumps(measure(args.triggers, args.seconds, args.poll_interval, args.warmup)))


if __name__ == "__main__":
    main()
