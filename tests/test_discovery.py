"""Discovery without a second registry: the built-in flavors are entry points like any plugin's, each flavor
names the connection types it serves, a connection may name a class, and lookups are cached per process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import tomllib

from airflow_alerter import AlerterConfigError, AlerterHook, BaseAlerter, registry
from tests.plugins.cli import EXAMPLE_FLAVOR_CLASS

ROOT = Path(__file__).resolve().parent.parent
DefineConn = Callable[..., str]

#: what registry.CONN_TYPE_FLAVORS held by hand before each flavor declared its CONN_TYPES
OLD_CONN_TYPE_TABLE = {
    "smtp": "smtp_email", "email": "smtp_email", "slack": "slack", "slackwebhook": "slack", "discord": "discord",
}

#: a whole new flavor: this module, and one entry-point line in its package's metadata
PIGEON_MODULE = '''
import json
from typing import ClassVar

from airflow_alerter import AlerterMessage, BaseAlerter


class PigeonAlerter(BaseAlerter):
    """Sends every message by carrier pigeon (here: a line in the file the connection's extra names)."""

    FLAVOR: ClassVar[str] = "pigeon"
    CONN_TYPES: ClassVar[tuple[str, ...]] = ("pigeonpost",)

    def post(self, message, params=None):
        with open(self.config.path, "a", encoding="utf-8") as loft:
            loft.write(json.dumps(AlerterMessage.coerce(message).model_dump(mode="json")) + "\\n")
        return True
'''
PIGEON_ENTRY_POINT = "pigeon = pigeon_post:PigeonAlerter"


@pytest.fixture
def pigeon_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``pip install pigeon-post`` as it lays the package out: the module and a dist-info declaring the entry point."""
    site = tmp_path / "site-packages"
    dist_info = site / "pigeon_post-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (site / "pigeon_post.py").write_text(textwrap.dedent(PIGEON_MODULE))
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: pigeon-post\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[airflow_alerter.flavors]\n{PIGEON_ENTRY_POINT}\n")
    monkeypatch.delitem(sys.modules, "pigeon_post", raising=False)
    monkeypatch.syspath_prepend(str(site))
    return site


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_builtin_flavors_are_this_packages_own_entry_points() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "airflow_alerter.flavors"
    ]

    assert registry.builtin_flavors() == declared
    assert {name for name, source in registry.flavor_sources().items() if source == "builtin"} == set(declared)


def test_the_connection_type_map_is_built_from_each_flavors_conn_types() -> None:
    assert registry.conn_type_flavors() == OLD_CONN_TYPE_TABLE
    assert registry.get_flavor("slack").CONN_TYPES == ("slack", "slackwebhook")


def test_the_old_hand_kept_tables_still_import_derived() -> None:
    from airflow_alerter.registry import BUILTIN_FLAVORS, CONN_TYPE_FLAVORS

    assert CONN_TYPE_FLAVORS == OLD_CONN_TYPE_TABLE
    assert BUILTIN_FLAVORS["smtp_email"] == "airflow_alerter.alerters.smtp_email:SMTPEmailAlerter"


def test_adding_a_flavor_is_one_module_and_one_entry_point_line(
    pigeon_installed: Path, airflow_conn: DefineConn, tmp_path: Path
) -> None:
    loft = tmp_path / "loft.jsonl"
    airflow_conn("loft", "pigeonpost", extra={"path": str(loft)})  # its own connection type, from CONN_TYPES
    airflow_conn("ops_pigeon", "alerter", extra={"flavor": "pigeon", "path": str(loft)})

    assert AlerterHook("loft").get_alerter().post("Coo: the load failed") is True
    assert AlerterHook("ops_pigeon").get_alerter().post("Coo again") is True

    assert [line["body"] for line in lines(loft)] == ["Coo: the load failed", "Coo again"]
    assert registry.flavor_sources()["pigeon"] == "entry point"
    assert registry.conn_type_flavors()["pigeonpost"] == "pigeon"


def test_a_connection_may_name_the_flavor_class_itself(
    example_flavor_on_path: Path, airflow_conn: DefineConn, tmp_path: Path
) -> None:
    path = tmp_path / "team.jsonl"
    module, _, name = EXAMPLE_FLAVOR_CLASS.rpartition(".")
    airflow_conn("team_log", "alerter", extra={"flavor": f"{module}:{name}", "path": str(path)})

    assert AlerterHook("team_log").get_alerter().post("registered nowhere") is True

    assert [line["body"] for line in lines(path)] == ["registered nowhere"]
    assert "jsonl_file" not in registry.flavor_names()  # no entry point, no registry file, no register()


def test_a_class_path_that_does_not_load_names_the_connection_and_the_reason(airflow_conn: DefineConn) -> None:
    airflow_conn("broken", "alerter", extra={"flavor": "no_such_pkg.alerters:Gone"})

    with pytest.raises(AlerterConfigError) as error:
        AlerterHook("broken").get_alerter()

    assert str(error.value).startswith("Connection 'broken': Alerter flavor 'no_such_pkg.alerters:Gone' (class path")
    assert "Cannot import module 'no_such_pkg.alerters'" in str(error.value)


def test_conn_types_that_are_not_a_tuple_of_names_are_refused() -> None:
    class Wrong(BaseAlerter):
        FLAVOR = "wrong"
        CONN_TYPES = "slack"  # type: ignore[assignment]

        def post(self, message: object, params: object = None) -> bool:
            return True

    with pytest.raises(registry.FlavorRegistrationError, match=r"CONN_TYPES = 'slack': give a tuple"):
        registry.register(Wrong)


def test_the_registry_file_is_read_again_only_when_it_changes(
    registry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Path] = []
    read = registry._read_registry_file
    monkeypatch.setattr(registry, "_read_registry_file", lambda path: reads.append(path) or read(path))
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text(json.dumps({"flavors": {}}))

    for _ in range(3):
        registry.get_flavor("slack")
    assert len(reads) == 1

    registry_file.write_text(json.dumps({"flavors": {"mail": "airflow_alerter.alerters.smtp_email:SMTPEmailAlerter"}}))
    assert registry.get_flavor("mail").FLAVOR == "smtp_email"
    assert len(reads) == 2


def test_entry_points_are_scanned_once_per_sys_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scans: list[str] = []
    scan = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda group: scans.append(group) or scan(group=group))
    monkeypatch.setattr(registry, "_scan_cache", (None, []))

    for _ in range(3):
        registry.get_flavor("discord")
    assert scans == ["airflow_alerter.flavors"]

    monkeypatch.syspath_prepend(str(tmp_path))  # a new folder may hold new plugins
    registry.get_flavor("discord")
    assert len(scans) == 2


def test_a_dag_file_importing_the_package_scans_no_entry_points() -> None:
    code = (
        "import sys; from airflow_alerter import AlerterAskSensor, alerter_failure_callback; "
        "alerter_failure_callback('ops'); AlerterAskSensor(task_id='gate', alerter_conn_id='ops', question='q'); "
        "print(sorted(m for m in sys.modules if m.startswith(('airflow_alerter.registry', 'airflow_alerter.alert'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)

    assert loaded.stdout.strip().splitlines()[-1] == "[]"


def test_the_connection_form_lists_the_flavors_the_entry_points_declare() -> None:
    from airflow_alerter.get_provider_info import get_provider_info
    from airflow_alerter.hooks.ui import builtin_flavor_names

    [form] = get_provider_info()["connection-types"]

    assert builtin_flavor_names() == sorted(registry.builtin_flavors())
    assert "discord, slack, smtp_email, webhook, or a custom flavor" in form["conn-fields"]["flavor"]["description"]
