"""The ``airflow-alerter`` command, run as users run it: each command, its output, its exit code."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.cli import CLI, EXAMPLE_FLAVOR_CLASS, CliResult, RunCli
from tests.plugins.secrets import register_secret
from tests.plugins.smtp import SMTP_PASSWORD
from tests.servers.smtp import LocalSMTPServer, free_port

DefineConn = Callable[..., str]

TOKEN_DEFAULT = "default-Tok3n-never-shown"
register_secret(TOKEN_DEFAULT)

ODD_FLAVORS = f'''
from pydantic import BaseModel, Field, SecretStr

from airflow_alerter import BaseAlerter


class TokenConfig(BaseModel):
    channel: str = Field(description="where messages go")
    token: SecretStr = SecretStr("{TOKEN_DEFAULT}")


class TokenAlerter(BaseAlerter):
    """Posts with a token (a flavor with a secret field)."""

    FLAVOR = "with_token"
    Config = TokenConfig

    def post(self, message, params=None):
        return True


class AlwaysYes(BaseAlerter):
    """A ZenML-style flavor: a blocking ask() and nothing else."""

    FLAVOR = "always_yes"

    def post(self, message, params=None):
        return True

    def ask(self, question, params=None):
        return True


class BuggyAlerter(BaseAlerter):
    FLAVOR = "buggy"

    def post(self, message, params=None):
        raise RuntimeError("bug in the flavor")
'''


def expect_error(result: CliResult, code: int, message: str) -> None:
    """An expected failure: the exit code, and one line on stderr with the reason (no traceback)."""
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("airflow-alerter: error: "), result.err
    assert message in lines[0]


@pytest.fixture
def odd_flavors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: RunCli) -> None:
    """Flavors ``with_token`` (a secret default), ``always_yes`` (only ask()) and ``buggy`` (post raises)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "odd_flavors.py").write_text(ODD_FLAVORS)
    monkeypatch.setenv("PYTHONPATH", str(folder))
    for name in ("TokenAlerter", "AlwaysYes", "BuggyAlerter"):
        assert cli("flavor", "register", f"odd_flavors.{name}").code == 0


@pytest.fixture
def team_log(tmp_path: Path, airflow_conn: DefineConn, example_flavor_on_path: Path, cli: RunCli) -> Path:
    """Connection ``team_log``: the example jsonl_file flavor, registered with the CLI, writing to a temp file."""
    assert cli("flavor", "register", EXAMPLE_FLAVOR_CLASS).code == 0
    path = tmp_path / "alerts.jsonl"
    airflow_conn("team_log", "alerter", extra={"flavor": "jsonl_file", "path": str(path)})
    return path


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --- help and usage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["flavor"],
        ["flavor", "list"],
        ["flavor", "describe"],
        ["flavor", "register"],
        ["flavor", "unregister"],
        ["post"],
        ["ask"],
        ["test-connection"],
        ["responder"],
    ],
)
def test_every_command_has_help(cli: RunCli, command: list[str]) -> None:
    result = cli(*command, "--help")

    assert result.code == 0 and result.out.startswith("usage: airflow-alerter")


def test_top_level_help_documents_every_exit_code(cli: RunCli) -> None:
    help_text = cli("--help").out

    for line in (
        "0    success",
        "1    ask: the question was rejected",
        "2    ask: no answer before --timeout",
        "3    not delivered",
        "4    configuration error",
        "64   usage error",
        "70   unexpected error",
    ):
        assert line in help_text


def test_responder_help_says_where_its_credentials_come_from(cli: RunCli) -> None:
    help_text = " ".join(cli("responder", "--help").out.split())

    assert "AIRFLOW_ALERTER_API_TOKEN" in help_text and "never on the command line" in help_text


