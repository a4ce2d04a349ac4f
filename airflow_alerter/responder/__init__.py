"""The responder: the long-running process that records chat answers in Airflow's HITL records.

Pushed (:mod:`.push`: Slack Socket Mode, Discord Gateway; a click is recorded the moment it is made)
or polled (:mod:`.polling`). Both decide through :mod:`.decisions` and talk to Airflow only through
its public REST API (:mod:`.api`).
"""

from airflow_alerter.responder.api import AirflowAPI
from airflow_alerter.responder.polling import Responder

__all__ = ["AirflowAPI", "Responder"]
