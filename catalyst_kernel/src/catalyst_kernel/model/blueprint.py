"""The Blueprint: a versioned, installable unit of the catalog (SPEC §5.1).

Field names are snake_case here and camelCase in ``blueprint.yaml`` (``configSchema``); the one
converter in :mod:`catalyst_kernel.model.convert` maps between them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs
from attrs import field, frozen
from semantic_version import NpmSpec

from catalyst_kernel.errors import InvalidInput, InvalidName
from catalyst_kernel.model.names import (
    check_blueprint_name,
    check_dns_label,
    check_organization_name,
    check_semver,
)
from catalyst_kernel.model.validators import constant, name_rule, non_empty

__all__ = [
    "BLUEPRINT_API_VERSION",
    "CLAIM_API_VERSION_PATTERN",
    "DURATION_PATTERN",
    "KIND_PATTERN",
    "SEMVER_PATTERN",
    "VERSION_RANGE_PATTERN",
    "Blueprint",
    "BlueprintMetadata",
    "BlueprintSpec",
    "Card",
    "Dependency",
    "ManifestSource",
    "Manifests",
    "Observability",
    "Owner",
    "ResourceNeed",
    "RotationRule",
    "SizingOverlay",
    "SourceKind",
    "SourceRef",
    "UpgradeBlock",
    "Upgrades",
    "Visibility",
    "check_blueprint_version",
    "check_version_range",
    "parse_version_range",
]

BLUEPRINT_API_VERSION: Final = "catalyst.openova.io/v1alpha1"

# The patterns below are copied verbatim into blueprints/schema/blueprint.schema.json (a test
# checks they stay equal), so they are written in the common subset of Python and ECMA-262 regex
# syntax: [0-9] rather than \d (which matches any Unicode digit in Python), no Python-only groups.

#: SemVer 2.0 (semver.org's own expression, ASCII digits only).
SEMVER_PATTERN: Final = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)


def _range_pattern() -> str:
    number = r"(0|[1-9][0-9]*)"
    wild = r"[xX*]"
    identifier = r"(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    qualifier = rf"(-{identifier}(\.{identifier})*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
    # A partial version with a numeric major: 1, 1.x, 1.2, 1.2.x, 1.2.3-rc.1+build.
    numeric = rf"{number}(\.{number}(\.{number}{qualifier}|\.{wild})?|\.{wild}(\.{wild})?)?"
    wildcard = rf"{wild}(\.{wild}(\.{wild})?)?"
    simple = rf"((<=|>=|<|>|=|~|\^)?{numeric}|(>=|=)?{wildcard})"
    hyphen = rf"({numeric}|{wildcard}) - {numeric}"
    group = rf"({hyphen}|{simple}( {simple})*)"
    return rf"^{group}( *\|\| *{group})*$"


#: npm range syntax (``^1.4``, ``~1.4``, ``1.2.x``, ``>=1.2.0 <2.0.0``, ``1.2.3 - 1.4.0``,
#: ``a || b``), restricted to the forms ``semantic_version.NpmSpec`` evaluates as npm does.
VERSION_RANGE_PATTERN: Final = _range_pattern()

#: A Go duration (``720h``, ``1h30m``), as Flux and Kubernetes write them.
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$"

#: ``group/version`` of a Crossplane claim: a DNS subdomain with at least one dot, then vN[alphaN].
CLAIM_API_VERSION_PATTERN: Final = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+"
    r"/v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$"
)

#: A Kubernetes kind: UpperCamelCase.
KIND_PATTERN: Final = r"^[A-Z][A-Za-z0-9]*$"

_SEMVER = re.compile(SEMVER_PATTERN)
_RANGE = re.compile(VERSION_RANGE_PATTERN)
_DURATION = re.compile(DURATION_PATTERN)
_CLAIM_API_VERSION = re.compile(CLAIM_API_VERSION_PATTERN)
_KIND = re.compile(KIND_PATTERN)


def _full(pattern: re.Pattern[str], value: str) -> bool:
    # fullmatch, not search: in Python ``$`` also matches before a final newline, which the JSON
    # Schema's ECMA-262 reading of the same pattern does not.
    return pattern.fullmatch(value) is not None


def check_blueprint_version(value: object) -> str:
    """Return ``value`` if it is a SemVer 2.0 version in ASCII (``1.4.0``, ``2.0.0-rc.1``)."""
    text = check_semver(value)
    if not _full(_SEMVER, text):
        raise InvalidName(
            f"version {text!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])",
            rule="semver",
        )
    return text


def parse_version_range(text: str) -> NpmSpec:
    """``text`` as a semantic_version ``NpmSpec``; any parse failure is :class:`InvalidInput`.

    The library raises more than ``ValueError`` on some malformed input (``'^ - ^'`` gives an
    AttributeError), so every caller parses through here.
    """
    try:
        return NpmSpec(text)
    except (ValueError, AttributeError, TypeError, IndexError) as exc:
        raise InvalidInput(f"version range {text!r} is not valid: {exc}") from None


def check_version_range(value: object) -> str:
    """Return ``value`` if it is an npm-style range (``^1.4``, ``~1.4``, ``1.2.x``, ``1.2.3``)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"version range must be a non-empty string, got {value!r}")
    parse_version_range(value)
    if not _full(_RANGE, value):
        raise InvalidInput(
            f"version range {value!r} is not valid: write npm ranges such as '^1.4', '~1.4', "
            "'1.2.x', '>=1.2.0 <2.0.0', '1.2.3 - 1.4.0' or '1.2.3', joined by '||', "
            "with single spaces"
        )
    return value


