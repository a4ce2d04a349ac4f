"""Flavor name -> alerter class: built-ins, installed plugins (entry points) and ``register()``.

Classes are imported only when asked for, so listing names stays cheap and a broken third-party
flavor cannot stop the built-in ones from loading.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_alerter.alerters.base import BaseAlerter

ENTRY_POINT_GROUP = "airflow_alerter.flavors"

BUILTIN_FLAVORS: dict[str, str] = {
    "smtp_email": "airflow_alerter.alerters.smtp_email:SMTPEmailAlerter",
}

#: Airflow connection types whose connections work unchanged, and the flavor that serves them.
#: Our own ``alerter`` type names its flavor in the extra ``flavor``.
CONN_TYPE_FLAVORS: dict[str, str] = {
    "smtp": "smtp_email",
    "email": "smtp_email",
}

_registered: dict[str, type[BaseAlerter]] = {}


class UnknownFlavorError(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unknown alerter flavor {name!r}. Known flavors: {', '.join(flavor_names())}.")


def register(alerter_class: type[BaseAlerter]) -> type[BaseAlerter]:
    """Make a flavor available by its ``FLAVOR`` name in this process; usable as a class decorator."""
    from airflow_alerter.alerters.base import BaseAlerter

    if not (isinstance(alerter_class, type) and issubclass(alerter_class, BaseAlerter)):
        raise TypeError(f"{alerter_class!r} is not a subclass of airflow_alerter.BaseAlerter")
    name = getattr(alerter_class, "FLAVOR", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{alerter_class.__qualname__} must set the class variable FLAVOR to a non-empty string")
    _registered[name] = alerter_class
    return alerter_class


def _plugin_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def flavor_sources() -> dict[str, str]:
    """Every known flavor name and where it comes from ("builtin", "entry point", "registered")."""
    sources = dict.fromkeys(BUILTIN_FLAVORS, "builtin")
    sources.update(dict.fromkeys(_plugin_targets(), "entry point"))
    sources.update(dict.fromkeys(_registered, "registered"))
    return sources


def flavor_names() -> list[str]:
    return sorted(flavor_sources())


def import_target(target: str) -> type[BaseAlerter]:
    """Import ``package.module:Class`` (or ``package.module.Class``) and return the class."""
    module_name, _, attr = target.partition(":") if ":" in target else target.rpartition(".")
    return getattr(import_module(module_name), attr)  # type: ignore[no-any-return]


def get_flavor(name: str) -> type[BaseAlerter]:
    """The alerter class for ``name``; registered classes win over plugins, plugins over built-ins."""
    if name in _registered:
        return _registered[name]
    target = _plugin_targets().get(name) or BUILTIN_FLAVORS.get(name)
    if target is None:
        raise UnknownFlavorError(name)
    return import_target(target)


def flavors_that_can_ask() -> list[str]:
    able = []
    for name in flavor_names():
        try:
            if get_flavor(name).can_ask():
                able.append(name)
        except Exception:  # a broken plugin must not hide the flavors that work
            continue
    return able
