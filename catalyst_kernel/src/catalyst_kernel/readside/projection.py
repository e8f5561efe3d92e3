"""The projection slot: pure functions of events into per-Environment KV state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from catalyst_kernel.model.event import Event

__all__ = ["Projection", "ProjectionView"]


@runtime_checkable
class ProjectionView(Protocol):
    """The Environment's KV as one projection sees it while it applies one event (JSON values)."""

    async def get(self, key: str) -> Any | None:
        """The current JSON value of ``key``, including writes made earlier for this event."""

    async def put(self, key: str, value: Any) -> None:
        """Set ``key`` to a JSON-serialisable ``value``."""

    async def delete(self, key: str) -> None:
        """Remove ``key``."""


@runtime_checkable
class Projection(Protocol):
    """Derives state from events. Applying the same event twice must not change the result.

    Projections run in the order of their ``name`` (then plugin name), so output is deterministic.
    """

    name: str

    def handles(self, event: Event) -> bool:
        """Whether :meth:`apply` wants ``event`` (cheap, no I/O)."""

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Update ``view`` for ``event``."""
