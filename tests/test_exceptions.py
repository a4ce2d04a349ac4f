"""One error tree: every error the package raises on purpose is an AlerterError, old import paths keep
working, errors carry facts and building one does no I/O."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import pytest

from airflow_alerter import exceptions
from airflow_alerter.exceptions import AlerterConfigError, AlerterError, AskNotSupported, UnknownFlavorError

#: where each error lived before airflow_alerter.exceptions; those imports must keep working
OLD_PATHS = [
    ("airflow_alerter", "AlerterError"),
    ("airflow_alerter", "AlerterConfigError"),
    ("airflow_alerter", "AlerterDeliveryError"),
    ("airflow_alerter", "AskNotSupported"),
    ("airflow_alerter.alerters.base", "AlerterError"),
    ("airflow_alerter.alerters.base", "AlerterConfigError"),
    ("airflow_alerter.alerters.base", "AlerterDeliveryError"),
    ("airflow_alerter.alerters.base", "AskNotSupported"),
    ("airflow_alerter.registry", "FlavorError"),
    ("airflow_alerter.registry", "UnknownFlavorError"),
    ("airflow_alerter.registry", "FlavorRegistrationError"),
    ("airflow_alerter.registry", "FlavorLoadError"),
    ("airflow_alerter.registry", "RegistryFileError"),
    ("airflow_alerter.notifications.budget", "OutOfTime"),
    ("airflow_alerter.cli", "CommandError"),
]


@pytest.mark.parametrize("module, name", OLD_PATHS, ids=lambda value: value)
def test_a_moved_error_keeps_working_from_its_old_import_path(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(exceptions, name)


@pytest.mark.parametrize("name", exceptions.__all__)
def test_every_error_of_the_tree_is_an_alerter_error(name: str) -> None:
    assert issubclass(getattr(exceptions, name), AlerterError)


def test_the_http_error_derives_from_the_same_root() -> None:
    from airflow_alerter.alerters.http import HttpError

    assert issubclass(HttpError, AlerterError)


def test_the_builtin_bases_callers_catch_today_stay() -> None:
    assert issubclass(exceptions.AlerterConfigError, ValueError)
    assert issubclass(exceptions.FlavorError, AlerterConfigError)  # so the hook need not re-wrap it
    assert issubclass(exceptions.UnknownFlavorError, LookupError)
    assert issubclass(exceptions.FlavorRegistrationError, TypeError)
    assert issubclass(exceptions.FlavorLoadError, ImportError)
    assert issubclass(exceptions.AskNotSupported, NotImplementedError)
    assert issubclass(exceptions.OutOfTime, TimeoutError)
    assert issubclass(exceptions.OutOfTime, exceptions.AlerterDeliveryError)


def test_errors_carry_facts_and_callers_add_the_hints() -> None:
    err = AskNotSupported("webhook")
    assert (err.flavor, str(err)) == ("webhook", "The 'webhook' alerter flavor cannot ask questions (post only).")

    err.add_hint("Flavors that can ask: slack.")
    err.conn_id = "ops_hook"
    assert str(err) == (
        "Connection 'ops_hook': The 'webhook' alerter flavor cannot ask questions (post only). "
        "Flavors that can ask: slack."
    )
    unknown = UnknownFlavorError("pigeon", ["discord", "slack"])
    assert (unknown.name, unknown.known) == ("pigeon", ("discord", "slack"))


def test_an_error_survives_pickling_with_its_facts_and_hints() -> None:
    err = AskNotSupported("webhook")
    err.add_hint("Flavors that can ask: slack.")

    copy = pickle.loads(pickle.dumps(err))

    assert (type(copy), copy.flavor, str(copy)) == (AskNotSupported, "webhook", str(err))


def test_building_ask_not_supported_loads_no_flavor_and_scans_nothing() -> None:
    code = (
        "import sys; from airflow_alerter.exceptions import AskNotSupported; AskNotSupported('webhook'); "
        "print(sorted(m for m in sys.modules if m.startswith(('airflow_alerter', 'importlib.metadata'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == "['airflow_alerter', 'airflow_alerter.exceptions']"


def test_the_registry_adds_the_flavors_that_can_ask_once() -> None:
    from airflow_alerter.registry import add_ask_hint

    err = AskNotSupported("webhook")
    add_ask_hint(err)
    add_ask_hint(err)

    assert err.hints == ("Flavors that can ask: discord, slack, smtp_email.",)
