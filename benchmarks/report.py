"""docs/benchmarks.md: the table, the machine, how each row is measured, and the evidence behind the misses.

The generated parts (table, machine, ``-X importtime`` breakdown, latencies) come from the run;
the reading of the misses is hand-written in benchmarks/ANALYSIS.md (dated, with the numbers of
the run it explains) and included as is, so a new run refreshes the figures without losing it.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import ROOT
from benchmarks.parsing import sample_dag

HOW = """\
## How each row is measured

- **import**: a fresh interpreter times `import airflow.sdk`, then the alerting import a DAG file
  adds (ours: `from airflow_alerter import alerter_failure_callback, AlerterAskSensor,
  AlerterPostOperator`; or the official `SlackNotifier` / `SmtpNotifier`), in CPU time. The
  target is judged on the paired ratio (each process's total over its own `import airflow.sdk`),
  because Airflow's own import swings by ±15 % between processes here; the cross-process ratio
  of the medians is in the table too. Our package is imported from a compiled copy, as a
  `pip install` leaves it (this tree runs with `PYTHONDONTWRITEBYTECODE=1`).
- **parse, one DagBag**: `airflow.dag_processing.dagbag.DagBag` over a folder of generated DAG
  files in a fresh interpreter (CPU time of the `DagBag(...)` call). Three styles — no alerting,
  our callbacks, the official `SmtpNotifier` (DAG) + `SlackNotifier` (tasks) — with two tasks,
  and again with a third "approval gate" task: our `AlerterAskSensor`, or a stock `PythonSensor`
  where there is nothing to ask with.
- **dag-processor**: Airflow 3's dag-processor forks one child per file; the manager freezes the GC
  (`gc.freeze()`), pre-imports each file's `airflow.*` imports before forking
  (`parsing_pre_import_modules`), and the child runs `_parse_file` (DagBag + serialization). The
  benchmark does exactly that with Airflow's own functions, in a manager warmed as if it had
  parsed every style once, the styles interleaved file by file; the figure is the child's CPU
  time for `_parse_file` (the whole child's, fork and exit included, is in the table below).
  Modules not named `airflow.*` — ours — are imported again in every child.
- **emails / Slack posts**: N posts of the same message to local servers (aiosmtpd; the Slack Web
  API stand-in in tests/servers), wall time, all in one process. The raw email is built with
  `email.message.EmailMessage` with the same headers and the same text + HTML bodies our flavor
  renders (rendered once, up front), so the difference is our per-email work. Ours keeps its
  connection open between posts (`airflow_alerter/alerters/smtp_pool.py`); the pool is emptied at the
  start of each timed run, so a run opens one connection as the one-connection baselines do.
  Connections are counted client-side with Python's `socket.connect` audit event.
- **ask**: requests and connections per `check_answer` / `acheck_answer`; the time from a person's
  reply to `AlerterAskTrigger`'s event, with replies landing evenly across the poll interval;
  `benchmarks/ask_triggers.py` (a fresh interpreter, the Slack stand-in in another process) for
  the resident memory of many pending triggers in one loop and their CPU per minute once started
  (the whole run's figure, which adds building 500 alerters, is beside it).

The DAG file of the "ours + ask gate" style:

```python
{sample}
```
"""


def report(table: str, facts: dict[str, Any], machine: str, quick: bool) -> str:
    parts = [
        "# Benchmarks\n",
        "Produced by `python benchmarks/run.py` (`make benchmark`); `--quick` is the smoke test's tiny run.\n",
        f"Machine: {machine}. Load average before / after: {facts['load_before']} / {facts['load_after']}; "
        f"the run took {facts['minutes']:.1f} min.\n",
    ]
    if quick:
        parts.append("**Quick run: tiny sizes, the figures mean nothing.**\n")
    parts += [
        table,
        _imports(facts["imports"]),
        _parsing(facts["parsing"]),
        _ask(facts["ask"]),
        HOW.format(sample=sample_dag("ours + ask gate")),
    ]
    analysis = ROOT / "benchmarks" / "ANALYSIS.md"
    if analysis.exists():
        parts.append(analysis.read_text(encoding="utf-8"))
    return "\n".join(parts)


def _imports(facts: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| `{name}` | {own / 1000:.1f} | {total / 1000:.1f} |" for name, own, total in facts["importtime"]
    )
    own_total = sum(own for _, own, _ in facts["importtime"]) / 1000
    return (
        "## What our import adds (`python -X importtime`, one run)\n\n"
        f"After `import airflow.sdk`, the three names load {len(facts['ours_new_modules'])} modules: "
        f"{', '.join(f'`{name}`' for name in facts['ours_new_modules'])}. "
        f"`BaseNotifier` (`airflow.sdk.bases.notifier`) is already loaded by `import airflow.sdk`: "
        f"{'yes' if facts['notifier_already_loaded'] else 'no'}, so the notifier module's own import of it costs "
        f"nothing more. Median increment over {facts['repeats']} fresh interpreters: ours "
        f"{facts['extra_ms']['ours']:.1f} ms, official SlackNotifier {facts['extra_ms']['official SlackNotifier']:.1f}"
        f" ms, official SmtpNotifier {facts['extra_ms']['official SmtpNotifier']:.1f} ms.\n\n"
        "| module | self ms | cumulative ms |\n|---|---|---|\n"
        + rows
        + f"\n| **total self time** | **{own_total:.1f}** | |\n"
    )


def _parsing(facts: dict[str, Any]) -> str:
    bag, parse, child = facts["dagbag_s"], facts["parse_ms"], facts["child_ms"]
    rows = "\n".join(f"| {style} | {bag[style]:.3f} | {parse[style]:.1f} | {child[style]:.1f} |" for style in bag)
    return (
        "## Parsing: every style\n\n"
        "| style | one DagBag, s (CPU) | dag-processor `_parse_file`, ms/file (CPU) | whole forked child, ms/file |\n"
        "|---|---|---|---|\n" + rows + "\n"
    )


def _ask(facts: dict[str, Any]) -> str:
    latencies = ", ".join(f"{value:.2f}" for value in facts["latencies"])
    memory = facts["memory"]
    return (
        "## Ask: raw figures\n\n"
        f"- Detection latencies (s), replies landing evenly across the interval: {latencies}.\n"
        f"- Pending triggers: `{memory}`.\n"
    )
