"""The spine slot: the durable event log and the per-Environment key-value read model.

The embedded provider keeps both in SQLite; ``catalyst-nats`` uses JetStream streams and KV
buckets. Both pass :class:`catalyst_kernel.testing.SpineConformance`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from attrs import frozen

from catalyst_kernel.health import Service
from catalyst_kernel.model.event import Event

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

__all__ = [
    "Consumer",
    "Delivery",
    "KeyValue",
    "KvEntry",
    "KvOperation",
    "Published",
    "Spine",
]


@frozen
class Published:
    """Where an event landed; ``duplicate`` is true when its id had been published before."""

    sequence: int
    duplicate: bool = False


@frozen
class Delivery:
    """An event handed to a consumer, with its position in the Environment's stream."""

    environment: str
    sequence: int
    event: Event
    attempt: int = 1


class KvOperation(enum.StrEnum):
    PUT = "put"
    DELETE = "delete"


@frozen
class KvEntry:
    """One revision of a key; a ``DELETE`` entry is a delete marker with ``value`` ``None``."""

    key: str
    revision: int
    operation: KvOperation
    value: bytes | None
    created: datetime


@runtime_checkable
class KeyValue(Protocol):
    """One Environment's KV bucket (``ws-<env>-state``): revisions, history, watch."""

    async def get(self, key: str) -> KvEntry | None:
        """The latest entry of ``key``, or ``None`` if it never existed or was deleted."""

    async def put(self, key: str, value: bytes) -> int:
        """Store ``value`` and return the bucket revision it got."""

    async def create(self, key: str, value: bytes) -> int:
        """Store ``value`` only if ``key`` has no live value (never written, or deleted);
        return its revision. :class:`~catalyst_kernel.errors.Conflict` if it has one."""

    async def delete(self, key: str) -> int:
        """Write a delete marker and return its revision."""

    async def revision(self) -> int:
        """The bucket's current revision (0 when empty), without reading any entry."""

    async def history(self, key: str) -> Sequence[KvEntry]:
        """Every retained revision of ``key``, oldest first, delete markers included."""

    async def put_many(self, items: Sequence[tuple[str, bytes | None]]) -> int:
        """Apply puts (and deletes, where the value is ``None``) in order; return the last
        revision. Atomic where the backend can do it; always in order."""

    async def snapshot(self, prefix: str = "") -> tuple[int, Sequence[KvEntry]]:
        """The bucket's current revision and its live (not deleted) entries under ``prefix``,
        sorted by key."""

    async def changes(self, after: int, limit: int) -> Sequence[KvEntry]:
        """Up to ``limit`` retained entries with a revision greater than ``after``, in order."""

    def watch(self, from_revision: int = 0) -> AsyncIterator[KvEntry]:
        """Entries with a revision greater than ``from_revision``, then live changes, in order."""


@runtime_checkable
class Consumer(Protocol):
    """A durable, ordered cursor over one Environment's events."""

    async def fetch(self, batch: int, max_wait: float) -> Sequence[Delivery]:
        """Up to ``batch`` unacknowledged deliveries; an empty list after ``max_wait`` seconds."""

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge ``delivery`` (and every earlier one); it will not be delivered again."""


@runtime_checkable
class Spine(Service, Protocol):
    """The event log and KV read model."""

    async def publish(self, environment: str, event: Event) -> Published:
        """Append ``event`` to ``environment``'s stream; the event id deduplicates."""

    async def read(self, environment: str, after: int = 0, limit: int = 1000) -> Sequence[Delivery]:
        """Up to ``limit`` events with a sequence greater than ``after`` (no consumer, no ack)."""

    async def consumer(self, environment: str, durable: str) -> Consumer:
        """The durable consumer named ``durable`` on ``environment``, created if missing."""

    async def key_value(self, environment: str) -> KeyValue:
        """The KV bucket of ``environment``, created if missing."""

    async def environments(self) -> Sequence[str]:
        """The Environments that have a stream."""

    async def directory(self) -> KeyValue:
        """The Sovereign's directory bucket (Organizations and Environments), created if
        missing. It belongs to no Environment: no stream, no projector, never listed by
        :meth:`environments`."""
