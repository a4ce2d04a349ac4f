"""AlerterNotifier and the one-line callback factories built on it.

Airflow 3 calls a task's ``on_failure_callback`` only when the task has failed for good (after the
last retry, or at once on ``AirflowFailException``); a try that will be retried calls
``on_retry_callback`` instead. So ``alerter_failure_callback`` alerts once per failed task by
construction, and ``alerter_retry_callback`` is there for those who want each retry.

A callback must never be the reason a DAG misbehaves: whatever goes wrong while alerting (a
missing connection, a server down, a bad template) is logged as a warning naming the connection,
the flavor and the reason, and the task's state is left alone.

Mapped tasks can fail by the hundred at once. With ``storm_window=10`` (opt-in; off by default)
their alerts are gathered: the first instance to fail waits up to that many seconds (or until its
siblings have all finished) and sends one summary naming every instance that failed meanwhile (see
:mod:`airflow_alerter.storm`). Off by default because that wait delays a lone failure's alert by the
whole window while its siblings still run (benchmarks/storm.py: 10.0 s, against 0 without).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:  # the models load when an alert is built, not when a DAG file is parsed
    from pydantic import BaseModel

    from airflow_alerter.models import AlerterMessage, BaseAlerterParameters

log = logging.getLogger(__name__)

AlertKind = Literal["failure", "success", "retry", "info"]

TITLES: dict[str, str] = {
    "failure": "Task Failure Alert",
    "success": "Task Success Notification",
    "retry": "Task Retry Alert",
    "info": "Airflow Notification",
}
DAG_TITLES: dict[str, str] = {
    "failure": "DAG Run Failure Alert",
    "success": "DAG Run Success Notification",
}
TRACEBACK_LINES = 30
#: seconds the first failing mapped instance waits for its siblings before sending one summary; it
#: storm aggregation is opt-in: a window delays a lone failure's alert (see the module docstring).
#: A window must fit in Airflow's ``[core] task_success_overtime`` (20 s) with time left to send.
DEFAULT_STORM_WINDOW = 0.0


def _trimmed_traceback(error: BaseException, lines: int) -> str:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


def _describe_error(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return str(error)


def task_alert_message(
    context: Mapping[str, Any], kind: AlertKind, *, title: str | None = None, body: str | None = None,
    traceback_lines: int = TRACEBACK_LINES,
) -> AlerterMessage:
    """Describe what happened from an Airflow callback context, task-level or DAG-level."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id")
    task_level = ti is not None and "task_list" not in context and context.get("reason") is None
    error = context.get("exception")
    facts: dict[str, Any] = {
        "dag_id": dag_id,
        "task_id": getattr(ti, "task_id", None) if task_level else None,
        "run_id": run_id,
        "map_index": getattr(ti, "map_index", None) if task_level else None,
        "try_number": getattr(ti, "try_number", None) if task_level else None,
        "logical_date": context.get("logical_date") or getattr(dag_run, "logical_date", None),
    }
    default_title = TITLES[kind] if task_level else DAG_TITLES.get(kind, TITLES[kind])
    from airflow_alerter.models import AlertContext, AlerterMessage
    from airflow_alerter.validation import one_line

    alert = AlertContext(
        kind=kind,
        log_url=_log_url(ti) if task_level else None,
        exception=_describe_error(error) or (context.get("reason") if kind == "failure" else None),
        traceback=_trimmed_traceback(error, traceback_lines) if isinstance(error, BaseException) else None,
    )
    # a callback must not lose its alert to a templated title that rendered over several lines
    return AlerterMessage(
        title=one_line(title or default_title) or default_title,
        body=body if body is not None else _default_body(kind, facts, task_level),
        metadata=alert.as_metadata(facts),
    )


def _log_url(ti: Any) -> str | None:
    try:
        return str(ti.log_url)
    except Exception:  # log_url needs the api-server's base_url; its absence must not cost the alert
        return None


def _default_body(kind: str, facts: Mapping[str, Any], task_level: bool) -> str:
    from airflow_alerter.alerters.rendering import verb

    subject = f"Task {facts['task_id']} in DAG {facts['dag_id']}" if task_level else f"DAG {facts['dag_id']}"
    text = f"{subject} {verb(kind)} (run {facts['run_id']}"
    text += f", try {facts['try_number']})." if task_level and facts.get("try_number") else ")."
    return text


