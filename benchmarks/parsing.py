"""2. What alerting adds to DAG parsing, measured with Airflow's own parsing code.

The same generated DAG files in three styles: no alerting, our callbacks, Airflow's official
notifiers — with two tasks each, and again with a third "approval gate" task (our
``AlerterAskSensor``; a stock ``PythonSensor`` where there is no alerting package to ask with).

Two ways of parsing, both in fresh interpreters, in CPU seconds:

- **DagBag**: one ``DagBag`` over the folder, as ``airflow dags list`` or a test does. Imports are
  paid once for all the files.
- **dag-processor**: what Airflow 3's dag-processor does with each file: the manager pre-imports
  the file's ``airflow.*`` imports (``_pre_import_airflow_modules``), forks, and the child runs
  ``_parse_file`` (DagBag + serialization). Modules not named ``airflow.*`` — ours — are imported
  again in every child. The manager here freezes the GC as the real one does, is warmed as one
  that has parsed a folder holding every style (it pre-imported all their ``airflow.*`` imports),
  so each style pays only for itself, and parses the styles file by file in turn (A B C A B C).
  The figure is the child's CPU time for ``_parse_file`` (read in the child: less noisy than the
  whole child's, which adds the fork and exit every style pays alike; those are kept as facts).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Row, interleaved, median, run_python, subprocess_env

DAG_TEMPLATE = """\
from airflow.sdk import DAG, task
{imports}

with DAG("generated_{i}", schedule=None{dag_args}):
    @task({task_args})
    def extract():
        return {i}

    @task({task_args})
    def load(value):
        return value

    done = load(extract())
{gate}"""

OUR_CALLBACKS = {
    "imports": "from airflow_alerter import alerter_failure_callback",
    "dag_args": ', on_failure_callback=alerter_failure_callback("ops_email")',
    "task_args": 'on_failure_callback=alerter_failure_callback("ml_slack")',
}
OFFICIAL_CALLBACKS = {
    "imports": "from airflow.providers.slack.notifications.slack import SlackNotifier\n"
    "from airflow.providers.smtp.notifications.smtp import SmtpNotifier",
    "dag_args": ', on_failure_callback=SmtpNotifier(to="ops@example.com", from_email="airflow@example.com")',
    "task_args": 'on_failure_callback=SlackNotifier(slack_conn_id="ml_slack", text="{{ ti.task_id }} failed", '
    'channel="#ml")',
}
NO_CALLBACKS = {"imports": "", "dag_args": "", "task_args": ""}
OUR_GATE = (
    "from airflow_alerter import AlerterAskSensor",
    '    done >> AlerterAskSensor(task_id="gate", alerter_conn_id="ml_slack", question="Deploy {i}?",\n'
    '                             mode="reschedule")\n',
)
STOCK_GATE = (
    "from airflow.providers.standard.sensors.python import PythonSensor",
    '    done >> PythonSensor(task_id="gate", python_callable=lambda: True, mode="reschedule")\n',
)

STYLES: dict[str, tuple[dict[str, str], tuple[str, str] | None]] = {
    "no alerting": (NO_CALLBACKS, None),
    "ours": (OUR_CALLBACKS, None),
    "official notifiers": (OFFICIAL_CALLBACKS, None),
    "no alerting + stock gate": (NO_CALLBACKS, STOCK_GATE),
    "ours + ask gate": (OUR_CALLBACKS, OUR_GATE),
    "official notifiers + stock gate": (OFFICIAL_CALLBACKS, STOCK_GATE),
}


def dag_source(style: str, i: int) -> str:
    callbacks, gate = STYLES[style]
    imports = "\n".join(part for part in (callbacks["imports"], gate[0] if gate else "") if part)
    return DAG_TEMPLATE.format(
        i=i,
        imports=imports,
        dag_args=callbacks["dag_args"],
        task_args=callbacks["task_args"],
        gate=(gate[1] if gate else "").format(i=i),
    )


def write_dag_folders(workdir: Path, dag_count: int) -> dict[str, Path]:
    folders = {}
    for number, style in enumerate(STYLES):
        folder = workdir / f"style_{number}"
        folder.mkdir(parents=True)
        for i in range(dag_count):
            (folder / f"dag_{i}.py").write_text(dag_source(style, i))
        folders[style] = folder
    return folders


DAGBAG = """
import json, sys, time
from airflow_alerter._compat import dagbag_type
DagBag = dagbag_type()
folder, expected = sys.argv[1], int(sys.argv[2])
started = time.process_time()
bag = DagBag(dag_folder=folder)
cpu = time.process_time() - started
assert not bag.import_errors, bag.import_errors
assert len(bag.dag_ids) == expected, bag.dag_ids
print(json.dumps({"cpu": cpu}))
"""

DAG_PROCESSOR = """
import gc, json, os, resource, sys
from pathlib import Path
import structlog
from airflow.dag_processing.processor import DagFileParseRequest, _parse_file, _pre_import_airflow_modules

