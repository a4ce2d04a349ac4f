"""Airflow hooks: connection -> configured alerter."""
