"""Path parameters checked and resolved the same way on every route.

Each route checks the name first (422 ``invalid-name``, naming the path parameter), then
authorizes the caller, and only then looks the target up (404), so a caller of another
Organization cannot tell which Organizations or Environments exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Final

from litestar.params import Parameter, ParameterKwarg

from catalyst_kernel.errors import InvalidName
from catalyst_kernel.identity.permissions import authorize
from catalyst_kernel.model.names import (
    APPLICATION_MAX_LENGTH,
    DNS_LABEL_MAX_LENGTH,
    ORGANIZATION_MAX_LENGTH,
    ORGANIZATION_MIN_LENGTH,
    EnvType,
    check_application_name,
    check_environment_name,
    check_organization_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from catalyst_kernel.api.runtime import Runtime
    from catalyst_kernel.directory import EnvironmentRecord, OrganizationRecord
    from catalyst_kernel.identity.permissions import Operation
    from catalyst_kernel.model.principal import Principal

__all__ = [
    "ApplicationPath",
    "BlueprintPath",
    "EnvironmentPath",
    "OrganizationPath",
    "VersionPath",
    "application_name",
    "authorized_environment",
    "environment_name",
    "organization_name",
    "require_organization",
]


_ORGANIZATION: Final = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
_DNS_LABEL: Final = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_ENV_TYPES: Final = "|".join(t.value for t in EnvType)


def _path(
    description: str, pattern: str, *, min_length: int = 1, max_length: int
) -> ParameterKwarg:
    # The rules are documented in the OpenAPI schema (``schema_extra``) but checked by the
    # kernel's name rules in each handler, so a bad name is a 422 naming the rule it breaks.
    parameter: ParameterKwarg = Parameter(
        description=description,
        schema_extra={
            "pattern": f"^{pattern}$",
            "minLength": min_length,
            "maxLength": max_length,
        },
    )
    return parameter


OrganizationPath = Annotated[
    str,
    _path(
        "an Organization name",
        _ORGANIZATION,
        min_length=ORGANIZATION_MIN_LENGTH,
        max_length=ORGANIZATION_MAX_LENGTH,
    ),
]
EnvironmentPath = Annotated[
    str,
    _path(
        "an Environment name, {organization}-{envType}",
        f"{_ORGANIZATION}-({_ENV_TYPES})",
        min_length=ORGANIZATION_MIN_LENGTH + 4,
        max_length=ORGANIZATION_MAX_LENGTH + 5,
    ),
]
ApplicationPath = Annotated[
    str, _path("an Application name", _DNS_LABEL, max_length=APPLICATION_MAX_LENGTH)
]
BlueprintPath = Annotated[
    str,
    _path("a Blueprint name, bp-<name>", f"bp-{_DNS_LABEL}", max_length=DNS_LABEL_MAX_LENGTH + 3),
]
VersionPath = Annotated[
    str,
    _path(
        "a SemVer 2.0 version",
        r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)",
        max_length=64,
    ),
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


async def authorized_environment(
    runtime: Runtime, principal: Principal, operation: Operation, environment: str
) -> EnvironmentRecord:
    """The directory record of ``environment`` (a checked name) once ``principal`` may do
    ``operation`` there: the caller is authorized first, so another Organization's caller gets
    403 whether or not the Environment exists.

    :raises Forbidden: ``principal`` may not do ``operation`` in ``environment``.
    :raises NotFound: the Sovereign has no such Environment.
    """
    authorize(principal, operation, environment=environment)
    return await runtime.directory.environment(environment)


async def require_organization(runtime: Runtime, organization: str) -> OrganizationRecord:
    """The Organization's directory record (call only after authorizing).

    :raises NotFound: the Sovereign has no such Organization.
    """
    return await runtime.directory.organization(organization)
