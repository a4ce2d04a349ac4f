"""The benchmarks still run (tiny sizes). No time is asserted here: speed is measured by benchmarks/run.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = (
    "import: `import airflow.sdk` + the alerting names",
    "one DagBag (CPU), 2 tasks + callbacks",
    "dag-processor: `_parse_file` in a forked child per file, 3 tasks: callbacks + approval gate",
    "emails, `post()` in a loop (ours reuses its connection since #17)",
    "emails in a row from one process",
    "Slack posts to a local Slack Web API",
    "API calls per answer check",
    "approval seen by AlerterAskTrigger",
    "pending AlerterAskTriggers in one asyncio loop: resident memory",
    "pending triggers: CPU while waiting",
)


def test_quick_run_writes_every_row_to_the_output_path_and_leaves_docs_alone(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    docs = ROOT / "docs" / "benchmarks.md"
    docs_before = docs.read_bytes() if docs.exists() else None

    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )

    assert run.returncode == 0, run.stderr[-3000:]
    report = output.read_text(encoding="utf-8")
    assert "Quick run" in report
    assert [row for row in ROWS if row not in report] == []
    assert (docs.read_bytes() if docs.exists() else None) == docs_before


def test_the_pushed_responder_benchmark_runs_and_reports_every_figure() -> None:
    import json

    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pushed.py"), "--quick"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert sorted(results) == ["click", "gates", "idle", "outage"]
    assert results["outage"]["recorded"] == results["outage"]["answers"]
    assert results["gates"]["calls_per_minute_with_responder"] == 0


def test_the_email_answers_benchmark_runs_and_reports_both_ways_of_answering() -> None:
    import json

    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "email_answers.py"), "--quick"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["link"]["trials"] == 2 and results["link"]["confirm_ms"] > 0
    assert "skipped" in results["reply"] or sorted(results["reply"]) == [
        "check_ms", "poll_s", "reply_max_s", "reply_s", "trials"]
