"""Provider metadata, found by Airflow through the ``apache_airflow_provider`` entry point.

Airflow calls this in every component at start-up (``airflow providers list``, the api-server's
connection form, ``airflow connections test``), so it imports nothing heavy: the form comes from
``hooks/ui.py``, which is plain data, and no hook, operator or flavor module is imported here.
"""

from __future__ import annotations

from typing import Any

INTEGRATION = "Alerter"


def get_provider_info() -> dict[str, Any]:
    from airflow_alerter import __version__
    from airflow_alerter.hooks.ui import provider_connection_type

    def modules(*names: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": [f"airflow_alerter.{name}" for name in names]}]

    return {
        "package-name": "airflow-alerter",
        "name": "Alerter",
        "description": (
            "ZenML-style alerters for Apache Airflow: failure and success alerts, posts and human approval "
            "gates through one ``alerter`` connection type, with flavors for email (SMTP), Slack, Discord, "
            "chat webhooks (Mattermost, Microsoft Teams, Google Chat) and your own.\n"
        ),
        "versions": [__version__],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["service", "alerting"]}],
        "hooks": modules("hooks.alerter"),
        "operators": modules("operators.alerter"),
        "sensors": modules("sensors.alerter"),
        "triggers": modules("triggers.alerter"),
        "connection-types": [provider_connection_type("airflow_alerter.hooks.alerter.AlerterHook", "Alerter")],
        "notifications": ["airflow_alerter.notifications.alerter.AlerterNotifier",
                          "airflow_alerter.notifications.hitl.AlerterHITLNotifier"],
    }
