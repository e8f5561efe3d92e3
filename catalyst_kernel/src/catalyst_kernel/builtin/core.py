"""The ``core`` built-in plugin: the kernel's additive behaviour, registered through the same
hooks third parties use (projections first; composers, rule kinds and event sources follow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.plugins.markers import hookimpl
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.readside.projections import builtin_projections

if TYPE_CHECKING:
    from catalyst_kernel.plugins.context import HookContext
    from catalyst_kernel.provisioning.composer import ManifestComposer
    from catalyst_kernel.readside.projection import Projection


@hookimpl
def catalyst_projections(ctx: HookContext) -> list[Projection]:
    """Object state, Application status and the Application timeline."""
    return builtin_projections()


@hookimpl
def catalyst_manifest_composers(ctx: HookContext) -> list[ManifestComposer]:
    """Namespace, values, Helm chart or Kustomize base, Flux Kustomization, secrets, claims."""
    return builtin_composers()
