"""``catalyst blueprint lint``, run as a real process, and the lint function behind it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from catalyst_kernel.blueprints.lint import lint

RunCatalyst = Callable[..., Any]
CATALOG = Path(__file__).resolve().parents[2] / "catalog"


def _copy(name: str, target: Path) -> Path:
    shutil.copytree(CATALOG / name, target)
    return target


def _edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "blueprint.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_demo_catalog_lints_clean(run_catalyst: RunCatalyst) -> None:
    result = run_catalyst("blueprint", "lint", str(CATALOG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "OK: 10 Blueprint version(s) checked, no problems\n"
    assert result.stderr == ""


def test_every_problem_is_printed_as_file_pointer_message(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    folder = _copy("bp-wordpress/1.4.0", tmp_path / "catalog" / "bp-wordpress" / "1.4.0")

    def change(document: dict[str, Any]) -> None:
        document["metadata"]["name"] = "bp-WordPress"
        document["spec"]["colour"] = "blue"
        document["spec"]["depends"][0]["version"] = "^^1.4"
        document["spec"]["manifests"]["source"]["kind"] = "Kustomization"

    _edit(folder, change)
    result = run_catalyst("blueprint", "lint", "catalog")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    file = "catalog/bp-wordpress/1.4.0/blueprint.yaml"
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{file}:/metadata/name",
        f"{file}:/spec/colour",
        f"{file}:/spec/depends/0/version",
        f"{file}:/spec/manifests/source/kind",
    ]
    assert "DNS label" in lines[0]
    assert lines[1].startswith(f"{file}:/spec/colour: unknown key (line ")
    assert "'^^1.4' is not valid" in lines[2]
    assert "'Kustomization' is not one of ['HelmChart', 'Kustomize']" in lines[3]
    assert result.stderr == (
        "catalyst: error: 4 problem(s) in 1 path(s) (1 Blueprint version(s) checked)\n"
    )


def test_a_single_blueprint_folder_or_file_can_be_linted(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path / "redis")
    for target in (folder, folder / "blueprint.yaml"):
        result = run_catalyst("blueprint", "lint", str(target))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout == "OK: 1 Blueprint version(s) checked, no problems\n"


def test_a_yaml_bomb_is_refused_quickly(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    (bomb / "blueprint.yaml").write_text(
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n"
            for i in range(8)
        )
    )
    started = time.perf_counter()
    result = run_catalyst("blueprint", "lint", "bomb")
    assert time.perf_counter() - started < 10
    assert result.returncode == 1
    assert result.stdout.startswith("bomb/blueprint.yaml:/: YAML aliases (*name) are not allowed")


def test_a_folder_without_blueprints_is_a_problem(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = run_catalyst("blueprint", "lint", "empty")
    assert result.returncode == 1
    assert result.stdout == "empty:/: no blueprint.yaml was found in this folder\n"


def test_a_missing_path_is_a_usage_error(run_catalyst: RunCatalyst) -> None:
    result = run_catalyst("blueprint", "lint", "nowhere")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_duplicates_across_paths_are_reported(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    _copy("bp-redis/7.4.1", tmp_path / "a" / "redis")
    _copy("bp-redis/7.4.1", tmp_path / "b" / "redis")
    result = run_catalyst("blueprint", "lint", "a", "b")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "a/redis/blueprint.yaml:/metadata/version: bp-redis 7.4.1 is published twice: "
        "here and at b/redis",
        "b/redis/blueprint.yaml:/metadata/version: bp-redis 7.4.1 is published twice: "
        "here and at a/redis",
    ]


def test_organization_checks_apply_with_the_organization_option(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path / "pg")
    _edit(folder, lambda d: d["spec"].update(visibility="private"))
    public = run_catalyst("blueprint", "lint", "pg")
    assert public.returncode == 1
    assert public.stdout.startswith("pg/blueprint.yaml:/spec/visibility: a private Blueprint")
    assert run_catalyst("blueprint", "lint", "--organization", "acme", "pg").returncode == 0
    invalid = run_catalyst("blueprint", "lint", "--organization", "ACME", "pg")
    assert invalid.returncode == 1
    assert invalid.stderr.startswith("catalyst: error: Organization name 'ACME'")


def test_a_dependency_no_linted_version_satisfies_is_reported(tmp_path: Path) -> None:
    _copy("bp-wordpress/1.4.0", tmp_path / "bp-wordpress" / "1.4.0")
    _copy("bp-postgres/2.0.0", tmp_path / "bp-postgres" / "2.0.0")
    report = lint([tmp_path])
    assert report.checked == 2
    [problem] = report.problems
    assert problem.pointer == "/spec/depends/0/version"
    assert problem.message == "no version of bp-postgres satisfies '^1.4' (found 2.0.0)"
    # Linting the Blueprint alone says nothing: its dependency is not among the paths.
    assert lint([tmp_path / "bp-wordpress"]).ok