class AlerterNotifier(BaseNotifier):
    """Send a task or DAG-run alert through any alerter connection; never raises into Airflow.

    :param alerter_conn_id: the connection to send through (templated).
    :param kind: ``failure``, ``success``, ``retry`` or ``info``; picks the default title and body.
    :param title: override the default title (templated).
    :param body: override the default body (templated).
    :param settings: per-task flavor settings, e.g. ``{"recipient_email": ["ops@example.com"]}``.
    :param alerter_params: per-call flavor parameters (e.g. ``SMTPEmailAlerterParameters``).
    :param storm_window: mapped task instances only: seconds to gather the alerts of the same run and
        connection into one summary (default 0: one alert per instance, sent at once; 10 is a good
        window). Airflow ends a task's process ``[core] task_success_overtime`` seconds after its
        final state, so longer windows are shortened to fit unless that setting is raised.
    """

    template_fields = ("alerter_conn_id", "title", "body", "settings")

    def __init__(
        self,
        alerter_conn_id: str,
        *,
        kind: AlertKind = "info",
        title: str | None = None,
        body: str | None = None,
        settings: Mapping[str, Any] | BaseModel | None = None,
        alerter_params: Mapping[str, Any] | BaseAlerterParameters | None = None,
        traceback_lines: int = TRACEBACK_LINES,
        storm_window: float = DEFAULT_STORM_WINDOW,
    ) -> None:
        super().__init__()
        self.alerter_conn_id = alerter_conn_id
        self.kind: AlertKind = kind
        self.title = title
        self.body = body
        self.settings = dict(settings) if isinstance(settings, Mapping) else settings
        self.alerter_params = alerter_params
        self.traceback_lines = traceback_lines
        self.storm_window = storm_window

    def __call__(self, *args: Any) -> None:
        """Render and send; a bad template is reported like any other failure to alert."""
        try:
            super().__call__(*args)
        except Exception as err:
            self._warn(err)

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render with the DAG's template environment, or Airflow's default when the DAG has none.

        DAG-level callbacks can receive a serialized DAG (seen with ``dag.test()`` on Airflow 3.3),
        which has no ``get_template_env``; BaseNotifier would fail there and lose the alert.
        """
        dag = context.get("dag")
        if jinja_env is None and dag is not None and not hasattr(dag, "get_template_env"):
            jinja_env = self.get_template_env(dag=None)
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        from airflow_alerter.hooks.alerter import AlerterHook
        from airflow_alerter.notifications import budget
        from airflow_alerter.notifications.redaction import redacted

        try:
            message = redacted(task_alert_message(context, self.kind, title=self.title, body=self.body,
                                                  traceback_lines=self.traceback_lines))
            # a task's process ends soon after the task; a DAG's callback runs in the dag-processor
            deadline, why = budget.callback_deadline(task_level="task_id" in message.metadata)
            gathered = self._gather(message, context)
            if gathered is None:
                return
            alerter = AlerterHook(self.alerter_conn_id, self.settings).get_alerter()
            params = alerter.coerce_params(self.alerter_params)
            budget.run_within(lambda: alerter.deliver(gathered, params), deadline, why)
        except Exception as err:
            self._warn(err)

    def _gather(self, message: AlerterMessage, context: Any) -> AlerterMessage | None:
        """The message to send: this alert, a summary of its mapped siblings' alerts, or None (another sends it)."""
        from airflow_alerter.notifications import storm

        window = storm.storm_window(context, self.alerter_conn_id, self.kind, self.storm_window)
        if window is None:
            return message
        members = window.join(storm.storm_member(message, context))
        if members is None:
            log.info("%s alert recorded; the instance leading this alert window will send the summary",
                     self.kind.capitalize())
            return None
        if not members:  # an earlier window's leader already reported this instance
            return None
        return storm.summary_message(members, message, context, self.kind, self.title or TITLES[self.kind])

    async def async_notify(self, context: Any) -> None:
        """For callbacks Airflow runs in the triggerer: the connection lookup must stay on asgiref's thread.

        A plain thread (``asyncio.to_thread``) that talks to the triggerer's supervisor corrupts that
        channel on Airflow 3.1/3.2 (see AlerterAskTrigger.run); asgiref routes the call back to the loop.
        """
        from asgiref.sync import sync_to_async

        await sync_to_async(self.notify)(context)

    def _warn(self, err: BaseException) -> None:
        log.warning(
            "%s alert through connection %r was not sent: %s: %s",
            self.kind.capitalize(), self.alerter_conn_id, type(err).__name__, err,
        )


def alerter_failure_callback(alerter_conn_id: str, **options: Any) -> AlerterNotifier:
    """``on_failure_callback=alerter_failure_callback("ops_email")``: one alert when a task (or DAG run) fails."""
    return AlerterNotifier(alerter_conn_id, kind="failure", **options)


def alerter_success_callback(alerter_conn_id: str, **options: Any) -> AlerterNotifier:
    """``on_success_callback=alerter_success_callback("ops_email")``: a note when a task (or DAG run) succeeds."""
    return AlerterNotifier(alerter_conn_id, kind="success", **options)


def alerter_retry_callback(alerter_conn_id: str, **options: Any) -> AlerterNotifier:
    """``on_retry_callback=alerter_retry_callback(...)``: an alert for each try that will be retried."""
    return AlerterNotifier(alerter_conn_id, kind="retry", **options)


def _email_options(
    recipient_email: str | list[str] | None, subject_prefix: str | None, include_html: bool, cc: list[str] | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    settings = {"recipient_email": recipient_email, "subject_prefix": subject_prefix, "include_html": include_html}
    options["settings"] = {key: value for key, value in settings.items() if value is not None}
    if cc:
        options["alerter_params"] = {"cc": cc}
    return options


def smtp_email_failure_callback(
    alerter_conn_id: str, *, recipient_email: str | list[str] | None = None, subject_prefix: str | None = None,
    include_html: bool = True, cc: list[str] | None = None, **options: Any,
) -> AlerterNotifier:
    """An email failure alert with typed email options: run details table, exception, traceback, log link."""
    return alerter_failure_callback(
        alerter_conn_id, **_email_options(recipient_email, subject_prefix, include_html, cc, options)
    )


def smtp_email_success_callback(
    alerter_conn_id: str, *, recipient_email: str | list[str] | None = None, subject_prefix: str | None = None,
    include_html: bool = True, cc: list[str] | None = None, **options: Any,
) -> AlerterNotifier:
    """An email success notification with typed email options."""
    return alerter_success_callback(
        alerter_conn_id, **_email_options(recipient_email, subject_prefix, include_html, cc, options)
    )
