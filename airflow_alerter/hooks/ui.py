"""The connection form for the ``alerter`` type, declared once as data.

Airflow 3.2+ reads the form from the provider info (``conn-fields`` and ``ui-field-behaviour`` in
``get_provider_info``) without importing the hook; Airflow 3.0/3.1 ask the hook's
``get_ui_field_behaviour()`` classmethod. Both read the tables below, so the two never disagree.
Deliberately no ``get_connection_form_widgets``: it needs wtforms and flask_appbuilder (absent from
a plain Airflow 3 install) and is deprecated since Airflow 3.2; the declarative ``flavor`` field
replaces it, and on older versions the Extra placeholder shows where ``flavor`` goes.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "alerter"

#: Flavor options live in the Extra JSON: only ``flavor`` is common to every flavor, and a field the
#: form saves empty must not reach a flavor whose config forbids unknown keys.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "flavor": {
        "label": "Flavor",
        "schema": {"type": ["string", "null"]},
        "description": (
            "Which alerter sends the messages: smtp_email, slack, discord, webhook, or a custom flavor. "
            "'airflow-alerter flavor list' shows them all; 'airflow-alerter flavor describe NAME' shows "
            "the options to put in Extra."
        ),
    },
}

HIDDEN_FIELDS: list[str] = ["schema"]

RELABELING: dict[str, str] = {
    "host": "Host (server, for flavors that use one)",
    "login": "Login (user name)",
    "password": "Password / token / webhook URL (secret)",
}

PLACEHOLDERS: dict[str, str] = {
    "host": "smtp.example.com",
    "port": "587",
    "login": "alerts@example.com",
    "password": "SMTP password, bot token or webhook URL",
    "extra": '{"flavor": "smtp_email", "sender_email": "airflow@example.com", "recipient_email": "oncall@example.com"}',
    "flavor": "smtp_email",
}


def provider_connection_type(hook_class_name: str, hook_name: str) -> dict[str, Any]:
    """The ``connection-types`` entry of the provider info (Airflow 3.2+ builds the form from it)."""
    return {
        "connection-type": CONN_TYPE,
        "hook-class-name": hook_class_name,
        "hook-name": hook_name,
        "ui-field-behaviour": {
            "hidden-fields": list(HIDDEN_FIELDS),
            "relabeling": dict(RELABELING),
            "placeholders": dict(PLACEHOLDERS),
        },
        "conn-fields": {name: dict(spec) for name, spec in CONN_FIELDS.items()},
    }


def ui_field_behaviour() -> dict[str, Any]:
    """What ``AlerterHook.get_ui_field_behaviour()`` returns, for Airflow 3.0/3.1."""
    return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": dict(PLACEHOLDERS)}
