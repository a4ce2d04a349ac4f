"""Run the example DAGs against an embedded Airflow, a local SMTP inbox and a local Slack stand-in.

Creates ``demo-output/`` with a throwaway Airflow home (SQLite), ``demo-output/inbox/``, where
every email the DAGs send is saved as ``.eml`` (open it in a mail client) and ``.html`` (open it
in a browser), ``slack-channel.txt`` (what the channel showed) and ``airflow.log`` (everything
Airflow logged). The approval gate is recorded as an Airflow Human-in-the-loop request and is
answered in the Slack stand-in. Nothing leaves this machine: every server listens on 127.0.0.1.

Usage: python scripts/demo.py [--output DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_AIRFLOW_URL = "http://localhost:8080"


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
        # where `airflow api-server` would serve this home: the question links to its Required actions page
        "AIRFLOW__API__BASE_URL": DEMO_AIRFLOW_URL,
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


@contextlib.contextmanager
def _logs_into(path: Path) -> Iterator[None]:
    """Send everything written to stdout/stderr (Airflow's task logs among it) to ``path``, not the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _hitl_requests() -> list[str]:
    """The Human-in-the-loop requests the run left in Airflow's metadata DB, one line each."""
    from airflow.models.hitl import HITLDetail
    from airflow.utils.session import create_session

    from airflow_alerter.hooks.hitl import required_actions_url

    with create_session() as session:
        return [f"{row.subject!r}, options {row.options}: {required_actions_url(row.task_instance, DEMO_AIRFLOW_URL)}"
                for row in session.query(HITLDetail).all()]


def _write_slack_transcript(slack: Any, path: Path) -> None:
    """What a person would have seen in the Slack channel, as text."""
    lines = []
    for message in sorted(slack.messages.get(DEMO_CHANNEL, []), key=lambda m: m["ts"]):
        indent = "    ↳ " if "thread_ts" in message else ""
        lines.append(f"{indent}[{message['user']}] {message['text']}".replace("\n", "\n" + " " * len(indent)))
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")


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
    from airflow_alerter.alerters.smtp_pool import POOL
    from tests.servers.slack_api import BOT_TOKEN, SlackAPIServer
    from tests.servers.smtp import LocalSMTPServer

    log_file = output / "airflow.log"
    log_file.unlink(missing_ok=True)
    print(f"Running the example DAGs; Airflow's logs go to {log_file}", flush=True)
    # the servers log too, up to their last connection closing (kept SMTP connections close at exit)
    with _logs_into(log_file), LocalSMTPServer(save_dir=inbox_dir) as inbox, SlackAPIServer() as slack:
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
        POOL.close_all()  # the kept SMTP connections, while the inbox is still there to see them go
        received = list(inbox.received)
        _write_slack_transcript(slack, output / "slack-channel.txt")
        requests = _hitl_requests()

    print("\n=== demo summary ===")
    for dag_id, state in outcomes:
        print(f"  {dag_id}: run {state}")
    print("\nApproval gates recorded as Airflow Human-in-the-loop requests, answered in the Slack stand-in")
    print("(run `airflow api-server` with this AIRFLOW_HOME to open the page; dag.test() runs the trigger in")
    print("the task's process, where Airflow lets it create the request but not record the chat's answer):")
    for line in requests or ["none: something is wrong"]:
        print(f"  {line}")
    print(f"\nSlack channel as a person saw it: {output / 'slack-channel.txt'}")
    print(f"{len(received)} emails received. Open them in: {inbox_dir}")
    for path in sorted(inbox_dir.glob("*")):
        print(f"  {path.name}")
    print(f"Airflow's logs: {log_file}")
    if not received or not requests:
        raise SystemExit("the demo sent no email or recorded no approval request: something is wrong")


if __name__ == "__main__":
    main()
