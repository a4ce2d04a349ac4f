"""What an alert takes from a task passes Airflow's secrets masker before any flavor renders it.

A task's exception, its traceback and a rendered template can hold a value Airflow knows to be
secret: a connection's password the task read, a ``mask_secret()`` value, a sensitive Variable.
Task logs show ``***`` for those; an alert must not show more than the log does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_alerter.models import AlerterMessage


def redacted(message: AlerterMessage) -> AlerterMessage:
    """``message`` with every secret the masker knows replaced by ``***`` (title, body, metadata)."""
    from airflow_alerter._compat import redact

    metadata = redact(dict(message.metadata))
    return AlerterMessage(title=str(redact(message.title)), body=str(redact(message.body)),
                          metadata=metadata if isinstance(metadata, dict) else dict(message.metadata))


def redacted_params(params: Mapping[str, Any] | Any) -> Any:
    """Per-call parameters given as a mapping (an email ``subject``, ``html_body`` …), redacted the same way."""
    from airflow_alerter._compat import redact

    return redact(dict(params)) if isinstance(params, Mapping) else params
