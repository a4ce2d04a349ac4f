"""Flavor name -> alerter class: built-ins, installed plugins, the registry file and ``register()``.

Where a name is looked up, most explicit first (the first that knows the name wins):

1. ``register(MyAlerter)`` in this process (a DAG file or a plugin calling it);
2. the registry file written by ``airflow-alerter flavor register`` — one per Airflow installation,
   ``$AIRFLOW_HOME/airflow_alerter_flavors.json`` unless ``AIRFLOW_ALERTER_REGISTRY`` names another;
3. entry points of the group ``airflow_alerter.flavors`` declared by installed packages;
4. the flavors shipped with this package.

Classes are imported only when asked for, so listing names stays cheap and a broken third-party
flavor cannot stop the built-in ones from loading. This module stays import-light (stdlib only at
module level, no Airflow): the hook, the CLI and ``get_provider_info`` all import it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_alerter.exceptions import AlerterError

# the errors lived here before airflow_alerter.exceptions: re-exported, so those imports keep working
from airflow_alerter.exceptions import FlavorError as FlavorError
from airflow_alerter.exceptions import FlavorLoadError as FlavorLoadError
from airflow_alerter.exceptions import FlavorRegistrationError as FlavorRegistrationError
from airflow_alerter.exceptions import RegistryFileError as RegistryFileError
from airflow_alerter.exceptions import UnknownFlavorError as UnknownFlavorError

if TYPE_CHECKING:
    from airflow_alerter.alerters.base import BaseAlerter

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "airflow_alerter.flavors"
REGISTRY_ENV_VAR = "AIRFLOW_ALERTER_REGISTRY"
REGISTRY_FILE_NAME = "airflow_alerter_flavors.json"

#: Where a flavor comes from, as ``flavor_sources()`` and ``airflow-alerter flavor list`` name it.
SOURCE_BUILTIN = "builtin"
SOURCE_ENTRY_POINT = "entry point"
SOURCE_REGISTRY_FILE = "registry file"
SOURCE_REGISTERED = "registered"

ASK_HINT_PREFIX = "Flavors that can ask:"

BUILTIN_FLAVORS: dict[str, str] = {
    "smtp_email": "airflow_alerter.alerters.smtp_email:SMTPEmailAlerter",
    "slack": "airflow_alerter.alerters.slack:SlackAlerter",
    "discord": "airflow_alerter.alerters.discord:DiscordAlerter",
    "webhook": "airflow_alerter.alerters.webhook:WebhookAlerter",
}

#: Airflow connection types whose connections work unchanged, and the flavor that serves them.
#: Our own ``alerter`` type names its flavor in the extra ``flavor``.
CONN_TYPE_FLAVORS: dict[str, str] = {
    "smtp": "smtp_email",
    "email": "smtp_email",
    "slack": "slack",
    "slackwebhook": "slack",
    "discord": "discord",
}

_registered: dict[str, type[BaseAlerter]] = {}

#: Flavor names end up in connection extras and on the command line: keep them plain.
_FLAVOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*|\.[A-Za-z_]\w*)")


# --- the registry file ---------------------------------------------------------------------------


def registry_path() -> Path:
    """The registry file: ``$AIRFLOW_ALERTER_REGISTRY``, else ``$AIRFLOW_HOME/airflow_alerter_flavors.json``.

    AIRFLOW_HOME is read the way Airflow reads it (the environment, default ``~/airflow``) rather than
    from Airflow's config, so looking a flavor up never imports Airflow.
    """
    override = os.environ.get(REGISTRY_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / REGISTRY_FILE_NAME


def _read_registry_file(path: Path) -> dict[str, str]:
    """The ``name -> "module:Class"`` table in ``path``; empty when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise RegistryFileError(f"Cannot read the flavor registry file {path}: {err.strerror or err}") from None
    try:
        flavors = json.loads(text).get("flavors", {})
    except (ValueError, AttributeError):
        flavors = None
    if not isinstance(flavors, dict) or not all(isinstance(v, str) for v in flavors.values()):
        raise RegistryFileError(
            f"The flavor registry file {path} is not valid: expected JSON like "
            f'{{"flavors": {{"my_flavor": "my_package.alerters:MyAlerter"}}}}. Fix it, or delete it and '
            f"register the flavors again."
        )
    return {str(name): target for name, target in flavors.items()}


def registry_file_flavors() -> dict[str, str]:
    """The flavors in the registry file; a damaged file is logged and ignored so built-ins keep working."""
    try:
        return _read_registry_file(registry_path())
    except RegistryFileError as err:
        log.warning("%s", err)
        return {}


