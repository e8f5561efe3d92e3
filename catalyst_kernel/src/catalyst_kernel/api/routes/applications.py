"""Applications (SPEC §5): plan, install, update, uninstall; status and history from the read model.

``POST /v1/environments/{env}/plans``
    The InstallPlan of a request; nothing is written.
``GET|POST /v1/environments/{env}/applications``
    The Environment's Applications (status documents of the read model); install.
``GET|PATCH|DELETE /v1/environments/{env}/applications/{app}``
    One Application: its status (read model) and its recorded spec (the Environment repository,
    which is where desired configuration lives); update; uninstall (``?cascade=true`` also
    removes its dependents).
``GET /v1/environments/{env}/applications/{app}/history``
    Its timeline: commits, approvals, reconciles and health changes, oldest first.
``GET /v1/applications?org=&blueprint=&status=``
    Applications across every Environment the caller may read.
``GET /v1/organizations/{org}/blueprints/{name}/applications``
    A Blueprint's usage across the Organization's Environments.

Secret values given in ``config`` go to the secret backend; no response, error or log carries
them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.catalog import CatalogHolder  # noqa: TC001
from catalyst_kernel.api.lookup import (
    ApplicationPath,
    BlueprintPath,
    EnvironmentPath,
    OrganizationPath,
    application_name,
    authorized_environment,
    environment_name,
    organization_name,
    require_organization,
)
from catalyst_kernel.api.queries import (
    application_document,
    applications_across,
    environment_applications,
)
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001
from catalyst_kernel.blueprints.catalog import CatalogView  # noqa: TC001
from catalyst_kernel.errors import InvalidInput, InvalidName, NotFound
from catalyst_kernel.identity.permissions import Operation, authorize
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import check_blueprint_name, split_environment_name
from catalyst_kernel.model.plan import InstallPlan, PlanAction
from catalyst_kernel.model.principal import Principal  # noqa: TC001
from catalyst_kernel.promotion.policies import check_not_blocked, read_blocked_versions, read_policy
from catalyst_kernel.provisioning.provisioner import InstallRequest
from catalyst_kernel.provisioning.provisioner import Operation as ProvisionerOperation
from catalyst_kernel.readside.projections.timeline import KvTimelineReader

__all__ = ["ROUTES", "DependencyBody", "InstallBody", "UpdateBody"]

_TAGS: Final = ["applications"]
_PROPOSED: Final = {
    HTTP_202_ACCEPTED: ResponseSpec(
        data_container=dict[str, Any],
        description="The Environment's policy has rules: opened as a change request "
        "(``{plan, change, verdict}``), merged once the policy passes",
        generate_examples=False,
    )
}
_APPLICATIONS: Final = "/v1/environments/{env:str}/applications"
_APPLICATION: Final = _APPLICATIONS + "/{app:str}"


class DependencyBody(msgspec.Struct, forbid_unknown_fields=True):
    """For one dependency alias: ``{"use": "<existing Application>"}`` or ``{"create": true}``."""

    use: str | None = None
    create: bool = False


class InstallBody(msgspec.Struct, forbid_unknown_fields=True):
    """What to install: the body of ``…/plans`` and ``POST …/applications``."""

    name: str
    blueprint: str
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    version: str | None = None
    overlay: Literal["small", "medium", "large"] | None = None
    dependencies: dict[str, DependencyBody] = msgspec.field(default_factory=dict)


class UpdateBody(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH …/applications/{app}``: config merged onto the current one, and/or a version."""

    config: dict[str, Any] | None = None
    version: str | None = None


def _install_request(body: InstallBody) -> InstallRequest:
    application_name(body.name, field="name")
    try:
        check_blueprint_name(body.blueprint)
    except InvalidName as exc:
        raise InvalidName(exc.message, rule=exc.rule, field="blueprint") from None
    data = msgspec.to_builtins(body)
    data["dependencies"] = {
        alias: {key: value for key, value in choice.items() if value not in (None, False)}
        for alias, choice in data["dependencies"].items()
    }
    return structure(
        {key: value for key, value in data.items() if value is not None},
        InstallRequest,
        what="the request body",
    )


async def _catalog_for(catalog: CatalogHolder, environment: str) -> CatalogView:
    """The catalog as the Environment's Organization sees it: what may be installed there."""
    organization, _ = split_environment_name(environment)
    return (await catalog.catalog()).view(organization)


async def _refuse_blocked(runtime: Runtime, environment: str, plan: InstallPlan) -> None:
    """:raises BlockedVersionError: the plan brings in a version the Organization blocked."""
    organization, _ = split_environment_name(environment)
    blocked = await read_blocked_versions(await runtime.spine.directory(), organization)
    check_not_blocked(
        blocked,
        (
            (app.name, app.blueprint, app.version)
            for app in plan.applications
            if app.action is not PlanAction.REUSE
        ),
    )


