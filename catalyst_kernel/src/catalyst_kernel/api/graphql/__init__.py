"""GraphQL for snapshot reads (SPEC §10), served by :mod:`catalyst_kernel.api.routes.graphql`.

The schema (:data:`SCHEMA`) answers from the same queries as the REST routes
(:mod:`catalyst_kernel.api.queries`) and authorizes through the same permission matrix, so both
APIs show a caller the same things; errors carry the REST problem codes in their ``extensions``.
"""

from catalyst_kernel.api.graphql.context import GraphQLContext, Info, graphql_context
from catalyst_kernel.api.graphql.errors import problem_error
from catalyst_kernel.api.graphql.schema import SCHEMA, CatalystSchema, build_schema

__all__ = [
    "SCHEMA",
    "CatalystSchema",
    "GraphQLContext",
    "Info",
    "build_schema",
    "graphql_context",
    "problem_error",
]
