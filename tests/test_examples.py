"""The example DAGs a user copies: they parse cleanly and do what their docstrings say."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.plugins.airflow import RunDag
from tests.servers.smtp import LocalSMTPServer

EXAMPLES = Path(__file__).resolve().parent.parent / "dags" / "examples"


def test_every_example_dag_parses_without_import_errors() -> None:
    from airflow_alerter._compat import dagbag_type

    bag = dagbag_type()(dag_folder=str(EXAMPLES))

    assert bag.import_errors == {}
    assert {"example_email_failure_alerts", "example_email_post_operator", "example_slack_approval_gate"} <= set(
        bag.dag_ids)


def test_email_post_example_sends_the_announcement_and_the_html_report(
    run_dag: RunDag, dags_folder: Path, smtp_conn: str, smtp_server: LocalSMTPServer
) -> None:
    shutil.copytree(EXAMPLES / "templates", dags_folder / "templates", dirs_exist_ok=True)

    run_dag((EXAMPLES / "email_post_operator.py").read_text())

    announce, report = smtp_server.received
    assert announce.message["Subject"] == "[Airflow] Model v7 is live"
    assert report.message["Subject"] == "Weekly report: v7"
    assert "reached accuracy <b>0.931</b>" in report.part("html")
