"""The `catalyst` command, run as a real process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RunCatalyst = Callable[..., Any]
MakeDistribution = Callable[..., list[Any]]


def test_version(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    result = run_catalyst("version")
    assert result.returncode == 0
    assert result.stdout.startswith("catalyst-kernel 0.")


def _broken_package(make_distribution: MakeDistribution) -> None:
    make_distribution(
        "catalyst-broken",
        {"broken": "catalyst_broken_plugin"},
        {"catalyst_broken_plugin": "raise ImportError('needs libfoo')\n"},
    )


def test_a_broken_third_party_plugin_is_named_and_skipped(
    run_catalyst: RunCatalyst, tmp_path: Path, site_dir: Path, make_distribution: MakeDistribution
) -> None:
    _broken_package(make_distribution)
    env = {"PYTHONPATH": str(site_dir)}
    table = run_catalyst("plugins", env=env)
    assert table.returncode == 0, table.stderr
    assert "broken (catalyst-broken): cannot be imported: ImportError: needs libfoo" in table.stdout
    document = json.loads(run_catalyst("plugins", "--json", env=env).stdout)
    assert document["errors"] == [
        {
            "name": "broken",
            "distribution": "catalyst-broken",
            "error": "cannot be imported: ImportError: needs libfoo",
        }
    ]
    assert "embedded" in {plugin["name"] for plugin in document["plugins"]}


@pytest.mark.parametrize(
    ("args", "env"),
    [(("plugins", "--strict"), {}), (("plugins",), {"CATALYST_STRICT_PLUGINS": "1"})],
)
def test_strict_mode_exits_non_zero_naming_the_plugin(
    run_catalyst: RunCatalyst,
    tmp_path: Path,
    site_dir: Path,
    make_distribution: MakeDistribution,
    args: tuple[str, ...],
    env: dict[str, str],
) -> None:
    _broken_package(make_distribution)
    result = run_catalyst(*args, env={"PYTHONPATH": str(site_dir), **env})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "catalyst: error: plugin 'broken' failed: cannot be imported: ImportError: needs libfoo"
    ]


def test_bad_settings_are_one_line_errors(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    (tmp_path / "catalyst.toml").write_text("[providers]\nspine = 3\n")
    result = run_catalyst("plugins")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "catalyst: error: settings key providers.spine (from catalyst.toml): expected a string, "
        "got 3"
    ]
    assert result.stdout == ""


def test_unknown_environment_variable_is_an_error(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    result = run_catalyst("plugins", env={"CATALYST_SPINE": "nats"})
    assert result.returncode == 1
    assert "settings key spine (from environment variable CATALYST_SPINE): unknown key" in (
        result.stderr
    )


def test_config_option_names_the_file(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    result = run_catalyst("--config", str(tmp_path / "missing.toml"), "plugins")
    assert result.returncode == 1
    assert "missing.toml does not exist" in result.stderr


def test_usage_errors_exit_2(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    result = run_catalyst("plugins", "--jsn")
    assert result.returncode == 2
    assert "No such option" in result.stderr
