"""Composition: run every registered composer for an Application and index the result.

Composers contribute files; two composers writing the same path is a plugin error naming both.
The kernel then writes the Application's ``kustomization.yaml`` (kustomize's own format) listing
every manifest in its directory, plus the ConfigMap generator that feeds ``values.yaml`` to Helm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalyst_kernel.errors import PluginError
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.composers.application import VALUES_FILE
from catalyst_kernel.provisioning.composers.labels import application_dir
from catalyst_kernel.provisioning.manifests import render

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest, ManifestComposer

__all__ = ["compose_application"]

KUSTOMIZATION_FILE = "kustomization.yaml"


def _index(request: CompositionRequest, paths: Sequence[str]) -> FileChange:
    folder = application_dir(request) + "/"
    resources: list[str] = []
    for path in sorted(paths):
        if not path.startswith(folder):
            continue
        relative = path[len(folder) :]
        if relative in (VALUES_FILE, KUSTOMIZATION_FILE) or not relative.endswith(
            (".yaml", ".yml")
        ):
            continue
        top = relative.split("/", 1)[0]
        entry = top if "/" in relative else relative
        if entry not in resources:
            resources.append(entry)
    document: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    if any(path == folder + VALUES_FILE for path in paths):
        document["configMapGenerator"] = [
            {"name": f"{request.application.name}-values", "files": [VALUES_FILE]}
        ]
        document["generatorOptions"] = {"disableNameSuffixHash": True}
    return FileChange(folder + KUSTOMIZATION_FILE, FileAction.ADD, render(document))


async def compose_application(
    composers: Sequence[ManifestComposer], request: CompositionRequest
) -> list[FileChange]:
    """Every file the Application needs, sorted by path."""
    files: dict[str, tuple[str, FileChange]] = {}
    for composer in composers:
        for change in await composer.compose(request):
            if change.path in files:
                raise PluginError(
                    f"composers {files[change.path][0]!r} and {composer.name!r} both write "
                    f"{change.path}"
                )
            files[change.path] = (composer.name, change)
    index = _index(request, list(files))
    if index.path in files:
        raise PluginError(
            f"composer {files[index.path][0]!r} writes {index.path}, which the kernel owns"
        )
    changes = [change for _, change in files.values()] + [index]
    return sorted(changes, key=lambda change: change.path)
