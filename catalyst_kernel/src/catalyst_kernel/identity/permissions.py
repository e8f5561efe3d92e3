"""The permission matrix (role by operation), enforced in one place (SPEC §7).

Every API route and stream names one :class:`Operation` and calls :func:`authorize`; nothing else
decides who may do what. ``docs/permissions.md`` is generated from :data:`MATRIX` and a test keeps
it in step.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

from catalyst_kernel.errors import Forbidden
from catalyst_kernel.model.names import split_environment_name
from catalyst_kernel.model.principal import Principal, Role

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DELEGABLE", "MATRIX", "Operation", "allowed", "authorize", "render_matrix"]


class Operation(enum.StrEnum):
    """What a request does; scoped to an Organization or one of its Environments."""

    PLUGINS_READ = "plugins:read"
    ORGANIZATIONS_CREATE = "organizations:create"
    ORGANIZATIONS_READ = "organizations:read"
    ENVIRONMENTS_CREATE = "environments:create"
    ENVIRONMENTS_READ = "environments:read"
    BLUEPRINTS_READ = "blueprints:read"
    APPLICATIONS_READ = "applications:read"
    APPLICATIONS_PLAN = "applications:plan"
    APPLICATIONS_INSTALL = "applications:install"
    APPLICATIONS_UPDATE = "applications:update"
    APPLICATIONS_UNINSTALL = "applications:uninstall"
    STATE_READ = "state:read"
    EVENTS_READ = "events:read"
    PROMOTIONS_CREATE = "promotions:create"
    CHANGES_READ = "changes:read"
    CHANGES_APPROVE = "changes:approve"
    CHANGES_MERGE = "changes:merge"
    CHANGES_CLOSE = "changes:close"
    ROLLBACK_CREATE = "rollback:create"
    POLICY_READ = "policy:read"
    POLICY_WRITE = "policy:write"
    BLOCKED_VERSIONS_READ = "blocked-versions:read"
    BLOCKED_VERSIONS_WRITE = "blocked-versions:write"


_READ: Final = frozenset(
    {
        Operation.ORGANIZATIONS_READ,
        Operation.ENVIRONMENTS_READ,
        Operation.BLUEPRINTS_READ,
        Operation.APPLICATIONS_READ,
        Operation.STATE_READ,
        Operation.EVENTS_READ,
        Operation.CHANGES_READ,
        Operation.POLICY_READ,
        Operation.BLOCKED_VERSIONS_READ,
        Operation.PLUGINS_READ,
    }
)
_DEVELOP: Final = frozenset(
    {
        Operation.APPLICATIONS_PLAN,
        Operation.APPLICATIONS_INSTALL,
        Operation.APPLICATIONS_UPDATE,
        Operation.APPLICATIONS_UNINSTALL,
        Operation.PROMOTIONS_CREATE,
        Operation.CHANGES_APPROVE,
        Operation.CHANGES_MERGE,
        Operation.CHANGES_CLOSE,
        Operation.ROLLBACK_CREATE,
    }
)

MATRIX: Final[Mapping[Role, frozenset[Operation]]] = {
    # Everything, in every Organization; the only role that creates Organizations and, unless a
    # policy delegates it, edits EnvironmentPolicies.
    Role.SOVEREIGN_ADMIN: frozenset(Operation),
    Role.ORG_ADMIN: _READ
    | _DEVELOP
    | {Operation.ENVIRONMENTS_CREATE, Operation.BLOCKED_VERSIONS_WRITE},
    Role.ORG_DEVELOPER: _READ | _DEVELOP,
    Role.ORG_VIEWER: _READ,
    # Reads everything and may stop things (approve as a listed team, block versions).
    Role.SECURITY_OFFICER: _READ | {Operation.CHANGES_APPROVE, Operation.BLOCKED_VERSIONS_WRITE},
    Role.BILLING_ADMIN: frozenset({Operation.ORGANIZATIONS_READ, Operation.ENVIRONMENTS_READ}),
}


DELEGABLE: Final[Mapping[Operation, frozenset[Role]]] = {
    # A sovereign-admin may delegate editing an Organization's EnvironmentPolicies to its admins
    # (the Organization's ``policyDelegated``).
    Operation.POLICY_WRITE: frozenset({Role.ORG_ADMIN}),
}


def allowed(
    principal: Principal,
    operation: Operation,
    *,
    organization: str | None = None,
    environment: str | None = None,
    delegated: bool = False,
) -> bool:
    """Whether ``principal`` may perform ``operation`` on ``organization``/``environment``.

    :param delegated: the target Organization delegates ``operation`` (:data:`DELEGABLE`).
    """
    granted = any(operation in MATRIX[role] for role in principal.roles)
    if not granted and delegated:
        granted = bool(DELEGABLE.get(operation, frozenset()) & principal.roles)
    if not granted:
        return False
    if principal.is_sovereign_admin:
        return True
    if environment is not None:
        owner, _ = split_environment_name(environment)
        if organization is not None and organization != owner:
            return False
        organization = owner
        if not principal.may_act_in(environment):
            return False
    if organization is None:
        # Sovereign-wide operations (creating Organizations) belong to sovereign-admins; listing
        # endpoints scope themselves to the caller's Organization before asking.
        return operation is Operation.PLUGINS_READ
    return organization == principal.organization


def authorize(
    principal: Principal,
    operation: Operation,
    *,
    organization: str | None = None,
    environment: str | None = None,
    delegated: bool = False,
) -> None:
    """Raise :class:`Forbidden` unless :func:`allowed`; the message never reveals whether the
    target exists."""
    if not allowed(
        principal,
        operation,
        organization=organization,
        environment=environment,
        delegated=delegated,
    ):
        target = environment or organization or "this Sovereign"
        raise Forbidden(f"{principal.subject} may not {operation.value} in {target}")


def render_matrix() -> str:
    """The matrix as the Markdown table published in ``docs/permissions.md``."""
    roles = list(Role)
    lines = [
        "| operation | " + " | ".join(role.value for role in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for operation in Operation:
        cells = (
            "✓"
            if operation in MATRIX[role]
            else "delegated"
            if role in DELEGABLE.get(operation, frozenset())
            else "·"
            for role in roles
        )
        lines.append(f"| `{operation.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
