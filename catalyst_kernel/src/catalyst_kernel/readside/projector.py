"""The projector: Environment event streams in, per-Environment KV state out.

Each Environment is consumed through a durable consumer. A batch of deliveries is applied by the
registered projections (in order of projection name) to a buffered view of the KV bucket; the
batch's writes, followed by the projector's cursor (the last applied stream sequence), are then
written with one ``put_many`` and the batch is acknowledged.

Delivery is at least once. The cursor makes it effectively once: after a crash, redelivered
events at or below the cursor are skipped. On the embedded spine ``put_many`` is atomic, so a
crash at any point leaves either the whole batch or none of it; on a spine where it is not atomic
the cursor is written last and projections must be idempotent (the conformance suite checks it).

Subscribers see the changes through the KV bucket's watch (see :mod:`.fanout`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio
from attrs import frozen

from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.model.names import check_environment_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.readside.projection import Projection
    from catalyst_kernel.readside.spine import Consumer, Delivery, KeyValue, Spine

__all__ = ["CURSOR_KEY", "Projector", "ReplayResult", "decode_value", "encode_value"]

log = logging.getLogger(__name__)

CURSOR_KEY: Final = "projector/cursor"
_MISSING: Final = object()


# json.dumps builds a new encoder whenever it is given options; one shared encoder is the same
# encoding without that cost.
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def encode_value(value: Any) -> bytes:
    """The canonical bytes of a projected JSON value (sorted keys: replays compare equal)."""
    return _ENCODER.encode(value).encode()


def decode_value(value: bytes) -> Any:
    """The JSON value of stored bytes."""
    try:
        # Values are UTF-8 (encode_value writes ASCII): decoding the text directly skips the
        # encoding detection json.loads does for bytes.
        return json.loads(value.decode())
    except ValueError:  # not UTF-8, or a BOM: let json.loads detect the encoding (or fail)
        return json.loads(value)


class _ValueCache:
    """The projector's write-through copy of recently used KV values of one Environment.

    The projector is the only writer of projected keys (replay takes the same lock), so values
    it wrote or read stay valid; this saves a KV read for every key a batch touches again.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._values: dict[str, bytes | None] = {}

    def get(self, key: str) -> bytes | object | None:
        return self._values.get(key, _MISSING)

    def set(self, key: str, value: bytes | None) -> None:
        if len(self._values) >= self._limit and key not in self._values:
            self._values.clear()  # cheap and rare: the working set is far below the limit
        self._values[key] = value


class _BatchView:
    """A :class:`ProjectionView` buffering one batch's writes over the KV bucket."""

    def __init__(self, kv: KeyValue | None, cache: _ValueCache | None = None) -> None:
        self._kv = kv
        self._pending: dict[str, bytes | None] = {}
        self._cache = cache if cache is not None else _ValueCache(1 << 20)

    async def get(self, key: str) -> Any | None:
        if key in self._pending:
            pending = self._pending[key]
            return None if pending is None else decode_value(pending)
        cached = self._cache.get(key)
        if cached is _MISSING:
            entry = await self._kv.get(key) if self._kv is not None else None
            cached = None if entry is None else entry.value
            self._cache.set(key, cached)
        return None if cached is None else decode_value(cached)  # type: ignore[arg-type]

    async def put(self, key: str, value: Any) -> None:
        self._pending[key] = encode_value(value)

    async def delete(self, key: str) -> None:
        self._pending[key] = None

    def take(self) -> list[tuple[str, bytes | None]]:
        """The batch's net writes, in first-write order; the view starts a new batch.

        A key whose final value is the one the bucket already holds (as far as the cache knows)
        is left out: writing it would add a revision, and a watcher event, that changes nothing.
        """
        writes: list[tuple[str, bytes | None]] = []
        for key, value in self._pending.items():
            if self._cache.get(key) != value:  # _MISSING (not known) never equals a value
                self._cache.set(key, value)
                writes.append((key, value))
        self._pending = {}
        return writes


@frozen
class ReplayResult:
    """What a replay did: events read, keys written and deleted, the final cursor."""

    events: int
    written: int
    deleted: int
    cursor: int


