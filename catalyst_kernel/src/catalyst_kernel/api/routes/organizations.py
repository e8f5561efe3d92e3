"""Organizations and Environments (SPEC §4): the Sovereign's directory over HTTP.

``GET|POST /v1/organizations``, ``GET /v1/organizations/{org}``,
``GET|POST /v1/organizations/{org}/environments`` and ``GET /v1/environments/{env}``.

Creating an Organization is the sovereign-admin's; creating an Environment (its repository, Flux
bootstrap and default EnvironmentPolicy) is its Organization's admin's. Lists show only what
the caller may read, and a lookup in another Organization is 403 whether or not it exists.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar import get, post
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)
from litestar.params import JSONBody  # noqa: TC002

from catalyst_kernel.api.auth import AUTHENTICATED, identity_provider
from catalyst_kernel.api.lookup import (
    EnvironmentPath,
    OrganizationPath,
    authorized_environment,
    environment_name,
    organization_name,
    require_organization,
)
from catalyst_kernel.api.queries import readable_environments
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.errors import Conflict, FieldProblem, InvalidInput, InvalidName
from catalyst_kernel.identity.permissions import Operation, allowed, authorize
from catalyst_kernel.model.convert import unstructure
from catalyst_kernel.model.names import check_env_type
from catalyst_kernel.model.principal import Principal  # noqa: TC001
from catalyst_kernel.model.tenancy import Environment, Organization
from catalyst_kernel.settings import Settings  # noqa: TC001

if TYPE_CHECKING:
    from catalyst_kernel.directory import EnvironmentRecord, OrganizationRecord

__all__ = ["ROUTES", "NewEnvironment", "NewOrganization"]

_TAGS: Final = ["organizations"]
_MAX_LABELS: Final = 64
# Kubernetes label syntax: an optional DNS-subdomain prefix, a name of at most 63 characters.
_LABEL_KEY: Final = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE: Final = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


class NewOrganization(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /v1/organizations``: the name (SPEC §4 rules) and optional labels."""

    name: str
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    policy_delegated: bool = msgspec.field(default=False, name="policyDelegated")


class NewEnvironment(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """``POST /v1/organizations/{org}/environments``: the type; the name is ``{org}-{envType}``."""

    env_type: str


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    problems = []
    if len(labels) > _MAX_LABELS:
        problems.append(FieldProblem.at(["labels"], f"at most {_MAX_LABELS} labels"))
    for key, value in labels.items():
        if len(key) > 253 or not _LABEL_KEY.fullmatch(key):
            problems.append(
                FieldProblem.at(["labels", key], "not a Kubernetes label key ([prefix/]name)")
            )
        if not _LABEL_VALUE.fullmatch(value):
            problems.append(
                FieldProblem.at(
                    ["labels", key],
                    "not a Kubernetes label value (at most 63 letters, digits, '-', '_', '.')",
                )
            )
    if problems:
        raise InvalidInput("labels must be Kubernetes labels", field="labels", problems=problems)
    return labels


def _organization_document(record: OrganizationRecord) -> dict[str, Any]:
    document: dict[str, Any] = unstructure(record)
    return document


def _environment_document(record: EnvironmentRecord) -> dict[str, Any]:
    document: dict[str, Any] = unstructure(record)
    return document


@get("/v1/organizations", dependencies=AUTHENTICATED, tags=_TAGS)
async def list_organizations(
    principal: NamedDependency[Principal], runtime: NamedDependency[Runtime]
) -> dict[str, Any]:
    """The Organizations the caller may read (a sovereign-admin sees all), by name."""
    records = await runtime.directory.organizations()
    items = [
        _organization_document(record)
        for record in records
        if allowed(principal, Operation.ORGANIZATIONS_READ, organization=record.name)
    ]
    return {"items": items}


@post("/v1/organizations", dependencies=AUTHENTICATED, tags=_TAGS)
async def create_organization(
    data: JSONBody[NewOrganization],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Create an Organization (sovereign-admin only); 409 if it exists."""
    name = organization_name(data.name, field="name")
    labels = _check_labels(data.labels)
    authorize(principal, Operation.ORGANIZATIONS_CREATE)
    organization = Organization(name, labels)
    if await runtime.directory.find_organization(name) is not None:
        raise Conflict(f"Organization {name} already exists", field="name")
    # The identity provider prepares the Organization first (a Keycloak realm, say), so a
    # recorded Organization always has its users' home; preparing is idempotent, so a retry
    # after a failure here or a lost race below is harmless.
    await identity_provider(runtime).provision_organization(organization)
    record = await runtime.directory.create_organization(
        organization, actor=principal.subject, policy_delegated=data.policy_delegated
    )
    return _organization_document(record)


@get("/v1/organizations/{org:str}", dependencies=AUTHENTICATED, tags=_TAGS)
async def get_organization(
    org: OrganizationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """One Organization and the names of the Environments the caller may read in it."""
    name = organization_name(org)
    authorize(principal, Operation.ORGANIZATIONS_READ, organization=name)
    record = await require_organization(runtime, name)
    environments = await readable_environments(
        runtime, principal, Operation.ENVIRONMENTS_READ, organization=name
    )
    return {**_organization_document(record), "environments": [e.name for e in environments]}


@get("/v1/organizations/{org:str}/environments", dependencies=AUTHENTICATED, tags=_TAGS)
async def list_environments(
    org: OrganizationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """The Organization's Environments the caller may read, by name."""
    name = organization_name(org)
    authorize(principal, Operation.ENVIRONMENTS_READ, organization=name)
    await require_organization(runtime, name)
    records = await readable_environments(
        runtime, principal, Operation.ENVIRONMENTS_READ, organization=name
    )
    return {"items": [_environment_document(record) for record in records]}


@post("/v1/organizations/{org:str}/environments", dependencies=AUTHENTICATED, tags=_TAGS)
async def create_environment(
    org: OrganizationPath,
    data: JSONBody[NewEnvironment],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    settings: NamedDependency[Settings],
) -> dict[str, Any]:
    """Create ``{org}-{envType}``: its repository with the Flux bootstrap and the default
    EnvironmentPolicy, recorded in the directory. 404 for an unknown Organization, 409 if the
    Environment exists."""
    organization = organization_name(org)
    try:
        env_type = check_env_type(data.env_type)
    except InvalidName as exc:
        raise InvalidName(exc.message, rule=exc.rule, field="envType") from None
    environment = Environment(organization, env_type)
    authorize(principal, Operation.ENVIRONMENTS_CREATE, organization=organization)
    record = await runtime.directory.create_environment(
        environment,
        runtime.committer,
        sovereign=settings.sovereign,
        repository_url=settings.repository_url(organization, environment.name),
        actor=principal.subject,
    )
    return _environment_document(record)


@get("/v1/environments/{env:str}", dependencies=AUTHENTICATED, tags=_TAGS)
async def get_environment(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """One Environment: its Organization, type, repository and creation."""
    name = environment_name(env)
    record = await authorized_environment(runtime, principal, Operation.ENVIRONMENTS_READ, name)
    return _environment_document(record)


ROUTES: Final = [
    list_organizations,
    create_organization,
    get_organization,
    list_environments,
    create_environment,
    get_environment,
]