log = structlog.get_logger()
folders, count = [Path(folder) for folder in sys.argv[1].split(os.pathsep)], int(sys.argv[2])
gc.freeze()  # as DagFileProcessorManager.before_run does, so children do not copy the heap on a collection
for folder in folders:  # a manager that has parsed a folder holding every style once
    _pre_import_airflow_modules(str(folder / "dag_0.py"), log)


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse(folder, path):
    _pre_import_airflow_modules(str(path), log)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        started = cpu()
        try:
            result = _parse_file(DagFileParseRequest(file=str(path), bundle_path=folder, bundle_name="bench"), log)
            ok = result is not None and not result.import_errors and len(result.serialized_dags) == 1
        except BaseException as err:
            print(repr(err), file=sys.stderr)
            ok = False
        os.write(write_end, repr(cpu() - started).encode())
        os._exit(0 if ok else 1)
    os.close(write_end)
    _, status, usage = os.wait4(pid, 0)
    with os.fdopen(read_end) as pipe:
        parsing = float(pipe.read())
    assert status == 0, f"parsing {path} failed"
    return parsing, usage.ru_utime + usage.ru_stime


times = {str(folder): {"parse": [], "child": []} for folder in folders}
for i in range(count):  # file by file, every style in turn: A B C A B C
    for folder in folders:
        parsing, child = parse(folder, folder / f"dag_{i}.py")
        times[str(folder)]["parse"].append(parsing)
        times[str(folder)]["child"].append(child)
print(json.dumps(times))
"""


def bench_parsing(
    dag_count: int, repeats: int, fork_count: int, processor_runs: int, home: str, site: Path, workdir: Path
) -> tuple[list[Row], dict[str, Any]]:
    env = subprocess_env(home, site)
    folders = write_dag_folders(workdir / "dags", dag_count)

    def dagbag(folder: Path) -> Callable[[], float]:
        return lambda: float(run_python(DAGBAG, env, str(folder), str(dag_count))["cpu"])

    bag = {
        style: median(runs)
        for style, runs in interleaved({style: dagbag(folder) for style, folder in folders.items()}, repeats).items()
    }

    # Each manager process parses fork_count files of every style, interleaved file by file.
    every_style = os.pathsep.join(str(folder) for folder in folders.values())
    forked = [run_python(DAG_PROCESSOR, env, every_style, str(fork_count)) for _ in range(processor_runs)]

    def per_file(measure: str) -> dict[str, float]:
        return {
            style: median([value for run in forked for value in run[str(folder)][measure]]) * 1000
            for style, folder in folders.items()
        }

    parse, child = per_file("parse"), per_file("child")

    rows = []
    for label, ours, bare, official in (
        ("2 tasks + callbacks", "ours", "no alerting", "official notifiers"),
        (
            "3 tasks: callbacks + approval gate",
            "ours + ask gate",
            "no alerting + stock gate",
            "official notifiers + stock gate",
        ),
    ):
        rows.append(
            Row(
                f"parse {dag_count} DAG files, one DagBag (CPU), {label}",
                "s",
                bag[ours],
                {"no alerting": bag[bare], "official notifiers": bag[official]},
                "≤ 1.05× no alerting",
                bag[ours] / bag[bare] <= 1.05,
            )
        )
        rows.append(
            Row(
                f"dag-processor: `_parse_file` in a forked child per file, {label} (CPU, median of "
                f"{fork_count} files × {processor_runs})",
                "ms/file",
                parse[ours],
                {"no alerting": parse[bare], "official notifiers": parse[official]},
                "≤ 1.05× no alerting",
                parse[ours] / parse[bare] <= 1.05,
            )
        )
    return rows, {"child_ms": child, "parse_ms": parse, "dagbag_s": bag}


def sample_dag(style: str) -> str:
    return textwrap.indent(dag_source(style, 0), "    ")
