"""The connection form for the ``alerter`` type, declared once as data (the flavor names: from the entry points).

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
#: the entry-point group of flavors (``registry.ENTRY_POINT_GROUP``, not imported here: see below)
FLAVOR_GROUP = "airflow_alerter.flavors"

#: Flavor options live in the Extra JSON: only ``flavor`` is common to every flavor, and a field the
#: form saves empty must not reach a flavor whose config forbids unknown keys.
def builtin_flavor_names() -> list[str]:
    """The flavors this package declares as entry points, from its own metadata (a fraction of a millisecond).

    Not through ``airflow_alerter.registry``: Airflow calls ``get_provider_info`` whenever it is
    imported, DAG parsing included, so this path stays as small as it can be.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        return sorted(ep.name for ep in distribution("airflow-alerter").entry_points if ep.group == FLAVOR_GROUP)
    except PackageNotFoundError:
        return []


def conn_fields() -> dict[str, dict[str, Any]]:
    """The form's own fields; the flavor names come from this package's entry points, not a list kept here."""
    names = ", ".join(builtin_flavor_names()) or "smtp_email"
    return {
        "flavor": {
            "label": "Flavor",
            "schema": {"type": ["string", "null"]},
            "description": (
                f"Which alerter sends the messages: {names}, or a custom flavor (its name, or package.module:Class). "
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
        "conn-fields": conn_fields(),
    }


def ui_field_behaviour() -> dict[str, Any]:
    """What ``AlerterHook.get_ui_field_behaviour()`` returns, for Airflow 3.0/3.1."""
    return {"hidden_fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": dict(PLACEHOLDERS)}
