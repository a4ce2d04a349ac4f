"""A real browser a test drives as a person would: follow a link, read the page, press a form's button.

Chromium's command line (``tests/browser.py``) renders a page but cannot press anything. This is a
tiny client of the W3C WebDriver protocol (JSON over HTTP, https://www.w3.org/TR/webdriver2/),
spoken with httpx to Debian's ``chromedriver`` (package ``chromium-driver``), which
``scripts/install-chromium.sh`` installs when missing::

    with Browser() as browser:
        browser.open_html_file(email_html)
        browser.click("a.open-question")          # a real click; returns once the new page has loaded
        browser.click("button[type=submit]")      # submits the form, as a person's click would
        assert "Approved" in browser.text()
        browser.screenshot(folder / "result.png")

Each ``Browser`` starts its own chromedriver on a free 127.0.0.1 port with its own temporary
profile, and on leaving the block ends the session, then chromedriver and every browser process it
started, even when the block failed.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.browser import FLAGS, ChromiumUnavailable, ensure_chromium, install

WIDTH, HEIGHT = 1200, 900
#: The key under which WebDriver hands out an element reference (W3C WebDriver, "web element identifier").
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
#: tests/browser.py's flags, with the headless mode the command line defaults to and a driven browser needs named.
ARGS = tuple("--headless=new" if flag == "--headless" else flag for flag in FLAGS)


class BrowserUnavailable(ChromiumUnavailable):
    """No chromedriver (or Chromium) here and none could be installed; the message says why."""


class WebDriverError(AssertionError):
    """chromedriver refused a command (``no such element``, ``timeout``, ...); the message is its first line."""

    def __init__(self, command: str, error: str, message: str) -> None:
        self.error = error
        first_line = message.strip().splitlines()[0] if message.strip() else error
        super().__init__(f"{command}: {first_line}")


def find_chromedriver() -> str | None:
    return shutil.which("chromedriver")


def ensure_chromedriver() -> str:
    """The chromedriver binary (and a Chromium for it), installed with the project's script if missing.

    ``AIRFLOW_ALERTER_NO_INSTALL=1`` stops the install; ``BrowserUnavailable`` then says so.
    """
    try:
        ensure_chromium()
        found = find_chromedriver()
        if found:
            return found
        install("chromedriver")
    except ChromiumUnavailable as err:
        raise BrowserUnavailable(str(err)) from None
    found = find_chromedriver()
    if not found:
        raise BrowserUnavailable("install-chromium.sh could not install chromedriver: it ran, but none is on PATH")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Browser:
    """A headless Chromium session over chromedriver; use it as a context manager.

    ``timeout`` bounds every wait: chromedriver coming up, a page loading, a click's navigation.
    """

    def __init__(self, *, timeout: float = 30.0, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.timeout = timeout
        self.size = (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self.profile: Path | None = None
        self._client: httpx.Client | None = None
        self._session: str | None = None

    # --- the session's life -----------------------------------------------------------------------

    def __enter__(self) -> Browser:
        driver, chromium = ensure_chromedriver(), ensure_chromium()
        self.profile = Path(tempfile.mkdtemp(prefix="airflow-alerter-webdriver-"))
        try:
            self._start_driver(driver)
            self._start_session(chromium)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _start_driver(self, driver: str) -> None:
        """Start chromedriver on a free port and wait until it is ready; another port if that one was taken."""
        for _ in range(3):
            if self._launch_driver(driver, free_port()):
                return
            assert self.process is not None
            if "Address already in use" not in self._log():
                break
        assert self.process is not None
        raise WebDriverError("start chromedriver", "exited", f"exit {self.process.returncode}: {self._log()}")

    def _launch_driver(self, driver: str, port: int) -> bool:
        """True once chromedriver on ``port`` is ready; False when it exited first (its log says why)."""
        assert self.profile is not None
        if self._client is not None:
            self._client.close()
        with (self.profile / "chromedriver.log").open("wb") as log:
            # its own process group, so that closing can end the browsers it started along with it
            self.process = subprocess.Popen(
                [driver, f"--port={port}"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        # trust_env=False: chromedriver is on the loopback; no proxy from the environment may stand between
        self._client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=self.timeout + 10, trust_env=False)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if self._client.get("/status", timeout=1).json()["value"].get("ready"):
                    return True
            except (httpx.TransportError, ValueError):
                pass  # not listening yet
            time.sleep(0.05)
        raise WebDriverError("start chromedriver", "timeout", f"not ready after {self.timeout:.0f}s: {self._log()}")

    def _start_session(self, chromium: str) -> None:
        assert self.profile is not None
        width, height = self.size
        args = [*ARGS, f"--window-size={width},{height}", f"--user-data-dir={self.profile / 'profile'}"]
        timeouts = {"implicit": 0, "pageLoad": int(self.timeout * 1000), "script": int(self.timeout * 1000)}
        capabilities = {"browserName": "chrome", "pageLoadStrategy": "normal", "timeouts": timeouts,
                        "goog:chromeOptions": {"binary": chromium, "args": args}}
        value = self._command("new session", "POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self._session = value["sessionId"]

    def close(self) -> None:
        """End the session, chromedriver and the browsers it started; safe to call twice or after a failed start."""
        if self._client is not None and self._session is not None:
            with contextlib.suppress(httpx.HTTPError):  # the process group is ended below all the same
                self._client.delete(f"/session/{self._session}", timeout=10)
        self._session = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=5)
            # a browser left behind by a session that could not quit is in chromedriver's process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process = None  # a second close must not signal a group whose number may be reused by then
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    # --- what a person does -----------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Go to ``url`` and return once its page has loaded."""
        self._command(f"open({url!r})", "POST", self._at("/url"), {"url": url})

    def open_html_file(self, path: Path) -> None:
        """Open an HTML file from disk (an email's HTML part saved by the test) as a ``file://`` URL."""
        self.open(path.resolve().as_uri())

    def click(self, css: str, *, navigates: bool = True) -> None:
        """Click the first element ``css`` selects, as a person would (a WebDriver element click: a submit
        button submits its form); then, when ``navigates``, wait until the next page has loaded.

        A new page is a new document (a marker left on the old one is gone), so a form that posts back
        to its own URL counts too. No new page within ``timeout`` raises ``WebDriverError``.
        """
        command = f"click({css!r})"
        element = self._command(command, "POST", self._at("/element"), {"using": "css selector", "value": css})
        marker = uuid.uuid4().hex
        if navigates:
            self._script(f"window.__webdriverMarker = {marker!r};")
        self._command(command, "POST", self._at(f"/element/{element[ELEMENT]}/click"), {})
        if navigates:
            self._wait_for_new_page(command, marker)

    def _wait_for_new_page(self, command: str, marker: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if self._script(
                    f"return document.readyState === 'complete' && window.__webdriverMarker !== {marker!r};"
                ):
                    return
            except WebDriverError:
                pass  # the old document went away while the script ran; ask the new one
            time.sleep(0.05)
        raise WebDriverError(command, "timeout", f"no new page loaded within {self.timeout:.0f}s of the click")

    def text(self) -> str:
        """The page's visible text (``document.body.innerText``)."""
        text: str = self._script("return document.body ? document.body.innerText : '';")
        return text

    def html(self) -> str:
        """The page's source as the browser has it now."""
        source: str = self._command("html()", "GET", self._at("/source"))
        return source

    def url(self) -> str:
        current: str = self._command("url()", "GET", self._at("/url"))
        return current

    def links(self) -> list[tuple[str, str]]:
        """``(visible text, href)`` of every ``<a href>`` on the page, the href resolved as a click would follow it."""
        found = self._script(
            "return Array.from(document.querySelectorAll('a[href]'), a => [a.innerText.trim(), a.href]);"
        )
        return [(text, href) for text, href in found]

    def screenshot(self, path: Path) -> Path:
        """Save what the window shows as a PNG at ``path``: ``width`` wide, the window's height less its frame."""
        png = base64.b64decode(self._command(f"screenshot({str(path)!r})", "GET", self._at("/screenshot")))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return path

    # --- the protocol -----------------------------------------------------------------------------

    def _at(self, path: str) -> str:
        assert self._session is not None, "the browser is not open: use it as `with Browser() as browser:`"
        return f"/session/{self._session}{path}"

    def _script(self, script: str) -> Any:
        return self._command("execute", "POST", self._at("/execute/sync"), {"script": script, "args": []})

    def _command(self, command: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send one WebDriver command; its ``value``, or ``WebDriverError`` with chromedriver's message."""
        assert self._client is not None, "the browser is not open: use it as `with Browser() as browser:`"
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as err:
            raise WebDriverError(command, "no answer", f"chromedriver did not answer: {err!r}") from None
        try:
            value = response.json()["value"]
        except (ValueError, KeyError):
            raise WebDriverError(command, "bad answer", f"HTTP {response.status_code}: {response.text[:200]}") from None
        if response.is_error:
            error = value if isinstance(value, dict) else {}
            raise WebDriverError(command, str(error.get("error", response.status_code)), str(error.get("message", "")))
        return value

    def _log(self) -> str:
        """chromedriver's last two lines of output, on one line: the reason it gives when it stops."""
        assert self.profile is not None
        log = self.profile / "chromedriver.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        return " | ".join(line.strip() for line in lines[-2:])[-500:] or "no output"
