"""Headless Chromium from the standard library: render an HTML file, measure its layout, screenshot it.

Chromium is run from its command line (``--dump-dom``, ``--screenshot``), no driver needed. The
layout is measured by a copy of the page with a small script added that writes what it measured
(widths, the rendered text, the elements poking out to the right) into an attribute of ``<html>``,
which ``--dump-dom`` then shows. The screenshot is taken of the page as it is, untouched.

Debian's ``chromium`` package is installed by ``scripts/install-chromium.sh`` when none is found
(``install``, which ``tests/webdriver.py`` shares for its chromedriver).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

INSTALL_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-chromium.sh"
BINARIES = ("chromium", "chromium-browser", "google-chrome")
#: As the machine's docs ask: no sandbox (root), and no background traffic to hosts a closed network refuses.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

_MEASURE = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement, limit = root.clientWidth, wide = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var box = el.getBoundingClientRect();
    if (box.right > limit + 0.5) { wide.push(el.tagName.toLowerCase() + " right=" + Math.round(box.right)); }
  });
  root.setAttribute("data-measured", JSON.stringify({
    scrollWidth: root.scrollWidth, clientWidth: limit, scrollHeight: root.scrollHeight,
    text: document.body ? document.body.innerText : "", overflowing: wide.slice(0, 20)
  }));
});
</script>"""


class ChromiumUnavailable(RuntimeError):
    """No Chromium here and none could be installed; the message says why."""


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


def ensure_chromium() -> str:
    """The Chromium binary, installed with the project's script first if missing (unless told not to)."""
    found = find_chromium()
    if found:
        return found
    install("Chromium")
    found = find_chromium()
    if not found:
        raise ChromiumUnavailable(f"{INSTALL_SCRIPT.name} could not install Chromium: it ran, but none is on PATH")
    return found


def install(what: str) -> None:
    """Run the project's install script, which installs whichever of Chromium and its chromedriver is missing.

    Raises ``ChromiumUnavailable`` saying why (``what`` names the missing thing) when
    ``AIRFLOW_ALERTER_NO_INSTALL`` is set or the script fails; then its last line of output is the reason.
    """
    if os.environ.get("AIRFLOW_ALERTER_NO_INSTALL"):
        raise ChromiumUnavailable(f"no {what} on PATH and AIRFLOW_ALERTER_NO_INSTALL is set")
    try:
        done = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ChromiumUnavailable(f"{INSTALL_SCRIPT.name} could not run: {err}") from None
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise ChromiumUnavailable(f"{INSTALL_SCRIPT.name} could not install {what}: {reason}")


@dataclass(frozen=True)
class Layout:
    """What Chromium laid out: sizes in CSS pixels, the visible text, the elements wider than the viewport."""

    scroll_width: int
    client_width: int
    scroll_height: int
    text: str
    overflowing: list[str]


@dataclass(frozen=True)
class Rendering:
    layout: Layout
    screenshot: Path


class _MeasuredAttribute(HTMLParser):
    measured: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.measured = dict(attrs).get("data-measured") or self.measured


@dataclass
class Chromium:
    binary: str
    profile_dir: Path

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, *FLAGS, f"--user-data-dir={self.profile_dir}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done

    def measure(self, html_file: Path, width: int) -> Layout:
        """Lay ``html_file`` out in a window ``width`` px wide and report what came out.

        The window is short, so that ``scrollHeight`` is the height of the content, not of the window.
        """
        probe = html_file.with_name(f".{html_file.stem}.measure.html")
        probe.write_text(_with_script(html_file.read_text(encoding="utf-8")), encoding="utf-8")
        try:
            dom = self._run(f"--window-size={width},300", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
        finally:
            probe.unlink()
        parser = _MeasuredAttribute()
        parser.feed(dom.stdout)
        if parser.measured is None:
            raise RuntimeError(f"the page's load event never came (no measurement in the DOM of {html_file})")
        data: dict[str, Any] = json.loads(parser.measured)
        return Layout(data["scrollWidth"], data["clientWidth"], data["scrollHeight"], data["text"], data["overflowing"])

    def render(self, html_file: Path, screenshot: Path, width: int = 600) -> Rendering:
        """Measure the page, then screenshot all of it (the window as tall as the page) as a PNG."""
        layout = self.measure(html_file, width)
        height = max(layout.scroll_height, 100)
        self._run(f"--window-size={width},{height}", f"--screenshot={screenshot}", html_file.as_uri())
        return Rendering(layout, screenshot)


def _with_script(html: str) -> str:
    at = html.lower().rfind("</body>")
    return html + _MEASURE if at < 0 else html[:at] + _MEASURE + html[at:]


# --- PNG ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PixelStats:
    width: int
    height: int
    background: tuple[int, ...]
    ink: float  # share of pixels that differ from the most common colour
    colours: int


def png_stats(path: Path) -> PixelStats:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) and count what is not background."""
    width, height, channels, rows = _decode_png(path.read_bytes())
    pixels: Counter[bytes] = Counter()
    for row in rows:
        pixels.update(row[i : i + channels] for i in range(0, len(row), channels))
    background, count = pixels.most_common(1)[0]
    total = width * height
    return PixelStats(width, height, tuple(background), (total - count) / total, len(pixels))


def _decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    channels = {2: 3, 6: 4}.get(colour_type)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
    raw, stride, rows, previous = zlib.decompress(idat), width * channels, [], bytes(width * channels)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        rows.append(row)
        previous = row
    return width, height, channels, rows


def _unfilter(kind: int, row: bytearray, above: bytes, bpp: int) -> bytes:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up, corner = above[i], above[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            row[i] = (row[i] + _paeth(left, up, corner)) & 0xFF
    return bytes(row)


def _paeth(left: int, up: int, corner: int) -> int:
    guess = left + up - corner
    near_left, near_up, near_corner = abs(guess - left), abs(guess - up), abs(guess - corner)
    if near_left <= near_up and near_left <= near_corner:
        return left
    return up if near_up <= near_corner else corner
