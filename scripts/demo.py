"""Run the example DAGs against an embedded Airflow and a local SMTP inbox you can open.

Creates ``demo-output/`` with a throwaway Airflow home (SQLite) and ``demo-output/inbox/``, where
every email the DAGs send is saved as ``.eml`` (open it in a mail client) and ``.html`` (open it
in a browser). Nothing leaves this machine: the inbox listens on 127.0.0.1.

Usage: python scripts/demo.py [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _prepare_airflow_home(output: Path) -> None:
    """Point Airflow at a fresh SQLite home; this must happen before Airflow is first imported."""
    home = output / "airflow-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags" / "examples"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    })
    print(f"Airflow home (SQLite): {home}")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def _run_demo_dags() -> list[tuple[str, str]]:
    from airflow_alerter._compat import dagbag_type

    bag = dagbag_type()(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"example DAGs failed to import: {bag.import_errors}")
    outcomes = []
    for dag_id in sorted(bag.dag_ids):
        dag = bag.get_dag(dag_id)
        if dag is None or "demo" not in (dag.tags or set()):
            continue
        print(f"\n=== running {dag_id} ===", flush=True)
        dag_run = dag.test()
        state = str(getattr(dag_run.state, "value", dag_run.state))
        outcomes.append((dag_id, f"{state} (on purpose)" if "fails-on-purpose" in dag.tags else state))
    return outcomes


DEMO_CHANNEL = "C0DEMO"


def _write_slack_transcript(slack: Any, path: Path) -> None:
    """What a person would have seen in the Slack channel, as text."""
    lines = []
    for message in sorted(slack.messages.get(DEMO_CHANNEL, []), key=lambda m: m["ts"]):
        indent = "    ↳ " if "thread_ts" in message else ""
        lines.append(f"{indent}[{message['user']}] {message['text']}".replace("\n", "\n" + " " * len(indent)))
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    print(f"Slack channel transcript (local stand-in for Slack): {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output",
                        help="where to write the Airflow home and the inbox (default: %(default)s)")
    args = parser.parse_args()
    output: Path = args.output.resolve()
    inbox_dir = output / "inbox"
    shutil.rmtree(inbox_dir, ignore_errors=True)

    _prepare_airflow_home(output)
    sys.path.insert(0, str(ROOT))
    from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer
    from tests.servers.smtp import LocalSMTPServer

    with LocalSMTPServer(save_dir=inbox_dir) as inbox, SlackAPIServer() as slack:
        os.environ["AIRFLOW_CONN_OPS_EMAIL"] = json.dumps({
            "conn_type": "smtp", "host": inbox.host, "port": inbox.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com",
                      "to": "oncall@example.com"},
        })
        os.environ["AIRFLOW_CONN_ML_SLACK"] = json.dumps({
            "conn_type": "slack", "password": BOT_TOKEN,
            "extra": {"base_url": slack.base_url, "channel": DEMO_CHANNEL},
        })
        slack.answer_on_check(1, user="U0DEMOLEAD", text="LGTM, ship it")  # a person approving the gate
        outcomes = _run_demo_dags()
        received = list(inbox.received)
        _write_slack_transcript(slack, output / "slack-channel.txt")

    print("\n=== demo summary ===")
    for dag_id, state in outcomes:
        print(f"  {dag_id}: run {state}")
    print(f"\n{len(received)} emails received. Open them in: {inbox_dir}")
    for path in sorted(inbox_dir.glob("*")):
        print(f"  {path.name}")
    if not received:
        raise SystemExit("the demo sent no email: something is wrong")


if __name__ == "__main__":
    main()
