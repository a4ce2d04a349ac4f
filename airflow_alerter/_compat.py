"""Every Airflow name that moved between the versions this package supports: 3.1, 3.2 and 3.3.

The rest of the package imports these from here and never branches on the Airflow version. Each
entry names the versions it serves and how it was checked; "checked" means read in, and exercised
by the test suite on, Airflow 3.1.8 (Task SDK 1.1.8), 3.2.2 (Task SDK 1.2.2) and 3.3.2 (Task SDK
1.3.2). A name that is the same on all three and public (``airflow.sdk.BaseOperator``, ``Variable``,
...) is imported where it is used, not here.

Private Airflow names this package relies on, and why there is no public one:

- ``airflow.sdk.log.redact``: the secrets masker's redaction, the one the Task SDK runs over every
  task log line. ``airflow.sdk`` exports ``mask_secret`` (register a secret) but not the redaction.
  Checked on 3.1.8, 3.2.2, 3.3.2: ``airflow.sdk.log`` imports ``redact`` from
  ``airflow.sdk._shared.secrets_masker``, signature ``redact(value, name=None, max_depth=None,
  replacement="***")``.
- ``airflow.sdk.execution_time.task_runner.SUPERVISOR_COMMS`` and the class name
  ``InProcessSupervisorComms`` (``airflow.sdk.execution_time.supervisor``): how ``dag.test()`` is
  told from a real worker. Checked on 3.1.8, 3.2.2, 3.3.2 (same module, same class name).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "conf",
    "redact",
    "runs_in_dag_test",
]

# Task control-flow exceptions. The Task SDK catches these by class, so they must be the classes the
# installed task runner imports.
try:
    # 3.2, 3.3: defined in the Task SDK; airflow.exceptions re-exports them with a deprecation warning
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException
except ImportError:  # 3.1: airflow.sdk.exceptions exists but has not got them; the 3.1 task runner catches these
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )

# Airflow's configuration as a task reads it (conf.get, getboolean, getfloat, ...).
try:
    # 3.2, 3.3: public; airflow.sdk.conf is airflow.sdk.configuration.conf
    from airflow.sdk import conf
except ImportError:  # 3.1: no airflow.sdk.configuration yet; core's parser reads the same airflow.cfg and env
    from airflow.configuration import conf  # type: ignore[assignment]

# All of the above are loaded by ``import airflow.sdk`` already (checked on 3.1.8, 3.2.2, 3.3.2), so
# importing this module costs a DAG file nothing extra.


def redact(value: Any) -> Any:
    """``value`` with every secret Airflow's secrets masker knows replaced by ``***``.

    The same redaction the Task SDK applies to task log lines: strings, and the values inside dicts,
    lists and tuples (a value under a sensitive key such as ``password`` is hidden whole). Secrets
    are known to the masker once registered with ``airflow.sdk.log.mask_secret`` (the hook does so
    for every connection secret) or read through a connection or Variable.
    """
    # 3.1, 3.2, 3.3: the same name and signature (see the module docstring)
    from airflow.sdk.log import redact as airflow_redact  # type: ignore[attr-defined]

    return airflow_redact(value)


def runs_in_dag_test() -> bool:
    """True under ``dag.test()``, which runs every task in this process, one after another.

    Read from the supervisor channel the Task SDK installed: ``dag.test()`` sets an in-process one.
    An Airflow without that module counts as a real worker.
    """
    try:
        # 3.1, 3.2, 3.3: module-level SUPERVISOR_COMMS; dag.test() installs an InProcessSupervisorComms
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return type(getattr(task_runner, "SUPERVISOR_COMMS", None)).__name__ == "InProcessSupervisorComms"
