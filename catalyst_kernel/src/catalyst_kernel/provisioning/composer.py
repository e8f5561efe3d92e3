"""The manifest-composer slot: what an installed Blueprint becomes as files in the repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from catalyst_kernel.model.application import Application
from catalyst_kernel.model.blueprint import Blueprint

if TYPE_CHECKING:
    from catalyst_kernel.model.plan import FileChange

__all__ = ["CompositionRequest", "ManifestComposer"]


@frozen
class CompositionRequest:
    """One Application to compose, with its Blueprint and resolved context.

    :ivar depends_on: the Applications this one depends on (Flux ``dependsOn`` edges).
    :ivar files: the Blueprint's own files (manifests for Kustomize sources), by relative path.
    :ivar secrets: secret key → secret-backend path (``org/…/{app}/{secret}``) the Application
        reads; values never reach a composer.
    :ivar secret_store: the ``SecretStore`` ``spec.provider`` block of the active secret backend.
    """

    sovereign: str
    application: Application
    blueprint: Blueprint
    depends_on: tuple[str, ...] = ()
    files: Mapping[str, bytes] = field(factory=dict)
    secrets: Mapping[str, str] = field(factory=dict)
    secret_store: Mapping[str, Any] | None = None


@runtime_checkable
class ManifestComposer(Protocol):
    """Turns a :class:`CompositionRequest` into repository files.

    Composers run in name order; each contributes files for the parts it understands (Helm,
    Kustomize, Crossplane claims, ExternalSecrets) and returns nothing for the rest.
    """

    name: str

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        """The files this composer writes for the Application."""
