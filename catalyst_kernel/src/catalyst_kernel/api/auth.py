"""Who is calling: the bearer-token dependency every authenticated route uses (SPEC §7).

A route asks for the caller by naming the ``principal`` dependency and decides what the caller
may do with :func:`~catalyst_kernel.identity.permissions.authorize` (and nowhere else)::

    from litestar.di import NamedDependency

    from catalyst_kernel.api.auth import AUTHENTICATED

    @get("/v1/environments/{env:str}/things", dependencies=AUTHENTICATED)
    async def things(env: FromPath[str], principal: NamedDependency[Principal]) -> ...:
        authorize(principal, Operation.THINGS_READ, environment=env)

(``dependencies=AUTHENTICATED`` on a ``Router`` or ``Controller`` covers all its routes.)

The dependency reads ``Authorization: Bearer <token>`` and hands the token to the identity
provider the runtime started. A missing or malformed header, or a token the provider rejects, is
:class:`~catalyst_kernel.errors.Unauthenticated` (401 with ``WWW-Authenticate: Bearer``); no
active identity provider is :class:`~catalyst_kernel.errors.BackendUnavailable` (503). The token
is never logged nor echoed: error messages name what is wrong with the header, not its content.
"""

from __future__ import annotations

from typing import Any, Final

# Litestar reads a dependency's annotations at run time: these imports must stay real.
from litestar import Request  # noqa: TC002
from litestar.di import NamedDependency, Provide

from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.errors import BackendUnavailable, Unauthenticated
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.principal import Principal  # noqa: TC001
from catalyst_kernel.plugins.manager import Slot

__all__ = ["AUTHENTICATED", "PRINCIPAL", "bearer_token", "identity_provider", "principal"]

PRINCIPAL: Final = "principal"
"""The name routes give the parameter that receives the caller's :class:`Principal`."""

_SCHEME: Final = "bearer"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    :raises Unauthenticated: the header is missing, uses another scheme, or holds no token.
    """
    if authorization is None or not authorization.strip():
        raise Unauthenticated(
            "this operation needs a bearer token: send 'Authorization: Bearer <token>'"
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        raise Unauthenticated("the Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise Unauthenticated("the Authorization header must be 'Bearer <token>' with one token")
    return token


def identity_provider(runtime: Runtime) -> IdentityProvider:
    """The started identity provider of ``runtime``.

    :raises BackendUnavailable: no identity provider is active.
    """
    provider = runtime.started.get(Slot.IDENTITY)
    if provider is None or not isinstance(provider, IdentityProvider):
        reason = runtime.inactive.get(Slot.IDENTITY)
        raise BackendUnavailable(
            "no identity provider is active, so no request can be authenticated"
            + (f" ({reason})" if reason else "")
        )
    return provider


async def principal(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]
) -> Principal:
    """The Litestar dependency behind ``principal``: the authenticated caller of ``request``."""
    # The provider is looked up first: without one, a missing header is the service's fault.
    provider = identity_provider(runtime)
    token = bearer_token(request.headers.get("authorization"))
    return await provider.authenticate(token)


AUTHENTICATED: Final[dict[str, Provide]] = {PRINCIPAL: Provide(principal)}
"""``dependencies=AUTHENTICATED`` on a route, controller or router provides ``principal``."""
