"""Repository-wide test fixtures: throw-away installed distributions on a temporary sys.path."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

MakeDistribution = Callable[..., list[importlib.metadata.EntryPoint]]
RunCatalyst = Callable[..., "subprocess.CompletedProcess[str]"]
CATALYST = str(Path(sys.executable).with_name("catalyst"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def site_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory put on ``sys.path`` (and removed, with its modules, afterwards)."""
    site = tmp_path / "site"
    site.mkdir()
    sys.path.insert(0, str(site))
    before = set(sys.modules)
    yield site
    sys.path.remove(str(site))
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def make_distribution(site_dir: Path) -> MakeDistribution:
    """Write an installed distribution: ``make_distribution(name, {ep: "module"}, {module: src})``.

    Returns its ``catalyst`` entry points, whose ``dist`` is set as for a real installation.
    """

    def make(
        name: str,
        entry_points: dict[str, str],
        modules: dict[str, str],
        version: str = "1.0.0",
    ) -> list[importlib.metadata.EntryPoint]:
        normalized = name.replace("-", "_")
        info = site_dir / f"{normalized}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{ep} = {module}\n" for ep, module in entry_points.items())
        (info / "entry_points.txt").write_text(f"[catalyst]\n{lines}")
        for module, source in modules.items():
            (site_dir / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        dist = importlib.metadata.distribution(name)
        return [ep for ep in dist.entry_points if ep.group == "catalyst"]

    return make


@pytest.fixture
def run_catalyst(tmp_path: Path) -> RunCatalyst:
    """Run the installed ``catalyst`` command in ``tmp_path`` with no inherited CATALYST_* vars."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
        environ.update(env or {})
        return subprocess.run(
            [CATALYST, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
        )

    return run
