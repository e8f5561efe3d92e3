"""What every Application's directory holds: its namespace, values and chart or Kustomize base."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.blueprint import SourceKind
from catalyst_kernel.model.plan import FileAction, FileChange, check_repository_path
from catalyst_kernel.provisioning.composers.labels import application_dir, metadata
from catalyst_kernel.provisioning.manifests import deep_merge, render

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = [
    "VALUES_FILE",
    "HelmChartComposer",
    "KustomizeComposer",
    "NamespaceComposer",
    "ValuesComposer",
]

VALUES_FILE = "values.yaml"
HELM_INTERVAL = "10m"


def _add(path: str, content: str) -> FileChange:
    return FileChange(path, FileAction.ADD, content)


def effective_values(request: CompositionRequest) -> dict[str, Any]:
    """The sizing overlay's values with the Application's config on top (config wins)."""
    overlays = request.blueprint.spec.manifests.overlays
    overlay = overlays.get(request.application.overlay) if request.application.overlay else None
    return deep_merge(dict(overlay or {}), dict(request.application.config))


class NamespaceComposer:
    """Each Application runs in its own namespace, named after it."""

    name = "namespace"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        app = request.application.name
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata(request, app, None),
        }
        return [_add(f"{application_dir(request)}/namespace.yaml", render(manifest))]


class ValuesComposer:
    """``values.yaml``: the Application's public config with the sizing overlay applied."""

    name = "values"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        return [
            _add(f"{application_dir(request)}/{VALUES_FILE}", render(effective_values(request)))
        ]


class HelmChartComposer:
    """A ``HelmRepository`` and a ``HelmRelease`` reading ``values.yaml`` through a ConfigMap."""

    name = "helm-chart"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        source = request.blueprint.spec.manifests.source
        if source.kind is not SourceKind.HELM_CHART:
            return []
        app = request.application.name
        ref = source.ref
        repository = str(ref.repository)
        spec: dict[str, Any] = {"interval": HELM_INTERVAL, "url": repository}
        if repository.startswith("oci://"):
            spec["type"] = "oci"
        helm_repository = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": metadata(request, app, app),
            "spec": spec,
        }
        release = {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": metadata(request, app, app),
            "spec": {
                "interval": HELM_INTERVAL,
                "releaseName": app,
                "chart": {
                    "spec": {
                        "chart": str(ref.chart),
                        "version": str(ref.version),
                        "sourceRef": {"kind": "HelmRepository", "name": app},
                    }
                },
                "install": {"remediation": {"retries": 3}},
                "upgrade": {"remediation": {"retries": 3}},
                "valuesFrom": [
                    {"kind": "ConfigMap", "name": f"{app}-values", "valuesKey": VALUES_FILE}
                ],
            },
        }
        folder = application_dir(request)
        return [
            _add(f"{folder}/helmrepository.yaml", render(helm_repository)),
            _add(f"{folder}/helmrelease.yaml", render(release)),
        ]


class KustomizeComposer:
    """Copies the Blueprint's Kustomize base (``manifests.source.ref.path``) into ``base/``."""

    name = "kustomize"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        source = request.blueprint.spec.manifests.source
        if source.kind is not SourceKind.KUSTOMIZE or not source.ref.path:
            return []
        prefix = source.ref.path.strip("/") + "/"
        changes = []
        for path in sorted(request.files):
            if not path.startswith(prefix):
                continue
            relative = check_repository_path(path[len(prefix) :])
            try:
                content = request.files[path].decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"{request.blueprint.name}: {path} is not UTF-8 text") from None
            changes.append(_add(f"{application_dir(request)}/base/{relative}", content))
        if not changes:
            raise InvalidInput(
                f"{request.blueprint.name}@{request.blueprint.version}: Kustomize source path "
                f"{source.ref.path!r} holds no files"
            )
        return changes
