"""Secret references: an External Secrets ``SecretStore`` and ``ExternalSecret`` per Application.

Only references reach Git; values stay in the secret backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.composers.labels import application_dir, metadata
from catalyst_kernel.provisioning.manifests import render

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = ["FORCE_SYNC_ANNOTATION", "STORE_NAME", "ExternalSecretComposer", "set_secrets_revision"]

STORE_NAME = "catalyst"
FORCE_SYNC_ANNOTATION = "force-sync"
"""External Secrets Operator refreshes an ExternalSecret as soon as this annotation's value
changes, instead of waiting for its ``refreshInterval``."""


def set_secrets_revision(metadata: dict[str, Any], revision: str | None) -> None:
    """Put ``revision`` in an ExternalSecret's ``metadata`` as its ``force-sync`` annotation
    (``None``: no annotation), keeping any other annotation."""
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop(FORCE_SYNC_ANNOTATION, None)
    if revision is not None:
        annotations[FORCE_SYNC_ANNOTATION] = revision
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)


class ExternalSecretComposer:
    """Writes ``secretstore.yaml`` and ``externalsecret.yaml`` when the Application has secrets.

    The Kubernetes Secret it produces is named ``<app>-secrets`` with one key per secret. When
    the Application has a ``secrets_revision``, the ExternalSecret carries it as its
    ``force-sync`` annotation: a rotation changes it, and the operator fetches the new values
    at once.
    """

    name = "external-secrets"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        if not request.secrets:
            return []
        if request.secret_store is None:
            raise InvalidInput(
                f"{request.application.name} has secrets but the secret backend gave no "
                "SecretStore provider"
            )
        app = request.application.name
        store = {
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": metadata(request, STORE_NAME, app),
            "spec": {"provider": dict(request.secret_store)},
        }
        external_metadata = metadata(request, f"{app}-secrets", app)
        set_secrets_revision(external_metadata, request.application.secrets_revision)
        external = {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": external_metadata,
            "spec": {
                "refreshInterval": "1h",
                "secretStoreRef": {"kind": "SecretStore", "name": STORE_NAME},
                "target": {"name": f"{app}-secrets", "creationPolicy": "Owner"},
                "data": [
                    {"secretKey": key, "remoteRef": {"key": path, "property": "value"}}
                    for key, path in sorted(request.secrets.items())
                ],
            },
        }
        folder = application_dir(request)
        return [
            FileChange(f"{folder}/secretstore.yaml", FileAction.ADD, render(store)),
            FileChange(f"{folder}/externalsecret.yaml", FileAction.ADD, render(external)),
        ]
