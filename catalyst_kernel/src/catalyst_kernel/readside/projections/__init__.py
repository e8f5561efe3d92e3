"""The kernel's built-in projections: object state, Application status and the timeline.

They are registered by the ``core`` built-in plugin through ``catalyst_projections``, the same
hook third-party projections use. See ``docs/events.md`` for the keys they write and
``docs/application-status.md`` for the status derivation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.readside.projections.objects import (
    ChangeRequestProjection,
    CrossplaneResourceProjection,
    FluxObjectProjection,
    GitCommitProjection,
    KubernetesObjectProjection,
)
from catalyst_kernel.readside.projections.status import (
    ApplicationStatus,
    ApplicationStatusProjection,
    FluxInput,
    StatusInputs,
    StatusVerdict,
    WorkloadInput,
    derive_status,
)
from catalyst_kernel.readside.projections.timeline import (
    ApplicationTimelineProjection,
    KvTimelineReader,
)

if TYPE_CHECKING:
    from catalyst_kernel.readside.projection import Projection

__all__ = [
    "ApplicationStatus",
    "ApplicationStatusProjection",
    "ApplicationTimelineProjection",
    "ChangeRequestProjection",
    "CrossplaneResourceProjection",
    "FluxInput",
    "FluxObjectProjection",
    "GitCommitProjection",
    "KubernetesObjectProjection",
    "KvTimelineReader",
    "StatusInputs",
    "StatusVerdict",
    "WorkloadInput",
    "builtin_projections",
    "derive_status",
]


def builtin_projections() -> list[Projection]:
    """A fresh instance of every built-in projection."""
    return [
        ApplicationStatusProjection(),
        ApplicationTimelineProjection(),
        ChangeRequestProjection(),
        CrossplaneResourceProjection(),
        FluxObjectProjection(),
        GitCommitProjection(),
        KubernetesObjectProjection(),
    ]
