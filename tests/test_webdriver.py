"""A person in a real browser (tests/webdriver.py): an email's link opens a page, the form's button posts it.

A small site on 127.0.0.1 stands in for an approval page: ``GET /question`` shows a question with a
form (``method=post``, no JavaScript on the page), ``POST /answer`` records the choice and shows the
result. The email's HTML is saved to disk and opened as a file, as a mail client would show it.
Screenshots go under ``test-artifacts/webdriver/``. Without a chromedriver that can be installed the
tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import html
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import pytest

from tests import webdriver
from tests.browser import png_stats
from tests.webdriver import Browser, BrowserUnavailable, WebDriverError, ensure_chromedriver, free_port

ARTIFACTS = Path(os.environ.get("AIRFLOW_ALERTER_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
QUESTION = "Deploy release 42 to production?"
LINK_TEXT = "Open the question"
STYLE = """<style>
  body { font: 16px sans-serif; margin: 40px; color: #1f2937; }
  h1 { color: #1d4ed8; }
  button { font-size: 16px; padding: 10px 24px; border: 0; color: #fff; margin-right: 12px; }
  .approve { background: #15803d; } .reject { background: #b91c1c; }
</style>"""
QUESTION_PAGE = f"""<!doctype html><html><head><meta charset="utf-8"><title>Approval</title>{STYLE}</head><body>
<h1>{QUESTION}</h1>
<p>The deploy_release DAG waits for your answer.</p>
<form method="post" action="/answer">
  <input type="hidden" name="gate" value="deploy-42">
  <button class="approve" type="submit" name="choice" value="approve">Approve</button>
  <button class="reject" type="submit" name="choice" value="reject">Reject</button>
</form>
</body></html>"""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    body: str


class FormSite(ThreadingHTTPServer):
    """The approval site: records every request it is sent; only a POST to /answer decides."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Pages)
        self.requests: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def question_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/question?gate=deploy-42"

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.requests)

    def decisions(self) -> list[Seen]:
        return [request for request in self.seen() if request.path == "/answer"]


class _Pages(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        path = self._record("")
        if path == "/question":
            self._page(200, QUESTION_PAGE)
        elif path == "/answer":
            self._page(405, "<p>Answers are posted, never fetched.</p>")  # a link must never decide
        else:
            self._page(404, "<p>Not found.</p>")  # the browser's /favicon.ico

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self._record(body) != "/answer":
            self._page(404, "<p>Not found.</p>")
            return
        fields = {name: values[0] for name, values in parse_qs(body).items()}
        choice, gate = html.escape(fields.get("choice", "?")), html.escape(fields.get("gate", "?"))
        self._page(200, f"<!doctype html><html><head>{STYLE}</head><body><h1>Thank you</h1>"
                        f"<p>Recorded: {choice} for {gate}.</p></body></html>")

    def _record(self, body: str) -> str:
        site, path = cast(FormSite, self.server), urlparse(self.path).path
        with site.lock:
            site.requests.append(Seen(self.command, path, body))
        return path

    def _page(self, status: int, page: str) -> None:
        payload = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def chromedriver() -> str:
    try:
        return ensure_chromedriver()
    except BrowserUnavailable as err:
        pytest.skip(f"the browser tests need chromedriver: {err}")


@pytest.fixture
def browser(chromedriver: str) -> Iterator[Browser]:
    with Browser() as browser:
        yield browser


@pytest.fixture
def site() -> Iterator[FormSite]:
    server = FormSite()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def email_html(tmp_path: Path, site: FormSite) -> Path:
    """An alert email's HTML part as saved to disk: one link, to the question page."""
    path = tmp_path / "email.html"
    path.write_text(f'<!doctype html><html><body><p>{QUESTION}</p><p><a href="{site.question_url}">{LINK_TEXT}</a>'
                    "</p></body></html>", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    """Where the PNGs go; the path is printed past output capture."""
    folder = ARTIFACTS / "webdriver"
    folder.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n  webdriver screenshots: {folder}")
    return folder


def test_the_emails_links_are_listed_with_their_text_and_address(
    browser: Browser, email_html: Path, site: FormSite
) -> None:
    browser.open_html_file(email_html)

    assert browser.url() == email_html.resolve().as_uri()
    assert browser.links() == [(LINK_TEXT, site.question_url)]


def test_clicking_the_emails_link_shows_the_question_page(browser: Browser, email_html: Path, site: FormSite) -> None:
    browser.open_html_file(email_html)
    browser.click("a")

    assert browser.url() == site.question_url
    assert QUESTION in browser.text()
    assert 'name="choice" value="approve"' in browser.html()


def test_pressing_the_approve_button_posts_the_choice_once_and_shows_the_result(
    browser: Browser, email_html: Path, site: FormSite
) -> None:
    browser.open_html_file(email_html)
    browser.click("a")
    browser.click("button.approve")

    assert site.decisions() == [Seen("POST", "/answer", "gate=deploy-42&choice=approve")]
    assert {request.method for request in site.seen() if request.path != "/answer"} == {"GET"}
    assert "Recorded: approve for deploy-42." in browser.text()
    assert browser.url().endswith("/answer")


def test_following_the_link_and_reading_the_page_posts_nothing(
    browser: Browser, email_html: Path, site: FormSite, tmp_path: Path
) -> None:
    browser.open_html_file(email_html)
    browser.click("a")
    browser.text()
    browser.html()
    browser.links()
    browser.screenshot(tmp_path / "looked.png")
    time.sleep(0.5)  # room for anything the page or the browser might still send

    assert site.decisions() == []
    assert {request.method for request in site.seen()} == {"GET"}
    assert Seen("GET", "/question", "") in site.seen()


def test_screenshots_of_the_question_and_the_result_are_real_pngs(
    browser: Browser, email_html: Path, site: FormSite, screenshots: Path
) -> None:
    browser.open_html_file(email_html)
    browser.click("a")
    question = png_stats(browser.screenshot(screenshots / "question.png"))
    browser.click("button.approve")
    result = png_stats(browser.screenshot(screenshots / "result.png"))

    for stats in (question, result):
        assert stats.width == 1200
        assert stats.ink > 0.001 and stats.colours > 20, f"blank page? {stats}"
    assert question.ink > result.ink  # the question page has two coloured buttons; the result only text


def test_clicking_an_element_that_is_not_there_fails_with_webdrivers_message(
    browser: Browser, email_html: Path
) -> None:
    browser.open_html_file(email_html)

    with pytest.raises(AssertionError, match=r"click\('#no-such-button'\): no such element") as raised:
        browser.click("#no-such-button")
    assert isinstance(raised.value, WebDriverError) and raised.value.error == "no such element"


def test_a_click_that_opens_no_new_page_fails_within_the_timeout(browser: Browser, email_html: Path) -> None:
    browser.open_html_file(email_html)
    browser.timeout = 1.0
    started = time.monotonic()

    with pytest.raises(WebDriverError, match="no new page loaded within 1s"):
        browser.click("p")
    assert time.monotonic() - started < 5


def test_leaving_the_block_after_a_failure_ends_chromedriver_its_browser_and_profile(chromedriver: str) -> None:
    with pytest.raises(RuntimeError, match="the test failed"), Browser() as browser:
        process, profile = browser.process, browser.profile
        raise RuntimeError("the test failed")

    assert process is not None and process.poll() is not None
    assert profile is not None and not profile.exists()
    assert _live_members_of_group(process.pid) == []


def test_a_port_taken_between_choosing_and_binding_it_is_given_up_for_another(
    chromedriver: str, monkeypatch: pytest.MonkeyPatch, email_html: Path
) -> None:
    chosen: list[int] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def first_the_taken_one() -> int:
            chosen.append(free_port() if chosen else taken.getsockname()[1])
            return chosen[-1]

        monkeypatch.setattr(webdriver, "free_port", first_the_taken_one)
        with Browser() as browser:
            browser.open_html_file(email_html)
            assert LINK_TEXT in browser.text()
        assert len(chosen) == 2 and chosen[0] == taken.getsockname()[1]


def test_without_chromedriver_and_with_installs_off_the_reason_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_ALERTER_NO_INSTALL", "1")

    with pytest.raises(BrowserUnavailable, match="on PATH and AIRFLOW_ALERTER_NO_INSTALL is set"):
        ensure_chromedriver()


def _live_members_of_group(group: int, wait: float = 5.0) -> list[int]:
    """The processes (not zombies) still in process group ``group``, after up to ``wait`` s for them to die."""
    deadline = time.monotonic() + wait
    while True:
        live = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
                if int(fields[2]) == group and fields[0] != "Z":
                    live.append(int(stat.parent.name))
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.05)
