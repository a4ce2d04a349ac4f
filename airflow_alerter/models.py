"""Flavor-neutral data models: what is said (messages), what is asked and what came back.

Everything here is plain pydantic v2 and JSON-serializable, because these objects cross process
boundaries in Airflow: XCom, a trigger's ``serialize()``, an Airflow Variable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_alerter.validation import reject_control_chars, replace_lone_surrogates

#: the title of a message that says nothing at all: every chat refuses an empty message
EMPTY_MESSAGE_TITLE = "Airflow alert"


#: the metadata keys :class:`AlertContext` gives typed fields; every flavor lays them out itself
ALERT_KEYS = ("kind", "log_url", "exception", "traceback")


class AlertContext(BaseModel):
    """What an alert is about, typed: its kind, the error and where its log is.

    These facts travel in :attr:`AlerterMessage.metadata` under :data:`ALERT_KEYS`, so messages
    built by hand with those keys, and messages that crossed XCom as JSON, render as they always
    did; this model is the one place that reads them back. A falsy value counts as absent, as
    every flavor has always treated it; any other value is shown as its text.
    """

    model_config = ConfigDict(frozen=True)

    kind: str | None = None
    log_url: str | None = None
    exception: str | None = None
    traceback: str | None = None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> AlertContext:
        return cls(**{key: str(metadata[key]) for key in ALERT_KEYS if metadata.get(key)})

    def as_metadata(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """``facts`` between the kind and the error, the order alerts have always listed them in; no None."""
        ordered = {"kind": self.kind, **facts, "log_url": self.log_url, "exception": self.exception,
                   "traceback": self.traceback}
        return {key: value for key, value in ordered.items() if value is not None}


class AlerterMessage(BaseModel):
    """A message any flavor can render: a short title, a body, and structured facts.

    ``metadata`` carries facts a flavor may lay out richly (an email table, Slack fields), such as
    ``dag_id`` or ``log_url``. Keys a flavor does not know are shown as plain "key: value" pairs;
    :attr:`alert` reads the alert's own keys (:data:`ALERT_KEYS`) back as an :class:`AlertContext`.
    """

    model_config = ConfigDict(frozen=True)

    title: str = ""
    body: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("title", "body", "metadata", mode="before")
    @classmethod
    def _encodable(cls, value: Any) -> Any:
        """Lone surrogates (bytes decoded with ``surrogateescape``, broken pairs) become U+FFFD.

        They cannot be encoded as UTF-8, so they would otherwise fail a send halfway (SMTP) or
        reach a chat as invalid JSON. Metadata keys and string values are cleaned too.
        """
        return replace_lone_surrogates(value)

    @property
    def alert(self) -> AlertContext:
        """The typed alert facts of :attr:`metadata` (kind, log link, exception, traceback)."""
        return AlertContext.from_metadata(self.metadata)

    @field_validator("title")
    @classmethod
    def _title_is_one_line(cls, value: str) -> str:
        return reject_control_chars(value, "title")

    @classmethod
    def coerce(cls, message: str | AlerterMessage) -> AlerterMessage:
        """Accept a bare string where ZenML accepts one: it becomes the body.

        A message with no title, no visible body and no metadata gets the title
        :data:`EMPTY_MESSAGE_TITLE`, so no flavor sends an empty message (Slack, Discord and
        Mattermost refuse one).
        """
        message = message if isinstance(message, AlerterMessage) else cls(body=str(message))
        if not (message.title.strip() or message.body.strip() or message.metadata):
            message = message.model_copy(update={"title": EMPTY_MESSAGE_TITLE})
        return message

    def as_text(self) -> str:
        """A plain-text rendering every channel can show, used as the fallback part."""
        lines = [self.title] if self.title else []
        if self.body:
            lines += ["", self.body] if lines else [self.body]
        facts = [f"{key}: {value}" for key, value in self.metadata.items() if value not in (None, "")]
        if facts:
            lines += ["", *facts]
        return "\n".join(lines)


class BaseAlerterParameters(BaseModel):
    """Per-call parameters (ZenML's ``BaseAlerterStepParameters``); flavors extend it.

    ``question_key`` makes posting a question idempotent where the channel allows: the ask sensor
    stores it *before* posting, so an attempt killed between posting and storing the handle finds
    its question again (Slack: message metadata) or posts it once more without a duplicate (Discord:
    ``enforce_nonce``), instead of asking twice.
    """

    model_config = ConfigDict(extra="forbid")

    question_key: str | None = Field(default=None, max_length=25, pattern=r"^[A-Za-z0-9_-]+$")


class AskStatus(str, Enum):
    """Where a question stands. Only ``approved`` makes ``ask()`` return True."""

    APPROVED = "approved"
    REJECTED = "rejected"
    PENDING = "pending"
    TIMED_OUT = "timed_out"
    ERROR = "error"


class AskResult(BaseModel):
    """The outcome of one answer check; what the ask sensor pushes to XCom."""

    status: AskStatus
    #: who answered: a chat user id, an email address, or an Airflow user id
    responder: str | None = None
    #: the responder's display name where the channel gives one (Airflow users have one)
    responder_name: str | None = None
    #: where the answer was given: the flavor (``slack``, ``discord`` …) or ``airflow`` (UI or REST API)
    channel: str | None = None
    answered_at: float | None = None
    text: str | None = None
    #: the options chosen, for a Human-in-the-loop request with options of its own (not just Approve/Reject)
    choice: list[str] | None = None
    reason: str | None = None
    #: seconds the service asked us to wait before the next check (a 429's Retry-After)
    retry_after: float | None = None

    @property
    def is_final(self) -> bool:
        return self.status is not AskStatus.PENDING

    @property
    def approved(self) -> bool:
        return self.status is AskStatus.APPROVED


class QuestionHandle(BaseModel):
    """Enough to find a posted question again, from any process, after any restart.

    Deliberately small and free of secrets: it is stored in an Airflow Variable and in a
    trigger's serialized kwargs, both of which are readable by other users.
    """

    flavor: str
    channel: str
    message_id: str
    posted_at: float = Field(default_factory=time.time)
    extra: dict[str, Any] = Field(default_factory=dict)
