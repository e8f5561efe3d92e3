"""Principal: who is calling, as established by the identity provider (SPEC §7)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import check_environment_name, check_organization_name
from catalyst_kernel.model.validators import each, non_empty

__all__ = ["Principal", "Role"]


class Role(enum.StrEnum):
    SOVEREIGN_ADMIN = "sovereign-admin"
    ORG_ADMIN = "org-admin"
    ORG_DEVELOPER = "org-developer"
    ORG_VIEWER = "org-viewer"
    SECURITY_OFFICER = "security-officer"
    BILLING_ADMIN = "billing-admin"


def _organization(instance: Principal, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        if Role.SOVEREIGN_ADMIN not in instance.roles:
            raise InvalidInput(
                "a principal without an organization must hold the sovereign-admin role",
                field=attribute.name,
            )
        return
    check_organization_name(value)


def _roles(value: Any) -> frozenset[Role]:
    try:
        return frozenset(Role(role) for role in value)
    except ValueError as exc:
        raise InvalidInput(
            f"{exc}; roles are {', '.join(role.value for role in Role)}", field="roles"
        ) from None


@frozen
class Principal:
    """The authenticated caller: subject, Organization, roles, teams and Environments.

    ``environments`` empty means every Environment of the Organization.
    """

    subject: str = field(validator=non_empty)
    roles: frozenset[Role] = field(converter=_roles)
    organization: str | None = field(default=None, validator=_organization)
    groups: frozenset[str] = field(default=frozenset(), converter=frozenset)
    environments: frozenset[str] = field(
        default=frozenset(), converter=frozenset, validator=each(check_environment_name)
    )
    issuer: str | None = None
    expires_at: datetime | None = None

    @property
    def is_sovereign_admin(self) -> bool:
        return Role.SOVEREIGN_ADMIN in self.roles

    def may_act_in(self, environment: str) -> bool:
        """Whether the principal's scope covers ``environment`` (roles are checked elsewhere)."""
        if self.is_sovereign_admin:
            return True
        organization = environment.rpartition("-")[0]
        if organization != self.organization:
            return False
        return not self.environments or environment in self.environments
