"""Crossplane claims for a Blueprint's ``resources[]`` (users never write them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.composers.labels import application_dir, metadata
from catalyst_kernel.provisioning.manifests import render_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = ["ClaimsComposer"]


class ClaimsComposer:
    """``claims.yaml``: one claim per resource, ``<app>-<resource>`` in the app's namespace."""

    name = "crossplane-claims"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        resources = request.blueprint.spec.resources
        if not resources:
            return []
        app = request.application.name
        claims = [
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": metadata(request, f"{app}-{resource.name}", app),
                "spec": dict(resource.spec),
            }
            for resource in resources
        ]
        return [
            FileChange(
                f"{application_dir(request)}/claims.yaml", FileAction.ADD, render_all(claims)
            )
        ]
