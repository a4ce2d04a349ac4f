"""AlerterAskTrigger: waits for the answer to a posted question in the triggerer, holding no worker slot.

It polls with the flavor's async check (one API call each), sleeps the poll interval between
checks (longer when the service asked for it with Retry-After, up to 10 minutes, never past the
deadline), and fires once: with the answer, or ``timed_out`` at the deadline.

With ``record_ti_id`` it also keeps the task instance's Human-in-the-loop record in step
(airflow_alerter.hooks.hitl): each check reads the chat and the record, an answer in either closes
the gate, and the outcome is written into the record. While a responder serves the connection
(airflow_alerter.hooks.heartbeat) it reads only the record: the responder writes answers there.
Its serialized kwargs hold the question's
handle, never a secret: the alerter is rebuilt from the connection inside the triggerer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_alerter.alerters.answers import answered_on
from airflow_alerter.alerters.retry import wait_before_next_check
from airflow_alerter.hooks.hitl import RecordLink
from airflow_alerter.models import AskResult, AskStatus, QuestionHandle

if TYPE_CHECKING:
    from airflow_alerter.alerters.base import BaseAlerter


#: how often the record is read while a responder serves the connection (no chat call is made then)
PUSHED_CHECK_INTERVAL = 5.0
_WAITING = AskResult(status=AskStatus.PENDING, reason="a responder serves this connection")


class AlerterAskTrigger(BaseTrigger):
    """Fire with ``{"result": AskResult}`` once the question in ``handle`` is answered or times out."""

    def __init__(
        self,
        *,
        alerter_conn_id: str,
        handle: Mapping[str, Any],
        settings: Mapping[str, Any] | None = None,
        poll_interval: float = 60.0,
        timeout_at: float | None = None,
        record_ti_id: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves BaseTrigger untyped
        self.alerter_conn_id = alerter_conn_id
        self.handle = dict(handle)
        self.settings = dict(settings or {})
        self.poll_interval = poll_interval
        self.timeout_at = timeout_at
        self.record_ti_id = record_ti_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "alerter_conn_id": self.alerter_conn_id, "handle": self.handle, "settings": self.settings,
            "poll_interval": self.poll_interval, "timeout_at": self.timeout_at,
            "record_ti_id": self.record_ti_id,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from airflow_alerter.hooks.alerter import AlerterHook

        # asgiref, not asyncio.to_thread: the connection lookup talks to the triggerer's supervisor, and
        # on Airflow 3.1/3.2 that channel is only safe from the triggerer's own loop ("Response read out of
        # order!" killed the trigger runner when a plain thread called it, measured on 3.1.8)
        alerter = await sync_to_async(AlerterHook(self.alerter_conn_id, self.settings).get_alerter)()
        handle = QuestionHandle.model_validate(self.handle)
        record = RecordLink(self.record_ti_id) if self.record_ti_id else None
        result, recorded = await self._first_answer(alerter, handle, record)
        if record is not None and not recorded:
            result = await record.settle(result)
        yield TriggerEvent({"result": result.model_dump(mode="json")})  # type: ignore[no-untyped-call]

    async def _first_answer(self, alerter: BaseAlerter, handle: QuestionHandle,
                            record: RecordLink | None) -> tuple[AskResult, bool]:
        """Check the chat, then the record, each interval, until one holds an answer or the deadline passes.

        While a responder serves the connection (its heartbeat is fresh) the chat is not checked at all:
        the responder writes every answer into the record, which is read every few seconds instead.
        Returns the answer and whether it came from the record (it is there already).
        """
        while True:
            pushed = record is not None and await self._responder_serves()
            result = _WAITING if pushed else answered_on(await alerter.acheck_answer(handle), handle)
            if result.is_final:
                return result, False
            if record is not None and (in_record := await record.read()) is not None:
                return in_record, True
            remaining = None if self.timeout_at is None else self.timeout_at - time.time()
            if remaining is not None and remaining <= 0:  # the check just made was the last look
                return AskResult(status=AskStatus.TIMED_OUT, reason="no valid answer before the timeout"), False
            interval = min(self.poll_interval, PUSHED_CHECK_INTERVAL) if pushed else self.poll_interval
            await asyncio.sleep(wait_before_next_check(interval, result.retry_after, remaining))

    async def _responder_serves(self) -> bool:
        from asgiref.sync import sync_to_async

        from airflow_alerter.hooks.heartbeat import responder_is_live

        return await sync_to_async(responder_is_live)(self.alerter_conn_id)
