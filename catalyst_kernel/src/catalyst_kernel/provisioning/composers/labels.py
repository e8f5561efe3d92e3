"""The ``openova.io/*`` context labels every generated manifest carries (SPEC §5.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.model.names import split_environment_name
from catalyst_kernel.provisioning.manifests import label_value

if TYPE_CHECKING:
    from catalyst_kernel.provisioning.composer import CompositionRequest

__all__ = ["application_dir", "context_labels", "metadata"]


def context_labels(request: CompositionRequest) -> dict[str, str]:
    """sovereign, organization, environment, application, blueprint and blueprint-version."""
    application = request.application
    organization, _ = split_environment_name(application.environment)
    return {
        "openova.io/sovereign": request.sovereign,
        "openova.io/organization": organization,
        "openova.io/environment": application.environment,
        "openova.io/application": application.name,
        "openova.io/blueprint": application.blueprint,
        "openova.io/blueprint-version": label_value(application.version),
    }


def metadata(request: CompositionRequest, name: str, namespace: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = context_labels(request)
    return meta


def application_dir(request: CompositionRequest) -> str:
    return f"applications/{request.application.name}"