def test_responder_help_names_the_pushed_connections_and_their_tokens(cli: RunCli) -> None:
    help_text = " ".join(cli("responder", "--help").out.split())

    assert "--conn-id ID" in help_text and "Socket Mode: extra app_token" in help_text
    assert "[alerter] responder_conn_ids" in help_text


def test_the_pushed_responder_refuses_once_as_a_usage_error(cli: RunCli) -> None:
    result = cli("responder", "--api-url", "http://127.0.0.1:9", "--conn-id", "ml_slack", "--once")

    assert result.code == 64 and "--once" in result.err


def test_a_pushed_connection_for_a_flavor_without_one_is_refused_by_name(
    cli: RunCli, airflow_conn: Callable[..., str]
) -> None:
    airflow_conn("team_hook", "alerter", extra={"flavor": "webhook", "webhook_url": "https://hooks.example.com/x"})

    result = cli("responder", "--api-url", "http://127.0.0.1:9", "--conn-id", "team_hook")

    assert result.code == 4 and "--conn-id team_hook: the webhook flavor has no pushed connection" in result.err


def test_ask_help_lists_its_exit_codes(cli: RunCli) -> None:
    assert "exit codes: 0 approved, 1 rejected, 2 timed out" in cli("ask", "--help").out


@pytest.mark.parametrize(
    "command", [[], ["flavor"], ["post", "hello"], ["ask", "--conn-id", "x", "q", "--timeout", "soon"]]
)
def test_bad_command_line_is_a_usage_error_not_a_timeout(cli: RunCli, command: list[str]) -> None:
    result = cli(*command)

    assert result.code == 64
    assert "error:" in result.err and "Traceback" not in result.err


# --- flavor list / describe ---------------------------------------------------------------------


def test_flavor_list_shows_name_source_and_whether_it_can_ask(cli: RunCli, example_flavor_on_path: Path) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)

    rows = [line.split()[:3] for line in cli("flavor", "list").out.splitlines()]

    assert rows[0] == ["NAME", "SOURCE", "CAN"]
    assert ["jsonl_file", "registry", "file"] in rows
    assert ["smtp_email", "builtin", "yes"] in rows and ["webhook", "builtin", "no"] in rows


def test_flavor_list_json_is_machine_readable(cli: RunCli, example_flavor_on_path: Path) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)

    entries = {entry["name"]: entry for entry in json.loads(cli("flavor", "list", "--json").out)}

    assert entries["jsonl_file"] == {
        "name": "jsonl_file",
        "source": "registry file",
        "can_ask": True,
        "class": "my_alerters.jsonl_file:JsonLinesFileAlerter",
        "loads": True,
    }


def test_flavor_list_still_lists_when_a_registered_flavor_is_broken(cli: RunCli, registry_file: Path) -> None:
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text(json.dumps({"flavors": {"gone": "uninstalled_pkg:Gone"}}))

    result = cli("flavor", "list")

    assert result.code == 0
    assert "uninstalled_pkg:Gone (broken)" in result.out and "smtp_email" in result.out
    assert "warning: Alerter flavor 'gone'" in result.err


def test_flavor_describe_shows_each_config_field(cli: RunCli) -> None:
    out = cli("flavor", "describe", "smtp_email").out

    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    assert rows["smtp_server"][:5] == ["smtp_server", "str", "-", "yes", "no"]
    assert rows["password"][:7] == ["password", "SecretStr", "|", "None", "null", "no", "yes"]
    assert rows["security"] == ["security", '"starttls"', "|", '"ssl"', "|", '"none"', '"starttls"', "no", "no"]
    assert "Airflow connection types: email, smtp, alerter" in out
    assert "Settings (SMTPEmailAlerterSettings), per task" in out


def test_flavor_describe_json_gives_name_type_default_required_secret(cli: RunCli) -> None:
    described = json.loads(cli("flavor", "describe", "smtp_email", "--json").out)

    timeout = next(field for field in described["config"]["fields"] if field["name"] == "timeout")
    assert timeout == {
        "name": "timeout",
        "type": "float",
        "default": 30.0,
        "required": False,
        "secret": False,
        "description": "",
    }
    assert described["can_ask"] is True


