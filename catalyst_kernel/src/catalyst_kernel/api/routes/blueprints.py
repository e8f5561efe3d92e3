"""``/v1/blueprints``: the catalog as the caller may see it (SPEC §5.1 visibility)."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)
from semantic_version import Version

from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.catalog import CatalogHolder  # noqa: TC001
from catalyst_kernel.api.lookup import (  # noqa: TC001 (Litestar reads annotations)
    BlueprintPath,
    VersionPath,
)
from catalyst_kernel.errors import NotFound
from catalyst_kernel.identity.permissions import Operation, authorize
from catalyst_kernel.model.convert import unstructure
from catalyst_kernel.model.names import check_blueprint_name, check_semver
from catalyst_kernel.model.principal import Principal  # noqa: TC001

__all__ = ["ROUTES"]

_TAGS = ["blueprints"]


def _authorize(principal: Principal) -> None:
    authorize(principal, Operation.BLUEPRINTS_READ, organization=principal.organization)


@get("/v1/blueprints", dependencies=AUTHENTICATED, tags=_TAGS)
async def list_blueprints(
    principal: NamedDependency[Principal], catalog: NamedDependency[CatalogHolder]
) -> dict[str, Any]:
    """Listed Blueprints the caller may see, with their versions (newest first)."""
    _authorize(principal)
    view = await catalog.view_for(principal)
    items = [
        {
            "name": listed.name,
            "versions": list(reversed(listed.versions)),
            "latest": listed.latest.version,
            "card": unstructure(listed.latest.blueprint.spec.card),
            "visibility": listed.latest.blueprint.spec.visibility.value,
        }
        for listed in view.list()
    ]
    return {"items": items}


@get("/v1/blueprints/{name:str}", dependencies=AUTHENTICATED, tags=_TAGS)
async def blueprint_versions(
    name: BlueprintPath,
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogHolder],
) -> dict[str, Any]:
    """Every version of one Blueprint the caller may see (404 when none: hidden or absent)."""
    check_blueprint_name(name)
    _authorize(principal)
    view = await catalog.view_for(principal)
    versions = sorted(view.versions(name), key=Version, reverse=True)
    if not versions:
        raise NotFound(f"Blueprint {name} does not exist")
    return {"name": name, "versions": versions}


@get("/v1/blueprints/{name:str}/{version:str}", dependencies=AUTHENTICATED, tags=_TAGS)
async def blueprint_version(
    name: BlueprintPath,
    version: VersionPath,
    principal: NamedDependency[Principal],
    catalog: NamedDependency[CatalogHolder],
) -> dict[str, Any]:
    """One Blueprint version in full, ``configSchema`` included."""
    check_blueprint_name(name)
    check_semver(version)
    _authorize(principal)
    view = await catalog.view_for(principal)
    result: dict[str, Any] = unstructure(view.get(name, version))
    return result


ROUTES = [list_blueprints, blueprint_versions, blueprint_version]
