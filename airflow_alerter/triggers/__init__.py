"""Airflow triggers (run in the triggerer, async)."""
