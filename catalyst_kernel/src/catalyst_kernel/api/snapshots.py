"""Encoded read-model snapshots, kept per Environment while its bucket's revision stands.

``GET /v1/environments/{env}/state`` is what every console opens first; between two writes to
an Environment every caller gets the same bytes. The cache asks the bucket for its revision
(one cheap read), answers from memory when it has not moved, and otherwise reads one snapshot,
encodes it once — stored values are passed through as the JSON they are (``msgspec.Raw``, after
checking they are JSON; anything else becomes ``null``, as on the event stream) — and keeps it.
Concurrent misses for one Environment read it once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import anyio
import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

    from catalyst_kernel.readside.spine import KeyValue, KvEntry

__all__ = ["DEFAULT_ENVIRONMENTS", "RawStateItem", "RawStateSnapshot", "SnapshotCache"]

DEFAULT_ENVIRONMENTS: Final = 64
_NULL: Final = msgspec.Raw(b"null")
_JSON: Final = msgspec.json.Decoder(msgspec.Raw)
_ENCODER: Final = msgspec.json.Encoder()


class RawStateItem(msgspec.Struct, frozen=True):
    key: str
    value: msgspec.Raw
    revision: int


class RawStateSnapshot(msgspec.Struct, frozen=True):
    revision: int
    items: list[RawStateItem]


def _raw(value: bytes | None) -> msgspec.Raw:
    if value is None:
        return _NULL
    try:
        return _JSON.decode(value)
    except msgspec.DecodeError:
        return _NULL


class SnapshotCache:
    """The last encoded snapshot of up to ``environments`` Environments (least recently used
    ones are forgotten)."""

    def __init__(self, environments: int = DEFAULT_ENVIRONMENTS) -> None:
        self._limit = environments
        self._bodies: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._locks: dict[str, anyio.Lock] = {}

    def _hit(self, environment: str, revision: int) -> bytes | None:
        cached = self._bodies.get(environment)
        if cached is None or cached[0] != revision:
            return None
        self._bodies.move_to_end(environment)
        return cached[1]

    async def state(
        self, environment: str, kv: KeyValue, visible: Callable[[KvEntry], bool]
    ) -> bytes:
        """``{"revision", "items": [{"key", "value", "revision"}]}`` of ``kv``'s live entries
        that are ``visible``, sorted by key, as JSON bytes."""
        body = self._hit(environment, await kv.revision())
        if body is not None:
            return body
        async with self._locks.setdefault(environment, anyio.Lock()):
            body = self._hit(environment, await kv.revision())
            if body is not None:
                return body
            revision, entries = await kv.snapshot()
            snapshot = RawStateSnapshot(
                revision,
                [RawStateItem(e.key, _raw(e.value), e.revision) for e in entries if visible(e)],
            )
            body = _ENCODER.encode(snapshot)
            self._bodies[environment] = (revision, body)
            self._bodies.move_to_end(environment)
            while len(self._bodies) > self._limit:
                forgotten, _ = self._bodies.popitem(last=False)
                self._locks.pop(forgotten, None)
            return body