def test_flavor_describe_shows_a_validated_field_by_the_type_a_user_writes(cli: RunCli) -> None:
    described = json.loads(cli("flavor", "describe", "discord", "--json").out)

    webhook_url = next(field for field in described["config"]["fields"] if field["name"] == "webhook_url")
    assert (webhook_url["type"], webhook_url["secret"]) == ("SecretStr | None", True)


def test_flavor_describe_never_shows_a_secret_default(cli: RunCli, odd_flavors: None) -> None:
    result = cli("flavor", "describe", "with_token")
    as_json = cli("flavor", "describe", "with_token", "--json")

    assert TOKEN_DEFAULT not in result.out + result.err + as_json.out
    token = next(field for field in json.loads(as_json.out)["config"]["fields"] if field["name"] == "token")
    assert (token["default"], token["secret"]) == ("***", True)


def test_flavor_describe_unknown_name_lists_the_known_ones(cli: RunCli) -> None:
    result = cli("flavor", "describe", "pigeon")

    expect_error(result, 4, "Unknown alerter flavor 'pigeon'. Known flavors: ")
    assert "smtp_email" in result.err


# --- flavor register / unregister ---------------------------------------------------------------


def test_register_an_unimportable_class_is_a_configuration_error(cli: RunCli) -> None:
    expect_error(
        cli("flavor", "register", "my_alerters.jsonl_file.JsonLinesFileAlerter"),
        4,
        "Cannot import module 'my_alerters.jsonl_file': no module named 'my_alerters'",
    )


def test_unregister_then_list(cli: RunCli, example_flavor_on_path: Path) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)

    result = cli("flavor", "unregister", "jsonl_file")

    assert result.code == 0 and "Unregistered flavor 'jsonl_file'" in result.out
    assert "jsonl_file" not in cli("flavor", "list").out


def test_unregister_a_builtin_is_refused(cli: RunCli) -> None:
    expect_error(cli("flavor", "unregister", "smtp_email"), 4, "it is a builtin flavor")


# --- post ---------------------------------------------------------------------------------------


def test_post_sends_through_the_connection(cli: RunCli, team_log: Path) -> None:
    result = cli("post", "--conn-id", "team_log", "--title", "Deployed", "model v7 is live")

    assert result.code == 0, result.err
    assert result.out.strip() == "Posted to 'team_log' (jsonl_file)."
    [line] = lines_of(team_log)
    assert (line["title"], line["body"]) == ("Deployed", "model v7 is live")


def test_post_through_a_connection_stored_in_the_metadata_db(
    cli: RunCli, airflow_db: str, example_flavor_on_path: Path, tmp_path: Path
) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)
    path = tmp_path / "alerts.jsonl"
    airflow = [str(CLI.with_name("airflow")), "connections"]
    extra = json.dumps({"flavor": "jsonl_file", "path": str(path)})
    subprocess.run(
        [*airflow, "add", "db_team_log", "--conn-type", "alerter", "--conn-extra", extra],
        check=True,
        capture_output=True,
    )
    try:
        result = cli("post", "--conn-id", "db_team_log", "stored in the DB")
    finally:
        subprocess.run([*airflow, "delete", "db_team_log"], check=True, capture_output=True)

    assert result.code == 0, result.err
    assert lines_of(path)[0]["body"] == "stored in the DB"


def test_post_reads_the_message_from_stdin(cli: RunCli, team_log: Path) -> None:
    assert cli("post", "--conn-id", "team_log", "-", stdin="line one\nline two\n").code == 0

    assert lines_of(team_log)[0]["body"] == "line one\nline two\n"


