"""Dependency resolution: a Blueprint, a version range and a config become a graph of nodes.

:func:`resolve` walks the whole dependency tree of a Blueprint (SPEC §5.1, §5.2, §9):

* **Versions.** Ranges use npm semantics (``^1.4``, ``~1.4``, ``1.2.x``, ``1.2.3``, ``>=1 <2``,
  ``||``); prereleases only match ranges that name them. The highest satisfying version wins.
  Each Blueprint's version list is read once per :class:`Resolver` and grouped by major; a
  major's versions are parsed and sorted once, when a range first reaches it, and a range is
  answered by binary search from its upper bound, not by scanning every version.
* **Conditions and values.** For each dependency of a node, ``when`` is evaluated in the node's
  context (its public config, its Application name, the Environment; see
  :mod:`~catalyst_kernel.provisioning.expressions`) and the decision is recorded with its reason;
  ``values`` are rendered in the same context and become the dependency's config, which is then
  defaulted, validated and split against the dependency's ``configSchema``
  (:mod:`~catalyst_kernel.provisioning.config`).
* **Diamonds.** A Blueprint required several times in one plan is **one node**: its version is
  the highest satisfying every range on it, and its config is the deep merge of every
  requirer's values (mappings merge key by key, lists are united in order, equal scalars
  agree). Incompatible ranges, or two different scalars at one place, are a ``conflict`` naming
  both requirement chains.
* **Cycles, unsatisfiable ranges, pinned versions.** A cycle is an error naming it; a range no
  published version satisfies names its chain and the versions that exist. ``pinned`` maps a
  Blueprint name to the version of an existing Application the caller reuses: that node is not
  descended into, its version must satisfy every range on it, and the values its requirers
  render are not applied (the existing Application keeps its config). Pins of Blueprints the
  plan does not need are ignored.

Because a diamond's version and config depend on every requirer, which depend on the versions
chosen above them, resolution runs in passes until nothing changes (usually one pass, two with
diamonds); expansions are memoised, so a later pass only redoes what changed. Errors are raised
once the graph is stable, the first in breadth-first order.

Application names follow SPEC §4: the root is the caller's Application, every created
dependency is ``{root application}-{blueprint without bp-}``; a pinned node has none (the caller
knows which Application it reuses). Since a Blueprint is one node per plan, names are unique.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

from attrs import field, frozen
from semantic_version import Version
from semantic_version.base import AllOf, AnyOf, Range

from catalyst_kernel.errors import CatalystError, FieldProblem, InvalidInput, NotFound
from catalyst_kernel.model.blueprint import Blueprint, parse_version_range
from catalyst_kernel.model.names import (
    check_application_name,
    check_blueprint_name,
    check_environment_name,
    check_semver,
    dependency_application_name,
)
from catalyst_kernel.model.plan import WhenDecision
from catalyst_kernel.model.validators import name_rule
from catalyst_kernel.provisioning.config import ConfigSchema, SecretValue, ValidatedConfig
from catalyst_kernel.provisioning.expressions import (
    ExpressionContext,
    ExpressionError,
    evaluate_condition,
    render_values,
)

if TYPE_CHECKING:
    from catalyst_kernel.blueprints.lookup import BlueprintLookup

__all__ = [
    "ANY_VERSION",
    "InstallTarget",
    "Requirement",
    "Resolution",
    "ResolutionError",
    "ResolvedNode",
    "Resolver",
    "resolve",
]

ANY_VERSION: Final = "*"
"""The range used when the caller asks for no particular version of the root."""
MAX_PASSES: Final = 64
_SHOWN_VERSIONS: Final = 8


class ResolutionError(InvalidInput):
    """The dependency tree cannot be resolved; nothing was planned.

    :param kind: ``unsatisfiable`` (no published version satisfies a range), ``conflict``
        (incompatible requirements on one Blueprint), ``cycle``, ``pinned`` (a reused
        Application's version does not satisfy a range), ``invalid-config`` (a config fails its
        ``configSchema``), ``invalid-blueprint`` (a broken ``configSchema``, ``when`` or
        ``values``) or ``unsettled`` (the passes did not converge).
    :param chains: the requirement chains involved, e.g.
        ``bp-web-stack@1.0.0 → wordpress(bp-wordpress@1.4.0) → db(bp-postgres ^1.4)``.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        chains: Sequence[str] = (),
        field: str | None = None,
        problems: Sequence[FieldProblem] = (),
    ) -> None:
        super().__init__(message, field=field, problems=problems)
        self.kind = kind
        self.chains = tuple(chains)


