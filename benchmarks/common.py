"""What every benchmark shares: rows, interleaved medians, fresh interpreters, connection counting.

Runs that measure start-up happen in fresh interpreters that import a compiled copy of the
package (``staged_package``), as a ``pip install`` would leave it: this working tree is used with
``PYTHONDONTWRITEBYTECODE=1``, and compiling our modules from source on every start would be
charged to us but not to Airflow, whose site-packages are compiled.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: the Slack Web API stand-in of the tests, for :func:`local_server`
SLACK_SERVER = "import runpy; runpy.run_module('tests.servers.slack_api', run_name='__main__')"


@dataclass
class Row:
    """One line of the table: our figure, the baselines' figures, and the target judged on one ratio."""

    name: str
    unit: str
    ours: float
    baselines: dict[str, float] = field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    detail: dict[str, str] = field(default_factory=dict)  # e.g. {"ours": "200 connections"}

    def cells(self) -> list[str]:
        def figure(label: str, value: float) -> str:
            extra = self.detail.get(label)
            return f"{value:.4g}" + (f" ({extra})" if extra else "")

        base = "<br>".join(f"{label}: {figure(label, value)}" for label, value in self.baselines.items())
        ratios = "<br>".join(f"{self.ours / value:.3f}× {label}" for label, value in self.baselines.items() if value)
        verdict = "" if self.met is None else ("**met**" if self.met else "**missed**")
        return [self.name, f"{figure('ours', self.ours)} {self.unit}", base, ratios, self.target, verdict]


def render_table(rows: list[Row]) -> str:
    header = ["measure", "ours", "baselines", "ours / baseline", "target", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def interleaved(variants: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[Any]]:
    """Run A B C, B C A, C A B …: load from other work then falls on every variant alike, and none is always first."""
    samples: dict[str, list[Any]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


def staged_package(directory: Path) -> Path:
    """A compiled copy of airflow_alerter in ``directory``, to put first on PYTHONPATH."""
    target = directory / "airflow_alerter"
    shutil.copytree(ROOT / "airflow_alerter", target, ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(str(target), quiet=1)
    return directory


def subprocess_env(airflow_home: str, site: Path | None = None) -> dict[str, str]:
    paths = [str(site)] if site is not None else []
    return {
        **os.environ,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)]),
    }


def run_python(code: str, env: dict[str, str], *args: str) -> Any:
    """Run ``code`` in a fresh interpreter; it prints one JSON document on its last line."""
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class ConnectionCounter:
    """Counts TCP connections this process opens to one port, through Python's ``socket.connect`` audit event.

    Client-side, so it sees smtplib, urllib (slack_sdk's WebClient) and aiohttp alike, without
    touching the clients or the servers. Audit hooks cannot be removed; this one does nothing
    unless a ``counting`` block is active.
    """

    _installed = False
    _port: int | None = None
    _count = 0

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and cls._port is not None:
            address = args[1]
            if isinstance(address, tuple) and len(address) >= 2 and address[1] == cls._port:
                cls._count += 1

    @classmethod
    @contextmanager
    def counting(cls, port: int) -> Iterator[Callable[[], int]]:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True
        cls._port, cls._count = port, 0
        try:
            yield lambda: cls._count
        finally:
            cls._port = None


@contextmanager
def local_server(code: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A test server in a process of its own (its CPU is not ours); yields the first line it prints."""
    server = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline().strip()
        if not line:
            raise RuntimeError("the local server did not start")
        yield line
    finally:
        server.kill()
        server.wait()


def clock(action: Callable[[], None]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        action()
        return time.perf_counter() - started

    return run


def machine() -> str:
    import airflow

    cpu = platform.processor() or platform.machine()
    model = _cpu_model()
    return (
        f"{os.cpu_count()} CPUs ({model or cpu}), Python {platform.python_version()}, "
        f"Airflow {airflow.__version__}, {platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def write_section(output: Path, section: str, begin: str, end: str) -> None:
    """Put ``section`` (which starts with ``begin`` and ends with ``end``) in place of the old one, or at the end."""
    text = output.read_text(encoding="utf-8") if output.exists() else ""
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    output.write_text(text, encoding="utf-8")



def run_sectioned(doc: str, name: str, measure: Callable[[bool], dict[str, Any]],
                  section: Callable[[dict[str, Any], str], str], begin: str, end: str) -> None:
    """The command line of a benchmark that writes one section of docs/benchmarks.md.

    ``measure(quick)`` takes the figures (``--quick``: tiny sizes, nothing written); ``section`` renders
    them with the load average. The figures are printed as JSON either way (the smoke tests read them).
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the benchmark runs")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "docs" /
                        "benchmarks.md", help="the report to write the section into (not with --quick)")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", str(Path("/tmp") / f"airflow-alerter-bench-{name}"))
    load = load_average()
    results = measure(args.quick)
    if not args.quick:
        write_section(args.output, section(results, load), begin, end)
    print(json.dumps(results))
