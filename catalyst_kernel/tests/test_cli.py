"""The `catalyst` command, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import MakeDistribution

CATALYST = str(Path(sys.executable).with_name("catalyst"))
IN_REPO_PLUGINS = {
    "gitea": "catalyst-gitea",
    "nats": "catalyst-nats",
    "crossplane": "catalyst-crossplane",
    "keycloak-per-organization": "catalyst-keycloak",
    "keycloak-shared-sovereign": "catalyst-keycloak",
    "openbao": "catalyst-openbao",
    "kubernetes": "catalyst-kubernetes",
}


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    environ.update(env or {})
    return subprocess.run(
        [CATALYST, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


def test_version(tmp_path: Path) -> None:
    result = run("version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("catalyst-kernel 0.")


def test_plugins_json_lists_built_ins_in_repo_plugins_and_providers(tmp_path: Path) -> None:
    result = run("plugins", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    plugins = {plugin["name"]: plugin for plugin in document["plugins"]}
    assert plugins["embedded"]["builtin"]
    assert plugins["dev"]["builtin"]
    assert plugins["embedded"]["distribution"] == "catalyst-kernel"
    for name, distribution in IN_REPO_PLUGINS.items():
        assert plugins[name]["distribution"] == distribution
        assert plugins[name]["version"] == "0.1.0"
        assert plugins[name]["status"] == "loaded"
    assert set(document["providers"]) == {"spine", "committer", "identity", "secrets"}
    assert document["providers"]["spine"]["provider"] == "embedded"
    assert document["providers"]["identity"]["provider"] == "dev"
    assert document["errors"] == []


def test_plugins_table_shows_providers(tmp_path: Path) -> None:
    result = run("plugins", cwd=tmp_path, env={"CATALYST_PROVIDERS__SPINE": "nats"})
    assert result.returncode == 0, result.stderr
    assert "keycloak-per-organization" in result.stdout
    assert "Providers:" in result.stdout
    assert "spine      nats" in result.stdout


def test_keycloak_topology_selects_the_identity_plugin(tmp_path: Path) -> None:
    result = run(
        "plugins",
        "--json",
        cwd=tmp_path,
        env={
            "CATALYST_PROVIDERS__IDENTITY": "keycloak",
            "CATALYST_KEYCLOAK_TOPOLOGY": "shared-sovereign",
        },
    )
    providers = json.loads(result.stdout)["providers"]
    assert providers["identity"]["provider"] == "keycloak-shared-sovereign"


def _broken_package(make_distribution: MakeDistribution) -> None:
    make_distribution(
        "catalyst-broken",
        {"broken": "catalyst_broken_plugin"},
        {"catalyst_broken_plugin": "raise ImportError('needs libfoo')\n"},
    )


def test_a_broken_third_party_plugin_is_named_and_skipped(
    tmp_path: Path, site_dir: Path, make_distribution: MakeDistribution
) -> None:
    _broken_package(make_distribution)
    env = {"PYTHONPATH": str(site_dir)}
    table = run("plugins", cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "broken (catalyst-broken): cannot be imported: ImportError: needs libfoo" in table.stdout
    document = json.loads(run("plugins", "--json", cwd=tmp_path, env=env).stdout)
    assert document["errors"] == [
        {
            "name": "broken",
            "distribution": "catalyst-broken",
            "error": "cannot be imported: ImportError: needs libfoo",
        }
    ]
    assert "gitea" in {plugin["name"] for plugin in document["plugins"]}


@pytest.mark.parametrize(
    ("args", "env"),
    [(("plugins", "--strict"), {}), (("plugins",), {"CATALYST_STRICT_PLUGINS": "1"})],
)
def test_strict_mode_exits_non_zero_naming_the_plugin(
    tmp_path: Path,
    site_dir: Path,
    make_distribution: MakeDistribution,
    args: tuple[str, ...],
    env: dict[str, str],
) -> None:
    _broken_package(make_distribution)
    result = run(*args, cwd=tmp_path, env={"PYTHONPATH": str(site_dir), **env})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "catalyst: error: plugin 'broken' failed: cannot be imported: ImportError: needs libfoo"
    ]


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "catalyst.toml").write_text("[providers]\nspine = 3\n")
    result = run("plugins", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "catalyst: error: settings key providers.spine (from catalyst.toml): expected a string, "
        "got 3"
    ]
    assert result.stdout == ""


def test_unknown_environment_variable_is_an_error(tmp_path: Path) -> None:
    result = run("plugins", cwd=tmp_path, env={"CATALYST_SPINE": "nats"})
    assert result.returncode == 1
    assert "settings key spine (from environment variable CATALYST_SPINE): unknown key" in (
        result.stderr
    )


def test_config_option_names_the_file(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "missing.toml"), "plugins", cwd=tmp_path)
    assert result.returncode == 1
    assert "missing.toml does not exist" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run("plugins", "--jsn", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option" in result.stderr
