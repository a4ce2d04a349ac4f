"""The alert emails in a real browser: Chromium lays out what the local SMTP server received, 600 px wide.

Mail clients show an HTML email in a pane about 600 px wide; ours must fit it with nothing
sticking out sideways (a long traceback line, a long task id, a URL), and still say what happened.
Each test sends a real email (the failure and success ones from real ``dag.test()`` callbacks),
renders its HTML part in headless Chromium, saves a PNG screenshot under ``test-artifacts/``, and
checks the page is not blank, does not overflow at 600 px and shows the facts.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from airflow_alerter.alerters.smtp_email import SMTPEmailAlerter, SMTPEmailAlerterParameters
from airflow_alerter.models import AlerterMessage
from tests.browser import Chromium, ChromiumUnavailable, Rendering, ensure_chromium, png_stats
from tests.plugins.airflow import RunDag
from tests.plugins.smtp import alerter_config
from tests.servers.smtp import LocalSMTPServer, ReceivedEmail

WIDTH = 600
ARTIFACTS = Path(os.environ.get("AIRFLOW_ALERTER_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
LONG_TASK_ID = "load_customer_orders_into_the_reporting_warehouse_partitioned_by_region_and_day"
LONG_TOKEN = "s3://analytics-landing-zone/" + "partition=2026-11-25/" * 12 + "orders.parquet"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    try:
        binary = ensure_chromium()
    except ChromiumUnavailable as err:
        pytest.skip(f"email rendering needs Chromium: {err}")
    return Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    """Where the PNGs (and the HTML they were taken of) go; the path is printed past output capture."""
    folder = ARTIFACTS / "email-rendering"
    folder.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n  email screenshots: {folder}")
    return folder


def render(email: ReceivedEmail, name: str, chromium: Chromium, folder: Path) -> Rendering:
    html = email.part("html")
    assert html is not None, "the email has no HTML part"
    page = folder / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    return chromium.render(page, folder / f"{name}.png", WIDTH)


def assert_readable_at_600px(rendering: Rendering) -> None:
    layout, pixels = rendering.layout, png_stats(rendering.screenshot)
    assert layout.scroll_width <= WIDTH, f"wider than {WIDTH}px: {layout.overflowing} ({rendering.screenshot})"
    assert layout.scroll_width <= layout.client_width, f"horizontal scrolling: {layout.overflowing}"
    assert pixels.width == WIDTH
    assert pixels.ink > 0.02 and pixels.colours > 20, f"blank page? {pixels} ({rendering.screenshot})"


def visible_text(rendering: Rendering) -> str:
    """The rendered text with line breaks and soft-wrap points gone, so long words can be searched for."""
    return re.sub(r"\s+", "", rendering.layout.text)


def test_failure_alert_with_a_long_traceback_fits_600px_and_shows_dag_task_and_exception(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer, chromium: Chromium, screenshots: Path
) -> None:
    run_dag(f"""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_failure_callback

        def dig(depth):
            if depth == 0:
                raise ConnectionError("warehouse refused the upload of {LONG_TOKEN}")
            return dig(depth - 1)

        with DAG("nightly_warehouse_load", schedule=None) as dag:
            @task(task_id="{LONG_TASK_ID}", on_failure_callback=alerter_failure_callback("ops_email"))
            def load():
                dig(40)
            load()
    """)
    [email] = smtp_server.received

    rendering = render(email, "failure-long-traceback", chromium, screenshots)

    assert_readable_at_600px(rendering)
    text = visible_text(rendering)
    for fact in ("nightly_warehouse_load", LONG_TASK_ID, "ConnectionError:warehouserefusedtheupload", LONG_TOKEN):
        assert fact in text
    assert "Traceback(lastlines)" in text


def test_success_notification_fits_600px_and_shows_dag_and_task(
    run_dag: RunDag, smtp_conn: str, smtp_server: LocalSMTPServer, chromium: Chromium, screenshots: Path
) -> None:
    run_dag("""
        from airflow.sdk import DAG, task
        from airflow_alerter import alerter_success_callback

        with DAG("train_churn_model", schedule=None) as dag:
            @task(on_success_callback=alerter_success_callback("ops_email"))
            def fit():
                return 1
            fit()
    """)
    [email] = smtp_server.received

    rendering = render(email, "success", chromium, screenshots)

    assert_readable_at_600px(rendering)
    text = visible_text(rendering)
    for fact in ("TaskSuccessNotification", "train_churn_model", "fit"):
        assert fact in text


def test_custom_html_body_is_sent_as_given_and_fits_600px(
    smtp_server: LocalSMTPServer, chromium: Chromium, screenshots: Path
) -> None:
    html_body = """<!DOCTYPE html><html><body style="margin:0;font-family:Arial,sans-serif;">
      <table role="presentation" width="100%" style="max-width:600px;border-collapse:collapse;">
        <tr><td style="background:#0052cc;color:#fff;padding:16px;font-size:20px;">Weekly data quality</td></tr>
        <tr><td style="padding:16px;">Rows checked: <b>1,204,331</b> &mdash; failed checks:
          <b style="color:#de350b;">3</b> in <code>orders_daily</code>.</td></tr>
      </table></body></html>"""
    alerter = SMTPEmailAlerter(alerter_config(smtp_server))

    assert alerter.post(
        AlerterMessage(title="Weekly data quality", body="3 failed checks"),
        SMTPEmailAlerterParameters(html_body=html_body),
    )
    [email] = smtp_server.received
    rendering = render(email, "custom-html-body", chromium, screenshots)

    assert_readable_at_600px(rendering)
    assert email.part("html").splitlines() == html_body.splitlines()  # line endings aside, untouched
    assert "Weekly data quality" in rendering.layout.text
    assert "failed checks: 3 in orders_daily" in " ".join(rendering.layout.text.split())
