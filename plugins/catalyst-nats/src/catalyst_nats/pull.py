"""Reading streams through pull consumers: one-shot scans and long-lived pullers.

A :class:`Puller` keeps at most one pull request open for a consumer and hands out what arrives;
:func:`scan` reads a bounded range through a throw-away consumer. Every wait is bounded: a pull
request carries an expiry, and one that neither delivers nor expires in time (a restarted
server forgets its pull requests) is re-sent after the consumer is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import anyio
from attrs import frozen

from catalyst_kernel.errors import BackendUnavailable, NotFound
from catalyst_nats.connection import status_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from catalyst_nats.connection import Connection

__all__ = [
    "Delivered",
    "Puller",
    "delivered",
    "direct_sequence",
    "next_message",
    "scan",
    "timestamp",
]

_NS: Final = 1_000_000_000
_SCAN_PAGE: Final = 10_000
# Empty pages in a row (each one a request timeout) after which a scan gives up.
_SCAN_STALLS: Final = 6
# Seconds a pull request lives on the server; a fetch waiting less re-uses the open one.
_PULL_EXPIRES_MIN: Final = 0.5
_PULL_EXPIRES_MAX: Final = 30.0
_PREFETCH_BATCHES: Final = 2
# Statuses that end a pull request (408 expired, 404 nothing to deliver, 409 refused).
_ENDS_REQUEST: Final = frozenset({"404", "408", "409"})


@frozen
class Delivered:
    """What a consumer's acknowledgement subject says about one delivery."""

    stream_sequence: int
    consumer_sequence: int
    attempt: int
    timestamp_ns: int


def delivered(msg: Msg) -> Delivered:
    """Parse ``$JS.ACK.<stream>.<consumer>.<attempt>.<sseq>.<dseq>.<ns>.<pending>`` (and the
    longer form with domain and account hash)."""
    tokens = msg.reply.split(".")
    if len(tokens) == 9:
        offset = 4
    elif len(tokens) >= 11:
        offset = 6
    else:
        raise BackendUnavailable(f"nats: unexpected delivery subject {msg.reply!r}")
    try:
        return Delivered(
            stream_sequence=int(tokens[offset + 1]),
            consumer_sequence=int(tokens[offset + 2]),
            attempt=int(tokens[offset]),
            timestamp_ns=int(tokens[offset + 3]),
        )
    except ValueError:
        raise BackendUnavailable(f"nats: unexpected delivery subject {msg.reply!r}") from None


