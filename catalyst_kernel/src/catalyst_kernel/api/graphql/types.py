"""The GraphQL object types: Organizations, Environments, Applications, Blueprint usage.

Each type is built from what the REST API answers (directory records, status documents from
:mod:`catalyst_kernel.api.queries`), so both APIs show the same data. Fields that navigate
further (an Organization's Environments, an Environment's Applications) authorize on their own:
nothing is shown that the caller could not read through REST.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime  # noqa: TC003 (strawberry reads annotations at run time)
from typing import Any

import strawberry
from semantic_version import Version
from strawberry.scalars import JSON

from catalyst_kernel.api.graphql.context import Info  # noqa: TC001
from catalyst_kernel.api.graphql.filters import checked_filter
from catalyst_kernel.api.queries import environment_applications, readable_environments
from catalyst_kernel.directory import EnvironmentRecord, OrganizationRecord  # noqa: TC001
from catalyst_kernel.identity.permissions import Operation, authorize

__all__ = [
    "Application",
    "BlueprintEnvironmentUsage",
    "BlueprintUsage",
    "BlueprintVersionUsage",
    "Commit",
    "Environment",
    "Organization",
]


def _text(value: object) -> str | None:
    # Status documents are JSON written by a projection: a field of another type is shown as
    # null rather than failing the whole answer.
    return value if isinstance(value, str) else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@strawberry.type(description="A commit of an Environment's repository that named an Application.")
class Commit:
    sha: str | None = strawberry.field(description="The commit's SHA.")
    position: int | None = strawberry.field(
        description="Its position in the Environment's commit order."
    )
    action: str | None = strawberry.field(
        description="install, update, promote, rollback or uninstall."
    )
    time: str | None = strawberry.field(description="When it was made (RFC 3339).")

    @classmethod
    def from_document(cls, document: object) -> Commit | None:
        if not isinstance(document, Mapping):
            return None
        return cls(
            sha=_text(document.get("sha")),
            position=_integer(document.get("position")),
            action=_text(document.get("action")),
            time=_text(document.get("time")),
        )


@strawberry.type(
    description="An Application in one Environment, as its status document describes it "
    "(docs/application-status.md)."
)
class Application:
    environment: str = strawberry.field(description="The Environment it is installed in.")
    organization: str = strawberry.field(description="The Organization owning the Environment.")
    name: str
    status: str | None = strawberry.field(
        description="Pending approval, Paused, Failed, Installing, Updating, Degraded or Running."
    )
    reason: str | None = strawberry.field(description="A sentence explaining the status.")
    since: str | None = strawberry.field(description="When the current status began (RFC 3339).")
    version: str | None = strawberry.field(description="The Blueprint version installed.")
    blueprint: str | None = strawberry.field(description="The Blueprint it is an instance of.")
    last_commit: Commit | None = strawberry.field(description="The Application's latest commit.")
    ever_running: bool | None = strawberry.field(
        description="Whether it has been Running since it was installed."
    )
    document: JSON = strawberry.field(
        description="The whole status document, with environment and organization, as the "
        "REST API returns it."
    )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Application:
        """An Application from a status document carrying ``environment`` and ``organization``
        (as :func:`~catalyst_kernel.api.queries.applications_across` returns them)."""
        ever_running = document.get("everRunning")
        return cls(
            environment=str(document["environment"]),
            organization=str(document["organization"]),
            name=str(document["name"]),
            status=_text(document.get("status")),
            reason=_text(document.get("reason")),
            since=_text(document.get("since")),
            version=_text(document.get("version")),
            blueprint=_text(document.get("blueprint")),
            last_commit=Commit.from_document(document.get("lastCommit")),
            ever_running=ever_running if isinstance(ever_running, bool) else None,
            document=JSON(dict(document)),
        )


def applications_of(documents: Iterable[Mapping[str, Any]]) -> list[Application]:
    """:meth:`Application.from_document` of each document, in order."""
    return [Application.from_document(document) for document in documents]


async def _environment_applications(
    root: Environment, info: Info, blueprint: str | None = None, status: str | None = None
) -> list[Application] | None:
    context = info.context
    wanted = checked_filter(blueprint=blueprint, status=status)
    authorize(context.principal, Operation.APPLICATIONS_READ, environment=root.name)
    documents = await environment_applications(context.runtime, root.name)
    return applications_of(
        {"environment": root.name, "organization": root.organization, **document}
        for document in documents
        if wanted.matches(document)
    )


@strawberry.type(description="An Environment: one Organization's deployment target.")
class Environment:
    name: str
    organization: str
    env_type: str = strawberry.field(description="prod, stg, uat, dev or poc.")
    repository: str = strawberry.field(description="The URL of its Git repository.")
    created: datetime
    created_by: str
    initial_commit: str | None = strawberry.field(
        description="The commit that created its repository."
    )

    applications: list[Application] | None = strawberry.field(
        resolver=_environment_applications,
        description="Its Applications by name, optionally only those of one Blueprint and/or in "
        "one status.",
    )

    @classmethod
    def from_record(cls, record: EnvironmentRecord) -> Environment:
        return cls(
            name=record.name,
            organization=record.organization,
            env_type=record.env_type.value,
            repository=record.repository,
            created=record.created,
            created_by=record.created_by,
            initial_commit=record.initial_commit,
        )


def environments_of(records: Iterable[EnvironmentRecord]) -> list[Environment]:
    """:meth:`Environment.from_record` of each record, in order."""
    return [Environment.from_record(record) for record in records]


async def _organization_environments(root: Organization, info: Info) -> list[Environment] | None:
    context = info.context
    records = await readable_environments(
        context.runtime, context.principal, Operation.ENVIRONMENTS_READ, organization=root.name
    )
    return environments_of(records)


@strawberry.type(description="An Organization (a tenant of the Sovereign).")
class Organization:
    name: str
    labels: JSON = strawberry.field(description="Its labels, a string-to-string map.")
    created: datetime
    created_by: str

    environments: list[Environment] | None = strawberry.field(
        resolver=_organization_environments,
        description="Its Environments the caller may read, by name.",
    )

    @classmethod
    def from_record(cls, record: OrganizationRecord) -> Organization:
        return cls(
            name=record.name,
            labels=JSON(dict(record.labels)),
            created=record.created,
            created_by=record.created_by,
        )


@strawberry.type(description="The Applications of a Blueprint in one Environment.")
class BlueprintEnvironmentUsage:
    environment: str
    versions: list[str] = strawberry.field(
        description="The versions installed there, newest first."
    )
    applications: list[Application]


@strawberry.type(description="The Applications running one version of a Blueprint.")
class BlueprintVersionUsage:
    version: str | None = strawberry.field(
        description="The version (null for Applications whose version is not known yet)."
    )
    environments: list[str] = strawberry.field(description="Where it is installed, by name.")
    applications: list[Application]


def newest_first(versions: Iterable[str | None]) -> list[str | None]:
    """Distinct ``versions``, newest first by semantic version; unparseable ones after them
    (alphabetically), then ``None`` (version not known yet)."""
    valid: list[tuple[Version, str]] = []
    other: list[str] = []
    unknown = False
    for version in set(versions):
        if version is None:
            unknown = True
            continue
        try:
            valid.append((Version(version), version))
        except ValueError:
            other.append(version)
    ordered: list[str | None] = [version for _, version in sorted(valid, reverse=True)]
    return [*ordered, *sorted(other), *([None] if unknown else [])]


@strawberry.type(description="Where a Blueprint is used across one Organization's Environments.")
class BlueprintUsage:
    organization: str
    blueprint: str
    applications: list[Application] = strawberry.field(
        description="Every Application of the Blueprint, by Environment then name."
    )
    environments: list[BlueprintEnvironmentUsage] = strawberry.field(
        description="The Applications by Environment (only Environments that use it)."
    )
    versions: list[BlueprintVersionUsage] = strawberry.field(
        description="The Applications by version, newest first."
    )

    @classmethod
    def of(
        cls, organization: str, blueprint: str, applications: list[Application]
    ) -> BlueprintUsage:
        by_environment: dict[str, list[Application]] = {}
        by_version: dict[str | None, list[Application]] = {}
        for application in applications:
            by_environment.setdefault(application.environment, []).append(application)
            by_version.setdefault(application.version, []).append(application)
        return cls(
            organization=organization,
            blueprint=blueprint,
            applications=applications,
            environments=[
                BlueprintEnvironmentUsage(
                    environment=environment,
                    versions=[v for v in newest_first(a.version for a in found) if v is not None],
                    applications=found,
                )
                for environment, found in by_environment.items()
            ],
            versions=[
                BlueprintVersionUsage(
                    version=version,
                    environments=sorted({a.environment for a in by_version[version]}),
                    applications=by_version[version],
                )
                for version in newest_first(by_version)
            ],
        )