async def _commit_or_propose(
    runtime: Runtime, environment: str, operation: ProvisionerOperation, title: str
) -> Response[dict[str, Any]]:
    """Commit ``operation`` when no rule governs the Environment — neither its policy nor an
    Organization-wide freeze of a sibling (``201``/``200``); otherwise open it as a change
    request (``202``, with the verdict), so a write through the API passes the same rules as a
    promotion."""
    policy = await read_policy(runtime.committer, environment)
    body: dict[str, Any] = {"plan": unstructure(operation.plan)}
    governed = policy.spec.rules or await runtime.changes.organization_rules(environment)
    if not governed:
        commit = await runtime.provisioner.apply(operation)
        body["commit"] = _commit_document(commit)
        return Response(body, status_code=HTTP_201_CREATED)
    change = await runtime.changes.propose(operation, title)
    body["change"] = unstructure(change)
    body["verdict"] = (await runtime.changes.verdict(change)).describe()
    return Response(body, status_code=HTTP_202_ACCEPTED)


def _commit_document(commit: Any) -> dict[str, Any]:
    document: dict[str, Any] = unstructure(commit)
    return document


# -------------------------------------------------------------------------------------------------
# Plans and installs
# -------------------------------------------------------------------------------------------------


@post(
    "/v1/environments/{env:str}/plans",
    dependencies=AUTHENTICATED,
    tags=_TAGS,
    status_code=HTTP_200_OK,
)
async def plan_install(
    env: EnvironmentPath,
    data: JSONBody[InstallBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    catalog: NamedDependency[CatalogHolder],
) -> dict[str, Any]:
    """The InstallPlan of installing ``data``: the Applications it would create or reuse, the
    decisions of ``when`` conditions, the files and their digest. Nothing is written."""
    environment = environment_name(env)
    request = _install_request(data)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_PLAN, environment)
    operation = await runtime.provisioner.plan_install(
        environment, request, await _catalog_for(catalog, environment), actor=principal.subject
    )
    plan: dict[str, Any] = unstructure(operation.plan)
    policy = await read_policy(runtime.committer, environment)
    plan["policy"] = {
        "rules": [rule.kind for rule in policy.spec.rules],
        "direct": not policy.spec.rules,
    }
    return plan


@get(_APPLICATIONS, dependencies=AUTHENTICATED, tags=_TAGS)
async def list_applications(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """The Environment's Applications with their status (the read model), by name."""
    environment = environment_name(env)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_READ, environment)
    return {"items": await environment_applications(runtime, environment)}


@post(
    _APPLICATIONS,
    dependencies=AUTHENTICATED,
    tags=_TAGS,
    status_code=HTTP_201_CREATED,
    responses=_PROPOSED,
)
async def install_application(
    env: EnvironmentPath,
    data: JSONBody[InstallBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    catalog: NamedDependency[CatalogHolder],
) -> Response[dict[str, Any]]:
    """Install: one commit with every Application of the plan. The status follows on the
    Environment's event stream (``Installing``, then ``Running``)."""
    environment = environment_name(env)
    request = _install_request(data)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_INSTALL, environment)
    operation = await runtime.provisioner.plan_install(
        environment, request, await _catalog_for(catalog, environment), actor=principal.subject
    )
    await _refuse_blocked(runtime, environment, operation.plan)
    return await _commit_or_propose(
        runtime, environment, operation, f"Install {request.name} ({request.blueprint})"
    )


# -------------------------------------------------------------------------------------------------
# One Application
# -------------------------------------------------------------------------------------------------


@get(_APPLICATION, dependencies=AUTHENTICATED, tags=_TAGS)
async def get_application(
    env: EnvironmentPath,
    app: ApplicationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """``status``: the read model's document (``null`` until the install is projected);
    ``spec``: blueprint, version, config (secret fields left out), overlay and dependencies as
    recorded in the Environment's repository (``null`` once uninstalled)."""
    environment = environment_name(env)
    name = application_name(app)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_READ, environment)
    status = await application_document(runtime, environment, name)
    record = await runtime.provisioner.application(environment, name)
    if status is None and record is None:
        raise NotFound(f"Application {name} does not exist in {environment}", field="app")
    return {
        "name": name,
        "environment": environment,
        "status": status,
        "spec": None if record is None else unstructure(record),
    }


