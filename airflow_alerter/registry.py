"""Flavor name -> alerter class: entry points (ours and other packages'), the registry file and ``register()``.

Where a name is looked up, most explicit first (the first that knows the name wins):

1. ``register(MyAlerter)`` in this process (a DAG file or a plugin calling it);
2. the registry file written by ``airflow-alerter flavor register`` — one per Airflow installation,
   ``$AIRFLOW_HOME/airflow_alerter_flavors.json`` unless ``AIRFLOW_ALERTER_REGISTRY`` names another
   (the least preferred way: every machine that sends alerts must carry the file);
3. entry points of the group ``airflow_alerter.flavors`` declared by installed packages;
4. the same entry points of this package: the built-in flavors are declared in its pyproject.toml
   exactly as a plugin declares its own, so adding one is a module and one entry-point line.

A connection extra may also name a class directly, ``"flavor": "package.module:Class"``.

Each flavor class says which Airflow connection types it serves (``CONN_TYPES``); the map from a
type to its flavor is built from the discovered classes, never kept by hand. Discovery is cached per
process: entry points are scanned once per ``sys.path``, the registry file is read again only when
its modification time or size changes. Classes are imported only when asked for, so listing names
stays cheap and a broken third-party flavor cannot stop the built-in ones from loading. This module
stays import-light (stdlib only at module level, no Airflow): the hook, the CLI and
``get_provider_info`` all import it, and nothing here runs when a DAG file merely imports the package.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from importlib import import_module
from importlib.metadata import PackageNotFoundError, distribution, entry_points
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
SOURCE_CLASS_PATH = "class path"

#: the distribution whose own entry points are the built-in flavors
DISTRIBUTION = "airflow-alerter"

ASK_HINT_PREFIX = "Flavors that can ask:"

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


#: (path, modification time, size) of the registry file last read, and its table
_file_cache: tuple[tuple[str, int, int] | None, dict[str, str]] = (None, {})


def registry_file_flavors() -> dict[str, str]:
    """The flavors in the registry file; a damaged file is logged (once) and ignored so built-ins keep working.

    Read again only when the file's modification time or size changed: an alert costs one ``stat``.
    """
    global _file_cache
    path = registry_path()
    try:
        status = path.stat()
        stamp: tuple[str, int, int] | None = (str(path), status.st_mtime_ns, status.st_size)
    except OSError:
        stamp = None  # no file (or unreadable: _read_registry_file says why)
    if stamp is not None and _file_cache[0] == stamp:
        return dict(_file_cache[1])
    try:
        flavors = _read_registry_file(path)
    except RegistryFileError as err:
        log.warning("%s", err)
        flavors = {}
    _file_cache = (stamp, flavors)
    return dict(flavors)


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
    ``_deliver()``) and, to gate an ask sensor, ``_send_question()``/``_check_answer()`` (a blocking
    ``ask()`` alone serves only callers that can block; ``BaseAlerter.CAN_ASK`` tells which).
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
    if not candidate.defines("post", "deliver", "_deliver"):
        raise FlavorRegistrationError(
            f"{where} does not implement post() (step 3: def post(self, message, params=None))"
        )
    conn_types = getattr(candidate, "CONN_TYPES", ())
    if not isinstance(conn_types, tuple) or not all(isinstance(item, str) and item for item in conn_types):
        raise FlavorRegistrationError(
            f"{where} has CONN_TYPES = {conn_types!r}: give a tuple of Airflow connection types, "
            f'such as CONN_TYPES = ("my_service",), or leave it out'
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
    for source, others in ((SOURCE_ENTRY_POINT, entry_point_flavors()), (SOURCE_BUILTIN, builtin_flavors())):
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

#: sys.path at the last entry-point scan, and what it found: (name, "module:Class", distribution)
_scan_cache: tuple[tuple[str, ...] | None, list[tuple[str, str, str]]] = (None, [])
#: the flavor table the conn-type map was built from, and the map
_conn_type_cache: tuple[tuple[Any, ...] | None, dict[str, str]] = (None, {})


def _canonical(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _scan_entry_points() -> list[tuple[str, str, str]]:
    """Every ``airflow_alerter.flavors`` entry point on ``sys.path``, scanned once per ``sys.path``."""
    global _scan_cache
    key = tuple(sys.path)
    if _scan_cache[0] != key:
        found = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            found.append((ep.name, ep.value, _canonical(dist.name) if dist is not None else ""))
        _scan_cache = (key, found)
    return _scan_cache[1]


#: sys.path when this package's own metadata was last read, and its flavors
_builtin_cache: tuple[tuple[str, ...] | None, dict[str, str]] = (None, {})


def builtin_flavors() -> dict[str, str]:
    """This package's own flavors: the entry points its pyproject.toml declares (read from its own metadata
    only, no scan of every installed package; once per ``sys.path``)."""
    global _builtin_cache
    key = tuple(sys.path)
    if _builtin_cache[0] != key:
        try:
            eps = distribution(DISTRIBUTION).entry_points
            flavors = {ep.name: ep.value for ep in eps if ep.group == ENTRY_POINT_GROUP}
        except PackageNotFoundError:  # imported from a source tree that was never installed
            flavors = {}
        _builtin_cache = (key, flavors)
    return dict(_builtin_cache[1])


def entry_point_flavors() -> dict[str, str]:
    """Flavors other installed packages declare (this package's own are :func:`builtin_flavors`)."""
    own = _canonical(DISTRIBUTION)
    return {name: target for name, target, dist in _scan_entry_points() if dist != own}


def flavor_targets() -> dict[str, tuple[str, str]]:
    """Every known flavor name -> (source, "module:Class") of the source that wins for it."""
    table = {name: (SOURCE_BUILTIN, target) for name, target in builtin_flavors().items()}
    table.update({name: (SOURCE_ENTRY_POINT, target) for name, target in entry_point_flavors().items()})
    table.update({name: (SOURCE_REGISTRY_FILE, target) for name, target in registry_file_flavors().items()})
    table.update({name: (SOURCE_REGISTERED, _class_target(cls)) for name, cls in _registered.items()})
    return table


def flavor_sources() -> dict[str, str]:
    """Every known flavor name and where it comes from ("builtin", "entry point", "registry file", "registered")."""
    return {name: source for name, (source, _) in flavor_targets().items()}


def flavor_names() -> list[str]:
    return sorted(flavor_targets())


def is_class_path(name: str) -> bool:
    """``package.module:Class`` names a class directly; flavor names never hold a colon."""
    return ":" in name


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
    """The alerter class for ``name`` (registered > registry file > entry points > built-ins), or for a
    class path ``package.module:Class``."""
    if name in _registered:
        return _registered[name]
    if is_class_path(name):
        return _load(name, SOURCE_CLASS_PATH, normalize_target(name))
    found = flavor_targets().get(name)
    if found is None:
        err = UnknownFlavorError(name, flavor_names())
        if not builtin_flavors():
            err.add_hint(
                f"Not even the built-in flavors were found: they are entry points of the {DISTRIBUTION} "
                f"distribution, so install it (pip install airflow-alerter, or pip install -e . in a checkout)."
            )
        raise err
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


_SOURCE_RANK = {SOURCE_BUILTIN: 0, SOURCE_ENTRY_POINT: 1, SOURCE_REGISTRY_FILE: 2, SOURCE_REGISTERED: 3}


def conn_type_flavors() -> dict[str, str]:
    """Airflow connection type -> the flavor serving it, from each flavor's ``CONN_TYPES``.

    Our own ``alerter`` type names its flavor in the extra ``flavor`` instead. Two flavors claiming
    one type: the more explicit source wins (as for names), then the later name. A flavor that does
    not load is left out (``airflow-alerter flavor list`` shows why). Cached until the flavor table
    changes.
    """
    global _conn_type_cache
    targets = flavor_targets()
    key = tuple(sorted((name, source, target) for name, (source, target) in targets.items()))
    if _conn_type_cache[0] == key:
        return dict(_conn_type_cache[1])
    served: dict[str, str] = {}
    for name, (source, target) in sorted(targets.items(), key=lambda item: (_SOURCE_RANK[item[1][0]], item[0])):
        try:
            alerter_class = _load(name, source, target)
        except FlavorLoadError as err:
            log.debug("%s", err)
            continue
        served.update({conn_type: name for conn_type in alerter_class.CONN_TYPES})
    _conn_type_cache = (key, served)
    return dict(served)


def __getattr__(name: str) -> Any:
    """``BUILTIN_FLAVORS`` and ``CONN_TYPE_FLAVORS`` were hand-kept tables; they are derived now."""
    if name == "BUILTIN_FLAVORS":
        return builtin_flavors()
    if name == "CONN_TYPE_FLAVORS":
        return conn_type_flavors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_ask_hint(err: AlerterError) -> None:
    """Tell the reader of an :class:`AskNotSupported` which flavors can ask (the sensor and the CLI call this)."""
    if not any(hint.startswith(ASK_HINT_PREFIX) for hint in err.hints):
        err.add_hint(f"{ASK_HINT_PREFIX} {', '.join(flavors_that_can_ask()) or 'none installed'}.")
