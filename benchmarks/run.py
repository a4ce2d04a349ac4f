"""What airflow-alerter costs, side by side with Airflow's official notifiers and the raw clients.

Prints a table and writes it, with the machine's description and the evidence behind each
figure, to docs/benchmarks.md (or --output). Every figure is a median over repeated runs; runs
that measure start-up happen in fresh interpreters; the variants of a row are interleaved
(A B C A B C …) so that other load on the machine falls on all of them alike. Read the ratios:
absolute times on a shared 2-core machine are noise.

Usage: python benchmarks/run.py [--quick] [--output PATH]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, Row, load_average, machine, render_table, staged_package, subprocess_env


@dataclass(frozen=True)
class Sizes:
    import_repeats: int = 15
    dag_files: int = 200
    parse_repeats: int = 5
    forked_files: int = 100
    processor_runs: int = 3
    posts: int = 200
    post_repeats: int = 5
    slack_repeats: int = 15
    checks: int = 20
    poll_interval: float = 3.0
    latency_trials: int = 6
    triggers: int = 500
    trigger_seconds: float = 70.0


QUICK = Sizes(
    import_repeats=1,
    dag_files=4,
    parse_repeats=1,
    forked_files=2,
    processor_runs=1,
    posts=3,
    post_repeats=1,
    slack_repeats=1,
    checks=2,
    poll_interval=0.3,
    latency_trials=2,
    triggers=10,
    trigger_seconds=1.0,
)


def run(sizes: Sizes) -> tuple[list[Row], dict[str, Any]]:
    from benchmarks.ask import bench_ask
    from benchmarks.imports import bench_imports
    from benchmarks.parsing import bench_parsing
    from benchmarks.posting import bench_email, bench_slack

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every closed connection
    facts: dict[str, Any] = {"load_before": load_average()}
    with tempfile.TemporaryDirectory() as workdir:
        home = str(Path(workdir) / "airflow_home")
        os.environ.update({"AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
        site = staged_package(Path(workdir) / "site")
        started = time.monotonic()
        rows, facts["imports"] = bench_imports(sizes.import_repeats, home, site)
        parse_rows, facts["parsing"] = bench_parsing(
            sizes.dag_files, sizes.parse_repeats, sizes.forked_files, sizes.processor_runs, home, site, Path(workdir)
        )
        rows += parse_rows
        rows += bench_email(sizes.posts, sizes.post_repeats)
        rows += bench_slack(sizes.posts, sizes.slack_repeats)
        ask_rows, facts["ask"] = bench_ask(
            sizes.checks,
            sizes.poll_interval,
            sizes.latency_trials,
            sizes.triggers,
            sizes.trigger_seconds,
            subprocess_env(home, site),
        )
        rows += ask_rows
        facts["minutes"] = (time.monotonic() - started) / 60
    facts["load_after"] = load_average()
    return rows, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the benchmarks run (for CI)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows, facts = run(QUICK if args.quick else Sizes())
    table = render_table(rows)
    print(table)
    from benchmarks.report import report

    args.output.write_text(report(table, facts, machine(), args.quick), encoding="utf-8")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
