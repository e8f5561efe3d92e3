"""Dependency resolution of a 200-node graph in a 10,000- and a 100,000-version catalog.

Figure: the time to resolve one 200-node dependency graph (diamonds, ``when`` conditions,
templated ``values``, every config defaulted and validated against its ``configSchema``, secrets
split) with a fresh :class:`Resolver`, in a catalog of 10,000 Blueprint versions and then, same
graph, in one ten times larger. Printed: both times, their growth ratio (target: at most 2x)
and the ratio to the physical limit measured in the same run.

Two ways to grow a catalog tenfold, both measured:

* ``versions``: the graph's own 200 Blueprints go from 50 to 500 published versions each. This
  is the hard case: every version of every Blueprint in the graph must at least be read once.
* ``names``: the 200 Blueprints keep 50 versions and 1,800 unrelated Blueprints are added.

"cold" is the first resolution on a catalog, including checking each ``configSchema`` against
the JSON Schema meta-schema (about a millisecond or more each, cached process-wide by schema
content afterwards; each catalog uses fresh schemas so both cold runs pay it). "warm" is the best
of several later resolutions, each with a fresh Resolver, so version lists are read and parsed
again every time.

Physical limit, measured on the same catalog in the same run (alternating with the resolver, best
of N each): the least work any resolver of this graph must do — look at every published version
of the graph's Blueprints once (they come in no order), walk the resolved graph as a plain dict,
and validate each node's final config with jsonschema directly. The time to parse and sort every
version once (a bare ``split``/``int`` key) is printed next to it for reference: the resolver
avoids most of it by parsing only the major.minor groups a range can reach.

Reading it: on a shared two-core machine (load ~3) the warm time was 150-230 ms at both sizes,
about 8-13x the limit; growth 1.0-1.9x by versions (noise dominated; 1.2x with 15 rounds) and
1.0-1.4x by names. Cold runs add ~0.3-0.5 s, mostly the meta-schema checks of 200 schemas.

Run: uv run python benchmarks/bench_resolution.py [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
from jsonschema import Draft202012Validator

from catalyst_kernel.errors import NotFound
from catalyst_kernel.model import Blueprint, structure
from catalyst_kernel.model.blueprint import BlueprintMetadata
from catalyst_kernel.provisioning.resolution import InstallTarget, Resolution, Resolver

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

NODES = 200
SEED = 20_260_427
TARGET = InstallTarget(application="bench", environment="acme-prod")
# Every range a node receives contains 1.3.2, so diamonds always collapse (sometimes after a
# second pass lowers a version), never conflict.
RANGES = ("^1.0", "^1.2", "~1.3", "1.x", ">=1.1.0 <2.0.0", "1.3.x", "1.3.2")


def versions_for(per_name: int) -> list[str]:
    shapes = {50: (2, 5, 5), 500: (5, 10, 10)}
    majors, minors, patches = shapes[per_name]
    return [f"{a}.{b}.{c}" for a in range(majors) for b in range(minors) for c in range(patches)]


def graph_edges() -> dict[int, list[int]]:
    """A random DAG on 200 nodes, all reachable from node 0, with many diamonds."""
    rng = random.Random(SEED)
    edges: dict[int, list[int]] = {i: [] for i in range(NODES)}
    for child in range(1, NODES):
        edges[rng.randrange(child)].append(child)
    for parent in range(NODES - 1):
        for child in rng.sample(range(parent + 1, NODES), min(2, NODES - parent - 1)):
            if child not in edges[parent] and rng.random() < 0.6:
                edges[parent].append(child)
    return edges


def schema(name: str, tag: str) -> dict[str, Any]:
    return {
        "$comment": f"{name} in catalog {tag}",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "default": True},
            "size": {"enum": ["small", "medium", "large"], "default": "small"},
            "replicas": {"type": "integer", "minimum": 1, "default": 1},
            "consumers": {"type": "array", "items": {"type": "string"}, "default": []},
            "tuning": {
                "type": "object",
                "properties": {
                    "cacheMb": {"type": "integer", "minimum": 0, "default": 64},
                    "logLevel": {"enum": ["debug", "info", "warn"], "default": "info"},
                },
            },
            "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
        },
    }


def template(index: int, edges: dict[int, list[int]], tag: str) -> Blueprint:
    rng = random.Random(SEED + index)
    name = f"bp-n{index:03d}"
    depends: list[dict[str, Any]] = [
        {
            "blueprint": f"bp-n{child:03d}",
            "version": rng.choice(RANGES),
            "alias": f"d{child:03d}",
            "when": "{{ .config.enabled and .environment.envType != 'poc' }}",
            "values": {"consumers": ["{{ .application.name }}"], "size": "{{ .config.size }}"},
        }
        for child in edges[index]
    ]
    if edges[index] and index % 10 == 0:
        depends.append(
            {
                "blueprint": "bp-optional-extra",
                "version": "^1",
                "alias": "extra",
                "when": "{{ .config.size == 'large' }}",
            }
        )
    return structure(
        {
            "metadata": {"name": name, "version": "0.0.0"},
            "spec": {
                "card": {"title": name},
                "configSchema": schema(name, tag),
                "depends": depends,
                "manifests": {"source": {"kind": "Kustomize", "ref": {"path": "manifests"}}},
            },
        },
        Blueprint,
    )


class MemoryCatalog:
    """An in-memory BlueprintLookup; Blueprints are materialised when first asked for."""

    def __init__(self, templates: dict[str, Blueprint], versions: dict[str, list[str]]) -> None:
        self._templates = templates
        self._versions = versions
        self._made: dict[tuple[str, str], Blueprint] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._versions.values())

    def versions(self, name: str) -> Sequence[str]:
        return self._versions.get(name, ())

    def get(self, name: str, version: str) -> Blueprint:
        key = (name, version)
        made = self._made.get(key)
        if made is None:
            if name not in self._templates or version not in self._versions[name]:
                raise NotFound(f"{name}@{version}")
            base = self._templates[name]
            made = attrs.evolve(base, metadata=BlueprintMetadata(name, version))
            self._made[key] = made
        return made


def build_catalog(
    tag: str, edges: dict[int, list[int]], per_name: int, other_names: int
) -> MemoryCatalog:
    rng = random.Random(SEED)
    templates = {f"bp-n{i:03d}": template(i, edges, tag) for i in range(NODES)}
    versions: dict[str, list[str]] = {}
    for name in [*templates, *(f"bp-other{i:04d}" for i in range(other_names))]:
        listed = versions_for(per_name)
        rng.shuffle(listed)  # the lookup promises no order: the resolver must sort
        versions[name] = listed
    return MemoryCatalog(templates, versions)


CONFIG = {"adminPassword": "bench-admin-password"}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Floor:
    """The least work any resolver of this graph does on this catalog, in parts."""

    def __init__(self, catalog: MemoryCatalog, result: Resolution) -> None:
        self.catalog = catalog
        self.root = result.root
        self.names = [node.name for node in result.nodes]
        self.children = {node.name: list(node.dependencies.values()) for node in result.nodes}
        # The configs as the resolver validated them: secrets put back (they are validated too).
        self.configs = {
            node.name: {**node.config, **{p[1:]: s.value for p, s in node.secrets.items()}}
            for node in result.nodes
        }
        self.validators = {
            node.name: Draft202012Validator(node.blueprint.spec.config_schema)
            for node in result.nodes
            if node.blueprint is not None
        }

    def scan(self) -> None:
        """Look at every version of the graph's Blueprints once (they come in no order)."""
        for name in self.names:
            for version in self.catalog.versions(name):
                version.partition(".")

    def sort(self) -> None:
        """Parse and sort every version of the graph's Blueprints once (bare split/int key)."""
        for name in self.names:
            sorted(self.catalog.versions(name), key=lambda v: tuple(map(int, v.split("."))))

    def walk(self) -> None:
        """Walk the resolved graph as a plain dict."""
        seen = {self.root}
        queue = deque([self.root])
        while queue:
            for child in self.children[queue.popleft()]:
                if child not in seen:
                    seen.add(child)
                    queue.append(child)

    def validate(self) -> None:
        """Validate each node's final config with jsonschema, nothing else."""
        for name, validator in self.validators.items():
            validator.validate(self.configs[name])


