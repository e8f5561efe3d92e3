"""Meta-tests: the extension points are documented and tested, and the workspace keeps its shape."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from catalyst_kernel.plugins import hookspecs
from catalyst_kernel.plugins.manager import HOOK_CAPABILITIES

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("catalyst_"))
PLUGINS = ["gitea", "nats", "crossplane", "keycloak", "openbao", "kubernetes"]


def _test_function_names() -> set[str]:
    names: set[str] = set()
    for path in ROOT.glob("**/test_*.py"):
        if ".venv" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        names.update(
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
    return names


def test_every_hookspec_is_known_to_the_manager() -> None:
    assert set(HOOKS) == set(HOOK_CAPABILITIES)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_documented(hook: str) -> None:
    reference = (ROOT / "docs" / "hooks.md").read_text()
    assert re.search(rf"^### `{hook}\(ctx\)`", reference, re.MULTILINE), hook


def test_the_hook_reference_documents_no_phantom_hooks() -> None:
    reference = (ROOT / "docs" / "hooks.md").read_text()
    assert set(re.findall(r"^### `(catalyst_\w+)\(ctx\)`", reference, re.MULTILINE)) == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_is_exercised_by_a_test(hook: str) -> None:
    assert f"test_hook_{hook}" in _test_function_names()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_full_docstring(hook: str) -> None:
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert ":param ctx:" in doc
    assert ":return:" in doc


def test_only_the_manager_touches_pm_hook() -> None:
    offenders = []
    for path in (ROOT / "catalyst_kernel" / "src").glob("**/*.py"):
        if path.name == "manager.py":
            continue
        if re.search(r"\.hook\.\w", path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize("name", PLUGINS)
def test_plugin_packages_follow_the_layout(name: str) -> None:
    folder = ROOT / "plugins" / f"catalyst-{name}"
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    assert project["name"] == f"catalyst-{name}"
    assert project["entry-points"]["catalyst"], "declares [project.entry-points.catalyst]"
    (kernel,) = [d for d in project["dependencies"] if d.startswith("catalyst-kernel")]
    assert re.fullmatch(r"catalyst-kernel>=\d+\.\d+,<\d+\.\d+", kernel), "a compatible range"
    assert (folder / "src" / f"catalyst_{name}" / "__init__.py").is_file()
    assert (folder / "tests").is_dir()


def test_workspace_root_has_its_tooling() -> None:
    assert (ROOT / "tox.ini").is_file()
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert root["tool"]["uv"]["workspace"]["members"]
    assert root["tool"]["ruff"]
    assert root["tool"]["mypy"]
    for folder in ("docs/decisions", "benchmarks", ".ci"):
        assert (ROOT / folder).is_dir(), folder
