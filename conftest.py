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
from hypothesis import settings as hypothesis_settings

pytest_plugins = ["pytester"]

# Property tests: no per-example deadline (shared two-core machines stall), and in CI a fixed
# derandomised search so a landing run is reproducible; locally the search stays random.
hypothesis_settings.register_profile("default", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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


UPSTREAM_SCHEMAS = Path(__file__).parent / "tests" / "upstream-schemas"


class UpstreamSchemas:
    """Validates manifests against the upstream CRD and Kubernetes OpenAPI schemas vendored in
    ``tests/upstream-schemas`` (see its SOURCES.md)."""

    def __init__(self, root: Path) -> None:
        import json

        import yaml

        self._crds: dict[tuple[str, str], dict[str, object]] = {}
        for path in root.glob("*/*.yaml"):
            crd = yaml.safe_load(path.read_text())
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = version["schema"]["openAPIV3Schema"]
                    self._crds[(f"{group}/{version['name']}", kind)] = schema
        core = json.loads((root / "kubernetes" / "api__v1_openapi.json").read_text())
        self._core = core
        self._core_kinds = {
            ("v1", name.rsplit(".", 1)[-1]): f"#/components/schemas/{name}"
            for name in core["components"]["schemas"]
            if name.startswith("io.k8s.api.core.v1.")
        }

    def kinds(self) -> set[tuple[str, str]]:
        return set(self._crds) | set(self._core_kinds)

    def errors(self, manifest: dict[str, object]) -> list[str]:
        """Every schema violation of ``manifest`` (empty when valid)."""
        import jsonschema

        key = (str(manifest.get("apiVersion")), str(manifest.get("kind")))
        if key in self._crds:
            validator: jsonschema.protocols.Validator = jsonschema.Draft7Validator(self._crds[key])
        elif key in self._core_kinds:
            schema = {**self._core, "$ref": self._core_kinds[key]}
            validator = jsonschema.Draft202012Validator(schema)
        else:
            return [f"no upstream schema for {key}"]
        return [
            f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(manifest)
        ]

    def assert_valid(self, manifest: dict[str, object]) -> None:
        problems = self.errors(manifest)
        assert not problems, f"{manifest.get('kind')} {manifest.get('metadata')}: {problems}"


@pytest.fixture(scope="session")
def upstream_schemas() -> UpstreamSchemas:
    return UpstreamSchemas(UPSTREAM_SCHEMAS)