def _write_registry_file(path: Path, flavors: dict[str, str]) -> None:
    """Replace the file atomically: a reader (a worker mid-alert) sees the old table or the new one."""
    import tempfile

    document = {
        "about": "Custom alerter flavors for airflow-alerter, written by 'airflow-alerter flavor register'.",
        "flavors": dict(sorted(flavors.items())),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(handle.name, path)
    except OSError as err:
        raise RegistryFileError(f"Cannot write the flavor registry file {path}: {err.strerror or err}") from None


# --- checking and importing classes --------------------------------------------------------------


def check_flavor_class(candidate: object, where: str) -> str:
    """The ``FLAVOR`` name of ``candidate``, or an error naming the recipe step it misses.

    A flavor is three steps: subclass ``BaseAlerter``, set ``FLAVOR``, implement ``post()`` (or
    ``deliver()``) and, if the channel can answer, ``ask()`` (or ``send_question``/``check_answer``).
    """
    from airflow_alerter.alerters.base import BaseAlerter

    if not isinstance(candidate, type):
        raise FlavorRegistrationError(f"{where} is not a class (it is a {type(candidate).__name__})")
    if not issubclass(candidate, BaseAlerter):
        raise FlavorRegistrationError(
            f"{where} is not a subclass of airflow_alerter.BaseAlerter (step 1: class MyAlerter(BaseAlerter))"
        )
    name = getattr(candidate, "FLAVOR", None)
    if not isinstance(name, str) or not name:
        raise FlavorRegistrationError(
            f'{where} does not set FLAVOR (step 2: a class variable such as FLAVOR = "my_flavor")'
        )
    if not _FLAVOR_NAME.fullmatch(name):
        raise FlavorRegistrationError(
            f"{where} has FLAVOR = {name!r}: a flavor name uses only letters, digits, '_', '-' and '.', "
            f"and starts with a letter or digit"
        )
    if candidate.post is BaseAlerter.post and candidate.deliver is BaseAlerter.deliver:
        raise FlavorRegistrationError(
            f"{where} does not implement post() (step 3: def post(self, message, params=None))"
        )
    return name


def normalize_target(path: str) -> str:
    """``package.module.Class`` or ``package.module:Class`` -> ``package.module:Class``."""
    path = path.strip()
    if not _CLASS_PATH.fullmatch(path):
        raise FlavorRegistrationError(
            f"{path!r} is not a class path: give it as package.module.ClassName (or package.module:ClassName)"
        )
    if ":" in path:
        return path
    module_name, _, attr = path.rpartition(".")
    return f"{module_name}:{attr}"


def import_target(target: str) -> type[BaseAlerter]:
    """Import ``package.module:Class`` (or ``package.module.Class``); errors say why it failed, in one line."""
    module_name, _, attr_path = normalize_target(target).partition(":")
    try:
        value: Any = import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name == err.name or module_name.startswith(f"{err.name}.")):
            raise FlavorRegistrationError(
                f"Cannot import module {module_name!r}: no module named {err.name!r}. Is its package installed "
                f"in this environment (pip install ...), or its folder on PYTHONPATH?"
            ) from None
        raise FlavorRegistrationError(f"Importing module {module_name!r} failed: {err}") from None
    except AlerterError as err:  # ours, e.g. a flavor class without post(): the message says it all
        raise FlavorRegistrationError(f"Importing module {module_name!r} failed: {err}") from None
    except Exception as err:
        raise FlavorRegistrationError(f"Importing module {module_name!r} failed: {type(err).__name__}: {err}") from None
    for attr in attr_path.split("."):
        if not hasattr(value, attr):
            raise FlavorRegistrationError(f"Module {module_name!r} has no attribute {attr_path!r}")
        value = getattr(value, attr)
    return value  # type: ignore[no-any-return]


def _class_target(alerter_class: type) -> str:
    return f"{alerter_class.__module__}:{alerter_class.__qualname__}"


# --- registering ---------------------------------------------------------------------------------


def register(alerter_class: type[BaseAlerter]) -> type[BaseAlerter]:
    """Make a flavor available by its ``FLAVOR`` name in this process; usable as a class decorator."""
    name = check_flavor_class(alerter_class, getattr(alerter_class, "__qualname__", repr(alerter_class)))
    _registered[name] = alerter_class
    return alerter_class


def register_path(path: str, *, force: bool = False) -> tuple[str, str]:
    """Check the class at ``path`` and record it in the registry file; returns ``(flavor name, target)``.

    The class is imported here exactly as a worker will import it, so a flavor that registers is one
    that loads. A name that another source already provides is refused unless ``force``: shadowing a
    built-in by accident would silently change where alerts go.
    """
    target = normalize_target(path)
    name = check_flavor_class(import_target(target), target)
    file = registry_path()
    flavors = _read_registry_file(file)
    if not force:
        _refuse_taken_name(name, target, flavors, file)
    flavors[name] = target
    _write_registry_file(file, flavors)
    return name, target