def test_post_email_with_a_per_call_parameter(cli: RunCli, smtp_conn: str, smtp_server: LocalSMTPServer) -> None:
    result = cli(
        "post",
        "--conn-id",
        smtp_conn,
        "--param",
        "subject=Release 7",
        "--param",
        'recipient_email=["ml@example.com"]',
        "model v7 is live",
    )

    assert result.code == 0, result.err
    [email] = smtp_server.received
    assert (email.message["Subject"], email.rcpt_tos) == ("Release 7", ["ml@example.com"])


def test_post_with_an_unknown_parameter_names_it(cli: RunCli, team_log: Path) -> None:
    expect_error(
        cli("post", "--conn-id", "team_log", "--param", "colour=red", "hi"),
        4,
        "Invalid jsonl_file alerter parameters: colour: Extra inputs are not permitted",
    )


def test_post_to_an_undefined_connection(cli: RunCli) -> None:
    expect_error(cli("post", "--conn-id", "nobody_defined_this", "hi"), 4, "nobody_defined_this")


def test_post_with_an_invalid_connection_names_the_field(
    cli: RunCli, airflow_conn: DefineConn, example_flavor_on_path: Path
) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)
    airflow_conn("team_log", "alerter", extra={"flavor": "jsonl_file"})

    expect_error(
        cli("post", "--conn-id", "team_log", "hi"),
        4,
        "Connection 'team_log': Invalid jsonl_file alerter config: path: Field required",
    )


def test_post_that_cannot_be_delivered_exits_3_without_printing_the_password(
    cli: RunCli, airflow_conn: DefineConn
) -> None:
    airflow_conn(
        "ops_email",
        "smtp",
        host="127.0.0.1",
        port=free_port(),
        login="alerts@example.com",
        password=SMTP_PASSWORD,
        extra={"disable_ssl": True, "disable_tls": True, "to": "oncall@example.com", "retry_limit": 0},
    )

    result = cli("post", "--conn-id", "ops_email", "server is down")

    expect_error(result, 3, "could not send email via 127.0.0.1")
    assert SMTP_PASSWORD not in result.out + result.err


def test_two_line_title_is_a_usage_error(cli: RunCli, team_log: Path) -> None:
    expect_error(cli("post", "--conn-id", "team_log", "--title", "a\nb", "hi"), 64, "title must be a single line")


def test_a_bug_in_a_flavor_is_reported_as_one_line_with_exit_70(
    cli: RunCli, odd_flavors: None, airflow_conn: DefineConn
) -> None:
    airflow_conn("bug", "alerter", extra={"flavor": "buggy"})

    result = cli("post", "--conn-id", "bug", "hi")

    assert result.code == 70
    assert result.err.strip() == (
        "airflow-alerter: unexpected error: RuntimeError: bug in the flavor "
        "(a bug? rerun with --traceback and report it)"
    )


def test_traceback_flag_shows_where_the_bug_is(cli: RunCli, odd_flavors: None, airflow_conn: DefineConn) -> None:
    airflow_conn("bug", "alerter", extra={"flavor": "buggy"})

    result = cli("--traceback", "post", "--conn-id", "bug", "hi")

    assert result.code == 70 and 'odd_flavors.py", line' in result.err


# --- ask ----------------------------------------------------------------------------------------


