"""What every resolver gets: the authenticated caller and the runtime.

:func:`graphql_context` is a Litestar dependency that depends on ``principal`` (see
:mod:`catalyst_kernel.api.auth`), so a request without a valid bearer token is refused with the
same ``401`` problem as any REST route, before the query is even parsed.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import strawberry

# Litestar reads a dependency's annotations at run time: these imports must stay real.
from litestar import Request, Response
from litestar.background_tasks import BackgroundTasks
from litestar.di import NamedDependency  # noqa: TC002
from strawberry.litestar import BaseContext

from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.model.principal import Principal  # noqa: TC001

__all__ = ["GraphQLContext", "Info", "graphql_context", "sub_response"]


class GraphQLContext(BaseContext, kw_only=True):
    """The context of one GraphQL request: strawberry's ``request`` and ``response``, and who
    calls over which runtime."""

    principal: Principal
    runtime: Runtime


Info: TypeAlias = strawberry.Info[GraphQLContext, None]
"""What a resolver's ``info`` parameter is: ``info.context`` is the :class:`GraphQLContext`."""


def sub_response() -> Response[Any]:
    """The Litestar dependency behind ``response``: where strawberry lets resolvers add headers
    and cookies to the answer."""
    return Response({}, background=BackgroundTasks([]))


async def graphql_context(
    request: Request[Any, Any, Any],
    response: NamedDependency[Response[Any]],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> GraphQLContext:
    """The Litestar dependency behind ``context``: the GraphQL context of ``request``."""
    return GraphQLContext(request=request, response=response, principal=principal, runtime=runtime)
