"""Every error airflow-alerter raises on purpose, in one tree (as httpx's ``_exceptions.py``).

```
AlerterError                          root: ``except AlerterError`` catches all of them
├── AlerterConfigError (ValueError)   a connection, setting or parameter is missing or invalid
│   └── FlavorError                   a flavor cannot be found, registered or loaded
│       ├── UnknownFlavorError (LookupError)
│       ├── FlavorRegistrationError (TypeError)   a class that is not a flavor, or a name taken
│       ├── FlavorLoadError (ImportError)         a known flavor's class no longer imports
│       └── RegistryFileError                     the registry file cannot be read or written
├── AlerterDeliveryError              a message was not delivered; the reason, never a secret
│   └── OutOfTime (TimeoutError)      still sending when a callback's time ran out
├── AskNotSupported (NotImplementedError)   the flavor posts but cannot carry an answer back
├── ImapError                         a mailbox could not be read (smtp_email's answers by reply)
├── ReplyUnreadable (ValueError)      a reply to an email question cannot be read as an answer
└── CommandError                      an expected failure of the ``airflow-alerter`` command
```

``alerters.http.HttpError`` (a failed HTTP call, turned into a delivery error or an ``AskResult``
by the flavors) also derives from :class:`AlerterError`; it stays beside its client.

Errors carry facts as attributes (``flavor``, ``name``, ``code``); whoever reports one adds what
only it knows: the hook names the connection (:attr:`AlerterError.conn_id`), the sensor and the CLI
add the flavors that can ask (:meth:`AlerterError.add_hint`). So building an error never does I/O,
and this module imports nothing of the package: anything can import it without a cycle.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlerterConfigError",
    "AlerterDeliveryError",
    "AlerterError",
    "AskNotSupported",
    "CommandError",
    "FlavorError",
    "FlavorLoadError",
    "FlavorRegistrationError",
    "ImapError",
    "OutOfTime",
    "RegistryFileError",
    "ReplyUnreadable",
    "UnknownFlavorError",
]


class AlerterError(Exception):
    """Base of every error this package raises on purpose.

    ``str(err)`` is the message, prefixed with ``Connection 'id': `` once a caller set :attr:`conn_id`,
    and followed by the hints callers added.
    """

    #: the Airflow connection the error happened with, set by the hook that resolved it
    conn_id: str | None = None
    #: sentences callers added for the reader (what to do, what exists instead)
    hints: tuple[str, ...] = ()

    def add_hint(self, hint: str) -> None:
        """Add a sentence for the reader; ``str(err)`` shows it after the message."""
        self.hints = (*self.hints, hint)

    def __str__(self) -> str:
        text = " ".join([super().__str__(), *self.hints]).strip()
        return f"Connection {self.conn_id!r}: {text}" if self.conn_id else text

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle facts and hints too, without calling ``__init__`` again with the finished message."""
        return _restore, (type(self), self.args, dict(self.__dict__))


def _restore(cls: type[AlerterError], args: tuple[Any, ...], state: dict[str, Any]) -> AlerterError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class AlerterConfigError(AlerterError, ValueError):
    """A connection, setting or parameter is missing or invalid; the message names the field."""


class AlerterDeliveryError(AlerterError):
    """A message could not be delivered; the message says why (never with a secret in it)."""


class AskNotSupported(AlerterError, NotImplementedError):
    """The flavor can post but cannot carry an answer back; :attr:`flavor` names it."""

    def __init__(self, flavor: str) -> None:
        super().__init__(f"The {flavor!r} alerter flavor cannot ask questions (post only).")
        self.flavor = flavor


class ImapError(AlerterError):
    """Reading a mailbox over IMAP failed: refused, TLS, login, folder, a command, or the connection broke.

    The message names the server (``host:port``), the login and the folder, and gives one line of
    reason; it never holds the password. The facts stay as attributes (:attr:`reason` without them).
    """

    def __init__(self, reason: str, *, host: str, port: int, login: str, folder: str) -> None:
        super().__init__(f"IMAP server {host}:{port} (login {login!r}, folder {folder!r}): {reason}")
        self.reason, self.host, self.port, self.login, self.folder = reason, host, port, login, folder


class ReplyUnreadable(AlerterError, ValueError):
    """A reply that cannot be read as an answer: too large, or without text. Says why, never what it held."""


class OutOfTime(AlerterDeliveryError, TimeoutError):
    """Delivery was still running when the callback's time ran out."""


class CommandError(AlerterError):
    """An expected failure of the command line: printed as one line, ends the command with :attr:`code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class FlavorError(AlerterConfigError):
    """Base of the flavor registry's errors; each message says what is wrong and what to do."""


class UnknownFlavorError(FlavorError, LookupError):
    """No source knows the flavor :attr:`name`; :attr:`known` lists the names that exist."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(f"Unknown alerter flavor {name!r}. Known flavors: {', '.join(known)}.")
        self.name = name
        self.known = tuple(known)


class FlavorRegistrationError(FlavorError, TypeError):
    """A class cannot be a flavor (not importable, not an alerter, no FLAVOR, no post()), or its name is taken."""


class FlavorLoadError(FlavorError, ImportError):
    """A known flavor's class cannot be imported any more (a plugin broke, or its package was removed)."""


class RegistryFileError(FlavorError):
    """The registry file cannot be read or written; the message names the file."""
