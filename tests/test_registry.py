"""Custom flavors: registered through an entry point or the registry file, refused with a clear reason when
they are not flavors, and used from a DAG through an ``alerter`` connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_alerter import registry
from airflow_alerter.registry import FlavorRegistrationError
from tests.plugins.airflow import RunDag
from tests.plugins.cli import CLI, EXAMPLE_FLAVOR_CLASS, EXAMPLE_FLAVOR_DIR, RunCli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAG = EXAMPLE_FLAVOR_DIR / "custom_flavor_alerts.py"

NOT_FLAVORS = """
from airflow_alerter import BaseAlerter

def a_function():
    pass

class NotAnAlerter:
    FLAVOR = "not_an_alerter"

    def post(self, message, params=None):
        return True

class NoFlavorName(BaseAlerter):
    def post(self, message, params=None):
        return True

class SpacedName(BaseAlerter):
    FLAVOR = "my flavor"

    def post(self, message, params=None):
        return True

class ShadowsSmtp(BaseAlerter):
    FLAVOR = "smtp_email"

    def post(self, message, params=None):
        return True

class OtherJsonl(BaseAlerter):
    FLAVOR = "jsonl_file"

    def post(self, message, params=None):
        return True
"""

NO_POST = """
from airflow_alerter import BaseAlerter

class Silent(BaseAlerter):
    FLAVOR = "silent"
