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

import logging
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import conf
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

__all__ = [
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "conf",
    "dagbag_type",
    "quiet_airflow_startup",
    "redact",
    "runs_in_dag_test",
]


def _task_exceptions() -> dict[str, Any]:
    """Task control flow: raised by a task, caught by the Task SDK's runner by class."""
    # 3.2, 3.3: defined in the Task SDK; airflow.exceptions re-exports them with a deprecation warning
    from airflow.sdk import exceptions

    if not hasattr(exceptions, "AirflowSkipException"):
        # 3.1: airflow.sdk.exceptions exists but has not got them; the 3.1 task runner catches these
        from airflow import exceptions  # type: ignore[no-redef]
    return {name: getattr(exceptions, name) for name in _EXCEPTIONS}


def _conf() -> Any:
    """Airflow's configuration as a task reads it (``conf.get``, ``getboolean``, ``getfloat``, ...)."""
    try:
        # 3.2, 3.3: public; airflow.sdk.conf is airflow.sdk.configuration.conf
        from airflow.sdk import conf
    except ImportError:  # 3.1: no airflow.sdk.configuration yet; core's parser reads the same airflow.cfg and env
        from airflow.configuration import conf  # type: ignore[assignment]
    return conf


_EXCEPTIONS = ("AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException")


def __getattr__(name: str) -> Any:
    """Resolve the Airflow names on first use: importing this module imports no Airflow.

    What they load, ``import airflow.sdk`` loads anyway (checked on 3.1.8, 3.2.2, 3.3.2), so a DAG
    file pays nothing extra; the CLI's flavor commands, which never import Airflow, stay free.
    """
    if name in _EXCEPTIONS:
        value = _task_exceptions()[name]
    elif name == "conf":
        value = _conf()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def quiet_airflow_startup() -> None:
    """Keep Airflow's start-up chatter out of a command line's stderr; call before importing Airflow.

    3.1: ``import airflow`` imports alembic, whose plugin loader logs seven INFO lines ("setup plugin
    alembic.autogenerate...") through Airflow's log handler, and deprecation warnings raised inside
    Airflow's own modules (a provider's compat shim, SQLAlchemy 2.1's ``noload``) are printed. 3.2,
    3.3: neither happens (checked on 3.2.2, 3.3.2); the filters then change nothing. Warnings raised
    from this package's own code still show. Call it again once Airflow is imported: Airflow puts
    its own warning filters (``default`` for its DeprecationWarnings) in front of earlier ones.
    """
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"airflow\.")


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


def dagbag_type() -> type[DagBag]:
    """Airflow's ``DagBag`` (parses a DAG folder), for the tests, benchmarks and ``scripts/demo.py``.

    The package itself never parses DAG folders; this sits here so that the one place that knows
    where Airflow names live knows this one too.
    """
    try:
        # 3.2, 3.3: moved here; airflow.models.dagbag.DagBag still works there but warns it is deprecated
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # 3.1: only in airflow.models.dagbag
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag
