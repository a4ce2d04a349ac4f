"""The time a task-level callback has: Airflow ends the task's process soon after its final state.

Measured on Airflow 3.3: callbacks run after the task reported its final state, and the supervisor
SIGKILLs the process ``[core] task_success_overtime`` seconds (default 20) later. A send still
retrying a slow server at that moment dies without a word. So the notifier gives delivery the time
that is left, and when it runs out logs a warning that says why, while the process can still log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: seconds kept back from the overtime, for logging the outcome and the process's own exit
EXIT_MARGIN = 2.0


def overtime() -> float:
    """``[core] task_success_overtime``: seconds Airflow lets a task's process live after its final state."""
    from airflow_alerter._compat import conf

    return float(conf.getfloat("core", "task_success_overtime", fallback=20.0))


class OutOfTime(TimeoutError):
    """Delivery was still running when the callback's time ran out."""


def run_within(action: Callable[[], None], deadline: float) -> None:
    """Run ``action`` until the monotonic ``deadline``; its error propagates, OutOfTime if it is not done.

    The action runs in a daemon thread: left behind, it ends with the process, which Airflow is
    about to end anyway.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as err:  # handed to the caller's thread, which reports it
            errors.append(err)

    worker = threading.Thread(target=run, name="airflow-alerter-delivery", daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0.0))
    if worker.is_alive():
        raise OutOfTime(
            f"still sending when the callback's time ran out; Airflow ends a task's process "
            f"{overtime():.0f} s after its final state ([core] task_success_overtime)"
        )
    if errors:
        raise errors[0]
