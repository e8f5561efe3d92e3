"""Secret references: an External Secrets ``SecretStore`` and ``ExternalSecret`` per Application.

Only references reach Git; values stay in the secret backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.composers.labels import application_dir, metadata
from catalyst_kernel.provisioning.manifests import render

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = ["STORE_NAME", "ExternalSecretComposer"]

STORE_NAME = "catalyst"


class ExternalSecretComposer:
    """Writes ``secretstore.yaml`` and ``externalsecret.yaml`` when the Application has secrets.

    The Kubernetes Secret it produces is named ``<app>-secrets`` with one key per secret.
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
        external = {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": metadata(request, f"{app}-secrets", app),
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
