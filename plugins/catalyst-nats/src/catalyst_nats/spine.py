"""The ``nats`` spine: Environment event streams and KV buckets on NATS JetStream.

Layout (see ``docs/decisions/0008-nats-spine.md``):

* one stream per Environment, ``ws-<env>-events``, capturing ``ws.<env>`` and ``ws.<env>.>``,
  deduplicating on ``Nats-Msg-Id`` (the event id) within ``duplicate_window``;
* one KV bucket per Environment, ``ws-<env>-state`` (stream ``KV_ws-<env>-state``), keeping
  ``history`` revisions per key;
* the Sovereign's directory in the KV bucket ``catalyst-directory``, which no Environment can
  be called (``catalyst`` is a reserved Organization name);
* the projector's durable pull consumer on each Environment's stream
  (:class:`~catalyst_nats.consumer.NatsConsumer`).

Streams and buckets are created on first use. Differences from the embedded spine, by
JetStream's design: deduplication is windowed, and ``put_many`` is not atomic (it is ordered,
and its last item lands only after all the others).
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio

from catalyst_kernel.errors import BackendUnavailable, CatalystError, InvalidInput, NotFound
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.readside.codec import decode_stored, encode
from catalyst_kernel.readside.spine import Delivery, Published
from catalyst_kernel.readside.sqlite_spine import DIRECTORY_BUCKET
from catalyst_kernel.readside.subjects import SUBJECT_PREFIX, kv_bucket
from catalyst_nats.connection import Connection, api_error, status_of
from catalyst_nats.consumer import NatsConsumer
from catalyst_nats.kv import NatsKeyValue
from catalyst_nats.managed import ManagedServer
from catalyst_nats.names import environment_of_stream, event_stream, event_subject, kv_stream
from catalyst_nats.pull import delivered, direct_sequence, next_message, scan

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from catalyst_kernel.model.event import Event
    from catalyst_nats.settings import NatsSettings

__all__ = ["DIRECTORY_BUCKET", "NatsSpine"]

log = logging.getLogger(__name__)

_NS: Final = 1_000_000_000
_KV_DUPLICATE_WINDOW: Final = 120 * _NS
_NAMES_PAGE: Final = 1024


class NatsSpine:
    """The ``nats`` spine provider.

    :param settings: the ``[plugins.nats]`` settings.
    :param data_dir: where managed mode keeps the server's JetStream store (the plugin's data
        directory); required with ``settings.managed``.
    """

    def __init__(self, settings: NatsSettings, *, data_dir: Path | None = None) -> None:
        if settings.managed and data_dir is None:
            raise InvalidInput("managed mode needs a data directory for the JetStream store")
        self.settings = settings
        self.managed = (
            ManagedServer(settings, data_dir / "jetstream")
            if settings.managed and data_dir is not None
            else None
        )
        self.connection = Connection(settings)
        self._running = False
        self._ensured: set[str] = set()
        self._ensured_generation = -1
        self._buckets: dict[str, NatsKeyValue] = {}
        self._consumers: dict[tuple[str, str], NatsConsumer] = {}
        self._streams: dict[str, str] = {}
        self._ensuring: dict[str, anyio.Lock] = {}

    @property
    def running(self) -> bool:
        return self._running

    # ---------------------------------------------------------------------------------------------
    # Service
    # ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (a server that is down is waited for in the background, not here)."""
        if self._running:
            return
        if self.managed is not None:
            url = await self.managed.start()
            self.connection.servers = (url,)
        self._running = True
        await self.connection.start()

    async def close(self) -> None:
        for consumer in list(self._consumers.values()):
            with contextlib.suppress(CatalystError):
                await consumer.settle()
        self._running = False
        await self.connection.close()
        self._consumers.clear()
        self._ensured.clear()
        if self.managed is not None:
            await self.managed.stop()

    async def check(self) -> Readiness:
        if not self._running:
            return Readiness.unavailable("unavailable: nats spine is not started (or was closed)")
        if self.managed is not None and not self.managed.alive:
            return Readiness.unavailable(
                f"unavailable: the managed nats-server exited: {self.managed.reason}"
            )
        return await self.connection.readiness()

    # ---------------------------------------------------------------------------------------------
    # Streams and buckets
    # ---------------------------------------------------------------------------------------------

    def _stream_config(self, environment: str) -> dict[str, Any]:
        base = f"{SUBJECT_PREFIX}.{environment}"
        return {
            "name": event_stream(environment),
            "description": f"Catalyst events of {environment}",
            "subjects": [base, f"{base}.>"],
            "retention": "limits",
            "discard": "old",
            "storage": self.settings.storage.value,
            "num_replicas": self.settings.replicas,
            "duplicate_window": int(self.settings.duplicate_window * _NS),
            "allow_direct": True,
        }

    def _bucket_config(self, bucket: str) -> dict[str, Any]:
        # A NATS KV bucket as the NATS clients and CLI create it, so their tools read it.
        return {
            "name": kv_stream(bucket),
            "description": f"Catalyst KV bucket {bucket}",
            "subjects": [f"$KV.{bucket}.>"],
            "retention": "limits",
            "discard": "new",
            "max_msgs_per_subject": self.settings.history,
            "storage": self.settings.storage.value,
            "num_replicas": self.settings.replicas,
            "duplicate_window": _KV_DUPLICATE_WINDOW,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "deny_purge": False,
            "allow_direct": True,
        }

    async def _ensure(
        self, name: str, config: Callable[[], dict[str, Any]], *, again: bool
    ) -> None:
        connection = self.connection
        if self._ensured_generation != connection.generation:
            self._ensured.clear()
            self._ensured_generation = connection.generation
        if name in self._ensured and not again:
            return
        lock = self._ensuring.setdefault(name, anyio.Lock())
        async with lock:
            if name in self._ensured and not again:
                return  # another task just did
            await self._create_unless_exists(name, config)
        self._ensured.add(name)

    async def _create_unless_exists(self, name: str, config: Callable[[], dict[str, Any]]) -> None:
        connection = self.connection
        try:
            await connection.api(f"STREAM.INFO.{name}", what=f"stream {name}")
        except NotFound:
            try:
                await connection.api(f"STREAM.CREATE.{name}", config(), what=f"creating {name}")
            except InvalidInput as exc:
                raise BackendUnavailable(str(exc)) from None
            log.info("nats: created stream %s", name)

    async def _exists(self, stream: str) -> bool:
        # Direct gets of a stream that does not exist are not answered at all: ask first.
        if stream in self._ensured and self._ensured_generation == self.connection.generation:
            return True
        try:
            await self.connection.api(f"STREAM.INFO.{stream}", what=f"stream {stream}")
        except NotFound:
            return False
        return True

    async def ensure_stream(self, environment: str, *, again: bool = False) -> None:
        """Create ``environment``'s event stream unless it exists."""
        stream = self._streams.get(environment)
        if stream is None:
            stream = self._streams.setdefault(environment, event_stream(environment))
        await self._ensure(stream, lambda: self._stream_config(environment), again=again)

    async def ensure_bucket(self, bucket: str, *, again: bool = False) -> None:
        """Create the KV bucket unless it exists."""
        await self._ensure(kv_stream(bucket), lambda: self._bucket_config(bucket), again=again)

    async def forget_consumer(self, stream: str, name: str) -> None:
        """Delete an ephemeral consumer without waiting (it also expires when idle)."""
        with anyio.CancelScope(shield=True), contextlib.suppress(BackendUnavailable):
            await self.connection.publish(
                f"{self.connection.api_prefix}.CONSUMER.DELETE.{stream}.{name}"
            )

    # ---------------------------------------------------------------------------------------------
    # Event log
    # ---------------------------------------------------------------------------------------------

    async def publish(self, environment: str, event: Event) -> Published:
        subject = event_subject(environment, event.subject)
        body = encode(event)
        headers = {"Nats-Msg-Id": event.id}
        await self.ensure_stream(environment)
        reply = await self.connection.request(subject, body, headers)
        if status_of(reply) == "503":
            await self.ensure_stream(environment, again=True)
            reply = await self.connection.request(subject, body, headers)
            if status_of(reply) == "503":
                raise BackendUnavailable(f"nats: no stream stores {subject}")
        try:
            ack = json.loads(reply.data)
        except ValueError:
            raise BackendUnavailable(f"nats: unreadable acknowledgement for {subject}") from None
        if ack.get("error"):
            raise api_error(ack["error"], f"publishing to {subject}")
        return Published(int(ack["seq"]), duplicate=bool(ack.get("duplicate", False)))

    async def read(self, environment: str, after: int = 0, limit: int = 1000) -> Sequence[Delivery]:
        check_environment_name(environment)
        if limit < 1:
            return []
        stream = event_stream(environment)
        if not await self._exists(stream):
            return []
        try:
            if limit == 1:  # one request instead of a consumer (metrics probe the head so)
                msg = await next_message(self.connection, stream, max(after, 0) + 1)
                if msg is None:
                    return []
                sequence, _ = direct_sequence(msg)
                return [Delivery(environment, sequence, decode_stored(msg.data))]
            config = {"deliver_policy": "by_start_sequence", "opt_start_seq": max(after, 0) + 1}
            messages = await scan(self.connection, stream, config, limit)
        except NotFound:
            return []
        return [
            Delivery(environment, delivered(msg).stream_sequence, decode_stored(msg.data))
            for msg in messages
        ]

    async def consumer(self, environment: str, durable: str) -> NatsConsumer:
        check_environment_name(environment)
        if not durable or not durable.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"consumer name {durable!r} must be letters, digits, '-' or '_'")
        if not durable.isascii():
            raise InvalidInput(f"consumer name {durable!r} must be ASCII")
        if not self._running:
            raise self.connection.unavailable()
        consumer = self._consumers.get((environment, durable))
        if consumer is None:
            consumer = NatsConsumer(self, environment, durable)
            self._consumers[(environment, durable)] = consumer
        await consumer.open()
        return consumer

    async def environments(self) -> Sequence[str]:
        found: set[str] = set()
        offset = 0
        while True:
            page = await self.connection.api(
                "STREAM.NAMES", {"subject": f"{SUBJECT_PREFIX}.>", "offset": offset}
            )
            names = page.get("streams") or []
            for name in names:
                environment = environment_of_stream(str(name))
                if environment is not None:
                    found.add(environment)
            offset += len(names)
            if not names or offset >= int(page.get("total", 0)):
                break
        return sorted(found)

    # ---------------------------------------------------------------------------------------------
    # KV
    # ---------------------------------------------------------------------------------------------

    def _bucket(self, bucket: str) -> NatsKeyValue:
        if not self._running:
            raise self.connection.unavailable()
        handle = self._buckets.get(bucket)
        if handle is None:
            handle = self._buckets.setdefault(bucket, NatsKeyValue(self, bucket))
        return handle

    async def key_value(self, environment: str) -> NatsKeyValue:
        """``environment``'s bucket; created on its first use (so this works, and the
        service starts, while the server is down)."""
        return self._bucket(kv_bucket(environment))

    async def directory(self) -> NatsKeyValue:
        return self._bucket(DIRECTORY_BUCKET)
