"""Promotion, change requests, EnvironmentPolicy and blocked versions (SPEC §5.4).

``GET|PUT /v1/environments/{env}/policy``
    The Environment's EnvironmentPolicy; a PUT replaces it with one commit.
``POST /v1/promotions`` ``{application, from, to, bundleDependencies?}``
    A change request on ``to`` carrying the Application (and, with ``bundleDependencies``, the
    dependencies ``to`` lacks).
``GET /v1/environments/{env}/changes``, ``GET …/changes/{id}``
    Change requests; one with the policy's verdict now.
``POST …/changes/{id}/approve`` ``{reason?, expires?}`` | ``/merge`` | ``/close``
    Approve its current revision (a reason and an expiry make a break-glass approval); merge
    (409 ``policy-refused`` with the verdict unless every rule passes); close.
``POST /v1/environments/{env}/applications/{app}/rollback`` ``{to}``
    A change request putting the Application back as it was at commit ``to``.
``GET|PUT /v1/organizations/{org}/blocked-versions``
    Blueprint versions install, update and promotion refuse.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 (msgspec reads annotations)
from typing import Annotated, Any, Final

import msgspec
from litestar import get, post, put
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.catalog import CatalogHolder  # noqa: TC001
from catalyst_kernel.api.lookup import (
    ApplicationPath,
    EnvironmentPath,
    OrganizationPath,
    application_name,
    authorized_environment,
    environment_name,
    organization_name,
    require_organization,
)
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.errors import InvalidInput, InvalidName
from catalyst_kernel.identity.permissions import Operation, allowed, authorize
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import split_environment_name
from catalyst_kernel.model.policy import EnvironmentPolicy
from catalyst_kernel.model.principal import Principal  # noqa: TC001
from catalyst_kernel.promotion.policies import (
    BlockedVersion,
    check_not_blocked,
    read_blocked_versions,
    read_policy,
    write_blocked_versions,
    write_policy,
)
from catalyst_kernel.provisioning.committer import ChangeRequest, ChangeStatus
from catalyst_kernel.provisioning.gitformat import check_change_id
from catalyst_kernel.provisioning.promotion import plan_promotion, plan_rollback

__all__ = ["ROUTES", "ApprovalBody", "BlockedVersionsBody", "PromotionBody", "RollbackBody"]

_TAGS: Final = ["changes"]
_CHANGE: Final = "/v1/environments/{env:str}/changes/{id:str}"

ChangeId = Annotated[
    str,
    Parameter(
        description="a change request id",
        schema_extra={"pattern": "^[1-9][0-9]{0,17}$", "maxLength": 18},
    ),
]


class PromotionBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """``POST /v1/promotions``: carry ``application`` from Environment ``from`` to ``to``."""

    application: str
    from_: str = msgspec.field(name="from")
    to: str
    bundle_dependencies: bool = False


class ApprovalBody(msgspec.Struct, forbid_unknown_fields=True):
    """An approval; ``reason`` with ``expires`` make it a break-glass approval (freeze)."""

    reason: str | None = None
    expires: datetime | None = None


class RollbackBody(msgspec.Struct, forbid_unknown_fields=True):
    """``to``: the full id of the earlier commit to put the Application back to."""

    to: str


class BlockedVersionItem(msgspec.Struct, forbid_unknown_fields=True):
    blueprint: str
    versions: str
    reason: str


class BlockedVersionsBody(msgspec.Struct, forbid_unknown_fields=True):
    """The whole list of an Organization's blocked versions."""

    items: list[BlockedVersionItem]


def _change_id(value: str) -> str:
    try:
        return check_change_id(value)
    except InvalidInput:
        raise InvalidName(
            f"change id {value[:40]!r} is not a change request id (a positive number)",
            rule="change",
            field="id",
        ) from None


def _change_document(change: ChangeRequest) -> dict[str, Any]:
    document: dict[str, Any] = unstructure(change)
    return document


async def _with_verdict(runtime: Runtime, change: ChangeRequest) -> dict[str, Any]:
    document = _change_document(change)
    if change.status is ChangeStatus.OPEN:
        document["verdict"] = (await runtime.changes.verdict(change)).describe()
    else:
        document["verdict"] = None
    return document


async def _policy_delegated(runtime: Runtime, environment: str) -> bool:
    organization, _ = split_environment_name(environment)
    record = await runtime.directory.find_organization(organization)
    return record is not None and record.policy_delegated


