"""JSON over HTTP for the flavors without a client library (Discord, chat webhooks), on the standard library.

One place decides what is transient and how errors read, so the Discord and webhook flavors cannot
drift apart:

- 429 is transient; the wait is the server's ``Retry-After`` header (seconds or an HTTP date) or
  the ``retry_after`` in the JSON body (Discord sends both; the body is more precise);
- 500, 502, 503, 504 and "no answer at all" (refused, reset, timed out) are transient;
- every other 4xx is permanent: retrying a bad token or an unknown channel cannot help;
- an answer that should be JSON and is not is permanent too: the request may well have landed,
  and retrying a POST would post twice.

Errors name *what* was called ("Discord channels/…/messages", "the webhook"), never the URL: a
webhook URL is a secret, so a client built with ``secret_url`` also scrubs that URL, its host and
its path segments from anything the server echoes back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_alerter.alerters.retry import TRANSIENT_STATUSES, RetryPolicy

#: path segments at least this long are treated as tokens when scrubbing a secret URL from text
_TOKEN_SEGMENT = 8
_URL = re.compile(r"https?://\S+")


class HttpError(Exception):
    """A failed call; ``status`` is None when no HTTP answer came back at all."""

    def __init__(
        self, description: str, status: int | None = None, retry_after: float | None = None, *, transient: bool
    ) -> None:
        super().__init__(description)
        self.status = status
        self.retry_after = retry_after
        self.transient = transient


@dataclass(frozen=True)
class JsonClient:
    """Calls one service: ``what`` names it in errors, ``headers`` go with every request.

    ``secret_url`` is the URL to keep out of every message (a webhook URL); ``expect_json=False``
    accepts any body with a 2xx status, for webhooks that answer "ok", "1" or nothing at all.
    """

    what: str
    timeout: float
    policy: RetryPolicy
    headers: Mapping[str, str]
    secret_url: str | None = None
    expect_json: bool = True

    def call(self, method: str, url: str, payload: Any = None, *, name: str = "", retry: bool = True) -> Any:
        """The decoded JSON answer (None for an empty one); HttpError after the retries are spent."""
        policy = self.policy if retry else RetryPolicy(attempts=1)
        what = f"{self.what} {name}".strip()
        return policy.call(lambda: self._once(method, url, payload, what), classify, what)

    async def acall(self, method: str, url: str, payload: Any = None, *, name: str = "") -> Any:
        """One async attempt on aiohttp (for triggers): the same answers and errors as :meth:`call`, no retries.

        Its only caller is an answer check, which never retries: a failed check is "pending" and
        the trigger checks again after the poll interval (or the server's Retry-After).
        """
        import asyncio

        import aiohttp

        what = f"{self.what} {name}".strip()
        headers = {"Content-Type": "application/json", "User-Agent": "airflow-alerter", **self.headers}
        data = None if payload is None else json.dumps(payload).encode()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session,
                session.request(method, url, data=data, headers=headers) as response,
            ):
                raw = await response.read()
                status, answer_headers = response.status, response.headers
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
            detail = self.scrub(str(err)) or "timed out"
            raise HttpError(f"{what}: unreachable ({type(err).__name__}: {detail})", transient=True) from None
        if status >= 400:
            raise self._status_error(what, status, answer_headers, raw)
        return self._decode(raw, what)

    def _once(self, method: str, url: str, payload: Any, what: str) -> Any:
        import urllib.error
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "airflow-alerter", **self.headers}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise self._status_error(what, err.code, err.headers, err.read()) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise HttpError(
                f"{what}: unreachable ({type(reason).__name__}: {self.scrub(str(reason))})", transient=True
            ) from None
        return self._decode(raw, what)

    def _decode(self, raw: bytes, what: str) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            if not self.expect_json:
                return None
            raise HttpError(f"{what}: the answer was not valid JSON", transient=False) from None

    def _status_error(self, what: str, status: int, headers: Any, raw: bytes) -> HttpError:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        detail = (body.get("message") or body.get("error")) if isinstance(body, dict) else _short_text(raw)
        shown = f" ({self.scrub(str(detail))[:300]})" if detail else ""
        transient = status == 429 or status in TRANSIENT_STATUSES
        return HttpError(f"{what}: HTTP {status}{shown}", status, retry_after(headers, body), transient=transient)

    def scrub(self, text: str) -> str:
        """``text`` without URLs, and without any part of ``secret_url`` (host, path, token-like segments)."""
        if self.secret_url:
            from urllib.parse import urlsplit

            parts = urlsplit(self.secret_url)
            secrets = [self.secret_url, parts.netloc, parts.path, parts.query]
            secrets += [
                part for part in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(part) >= _TOKEN_SEGMENT
            ]
            for secret in sorted(filter(None, secrets), key=len, reverse=True):
                text = text.replace(secret, "<redacted>")
        return _URL.sub("<url>", text)


def _short_text(raw: bytes) -> str | None:
    """A plain-text error word or line ("no_service", "invalid_token"), as Slack's webhooks answer; not an HTML page."""
    text = raw.decode("utf-8", errors="replace").strip()
    return text if text and len(text) <= 200 and "\n" not in text and "<" not in text else None


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query, keeping the query it already has (a webhook's ``thread_id``)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


def retry_after(headers: Any, body: Any) -> float | None:
    """Seconds the server asked us to wait: the body's ``retry_after``, else the ``Retry-After`` header."""
    candidates = [body.get("retry_after") if isinstance(body, dict) else None]
    candidates.append(headers.get("Retry-After") if headers is not None else None)
    for value in candidates:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
    return None


def _seconds(value: Any) -> float | None:
    """A Retry-After value: a number of seconds, or an HTTP date (RFC 9110) turned into seconds from now."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        pass
    import time
    from email.utils import parsedate_to_datetime

    try:
        return max(parsedate_to_datetime(str(value)).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, IndexError):
        return None


def classify(err: BaseException) -> float | None:
    """The RetryPolicy classifier: None for permanent failures, else the least wait the server asked for."""
    if not isinstance(err, HttpError) or not err.transient:
        return None
    return err.retry_after or 0.0
