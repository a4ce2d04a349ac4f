"""The benchmarks still run (tiny sizes). No time is asserted here: speed is measured by benchmarks/run.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_run_writes_its_table(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"

    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(output)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert run.returncode == 0, run.stderr[-3000:]
    table = output.read_text()
    for row in ("import (what a DAG file pays)", "DAG files (DagBag)", "emails to a local SMTP server",
                "Slack posts", "API calls per answer check", "pending AlerterAskTriggers: RSS"):
        assert row in table