"""


@pytest.fixture(scope="module")
def bad_flavors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Modules whose classes are not flavors: ``not_flavors``, ``no_post``, ``breaks_on_import``, ..."""
    folder = tmp_path_factory.mktemp("bad_flavors")
    (folder / "not_flavors.py").write_text(NOT_FLAVORS)
    (folder / "no_post.py").write_text(NO_POST)
    (folder / "breaks_on_import.py").write_text("import json\nraise RuntimeError('database is down at import time')\n")
    (folder / "needs_missing_dep.py").write_text("import a_dependency_nobody_installed\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- registering through the registry file -----------------------------------------------------


def test_cli_register_records_the_class_in_the_registry_file(
    cli: RunCli, registry_file: Path, example_flavor_on_path: Path
) -> None:
    result = cli("flavor", "register", EXAMPLE_FLAVOR_CLASS)

    assert result.code == 0, result.err
    assert json.loads(registry_file.read_text())["flavors"] == {
        "jsonl_file": "my_alerters.jsonl_file:JsonLinesFileAlerter"
    }
    assert "Registered flavor 'jsonl_file'" in result.out


def test_flavor_in_the_registry_file_is_found_by_name(registry_file: Path, example_flavor_on_path: Path) -> None:
    registry.register_path(EXAMPLE_FLAVOR_CLASS)

    assert registry.get_flavor("jsonl_file").__name__ == "JsonLinesFileAlerter"
    assert registry.flavor_sources()["jsonl_file"] == "registry file"


def test_registry_file_lives_in_airflow_home_by_default(tmp_path: Path, example_flavor_on_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "AIRFLOW_ALERTER_REGISTRY"}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")

    subprocess.run([str(CLI), "flavor", "register", EXAMPLE_FLAVOR_CLASS], env=env, check=True, capture_output=True)

    assert (
        "jsonl_file" in json.loads((tmp_path / "airflow-home" / "airflow_alerter_flavors.json").read_text())["flavors"]
    )


def test_unregister_removes_the_flavor(registry_file: Path, example_flavor_on_path: Path) -> None:
    registry.register_path(EXAMPLE_FLAVOR_CLASS)

    registry.unregister_name("jsonl_file")

    assert "jsonl_file" not in registry.flavor_names()


def test_registering_the_same_class_again_is_harmless(registry_file: Path, example_flavor_on_path: Path) -> None:
    registry.register_path(EXAMPLE_FLAVOR_CLASS)

    assert registry.register_path("my_alerters.jsonl_file:JsonLinesFileAlerter") == (
        "jsonl_file",
        "my_alerters.jsonl_file:JsonLinesFileAlerter",
    )


# --- registering through an entry point --------------------------------------------------------


def test_installed_package_with_an_entry_point_provides_the_flavor(
    registry_file: Path, example_flavor_installed: Path
) -> None:
    flavor = registry.get_flavor("jsonl_file")

    assert flavor.__module__ == "my_alerters.jsonl_file"
    assert registry.flavor_sources()["jsonl_file"] == "entry point"
    assert "jsonl_file" in registry.flavors_that_can_ask()


# --- which source wins --------------------------------------------------------------------------


def test_registry_file_wins_over_an_entry_point_of_the_same_name(
    registry_file: Path, example_flavor_installed: Path, bad_flavors: Path
) -> None:
    registry.register_path("not_flavors.OtherJsonl", force=True)

    assert registry.get_flavor("jsonl_file").__name__ == "OtherJsonl"


def test_in_process_register_wins_over_the_registry_file(
    registry_file: Path, example_flavor_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_alerter import BaseAlerter

    registry.register_path(EXAMPLE_FLAVOR_CLASS)
    monkeypatch.setattr(registry, "_registered", {})

    @registry.register
    class InProcess(BaseAlerter):
        FLAVOR = "jsonl_file"

        def post(self, message: object, params: object = None) -> bool:
            return True

    assert registry.get_flavor("jsonl_file") is InProcess
    assert registry.flavor_sources()["jsonl_file"] == "registered"


def test_force_lets_a_registered_flavor_shadow_a_builtin(registry_file: Path, bad_flavors: Path) -> None:
    registry.register_path("not_flavors.ShadowsSmtp", force=True)

    assert registry.get_flavor("smtp_email").__name__ == "ShadowsSmtp"


# --- each bad registration, with its reason -----------------------------------------------------


@pytest.mark.parametrize(
    "path, reason",
    [
        ("jsonl_file", r"'jsonl_file' is not a class path: give it as package.module.ClassName"),
        (
            "no_such_package.alerters.MyAlerter",
            r"Cannot import module 'no_such_package.alerters': no module named 'no_such_package'. "
            r"Is its package installed",
        ),
        (
            "needs_missing_dep.Alerter",
            r"Importing module 'needs_missing_dep' failed: No module named 'a_dependency_nobody_installed'",
        ),
        (
            "breaks_on_import.Alerter",
            r"Importing module 'breaks_on_import' failed: RuntimeError: database is down at import time",
        ),
        ("not_flavors.Missing", r"Module 'not_flavors' has no attribute 'Missing'"),
        ("not_flavors.a_function", r"not_flavors:a_function is not a class \(it is a function\)"),
        (
            "not_flavors.NotAnAlerter",
            r"not_flavors:NotAnAlerter is not a subclass of airflow_alerter.BaseAlerter \(step 1",
        ),
        ("not_flavors.NoFlavorName", r"not_flavors:NoFlavorName does not set FLAVOR \(step 2"),
        ("not_flavors.SpacedName", r"has FLAVOR = 'my flavor': a flavor name uses only letters, digits"),
        ("no_post.Silent", r"Importing module 'no_post' failed: Alerter flavor 'silent' \(Silent\) must implement"),
        ("not_flavors.ShadowsSmtp", r"Flavor name 'smtp_email' is already taken by the builtin flavor .*--force"),
    ],
)
def test_bad_registration_is_refused_with_its_reason(
    registry_file: Path, bad_flavors: Path, path: str, reason: str
) -> None:
    with pytest.raises(FlavorRegistrationError, match=reason):
        registry.register_path(path)

    assert not registry_file.exists()


def test_a_second_class_cannot_silently_take_a_registered_name(
    registry_file: Path, example_flavor_on_path: Path, bad_flavors: Path
) -> None:
    registry.register_path(EXAMPLE_FLAVOR_CLASS)

    with pytest.raises(
        FlavorRegistrationError,
        match=r"'jsonl_file' is already registered in .* as "
        r"my_alerters.jsonl_file:JsonLinesFileAlerter; run "
        r"'airflow-alerter flavor unregister jsonl_file' first",
    ):
        registry.register_path("not_flavors.OtherJsonl")


def test_in_process_register_refuses_a_class_without_flavor(bad_flavors: Path) -> None:
    from not_flavors import NoFlavorName  # type: ignore[import-not-found]

    with pytest.raises(TypeError, match="does not set FLAVOR"):
        registry.register(NoFlavorName)


def test_unregistering_a_builtin_explains_why_not(registry_file: Path) -> None:
    with pytest.raises(FlavorRegistrationError, match="'smtp_email' is not in the registry file .*it is a builtin"):
        registry.unregister_name("smtp_email")


def test_damaged_registry_file_is_named_and_not_overwritten(registry_file: Path, example_flavor_on_path: Path) -> None:
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text("{not json")

    with pytest.raises(registry.RegistryFileError, match=f"{registry_file} is not valid"):
        registry.register_path(EXAMPLE_FLAVOR_CLASS)

    assert registry_file.read_text() == "{not json"


def test_damaged_registry_file_does_not_stop_builtin_flavors(
    registry_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text('{"flavors": ["a list"]}')

    assert registry.get_flavor("smtp_email").__name__ == "SMTPEmailAlerter"
    assert "is not valid" in caplog.text


def test_registered_flavor_whose_package_was_removed_fails_with_the_source_named(registry_file: Path) -> None:
    registry_file.parent.mkdir(parents=True)
    registry_file.write_text(json.dumps({"flavors": {"gone": "uninstalled_pkg.alerters:Gone"}}))

    with pytest.raises(
        registry.FlavorLoadError,
        match=r"Alerter flavor 'gone' \(registry file .*\) cannot be loaded: "
        r"Cannot import module 'uninstalled_pkg.alerters'",
    ):
        registry.get_flavor("gone")


def test_registry_is_import_light() -> None:
    code = (
        "import sys, airflow_alerter.registry as r; r.flavor_names(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'pydantic', 'slack_sdk')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == "[]"


# --- used from a DAG ----------------------------------------------------------------------------


@pytest.fixture(params=["entry point", "registry file"])
def jsonl_flavor(request: pytest.FixtureRequest, cli: RunCli) -> str:
    """The example flavor made available the way a user would: installed with its entry point, or
    put on the path and registered with the CLI."""
    if request.param == "entry point":
        request.getfixturevalue("example_flavor_installed")
    else:
        request.getfixturevalue("example_flavor_on_path")
        assert cli("flavor", "register", EXAMPLE_FLAVOR_CLASS).code == 0
    assert registry.flavor_sources()["jsonl_file"] == request.param
    return str(request.param)


@pytest.fixture
def team_log(tmp_path: Path, airflow_conn: Callable[..., str]) -> Path:
    """The connection the example DAG uses: type ``alerter``, flavor named in the extra."""
    path = tmp_path / "team_alerts.jsonl"
    airflow_conn("team_log", "alerter", extra={"flavor": "jsonl_file", "path": str(path)})
    return path


def test_example_dag_posts_and_alerts_through_the_custom_flavor(
    jsonl_flavor: str, team_log: Path, run_dag: RunDag
) -> None:
    result = run_dag(EXAMPLE_DAG.read_text(), run_conf={"fail": True})

    assert (result.state_of("announce"), result.state_of("load")) == ("success", "failed")
    announced, alert = read_jsonl(team_log)
    assert announced["title"] == "Nightly load started"
    assert str(announced["body"]).startswith("Run manual__") and "{{" not in str(announced["body"])
    assert alert["title"] == "Task Failure Alert"
    assert (
        alert["metadata"]
        | {
            "exception": "RuntimeError: warehouse is read-only",
            "dag_id":  # type: ignore[operator]
            "example_custom_flavor_alerts",
            "task_id": "load",
        }
        == alert["metadata"]
    )


def test_example_dag_sends_no_alert_when_the_load_succeeds(
    example_flavor_installed: Path, team_log: Path, run_dag: RunDag
) -> None:
    result = run_dag(EXAMPLE_DAG.read_text(), run_conf={"fail": False})

    assert result.state == "success"
    assert [line["title"] for line in read_jsonl(team_log)] == ["Nightly load started"]


def test_recipe_in_the_docs_is_the_tested_example() -> None:
    guide = (ROOT / "docs" / "custom_flavors.md").read_text()

    for example in (EXAMPLE_FLAVOR_DIR / "my_alerters" / "jsonl_file.py", EXAMPLE_FLAVOR_DIR / "pyproject.toml"):
        assert textwrap.dedent(example.read_text()).strip() in guide, f"{example.name} differs from the guide"
