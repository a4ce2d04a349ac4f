"""The ``airflow-alerter`` command: list, describe and register flavors; post, ask and test through a connection.

Commands that only look at flavors never import Airflow, so they answer at once and work where no
Airflow home exists. ``post``, ``ask`` and ``test-connection`` go through ``AlerterHook``, exactly as
a task does, so what works here works in a DAG. argparse, not click: Airflow's own CLI uses it, and
it is in the standard library.

Expected failures (an unknown connection, a refused login, a rejected question) end with one line
on stderr and an exit code a script can act on; only a bug prints a traceback, and only when asked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_alerter import registry
from airflow_alerter.exceptions import CommandError

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

    from airflow_alerter.alerters.base import BaseAlerter
    from airflow_alerter.models import AskResult

PROG = "airflow-alerter"

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_TIMED_OUT = 2
EXIT_FAILED = 3
EXIT_CONFIG = 4
EXIT_USAGE = 64
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success (ask: the question was approved)
  {EXIT_REJECTED}    ask: the question was rejected
  {EXIT_TIMED_OUT}    ask: no answer before --timeout
  {EXIT_FAILED}    not delivered, or the connection check failed (the service refused or was unreachable)
  {EXIT_CONFIG}    configuration error: unknown connection or flavor, invalid connection, bad registration,
       or the flavor cannot ask
  {EXIT_USAGE}   usage error (bad command line)
  {EXIT_BUG}   unexpected error: a bug; rerun with --traceback and report it
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

TEST_MESSAGE_TITLE = "airflow-alerter test message"


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a bad command line, which ``ask`` uses for "timed out"; use EX_USAGE (64)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# --- flavor commands (no Airflow) ----------------------------------------------------------------


def _print_table(rows: Sequence[Sequence[str]], indent: str = "") -> None:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    for row in rows:
        print(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def flavor_rows() -> list[dict[str, Any]]:
    """One row per flavor for ``flavor list``; a flavor that cannot load is shown, with a warning, not hidden."""
    rows = []
    for name, (source, target, found) in registry.load_flavors().items():
        if isinstance(found, registry.FlavorLoadError):
            print(f"{PROG}: warning: {found}", file=sys.stderr)
            can_ask = None
        else:
            can_ask = found.can_ask()
        rows.append({"name": name, "source": source, "can_ask": can_ask, "class": target, "loads": can_ask is not None})
    return rows


def cmd_flavor_list(args: argparse.Namespace) -> int:
    rows = flavor_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    asks = {True: "yes", False: "no", None: "?"}
    _print_table(
        [["NAME", "SOURCE", "CAN ASK", "CLASS"]]
        + [
            [row["name"], row["source"], asks[row["can_ask"]], row["class"] + ("" if row["loads"] else " (broken)")]
            for row in rows
        ]
    )
    return EXIT_OK


def _type_name(annotation: Any) -> str:
    """``list[str] | None`` rather than ``typing.Optional[typing.List[str]]``: what a user writes."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Annotated:  # validators are not part of what a user writes
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if args else getattr(origin, "__name__", "?")
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def _is_secret(annotation: Any) -> bool:
    import typing

    from pydantic import SecretBytes, SecretStr

    return annotation in (SecretStr, SecretBytes) or any(_is_secret(arg) for arg in typing.get_args(annotation))


def _field_row(name: str, field: FieldInfo) -> dict[str, Any]:
    """One field as ``flavor describe`` shows it; a secret's default is never shown."""
    secret = _is_secret(field.annotation)
    required = field.is_required()
    default = None if required else field.get_default(call_default_factory=True)
    if secret and default is not None:
        default = "***"
    return {
        "name": field.alias or name,
        "type": _type_name(field.annotation),
        "default": default,
        "required": required,
        "secret": secret,
        "description": field.description or "",
    }


