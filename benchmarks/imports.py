"""1. What a DAG file pays to import the alerting names, beside ``import airflow.sdk`` which it pays anyway.

Each run is a fresh interpreter that times ``import airflow.sdk`` and then the alerting import, in
CPU seconds (wall time on a shared 2-core machine mostly measures the neighbours). Two ratios:
across processes (median of the totals over median of ``import airflow.sdk`` alone, as asked),
and paired (each process's total over its own ``import airflow.sdk``), which cancels the
±15 % that Airflow's own 1–2 s import swings from run to run here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import Row, interleaved, median, run_python, subprocess_env

OURS = "from airflow_alerter import alerter_failure_callback, AlerterAskSensor, AlerterPostOperator"
VARIANTS = {
    "import airflow.sdk alone": "pass",
    "ours": OURS,
    "official SlackNotifier": "from airflow.providers.slack.notifications.slack import SlackNotifier",
    "official SmtpNotifier": "from airflow.providers.smtp.notifications.smtp import SmtpNotifier",
}

TIMED_IMPORT = """
import json, sys, time
c0 = time.process_time()
import airflow.sdk
c1 = time.process_time()
before = set(sys.modules)
notifier_already_loaded = "airflow.sdk.bases.notifier" in sys.modules
{statement}
c2 = time.process_time()
new = sorted(set(sys.modules) - before)
print(json.dumps({{"sdk": c1 - c0, "extra": c2 - c1, "new_modules": new,
                   "notifier_already_loaded": notifier_already_loaded}}))
"""

#: The modules the lazy names load, imported by statement so that ``-X importtime`` lists them
#: (``importlib.import_module``, which the package's ``__getattr__`` uses, is not instrumented).
EXPLAINED = (
    "import airflow.sdk\nimport airflow_alerter.notifications.alerter\n"
    "import airflow_alerter.sensors.alerter\nimport airflow_alerter.operators.alerter"
)


def bench_imports(repeats: int, home: str, site: Path) -> tuple[list[Row], dict[str, Any]]:
    env = subprocess_env(home, site)

    def runner(statement: str) -> Any:
        return lambda: run_python(TIMED_IMPORT.format(statement=statement), env)

    samples = interleaved({name: runner(statement) for name, statement in VARIANTS.items()}, repeats)
    total = {name: median([s["sdk"] + s["extra"] for s in runs]) * 1000 for name, runs in samples.items()}
    extra = {name: median([s["extra"] for s in runs]) * 1000 for name, runs in samples.items()}
    paired = {name: median([(s["sdk"] + s["extra"]) / s["sdk"] for s in runs]) for name, runs in samples.items()}
    sdk_alone = total.pop("import airflow.sdk alone")
    ours_run = samples["ours"][0]
    rows = [
        Row(
            "import: `import airflow.sdk` + the alerting names (fresh interpreter, CPU)",
            "ms",
            total["ours"],
            {
                "`import airflow.sdk` alone": sdk_alone,
                "+ official SlackNotifier": total["official SlackNotifier"],
                "+ official SmtpNotifier": total["official SmtpNotifier"],
            },
            f"≤ 1.02× airflow.sdk (paired: ours {paired['ours']:.3f}×, SlackNotifier "
            f"{paired['official SlackNotifier']:.3f}×, SmtpNotifier {paired['official SmtpNotifier']:.3f}×)",
            paired["ours"] <= 1.02,
        ),
        Row(
            "import: what the alerting line adds after `import airflow.sdk` (same process)",
            "ms",
            extra["ours"],
            {
                "official SlackNotifier": extra["official SlackNotifier"],
                "official SmtpNotifier": extra["official SmtpNotifier"],
            },
            detail={"ours": f"{len(ours_run['new_modules'])} modules"},
        ),
    ]
    facts = {
        "repeats": repeats,
        "paired": paired,
        "extra_ms": extra,
        "ours_new_modules": ours_run["new_modules"],
        "notifier_already_loaded": ours_run["notifier_already_loaded"],
        "importtime": importtime_breakdown(env),
    }
    return rows, facts


def importtime_breakdown(env: dict[str, str]) -> list[tuple[str, int, int]]:
    """``(module, self µs, cumulative µs)`` for every module imported after ``airflow.sdk``, slowest first."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", EXPLAINED], env=env, capture_output=True, text=True, check=True
    )
    lines = out.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("| airflow.sdk"))  # the top-level import
    found = []
    for line in lines[start + 1 :]:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$", line)
        if match and match.group(4) != "gc":
            found.append((match.group(4), int(match.group(1)), int(match.group(2))))
    return sorted(found, key=lambda item: -item[1])
