"""A custom alerter flavor in three steps: it appends every message to a JSON-lines file.

The file stands in for any channel you own (an internal chat API, a ticket queue, a pager): put your
API call where ``_append`` writes a line. It can ask too: a question is a line in the file, and a
person answers by appending a line that names it, e.g.
``{"answer_to": "<question id>", "user": "alice", "text": "approve"}``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from airflow_alerter import AlerterMessage, AskOptions, AskResult, BaseAlerter, BaseAlerterParameters, QuestionHandle
from airflow_alerter.alerters.answers import Candidate, decide

log = logging.getLogger(__name__)


class JsonLinesFileConfig(BaseModel):
    """What the connection's Extra holds, e.g. {"flavor": "jsonl_file", "path": "/var/log/airflow/alerts.jsonl"}."""

    path: str
    approvers: list[str] | None = None


class JsonLinesFileAlerter(BaseAlerter):  # step 1: subclass BaseAlerter
    """Append alerts to a JSON-lines file; answer questions by appending a line."""

    FLAVOR: ClassVar[str] = "jsonl_file"  # step 2: the name a connection's "flavor" extra uses
    Config = JsonLinesFileConfig

    # step 3: post() sends one message and says whether it was delivered
    def post(self, message: str | AlerterMessage, params: BaseAlerterParameters | None = None) -> bool:
        try:
            self._append({"type": "message", **self._fields(message)})
        except OSError as err:
            log.warning("jsonl_file alert was not written to %s: %s", self.config.path, err)
            return False
        return True

    # optional: asking. send_question() posts once, check_answer() looks once; with both, ask(), the
    # AlerterAskSensor and `airflow-alerter ask` all work.
    def send_question(
        self, question: str | AlerterMessage, params: BaseAlerterParameters | None = None
    ) -> QuestionHandle:
        handle = QuestionHandle(flavor=self.FLAVOR, channel=self.config.path, message_id=uuid.uuid4().hex)
        self._append({"type": "question", "id": handle.message_id, **self._fields(question)})
        return handle

    def check_answer(self, handle: QuestionHandle, params: BaseAlerterParameters | None = None) -> AskResult:
        replies = [
            Candidate(user=line.get("user"), at=float(line.get("at", handle.posted_at)), text=line.get("text"))
            for line in self._lines()
            if line.get("answer_to") == handle.message_id
        ]
        return decide(replies, AskOptions(approvers=self.config.approvers), asked_at=handle.posted_at)

    # optional: what `airflow connections test` and `airflow-alerter test-connection` check
    def test_connection(self) -> tuple[bool, str]:
        folder = Path(self.config.path).parent
        if os.access(folder, os.W_OK):
            return True, f"{folder} is writable"
        return False, f"cannot write to {folder}"

    # --- the "channel" ---------------------------------------------------------------------------

    @staticmethod
    def _fields(message: str | AlerterMessage) -> dict[str, Any]:
        return {**AlerterMessage.coerce(message).model_dump(mode="json"), "at": time.time()}

    def _append(self, line: dict[str, Any]) -> None:
        with open(self.config.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line, default=str) + "\n")

    def _lines(self) -> list[dict[str, Any]]:
        try:
            with open(self.config.path, encoding="utf-8") as file:
                return [json.loads(text) for text in file if text.strip()]
        except FileNotFoundError:
            return []
