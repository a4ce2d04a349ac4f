"""The time a callback has before Airflow ends the process it runs in.

- A task-level callback, measured on Airflow 3.3: it runs after the task reported its final state,
  and the supervisor SIGKILLs the process ``[core] task_success_overtime`` seconds (default 20)
  later.
- A DAG-level callback runs in the dag-processor's child for the DAG file, which the processor
  kills after ``[dag_processor] dag_file_processor_timeout`` seconds (default 50) in all.

A send still retrying a slow server at that moment dies without a word. So the notifier gives
delivery the time that is left, and when it runs out logs a warning that says why, while the
process can still log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_alerter.exceptions import OutOfTime

__all__ = ["EXIT_MARGIN", "OutOfTime", "callback_deadline", "dag_callback_time", "overtime", "run_within"]

#: seconds kept back from the overtime, for logging the outcome and the process's own exit
EXIT_MARGIN = 2.0


def overtime() -> float:
    """``[core] task_success_overtime``: seconds Airflow lets a task's process live after its final state."""
    from airflow_alerter._compat import conf

    return float(conf.getfloat("core", "task_success_overtime", fallback=20.0))


def dag_callback_time() -> float:
    """``[dag_processor] dag_file_processor_timeout``: seconds the dag-processor's child for a file may run."""
    from airflow_alerter._compat import conf

    return float(conf.getfloat("dag_processor", "dag_file_processor_timeout", fallback=50.0))


def run_within(action: Callable[[], None], deadline: float, why: str) -> None:
    """Run ``action`` until the monotonic ``deadline``; its error propagates, OutOfTime (saying ``why``) if not done.

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
        raise OutOfTime(f"still sending when the callback's time ran out ({why})")
    if errors:
        raise errors[0]


def callback_deadline(task_level: bool) -> tuple[float, str]:
    """The monotonic deadline of a callback starting now, and the setting it comes from (for the warning)."""
    if task_level:
        seconds = overtime()
        why = f"Airflow ends a task's process {seconds:.0f} s after its final state ([core] task_success_overtime)"
    else:
        seconds = dag_callback_time()
        why = f"the dag-processor ends a file's run after {seconds:.0f} s ([dag_processor] dag_file_processor_timeout)"
    return time.monotonic() + seconds - EXIT_MARGIN, why
