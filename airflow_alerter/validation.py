"""Input checks shared by the models: one place that decides what is unsafe, with errors that name the field.

Header injection is the classic alerting bug: a task's error text flows into a subject line and a
CR/LF in it adds headers. We refuse such values instead of silently stripping them, so nothing a
user wrote is lost without them knowing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

# Every character str.splitlines() breaks on, plus NUL: Python's email headers treat all of them as
# line breaks (found by a property test: a title holding "\x1e" made the header fail to build).
_CONTROL_CHARS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00]")
# addr-spec as mail servers accept it in practice: one @, no spaces or control characters,
# a dotted or bare domain (internal hosts such as ``alerts@mailhub`` are legitimate).
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\\ud800-\udfff]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate (``"\\udcff"``: undecodable bytes) replaced by U+FFFD.

    Strings, and the keys and values of dicts and lists within, are cleaned; other values are
    returned as they are. Nothing else changes, so valid text (emoji, RTL) is untouched.
    """
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_lone_surrogates(key): replace_lone_surrogates(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(replace_lone_surrogates(item) for item in value)
    return value


def reject_control_chars(value: str, field: str) -> str:
    """Return ``value`` unchanged, or raise naming ``field`` if it holds CR, LF or NUL."""
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{field} must be a single line: CR, LF, other line separators and NUL are not allowed")
    return value


def one_line(value: str) -> str:
    """``value`` with its line breaks (and NULs) turned into single spaces: a title a template spread over lines."""
    if not _CONTROL_CHARS.search(value):
        return value
    return " ".join(part.strip() for part in _CONTROL_CHARS.split(value) if part.strip())


def email_address(value: str, field: str) -> str:
    """Validate one email address (addr-spec), naming the field in the error."""
    address = reject_control_chars(value.strip(), field)
    if not _ADDRESS.match(address) or ".." in address:
        raise ValueError(f"{field}: {address!r} is not a valid email address")
    return address


def email_address_list(value: str | Iterable[str] | None, field: str) -> list[str]:
    """Accept one address, a comma/semicolon separated string, or a list (as Airflow's ``email`` does)."""
    if value is None:
        return []
    items = re.split(r"[,;]", value) if isinstance(value, str) else list(value)
    return [email_address(item, field) for item in items if item and item.strip()]


#: Airflow's limit on a Variable's key (its ``ID_LEN``)
VARIABLE_KEY_LIMIT = 250


def bounded_key(name: str, prefix: str, limit: int = VARIABLE_KEY_LIMIT) -> str:
    """``name`` when it fits ``limit`` characters, else ``prefix`` and a hash of ``name``.

    Keys built from dag, run and task ids (each up to 250 characters) can pass Airflow's limit on
    Variable keys; the readable form is kept whenever it fits, so existing keys stay valid.
    """
    if len(name) <= limit:
        return name
    return f"{prefix}.{hashlib.sha256(name.encode()).hexdigest()[:32]}"
