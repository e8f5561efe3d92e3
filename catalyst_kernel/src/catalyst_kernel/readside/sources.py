"""The event-source slot: things that turn the outside world into events on the spine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from catalyst_kernel.model.event import Event

__all__ = ["EventPublisher", "EventSource"]


@runtime_checkable
class EventPublisher(Protocol):
    """What an event source publishes through (the host wraps the active spine)."""

    async def publish(self, environment: str, event: Event) -> None:
        """Publish ``event`` on ``environment``'s stream (idempotent by event id)."""


@runtime_checkable
class EventSource(Protocol):
    """A long-running producer of events (informers, webhooks, pollers).

    ``name`` is unique among the sources of one plugin.
    """

    name: str

    async def run(self, publisher: EventPublisher) -> None:
        """Produce events until cancelled; cancellation is the normal way to stop."""
