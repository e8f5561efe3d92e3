"""What resolution needs from a catalog: the Blueprints one viewer may see."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.model.blueprint import Blueprint

__all__ = ["BlueprintLookup"]


@runtime_checkable
class BlueprintLookup(Protocol):
    """The catalog as one Organization sees it (visibility already applied)."""

    def versions(self, name: str) -> Sequence[str]:
        """Every published version of ``name`` the viewer may see, in any order (empty if none)."""

    def get(self, name: str, version: str) -> Blueprint:
        """One Blueprint version; :class:`~catalyst_kernel.errors.NotFound` if absent or hidden."""
