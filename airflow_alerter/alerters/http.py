"""JSON over HTTP for the flavors without a client library (Discord, chat webhooks), on the standard library.

One place decides what is transient (429 with its Retry-After, 5xx, dropped connections) and how
errors read. Error messages name *what* was called ("Discord channels/…/messages", "the webhook"),
never the URL: a webhook URL is a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_alerter.alerters.retry import RetryPolicy

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class HttpError(Exception):
    """A failed call; ``status`` is None when no HTTP answer came back at all."""

    def __init__(self, description: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class JsonClient:
    """Calls one service: ``what`` names it in errors, ``headers`` go with every request."""

    what: str
    timeout: float
    policy: RetryPolicy
    headers: Mapping[str, str]

    def call(self, method: str, url: str, payload: Any = None, *, name: str = "", retry: bool = True) -> Any:
        """The decoded JSON answer (None for an empty one); HttpError after the retries are spent."""
        policy = self.policy if retry else RetryPolicy(attempts=1)
        return policy.call(lambda: self._once(method, url, payload, name), _classify, f"{self.what} {name}".strip())

    def _once(self, method: str, url: str, payload: Any, name: str) -> Any:
        import urllib.error
        import urllib.request

        what = f"{self.what} {name}".strip()
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "airflow-alerter", **self.headers}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise _http_error(what, err.code, err.headers, err.read()) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise HttpError(f"{what}: unreachable ({type(reason).__name__}: {_strip_urls(str(reason))})") from None
        return _decode(raw, what)


def _decode(raw: bytes, what: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        if raw.strip() in (b"ok", b"1"):  # some webhooks (Slack, Mattermost, Teams) answer plain text
            return None
        raise HttpError(f"{what}: the answer was not valid JSON") from None


def _http_error(what: str, status: int, headers: Any, raw: bytes) -> HttpError:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    detail = body.get("message") or body.get("error") if isinstance(body, dict) else None
    retry_after = _retry_after(headers, body)
    return HttpError(f"{what}: HTTP {status}{f' ({_strip_urls(str(detail))})' if detail else ''}", status, retry_after)


def _retry_after(headers: Any, body: Any) -> float | None:
    value = (headers.get("Retry-After") if headers is not None else None) or (
        body.get("retry_after") if isinstance(body, dict) else None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _strip_urls(text: str) -> str:
    import re

    return re.sub(r"https?://\S+", "<url>", text)


def _classify(err: BaseException) -> float | None:
    if not isinstance(err, HttpError):
        return None
    if err.status == 429:
        return err.retry_after or 0.0
    if err.status is None or err.status in TRANSIENT_STATUSES:
        return 0.0
    return None
