"""Example custom alerter flavors for airflow-alerter (see docs/custom_flavors.md)."""