class Projector:
    """Applies projections to every Environment's stream.

    :param spine: the active spine.
    :param projections: the registered projections (the plugin manager's ``projections()``).
    :param durable: the durable consumer name.
    :param batch: deliveries fetched and committed together.
    :param max_wait: seconds one fetch waits for new events.
    :param discover_interval: seconds between looks for new Environments in :meth:`run`.
    :param cache_limit: KV values remembered per Environment between batches.
    """

    def __init__(
        self,
        spine: Spine,
        projections: Sequence[Projection],
        *,
        durable: str = "projector",
        batch: int = 256,
        max_wait: float = 1.0,
        discover_interval: float = 1.0,
        cache_limit: int = 100_000,
    ) -> None:
        self.spine = spine
        self.projections = sorted(projections, key=lambda projection: projection.name)
        self.durable = durable
        self.batch = batch
        self.max_wait = max_wait
        self.discover_interval = discover_interval
        self.cache_limit = cache_limit
        self._locks: dict[str, anyio.Lock] = {}
        self._caches: dict[str, _ValueCache] = {}
        self._cursors: dict[str, int] = {}  # the cursor each cache was left at
        self.applied: dict[str, int] = {}

    def _lock(self, environment: str) -> anyio.Lock:
        return self._locks.setdefault(environment, anyio.Lock())

    async def _apply(self, deliveries: Sequence[Delivery], view: _BatchView, after: int) -> int:
        cursor = after
        for delivery in deliveries:
            if delivery.sequence <= cursor:
                continue  # applied before a crash, redelivered since: skip, do not re-apply
            for projection in self.projections:
                if projection.handles(delivery.event):
                    await projection.apply(delivery.event, view)
            cursor = delivery.sequence
        return cursor

    async def cursor(self, environment: str) -> int:
        """The last stream sequence applied to ``environment``'s KV (0 if none)."""
        entry = await (await self.spine.key_value(environment)).get(CURSOR_KEY)
        return 0 if entry is None or entry.value is None else int(decode_value(entry.value))

    async def step(self, environment: str, consumer: Consumer, kv: KeyValue) -> int:
        """Fetch, apply and commit one batch; return how many deliveries it held."""
        deliveries = await consumer.fetch(self.batch, self.max_wait)
        if not deliveries:
            return 0
        async with self._lock(environment):
            after = await self.cursor(environment)
            if self._cursors.get(environment) != after:
                # The bucket is not where this projector left it (another writer, or a
                # server that came back without its last writes): what the cache remembers
                # may not be there.
                self._caches.pop(environment, None)
            cache = self._caches.setdefault(environment, _ValueCache(self.cache_limit))
            view = _BatchView(kv, cache)
            try:
                cursor = await self._apply(deliveries, view, after)
                if cursor > after:
                    await view.put(CURSOR_KEY, cursor)
                    await kv.put_many(view.take())
                await consumer.ack(deliveries[-1])
            except BaseException:
                # The cache may now hold values the bucket never stored (a failed or partial
                # write): forget it, so the retry reads the bucket as it is.
                self._caches.pop(environment, None)
                raise
            self._cursors[environment] = cursor
        self.applied[environment] = cursor
        return len(deliveries)

    async def catch_up(self, environment: str) -> int:
        """Process ``environment`` until its stream has nothing new; return deliveries handled."""
        check_environment_name(environment)
        consumer = await self.spine.consumer(environment, self.durable)
        kv = await self.spine.key_value(environment)
        total = 0
        while handled := await self.step(environment, consumer, kv):
            total += handled
        return total

    async def run_environment(self, environment: str) -> None:
        """Process ``environment`` until cancelled, riding out an unavailable spine."""
        delay = 0.1
        while True:
            try:
                consumer = await self.spine.consumer(environment, self.durable)
                kv = await self.spine.key_value(environment)
                while True:
                    await self.step(environment, consumer, kv)
                    delay = 0.1
            except BackendUnavailable as exc:
                log.warning(
                    "projector: %s unavailable, retrying in %.1fs: %s", environment, delay, exc
                )
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Process every Environment, picking up new ones, until cancelled."""
        started: set[str] = set()
        async with anyio.create_task_group() as tasks:
            while True:
                try:
                    environments = await self.spine.environments()
                except BackendUnavailable as exc:
                    log.warning("projector: cannot list Environments: %s", exc)
                    environments = []
                for environment in environments:
                    if environment not in started:
                        started.add(environment)
                        tasks.start_soon(self.run_environment, environment)
                await anyio.sleep(self.discover_interval)

    async def project(self, environment: str) -> tuple[int, dict[str, bytes]]:
        """Apply every event of ``environment`` from the start into memory.

        Returns the last sequence and the resulting state (key → canonical bytes), without
        touching the KV bucket.
        """
        view = _BatchView(None)
        state: dict[str, bytes] = {}
        cursor = 0
        while deliveries := await self.spine.read(environment, cursor, self.batch):
            cursor = await self._apply(deliveries, view, cursor)
            for key, value in view.take():
                if value is None:
                    state.pop(key, None)
                else:
                    state[key] = value
        if cursor:
            state[CURSOR_KEY] = encode_value(cursor)
        return cursor, state

    async def replay(self, environment: str) -> ReplayResult:
        """Rebuild ``environment``'s KV from the start of its stream.

        The bucket ends up holding exactly what incremental processing yields (key by key, value
        by value); keys no projection produces any more are deleted, and the durable consumer
        continues after the last replayed event. Run it with the projector for this Environment
        stopped, or in the same process (it takes the Environment's lock).
        """
        check_environment_name(environment)
        async with self._lock(environment):
            cursor, state = await self.project(environment)
            kv = await self.spine.key_value(environment)
            _, current = await kv.snapshot()
            existing = {entry.key: entry.value for entry in current}
            writes: list[tuple[str, bytes | None]] = [
                (key, None) for key in sorted(existing) if key not in state
            ]
            deleted = len(writes)
            writes += [
                (key, value)
                for key, value in sorted(state.items())
                if key != CURSOR_KEY and existing.get(key) != value
            ]
            written = len(writes) - deleted
            if CURSOR_KEY in state:
                writes.append((CURSOR_KEY, state[CURSOR_KEY]))
            if writes:
                await kv.put_many(writes)
            self._caches.pop(environment, None)
            if cursor:
                consumer = await self.spine.consumer(environment, self.durable)
                (last,) = await self.spine.read(environment, cursor - 1, 1)
                await consumer.ack(last)
        self.applied[environment] = cursor
        return ReplayResult(events=cursor, written=written, deleted=deleted, cursor=cursor)
