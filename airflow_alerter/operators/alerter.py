"""AlerterPostOperator: post a message from a DAG (ZenML's ``alerter_post_step``, the Airflow way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

if TYPE_CHECKING:  # the models load when the task runs, not each time a DAG file is parsed
    from pydantic import BaseModel

    from airflow_alerter.models import AlerterMessage, BaseAlerterParameters


class AlerterPostOperator(BaseOperator):
    """Post ``message`` through the alerter connection ``alerter_conn_id``.

    The message's title and body, the email ``subject``, ``recipient_email`` and ``html_body`` are
    templated; ``html_body`` alone may also name a ``.html`` template file (beside the DAG file or on
    its ``template_searchpath``). Everything rendered passes Airflow's secrets masker before sending.
    Per-call flavor parameters go in ``alerter_params`` (Airflow reserves ``params`` for DAG params).

    :param raise_on_failure: fail the task with ``AlerterDeliveryError`` (the reason in the log) when
        the message cannot be delivered; with False the task succeeds and pushes ``False``.
    """

    template_fields: Sequence[str] = (
        "alerter_conn_id", "title", "body", "metadata", "subject", "recipient_email", "html_body",
    )
    #: no field is read from a file by its name's ending: a title or subject that ends in ".html" is
    #: text. Only ``html_body`` may name a template file (see :meth:`render_template_fields`).
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {"body": "md", "html_body": "html", "metadata": "json"}
    ui_color = "#ffefd5"

    def __init__(
        self,
        *,
        alerter_conn_id: str,
        message: str | AlerterMessage = "",
        title: str | None = None,
        subject: str | None = None,
        recipient_email: str | list[str] | None = None,
        html_body: str | None = None,
        alerter_params: Mapping[str, Any] | BaseAlerterParameters | None = None,
        settings: Mapping[str, Any] | BaseModel | None = None,
        raise_on_failure: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(message, str):  # what AlerterMessage.coerce makes of it, without building the model
            parts_title, self.body, self.metadata = "", message, {}
            if not message.strip():
                from airflow_alerter.models import EMPTY_MESSAGE_TITLE

                parts_title = EMPTY_MESSAGE_TITLE
        else:
            from airflow_alerter.models import AlerterMessage  # loaded already: the caller built one

            parts = AlerterMessage.coerce(message)
            parts_title, self.body, self.metadata = parts.title, parts.body, dict(parts.metadata)
        self.alerter_conn_id = alerter_conn_id
        self.title = title if title is not None else parts_title
        self.subject = subject
        self.recipient_email = recipient_email
        self.html_body = html_body
        self.alerter_params = alerter_params
        self.settings = settings
        self.raise_on_failure = raise_on_failure

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render the fields as text; then, if ``html_body`` named a ``.html`` file, render that file instead.

        Airflow's ``template_ext`` would apply to every templated field, so a title such as
        "report.html" would be looked up as a file; here only ``html_body`` may name one.
        """
        html_file = self.html_body if isinstance(self.html_body, str) and self.html_body.endswith(".html") else None
        super().render_template_fields(context, jinja_env)
        if html_file is not None:
            env = jinja_env or self.get_template_env()
            self.html_body = env.get_template(html_file).render(context)

    def call_params(self) -> Mapping[str, Any] | BaseAlerterParameters | None:
        """The per-call parameters: ``alerter_params`` plus the templated email shortcuts that were set."""
        shortcuts = {"subject": self.subject, "recipient_email": self.recipient_email, "html_body": self.html_body}
        shortcuts = {key: value for key, value in shortcuts.items() if value is not None}
        if not shortcuts:
            return self.alerter_params
        from pydantic import BaseModel

        base = self.alerter_params.model_dump(exclude_unset=True) if isinstance(
            self.alerter_params, BaseModel) else dict(self.alerter_params or {})
        return {**base, **shortcuts}

    def execute(self, context: Any) -> bool:
        from airflow_alerter.hooks.alerter import AlerterHook
        from airflow_alerter.models import AlerterMessage
        from airflow_alerter.notifications.redaction import redacted, redacted_params

        message = redacted(AlerterMessage(title=self.title, body=self.body, metadata=self.metadata))
        alerter = AlerterHook(self.alerter_conn_id, self.settings).get_alerter()
        params = alerter.coerce_params(redacted_params(self.call_params()))
        if not self.raise_on_failure:
            return alerter.post(message, params)
        alerter.deliver(message, params)
        return True
