"""JSON over HTTP for the flavors without a client library (Discord, chat webhooks), sync and async on httpx.

One place decides what is transient and how errors read, so the Discord and webhook flavors cannot
drift apart:

- 429 is transient; the wait is the server's ``Retry-After`` header (seconds or an HTTP date) or
  the ``retry_after`` in the JSON body (Discord sends both; the body is more precise);
- 500, 502, 503, 504 and "no answer at all" (refused, reset, hung up, a broken status line, timed
  out before an answer) are transient;
- every other 4xx is permanent: retrying a bad token or an unknown channel cannot help;
- a 3xx is permanent and never followed: a redirect would carry the ``Authorization`` header (or a
  webhook's secret headers) to whatever host it names, and turn a POST into a GET that "succeeds"
  while the alert is lost. The error names the status and the target *host* only;
- an answer that breaks off (a truncated body) or should be JSON and is not is permanent too: the
  request may well have landed, and retrying a POST would post twice.

Every failure, whatever httpx or the socket raised, is an :class:`HttpError`; the flavors turn it
into an ``AlerterDeliveryError`` (posting) or a pending answer check. Sync (:meth:`JsonClient.call`)
and async (:meth:`JsonClient.acall`) build the same request in :meth:`JsonClient.request` and read
the answer in :meth:`JsonClient.answer`; only the send differs.

Errors name *what* was called ("Discord channels/…/messages", "the webhook"), never the URL: a
webhook URL is a secret, so a client built with ``secret_url`` also scrubs that URL, its host and
its path segments from anything the server echoes back.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from airflow_alerter.alerters.retry import TRANSIENT_STATUSES, RetryPolicy
from airflow_alerter.exceptions import AlerterError

if TYPE_CHECKING:
    import ssl

    import httpx

#: path segments at least this long are treated as tokens when scrubbing a secret URL from text
_TOKEN_SEGMENT = 8
_URL = re.compile(r"https?://\S+")
#: a connection that takes longer than this to open is not coming (the read timeout may be longer)
CONNECT_TIMEOUT = 10.0
USER_AGENT = "airflow-alerter"


class HttpError(AlerterError):
    """A failed call; ``status`` is None when no HTTP answer came back at all."""

    def __init__(
        self, description: str, status: int | None = None, retry_after: float | None = None, *, transient: bool
    ) -> None:
        super().__init__(description)
        self.status = status
        self.retry_after = retry_after
        self.transient = transient


def redirect_refused(what: str, status: int, url: str, location: str | None) -> str:
    """Why a 3xx ends the call: the status and the host it pointed at, never its path or query (they may be secret)."""
    from urllib.parse import urljoin, urlsplit

    host = urlsplit(urljoin(url, location)).hostname if location else None
    return (f"{what}: HTTP {status} redirect to {host or 'an unnamed location'} refused (API and webhook calls "
            f"never follow redirects, which would carry the credentials along; use the final address)")


#: set while this module sends, so the filter below knows httpx's "HTTP Request: POST <url>" line is ours
_SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("airflow_alerter_http_sending", default=False)


class _QuietOwnRequests(logging.Filter):
    """Drops httpx's INFO line for *our* requests only: it holds the full URL, and a webhook URL is a secret.

    Other httpx users in the process (Airflow's own API client among them) keep their log lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not _SENDING.get()


@cache
def _quiet_httpx_log() -> None:
    logging.getLogger("httpx").addFilter(_QuietOwnRequests())


@cache
def _ssl_context() -> ssl.SSLContext:
    """The system's trust store (as urllib used), built once per process: building one costs milliseconds."""
    import ssl

    return ssl.create_default_context()


def _request_errors() -> tuple[type[BaseException], ...]:
    """Everything a request can raise below HTTP: httpx's errors, the socket's, and a header that cannot be encoded."""
    import httpx

    return httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError


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
    proxy: str | None = None

    def call(self, method: str, url: str, payload: Any = None, *, name: str = "", retry: bool = True) -> Any:
        """The decoded JSON answer (None for an empty one); HttpError after the retries are spent."""
        policy = self.policy if retry else RetryPolicy(attempts=1)
        what = f"{self.what} {name}".strip()
        sending = _SENDING.set(True)
        try:
            with self._client() as client:
                return policy.call(lambda: self._once(client, method, url, payload, what), classify, what)
        finally:
            _SENDING.reset(sending)

    async def acall(self, method: str, url: str, payload: Any = None, *, name: str = "") -> Any:
        """One async attempt (for triggers): the same request, answers and errors as :meth:`call`, no retries.

        Its only caller is an answer check, which never retries: a failed check is "pending" and
        the trigger checks again after the poll interval (or the server's Retry-After).
        """
        import httpx

        what = f"{self.what} {name}".strip()
        sending = _SENDING.set(True)
        try:
            async with httpx.AsyncClient(**self._client_options()) as client:
                request = client.build_request(**self.request(method, url, payload))
                try:
                    response = await client.send(request, stream=True)
                except _request_errors() as err:
                    raise self._unreachable(what, err) from None
                try:
                    raw = await response.aread()
                except _request_errors() as err:
                    raise self._broke_off(what, err) from None
                finally:
                    await response.aclose()
        finally:
            _SENDING.reset(sending)
        return self.answer(what, url, response.status_code, response.headers, raw)

    def request(self, method: str, url: str, payload: Any = None) -> dict[str, Any]:
        """The one description of a request (method, URL, headers, JSON body), for the sync and async sends alike."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **self.headers}
        content = None if payload is None else json.dumps(payload).encode()
        return {"method": method, "url": url, "headers": headers, "content": content}

    def answer(self, what: str, url: str, status: int, headers: Any, raw: bytes) -> Any:
        """What an answer means: the decoded JSON, or the HttpError of a redirect or a failure status."""
        if 300 <= status < 400:
            raise HttpError(redirect_refused(what, status, url, headers.get("location")), status, transient=False)
        if status >= 400:
            raise self._status_error(what, status, headers, raw)
        return self._decode(raw, what)

    def _client_options(self) -> dict[str, Any]:
        import httpx

        _quiet_httpx_log()
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, CONNECT_TIMEOUT))
        return {"timeout": timeout, "follow_redirects": False, "verify": _ssl_context(), "proxy": self.proxy}

    def _client(self) -> httpx.Client:
        import httpx

        return httpx.Client(**self._client_options())

    def _once(self, client: httpx.Client, method: str, url: str, payload: Any, what: str) -> Any:
        try:
            response = client.send(client.build_request(**self.request(method, url, payload)), stream=True)
        except _request_errors() as err:
            raise self._unreachable(what, err) from None
        try:
            raw = response.read()
        except _request_errors() as err:
            raise self._broke_off(what, err) from None
        finally:
            response.close()
        return self.answer(what, url, response.status_code, response.headers, raw)

    def _unreachable(self, what: str, err: BaseException) -> HttpError:
        """No answer came back: transient (retry), unless the request itself could not be made."""
        import httpx

        if isinstance(err, httpx.TimeoutException):
            return HttpError(f"{what}: unreachable ({type(err).__name__}: timed out)", transient=True)
        detail = self.scrub(str(err)) or type(err).__name__
        if isinstance(err, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL, ValueError)):
            return HttpError(f"{what}: the request could not be made ({type(err).__name__}: {detail})",
                             transient=False)
        return HttpError(f"{what}: unreachable ({type(err).__name__}: {detail})", transient=True)

    def _broke_off(self, what: str, err: BaseException) -> HttpError:
        """The server answered, then the answer broke off: not retried, since the request has probably landed."""
        detail = self.scrub(str(err)) or type(err).__name__
        return HttpError(f"{what}: the answer broke off ({type(err).__name__}: {detail}); not retried, as the "
                         f"request may have landed", transient=False)

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
