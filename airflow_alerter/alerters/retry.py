"""One retry policy object used by every network send, in the spirit of slack_sdk's retry handlers.

Callers describe *which* failures are transient (and how long the server asked us to wait); the
policy owns the loop, the exponential backoff and the bound on attempts, so no flavor grows its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Classifies an error: ``None`` means permanent (do not retry); a number means transient, and is
#: the least delay in seconds the server asked for (0 when it did not say, e.g. no Retry-After).
Classifier = Callable[[BaseException], "float | None"]

#: HTTP statuses every flavor retries (with 429, whose wait the server gives): a proxy or load
#: balancer answering for a service that is restarting, not a refusal of the request itself.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})

#: The longest a send waits because the server asked to (Retry-After). A longer wait ends the send
#: at once with the server's error: an alert an hour late is worth less than a clear "rate limited"
#: now, and the worker slot (or the callback's time budget) would be held for nothing meanwhile.
MAX_SERVER_WAIT = 60.0

#: The longest a waiting question sleeps between two answer checks because the service asked to
#: (Retry-After on a check). A rate-limited chat answered "wait a day" once; the gate then slept a day.
MAX_CHECK_WAIT = 600.0


def wait_before_next_check(poll_interval: float, retry_after: float | None, remaining: float | None) -> float:
    """Seconds until the next answer check: the poll interval, or longer when the service asked.

    What the service asks for is honoured up to :data:`MAX_CHECK_WAIT`; the wait never runs past
    the gate's deadline (``remaining`` seconds from now; None when the gate has none), and a
    warning says why a check comes later than the poll interval.
    """
    wait = poll_interval
    if retry_after is not None and retry_after > poll_interval:
        wait = min(retry_after, max(MAX_CHECK_WAIT, poll_interval))
        capped = " (the longest wait between checks)" if wait < retry_after else ""
        log.warning("The service asked to wait %.0fs before the next answer check (rate limited); "
                    "checking again in %.0fs%s", retry_after, wait, capped)
    return wait if remaining is None else max(min(wait, remaining), 0.0)


#: ``retry_limit`` means one thing in every flavor, what Airflow's smtp provider means by it ("Number
#: of Retries"): the retries after the first try, so 0 tries once and 2 tries three times.
RETRY_LIMIT_DEFAULT = 3
RETRY_LIMIT_DESCRIPTION = "retries after the first try (0: try once) for 429, 5xx and dropped connections"


def retry_limit_field() -> Any:
    """The ``retry_limit`` field of every flavor's config: one default, one meaning, 0 allowed."""
    from pydantic import Field

    return Field(default=RETRY_LIMIT_DEFAULT, ge=0, description=RETRY_LIMIT_DESCRIPTION)


@dataclass(frozen=True)
class RetryPolicy:
    """Up to ``attempts`` tries, waiting ``backoff * 2**n`` seconds (capped) between them."""

    attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    max_server_wait: float = MAX_SERVER_WAIT

    @classmethod
    def retrying(cls, retry_limit: int, backoff: float = 1.0) -> RetryPolicy:
        """The policy a config's ``retry_limit`` (retries after the first try) asks for."""
        return cls(attempts=retry_limit + 1, backoff=backoff)

    def delay_before(self, retry_number: int, server_hint: float) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): our backoff, or longer if the server asks."""
        return max(min(self.backoff * 2.0 ** (retry_number - 1), self.max_backoff), server_hint)

    def call(self, action: Callable[[], T], classify: Classifier, what: str) -> T:
        """Run ``action``, retrying transient failures; the last error propagates unchanged."""
        for attempt in range(1, max(self.attempts, 1) + 1):
            try:
                return action()
            except Exception as err:
                hint = classify(err)
                if hint is None or attempt >= self.attempts:
                    raise
                if hint > self.max_server_wait:
                    log.warning("%s failed (attempt %d/%d): the server asked to wait %.0fs, longer than the %.0fs "
                                "we wait; giving up", what, attempt, self.attempts, hint, self.max_server_wait)
                    raise
                delay = self.delay_before(attempt, hint)
                log.info("%s failed (attempt %d/%d: %s); retrying in %.1fs", what, attempt, self.attempts,
                         type(err).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")