# --------------------------------------------------------------------------------------------
# the public result


@frozen
class InstallTarget:
    """Where the root Application is installed: its name and its Environment."""

    application: str = field(validator=name_rule(check_application_name))
    environment: str = field(validator=name_rule(check_environment_name))


@frozen
class Requirement:
    """One request for a Blueprint: the root request, or a dependency of another node.

    :param blueprint: the Blueprint asked for.
    :param range: the npm-style version range asked for.
    :param alias: the dependency's alias in the requirer (``None`` for the root request).
    :param requirer: the requiring node's Blueprint name (``None`` for the root request).
    :param via: the labels of the nodes from the root down to the requirer.
    """

    blueprint: str
    range: str
    alias: str | None = None
    requirer: str | None = None
    via: tuple[str, ...] = ()

    @property
    def chain(self) -> str:
        """``bp-web-stack@1.0.0 → wordpress(bp-wordpress@1.4.0) → db(bp-postgres ^1.4)``."""
        asked = f"{self.blueprint} {self.range}"
        last = asked if self.alias is None else f"{self.alias}({asked})"
        return " → ".join((*self.via, last))


@frozen
class ResolvedNode:
    """One Blueprint of the plan, at one version.

    :param name: the Blueprint name; unique in a :class:`Resolution`.
    :param version: the selected (or pinned) version.
    :param blueprint: the Blueprint at that version; ``None`` when pinned (not loaded).
    :param application: the Application to create for it (``None`` when pinned).
    :param pinned: whether an existing Application is reused.
    :param requirements: every request for it, in breadth-first order.
    :param config: its validated, defaulted config without secrets (empty when pinned).
    :param secrets: the secret values of its config, by JSON pointer.
    :param dependencies: alias → name of the node serving it (only enabled dependencies).
    :param decisions: why each of its dependencies is on or off.
    """

    name: str
    version: str
    blueprint: Blueprint | None
    application: str | None
    pinned: bool
    requirements: tuple[Requirement, ...]
    config: Mapping[str, Any] = field(factory=dict)
    secrets: Mapping[str, SecretValue] = field(factory=dict)
    dependencies: Mapping[str, str] = field(factory=dict)
    decisions: tuple[WhenDecision, ...] = ()


