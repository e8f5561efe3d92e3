"""EnvironmentPolicy: the destination-owned rules a change must pass to merge (SPEC §5.4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from attrs import field, frozen

from catalyst_kernel.model.names import check_dns_label, check_environment_name
from catalyst_kernel.model.validators import constant, each, name_rule, non_empty

__all__ = [
    "POLICY_API_VERSION",
    "AppliesTo",
    "EnvironmentPolicy",
    "PolicyMetadata",
    "PolicyRule",
    "PolicySpec",
]

POLICY_API_VERSION: Final = "catalyst.openova.io/v1alpha1"


@frozen
class PolicyRule:
    """One rule: its ``kind`` (a registered rule kind) and the kind's own parameters.

    In YAML the parameters sit beside ``kind`` (``{kind: soak, sourceEnvironment: acme-stg,
    duration: 72h}``); the rule kind validates them.
    """

    kind: str = field(validator=non_empty)
    params: Mapping[str, Any] = field(factory=dict)


@frozen
class AppliesTo:
    environments: tuple[str, ...] = field(default=(), validator=each(check_environment_name))


def _policy_name(value: object) -> str:
    return check_dns_label(value, what="EnvironmentPolicy", rule="policy")


@frozen
class PolicyMetadata:
    name: str = field(validator=name_rule(_policy_name))
    namespace: str | None = None


@frozen
class PolicySpec:
    applies_to: AppliesTo = AppliesTo()
    rules: tuple[PolicyRule, ...] = ()


@frozen
class EnvironmentPolicy:
    """``policies/environment-policy.yaml`` of an Environment repository."""

    metadata: PolicyMetadata
    spec: PolicySpec = PolicySpec()
    api_version: str = field(default=POLICY_API_VERSION, validator=constant(POLICY_API_VERSION))
    kind: str = field(default="EnvironmentPolicy", validator=constant("EnvironmentPolicy"))
