"""Path parameters checked and resolved the same way on every route.

Each route checks the name first (422 ``invalid-name``, naming the path parameter), then
authorizes the caller, and only then looks the target up (404), so a caller of another
Organization cannot tell which Organizations or Environments exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.errors import InvalidName
from catalyst_kernel.model.names import (
    check_application_name,
    check_environment_name,
    check_organization_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from catalyst_kernel.api.runtime import Runtime
    from catalyst_kernel.directory import EnvironmentRecord, OrganizationRecord

__all__ = [
    "application_name",
    "environment_name",
    "organization_name",
    "require_environment",
    "require_organization",
]


def _checked(check: Callable[[str], str], value: str, field: str) -> str:
    try:
        return check(value)
    except InvalidName as exc:
        raise InvalidName(exc.message, rule=exc.rule, field=field) from None


def environment_name(value: str, field: str = "env") -> str:
    """``value`` as an Environment name; :class:`InvalidName` naming ``field`` otherwise."""
    return _checked(check_environment_name, value, field)


def organization_name(value: str, field: str = "org") -> str:
    """``value`` as an Organization name; :class:`InvalidName` naming ``field`` otherwise."""
    return _checked(check_organization_name, value, field)


def application_name(value: str, field: str = "app") -> str:
    """``value`` as an Application name; :class:`InvalidName` naming ``field`` otherwise."""
    return _checked(check_application_name, value, field)


async def require_environment(runtime: Runtime, environment: str) -> EnvironmentRecord:
    """The Environment's directory record (call only after authorizing).

    :raises NotFound: the Sovereign has no such Environment.
    """
    return await runtime.directory.environment(environment)


async def require_organization(runtime: Runtime, organization: str) -> OrganizationRecord:
    """The Organization's directory record (call only after authorizing).

    :raises NotFound: the Sovereign has no such Organization.
    """
    return await runtime.directory.organization(organization)