def ask_and_answer(team_log: Path, answer: str | None, *extra_args: str) -> subprocess.CompletedProcess[str]:
    """Run ``ask`` and, once the question is in the file, append ``answer`` as alice would."""
    process = subprocess.Popen(
        [str(CLI), "ask", "--conn-id", "team_log", "Deploy v7?", "--poll-interval", "0.1", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if answer is not None:
        deadline = time.monotonic() + 60
        while not (questions := [line for line in lines_of(team_log) if line.get("type") == "question"]):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.05)
        with team_log.open("a") as file:
            file.write(json.dumps({"answer_to": questions[0]["id"], "user": "alice", "text": answer}) + "\n")
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_ask_approved_exits_0(team_log: Path) -> None:
    done = ask_and_answer(team_log, "LGTM, ship it")

    assert (done.returncode, done.stdout.strip()) == (0, "approved by alice ('LGTM, ship it')")


def test_ask_rejected_exits_1(team_log: Path) -> None:
    done = ask_and_answer(team_log, "no, not on a Friday")

    assert (done.returncode, done.stdout.strip()) == (1, "rejected by alice ('no, not on a Friday')")


def test_ask_without_an_answer_times_out_with_exit_2(team_log: Path) -> None:
    done = ask_and_answer(team_log, None, "--timeout", "0.5")

    assert (done.returncode, done.stdout.strip()) == (2, "timed out - no answer within 0.5s")


def test_ask_through_a_flavor_with_only_a_blocking_ask(
    cli: RunCli, odd_flavors: None, airflow_conn: DefineConn
) -> None:
    airflow_conn("yes_man", "alerter", extra={"flavor": "always_yes"})

    result = cli("ask", "--conn-id", "yes_man", "Deploy?")

    assert (result.code, result.out.strip()) == (0, "approved")


def _sigint_at_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_ask_exits_130(team_log: Path) -> None:
    # Started as a user's shell starts it, with SIGINT at its default. Measured in whole-suite runs
    # (Airflow 3.1, 3.2 and 3.3 alike): an earlier test leaves this pytest process ignoring SIGINT, and
    # an ignored signal stays ignored across exec, so Python in the child never raised KeyboardInterrupt.
    process = subprocess.Popen(
        [str(CLI), "ask", "--conn-id", "team_log", "Deploy v7?"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_at_default,
    )
    deadline = time.monotonic() + 60
    while not lines_of(team_log):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)

    process.send_signal(signal.SIGINT)

    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        # what the child inherited: an ignored or blocked SIGINT survives exec
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        pytest.fail(f"SIGINT did not end the command; this process's SIGINT handler: "
                    f"{signal.getsignal(signal.SIGINT)!r}, blocked signals: {sorted(blocked)}")
    assert (process.returncode, err.strip()) == (130, "airflow-alerter: interrupted")


def test_ask_through_a_flavor_that_cannot_ask_is_a_configuration_error(
    cli: RunCli, airflow_conn: Callable[..., str]
) -> None:
    airflow_conn("team_chat", "alerter", password="https://chat.example.com/hooks/abc",
                 extra={"flavor": "webhook", "preset": "mattermost"})
    expect_error(
        cli("ask", "--conn-id", "team_chat", "Deploy?"),
        4,
        "The 'webhook' alerter flavor cannot ask questions (post only). Flavors that can ask: ",
    )


# --- test-connection ----------------------------------------------------------------------------


def test_test_connection_sends_nothing_by_default(cli: RunCli, team_log: Path) -> None:
    result = cli("test-connection", "team_log")

    assert (result.code, result.out.strip()) == (
        0,
        f"OK: connection 'team_log' (jsonl_file): {team_log.parent} is writable",
    )
    assert lines_of(team_log) == []


def test_test_connection_send_posts_a_test_message(cli: RunCli, team_log: Path) -> None:
    result = cli("test-connection", "team_log", "--send")

    assert result.code == 0 and "Sent a test message through 'team_log'." in result.out
    assert [line["title"] for line in lines_of(team_log)] == ["airflow-alerter test message"]


def test_failed_check_exits_3_and_sends_nothing(
    cli: RunCli, airflow_conn: DefineConn, example_flavor_on_path: Path, tmp_path: Path
) -> None:
    cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)
    airflow_conn("team_log", "alerter", extra={"flavor": "jsonl_file", "path": str(tmp_path / "no" / "such" / "x")})

    result = cli("test-connection", "team_log", "--send")

    assert result.code == 3
    assert result.out.strip() == f"FAILED: connection 'team_log' (jsonl_file): cannot write to {tmp_path}/no/such"