def timestamp(nanoseconds: int) -> datetime:
    """A JetStream timestamp (nanoseconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(nanoseconds / _NS, UTC)


class Puller:
    """The pull side of one consumer: one open pull request at a time, deliveries in a queue.

    :param connection: the spine's connection.
    :param stream: the stream name.
    :param consumer: the consumer name.
    """

    def __init__(self, connection: Connection, stream: str, consumer: str) -> None:
        """Use :meth:`open`."""
        self._connection = connection
        self.stream = stream
        self.consumer = consumer
        self._next = f"{connection.api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._queue: deque[Msg] = deque()
        self._wake = asyncio.Event()
        self._owed = 0
        self._lingering = False
        self._expires_at = 0.0
        self._reconnects = connection.reconnects
        self.generation = connection.generation
        self._closed = False
        self._reply = ""
        self._subscription: Subscription | None = None
        self._undo_close = connection.on_change(self._wake.set)

    @classmethod
    async def open(cls, connection: Connection, stream: str, consumer: str) -> Puller:
        """A puller with its own inbox (deliveries keep their stream subject: only the
        subscription tells them apart)."""
        puller = cls(connection, stream, consumer)
        puller._reply = connection.new_inbox()
        puller._subscription = await connection.subscribe(puller._reply, puller._on_message)
        return puller

    async def _on_message(self, msg: Msg) -> None:
        self._receive(msg)

    def _receive(self, msg: Msg) -> None:
        self._queue.append(msg)
        self._wake.set()

    @property
    def stale(self) -> bool:
        """Made on a client that is gone: open a new one."""
        return self.generation != self._connection.generation

    async def close(self) -> None:
        """Stop receiving (the server's open pull request, if any, expires on its own)."""
        self._closed = True
        self._undo_close()
        self._wake.set()
        subscription, self._subscription = self._subscription, None
        if subscription is not None and not self.stale:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _request(self, batch: int, linger: float | None = None) -> None:
        """Ask for ``batch`` messages: what is there now, or (``linger``) the first to come
        within that many seconds."""
        request: dict[str, Any] = {"batch": batch}
        now = time.monotonic()
        if linger is None:
            request["no_wait"] = True
            self._expires_at = now
        else:
            expires = min(max(linger, _PULL_EXPIRES_MIN), _PULL_EXPIRES_MAX)
            request["expires"] = int(expires * _NS)
            self._expires_at = now + expires
        await self._connection.publish(self._next, json.dumps(request).encode(), reply=self._reply)
        self._owed = batch
        self._lingering = linger is not None
        self._reconnects = self._connection.reconnects

    async def _lost(self) -> bool:
        """Whether the open request is gone without a word (a reconnection, or neither its
        messages nor its end came back in time); raises NotFound if the consumer is gone too
        (a server restarted without it: nothing would ever answer its pull requests)."""
        reconnected = self._reconnects != self._connection.reconnects
        if reconnected or (
            time.monotonic() > self._expires_at + self._connection.settings.request_timeout
        ):
            await self._connection.api(f"CONSUMER.INFO.{self.stream}.{self.consumer}")
            return True
        return False

    async def pull(
        self, batch: int, wait: float, *, prefetch: bool = True, linger: bool = True
    ) -> list[Msg]:
        """Up to ``batch`` messages: every one available now, or, if there is none, the first
        to arrive within ``wait`` seconds (then an empty list).

        :param prefetch: when handing messages out, keep a request for the next ``batch``
            open, so they travel while the caller works.
        :param linger: wait for new messages at all (scans do not).
        :raises NotFound: the consumer is gone.
        :raises BackendUnavailable: the connection is lost or closed.
        """
        grace = self._connection.settings.request_timeout
        deadline = time.monotonic() + wait
        out: list[Msg] = []
        probed = lingered = False
        while True:
            if self._closed or self.stale or not self._connection.started:
                raise self._connection.unavailable()
            out += self._take(batch - len(out))
            if len(out) >= batch:
                break
            now = time.monotonic()
            if self._owed > 0:
                if self._lingering and (out or now >= deadline):
                    break  # a new-message wait is open: hand out what came, or nothing
                if await self._lost():
                    self._owed = 0
                    continue
            elif not probed:
                await self._request(batch - len(out))
                probed = True
                continue
            elif out or not linger or lingered or now >= deadline:
                break
            else:
                await self._request(batch - len(out), deadline - now)
                lingered = True
                continue
            self._wake.clear()
            if not self._queue:
                until = self._expires_at + grace if not self._lingering else deadline
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(until - now, 0.0))
        if prefetch and out and self._owed <= 0:
            # Keep a request open while the caller works: what arrives meanwhile is queued,
            # up to two batches ahead.
            await self._request(batch * _PREFETCH_BATCHES, max(wait, _PULL_EXPIRES_MIN))
        return out

    def _take(self, batch: int) -> list[Msg]:
        out: list[Msg] = []
        queue = self._queue
        while queue and len(out) < batch:
            msg = queue.popleft()
            status = status_of(msg)
            if status is None:
                self._owed -= 1
                out.append(msg)
            elif status in _ENDS_REQUEST:
                self._owed = 0
                if status == "409" and "deleted" in _description(msg).lower():
                    raise NotFound(f"nats: consumer {self.consumer} of {self.stream} was deleted")
            # 100 (idle heartbeat) and others: nothing to do.
        return out


def _description(msg: Msg) -> str:
    headers = msg.headers or {}
    for key, value in headers.items():
        if str(key).lower() == "description":
            return str(value)
    return ""


