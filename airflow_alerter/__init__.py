"""ZenML-style alerters for Apache Airflow: ``post()`` and ``ask()`` on email, Slack, Discord and webhooks.

Public names are imported lazily (PEP 562): ``import airflow_alerter`` loads none of slack_sdk,
smtplib, jinja2 or Airflow, because every DAG file that imports us is parsed again and again by
the dag-processor. Each name is imported the first time it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # core models and contract (no Airflow)
    "AlerterMessage": "airflow_alerter.models",
    "AlertContext": "airflow_alerter.models",
    "AskResult": "airflow_alerter.models",
    "AskStatus": "airflow_alerter.models",
    "QuestionHandle": "airflow_alerter.models",
    "BaseAlerterParameters": "airflow_alerter.models",
    "AskOptions": "airflow_alerter.alerters.answers",
    "BaseAlerter": "airflow_alerter.alerters.base",
    "AlerterError": "airflow_alerter.exceptions",
    "AlerterConfigError": "airflow_alerter.exceptions",
    "AlerterDeliveryError": "airflow_alerter.exceptions",
    "AskNotSupported": "airflow_alerter.exceptions",
    "register": "airflow_alerter.registry",
    "get_flavor": "airflow_alerter.registry",
    # flavors
    "SMTPEmailAlerter": "airflow_alerter.alerters.smtp_email",
    "SMTPEmailAlerterParameters": "airflow_alerter.alerters.smtp_email",
    "SMTPEmailAlerterPayload": "airflow_alerter.alerters.smtp_email",
    "SMTPEmailAlerterSettings": "airflow_alerter.alerters.smtp_email",
    "SlackAlerter": "airflow_alerter.alerters.slack",
    "SlackAlerterParameters": "airflow_alerter.alerters.slack",
    "SlackAlerterPayload": "airflow_alerter.alerters.slack",
    "SlackAlerterSettings": "airflow_alerter.alerters.slack",
    "DiscordAlerter": "airflow_alerter.alerters.discord",
    "DiscordAlerterParameters": "airflow_alerter.alerters.discord",
    "DiscordAlerterSettings": "airflow_alerter.alerters.discord",
    "WebhookAlerter": "airflow_alerter.alerters.webhook",
    # Airflow glue
    "AlerterHook": "airflow_alerter.hooks.alerter",
    "AlerterNotifier": "airflow_alerter.notifications.alerter",
    "alerter_failure_callback": "airflow_alerter.notifications.alerter",
    "alerter_success_callback": "airflow_alerter.notifications.alerter",
    "alerter_retry_callback": "airflow_alerter.notifications.alerter",
    "smtp_email_failure_callback": "airflow_alerter.notifications.alerter",
    "smtp_email_success_callback": "airflow_alerter.notifications.alerter",
    "AlerterHITLNotifier": "airflow_alerter.notifications.hitl",
    "alerter_hitl_notifier": "airflow_alerter.notifications.hitl",
    "AlerterPostOperator": "airflow_alerter.operators.alerter",
    "AlerterAskSensor": "airflow_alerter.sensors.alerter",
    "AlerterAskTrigger": "airflow_alerter.triggers.alerter",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from airflow_alerter.alerters.answers import AskOptions
    from airflow_alerter.alerters.base import BaseAlerter
    from airflow_alerter.alerters.discord import DiscordAlerter, DiscordAlerterParameters, DiscordAlerterSettings
    from airflow_alerter.alerters.slack import (
        SlackAlerter,
        SlackAlerterParameters,
        SlackAlerterPayload,
        SlackAlerterSettings,
    )
    from airflow_alerter.alerters.smtp_email import (
        SMTPEmailAlerter,
        SMTPEmailAlerterParameters,
        SMTPEmailAlerterPayload,
        SMTPEmailAlerterSettings,
    )
    from airflow_alerter.alerters.webhook import WebhookAlerter
    from airflow_alerter.exceptions import AlerterConfigError, AlerterDeliveryError, AlerterError, AskNotSupported
    from airflow_alerter.hooks.alerter import AlerterHook
    from airflow_alerter.models import (
        AlertContext,
        AlerterMessage,
        AskResult,
        AskStatus,
        BaseAlerterParameters,
        QuestionHandle,
    )
    from airflow_alerter.notifications.alerter import (
        AlerterNotifier,
        alerter_failure_callback,
        alerter_retry_callback,
        alerter_success_callback,
        smtp_email_failure_callback,
        smtp_email_success_callback,
    )
    from airflow_alerter.notifications.hitl import AlerterHITLNotifier, alerter_hitl_notifier
    from airflow_alerter.operators.alerter import AlerterPostOperator
    from airflow_alerter.registry import get_flavor, register
    from airflow_alerter.sensors.alerter import AlerterAskSensor
    from airflow_alerter.triggers.alerter import AlerterAskTrigger


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_alerter' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
