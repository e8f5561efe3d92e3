"""The durable consumer of an Environment's stream, delivering strictly in order.

JetStream redelivers an unacknowledged message after ``ack_wait`` while newer ones flow: after a
crash or a server restart it would hand the projector event 1,257 before the unacknowledged
1,001. The projector's cursor skips events at or below it, so that order would lose 1,001-1,256.
This consumer therefore never lets a newer event overtake an older one:

* Acknowledgement is ``all`` (acknowledging an event acknowledges every earlier one).
* On open, a durable with deliveries pending (from a process that died, or pull requests
  still waiting for one) is **reset**: deleted and re-created to start right after its
  acknowledged floor, so the unacknowledged events come first, now.
* While fetching, the consumer sequence must grow by one per delivery. A gap means deliveries
  were lost on the way (a reconnection); the durable is reset at the acknowledged floor.
* Redeliveries of events already handed out are dropped; the acknowledgement of a later
  event covers them.

A durable is meant to have one reader at a time (one projector per Environment): every handle
of a process shares one :class:`NatsConsumer`, and a second process opening it resets it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import anyio

from catalyst_kernel.errors import BackendUnavailable, InvalidInput, NotFound
from catalyst_kernel.readside.codec import decode_stored
from catalyst_kernel.readside.spine import Delivery
from catalyst_nats.connection import status_of
from catalyst_nats.names import event_stream
from catalyst_nats.pull import Puller, delivered

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

    from nats.aio.msg import Msg

    from catalyst_nats.spine import NatsSpine

__all__ = ["NatsConsumer"]

log = logging.getLogger(__name__)

_NS: Final = 1_000_000_000
_MAX_ACK_PENDING: Final = 1 << 20


class NatsConsumer:
    """A durable pull consumer of one Environment (see the module docstring)."""

    def __init__(self, spine: NatsSpine, environment: str, durable: str) -> None:
        self._spine = spine
        self._connection = spine.connection
        self.environment = environment
        self.durable = durable
        self.stream = event_stream(environment)
        self._lock = anyio.Lock()
        self._puller: Puller | None = None
        self._buffer: deque[Delivery] = deque()
        self._replies: dict[int, str] = {}
        self._acked = 0  # the acknowledged floor (stream sequence)
        self._handed = 0  # the last stream sequence handed out
        self._received = 0  # the last stream sequence handed out or buffered
        self._sequence = 0  # the last consumer (delivery) sequence received
        self._acking: asyncio.Future[Msg] | None = None
        self._acking_sequence = 0
        self.resets = 0
        """How often the durable was re-created at its floor (for tests and metrics)."""

    def __repr__(self) -> str:
        return f"NatsConsumer({self.environment!r}, {self.durable!r})"

    # ---------------------------------------------------------------------------------------------
    # The durable on the server
    # ---------------------------------------------------------------------------------------------

    def _config(self, start: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "durable_name": self.durable,
            "description": "Catalyst: ordered, reset to its acknowledged floor when reopened",
            "ack_policy": "all",
            "ack_wait": int(self._connection.settings.ack_wait * _NS),
            "max_deliver": -1,
            "max_ack_pending": _MAX_ACK_PENDING,
            "replay_policy": "instant",
            "deliver_policy": "all",
        }
        if start > 1:
            config["deliver_policy"] = "by_start_sequence"
            config["opt_start_seq"] = start
        return config

    async def _create(self, start: int) -> dict[str, Any]:
        return await self._connection.api(
            f"CONSUMER.DURABLE.CREATE.{self.stream}.{self.durable}",
            {"stream_name": self.stream, "config": self._config(start)},
            what=f"consumer {self.durable} of {self.environment}",
        )

    async def _delete(self) -> None:
        with contextlib.suppress(NotFound):
            await self._connection.api(
                f"CONSUMER.DELETE.{self.stream}.{self.durable}",
                what=f"consumer {self.durable} of {self.environment}",
            )

    @staticmethod
    def _floor(info: dict[str, Any]) -> int:
        """The acknowledged stream sequence: JetStream reports 0 for a durable that has
        acknowledged nothing yet, even when it starts after a given sequence."""
        floor = int(info["ack_floor"]["stream_seq"])
        if int(info["ack_floor"]["consumer_seq"]) == 0:
            start = int(info.get("config", {}).get("opt_start_seq") or 1)
            floor = max(floor, start - 1)
        return floor

    async def _reset(self, floor: int) -> None:
        """Re-create the durable to start right after ``floor``."""
        self.resets += 1
        log.info(
            "nats: resetting consumer %s of %s to start after %d",
            self.durable,
            self.environment,
            floor,
        )
        with contextlib.suppress(BackendUnavailable):
            await self._settle()  # the floor is ours to set now
        await self._close_puller()
        await self._delete()
        await self._create(floor + 1)
        await self._start(floor, 0)

    async def _start(self, floor: int, sequence: int) -> None:
        self._acked = floor
        self._handed = max(self._handed, floor)
        self._received = self._handed
        self._buffer.clear()
        self._replies.clear()
        self._sequence = sequence
        self._puller = await Puller.open(self._connection, self.stream, self.durable)

    async def _close_puller(self) -> None:
        puller, self._puller = self._puller, None
        if puller is not None:
            await puller.close()

    async def open(self) -> None:
        """Attach to the durable (created if missing, reset if it has pending deliveries):
        every unacknowledged event will be delivered again, first."""
        async with self._lock:
            await self._open()

    async def _open(self) -> None:
        with contextlib.suppress(BackendUnavailable):
            await self._settle()  # whatever it says, the durable's state is read next
        await self._close_puller()
        self._handed = 0
        await self._spine.ensure_stream(self.environment)
        try:
            info = await self._connection.api(
                f"CONSUMER.INFO.{self.stream}.{self.durable}",
                what=f"consumer {self.durable} of {self.environment}",
            )
        except NotFound:
            info = await self._create(1)
        floor = self._floor(info)
        config = info.get("config", {})
        pending = int(info.get("num_ack_pending", 0)) or int(info.get("num_waiting", 0))
        if pending or config.get("ack_policy") != "all" or config.get("filter_subject"):
            await self._reset(floor)
            return
        await self._start(floor, int(info["delivered"]["consumer_seq"]))

    # ---------------------------------------------------------------------------------------------
    # Consumer
    # ---------------------------------------------------------------------------------------------

    async def _settle(self, *, wait: bool = True) -> None:
        """Check the last acknowledgement's confirmation, waiting for it (bounded) unless
        ``wait`` is false and it has not come yet."""
        acking = self._acking
        if acking is None or (not wait and not acking.done()):
            return
        self._acking = None
        (answer,) = await self._connection.replies([acking], what=f"ack of {self.environment}")
        if status_of(answer) is not None:
            raise BackendUnavailable(
                f"nats: the acknowledgement of {self.environment} #{self._acking_sequence} "
                "was refused"
            )

    async def settle(self) -> None:
        """Confirm the last acknowledgement now (the spine does it when it closes)."""
        async with self._lock:
            await self._settle()

    async def fetch(self, batch: int, max_wait: float) -> Sequence[Delivery]:
        if batch < 1:
            raise InvalidInput(f"batch must be positive, got {batch}")
        async with self._lock:
            await self._settle(wait=False)
            deadline = anyio.current_time() + max_wait
            while True:
                if self._buffer:
                    return [self._hand_out() for _ in range(min(batch, len(self._buffer)))]
                puller = self._puller
                if puller is None or puller.stale:
                    await self._open()
                    continue
                remaining = deadline - anyio.current_time()
                try:
                    messages = await puller.pull(batch, max(remaining, 0.0))
                except NotFound:
                    await self._open()
                    continue
                for msg in messages:
                    meta = delivered(msg)
                    if self._sequence and meta.consumer_sequence != self._sequence + 1:
                        log.info(
                            "nats: consumer %s of %s missed deliveries %d-%d",
                            self.durable,
                            self.environment,
                            self._sequence + 1,
                            meta.consumer_sequence - 1,
                        )
                        await self._reset(self._acked)
                        break
                    self._sequence = meta.consumer_sequence
                    sequence = meta.stream_sequence
                    self._replies[sequence] = msg.reply
                    if sequence <= self._received:
                        continue  # redelivered; the acknowledgement of a later one covers it
                    self._received = sequence
                    self._buffer.append(
                        Delivery(
                            self.environment,
                            sequence,
                            decode_stored(msg.data),
                            attempt=meta.attempt,
                        )
                    )
                if not self._buffer and anyio.current_time() >= deadline:
                    return []

    def _hand_out(self) -> Delivery:
        delivery = self._buffer.popleft()
        self._handed = delivery.sequence
        return delivery

    async def ack(self, delivery: Delivery) -> None:
        if delivery.environment != self.environment:
            raise InvalidInput(
                f"delivery of {delivery.environment} acknowledged on {self.environment}"
            )
        async with self._lock:
            sequence = delivery.sequence
            if sequence <= self._acked:
                return
            covered = [s for s in self._replies if s <= sequence]
            if not covered or self._puller is None or self._puller.stale:
                # Not delivered by this consumer (a replay moving it on), or delivered before
                # a reset: re-create the durable after ``sequence``, which acknowledges it.
                await self._reset(sequence)
                return
            reply = self._replies[max(covered)]
            await self._settle()
            # Confirmed before the next fetch, not now: the round trip overlaps the caller's
            # next step (a lost acknowledgement only means a redelivery the cursor skips).
            (self._acking,) = await self._connection.send([(reply, b"+ACK", None)])
            self._acking_sequence = max(covered)
            self._acked = max(covered)
            for stale in covered:
                del self._replies[stale]
            if self._acked < sequence:
                await self._reset(sequence)
