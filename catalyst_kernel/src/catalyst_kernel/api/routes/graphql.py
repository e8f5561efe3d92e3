"""``POST /graphql``: snapshot reads in GraphQL (SPEC §10), with the REST API's authorization.

The route is strawberry's Litestar controller over :data:`~catalyst_kernel.api.graphql.SCHEMA`,
narrowed to what Catalyst serves:

- **POST only.** No GET queries (a query in a URL ends up in proxy logs), no GraphiQL page (it
  loads from a CDN, and the service runs without internet access), no WebSocket subscriptions:
  ``GET /graphql`` is a ``405 method-not-allowed`` problem.
- **Authenticated like REST.** The GraphQL context depends on ``principal``: without a valid
  bearer token the answer is the usual ``401 unauthenticated`` problem, before anything runs.
- **Problems for transport errors.** A body that is not JSON, or names an unknown operation, is
  a ``400 malformed-request`` problem (not strawberry's plain-text answer); one that is no
  GraphQL request (no ``query`` string, a batch) is ``422 invalid-input``. Errors of a GraphQL
  operation are in the answer's ``errors``, each with the problem ``extensions`` of
  :func:`~catalyst_kernel.api.graphql.problem_error`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec
from cross_web import HTTPException as StrawberryHTTPException

# Litestar reads the handler's annotations at run time: these imports must stay real.
from litestar import HttpMethod, Request, Response, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody  # noqa: TC002
from strawberry.litestar.controller import GraphQLController

from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.graphql import SCHEMA, GraphQLContext, build_schema, problem_error
from catalyst_kernel.api.graphql.context import graphql_context, sub_response
from catalyst_kernel.api.openapi import problem_responses

if TYPE_CHECKING:
    from litestar.handlers import BaseRouteHandler
    from litestar.types import Dependencies
    from strawberry.http import GraphQLHTTPResponse
    from strawberry.types import ExecutionResult

    from catalyst_kernel.settings import Settings

__all__ = ["GRAPHQL_PATH", "GraphQLAnswer", "GraphQLRequest", "GraphQLRoute", "routes"]

GRAPHQL_PATH: Final = "/graphql"


class GraphQLRequest(msgspec.Struct, frozen=True, rename="camel"):
    """A GraphQL request (GraphQL over HTTP): the document, its variables and which of its
    operations to run."""

    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] | None = None


class GraphQLErrorDocument(msgspec.Struct, frozen=True):
    """One error: ``extensions`` carries the problem ``code``, ``status`` and ``type``."""

    message: str
    extensions: dict[str, Any]
    locations: list[dict[str, int]] | None = None
    path: list[str | int] | None = None


class GraphQLAnswer(msgspec.Struct, frozen=True):
    """A GraphQL answer: the data asked for (``null`` where it failed) and the errors."""

    data: dict[str, Any] | None = None
    errors: list[GraphQLErrorDocument] | None = None
    extensions: dict[str, Any] | None = None


def _no_root_value() -> None:
    return None


class GraphQLRoute(GraphQLController[GraphQLContext, None]):
    """``POST /graphql`` over :data:`~catalyst_kernel.api.graphql.SCHEMA`."""

    path = GRAPHQL_PATH
    tags = ("graphql",)
    schema = SCHEMA
    graphql_ide = None
    allow_queries_via_get = False
    multipart_uploads_enabled = False
    # Strawberry's own dependencies are replaced: ours name every dependency explicitly (as
    # Litestar 3 will require) and build the context in one step from the principal.
    dependencies: ClassVar[Dependencies] = {  # type: ignore[misc]
        **AUTHENTICATED,
        "context": Provide(graphql_context),
        "root_value": Provide(_no_root_value, sync_to_thread=False),
        "response": Provide(sub_response, sync_to_thread=False),
    }

    def get_route_handlers(self) -> list[BaseRouteHandler]:
        # Strawberry's controller also has GET (queries, GraphiQL) and WebSocket handlers.
        return [
            handler
            for handler in super().get_route_handlers()
            if isinstance(handler, HTTPRouteHandler) and HttpMethod.POST in handler.http_methods
        ]

    @post(
        status_code=HTTPStatus.OK,
        summary="Run a GraphQL query",
        responses=problem_responses(
            HTTPStatus.BAD_REQUEST,
            HTTPStatus.UNAUTHORIZED,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            HTTPStatus.UNPROCESSABLE_ENTITY,
            HTTPStatus.SERVICE_UNAVAILABLE,
        ),
    )
    async def handle_http_post(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[GraphQLRequest],
        context: NamedDependency[GraphQLContext],
        root_value: NamedDependency[None],
        response: NamedDependency[Response[Any]],
    ) -> Response[GraphQLAnswer]:
        """Run a GraphQL query. The answer is ``200`` with ``data`` and/or ``errors`` (each with
        ``extensions.code``, as problem details have); a request that is no GraphQL request is a
        problem response."""
        # ``data`` documents and checks the body; strawberry reads it again from the request.
        # As in strawberry's own handler, run() reads the sub-response back (get_sub_response)
        # before its first suspension, so concurrent requests cannot swap it.
        self.temporal_response = response
        answer: Response[GraphQLAnswer] = await self.execute_request(
            request, context=context, root_value=root_value
        )
        return answer

    async def execute_request(
        self, request: Request[Any, Any, Any], context: Any, root_value: Any
    ) -> Response[Any]:
        try:
            response: Response[Any] = await self.run(
                request, context=context, root_value=root_value
            )
        except StrawberryHTTPException as exc:
            # Becomes a problem response in the app's one exception handler.
            raise HTTPException(status_code=exc.status_code, detail=exc.reason) from None
        return response

    async def process_result(
        self, request: Request[Any, Any, Any], result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            result.errors = [problem_error(error) for error in result.errors]
        return await super().process_result(request, result)


def routes(settings: Settings) -> list[type[GraphQLRoute]]:
    """The route, over a schema bounded by the ``[api]`` settings."""
    schema = build_schema(settings.api)
    return [type("GraphQLRoute", (GraphQLRoute,), {"schema": schema})]