async def scan(
    connection: Connection,
    stream: str,
    config: Mapping[str, Any],
    limit: int | None = None,
) -> list[Msg]:
    """Every message a throw-away consumer with ``config`` delivers now, up to ``limit``.

    The consumer (acknowledgements off, in memory) is created with the request, read to the
    number of messages pending at creation, and deleted.

    :raises NotFound: the stream does not exist.
    """
    body = {
        "stream_name": stream,
        "config": {
            "ack_policy": "none",
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": int(max(connection.settings.request_timeout, 5.0) * _NS),
            **config,
        },
    }
    info = await connection.api(f"CONSUMER.CREATE.{stream}", body, what=f"reading {stream}")
    name = str(info["name"])
    wanted = int(info.get("num_pending", 0))
    if limit is not None:
        wanted = min(wanted, limit)
    out: list[Msg] = []
    if wanted <= 0:
        await _delete(connection, stream, name)
        return out
    puller = await Puller.open(connection, stream, name)
    try:
        timeout = connection.settings.request_timeout
        stalls = 0
        while len(out) < wanted:
            page = await puller.pull(
                min(wanted - len(out), _SCAN_PAGE), timeout, prefetch=False, linger=False
            )
            if page:
                out.extend(page)
                stalls = 0
                continue
            # An empty page is the end only if the consumer has nothing left to send and
            # everything it sent has arrived; on a busy server the answer may just be late,
            # and a short read would pass for the whole range.
            if await _finished(connection, stream, name, len(out)):
                break  # fewer than announced: history limits removed some meanwhile
            stalls += 1
            if stalls >= _SCAN_STALLS:
                raise BackendUnavailable(
                    f"nats: reading {stream} stalled after {len(out)} of {wanted} messages"
                )
    except NotFound:
        # The stream was there when the consumer was made: its reader expired mid-read.
        # Not "no such stream", which callers take for an empty read.
        raise BackendUnavailable(
            f"nats: the reader of {stream} was lost after {len(out)} of {wanted} messages"
        ) from None
    finally:
        await puller.close()
        await _delete(connection, stream, name)
    return out[:wanted]


async def _finished(connection: Connection, stream: str, name: str, received: int) -> bool:
    """Whether scan consumer ``name`` has nothing left to deliver and ``received`` messages
    are all it delivered (acknowledgements are off: one delivery per message)."""
    info = await connection.api(f"CONSUMER.INFO.{stream}.{name}", what=f"reading {stream}")
    delivered = int(info.get("delivered", {}).get("consumer_seq", 0))
    return int(info.get("num_pending", 0)) == 0 and delivered <= received


async def _delete(connection: Connection, stream: str, name: str) -> None:
    # Fire and forget: the inactivity threshold removes it anyway if this is lost.
    with contextlib.suppress(BackendUnavailable):
        await connection.publish(f"{connection.api_prefix}.CONSUMER.DELETE.{stream}.{name}")


async def next_message(
    connection: Connection, stream: str, sequence: int, subjects: str = ">"
) -> Msg | None:
    """The first message at or after ``sequence`` on ``subjects`` (direct get: one request),
    or ``None``; the message's own subject and sequence are in its ``Nats-Subject`` and
    ``Nats-Sequence`` headers.

    :raises NotFound: no stream ``stream`` (nothing answers direct gets for it).
    """
    request = json.dumps({"seq": max(sequence, 1), "next_by_subj": subjects}).encode()
    reply = await connection.request(f"{connection.api_prefix}.DIRECT.GET.{stream}", request)
    status = status_of(reply)
    if status == "404":
        return None
    if status == "503":
        raise NotFound(f"nats: stream {stream} does not exist")
    if status is not None:
        raise BackendUnavailable(f"nats: direct get from {stream} answered {status}")
    return reply


def direct_sequence(msg: Msg) -> tuple[int, datetime]:
    """The stream sequence and time of a direct get's answer."""
    headers = msg.headers or {}
    try:
        return int(headers["Nats-Sequence"]), datetime.fromisoformat(headers["Nats-Time-Stamp"])
    except (KeyError, ValueError):
        raise BackendUnavailable("nats: unreadable direct get answer") from None
