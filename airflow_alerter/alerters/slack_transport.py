"""slack_sdk's Web API clients, made to follow no redirect and to fail only with slack_sdk's own error types.

Imported only when the slack flavor sends (it imports slack_sdk, which a DAG file should not pay for).

- **Redirects.** slack_sdk opens requests with urllib's default opener (sync) and an aiohttp session
  (async), both of which follow a 301/302 to any host with the ``Authorization: Bearer xoxb-…``
  header, and turn a POST into a GET that looks like success. The async client takes the aiohttp
  ``session`` it should use, so ours carries a trace hook that refuses every redirect before it is
  followed (aiohttp's public ``TraceConfig.on_request_redirect``). The sync client takes no opener:
  :class:`AlerterWebClient` overrides the one method that opens the request
  (``_perform_urllib_http_request_internal``, checked against slack_sdk 3.26 to 3.48) to use an
  opener whose redirect handler refuses. Either way the 3xx ends the call with
  :class:`SlackRedirectRefused`, naming the status and the target host only.
- **Transport errors.** ``http.client.IncompleteRead`` / ``BadStatusLine`` (urllib) and aiohttp's
  ``ServerDisconnectedError`` / ``ClientPayloadError`` are neither ``OSError`` nor slack_sdk errors,
  so they escaped every ``except`` of the flavor. ``api_call``, the method every Web API helper
  goes through, turns them into :class:`SlackTransportError`, a ``SlackClientError``. A broken
  status line or a hang-up before any answer is retried like a reset; a body cut short is not,
  since the message has probably been posted.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import urllib.request
from typing import Any
from urllib.error import URLError

import aiohttp
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from airflow_alerter.alerters.http import redirect_refused

#: what slack_sdk's ConnectionErrorRetryHandler retries, plus a broken status line (no answer came);
#: RemoteDisconnected is a BadStatusLine. IncompleteRead is left out: the server did answer.
RETRIED_CONNECTION_ERRORS: list[type[Exception]] = [URLError, ConnectionResetError, http.client.BadStatusLine]


class SlackTransportError(SlackClientError):
    """The request to Slack failed below HTTP (or was redirected); the message says how, never with the token."""


class SlackRedirectRefused(SlackTransportError):
    """Slack (or something in its place) answered 3xx: not followed, since the token would go along."""


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        fp.close()
        raise SlackRedirectRefused(redirect_refused("Slack API", code, req.full_url, newurl))


def _transport_error(err: BaseException) -> SlackTransportError:
    return SlackTransportError(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)


class AlerterWebClient(WebClient):
    """slack_sdk's ``WebClient`` that follows no redirect and raises only slack_sdk errors or ``OSError``."""

    def api_call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().api_call(*args, **kwargs)
        except http.client.HTTPException as err:  # IncompleteRead, BadStatusLine after the retries
            raise _transport_error(err) from None

    @functools.cached_property
    def _no_redirect_opener(self) -> urllib.request.OpenerDirector:
        """Built once per client, like urllib's own default opener (which every thread shares)."""
        handlers: list[Any] = [_RefuseRedirects(), urllib.request.HTTPSHandler(context=self.ssl)]
        if self.proxy:
            handlers.append(urllib.request.ProxyHandler({"http": self.proxy, "https": self.proxy}))
        return urllib.request.build_opener(*handlers)

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        """slack_sdk's own request, opened without following redirects (the same answer dict it returns)."""
        if not url.lower().startswith("http"):
            raise SlackRequestError(f"Invalid URL detected: {url}")
        resp = self._no_redirect_opener.open(req, timeout=self.timeout)
        body: bytes | str = resp.read()
        if resp.headers.get_content_type() != "application/gzip":
            assert isinstance(body, bytes)
            body = body.decode(resp.headers.get_content_charset() or "utf-8")
        return {"status": resp.code, "headers": resp.headers, "body": body}


async def _refuse_redirect(session: Any, context: Any, params: aiohttp.TraceRequestRedirectParams) -> None:
    raise SlackRedirectRefused(
        redirect_refused("Slack API", params.response.status, str(params.url), params.response.headers.get("Location")))


class AlerterAsyncWebClient(AsyncWebClient):
    """slack_sdk's ``AsyncWebClient`` on a session of its own per call that refuses redirects.

    Each call opens (and closes) its session, as slack_sdk does when given none, so one client is
    used by one task at a time (the flavor builds one per answer check).
    """

    async def api_call(self, *args: Any, **kwargs: Any) -> Any:
        refuse = aiohttp.TraceConfig()
        refuse.on_request_redirect.append(_refuse_redirect)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                         trace_configs=[refuse]) as session:
            self.session = session
            try:
                return await super().api_call(*args, **kwargs)
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:  # ServerDisconnected, ClientPayloadError…
                raise _transport_error(err) from None
            finally:
                self.session = None