def describe_model(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields (name, type, default, required, secret), straight from pydantic: one source of truth."""
    return {
        "model": model.__name__,
        "any_keys": model.model_config.get("extra") == "allow",
        "fields": [_field_row(name, field) for name, field in model.model_fields.items()],
    }


def describe_flavor(name: str) -> dict[str, Any]:
    flavor = registry.get_flavor(name)
    if registry.is_class_path(name):
        source, target = registry.SOURCE_CLASS_PATH, registry.normalize_target(name)
        conn_types: list[str] = []
    else:
        source, target = registry.flavor_targets()[name]
        conn_types = sorted(conn_type for conn_type, served in registry.conn_type_flavors().items() if served == name)
    doc = (flavor.__doc__ or "").strip()
    return {
        "name": name,
        "source": source,
        "class": target,
        "summary": doc.splitlines()[0] if doc else "",
        "can_ask": flavor.can_ask(),
        "connection_types": [*conn_types, "alerter"],
        "config": describe_model(flavor.Config),
        "settings": describe_model(flavor.Settings),
        "parameters": describe_model(flavor.Parameters),
    }


def _show(value: Any) -> str:
    return value if value == "***" else json.dumps(value, default=str)


def _print_model(label: str, where: str, described: dict[str, Any]) -> None:
    print(f"\n{label} ({described['model']}), {where}:")
    if not described["fields"]:
        print("  any keys (the flavor declares no fields)" if described["any_keys"] else "  (none)")
        return
    rows = [["NAME", "TYPE", "DEFAULT", "REQUIRED", "SECRET", "DESCRIPTION"]]
    for field in described["fields"]:
        rows.append(
            [
                field["name"],
                field["type"],
                "-" if field["required"] else _show(field["default"]),
                "yes" if field["required"] else "no",
                "yes" if field["secret"] else "no",
                field["description"],
            ]
        )
    _print_table(rows, indent="  ")
    if described["any_keys"]:
        print("  (other keys are accepted too)")


def cmd_flavor_describe(args: argparse.Namespace) -> int:
    described = describe_flavor(args.name)
    if args.json:
        print(json.dumps(described, indent=2, default=str))
        return EXIT_OK
    print(f"Flavor {described['name']} ({described['source']}: {described['class']})")
    if described["summary"]:
        print(described["summary"])
    print(f"Can ask: {'yes' if described['can_ask'] else 'no (post only)'}")
    types = ", ".join(
        t if t != "alerter" else f'alerter (extra "flavor": "{args.name}")' for t in described["connection_types"]
    )
    print(f"Airflow connection types: {types}")
    _print_model("Config", "from the connection's extras (and host, port, login, password)", described["config"])
    _print_model("Settings", "per task: settings={...}", described["settings"])
    _print_model("Parameters", "per call: alerter_params={...} or --param KEY=VALUE", described["parameters"])
    return EXIT_OK


def cmd_flavor_register(args: argparse.Namespace) -> int:
    name, target = registry.register_path(args.path, force=args.force)
    print(f"Registered flavor {name!r} ({target}) in {registry.registry_path()}")
    print(f'Use it with a connection of type "alerter" and the extra {{"flavor": "{name}", ...}}.')
    return EXIT_OK


def cmd_flavor_unregister(args: argparse.Namespace) -> int:
    target = registry.unregister_name(args.name)
    print(f"Unregistered flavor {args.name!r} ({target}) from {registry.registry_path()}")
    return EXIT_OK


# --- connection commands (through AlerterHook, as a task does) -------------------------------------


def _parse_params(pairs: Sequence[str]) -> dict[str, Any] | None:
    """``--param key=value``: values that parse as JSON (numbers, lists, true) are taken as JSON."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandError(EXIT_USAGE, f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params or None


def _alerter(conn_id: str) -> BaseAlerter:
    # Airflow's own CLI commands run in the "server" context, where connections stored in the
    # metadata DB are visible as well as env vars and secrets backends; so does this admin tool.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    from airflow_alerter._compat import quiet_airflow_startup
    from airflow_alerter.hooks.alerter import AlerterHook

    quiet_airflow_startup()  # again: importing Airflow put its own warning filters in front of ours
    return AlerterHook(conn_id).get_alerter()


def _message(title: str | None, body: str) -> Any:
    """The message to send; a bad title (two lines) is the command line's fault, so a usage error."""
    from airflow_alerter.alerters.base import AlerterConfigError, validate_model
    from airflow_alerter.models import AlerterMessage

    text = sys.stdin.read() if body == "-" else body
    try:
        return validate_model(AlerterMessage, {"title": title or "", "body": text}, "message")
    except AlerterConfigError as err:
        raise CommandError(EXIT_USAGE, str(err)) from None


def cmd_post(args: argparse.Namespace) -> int:
    message = _message(args.title, args.message)
    alerter = _alerter(args.conn_id)
    alerter.deliver(message, alerter.coerce_params(_parse_params(args.param)))
    print(f"Posted to {args.conn_id!r} ({alerter.FLAVOR}).")
    return EXIT_OK


def _describe_result(result: AskResult) -> str:
    parts = [result.status.value.replace("_", " ")]
    if result.responder:
        parts.append(f"by {result.responder}")
    if result.text:
        parts.append(f"({result.text!r})")
    if result.reason:
        parts.append(f"- {result.reason}")
    return " ".join(parts)


def cmd_ask(args: argparse.Namespace) -> int:
    from airflow_alerter.models import AskStatus

    question = _message(args.title, args.question)
    alerter = _alerter(args.conn_id)
    params = alerter.coerce_params(_parse_params(args.param))
    if not alerter.can_ask():
        # A ZenML-style flavor with only a blocking ask() keeps its own timeout; for a post-only
        # flavor the default ask() raises AskNotSupported, reported as before.
        approved = alerter.ask(question, params)
        print("approved" if approved else "not approved")
        return EXIT_OK if approved else EXIT_REJECTED
    result = alerter.ask_for_result(question, params, timeout=args.timeout, poll_interval=args.poll_interval)
    print(_describe_result(result))
    codes = {AskStatus.APPROVED: EXIT_OK, AskStatus.REJECTED: EXIT_REJECTED, AskStatus.TIMED_OUT: EXIT_TIMED_OUT}
    return codes.get(result.status, EXIT_FAILED)


def cmd_test_connection(args: argparse.Namespace) -> int:
    from airflow_alerter.models import AlerterMessage

    alerter = _alerter(args.conn_id)
    ok, reason = alerter.test_connection()
    print(f"{'OK' if ok else 'FAILED'}: connection {args.conn_id!r} ({alerter.FLAVOR}): {reason}")
    if not ok:
        return EXIT_FAILED
    if args.send:
        alerter.deliver(
            AlerterMessage(
                title=TEST_MESSAGE_TITLE,
                body=f"Sent by '{PROG} test-connection {args.conn_id} --send' to check that the connection works.",
            )
        )
        print(f"Sent a test message through {args.conn_id!r}.")
    return EXIT_OK


def cmd_responder(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from airflow_alerter.responder import AirflowAPI, Responder

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own_log = logging.getLogger("airflow_alerter")
    own_log.addHandler(handler)
    own_log.setLevel(logging.INFO)
    own_log.propagate = False  # Airflow's own handlers would print each line a second time
    api, conn_ids = AirflowAPI(args.api_url), args.conn_id or _configured_conn_ids()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())  # stop as Ctrl-C does
    if conn_ids:
        from airflow_alerter.responder.push import PushResponder

        if args.once:
            raise CommandError(EXIT_USAGE, "--once: only the polling responder (without --conn-id) serves once")
        PushResponder(api, conn_ids, interval=args.interval).run(stopping)
    else:
        responder = Responder(api, interval=args.interval)
        if args.once:
            print(f"Closed {responder.serve_once()} request(s).")
            return EXIT_OK
        responder.run(stopping)
    print("Responder stopped.", flush=True)
    return EXIT_OK


def _configured_conn_ids() -> list[str]:
    """``[alerter] responder_conn_ids`` (comma-separated) of Airflow's configuration, when set."""
    from airflow_alerter._compat import conf

    value = conf.get("alerter", "responder_conn_ids", fallback="") or ""
    return [conn_id.strip() for conn_id in value.split(",") if conn_id.strip()]


# --- the parser ----------------------------------------------------------------------------------


def _add_command(
    subparsers: Any, name: str, handler: Callable[[argparse.Namespace], int], help: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(handler=handler)
    return parser


def _add_param_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a per-call flavor parameter (repeatable); VALUE is JSON when it parses as JSON, "
        "e.g. --param 'recipient_email=[\"a@example.com\"]'",
    )


def build_parser() -> argparse.ArgumentParser:
    from airflow_alerter import __version__

    parser = _Parser(
        prog=PROG,
        description="Post messages and ask questions through Airflow alerter connections; manage alerter flavors.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--traceback", action="store_true", help="on an unexpected error, print the traceback")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    flavor_help = "list, describe and register alerter flavors"
    flavor = commands.add_parser("flavor", help=flavor_help, description=flavor_help)
    flavor_commands = flavor.add_subparsers(title="flavor commands", metavar="COMMAND", required=True)
    listing = _add_command(
        flavor_commands,
        "list",
        cmd_flavor_list,
        "list every flavor: name, where it comes from, whether it can ask, its class",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    describe = _add_command(
        flavor_commands,
        "describe",
        cmd_flavor_describe,
        "show a flavor's connection config, task settings and call parameters",
    )
    describe.add_argument("name", metavar="NAME", help="flavor name, as in 'flavor list'")
    describe.add_argument("--json", action="store_true", help="print JSON instead of tables")
    register = _add_command(
        flavor_commands,
        "register",
        cmd_flavor_register,
        "check a custom flavor class and record it in the registry file",
        epilog=f"The registry file is ${registry.REGISTRY_ENV_VAR}, else $AIRFLOW_HOME/{registry.REGISTRY_FILE_NAME}\n"
        "(AIRFLOW_HOME defaults to ~/airflow). The class must be importable where tasks run too.",
    )
    register.add_argument("path", metavar="PATH", help="the class, as package.module.ClassName")
    register.add_argument(
        "--force", action="store_true", help="replace a flavor of the same name (in the registry file, or a built-in)"
    )
    unregister = _add_command(
        flavor_commands, "unregister", cmd_flavor_unregister, "remove a flavor from the registry file"
    )
    unregister.add_argument("name", metavar="NAME", help="flavor name, as in 'flavor list'")

    post = _add_command(
        commands,
        "post",
        cmd_post,
        "post a message through an alerter connection",
        epilog="exit codes: 0 posted, 3 not delivered, 4 configuration error, 64 usage error",
    )
    post.add_argument("--conn-id", required=True, help="the Airflow connection to post through")
    post.add_argument("--title", help="a short title (email subject, embed title)")
    post.add_argument("message", metavar="MESSAGE", help="the message body; '-' reads it from stdin")
    _add_param_option(post)

    ask = _add_command(
        commands,
        "ask",
        cmd_ask,
        "ask a yes/no question and wait for the answer",
        epilog="exit codes: 0 approved, 1 rejected, 2 timed out, 3 the answer could not be read,\n"
        "            4 configuration error (or the flavor cannot ask), 64 usage error",
    )
    ask.add_argument("--conn-id", required=True, help="the Airflow connection to ask through")
    ask.add_argument("--title", help="a short title for the question")
    ask.add_argument("question", metavar="QUESTION", help="the question; '-' reads it from stdin")
    ask.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="seconds to wait for an answer (default: %(default)g)",
    )
    ask.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        metavar="S",
        help="seconds between answer checks (default: the flavor's own)",
    )
    _add_param_option(ask)

    test = _add_command(
        commands,
        "test-connection",
        cmd_test_connection,
        "check a connection's credentials without sending anything (or send a test message with --send)",
        epilog="exit codes: 0 OK, 3 check failed or not delivered, 4 configuration error, 64 usage error",
    )
    test.add_argument("conn_id", metavar="ID", help="the Airflow connection to check")
    test.add_argument("--send", action="store_true", help="also post a short test message")

    responder = _add_command(
        commands,
        "responder",
        cmd_responder,
        "record chat answers (button clicks, replies, reactions) to approval gates and HITL requests in Airflow",
        epilog="Runs until stopped, like `airflow triggerer`. With --conn-id (or [alerter] responder_conn_ids) "
        "it holds one pushed connection per named connection (Slack Socket Mode: extra app_token; Discord "
        "Gateway: the bot token) and records clicks as they happen; without, it polls the chats of the "
        "HITL requests every --interval seconds. It calls Airflow's REST API as a user: set "
        "AIRFLOW_ALERTER_API_TOKEN, or AIRFLOW_ALERTER_API_USERNAME and AIRFLOW_ALERTER_API_PASSWORD "
        "(never on the command line); the chat connections come from Airflow as for any task.",
    )
    responder.add_argument("--conn-id", action="append", metavar="ID",
                           help="an asking connection to serve over a pushed connection (repeat for more)")
    responder.add_argument("--api-url", required=True, metavar="URL",
                           help="the Airflow api-server, e.g. http://airflow:8080 (its [api] base_url)")
    responder.add_argument("--interval", type=float, default=30.0, metavar="S",
                           help="seconds between passes over the pending requests: chat checks when polling, "
                           "record reads when pushed (default: %(default)s)")
    responder.add_argument("--once", action="store_true", help="serve every pending request once, then exit")
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _expected(err: Exception) -> tuple[int, str] | None:
    """The exit code and one-line message of an expected error, or None for a bug."""
    from pydantic import ValidationError

    from airflow_alerter.alerters.base import config_error
    from airflow_alerter.exceptions import AlerterConfigError, AlerterError, AskNotSupported

    if isinstance(err, CommandError):
        return err.code, _one_line(err)
    if isinstance(err, ValidationError):  # a custom flavor validating its own input: never echo the input
        return EXIT_CONFIG, _one_line(config_error(err, err.title))
    if isinstance(err, AskNotSupported):
        registry.add_ask_hint(err)
        return EXIT_CONFIG, _one_line(err)
    if isinstance(err, AlerterConfigError):  # flavor errors (unknown, unloadable, bad registration) too
        return EXIT_CONFIG, _one_line(err)
    if isinstance(err, AlerterError):
        return EXIT_FAILED, _one_line(err)
    if type(err).__name__ == "AirflowNotFoundException":  # an undefined connection; no Airflow import needed
        return EXIT_CONFIG, _one_line(err)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to ``sys.exit``)."""
    from airflow_alerter._compat import quiet_airflow_startup

    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_airflow_startup()  # before any command imports Airflow: an error stays one line on stderr
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        expected = _expected(err)
        if expected is not None:
            print(f"{PROG}: error: {expected[1]}", file=sys.stderr)
            return expected[0]
        if args.traceback:
            traceback.print_exc()
        print(
            f"{PROG}: unexpected error: {type(err).__name__}: {_one_line(err)} "
            f"(a bug? rerun with --traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_BUG
    return code


if __name__ == "__main__":
    sys.exit(main())
