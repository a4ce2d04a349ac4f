"""airflow-alerter as an Airflow provider: Airflow finds it, shows its connection form and tests its connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import pytest

from airflow_alerter.get_provider_info import get_provider_info
from tests.plugins.airflow import AIRFLOW_VERSION
from tests.plugins.cli import EXAMPLE_FLAVOR_CLASS, RunCli
from tests.plugins.smtp import SMTP_PASSWORD, SMTP_USER
from tests.servers.smtp import LocalSMTPServer

DefineConn = Callable[..., str]
AIRFLOW = Path(sys.executable).with_name("airflow")


def airflow(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def in_airflow(code: str) -> object:
    """Run ``code`` (which prints JSON) in a fresh interpreter, as an Airflow component would see things."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_provider_info_satisfies_airflows_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)


def test_every_class_and_module_it_names_imports() -> None:
    info = get_provider_info()
    modules = [
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in info.get(kind, [])
        for module in entry["python-modules"]
    ]
    classes = [*info["notifications"], *(conn["hook-class-name"] for conn in info["connection-types"])]

    for module in modules:
        import_module(module)
    for path in classes:
        module, _, name = path.rpartition(".")
        assert hasattr(import_module(module), name), path


def test_provider_info_imports_neither_airflow_nor_pydantic() -> None:
    loaded = in_airflow(
        "import json, sys; from airflow_alerter.get_provider_info import get_provider_info; get_provider_info(); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'pydantic'))))"
    )

    assert loaded == []


def test_airflow_providers_list_shows_the_package() -> None:
    done = airflow("providers", "list", "--output", "json")

    providers = {entry["package_name"]: entry for entry in json.loads(done.stdout)}
    assert providers["airflow-alerter"]["version"] == "0.1.0"


def test_airflow_knows_the_alerter_connection_type_and_its_hook() -> None:
    hooks = json.loads(airflow("providers", "hooks", "--output", "json").stdout)

    [alerter] = [hook for hook in hooks if hook["connection_type"] == "alerter"]
    assert alerter["class"] == "airflow_alerter.hooks.alerter.AlerterHook"
    assert alerter["conn_id_attribute_name"] == "alerter_conn_id"


@pytest.mark.skipif(
    AIRFLOW_VERSION < (3, 2),
    reason="Airflow 3.1 builds connection forms from the hook only when flask_appbuilder is installed "
    "(it is not, in a plain Airflow 3 install); the declarative conn-fields this reads arrived in 3.2. "
    "The 3.1 path, get_ui_field_behaviour(), is checked by test_hook_gives_older_airflow_the_same_form",
)
def test_connection_form_hides_schema_relabels_and_adds_a_flavor_field() -> None:
    form = in_airflow(
        "import json; from airflow.providers_manager import ProvidersManager as P; m = P(); "
        "w = m.connection_form_widgets['extra__alerter__flavor']; "
        "print(json.dumps({'behaviour': m.field_behaviours['alerter'], 'flavor': w.field, 'pkg': w.package_name}))"
    )

    assert isinstance(form, dict)
    assert form["behaviour"]["hidden_fields"] == ["schema"]
    assert form["behaviour"]["relabeling"]["password"] == "Password / token / webhook URL (secret)"
    assert form["behaviour"]["placeholders"]["extra__alerter__flavor"] == "smtp_email"
    assert form["flavor"]["schema"]["title"] == "Flavor" and form["pkg"] == "airflow-alerter"


def test_hook_gives_older_airflow_the_same_form() -> None:
    from airflow_alerter.hooks.alerter import AlerterHook

    declared = get_provider_info()["connection-types"][0]["ui-field-behaviour"]

    assert AlerterHook.get_ui_field_behaviour() == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }


# --- airflow connections test -------------------------------------------------------------------

#: ``airflow connections test`` exits 1 on a failed check from Airflow 3.3; 3.1 and 3.2 print
#: "Connection failed!" and exit 0 (airflow/cli/commands/connection_command.py)
CHECK_FAILED_EXIT = 1 if AIRFLOW_VERSION >= (3, 3) else 0


@pytest.fixture
def custom_flavor(cli: RunCli, example_flavor_on_path: Path) -> str:
    assert cli("flavor", "register", EXAMPLE_FLAVOR_CLASS).code == 0
    return "jsonl_file"


def test_airflow_connections_test_runs_the_flavors_check(
    custom_flavor: str, airflow_conn: DefineConn, tmp_path: Path
) -> None:
    airflow_conn("team_log", "alerter", extra={"flavor": custom_flavor, "path": str(tmp_path / "alerts.jsonl")})

    done = airflow("connections", "test", "team_log", AIRFLOW__CORE__TEST_CONNECTION="Enabled")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Connection success!" in done.stdout
    assert not (tmp_path / "alerts.jsonl").exists()  # a test sends nothing


def test_airflow_connections_test_reports_why_a_check_failed(
    custom_flavor: str, airflow_conn: DefineConn, tmp_path: Path
) -> None:
    airflow_conn("team_log", "alerter", extra={"flavor": custom_flavor, "path": str(tmp_path / "gone" / "a.jsonl")})

    done = airflow("connections", "test", "team_log", AIRFLOW__CORE__TEST_CONNECTION="Enabled")

    assert done.returncode == CHECK_FAILED_EXIT
    assert "Connection failed!" in done.stdout and f"cannot write to {tmp_path}/gone" in done.stdout


def test_airflow_connections_test_logs_in_to_smtp_without_showing_the_password(
    airflow_conn: DefineConn, smtp_starttls: LocalSMTPServer
) -> None:
    airflow_conn(
        "mail",
        "alerter",
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        login=SMTP_USER,
        password="not-the-Pa55word",
        extra={
            "flavor": "smtp_email",
            "sender_email": SMTP_USER,
            "security": "starttls",
            "ssl_ca_file": str(smtp_starttls.cert[0]),
        },
    )
    refused = airflow("connections", "test", "mail", AIRFLOW__CORE__TEST_CONNECTION="Enabled")
    airflow_conn(
        "mail",
        "alerter",
        host=smtp_starttls.host,
        port=smtp_starttls.port,
        login=SMTP_USER,
        password=SMTP_PASSWORD,
        extra={
            "flavor": "smtp_email",
            "sender_email": SMTP_USER,
            "security": "starttls",
            "ssl_ca_file": str(smtp_starttls.cert[0]),
        },
    )
    accepted = airflow("connections", "test", "mail", AIRFLOW__CORE__TEST_CONNECTION="Enabled")

    assert (refused.returncode, accepted.returncode) == (CHECK_FAILED_EXIT, 0)
    assert "Connection failed!" in refused.stdout and "Connection success!" in accepted.stdout
    assert "not-the-Pa55word" not in refused.stdout + refused.stderr
    assert SMTP_PASSWORD not in accepted.stdout + accepted.stderr
    assert smtp_starttls.received == []
