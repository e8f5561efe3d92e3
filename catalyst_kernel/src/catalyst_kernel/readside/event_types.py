"""The CloudEvents ``type`` values Catalyst publishes and projects (see ``docs/events.md``)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "CHANGE_PREFIX",
    "COMMIT",
    "CROSSPLANE_CHANGED",
    "CROSSPLANE_DELETED",
    "FLUX_CHANGED",
    "FLUX_DELETED",
    "K8S_CHANGED",
    "K8S_DELETED",
]

K8S_CHANGED: Final = "io.catalyst.k8s.object.changed"
K8S_DELETED: Final = "io.catalyst.k8s.object.deleted"
FLUX_CHANGED: Final = "io.catalyst.flux.object.changed"
FLUX_DELETED: Final = "io.catalyst.flux.object.deleted"
CROSSPLANE_CHANGED: Final = "io.catalyst.crossplane.resource.changed"
CROSSPLANE_DELETED: Final = "io.catalyst.crossplane.resource.deleted"
COMMIT: Final = "io.catalyst.git.commit"
CHANGE_PREFIX: Final = "io.catalyst.change."
"""Followed by ``opened``, ``updated``, ``approved``, ``merged`` or ``closed``."""
