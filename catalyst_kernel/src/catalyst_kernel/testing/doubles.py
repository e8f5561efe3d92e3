"""Small in-memory collaborators for conformance suites and plugin authors' tests."""

from __future__ import annotations

import copy
import json
from typing import Any

import anyio

from catalyst_kernel.model.event import Event
from catalyst_kernel.model.names import check_environment_name

__all__ = ["MemoryProjectionView", "RecordingPublisher"]


class RecordingPublisher:
    """An :class:`~catalyst_kernel.readside.sources.EventPublisher` that keeps what it is given.

    It checks each Environment name and that each event survives a JSON round trip, as the spine
    would.
    """

    def __init__(self) -> None:
        self.published: list[tuple[str, Event]] = []
        self._changed = anyio.Event()

    async def publish(self, environment: str, event: Event) -> None:
        check_environment_name(environment)
        if not isinstance(event, Event):
            raise TypeError(f"expected an Event, got {event!r}")
        json.dumps(event.data)
        self.published.append((environment, event))
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, count: int) -> list[tuple[str, Event]]:
        """Wait until at least ``count`` events were published (bound it with ``fail_after``)."""
        while len(self.published) < count:
            await self._changed.wait()
        return list(self.published)


class MemoryProjectionView:
    """A :class:`~catalyst_kernel.readside.projection.ProjectionView` over a dict of JSON values."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = state if state is not None else {}

    async def get(self, key: str) -> Any | None:
        return copy.deepcopy(self.state.get(key))

    async def put(self, key: str, value: Any) -> None:
        # Values must be JSON, as they will be in a KV bucket.
        self.state[key] = json.loads(json.dumps(value))

    async def delete(self, key: str) -> None:
        self.state.pop(key, None)
