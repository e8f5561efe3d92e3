"""The manifest-composer slot: what an installed Blueprint becomes as files in the repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from attrs import field, frozen

from catalyst_kernel.model.application import Application
from catalyst_kernel.model.blueprint import Blueprint

if TYPE_CHECKING:
    from catalyst_kernel.model.plan import FileChange

__all__ = ["CompositionRequest", "ManifestComposer"]


@frozen
class CompositionRequest:
    """One Application to compose, with its Blueprint and resolved context."""

    sovereign: str
    application: Application
    blueprint: Blueprint
    depends_on: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(factory=dict)


@runtime_checkable
class ManifestComposer(Protocol):
    """Turns a :class:`CompositionRequest` into repository files.

    Composers run in name order; each contributes files for the parts it understands (Helm,
    Kustomize, Crossplane claims, ExternalSecrets) and returns nothing for the rest.
    """

    name: str

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        """The files this composer writes for the Application."""
