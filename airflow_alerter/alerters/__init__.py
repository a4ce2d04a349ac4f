"""Flavors: the core. Nothing under this package imports Airflow."""