@frozen
class Resolution:
    """A resolved dependency graph.

    :param root: the root node's name (the Blueprint being installed).
    :param nodes: every node, dependencies before their dependents (the root last).
    """

    root: str
    nodes: tuple[ResolvedNode, ...]

    def node(self, name: str) -> ResolvedNode:
        """The node of Blueprint ``name``; :class:`KeyError` if it is not in the plan."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def root_node(self) -> ResolvedNode:
        return self.node(self.root)

    @property
    def versions(self) -> Mapping[str, str]:
        """Selected version by Blueprint name."""
        return {node.name: node.version for node in self.nodes}

    @property
    def decisions(self) -> tuple[WhenDecision, ...]:
        """Every ``when`` decision, node by node in dependency order."""
        return tuple(decision for node in self.nodes for decision in node.decisions)


# --------------------------------------------------------------------------------------------
# versions

_Key = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def _version_key(version: Any) -> _Key:
    """SemVer precedence as a tuple (build metadata ignored, as the spec says)."""
    pre = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in version.prerelease
    )
    return (version.major, version.minor, version.patch, 0 if pre else 1, pre)


_PLAIN: Final = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def _text_key(text: str) -> _Key | None:
    # The common "1.4.2" skips semantic_version: a big catalog has many versions to parse.
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        major, minor, patch = plain.groups()
        return (int(major), int(minor), int(patch), 1, ())
    try:
        return _version_key(Version(text))
    except ValueError:
        return None


@frozen
class _Range:
    text: str
    spec: Any
    lower: _Key | None
    upper: _Key | None


def _bounds(clause: Any) -> tuple[_Key | None, _Key | None]:
    """Loose lower and upper precedence bounds of an NpmSpec clause (``None``: unbounded)."""
    if isinstance(clause, Range):
        key = _version_key(clause.target)
        if clause.operator == Range.OP_EQ:
            return key, key
        if clause.operator in (Range.OP_LT, Range.OP_LTE):
            return None, key
        if clause.operator in (Range.OP_GT, Range.OP_GTE):
            return key, None
        return None, None
    if isinstance(clause, (AllOf, AnyOf)):
        pairs = [_bounds(child) for child in clause.clauses]
        lowers = [low for low, _ in pairs]
        uppers = [high for _, high in pairs]
        if isinstance(clause, AllOf):
            known_low = [low for low in lowers if low is not None]
            known_high = [high for high in uppers if high is not None]
            return (max(known_low) if known_low else None, min(known_high) if known_high else None)
        low = None if not lowers or None in lowers else min(k for k in lowers if k is not None)
        high = None if not uppers or None in uppers else max(k for k in uppers if k is not None)
        return low, high
    return None, None


_RANGES: dict[str, _Range] = {}


def _range(text: str) -> _Range:
    cached = _RANGES.get(text)
    if cached is None:
        spec = parse_version_range(text)
        lower, upper = _bounds(spec.clause)
        cached = _Range(text, spec, lower, upper)
        if len(_RANGES) < 4096:
            _RANGES[text] = cached
    return cached


def _number(text: str) -> int | None:
    """``text`` as a SemVer numeric identifier (ASCII digits, no leading zero), or ``None``."""
    if text.isascii() and text.isdigit() and (text == "0" or text[0] != "0"):
        return int(text)
    return None


def _group(texts: Sequence[str], split: int) -> dict[int, list[str]]:
    """Group version strings by their ``split``-th dot-separated number (0: major, 1: minor)."""
    heads: dict[str, list[str]] = {}
    for text in texts:
        head = text.split(".", split + 1)[split] if split else text.partition(".")[0]
        heads.setdefault(head, []).append(text)
    return {
        number: members for head, members in heads.items() if (number := _number(head)) is not None
    }


class _Versions:
    """The published versions of one Blueprint, read once and parsed lazily.

    Reading only groups the version strings by major number (one string split per version).
    The first time a range can reach a major, its versions are grouped by minor; the first time
    it can reach a minor, that group is parsed and sorted. A range is then answered from its
    upper bound downwards, so neither the number of published versions nor the number of
    requirements multiplies the parsing: each version is parsed at most once, and usually most
    are never parsed at all.
    """

    __slots__ = ("_by_major", "_majors", "_minors", "_parsed", "_sorted")

    def __init__(self, texts: Sequence[str]) -> None:
        self._by_major = _group(texts, 0)
        self._majors = sorted(self._by_major)
        self._minors: dict[int, tuple[list[int], dict[int, list[str]]]] = {}
        self._sorted: dict[tuple[int, int], tuple[list[_Key], list[str]]] = {}
        self._parsed: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self._majors)

    def _minor_groups(self, major: int) -> tuple[list[int], dict[int, list[str]]]:
        cached = self._minors.get(major)
        if cached is None:
            groups = _group(self._by_major[major], 1)
            cached = self._minors[major] = (sorted(groups), groups)
        return cached

    def _group_sorted(self, major: int, minor: int) -> tuple[list[_Key], list[str]]:
        cached = self._sorted.get((major, minor))
        if cached is None:
            texts = self._minor_groups(major)[1][minor]
            entries = sorted({(key, text) for text in texts if (key := _text_key(text))})
            cached = ([key for key, _ in entries], [text for _, text in entries])
            self._sorted[(major, minor)] = cached
        return cached

    def _version(self, text: str) -> Any:
        version = self._parsed.get(text)
        if version is None:
            version = self._parsed[text] = Version(text)
        return version

    def _descending(self, lower: _Key | None, upper: _Key | None) -> Iterator[str]:
        """Every version between the bounds (inclusive), highest first."""
        start = bisect_left(self._majors, lower[0]) if lower else 0
        stop = bisect_right(self._majors, upper[0]) if upper else len(self._majors)
        for major in reversed(self._majors[start:stop]):
            minors = self._minor_groups(major)[0]
            first = bisect_left(minors, lower[1]) if lower and lower[0] == major else 0
            last = bisect_right(minors, upper[1]) if upper and upper[0] == major else len(minors)
            for minor in reversed(minors[first:last]):
                keys, texts = self._group_sorted(major, minor)
                high = bisect_right(keys, upper) if upper else len(keys)
                low = bisect_left(keys, lower) if lower else 0
                for index in range(high - 1, low - 1, -1):
                    yield texts[index]

    def highest(self, ranges: Sequence[_Range]) -> str | None:
        """The highest version satisfying every range, or ``None``."""
        lowers = [item.lower for item in ranges if item.lower is not None]
        uppers = [item.upper for item in ranges if item.upper is not None]
        lower = max(lowers) if lowers else None
        upper = min(uppers) if uppers else None
        for text in self._descending(lower, upper):
            version = self._version(text)
            if all(item.spec.match(version) for item in ranges):
                return text
        return None

    def describe(self) -> str:
        """The newest published versions, for error messages."""
        newest = list(islice(self._descending(None, None), _SHOWN_VERSIONS + 1))
        if not newest:
            return "none"
        shown = newest[:_SHOWN_VERSIONS]
        total = len({text for texts in self._by_major.values() for text in texts})
        return ", ".join(shown) + (f" and {total - len(shown)} older" if total > len(shown) else "")


def _matches(version: str, item: _Range) -> bool:
    return bool(item.spec.match(Version(version)))


# --------------------------------------------------------------------------------------------
# values


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class _Clash(Exception):
    def __init__(self, path: tuple[str | int, ...]) -> None:
        self.path = path


def _merge_into(base: Any, addition: Any, path: tuple[str | int, ...]) -> Any:
    if isinstance(base, Mapping) and isinstance(addition, Mapping):
        merged = dict(base)
        for key, value in addition.items():
            merged[key] = _merge_into(merged[key], value, (*path, key)) if key in merged else value
        return merged
    if isinstance(base, list) and isinstance(addition, list):
        seen = {_canonical(item) for item in base}
        return base + [item for item in addition if _canonical(item) not in seen]
    if _canonical(base) != _canonical(addition):
        raise _Clash(path)
    return base


def _lookup(document: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(document, Mapping) and part in document:
            document = document[part]
        else:
            return False, None
    return True, document


def _merge(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Deep-merge requirers' values; :class:`_Clash` carries the two documents that disagree."""
    merged: dict[str, Any] = {}
    for index, document in enumerate(documents):
        try:
            merged = _merge_into(merged, document, ())
        except _Clash as clash:
            _, mine = _lookup(document, clash.path)
            for other, earlier in enumerate(documents[:index]):
                found, theirs = _lookup(earlier, clash.path)
                if found and _canonical(theirs) != _canonical(mine):
                    raise _ValuesConflict(clash.path, other, index) from None
            raise _ValuesConflict(clash.path, 0, index) from None
    return merged


