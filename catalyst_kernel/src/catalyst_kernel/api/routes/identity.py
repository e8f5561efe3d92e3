"""``GET /.well-known/jwks.json``: the active identity provider's public signing keys.

Clients and other services verify Catalyst-issued tokens with these (RFC 7517). Keys being
rotated in or out are listed too, so a token signed with either verifies during the grace period.
No authentication: public keys are public.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import MediaType, Response, get
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)

from catalyst_kernel.api.auth import identity_provider
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001

__all__ = ["ROUTES"]

JWKS_MAX_AGE: Final = 300
"""Seconds a client may cache the key set (shorter than any rotation's grace period)."""


@get("/.well-known/jwks.json", media_type=MediaType.JSON, tags=["identity"])
async def jwks(runtime: NamedDependency[Runtime]) -> Response[dict[str, Any]]:
    """The JSON Web Key Set of the identity provider (``{"keys": [...]}``)."""
    keys = dict(await identity_provider(runtime).jwks())
    return Response(keys, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


ROUTES: Final = [jwks]
