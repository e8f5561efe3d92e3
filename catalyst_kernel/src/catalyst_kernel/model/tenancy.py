"""Sovereign, Organization and Environment: who owns what."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime

from attrs import field, frozen

from catalyst_kernel.model.names import (
    EnvType,
    check_dns_label,
    check_env_type,
    check_organization_name,
    split_environment_name,
)
from catalyst_kernel.model.validators import name_rule, non_empty

__all__ = [
    "Environment",
    "EnvironmentRecord",
    "KeycloakTopology",
    "Organization",
    "OrganizationRecord",
    "Sovereign",
]


class KeycloakTopology(enum.StrEnum):
    """How users are organised in Keycloak (the seed's ``keycloakTopology``)."""

    PER_ORGANIZATION = "per-organization"
    SHARED_SOVEREIGN = "shared-sovereign"


def _sovereign_name(value: object) -> str:
    return check_dns_label(value, what="Sovereign", rule="sovereign")


@frozen
class Sovereign:
    """One deployment of Catalyst."""

    name: str = field(validator=name_rule(_sovereign_name))
    keycloak_topology: KeycloakTopology = KeycloakTopology.PER_ORGANIZATION


@frozen
class Organization:
    """The unit of multi-tenancy: owns Environments, private Blueprints and teams."""

    name: str = field(validator=name_rule(check_organization_name))
    labels: Mapping[str, str] = field(factory=dict)


@frozen
class Environment:
    """``{organization}-{env_type}``: one Git repository, one event stream, one KV bucket."""

    organization: str = field(validator=name_rule(check_organization_name))
    env_type: EnvType = field(converter=check_env_type)

    @property
    def name(self) -> str:
        return f"{self.organization}-{self.env_type.value}"

    @classmethod
    def parse(cls, name: str) -> Environment:
        """Build from an Environment name such as ``acme-prod`` (split on the last ``-``)."""
        org, env_type = split_environment_name(name)
        return cls(org, env_type)

    def __str__(self) -> str:
        return self.name


def _now() -> datetime:
    return datetime.now(UTC)


@frozen
class OrganizationRecord:
    """An Organization as the directory knows it."""

    name: str
    labels: Mapping[str, str] = field(factory=dict)
    created: datetime = field(factory=_now)
    created_by: str = field(default="catalyst", validator=non_empty)
    policy_delegated: bool = False
    """Its org-admins may edit its Environments' EnvironmentPolicies (set by a sovereign-admin)."""

    def as_organization(self) -> Organization:
        return Organization(self.name, self.labels)


@frozen
class EnvironmentRecord:
    """An Environment as the directory knows it: its repository and how it came to be."""

    name: str
    organization: str
    env_type: EnvType
    repository: str
    created: datetime = field(factory=_now)
    created_by: str = field(default="catalyst", validator=non_empty)
    initial_commit: str | None = None

    def as_environment(self) -> Environment:
        return Environment(self.organization, self.env_type)
