"""The identity slot: validates bearer tokens and yields a Principal.

The development provider (``dev``) signs tokens locally; the Keycloak plugins validate tokens
from Keycloak realms. All pass :class:`catalyst_kernel.testing.IdentityConformance`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from catalyst_kernel.health import Service

if TYPE_CHECKING:
    from collections.abc import Mapping

    from catalyst_kernel.model.principal import Principal
    from catalyst_kernel.model.tenancy import Organization

__all__ = ["IdentityProvider"]


@runtime_checkable
class IdentityProvider(Service, Protocol):
    async def authenticate(self, token: str) -> Principal:
        """The Principal of a valid token; :class:`~catalyst_kernel.errors.Unauthenticated`
        for an expired, not-yet-valid, forged, ``alg: none`` or foreign token."""

    async def jwks(self) -> Mapping[str, Any]:
        """The public key set this provider publishes (empty when the issuer publishes it)."""

    async def provision_organization(self, organization: Organization) -> None:
        """Prepare identity for a new Organization (a realm, a group); idempotent."""
