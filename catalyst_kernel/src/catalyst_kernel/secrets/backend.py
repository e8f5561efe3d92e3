"""The secrets slot: where secret values live, at ``org/{org}/env/{env_type}/{app}/{secret}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from catalyst_kernel.health import Service
from catalyst_kernel.model.names import (
    EnvType,
    check_application_name,
    check_dns_label,
    check_env_type,
    check_organization_name,
)
from catalyst_kernel.model.validators import name_rule

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SecretBackend", "SecretPath"]


def _secret_name(value: object) -> str:
    return check_dns_label(value, what="Secret", rule="secret")


@frozen
class SecretPath:
    """The location of one secret; ``str()`` gives the SPEC §4 path."""

    organization: str = field(validator=name_rule(check_organization_name))
    env_type: EnvType = field(converter=check_env_type)
    application: str = field(validator=name_rule(check_application_name))
    secret: str = field(validator=name_rule(_secret_name))

    def __str__(self) -> str:
        return f"org/{self.organization}/env/{self.env_type.value}/{self.application}/{self.secret}"


@runtime_checkable
class SecretBackend(Service, Protocol):
    """Stores secret values. No method may put a value into an exception message or a log."""

    async def write(self, path: SecretPath, values: Mapping[str, str]) -> int:
        """Store ``values`` at ``path`` and return the new version number."""

    async def read(self, path: SecretPath) -> Mapping[str, str]:
        """The latest values; :class:`~catalyst_kernel.errors.NotFound` if absent."""

    async def exists(self, path: SecretPath) -> bool:
        """Whether ``path`` holds a readable secret."""

    async def delete(self, path: SecretPath) -> None:
        """Remove every version of ``path``; deleting a missing path is not an error."""

    async def store_reference(self, organization: str, env_type: EnvType) -> Mapping[str, Any]:
        """The External Secrets ``SecretStore`` ``spec.provider`` block that reads this backend."""