def _range(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        try:
            check_version_range(value)
        except InvalidInput as exc:
            exc.field = attribute.name
            raise


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not _full(pattern, value):
            raise InvalidInput(f"{value!r} is not {what}", field=attribute.name)

    return validate


def _optional_text(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value:
        raise InvalidInput(f"{attribute.name} must not be empty when given", field=attribute.name)


def _alias(value: object) -> str:
    return check_dns_label(value, what="Dependency alias", rule="alias")


def _resource_name(value: object) -> str:
    return check_dns_label(value, what="Resource", rule="resource")


class Visibility(enum.StrEnum):
    """Who may see a Blueprint: ``private`` ones only inside their Organization."""

    LISTED = "listed"
    UNLISTED = "unlisted"
    PRIVATE = "private"


class SourceKind(enum.StrEnum):
    """How a Blueprint's manifests are rendered by Flux."""

    HELM_CHART = "HelmChart"
    KUSTOMIZE = "Kustomize"


class SizingOverlay(enum.StrEnum):
    """The sizing overlays a Blueprint may offer."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


@frozen
class BlueprintMetadata:
    name: str = field(validator=name_rule(check_blueprint_name))
    version: str = field(validator=name_rule(check_blueprint_version))


@frozen
class Card:
    """What the catalog shows."""

    title: str = field(validator=non_empty)
    summary: str = ""
    description: str = ""
    category: str = "component"
    icon: str | None = None
    tags: tuple[str, ...] = ()
    documentation: str | None = None


@frozen
class Owner:
    """Who maintains the Blueprint; ``organization`` is set for Organization-private Blueprints."""

    organization: str | None = field(
        default=None, validator=attrs.validators.optional(name_rule(check_organization_name))
    )
    team: str | None = None
    contact: str | None = None


@frozen
class Dependency:
    """Another Blueprint this one needs, resolved at install time."""

    blueprint: str = field(validator=name_rule(check_blueprint_name))
    version: str = field(validator=_range)
    alias: str = field(validator=name_rule(_alias))
    when: str | None = None
    values: Mapping[str, Any] = field(factory=dict)


@frozen
class SourceRef:
    """Where the manifests come from: a Helm chart, or a Kustomize path inside the Blueprint."""

    chart: str | None = field(default=None, validator=_optional_text)
    repository: str | None = field(default=None, validator=_optional_text)
    version: str | None = field(default=None, validator=_optional_text)
    path: str | None = field(default=None, validator=_optional_text)
    url: str | None = field(default=None, validator=_optional_text)


@frozen
class ManifestSource:
    kind: SourceKind
    ref: SourceRef = field()

    @ref.validator
    def _complete(self, _attribute: attrs.Attribute[Any], ref: SourceRef) -> None:
        if self.kind is SourceKind.HELM_CHART and not (
            ref.chart and ref.repository and ref.version
        ):
            raise InvalidInput(
                "a HelmChart source needs ref.chart, ref.repository and ref.version", field="ref"
            )
        if self.kind is SourceKind.KUSTOMIZE and not (ref.path or ref.url):
            raise InvalidInput("a Kustomize source needs ref.path or ref.url", field="ref")


@frozen
class Manifests:
    source: ManifestSource
    overlays: Mapping[SizingOverlay, Mapping[str, Any]] = field(factory=dict)


@frozen
class UpgradeBlock:
    """Versions that may not upgrade straight to this one, and why."""

    from_: str = field(validator=_range)
    reason: str = field(validator=non_empty)


@frozen
class Upgrades:
    """``from``: the range this version upgrades from; ``blocks``: ranges refused with a reason."""

    from_: str | None = field(default=None, validator=_range)
    blocks: tuple[UpgradeBlock, ...] = ()


@frozen
class RotationRule:
    """A secret the Blueprint rotates, and how often (a Go-style duration such as ``720h``)."""

    secret: str = field(validator=non_empty)
    every: str = field(validator=_matches(_DURATION, "a Go duration such as '720h' or '1h30m'"))
    strategy: str | None = None


@frozen
class Observability:
    dashboards: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    service_monitor: bool = False


@frozen
class ResourceNeed:
    """A non-Kubernetes need (a database, a bucket) that becomes a Crossplane claim."""

    name: str = field(validator=name_rule(_resource_name))
    api_version: str = field(
        validator=_matches(_CLAIM_API_VERSION, "an apiVersion 'group/version' such as 'x.io/v1'")
    )
    kind: str = field(validator=_matches(_KIND, "a Kubernetes kind (UpperCamelCase)"))
    spec: Mapping[str, Any] = field(factory=dict)


@frozen
class BlueprintSpec:
    card: Card
    manifests: Manifests
    visibility: Visibility = Visibility.LISTED
    owner: Owner = Owner()
    config_schema: Mapping[str, Any] = field(factory=dict)
    placement_schema: Mapping[str, Any] = field(factory=dict)
    depends: tuple[Dependency, ...] = field(default=())
    upgrades: Upgrades = Upgrades()
    rotation: tuple[RotationRule, ...] = ()
    observability: Observability = Observability()
    resources: tuple[ResourceNeed, ...] = ()

    @depends.validator
    def _unique_aliases(
        self, _attribute: attrs.Attribute[Any], depends: tuple[Dependency, ...]
    ) -> None:
        seen: set[str] = set()
        for dependency in depends:
            if dependency.alias in seen:
                raise InvalidInput(
                    f"dependency alias {dependency.alias!r} is used twice", field="depends"
                )
            seen.add(dependency.alias)


@frozen
class Blueprint:
    """``blueprint.yaml``: ``apiVersion``, ``kind``, ``metadata`` and ``spec``."""

    metadata: BlueprintMetadata
    spec: BlueprintSpec
    api_version: str = field(
        default=BLUEPRINT_API_VERSION, validator=constant(BLUEPRINT_API_VERSION)
    )
    kind: str = field(default="Blueprint", validator=constant("Blueprint"))

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version