class _ValuesConflict(Exception):
    def __init__(self, path: tuple[str | int, ...], first: int, second: int) -> None:
        self.pointer = FieldProblem.at(path, "").pointer
        self.first = first
        self.second = second


# --------------------------------------------------------------------------------------------
# one pass


@frozen
class _Child:
    alias: str
    blueprint: str
    range: str
    values: Mapping[str, Any]


@frozen
class _Expansion:
    blueprint: Blueprint
    application: str
    config: ValidatedConfig
    children: tuple[_Child, ...]
    decisions: tuple[WhenDecision, ...]


class _Pass:
    """What one walk from the root found, in breadth-first order."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.requirements: dict[str, list[Requirement]] = {}
        self.values: dict[str, list[Mapping[str, Any]]] = {}
        self.used: dict[str, tuple[str | None, str]] = {}
        self.used_values: dict[str, Mapping[str, Any]] = {}
        self.paths: dict[str, tuple[str, ...]] = {}
        self.expansions: dict[str, _Expansion] = {}
        self.errors: dict[str, CatalystError] = {}

    def require(self, requirement: Requirement, values: Mapping[str, Any]) -> bool:
        """Record a requirement; ``True`` if its Blueprint is new in this pass."""
        name = requirement.blueprint
        new = name not in self.requirements
        if new:
            self.order.append(name)
            self.requirements[name] = []
            self.values[name] = []
        self.requirements[name].append(requirement)
        self.values[name].append(values)
        return new

    def fail(self, name: str, error: CatalystError) -> None:
        self.errors.setdefault(name, error)


class Resolver:
    """Resolves dependency trees against one catalog snapshot.

    Version lists, Blueprints, checked ``configSchema``s and node expansions are cached for the
    Resolver's lifetime: keep one only as long as the catalog it reads does not change (one
    request, one plan).
    """

    def __init__(self, lookup: BlueprintLookup) -> None:
        self._lookup = lookup
        self._versions: dict[str, _Versions] = {}
        self._blueprints: dict[tuple[str, str], tuple[Blueprint, ConfigSchema]] = {}
        self._expansions: dict[tuple[str, str, str], _Expansion | ResolutionError] = {}

    # -- catalog access ------------------------------------------------------------------------

    def _index(self, name: str) -> _Versions:
        index = self._versions.get(name)
        if index is None:
            index = self._versions[name] = _Versions(self._lookup.versions(name))
        return index

    def _blueprint(self, name: str, version: str) -> tuple[Blueprint, ConfigSchema]:
        cached = self._blueprints.get((name, version))
        if cached is None:
            blueprint = self._lookup.get(name, version)
            schema = ConfigSchema(
                blueprint.spec.config_schema, what=f"configSchema of {name}@{version}"
            )
            cached = self._blueprints[(name, version)] = (blueprint, schema)
        return cached

    # -- the algorithm -------------------------------------------------------------------------

    def resolve(
        self,
        blueprint: str,
        version: str | None,
        config: Mapping[str, Any] | None,
        target: InstallTarget,
        *,
        pinned: Mapping[str, str] | None = None,
    ) -> Resolution:
        """Resolve ``blueprint`` (highest version in ``version``, a range or ``None`` for any).

        :param config: the root Application's config, as the user gave it (defaults are applied
            and secrets split out here).
        :param target: the root Application's name and Environment.
        :param pinned: Blueprint name → version of an existing Application to reuse for it.
        :raises NotFound: if ``blueprint`` has no version visible to this catalog (and whatever
            the lookup's ``get`` raises for a version it listed).
        :raises ResolutionError: see its ``kind``; raised once resolution is stable.
        :raises InvalidInput: if ``version`` or ``pinned`` is malformed.
        """
        check_blueprint_name(blueprint)
        root_range = _range(version if version is not None else ANY_VERSION)
        pins = _check_pins(pinned or {}, root=blueprint)
        if not self._index(blueprint):
            raise NotFound(f"Blueprint {blueprint} does not exist or is not visible")
        run = _Run(self, blueprint, root_range, dict(config or {}), target, pins)
        return run.resolve()


def _check_pins(pinned: Mapping[str, str], *, root: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for name, version in pinned.items():
        try:
            check_blueprint_name(name)
            check_semver(version, what=f"pinned version of {name}")
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field=f"pinned/{name}") from None
        if name == root:
            raise InvalidInput(
                f"{name} is the Blueprint being installed; it cannot also be pinned",
                field=f"pinned/{name}",
            )
        pins[name] = version
    return pins


class _Run:
    """One call to :meth:`Resolver.resolve`: passes until the graph is stable."""

    def __init__(
        self,
        resolver: Resolver,
        root: str,
        root_range: _Range,
        config: dict[str, Any],
        target: InstallTarget,
        pins: dict[str, str],
    ) -> None:
        self.resolver = resolver
        self.root = root
        self.root_range = root_range
        self.config = config
        self.target = target
        self.pins = pins

    def resolve(self) -> Resolution:
        prior: dict[str, tuple[str | None, Mapping[str, Any]]] = {}
        seen: set[str] = set()
        walk = self._pass(prior)
        for _ in range(MAX_PASSES):
            targets, changed = self._settle(walk)
            if not changed:
                break
            signature = _canonical(sorted((k, v[0], _canonical(v[1])) for k, v in targets.items()))
            if signature in seen:
                break  # oscillating: report what this pass found
            seen.add(signature)
            prior = targets
            walk = self._pass(prior)
        for name in walk.order:
            if name in walk.errors:
                raise walk.errors[name]
        cycle = self._cycle(walk)
        if cycle is not None:
            raise cycle
        if changed:
            raise ResolutionError(
                f"the dependency tree of {self.root} does not settle: "
                "the versions selected keep changing what is required",
                kind="unsettled",
            )
        return self._result(walk)

    # -- one walk ------------------------------------------------------------------------------

    def _application(self, name: str) -> str:
        if name == self.root:
            return self.target.application
        return dependency_application_name(self.target.application, name)

    def _pass(self, prior: Mapping[str, tuple[str | None, Mapping[str, Any]]]) -> _Pass:
        walk = _Pass()
        walk.require(Requirement(self.root, self.root_range.text), self.config)
        queue = deque([self.root])
        while queue:
            name = queue.popleft()
            first = walk.requirements[name][0]
            if name in self.pins:
                version: str | None = self.pins[name]
                values: Mapping[str, Any] = {}
            elif name in prior:
                version, values = prior[name]
            else:
                version = self._select(walk, name)
                values = self._values(walk, name) or {}
            walk.used[name] = (version, _canonical(values))
            walk.used_values[name] = values
            label = f"{name}@{version}" if version else f"{name} {first.range}"
            if first.alias is not None:
                label = f"{first.alias}({label})"
            walk.paths[name] = (*first.via, label)
            if version is None or name in self.pins:
                continue
            expansion = self._expand(walk, name, version, values)
            if expansion is None:
                continue
            walk.expansions[name] = expansion
            for child in expansion.children:
                requirement = Requirement(
                    child.blueprint, child.range, child.alias, name, walk.paths[name]
                )
                if walk.require(requirement, child.values):
                    queue.append(child.blueprint)
        return walk

    def _select(self, walk: _Pass, name: str) -> str | None:
        """Highest version satisfying every range seen so far; records the error if none."""
        requirements = walk.requirements[name]
        index = self.resolver._index(name)
        selected = index.highest([_range(r.range) for r in requirements])
        if selected is None:
            walk.fail(name, self._selection_error(name, requirements, index))
        return selected

    def _values(self, walk: _Pass, name: str) -> Mapping[str, Any] | None:
        if name == self.root:
            return self.config
        try:
            return _merge(walk.values[name])
        except _ValuesConflict as conflict:
            requirements = walk.requirements[name]
            chains = (requirements[conflict.first].chain, requirements[conflict.second].chain)
            walk.fail(
                name,
                ResolutionError(
                    f"{name} is required with different values at {conflict.pointer or '/'}: "
                    f"{chains[0]} and {chains[1]}",
                    kind="conflict",
                    chains=chains,
                    field=conflict.pointer,
                ),
            )
            return None

    def _selection_error(
        self, name: str, requirements: Sequence[Requirement], index: _Versions
    ) -> ResolutionError:
        if not index:
            return ResolutionError(
                f"no version of {name} is published (or visible): required by "
                f"{requirements[0].chain}",
                kind="unsatisfiable",
                chains=(requirements[0].chain,),
            )
        for requirement in requirements:
            if index.highest([_range(requirement.range)]) is None:
                return ResolutionError(
                    f"no version of {name} satisfies {requirement.range}: required by "
                    f"{requirement.chain}; published: {index.describe()}",
                    kind="unsatisfiable",
                    chains=(requirement.chain,),
                )
        ranges = [_range(r.range) for r in requirements]
        # The smallest prefix that cannot be satisfied ends with the culprit; find its partner.
        end = next(k for k in range(2, len(ranges) + 1) if index.highest(ranges[:k]) is None)
        culprit = requirements[end - 1]
        partners = [
            requirements[i]
            for i in range(end - 1)
            if index.highest([ranges[i], ranges[end - 1]]) is None
        ] or list(requirements[: end - 1])
        chains = (*(p.chain for p in partners), culprit.chain)
        return ResolutionError(
            f"{name} is required with incompatible ranges: {' and '.join(chains)}; "
            f"no published version satisfies all of them (published: {index.describe()})",
            kind="conflict",
            chains=chains,
        )

    def _expand(
        self, walk: _Pass, name: str, version: str, values: Mapping[str, Any]
    ) -> _Expansion | None:
        key = (name, version, _canonical(values))
        cached = self.resolver._expansions.get(key)
        if cached is None:
            try:
                cached = self._compute_expansion(name, version, values)
            except ResolutionError as exc:
                cached = exc
            self.resolver._expansions[key] = cached
        if isinstance(cached, ResolutionError):
            # Expansions are shared between passes; the chain is this pass's.
            walk.fail(
                name,
                ResolutionError(
                    f"{' → '.join(walk.paths[name])}: {cached.message}",
                    kind=cached.kind,
                    chains=(walk.requirements[name][0].chain,),
                    field=cached.field,
                    problems=cached.problems,
                ),
            )
            return None
        return cached

    def _compute_expansion(self, name: str, version: str, values: Mapping[str, Any]) -> _Expansion:
        """Load, validate and expand one node; errors do not name the chain (the caller does)."""
        try:
            blueprint, schema = self.resolver._blueprint(name, version)
        except InvalidInput as exc:
            raise ResolutionError(
                exc.message,
                kind="invalid-blueprint",
                field=exc.field,
                problems=exc.problems,
            ) from None
        try:
            application = self._application(name)
        except InvalidInput as exc:
            raise ResolutionError(exc.message, kind="invalid-config") from None
        try:
            config = schema.validate(values, what=f"config of {name}@{version}")
        except InvalidInput as exc:
            raise ResolutionError(
                exc.message,
                kind="invalid-config",
                field=exc.field,
                problems=exc.problems,
            ) from None
        # Templates see only the public config: what they render may be written to Git.
        context = ExpressionContext.for_application(
            config.public, application, self.target.environment
        )
        children: list[_Child] = []
        decisions: list[WhenDecision] = []
        for position, dependency in enumerate(blueprint.spec.depends):
            location = f"/spec/depends/{position}"
            try:
                if dependency.when is None:
                    enabled, reason = True, "no condition: always required"
                else:
                    outcome = evaluate_condition(dependency.when, context)
                    enabled, reason = outcome.value, outcome.explain()
                rendered = render_values(dependency.values, context) if enabled else {}
            except ExpressionError as exc:
                part = "when" if exc.field is None else f"values{exc.field}"
                raise ResolutionError(
                    f"{location}/{part} ({dependency.alias}): {exc.message}",
                    kind="invalid-blueprint",
                    field=f"{location}/{part}",
                ) from None
            except InvalidInput as exc:
                raise ResolutionError(
                    f"{location}/values ({dependency.alias}): {exc.message}",
                    kind="invalid-blueprint",
                    field=f"{location}/values",
                ) from None
            decisions.append(
                WhenDecision(
                    application=application,
                    alias=dependency.alias,
                    expression=dependency.when,
                    enabled=enabled,
                    reason=reason,
                )
            )
            if enabled:
                children.append(
                    _Child(dependency.alias, dependency.blueprint, dependency.version, rendered)
                )
        return _Expansion(blueprint, application, config, tuple(children), tuple(decisions))

    # -- after a walk --------------------------------------------------------------------------

    def _settle(self, walk: _Pass) -> tuple[dict[str, tuple[str | None, Mapping[str, Any]]], bool]:
        """What each node should be given everything this pass required, and if that differs."""
        targets: dict[str, tuple[str | None, Mapping[str, Any]]] = {}
        changed = False
        for name in walk.order:
            requirements = walk.requirements[name]
            used_version, used_values = walk.used[name]
            if name in self.pins:
                self._check_pin(walk, name, requirements)
                continue
            index = self.resolver._index(name)
            version = index.highest([_range(r.range) for r in requirements])
            if version is None:
                walk.fail(name, self._selection_error(name, requirements, index))
                version = used_version
            values = self._values(walk, name)
            if values is None:
                values = walk.used_values[name]
            targets[name] = (version, values)
            if version != used_version or _canonical(values) != used_values:
                changed = True
        return targets, changed

    def _check_pin(self, walk: _Pass, name: str, requirements: Sequence[Requirement]) -> None:
        version = self.pins[name]
        refused = [r for r in requirements if not _matches(version, _range(r.range))]
        if refused:
            chains = tuple(r.chain for r in refused)
            walk.fail(
                name,
                ResolutionError(
                    f"{name} is pinned to {version} (an existing Application is reused), which "
                    f"does not satisfy {' and '.join(chains)}",
                    kind="pinned",
                    chains=chains,
                ),
            )

    def _children(self, walk: _Pass, name: str) -> tuple[_Child, ...]:
        expansion = walk.expansions.get(name)
        return expansion.children if expansion is not None else ()

    def _cycle(self, walk: _Pass) -> ResolutionError | None:
        """The first cycle found depth-first from the root, as a chain, or ``None``."""
        on_path: dict[str, int] = {self.root: 0}  # node -> its position in ``stack``
        done: set[str] = set()
        # Iterative: a deep catalog must not hit Python's recursion limit.
        stack: list[tuple[str, str | None, int]] = [(self.root, None, 0)]
        while stack:
            name, alias, next_child = stack[-1]
            children = self._children(walk, name)
            if next_child == len(children):
                stack.pop()
                del on_path[name]
                done.add(name)
                continue
            stack[-1] = (name, alias, next_child + 1)
            child = children[next_child]
            if child.blueprint in on_path:
                start = on_path[child.blueprint]
                first = stack[start][0]
                labels = [f"{first}@{walk.used[first][0]}"]
                labels += [f"{a}({n}@{walk.used[n][0]})" for n, a, _ in stack[start + 1 :]]
                labels.append(f"{child.alias}({child.blueprint} {child.range})")
                chain = " → ".join(labels)
                return ResolutionError(f"dependency cycle: {chain}", kind="cycle", chains=(chain,))
            if child.blueprint not in done:
                on_path[child.blueprint] = len(stack)
                stack.append((child.blueprint, child.alias, 0))
        return None

    def _result(self, walk: _Pass) -> Resolution:
        ordered: list[str] = []
        seen = {self.root}
        stack: list[tuple[str, int]] = [(self.root, 0)]
        while stack:  # post-order: every dependency before its dependents, the root last
            name, next_child = stack[-1]
            children = self._children(walk, name)
            if next_child == len(children):
                stack.pop()
                ordered.append(name)
                continue
            stack[-1] = (name, next_child + 1)
            child = children[next_child].blueprint
            if child not in seen:
                seen.add(child)
                stack.append((child, 0))
        nodes = []
        for name in ordered:
            version = walk.used[name][0]
            assert version is not None  # an unselected node always left an error behind
            requirements = tuple(walk.requirements[name])
            expansion = walk.expansions.get(name)
            if expansion is None:
                nodes.append(ResolvedNode(name, version, None, None, True, requirements))
                continue
            nodes.append(
                ResolvedNode(
                    name=name,
                    version=version,
                    blueprint=expansion.blueprint,
                    application=expansion.application,
                    pinned=False,
                    requirements=requirements,
                    config=expansion.config.public,
                    secrets=expansion.config.secrets,
                    dependencies={child.alias: child.blueprint for child in expansion.children},
                    decisions=expansion.decisions,
                )
            )
        return Resolution(root=self.root, nodes=tuple(nodes))


def resolve(
    lookup: BlueprintLookup,
    blueprint: str,
    version: str | None,
    config: Mapping[str, Any] | None,
    target: InstallTarget,
    *,
    pinned: Mapping[str, str] | None = None,
) -> Resolution:
    """Resolve the dependency tree of ``blueprint`` for an install at ``target``.

    Shorthand for ``Resolver(lookup).resolve(...)``; see :meth:`Resolver.resolve`.
    """
    return Resolver(lookup).resolve(blueprint, version, config, target, pinned=pinned)