def _refuse_taken_name(name: str, target: str, in_file: dict[str, str], file: Path) -> None:
    if in_file.get(name) not in (None, target):
        raise FlavorRegistrationError(
            f"Flavor {name!r} is already registered in {file} as {in_file[name]}; run "
            f"'airflow-alerter flavor unregister {name}' first, or register with --force to replace it"
        )
    for source, others in ((SOURCE_ENTRY_POINT, entry_point_flavors()), (SOURCE_BUILTIN, BUILTIN_FLAVORS)):
        if others.get(name) not in (None, target):
            raise FlavorRegistrationError(
                f"Flavor name {name!r} is already taken by the {source} flavor {others[name]}; give your class "
                f"another FLAVOR, or register with --force to shadow it"
            )


def unregister_name(name: str) -> str:
    """Remove ``name`` from the registry file; returns the target it pointed to."""
    file = registry_path()
    flavors = _read_registry_file(file)
    if name not in flavors:
        source = flavor_sources().get(name)
        where = f"it is a {source} flavor" if source else "no flavor has that name"
        raise FlavorRegistrationError(
            f"Flavor {name!r} is not in the registry file {file} ({where}); only flavors added with "
            f"'airflow-alerter flavor register' can be unregistered"
        )
    target = flavors.pop(name)
    _write_registry_file(file, flavors)
    return target


# --- looking up ----------------------------------------------------------------------------------


def entry_point_flavors() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def flavor_targets() -> dict[str, tuple[str, str]]:
    """Every known flavor name -> (source, "module:Class") of the source that wins for it."""
    table = {name: (SOURCE_BUILTIN, target) for name, target in BUILTIN_FLAVORS.items()}
    table.update({name: (SOURCE_ENTRY_POINT, target) for name, target in entry_point_flavors().items()})
    table.update({name: (SOURCE_REGISTRY_FILE, target) for name, target in registry_file_flavors().items()})
    table.update({name: (SOURCE_REGISTERED, _class_target(cls)) for name, cls in _registered.items()})
    return table


def flavor_sources() -> dict[str, str]:
    """Every known flavor name and where it comes from ("builtin", "entry point", "registry file", "registered")."""
    return {name: source for name, (source, _) in flavor_targets().items()}


def flavor_names() -> list[str]:
    return sorted(flavor_targets())


def _load(name: str, source: str, target: str) -> type[BaseAlerter]:
    if source == SOURCE_REGISTERED:
        return _registered[name]
    try:
        alerter_class = import_target(target)
        check_flavor_class(alerter_class, target)
    except FlavorRegistrationError as err:
        where = f"registry file {registry_path()}" if source == SOURCE_REGISTRY_FILE else source
        raise FlavorLoadError(f"Alerter flavor {name!r} ({where}: {target}) cannot be loaded: {err}") from None
    return alerter_class


def get_flavor(name: str) -> type[BaseAlerter]:
    """The alerter class for ``name``: registered > registry file > entry points > built-ins."""
    if name in _registered:
        return _registered[name]
    found = flavor_targets().get(name)
    if found is None:
        raise UnknownFlavorError(name, flavor_names())
    return _load(name, *found)


def load_flavors() -> dict[str, tuple[str, str, type[BaseAlerter] | FlavorLoadError]]:
    """Every flavor: (source, target, its class or the error that stops it loading), for listings."""
    loaded: dict[str, tuple[str, str, type[BaseAlerter] | FlavorLoadError]] = {}
    for name, (source, target) in sorted(flavor_targets().items()):
        try:
            loaded[name] = (source, target, _load(name, source, target))
        except FlavorLoadError as err:
            loaded[name] = (source, target, err)
    return loaded


def flavors_that_can_ask() -> list[str]:
    """Flavors that can ask; a broken plugin is left out rather than hiding the ones that work."""
    return [
        name for name, (_, _, cls) in load_flavors().items() if not isinstance(cls, FlavorLoadError) and cls.can_ask()
    ]


def add_ask_hint(err: AlerterError) -> None:
    """Tell the reader of an :class:`AskNotSupported` which flavors can ask (the sensor and the CLI call this)."""
    if not any(hint.startswith(ASK_HINT_PREFIX) for hint in err.hints):
        err.add_hint(f"{ASK_HINT_PREFIX} {', '.join(flavors_that_can_ask()) or 'none installed'}.")
