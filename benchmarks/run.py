"""What airflow-alerter costs, side by side with Airflow's official notifiers and the raw clients.

Prints a table and writes it to docs/benchmarks.md (or --output). Every figure is a median over
repeated runs; runs that measure start-up happen in fresh subprocesses, and the variants of one
row are interleaved (A B C A B C …) so that other load on the machine hits them alike. Read the
ratios: absolute times on a shared 2-core machine are noise.

Usage: python benchmarks/run.py [--quick] [--output PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    name: str
    ours: float
    baselines: dict[str, float]
    unit: str
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        base = "; ".join(f"{label} {value:.4g}" for label, value in self.baselines.items())
        ratios = "; ".join(f"{self.ours / value:.3f}×" for value in self.baselines.values() if value)
        verdict = "" if self.met is None else ("met" if self.met else "missed")
        return [self.name, f"{self.ours:.4g} {self.unit}", base, ratios, f"{self.target} {verdict}".strip()]


def _env(home: str) -> dict[str, str]:
    return {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": str(ROOT)}


def _timed_subprocess(code: str, env: dict[str, str]) -> float:
    """Seconds the snippet's own timed part took, in a fresh interpreter (it prints them)."""
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _interleaved(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


# --- 1. import cost -------------------------------------------------------------------------------

IMPORTS = {
    "airflow.sdk (DAG, task)": "from airflow.sdk import DAG, task",
    "ours": "from airflow.sdk import DAG, task\n"
            "from airflow_alerter import alerter_failure_callback, AlerterAskSensor, AlerterPostOperator",
    "official SlackNotifier": "from airflow.sdk import DAG, task\n"
                              "from airflow.providers.slack.notifications.slack import SlackNotifier",
    "official SmtpNotifier": "from airflow.sdk import DAG, task\n"
                             "from airflow.providers.smtp.notifications.smtp import SmtpNotifier",
}


def bench_imports(repeats: int, home: str) -> list[Row]:
    def runner(statement: str) -> Callable[[], float]:
        code = f"import time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
        return lambda: _timed_subprocess(code, _env(home))

    medians = _interleaved({name: runner(code) for name, code in IMPORTS.items()}, repeats)
    base = medians.pop("airflow.sdk (DAG, task)")
    ours = medians.pop("ours")
    return [Row("import (what a DAG file pays)", ours * 1000, {"airflow.sdk": base * 1000, **{
        k: v * 1000 for k, v in medians.items()}}, "ms", "≤ 1.02× airflow.sdk", ours / base <= 1.02)]


# --- 2. DAG parsing ---------------------------------------------------------------------------------

DAG_TEMPLATE = '''
from airflow.sdk import DAG, task
{imports}

with DAG("generated_{i}", schedule=None, {dag_args}) as dag:
    @task({task_args})
    def extract():
        return 1

    @task({task_args})
    def load(x):
        return x
{extra}
    load(extract()){tail}
'''

STYLES = {
    "no alerting": {"imports": "", "dag_args": "", "task_args": "", "extra": "", "tail": ""},
    "ours": {
        "imports": "from airflow_alerter import alerter_failure_callback, AlerterAskSensor",
        "dag_args": 'on_failure_callback=alerter_failure_callback("ops_email")',
        "task_args": 'on_failure_callback=alerter_failure_callback("ml_slack")',
        "extra": '    gate = AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy?")\n',
        "tail": " >> gate",
    },
    "ours, callbacks only": {
        "imports": "from airflow_alerter import alerter_failure_callback",
        "dag_args": 'on_failure_callback=alerter_failure_callback("ops_email")',
        "task_args": 'on_failure_callback=alerter_failure_callback("ml_slack")',
        "extra": "", "tail": "",
    },
    "official notifiers": {
        "imports": "from airflow.providers.slack.notifications.slack import SlackNotifier\n"
                   "from airflow.providers.smtp.notifications.smtp import SmtpNotifier",
        "dag_args": 'on_failure_callback=SmtpNotifier(to="ops@example.com", from_email="a@example.com")',
        "task_args": 'on_failure_callback=SlackNotifier(slack_conn_id="ml_slack", text="failed", channel="#ml")',
        "extra": "", "tail": "",
    },
}


def bench_parsing(dag_count: int, repeats: int, home: str, workdir: Path) -> list[Row]:
    folders = {}
    for style, parts in STYLES.items():
        folder = workdir / style.replace(" ", "_")
        folder.mkdir()
        for i in range(dag_count):
            (folder / f"dag_{i}.py").write_text(DAG_TEMPLATE.format(i=i, **parts))
        folders[style] = folder

    def runner(folder: Path) -> Callable[[], float]:
        code = textwrap.dedent(f"""
            import time
            from airflow.dag_processing.dagbag import DagBag
            t = time.perf_counter()
            bag = DagBag(dag_folder={str(folder)!r})
            assert not bag.import_errors, bag.import_errors
            assert len(bag.dag_ids) == {dag_count}
            print(time.perf_counter() - t)
        """)
        return lambda: _timed_subprocess(code, _env(home))

    medians = _interleaved({style: runner(folder) for style, folder in folders.items()}, repeats)
    base = medians["no alerting"]
    return [
        Row(f"parse {dag_count} DAG files (DagBag): callbacks + an ask sensor (one more task)", medians["ours"], {
            "no alerting": base, "official notifiers": medians["official notifiers"]}, "s",
            "≤ 1.05× no alerting", medians["ours"] / base <= 1.05),
        Row(f"parse {dag_count} DAG files (DagBag): callbacks only", medians["ours, callbacks only"], {
            "no alerting": base, "official notifiers": medians["official notifiers"]}, "s",
            "≤ 1.05× no alerting", medians["ours, callbacks only"] / base <= 1.05),
    ]


# --- 3. post overhead -------------------------------------------------------------------------------

def bench_email(count: int, repeats: int) -> list[Row]:
    import smtplib
    from email.message import EmailMessage

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    from airflow_alerter import AlerterMessage, SMTPEmailAlerter
    from tests.servers.smtp import LocalSMTPServer

    with LocalSMTPServer() as server:
        os.environ["AIRFLOW_CONN_BENCH_SMTP"] = json.dumps({
            "conn_type": "smtp", "host": server.host, "port": server.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "a@example.com"}})
        alerter = SMTPEmailAlerter({"smtp_server": server.host, "smtp_port": server.port, "security": "none",
                                    "sender_email": "a@example.com", "recipient_email": "b@example.com"})
        message = AlerterMessage(title="Task Failure Alert", body="train failed", metadata={"dag_id": "ml"})

        def ours() -> None:
            for _ in range(count):
                alerter.post(message)

        def raw() -> None:
            for _ in range(count):
                email = EmailMessage()
                email["Subject"] = "[Airflow] Task Failure Alert"
                email["From"], email["To"] = "a@example.com", "b@example.com"
                email.set_content("train failed")
                email.add_alternative("<p>train failed</p>", subtype="html")
                with smtplib.SMTP(server.host, server.port, timeout=30) as client:
                    client.send_message(email)

        def official() -> None:
            for _ in range(count):
                with SmtpHook(smtp_conn_id="bench_smtp") as hook:
                    hook.send_email_smtp(to="b@example.com", subject="Task Failure Alert",
                                         html_content="<p>train failed</p>", from_email="a@example.com")

        medians = _interleaved({"ours": _clock(ours), "raw": _clock(raw), "official": _clock(official)}, repeats)
    return [Row(f"{count} emails to a local SMTP server (1 connection each)", medians["ours"], {
        "raw smtplib": medians["raw"], "Airflow SmtpHook": medians["official"]}, "s",
        "≤ 1.15× raw", medians["ours"] / medians["raw"] <= 1.15)]


