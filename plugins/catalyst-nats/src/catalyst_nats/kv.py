"""A KV bucket of the NATS spine: a JetStream KV bucket (stream ``KV_<bucket>``).

Revisions are the stream's sequence numbers, monotonic per bucket as the spine requires. Reads of
one key use *direct get* (any replica answers); ranges (history, changes, snapshots) and the
watch read through consumers. Writes are publishes to the key's subject, acknowledged by the
stream; ``put_many`` pipelines them and writes its last item only once every earlier one is
stored (see :meth:`NatsKeyValue.put_many`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import anyio

from catalyst_kernel.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from catalyst_kernel.readside.spine import KvEntry, KvOperation
from catalyst_kernel.readside.subjects import check_kv_key
from catalyst_nats.connection import acknowledged, status_of
from catalyst_nats.names import key_of_subject, key_prefix_filter, kv_prefix, kv_stream, kv_subject
from catalyst_nats.pull import (
    Puller,
    delivered,
    direct_sequence,
    next_message,
    scan,
    timestamp,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from nats.aio.msg import Msg

    from catalyst_nats.spine import NatsSpine

__all__ = ["NatsKeyValue"]

log = logging.getLogger(__name__)

KV_OPERATION: Final = "KV-Operation"
_DELETE_HEADERS: Final = {KV_OPERATION: "DEL"}
_DELETED: Final = frozenset({"DEL", "PURGE"})
_WATCH_BATCH: Final = 512
_WATCH_PULL: Final = 5.0
_EXPECTED_LAST: Final = "Nats-Expected-Last-Sequence"
_SUBJECT_CACHE: Final = 100_000


def _operation(msg: Msg) -> KvOperation:
    headers = msg.headers
    if headers and headers.get(KV_OPERATION) in _DELETED:
        return KvOperation.DELETE
    return KvOperation.PUT


class NatsKeyValue:
    """One bucket; get it from :meth:`NatsSpine.key_value` or :meth:`NatsSpine.directory`."""

    def __init__(self, spine: NatsSpine, bucket: str) -> None:
        self._spine = spine
        self._connection = spine.connection
        self.bucket = bucket
        self.stream = kv_stream(bucket)
        self._prefix = kv_prefix(bucket)
        self._all = self._prefix + ">"
        self._direct = f"{self._connection.api_prefix}.DIRECT.GET.{self.stream}"
        self._write_lock = anyio.Lock()
        self._base: int | None = None  # the bucket's revision after this handle's last write
        self._subjects: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"NatsKeyValue({self.bucket!r})"

    async def _ensure(self) -> None:
        await self._spine.ensure_bucket(self.bucket)

    # ---------------------------------------------------------------------------------------------
    # Entries
    # ---------------------------------------------------------------------------------------------

    def _entry(self, msg: Msg) -> KvEntry:
        meta = delivered(msg)
        operation = _operation(msg)
        return KvEntry(
            key=key_of_subject(self.bucket, msg.subject),
            revision=meta.stream_sequence,
            operation=operation,
            value=msg.data if operation is KvOperation.PUT else None,
            created=timestamp(meta.timestamp_ns),
        )

    def _direct_entry(self, key: str, msg: Msg) -> KvEntry:
        revision, created = direct_sequence(msg)
        operation = _operation(msg)
        return KvEntry(
            key=key,
            revision=revision,
            operation=operation,
            value=msg.data if operation is KvOperation.PUT else None,
            created=created,
        )

    async def _last(self, key: str) -> KvEntry | None:
        """The newest entry of ``key``, delete markers included."""
        request = json.dumps({"last_by_subj": kv_subject(self.bucket, key)}).encode()
        await self._ensure()
        msg = await self._connection.request(self._direct, request)
        status = status_of(msg)
        if status == "503":
            await self._spine.ensure_bucket(self.bucket, again=True)
            msg = await self._connection.request(self._direct, request)
            status = status_of(msg)
        if status == "404":
            return None
        if status is not None:
            raise BackendUnavailable(f"nats: reading {key!r} of {self.bucket}: status {status}")
        return self._direct_entry(key, msg)

    # ---------------------------------------------------------------------------------------------
    # KeyValue
    # ---------------------------------------------------------------------------------------------

    async def get(self, key: str) -> KvEntry | None:
        entry = await self._last(key)
        if entry is None or entry.operation is KvOperation.DELETE:
            return None
        return entry

    async def put(self, key: str, value: bytes) -> int:
        return await self.put_many([(key, value)])

    async def delete(self, key: str) -> int:
        return await self.put_many([(key, None)])

    async def create(self, key: str, value: bytes) -> int:
        check_kv_key(key)
        if not isinstance(value, bytes):
            raise InvalidInput(f"KV values are bytes, got {type(value).__name__} for {key!r}")
        subject = kv_subject(self.bucket, key)
        await self._ensure()
        async with self._write_lock:
            self._base = None
            try:
                return await self._publish_one(subject, value, expected_last=0)
            except Conflict:
                pass
            # JetStream keeps a delete marker as the key's last message: create over it only.
            last = await self._last(key)
            if last is not None and last.operation is KvOperation.PUT:
                raise Conflict(f"{key!r} already exists") from None
            expected = last.revision if last is not None else 0
            try:
                return await self._publish_one(subject, value, expected_last=expected)
            except Conflict:
                raise Conflict(f"{key!r} already exists (created concurrently)") from None

    async def _publish_one(self, subject: str, value: bytes, *, expected_last: int) -> int:
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected_last)}
        (reply,) = await self._connection.requests([(subject, value, headers)])
        return acknowledged(reply, subject)

    async def put_many(self, items: Sequence[tuple[str, bytes | None]]) -> int:
        """Apply ``items`` in order; return the last revision.

        Not atomic (JetStream has no multi-subject transaction here), but ordered, and the
        **last item is stored only if every earlier one is**: a failure leaves a prefix of the
        batch applied, never the last item without the others. The projector writes its cursor
        last, so a batch whose cursor is stored is stored whole.

        How: the items are pipelined on one connection (the server stores them in that order)
        and only the last one is acknowledged, with ``Nats-Expected-Last-Sequence`` set to the
        revision it must follow if all the others were stored after the bucket's revision
        known from this handle's previous write. When that does not hold (another writer, a
        lost message, nothing known yet), the batch is written again with every item
        acknowledged and the last one sent after the others' acknowledgements.
        """
        if not items:
            raise InvalidInput("put_many needs at least one item")
        batch: list[tuple[str, bytes, dict[str, str] | None]] = []
        for key, value in items:
            if value is not None and not isinstance(value, bytes):
                raise InvalidInput(f"KV values are bytes, got {type(value).__name__} for {key!r}")
            subject = self._subject(key)
            batch.append(
                (subject, value, None) if value is not None else (subject, b"", _DELETE_HEADERS)
            )
        connection = self._connection
        grace = connection.settings.outage_grace
        deadline = time.monotonic() + grace
        async with self._write_lock:
            while True:
                try:
                    await self._ensure()
                    return await self._put(batch)
                except NotFound:
                    # The bucket is gone (a wiped server): create it and write the batch again.
                    self._base = None
                    await self._spine.ensure_bucket(self.bucket, again=True)
                except BackendUnavailable:
                    # Whether a cut-short batch was stored is unknown: once the server is back,
                    # write it again (in order, acknowledged), so the caller never has to guess.
                    self._base = None
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not await connection.wait_connected(remaining):
                        raise
                    log.info("nats: writing a batch of %d to %s again", len(batch), self.bucket)
                except BaseException:
                    self._base = None
                    raise

    def _subject(self, key: str) -> str:
        subject = self._subjects.get(key)
        if subject is None:
            subject = kv_subject(self.bucket, key)
            if len(self._subjects) >= _SUBJECT_CACHE:
                self._subjects.clear()
            self._subjects[key] = subject
        return subject

    async def _put(self, batch: Sequence[tuple[str, bytes, dict[str, str] | None]]) -> int:
        base = self._base
        self._base = None
        if base is not None and len(batch) > 1:
            last = await self._write_chained(batch, base)
            if last is not None:
                self._base = last
                return last
        head, tail = batch[:-1], batch[-1]
        if head:
            await self._write(head)
        last = (await self._write([tail]))[-1]
        self._base = last
        return last

    async def _write_chained(
        self, batch: Sequence[tuple[str, bytes, dict[str, str] | None]], base: int
    ) -> int | None:
        connection = self._connection
        for subject, value, headers in batch[:-1]:
            await connection.publish(subject, value, headers)
        subject, value, headers = batch[-1]
        expected = {**(headers or {}), _EXPECTED_LAST: str(base + len(batch) - 1)}
        reply = await connection.request(subject, value, expected, within=self._within(batch))
        try:
            return acknowledged(reply, subject)
        except Conflict:
            log.debug("nats: %s moved under a chained write; writing it acknowledged", self.bucket)
            return None

    def _within(self, batch: Sequence[object]) -> float:
        return self._connection.settings.request_timeout * max(1.0, len(batch) / 1000)

    async def _write(self, batch: Sequence[tuple[str, bytes, dict[str, str] | None]]) -> list[int]:
        replies = await self._connection.requests(batch, within=self._within(batch))
        return [
            acknowledged(reply, subject)
            for reply, (subject, _, _) in zip(replies, batch, strict=True)
        ]

    async def revision(self) -> int:
        await self._ensure()
        info = await self._connection.api(f"STREAM.INFO.{self.stream}", what=self.bucket)
        return int(info["state"]["last_seq"])

    async def _scan(self, config: dict[str, Any], limit: int | None = None) -> list[Msg]:
        await self._ensure()
        try:
            return await scan(self._connection, self.stream, config, limit)
        except NotFound:
            await self._spine.ensure_bucket(self.bucket, again=True)
            return await scan(self._connection, self.stream, config, limit)

    async def history(self, key: str) -> Sequence[KvEntry]:
        config = {"deliver_policy": "all", "filter_subject": kv_subject(self.bucket, key)}
        return [self._entry(msg) for msg in await self._scan(config)]

    async def snapshot(self, prefix: str = "") -> tuple[int, Sequence[KvEntry]]:
        """The live entries under ``prefix`` and a revision at which they are exactly the
        bucket's: the larger of the revision read before the scan and the newest entry seen
        (the scan sees every key under ``prefix`` as of some revision at or after both)."""
        before = await self.revision()
        config = {
            "deliver_policy": "last_per_subject",
            "filter_subject": key_prefix_filter(self.bucket, prefix),
        }
        newest = before
        entries = []
        for msg in await self._scan(config):
            entry = self._entry(msg)
            newest = max(newest, entry.revision)
            if entry.operation is KvOperation.PUT and entry.key.startswith(prefix):
                entries.append(entry)
        entries.sort(key=lambda entry: entry.key)
        return newest, entries

    async def changes(self, after: int, limit: int) -> Sequence[KvEntry]:
        if limit < 1:
            return []
        if limit == 1:  # one request instead of a consumer (SSE resumes check so)
            await self._ensure()
            msg = await next_message(self._connection, self.stream, max(after, 0) + 1, self._all)
            if msg is None:
                return []
            subject = (msg.headers or {}).get("Nats-Subject", "")
            return [self._direct_entry(key_of_subject(self.bucket, subject), msg)]
        config = {
            "deliver_policy": "by_start_sequence",
            "opt_start_seq": max(after, 0) + 1,
            "filter_subject": self._all,
        }
        return [self._entry(msg) for msg in await self._scan(config, limit)]

    async def watch(self, from_revision: int = 0) -> AsyncIterator[KvEntry]:
        """Entries after ``from_revision``, then live ones, through an ephemeral consumer that is
        re-created where the last one stopped if it is lost (a restarted server). A server that
        stays away longer than ``outage_grace`` seconds ends the watch with
        :class:`BackendUnavailable`, as does closing the spine."""
        position = max(from_revision, 0)
        connection = self._connection
        settings = connection.settings
        lost_since: float | None = None
        pause = settings.reconnect_wait
        while True:
            puller: Puller | None = None
            try:
                puller = await self._watcher(position + 1)
                sequence = 0
                while True:
                    for msg in await puller.pull(_WATCH_BATCH, _WATCH_PULL):
                        meta = delivered(msg)
                        if meta.consumer_sequence != sequence + 1:
                            raise _Gap(position)
                        sequence = meta.consumer_sequence
                        entry = self._entry(msg)
                        if entry.revision <= position:
                            continue
                        position = entry.revision
                        yield entry
                    lost_since = None
                    pause = settings.reconnect_wait
            except _Gap:
                log.info("nats: watch of %s lost messages; resuming at %d", self.bucket, position)
            except (BackendUnavailable, NotFound) as exc:
                if not self._spine.running:
                    raise BackendUnavailable("nats spine was closed") from None
                now = time.monotonic()
                lost_since = now if lost_since is None else lost_since
                if now - lost_since > settings.outage_grace:
                    raise BackendUnavailable(
                        f"nats: the watch of {self.bucket} could not resume for "
                        f"{settings.outage_grace:g} s: {exc}"
                    ) from None
                await anyio.sleep(pause)
                pause = min(pause * 2, settings.reconnect_wait_max)
            finally:
                if puller is not None:
                    await puller.close()
                    await self._spine.forget_consumer(puller.stream, puller.consumer)

    async def _watcher(self, start: int) -> Puller:
        await self._ensure()
        config = {
            "ack_policy": "none",
            "deliver_policy": "by_start_sequence",
            "opt_start_seq": start,
            "filter_subject": self._all,
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": int(max(_WATCH_PULL * 6, 60) * 1e9),
        }
        info = await self._connection.api(
            f"CONSUMER.CREATE.{self.stream}",
            {"stream_name": self.stream, "config": config},
            what=f"watching {self.bucket}",
        )
        return await Puller.open(self._connection, self.stream, str(info["name"]))


class _Gap(Exception):
    """The watch's consumer skipped a delivery (lost in a reconnection)."""
