"""Flux objects: one ``Kustomization`` per Application, and the Environment's bootstrap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalyst_kernel.model.names import split_environment_name
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.composers.labels import application_dir, metadata
from catalyst_kernel.provisioning.manifests import render, render_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = [
    "FLUX_NAMESPACE",
    "FluxKustomizationComposer",
    "bootstrap_files",
    "flux_kustomization_path",
]

FLUX_NAMESPACE = "flux-system"
SOURCE_NAME = "flux-system"
INTERVAL = "10m"
TIMEOUT = "5m"


def flux_kustomization_path(application: str) -> str:
    """Where an Application's Flux Kustomization lives. One file per Application, so concurrent
    installs never edit a shared file (Flux generates the folder's kustomization itself)."""
    return f"{FLUX_NAMESPACE}/applications/{application}.yaml"


class FluxKustomizationComposer:
    """The Application's Flux ``Kustomization``, with ``dependsOn`` edges for its dependencies."""

    name = "flux-kustomization"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        app = request.application.name
        spec: dict[str, Any] = {
            "interval": INTERVAL,
            "path": f"./{application_dir(request)}",
            "prune": True,
            "wait": True,
            "timeout": TIMEOUT,
            "targetNamespace": app,
            "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
        }
        if request.depends_on:
            spec["dependsOn"] = [{"name": name} for name in sorted(request.depends_on)]
        manifest = {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": metadata(request, app, FLUX_NAMESPACE),
            "spec": spec,
        }
        return [FileChange(flux_kustomization_path(app), FileAction.ADD, render(manifest))]


def bootstrap_files(sovereign: str, environment: str, repository_url: str) -> list[FileChange]:
    """``flux-system/`` for a new Environment: the GitRepository of its own repository and the
    root Kustomization applying ``./flux-system`` (which holds every Application's
    Kustomization). Flux's controllers themselves are installed with the cluster, not here."""
    organization, _ = split_environment_name(environment)
    labels = {
        "openova.io/sovereign": sovereign,
        "openova.io/organization": organization,
        "openova.io/environment": environment,
    }
    meta = {"name": SOURCE_NAME, "namespace": FLUX_NAMESPACE, "labels": labels}
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": meta,
        "spec": {"interval": "1m", "url": repository_url, "ref": {"branch": "main"}},
    }
    root = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {
            "interval": INTERVAL,
            "path": f"./{FLUX_NAMESPACE}",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
        },
    }
    return [
        FileChange(f"{FLUX_NAMESPACE}/gotk-sync.yaml", FileAction.ADD, render_all([source, root]))
    ]