# -------------------------------------------------------------------------------------------------
# Policy
# -------------------------------------------------------------------------------------------------


@get("/v1/environments/{env:str}/policy", dependencies=AUTHENTICATED, tags=_TAGS)
async def get_policy(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """The Environment's EnvironmentPolicy (``policies/environment-policy.yaml`` at its head)."""
    environment = environment_name(env)
    await authorized_environment(runtime, principal, Operation.POLICY_READ, environment)
    policy: dict[str, Any] = unstructure(await read_policy(runtime.committer, environment))
    return policy


@put("/v1/environments/{env:str}/policy", dependencies=AUTHENTICATED, tags=_TAGS)
async def put_policy(
    env: EnvironmentPath,
    data: JSONBody[dict[str, Any]],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Replace the EnvironmentPolicy (one commit). Every rule's kind must be registered and its
    parameters valid; the policy must apply to this Environment."""
    environment = environment_name(env)
    policy = structure(data, EnvironmentPolicy, what="the EnvironmentPolicy")
    # Callers of other Organizations are refused before anything is looked up; then whether
    # this Organization delegates policy editing decides for its org-admins.
    if not allowed(principal, Operation.POLICY_WRITE, environment=environment, delegated=True):
        authorize(principal, Operation.POLICY_WRITE, environment=environment)
    authorize(
        principal,
        Operation.POLICY_WRITE,
        environment=environment,
        delegated=await _policy_delegated(runtime, environment),
    )
    await runtime.directory.environment(environment)
    commit = await write_policy(
        runtime.committer,
        environment,
        policy,
        runtime.changes.evaluator,
        actor=principal.subject,
    )
    return {"policy": unstructure(policy), "commit": unstructure(commit)}


# -------------------------------------------------------------------------------------------------
# Promotion and rollback
# -------------------------------------------------------------------------------------------------


@post("/v1/promotions", dependencies=AUTHENTICATED, tags=_TAGS, status_code=HTTP_201_CREATED)
async def promote(
    data: JSONBody[PromotionBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    catalog: NamedDependency[CatalogHolder],
) -> dict[str, Any]:
    """Open a change request on ``to`` carrying ``application`` from ``from``; its verdict says
    what the destination's policy still needs."""
    application = application_name(data.application, field="application")
    source = environment_name(data.from_, field="from")
    destination = environment_name(data.to, field="to")
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_READ, source)
    await authorized_environment(runtime, principal, Operation.PROMOTIONS_CREATE, destination)
    organization, _ = split_environment_name(destination)
    view = (await catalog.catalog()).view(organization)
    proposal = await plan_promotion(
        runtime.provisioner,
        view,
        application=application,
        source=source,
        destination=destination,
        bundle=data.bundle_dependencies,
        actor=principal.subject,
    )
    blocked = await read_blocked_versions(await runtime.spine.directory(), organization)
    check_not_blocked(
        blocked,
        (
            (a.name, a.blueprint, a.version)
            for a in proposal.request.applications
            if a.blueprint is not None and a.version is not None
        ),
    )
    change = await runtime.changes.open(proposal)
    document = await _with_verdict(runtime, change)
    document["missingDependencies"] = unstructure(list(proposal.requires))
    return document


@post(
    "/v1/environments/{env:str}/applications/{app:str}/rollback",
    dependencies=AUTHENTICATED,
    tags=_TAGS,
    status_code=HTTP_201_CREATED,
)
async def rollback(
    env: EnvironmentPath,
    app: ApplicationPath,
    data: JSONBody[RollbackBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Open a change request that puts the Application back as it was at commit ``to``,
    through the same policy (a ``soak`` rule may let rollbacks pass)."""
    environment = environment_name(env)
    application = application_name(app)
    await authorized_environment(runtime, principal, Operation.ROLLBACK_CREATE, environment)
    proposal = await plan_rollback(
        runtime.provisioner, environment, application, data.to.strip(), actor=principal.subject
    )
    change = await runtime.changes.open(proposal)
    return await _with_verdict(runtime, change)


# -------------------------------------------------------------------------------------------------
# Change requests
# -------------------------------------------------------------------------------------------------


@get("/v1/environments/{env:str}/changes", dependencies=AUTHENTICATED, tags=_TAGS)
async def list_changes(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    status: Annotated[
        ChangeStatus | None, QueryParameter(description="only changes in this state")
    ] = None,
) -> dict[str, Any]:
    """The Environment's change requests, newest first (without verdicts: ask for one)."""
    environment = environment_name(env)
    await authorized_environment(runtime, principal, Operation.CHANGES_READ, environment)
    changes = await runtime.changes.changes(environment, status)
    return {"items": [_change_document(change) for change in changes]}


@get(_CHANGE, dependencies=AUTHENTICATED, tags=_TAGS)
async def get_change(
    env: EnvironmentPath,
    id: ChangeId,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """One change request and, while it is open, the policy's verdict now: each rule, pass or
    fail, its evidence, and when the change can next pass."""
    environment = environment_name(env)
    change_id = _change_id(id)
    await authorized_environment(runtime, principal, Operation.CHANGES_READ, environment)
    change = await runtime.committer.get_change(environment, change_id)
    return await _with_verdict(runtime, change)


@post(_CHANGE + "/approve", dependencies=AUTHENTICATED, tags=_TAGS, status_code=HTTP_200_OK)
async def approve_change(
    env: EnvironmentPath,
    id: ChangeId,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    data: JSONBody[ApprovalBody | None] = None,
) -> dict[str, Any]:
    """Approve the change's current revision with the caller's teams. Whether it counts is the
    policy's decision (the author never counts)."""
    environment = environment_name(env)
    change_id = _change_id(id)
    await authorized_environment(runtime, principal, Operation.CHANGES_APPROVE, environment)
    body = data or ApprovalBody()
    change = await runtime.changes.approve(
        environment, change_id, principal, reason=body.reason, expires=body.expires
    )
    return await _with_verdict(runtime, change)


@post(_CHANGE + "/merge", dependencies=AUTHENTICATED, tags=_TAGS, status_code=HTTP_200_OK)
async def merge_change(
    env: EnvironmentPath,
    id: ChangeId,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Merge if the policy passes now; otherwise 409 ``policy-refused`` with the verdict."""
    environment = environment_name(env)
    change_id = _change_id(id)
    await authorized_environment(runtime, principal, Operation.CHANGES_MERGE, environment)
    commit, verdict = await runtime.changes.merge(environment, change_id, principal.subject)
    return {"commit": unstructure(commit), "verdict": verdict.describe()}


@post(_CHANGE + "/close", dependencies=AUTHENTICATED, tags=_TAGS, status_code=HTTP_200_OK)
async def close_change(
    env: EnvironmentPath,
    id: ChangeId,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Close without merging."""
    environment = environment_name(env)
    change_id = _change_id(id)
    await authorized_environment(runtime, principal, Operation.CHANGES_CLOSE, environment)
    change = await runtime.changes.close(environment, change_id, principal.subject)
    return _change_document(change)


# -------------------------------------------------------------------------------------------------
# Blocked versions
# -------------------------------------------------------------------------------------------------


@get("/v1/organizations/{org:str}/blocked-versions", dependencies=AUTHENTICATED, tags=_TAGS)
async def get_blocked_versions(
    org: OrganizationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Blueprint versions this Organization's installs, updates and promotions refuse."""
    organization = organization_name(org)
    authorize(principal, Operation.BLOCKED_VERSIONS_READ, organization=organization)
    await require_organization(runtime, organization)
    items = await read_blocked_versions(await runtime.spine.directory(), organization)
    return {"items": unstructure(items)}


@put("/v1/organizations/{org:str}/blocked-versions", dependencies=AUTHENTICATED, tags=_TAGS)
async def put_blocked_versions(
    org: OrganizationPath,
    data: JSONBody[BlockedVersionsBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Replace the list: each item a Blueprint, an npm-style version range and a reason."""
    organization = organization_name(org)
    items = []
    for index, item in enumerate(data.items):
        try:
            items.append(BlockedVersion(item.blueprint, item.versions, item.reason))
        except InvalidInput as exc:
            raise InvalidInput(f"items[{index}]: {exc.message}", field=f"items/{index}") from None
    authorize(principal, Operation.BLOCKED_VERSIONS_WRITE, organization=organization)
    await require_organization(runtime, organization)
    saved = await write_blocked_versions(await runtime.spine.directory(), organization, items)
    return {"items": unstructure(saved)}


ROUTES: Final = [
    get_policy,
    put_policy,
    promote,
    rollback,
    list_changes,
    get_change,
    approve_change,
    merge_change,
    close_change,
    get_blocked_versions,
    put_blocked_versions,
]
