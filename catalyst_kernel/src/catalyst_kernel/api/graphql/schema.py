"""The GraphQL schema: snapshot reads of Organizations, Environments and Applications (SPEC §10).

Queries only (GraphQL is for reading; every change goes through REST). Each resolver checks its
arguments' names first, then asks :func:`~catalyst_kernel.identity.permissions.authorize` for the
same operation as the REST route that shows the same data, and only then looks the target up, so
another Organization's principal gets ``forbidden`` whether or not the target exists. Lists show
only what the caller may read. Every field reads the read model when it resolves: one answer is
not a single snapshot across Environments.

Queries are bounded in depth, aliases and tokens (settings keys ``api.graphql_max_depth``,
``api.graphql_max_aliases``, ``api.graphql_max_tokens``; :func:`build_schema`), so one request
cannot fan out without limit. Introspection stays on: clients and schema-driven test tools read
the schema through it.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Final, TypeVar

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from catalyst_kernel.api.graphql.context import Info  # noqa: TC001 (strawberry reads it)
from catalyst_kernel.api.graphql.errors import is_internal
from catalyst_kernel.api.graphql.filters import checked_blueprint, checked_filter
from catalyst_kernel.api.graphql.types import (
    Application,
    BlueprintUsage,
    Environment,
    Organization,
    applications_of,
    environments_of,
)
from catalyst_kernel.api.lookup import (
    authorized_environment,
    environment_name,
    organization_name,
    require_organization,
)
from catalyst_kernel.api.queries import applications_across, readable_environments
from catalyst_kernel.errors import NotFound
from catalyst_kernel.identity.permissions import Operation, allowed, authorize
from catalyst_kernel.settings import ApiSettings

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from graphql import GraphQLError
    from strawberry.types import ExecutionContext

    from catalyst_kernel.api.graphql.context import GraphQLContext

__all__ = ["SCHEMA", "CatalystSchema", "Query", "build_schema"]

logger = logging.getLogger(__name__)

R = TypeVar("R")


def _optional_organization(value: str | None) -> str | None:
    return None if value is None else organization_name(value, field="organization")


async def _found(lookup: Awaitable[R], field: str) -> R:
    # The directory names its REST path parameter; a GraphQL client needs the argument's name.
    try:
        return await lookup
    except NotFound as exc:
        raise NotFound(exc.message, field=field) from None


async def _existing_organization(
    context: GraphQLContext, organization: str, operation: Operation, field: str
) -> None:
    """As the REST routes under ``/v1/organizations/{org}``: authorized first, then looked up
    (``not-found``, which only callers allowed into the Organization can see)."""
    authorize(context.principal, operation, organization=organization)
    await _found(require_organization(context.runtime, organization), field)


async def _organizations(info: Info) -> list[Organization]:
    context = info.context
    records = await context.runtime.directory.organizations()
    return [
        Organization.from_record(record)
        for record in records
        if allowed(context.principal, Operation.ORGANIZATIONS_READ, organization=record.name)
    ]


async def _organization(info: Info, name: str) -> Organization | None:
    context = info.context
    checked = organization_name(name, field="name")
    authorize(context.principal, Operation.ORGANIZATIONS_READ, organization=checked)
    record = await _found(require_organization(context.runtime, checked), "name")
    return Organization.from_record(record)


async def _environments(info: Info, organization: str | None = None) -> list[Environment] | None:
    context = info.context
    org = _optional_organization(organization)
    if org is not None:
        await _existing_organization(context, org, Operation.ENVIRONMENTS_READ, "organization")
    records = await readable_environments(
        context.runtime, context.principal, Operation.ENVIRONMENTS_READ, organization=org
    )
    return environments_of(records)


async def _environment(info: Info, name: str) -> Environment | None:
    context = info.context
    checked = environment_name(name, field="name")
    lookup = authorized_environment(
        context.runtime, context.principal, Operation.ENVIRONMENTS_READ, checked
    )
    record = await _found(lookup, "name")
    return Environment.from_record(record)


async def _applications(
    info: Info,
    organization: str | None = None,
    blueprint: str | None = None,
    status: str | None = None,
) -> list[Application] | None:
    context = info.context
    org = _optional_organization(organization)
    wanted = checked_filter(blueprint=blueprint, status=status)
    documents = await applications_across(
        context.runtime,
        context.principal,
        organization=org,
        blueprint=wanted.blueprint,
        status=wanted.status,
    )
    return applications_of(documents)


async def _blueprint_usage(info: Info, organization: str, blueprint: str) -> BlueprintUsage | None:
    context = info.context
    org = organization_name(organization, field="organization")
    name = checked_blueprint(blueprint)
    await _existing_organization(context, org, Operation.APPLICATIONS_READ, "organization")
    documents = await applications_across(
        context.runtime, context.principal, organization=org, blueprint=name
    )
    return BlueprintUsage.of(org, name, applications_of(documents))


@strawberry.type(description="Snapshot reads; every field shows only what the caller may read.")
class Query:
    organizations: list[Organization] = strawberry.field(
        resolver=_organizations,
        description="The Organizations the caller may read (all for a sovereign-admin), by name.",
    )
    organization: Organization | None = strawberry.field(
        resolver=_organization, description="One Organization."
    )
    environments: list[Environment] | None = strawberry.field(
        resolver=_environments,
        description="The Environments the caller may read (of one Organization), by name.",
    )
    environment: Environment | None = strawberry.field(
        resolver=_environment, description="One Environment."
    )
    applications: list[Application] | None = strawberry.field(
        resolver=_applications,
        description="Applications across the Environments the caller may read (of one "
        "Organization), optionally only those of one Blueprint and/or in one status; by "
        "Environment, then name.",
    )
    blueprint_usage: BlueprintUsage | None = strawberry.field(
        resolver=_blueprint_usage,
        description="Where a Blueprint is used across an Organization's Environments (those the "
        "caller may read): its Applications by Environment and by version.",
    )


class CatalystSchema(strawberry.Schema):
    """A strawberry schema that logs only the errors that are the service's fault.

    Forbidden, not-found and invalid queries are the caller's business and part of the answer;
    logging each with a traceback (strawberry's default) would drown the real failures.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_internal(error):
                logger.error(
                    "GraphQL field %s failed: %s",
                    ".".join(str(p) for p in error.path or ()) or "<operation>",
                    error.message,
                    exc_info=error.original_error,
                )


def build_schema(limits: ApiSettings) -> CatalystSchema:
    """The schema ``POST /graphql`` serves, bounded by ``limits`` (the ``[api]`` settings)."""
    return CatalystSchema(
        query=Query,
        # Factories: strawberry makes each request its own extension objects.
        extensions=[
            partial(QueryDepthLimiter, max_depth=limits.graphql_max_depth),
            partial(MaxAliasesLimiter, max_alias_count=limits.graphql_max_aliases),
            partial(MaxTokensLimiter, max_token_count=limits.graphql_max_tokens),
        ],
    )


SCHEMA: Final = build_schema(ApiSettings())
"""The schema with the default limits."""