@patch(_APPLICATION, dependencies=AUTHENTICATED, tags=_TAGS, responses=_PROPOSED)
async def update_application(
    env: EnvironmentPath,
    app: ApplicationPath,
    data: JSONBody[UpdateBody],
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    catalog: NamedDependency[CatalogHolder],
) -> Response[dict[str, Any]]:
    """Update the config (merged onto the current one) and/or the version (the target's
    ``upgrades`` rules apply; a downgrade is a rollback, not an update)."""
    environment = environment_name(env)
    name = application_name(app)
    if data.config is None and data.version is None:
        raise InvalidInput("an update changes config, version or both", field="config")
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_UPDATE, environment)
    operation = await runtime.provisioner.plan_update(
        environment,
        name,
        await _catalog_for(catalog, environment),
        config=data.config,
        version=data.version,
        actor=principal.subject,
    )
    await _refuse_blocked(runtime, environment, operation.plan)
    response = await _commit_or_propose(runtime, environment, operation, f"Update {name}")
    if response.status_code == HTTP_201_CREATED:
        response.status_code = HTTP_200_OK
    return response


@delete(
    _APPLICATION,
    dependencies=AUTHENTICATED,
    tags=_TAGS,
    status_code=HTTP_200_OK,
    responses=_PROPOSED,
)
async def uninstall_application(
    env: EnvironmentPath,
    app: ApplicationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    cascade: Annotated[
        bool,
        QueryParameter(description="also uninstall the Applications that depend on it"),
    ] = False,
) -> Response[dict[str, Any]]:
    """Uninstall; refused (409) while other Applications depend on it, unless ``cascade``."""
    environment = environment_name(env)
    name = application_name(app)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_UNINSTALL, environment)
    operation = await runtime.provisioner.plan_uninstall(
        environment, name, cascade=cascade, actor=principal.subject
    )
    response = await _commit_or_propose(runtime, environment, operation, f"Uninstall {name}")
    if response.status_code == HTTP_201_CREATED:
        response.status_code = HTTP_200_OK
    return response


@get(_APPLICATION + "/history", dependencies=AUTHENTICATED, tags=_TAGS)
async def application_history(
    env: EnvironmentPath,
    app: ApplicationPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """The Application's audit trail from the read model, oldest first: commits (with their
    author and action), approvals, reconciles and health changes."""
    environment = environment_name(env)
    name = application_name(app)
    await authorized_environment(runtime, principal, Operation.APPLICATIONS_READ, environment)
    reader = KvTimelineReader(runtime.spine.key_value)
    entries = await reader.application_timeline(environment, name)
    return {"name": name, "environment": environment, "items": unstructure(list(entries))}


# -------------------------------------------------------------------------------------------------
# Across Environments
# -------------------------------------------------------------------------------------------------


def _blueprint_filter(blueprint: str | None, field: str) -> str | None:
    if blueprint is None:
        return None
    try:
        return check_blueprint_name(blueprint)
    except InvalidName as exc:
        raise InvalidName(exc.message, rule=exc.rule, field=field) from None


@get("/v1/applications", dependencies=AUTHENTICATED, tags=_TAGS)
async def search_applications(
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    org: Annotated[
        str | None, QueryParameter(description="only this Organization's Environments")
    ] = None,
    blueprint: Annotated[
        str | None, QueryParameter(description="only Applications of this Blueprint")
    ] = None,
    status: Annotated[
        Literal[
            "Running",
            "Installing",
            "Updating",
            "Degraded",
            "Failed",
            "Paused",
            "Pending approval",
        ]
        | None,
        QueryParameter(description="only Applications with this status"),
    ] = None,
) -> dict[str, Any]:
    """Applications in every Environment the caller may read, by Environment then name; each
    item is its status document with ``environment`` and ``organization``."""
    organization = None if org is None else organization_name(org, field="org")
    wanted = _blueprint_filter(blueprint, "blueprint")
    items = await applications_across(
        runtime, principal, organization=organization, blueprint=wanted, status=status
    )
    return {"items": items}


@get(
    "/v1/organizations/{org:str}/blueprints/{name:str}/applications",
    dependencies=AUTHENTICATED,
    tags=_TAGS,
)
async def blueprint_usage(
    org: OrganizationPath,
    name: BlueprintPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> dict[str, Any]:
    """Where the Organization uses a Blueprint: its Applications in every Environment (the
    caller may read), and how many run each version."""
    organization = organization_name(org)
    blueprint = _blueprint_filter(name, "name")
    authorize(principal, Operation.APPLICATIONS_READ, organization=organization)
    await require_organization(runtime, organization)
    items = await applications_across(
        runtime, principal, organization=organization, blueprint=blueprint
    )
    versions: dict[str, int] = {}
    for item in items:
        version = item.get("version")
        if isinstance(version, str):
            versions[version] = versions.get(version, 0) + 1
    return {
        "organization": organization,
        "blueprint": blueprint,
        "versions": dict(sorted(versions.items())),
        "items": items,
    }


ROUTES: Final = [
    plan_install,
    list_applications,
    install_application,
    get_application,
    update_application,
    uninstall_application,
    application_history,
    search_applications,
    blueprint_usage,
]
