"""Snapshot reads of Applications, from the read model only (SPEC §6): one Environment's, or
across the Environments a caller may read. REST and GraphQL both answer through here, so they
agree on what a caller sees."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import anyio

from catalyst_kernel.identity.permissions import Operation, allowed, authorize
from catalyst_kernel.readside.projector import decode_value
from catalyst_kernel.readside.subjects import kv_key, unescape

if TYPE_CHECKING:
    from collections.abc import Mapping

    from catalyst_kernel.api.runtime import Runtime
    from catalyst_kernel.directory import EnvironmentRecord
    from catalyst_kernel.model.principal import Principal

__all__ = [
    "APPLICATION_KIND",
    "application_document",
    "applications_across",
    "environment_applications",
    "matches",
    "readable_environments",
]

APPLICATION_KIND: Final = "application"
"""The status projection's documents: ``application/<name>`` (docs/application-status.md)."""
_PREFIX: Final = f"{APPLICATION_KIND}/"


def _document(value: bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        document = decode_value(value)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def matches(
    document: Mapping[str, Any], *, blueprint: str | None = None, status: str | None = None
) -> bool:
    """Whether a status document is of ``blueprint`` and has ``status`` (``None``: any)."""
    if blueprint is not None and document.get("blueprint") != blueprint:
        return False
    return status is None or document.get("status") == status


async def environment_applications(runtime: Runtime, environment: str) -> list[dict[str, Any]]:
    """The status documents of ``environment``'s Applications, by name (call after authorizing)."""
    kv = await runtime.spine.key_value(environment)
    _, entries = await kv.snapshot(_PREFIX)
    documents = []
    for entry in entries:
        document = _document(entry.value)
        if document is not None and "/" not in entry.key[len(_PREFIX) :]:
            document.setdefault("name", unescape(entry.key[len(_PREFIX) :]))
            documents.append(document)
    return documents


async def application_document(
    runtime: Runtime, environment: str, application: str
) -> dict[str, Any] | None:
    """One Application's status document, or ``None`` (call after authorizing)."""
    kv = await runtime.spine.key_value(environment)
    entry = await kv.get(kv_key(APPLICATION_KIND, application))
    return None if entry is None else _document(entry.value)


async def readable_environments(
    runtime: Runtime,
    principal: Principal,
    operation: Operation,
    *,
    organization: str | None = None,
) -> list[EnvironmentRecord]:
    """The Environments (of ``organization``) on which ``principal`` may perform ``operation``.

    :raises Forbidden: ``organization`` is given and the caller may not read it at all.
    """
    if organization is not None:
        authorize(principal, operation, organization=organization)
    records = await runtime.directory.environments(organization)
    return [r for r in records if allowed(principal, operation, environment=r.name)]


async def applications_across(
    runtime: Runtime,
    principal: Principal,
    *,
    organization: str | None = None,
    blueprint: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Applications in every Environment the caller may read, filtered, each with its
    ``environment`` and ``organization``; ordered by Environment, then name.

    :raises Forbidden: ``organization`` is given and the caller may not read it.
    """
    environments = await readable_environments(
        runtime, principal, Operation.APPLICATIONS_READ, organization=organization
    )
    found: dict[str, list[dict[str, Any]]] = {}

    async def read(record: EnvironmentRecord) -> None:
        found[record.name] = await environment_applications(runtime, record.name)

    async with anyio.create_task_group() as group:
        for record in environments:
            group.start_soon(read, record)
    items = []
    for record in environments:
        for document in found[record.name]:
            if not matches(document, blueprint=blueprint, status=status):
                continue
            items.append(
                {"environment": record.name, "organization": record.organization, **document}
            )
    return items
