"""What a person sees on Airflow's Required actions page for a pending gate, in headless Chromium:
the question and the link to its Slack message (a screenshot is kept under test-artifacts/)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.browser import ChromiumUnavailable, ensure_chromium, png_stats
from tests.e2e.conftest import SlackChannel
from tests.e2e.engine import AirflowEngine
from tests.plugins.slack import CHANNEL
from tests.servers.slack_api import PERMALINK_BASE

pytestmark = pytest.mark.e2e

GATE = "e2e_gate_deferrable"
ARTIFACTS = Path(os.environ.get("AIRFLOW_ALERTER_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return ensure_chromium()
    except ChromiumUnavailable as err:
        pytest.skip(f"the Required actions page test needs Chromium: {err}")


def _open(chromium: str, url: str, profile: Path, *args: str) -> str:
    import subprocess

    from tests.browser import FLAGS

    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000",
                           "--virtual-time-budget=30000", *args, url], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_required_actions_page_shows_the_question_and_its_slack_link(
    engine: AirflowEngine, slack: SlackChannel, chromium: str, tmp_path: Path
) -> None:
    engine.wait_for_dag(GATE)
    run_id = engine.trigger(GATE)
    question = slack.question_about(run_id)
    engine.wait_for_task_state(GATE, run_id, "gate", {"deferred"})
    page = f"{engine.api_url}/dags/{GATE}/runs/{quote(run_id, safe=':')}/tasks/gate/required_actions"
    # the simple auth manager in all-admins mode signs the browser in without credentials, then sends it on
    login = f"{engine.api_url}/auth/token/login?next={quote(page, safe='')}"

    dom = _open(chromium, login, tmp_path / "profile", "--dump-dom")
    folder = ARTIFACTS / "required-actions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "page.html").write_text(dom, encoding="utf-8")
    shot = folder / "required-actions.png"
    _open(chromium, login, tmp_path / "profile", f"--screenshot={shot}")

    text = re.sub(r"<[^>]+>", " ", dom)
    assert f"Deploy {run_id}?" in text
    assert f"{PERMALINK_BASE}/{CHANNEL}/p{question['ts'].replace('.', '')}" in dom
    assert "Approve" in text and "Reject" in text
    stats = png_stats(shot)
    assert stats.ink > 0.02 and stats.colours > 20  # a rendered page, not a blank window
    engine.api("PATCH", f"/dags/{GATE}/dagRuns/{run_id}/taskInstances/gate/-1/hitlDetails",
               {"chosen_options": ["Approve"], "params_input": {}})
    assert engine.wait_for_run(GATE, run_id) == "success"
