"""Airflow notifiers and the callback factories built on them."""