def bench_slack(count: int, repeats: int) -> list[Row]:
    from airflow.providers.slack.notifications.slack import SlackNotifier
    from slack_sdk import WebClient

    from airflow_alerter import AlerterMessage, SlackAlerter
    from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer

    with SlackAPIServer() as server:
        os.environ["AIRFLOW_CONN_BENCH_SLACK"] = json.dumps(
            {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": server.base_url}})
        alerter = SlackAlerter({"token": BOT_TOKEN, "base_url": server.base_url, "channel": "C0BENCH"})
        client = WebClient(token=BOT_TOKEN, base_url=server.base_url)
        message = AlerterMessage(title="Task Failure Alert", body="train failed", metadata={"dag_id": "ml"})
        blocks = alerter.payload_for(message, None)["blocks"]

        def ours() -> None:
            for _ in range(count):
                alerter.post(message)

        def raw() -> None:
            for _ in range(count):
                client.chat_postMessage(channel="C0BENCH", text="Task Failure Alert", blocks=blocks)

        def official() -> None:
            for _ in range(count):
                SlackNotifier(slack_conn_id="bench_slack", channel="C0BENCH", text="Task Failure Alert",
                              blocks=blocks).notify({})

        medians = _interleaved({"ours": _clock(ours), "raw": _clock(raw), "official": _clock(official)}, repeats)
    return [Row(f"{count} Slack posts to a local Slack API", medians["ours"], {
        "raw WebClient": medians["raw"], "Airflow SlackNotifier": medians["official"]}, "s",
        "≤ 1.15× raw", medians["ours"] / medians["raw"] <= 1.15)]


def _clock(action: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started

    return run


# --- 4. ask cost ------------------------------------------------------------------------------------

def bench_ask(poll_interval: float, trials: int, triggers: int, seconds: float) -> list[Row]:
    from airflow_alerter import SlackAlerter
    from airflow_alerter.triggers.alerter import AlerterAskTrigger
    from benchmarks.ask_triggers import measure
    from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer

    latencies, calls_per_check = [], []
    with SlackAPIServer() as server:
        os.environ["AIRFLOW_CONN_BENCH_SLACK"] = json.dumps(
            {"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": server.base_url, "channel": "C0B"}})
        alerter = SlackAlerter({"token": BOT_TOKEN, "base_url": server.base_url, "channel": "C0B"})
        for trial in range(trials):
            handle = alerter.send_question(f"Deploy {trial}?")
            trigger = AlerterAskTrigger(alerter_conn_id="bench_slack", handle=handle.model_dump(mode="json"),
                                        poll_interval=poll_interval)
            before = len(server.requests)
            answer_delay = poll_interval * (0.3 + 0.4 * (trial % 2))
            latencies.append(asyncio.run(_detection_latency(trigger, server, handle, answer_delay)))
            checks = server.requests[before:]
            calls_per_check.append(len(checks) / max(sum(r.endpoint == "conversations.replies" for r in checks), 1))
    memory = measure(triggers, seconds, poll_interval=30.0)
    worst = max(latencies)
    return [
        Row("API calls per answer check", statistics.median(calls_per_check), {}, "calls", "1",
            statistics.median(calls_per_check) == 1),
        Row(f"approval detected after the answer (poll {poll_interval:g} s)", worst, {"poll interval": poll_interval},
            "s (worst)", "≤ interval + 1 s", worst <= poll_interval + 1),
        Row(f"{triggers} pending AlerterAskTriggers: RSS", memory["rss_mb"],
            {"before the triggers": memory["rss_before_triggers_mb"]}, "MB", "< 200 MB", memory["rss_mb"] < 200),
        Row(f"{triggers} pending triggers: CPU while waiting", memory["cpu_s_per_min"], {}, "CPU-s/min"),
    ]


async def _detection_latency(trigger: object, server: object, handle: object, answer_delay: float) -> float:
    async def answer() -> float:
        await asyncio.sleep(answer_delay)
        server.add_reply(handle.channel, handle.message_id, "UAPPROVER", "approve")  # type: ignore[attr-defined]
        return time.monotonic()

    answering = asyncio.create_task(answer())
    async for _event in trigger.run():  # type: ignore[attr-defined]
        return time.monotonic() - await answering
    raise AssertionError("the trigger ended without an event")


# --- report -----------------------------------------------------------------------------------------

def machine() -> str:
    import airflow

    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Airflow {airflow.__version__}, "
            f"{platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d')}")


def render(rows: list[Row], quick: bool) -> str:
    header = ["measure", "ours", "baselines", "ratio (ours / baseline)", "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + ("\n\n(quick run: tiny sizes, figures not meaningful)\n" if quick else "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the benchmarks run (for CI)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        rows = bench_imports(2 if q else 15, home)
        rows += bench_parsing(5 if q else 200, 1 if q else 5, home, Path(home))
        rows += bench_email(5 if q else 200, 1 if q else 5)
        rows += bench_slack(5 if q else 200, 1 if q else 5)
        rows += bench_ask(0.5 if q else 2.0, 2 if q else 6, 20 if q else 500, 3 if q else 70)
    table = render(rows, q)
    print(table)
    args.output.write_text(PREAMBLE.format(machine=machine(), table=table), encoding="utf-8")
    print(f"written to {args.output}")


PREAMBLE = """# Benchmarks

Produced by `python benchmarks/run.py` (`make benchmark`). Machine: {machine}. Medians over
repeated runs, variants interleaved; other work may have been running, so read the ratios.

{table}
How each row is measured:

- **import**: a fresh interpreter times `from airflow.sdk import DAG, task` plus the alerting imports a
  DAG file would add (ours: `alerter_failure_callback`, `AlerterAskSensor`, `AlerterPostOperator`).
- **parse**: Airflow's own `DagBag` over generated DAG files (two tasks each), with no alerting, with
  our callbacks and sensor, or with the official `SlackNotifier`/`SmtpNotifier`, in fresh interpreters.
- **emails / Slack posts**: the same message through our flavor, the raw client (`smtplib` +
  `email.message`; `WebClient.chat_postMessage`) and Airflow's provider (`SmtpHook.send_email_smtp`;
  `SlackNotifier.notify`), to local servers in the same process. Each email opens one SMTP
  connection in every variant, as one callback does.
- **ask**: requests per `conversations.replies` check; the worst time from a person's answer to the
  trigger's event; `benchmarks/ask_triggers.py` for memory and CPU of many pending triggers in one loop.
"""


if __name__ == "__main__":
    main()
