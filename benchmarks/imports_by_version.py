"""The import benchmark (benchmarks/imports.py) on several Airflow versions, side by side.

Each venv runs the same measurement with its own interpreter and its own Airflow; the table goes
into docs/benchmarks.md between the markers below (the rest of that file is benchmarks/run.py's).

Usage: python benchmarks/imports_by_version.py [--repeats N] [--output PATH] VENV [VENV ...]
       (e.g. .venv-af31 .venv; `--measure` is what each venv's interpreter is started with)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, load_average, staged_package, write_section

BEGIN = "<!-- imports-by-version: written by benchmarks/imports_by_version.py -->"
END = "<!-- /imports-by-version -->"


def measure(repeats: int) -> dict[str, object]:
    """Run in the venv being measured: the import benchmark's figures for this interpreter's Airflow."""
    from importlib.metadata import version

    from benchmarks.imports import bench_imports

    with tempfile.TemporaryDirectory() as workdir:
        site = staged_package(Path(workdir) / "site")
        _, facts = bench_imports(repeats, str(Path(workdir) / "airflow_home"), site)
    return {
        "airflow": version("apache-airflow"),
        "paired": facts["paired"],
        "extra_ms": facts["extra_ms"],
        "modules": len(facts["ours_new_modules"]),
    }


def table(results: list[dict[str, object]], repeats: int) -> str:
    head = (
        "| Airflow | ours | + official SlackNotifier | + official SmtpNotifier "
        "| ours adds after `import airflow.sdk` |"
    )
    rows = [head, "|---|---|---|---|---|"]
    for result in results:
        paired, extra = result["paired"], result["extra_ms"]
        assert isinstance(paired, dict) and isinstance(extra, dict)
        rows.append(
            f"| {result['airflow']} | {paired['ours']:.3f}× | {paired['official SlackNotifier']:.3f}× | "
            f"{paired['official SmtpNotifier']:.3f}× | {extra['ours']:.1f} ms ({result['modules']} modules) |"
        )
    return "\n".join([
        BEGIN,
        "## Import ratio by Airflow version",
        "",
        "`import airflow.sdk` plus the alerting names, over `import airflow.sdk` alone (paired: each fresh "
        f"interpreter's total over its own `import airflow.sdk`, median of {repeats}; CPU time). Target ≤ 1.02×. "
        f"Measured by `benchmarks/imports_by_version.py`, load average before: {load_average()}.",
        "",
        *rows,
        END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("venvs", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.repeats)))
        return
    results = []
    for venv in args.venvs:
        run = subprocess.run(
            [str(venv / "bin" / "python"), __file__, "--measure", "--repeats", str(args.repeats)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(f"{venv}: {results[-1]}", flush=True)
    section = table(results, args.repeats)
    write_section(args.output, section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