class Subject:
    """One catalog under test, with its best times so far."""

    def __init__(self, label: str, catalog: MemoryCatalog) -> None:
        self.label = label
        self.catalog = catalog
        start = time.perf_counter()
        self.result = self.resolve()
        self.cold = time.perf_counter() - start
        assert len(self.result.nodes) == NODES, len(self.result.nodes)
        assert self.result.nodes[-1].name == "bp-n000"
        self.floor = Floor(catalog, self.result)
        self.best: dict[str, float] = {}

    def resolve(self) -> Resolution:
        return Resolver(self.catalog).resolve("bp-n000", None, CONFIG, TARGET)

    def round(self) -> None:
        for part, action in (
            ("warm", self.resolve),
            ("scan", self.floor.scan),
            ("sort", self.floor.sort),
            ("walk", self.floor.walk),
            ("validate", self.floor.validate),
        ):
            self.best[part] = min(self.best.get(part, float("inf")), timed(action))

    @property
    def warm(self) -> float:
        return self.best["warm"]

    @property
    def limit(self) -> float:
        return self.best["scan"] + self.best["walk"] + self.best["validate"]

    def report(self) -> None:
        diamonds = sum(1 for node in self.result.nodes if len(node.requirements) > 1)
        ms = {part: f"{value * 1e3:.1f}" for part, value in self.best.items()}
        print(
            f"  {self.label} ({len(self.catalog):,} versions; {diamonds} diamond nodes)\n"
            f"    resolve: cold {self.cold * 1e3:.1f} ms, warm {ms['warm']} ms\n"
            f"    limit {self.limit * 1e3:.1f} ms = scan every version {ms['scan']} + dict walk "
            f"{ms['walk']} + bare jsonschema validation {ms['validate']} ms; "
            f"(parse+sort every version: {ms['sort']} ms)\n"
            f"    warm / limit: {self.warm / self.limit:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="warm rounds (best counts)")
    rounds = parser.parse_args().rounds
    edges = graph_edges()
    print(f"graph: {NODES} nodes, {sum(len(c) for c in edges.values())} edges; best of {rounds}")
    scenarios = [
        ("versions", ("200 names x 50 versions", 50, 0), ("200 names x 500 versions", 500, 0)),
        ("names", ("200 names x 50 versions", 50, 0), ("+ 1,800 other names x 50", 50, 1800)),
    ]
    for kind, *shapes in scenarios:
        print(f"catalog grows tenfold by {kind}:")
        small, big = (
            Subject(label, build_catalog(f"{kind}-{label}", edges, per_name, others))
            for label, per_name, others in shapes
        )
        # Alternate the two catalogs so a noisy neighbour hurts both alike.
        for _ in range(rounds):
            small.round()
            big.round()
        small.report()
        big.report()
        print(
            f"  growth: cold {big.cold / small.cold:.2f}x, warm {big.warm / small.warm:.2f}x "
            f"(target <= 2x); the limit itself grew {big.limit / small.limit:.2f}x"
        )


if __name__ == "__main__":
    main()
