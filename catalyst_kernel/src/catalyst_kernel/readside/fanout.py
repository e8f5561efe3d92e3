"""Fan-out of an Environment's KV changes to many subscribers: the engine behind SSE (SPEC §6).

A :class:`FanoutHub` serves one process. For every Environment that has at least one subscriber
it runs exactly **one** KV watch and hands each :class:`~catalyst_kernel.readside.spine.KvEntry`
to every subscriber through a bounded per-subscriber buffer. Nothing a subscriber does can block
the watch or the other subscribers: one whose buffer is full is dropped, and its iteration ends
with :attr:`EndReason.TOO_SLOW` after it has consumed what was already buffered, so the client can
resume from the last id it saw.

Keep-alives cost no timer per subscriber: one hub task looks at every subscription
``_TICKS_PER_KEEPALIVE`` times per ``keepalive`` interval and wakes those that sent nothing for a
whole interval, so a keep-alive follows between 1 and 1.25 intervals of silence. That keeps a
subscriber's wait for its next entry as cheap as a bare memory-stream receive.

Lifecycle choice: an Environment's watch starts with its first subscriber and stops as soon as
its last one leaves. An idle Environment then costs nothing (no polling, no consumer on the
spine); the price is one :meth:`~catalyst_kernel.readside.spine.KeyValue.revision` to find the
current revision when the watch starts again.

:func:`format_sse` turns what a subscription yields into ``text/event-stream`` bytes.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeAlias, TypeVar

import anyio
import anyio.lowlevel
from attrs import frozen

from catalyst_kernel.errors import BackendUnavailable, CatalystError, InvalidInput
from catalyst_kernel.readside.spine import KvEntry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping
    from types import TracebackType
    from typing import Self

    from anyio.abc import TaskGroup, TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from catalyst_kernel.readside.spine import KeyValue, Spine

__all__ = [
    "DEFAULT_BACKEND_TIMEOUT",
    "DEFAULT_BUFFER_SIZE",
    "DEFAULT_CATCH_UP_PAGE",
    "DEFAULT_KEEPALIVE",
    "KEEPALIVE",
    "EndReason",
    "FanoutCounters",
    "FanoutHub",
    "KeepAlive",
    "Subscription",
    "Visible",
    "format_sse",
    "sse_comment",
    "sse_message",
]

T = TypeVar("T")

DEFAULT_BUFFER_SIZE: Final = 1024
"""Entries buffered per subscriber before it is dropped as too slow."""

DEFAULT_KEEPALIVE: Final = 15.0
"""Seconds of silence before a keep-alive; below the 30-60 s idle cut-off of common proxies."""

DEFAULT_CATCH_UP_PAGE: Final = 512
"""Entries read from the spine per request while a resuming subscriber catches up."""

DEFAULT_BACKEND_TIMEOUT: Final = 10.0
"""Seconds one spine request (bucket, revision, page of changes) may take."""

_TICKS_PER_KEEPALIVE: Final = 4

Visible: TypeAlias = Callable[[KvEntry], bool]
"""A subscriber's read filter: ``True`` for the entries it may receive."""


class KeepAlive(enum.Enum):
    """The marker a subscription yields when it sent nothing for ``keepalive`` seconds."""

    KEEPALIVE = "keep-alive"


KEEPALIVE: Final = KeepAlive.KEEPALIVE
"""The one :class:`KeepAlive` value."""


class EndReason(enum.StrEnum):
    """Why the hub ended a subscription (see :attr:`Subscription.reason`)."""

    TOO_SLOW = "too-slow"
    """Its buffer was full when an entry arrived; it was dropped so the others are not held up."""

    CLOSED = "closed"
    """The hub is shutting down."""

    UNAVAILABLE = "unavailable"
    """The Environment's watch failed; iterating raises the backend's error."""


@frozen
class FanoutCounters:
    """Counters of one Environment, for metrics.

    :param subscribers: subscriptions attached now.
    :param watching: whether the Environment's KV watch is running.
    :param watch_starts: how many times its watch was started (the watch stops when the last
        subscriber leaves and starts again with the next one).
    :param entries: entries taken from the watch and offered to subscribers.
    :param deliveries: entries put in subscriber buffers (``entries`` times the subscribers then).
    :param dropped: subscribers dropped because their buffer was full.
    """

    subscribers: int
    watching: bool
    watch_starts: int
    entries: int
    deliveries: int
    dropped: int


class _Counters:
    def __init__(self) -> None:
        self.watch_starts = 0
        self.entries = 0
        self.deliveries = 0
        self.dropped = 0


class _Broadcaster:
    """The state of one Environment's watch; :class:`FanoutHub` drives it."""

    def __init__(self, environment: str, kv: KeyValue, counters: _Counters) -> None:
        self.environment = environment
        self.kv = kv
        self.counters = counters
        # Every subscriber receives exactly the entries with a revision above ``position`` at the
        # moment it was added: dispatch and registration never interleave (both are synchronous).
        self.position = 0
        self.subscribers: set[Subscription] = set()
        self.scope = anyio.CancelScope()


class FanoutHub:
    """Hands out per-Environment subscriptions to KV changes, one KV watch per Environment.

    Use it as an async context manager; it owns the watch tasks and ends every subscription
    (:attr:`EndReason.CLOSED`) on exit::

        async with FanoutHub(spine) as hub:
            async with hub.subscribe("acme-dev", last_event_id=41) as events:
                async for item in events:
                    await send(format_sse(item))

    :param spine: the started spine whose KV buckets are watched.
    :param buffer_size: entries buffered per subscriber; one more and it is dropped as too slow.
    :param keepalive: seconds without sending anything after which a subscription yields
        :data:`KEEPALIVE` (it does so within 1.25 times this).
    :param catch_up_page: entries read per spine request while a subscriber catches up.
    :param backend_timeout: seconds one spine request may take before it counts as
        :class:`~catalyst_kernel.errors.BackendUnavailable`.
    """

    def __init__(
        self,
        spine: Spine,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        keepalive: float = DEFAULT_KEEPALIVE,
        catch_up_page: int = DEFAULT_CATCH_UP_PAGE,
        backend_timeout: float = DEFAULT_BACKEND_TIMEOUT,
    ) -> None:
        if buffer_size < 1:
            raise InvalidInput(f"buffer_size must be positive, got {buffer_size}")
        if not keepalive > 0:
            raise InvalidInput(f"keepalive must be positive, got {keepalive}")
        if catch_up_page < 1:
            raise InvalidInput(f"catch_up_page must be positive, got {catch_up_page}")
        if not backend_timeout > 0:
            raise InvalidInput(f"backend_timeout must be positive, got {backend_timeout}")
        self.spine = spine
        self.buffer_size = buffer_size
        self.keepalive = keepalive
        self.catch_up_page = catch_up_page
        self.backend_timeout = backend_timeout
        self._tick = keepalive / _TICKS_PER_KEEPALIVE
        self._tasks: TaskGroup | None = None
        self._broadcasters: dict[str, _Broadcaster] = {}
        self._starting: dict[str, anyio.Lock] = {}
        self._counters: dict[str, _Counters] = {}

    async def __aenter__(self) -> Self:
        if self._tasks is not None:
            raise InvalidInput("this FanoutHub is already running")
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        self._tasks = tasks
        tasks.start_soon(self._keep_alive)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tasks, self._tasks = self._tasks, None
        for broadcaster in list(self._broadcasters.values()):
            self._stop(broadcaster, EndReason.CLOSED)
        assert tasks is not None
        tasks.cancel_scope.cancel()
        # The body's own exception is not handed to the task group, which would wrap it in an
        # ExceptionGroup: it propagates as raised (the watch tasks are cancelled either way).
        await tasks.__aexit__(None, None, None)

    def subscribe(
        self,
        environment: str,
        last_event_id: int | None = None,
        visible: Visible | None = None,
    ) -> Subscription:
        """A subscription to ``environment``'s KV changes; enter it to attach it.

        :param environment: the Environment whose KV bucket is streamed.
        :param last_event_id: the last revision the client received (SSE ``Last-Event-ID``):
            the subscription first yields the retained entries after it, then live ones, with no
            gap and no duplicate. ``None`` starts from the current revision (live only).
        :param visible: the caller's read filter; entries it rejects are never yielded. Called
            once per entry, in the subscriber's own task (what it raises comes out of the
            iteration); delete markers carry no value, so decide by key.
        :return: an async context manager that is also the async iterator of
            :class:`~catalyst_kernel.readside.spine.KvEntry` and :data:`KEEPALIVE` items.
            Entering raises :class:`~catalyst_kernel.errors.InvalidInput` for a negative
            ``last_event_id`` or one beyond the bucket's revision (the client must reload the
            snapshot) and :class:`~catalyst_kernel.errors.BackendUnavailable` if the spine
            cannot be read.
        """
        if last_event_id is not None and last_event_id < 0:
            raise InvalidInput(
                f"Last-Event-ID must be a revision (>= 0), got {last_event_id}",
                field="Last-Event-ID",
            )
        return Subscription(self, environment, last_event_id, visible)

    def counters(self) -> Mapping[str, FanoutCounters]:
        """Counters of every Environment subscribed to since the hub was created."""
        result: dict[str, FanoutCounters] = {}
        for environment, counters in sorted(self._counters.items()):
            broadcaster = self._broadcasters.get(environment)
            result[environment] = FanoutCounters(
                subscribers=len(broadcaster.subscribers) if broadcaster else 0,
                watching=broadcaster is not None,
                watch_starts=counters.watch_starts,
                entries=counters.entries,
                deliveries=counters.deliveries,
                dropped=counters.dropped,
            )
        return result

    # ---------------------------------------------------------------------------------------------
    # Subscriptions attach and detach
    # ---------------------------------------------------------------------------------------------

    async def _bounded(self, what: str, request: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self.backend_timeout):
                return await request
        except TimeoutError:
            raise BackendUnavailable(
                f"spine: {what} took longer than {self.backend_timeout} s"
            ) from None

    async def _attach(self, subscription: Subscription) -> None:
        """Add ``subscription`` to its Environment's broadcaster, starting it if needed."""
        environment = subscription.environment
        kv = await self._bounded("opening the bucket", self.spine.key_value(environment))
        last = subscription.last_event_id
        # A revision beyond the head would silently swallow live entries until the bucket
        # catches up with it; the head is always retained, so one lookup tells.
        if last and not await self._bounded("reading changes", kv.changes(last - 1, 1)):
            raise InvalidInput(
                f"Last-Event-ID {last} is beyond {environment}'s current revision; "
                "reload the snapshot and subscribe again",
                field="Last-Event-ID",
            )
        starting = self._starting.setdefault(environment, anyio.Lock())
        try:
            # Another subscriber may be starting this watch: waiting for it is bounded too.
            with anyio.fail_after(2 * self.backend_timeout):
                await starting.acquire()
        except TimeoutError:
            raise BackendUnavailable(f"the KV watch of {environment} is slow to start") from None
        try:
            tasks = self._tasks
            if tasks is None:
                raise InvalidInput("subscribe inside 'async with FanoutHub(...)'")
            broadcaster = self._broadcasters.get(environment)
            if broadcaster is None:
                counters = self._counters.setdefault(environment, _Counters())
                broadcaster = _Broadcaster(environment, kv, counters)
                await tasks.start(self._run, broadcaster)
                self._broadcasters[environment] = broadcaster
            # No await between these two lines: the subscription starts exactly where the
            # broadcaster stands, so it misses nothing and sees nothing twice.
            broadcaster.subscribers.add(subscription)
            subscription._start(broadcaster.kv, broadcaster.position)
        finally:
            starting.release()

    def _detach(self, subscription: Subscription) -> None:
        broadcaster = self._broadcasters.get(subscription.environment)
        if broadcaster is None or subscription not in broadcaster.subscribers:
            return
        broadcaster.subscribers.discard(subscription)
        if not broadcaster.subscribers:
            self._stop(broadcaster, None)

    def _stop(self, broadcaster: _Broadcaster, reason: EndReason | None) -> None:
        if self._broadcasters.get(broadcaster.environment) is broadcaster:
            del self._broadcasters[broadcaster.environment]
        broadcaster.scope.cancel()
        if reason is not None:
            for subscription in broadcaster.subscribers:
                subscription._end(reason)
        broadcaster.subscribers.clear()

    # ---------------------------------------------------------------------------------------------
    # The watch
    # ---------------------------------------------------------------------------------------------

    async def _run(
        self,
        broadcaster: _Broadcaster,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with broadcaster.scope:
            revision = await self._bounded("reading the revision", broadcaster.kv.revision())
            broadcaster.position = revision
            broadcaster.counters.watch_starts += 1
            task_status.started()
            failure: CatalystError
            watch = broadcaster.kv.watch(revision)
            try:
                try:
                    async for entry in watch:
                        self._dispatch(broadcaster, entry)
                        # Let the subscribers woken by this entry drain before the next one, so
                        # a burst read in one page cannot overflow those that keep up.
                        await anyio.lowlevel.checkpoint()
                    failure = BackendUnavailable(f"the KV watch of {broadcaster.environment} ended")
                except CatalystError as exc:
                    failure = exc
                for subscription in broadcaster.subscribers:
                    subscription._error = failure
                self._stop(broadcaster, EndReason.UNAVAILABLE)
            finally:
                close = getattr(watch, "aclose", None)
                if close is not None:
                    with anyio.move_on_after(self.backend_timeout, shield=True):
                        await close()

    async def _keep_alive(self) -> None:
        while True:
            await anyio.sleep(self._tick)
            now = anyio.current_time()
            for broadcaster in self._broadcasters.values():
                for subscription in broadcaster.subscribers:
                    subscription._look(now)

    def _dispatch(self, broadcaster: _Broadcaster, entry: KvEntry) -> None:
        broadcaster.position = entry.revision
        counters = broadcaster.counters
        counters.entries += 1
        slow: list[Subscription] = []
        for subscription in broadcaster.subscribers:
            try:
                subscription._send.send_nowait(entry)
            except anyio.WouldBlock:
                slow.append(subscription)
        counters.deliveries += len(broadcaster.subscribers) - len(slow)
        for subscription in slow:
            broadcaster.subscribers.discard(subscription)
            subscription._end(EndReason.TOO_SLOW)
            counters.dropped += 1
        if slow and not broadcaster.subscribers:
            self._stop(broadcaster, None)


class Subscription:
    """One subscriber's stream of an Environment's KV changes; get it from
    :meth:`FanoutHub.subscribe`.

    An async context manager (entering attaches it, leaving detaches it) and an async iterator of
    :class:`~catalyst_kernel.readside.spine.KvEntry` (in revision order, each at most once, only
    those ``visible`` accepts) and :data:`KEEPALIVE` (after ``keepalive`` to 1.25 ``keepalive``
    seconds without sending anything). Iteration ends when the hub ends the subscription:
    :attr:`reason` says why. If the spine fails, iterating raises
    :class:`~catalyst_kernel.errors.BackendUnavailable`.
    """

    def __init__(
        self,
        hub: FanoutHub,
        environment: str,
        last_event_id: int | None,
        visible: Visible | None,
    ) -> None:
        self.environment = environment
        self.last_event_id = last_event_id
        self.reason: EndReason | None = None
        """Why the hub ended this subscription; ``None`` while it runs."""
        self._hub = hub
        self._visible = visible
        self._send: MemoryObjectSendStream[KvEntry | KeepAlive]
        self._receive: MemoryObjectReceiveStream[KvEntry | KeepAlive]
        self._send, self._receive = anyio.create_memory_object_stream[KvEntry | KeepAlive](
            hub.buffer_size
        )
        self._error: CatalystError | None = None
        self._kv: KeyValue | None = None
        self._last = 0
        self._catch_up_to = 0
        self._backlog: deque[KvEntry] = deque()
        # Keep-alive bookkeeping, shared with the hub's ticker (see ``_look``).
        self._sent = False
        self._quiet_since = 0.0
        self._keepalive_due = False

    @property
    def last_revision(self) -> int:
        """The highest revision processed so far (sent, or hidden by the filter)."""
        return self._last

    async def __aenter__(self) -> Self:
        if self._kv is not None:
            raise InvalidInput("a subscription can be entered once")
        await self._hub._attach(self)
        return self

    def _start(self, kv: KeyValue, position: int) -> None:
        self._kv = kv
        # Live entries arrive from above ``position``; catching up from the client's id to there
        # through the spine (and skipping what was already sent) leaves neither gap nor duplicate.
        if self.last_event_id is None:
            self._last = position
        else:
            self._last = self.last_event_id
            self._catch_up_to = position
        self._quiet_since = anyio.current_time()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hub._detach(self)
        self._send.close()
        self._receive.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> KvEntry | KeepAlive:
        if self._kv is None:
            raise InvalidInput("enter the subscription ('async with') before iterating it")
        while True:
            while self._backlog:
                entry = self._accept(self._backlog.popleft())
                if entry is not None:
                    return entry
            if self._keepalive_due:
                self._keepalive_due = False
                self._sent = True
                return KEEPALIVE
            if self._last < self._catch_up_to:
                await self._catch_up(self._kv)
                continue
            try:
                # Not bounded here: the ticker sends a keep-alive within 1.25 intervals.
                item = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._finish()
            if isinstance(item, KvEntry):
                entry = self._accept(item)
                if entry is not None:
                    return entry
            # A keep-alive marker only wakes the loop; ``_keepalive_due`` says if one is owed.

    async def _catch_up(self, kv: KeyValue) -> None:
        page_size = self._hub.catch_up_page
        page = await self._hub._bounded("reading changes", kv.changes(self._last, page_size))
        if len(page) < page_size:
            # The page reached the head, which is at or past where live entries begin.
            self._catch_up_to = 0
        self._backlog.extend(page)

    def _accept(self, entry: KvEntry) -> KvEntry | None:
        if entry.revision <= self._last:
            return None
        self._last = entry.revision
        if self._visible is not None and not self._visible(entry):
            return None
        self._sent = True
        self._keepalive_due = False
        return entry

    def _look(self, now: float) -> None:
        """The ticker's visit: owe a keep-alive after a whole interval without sending."""
        if self._sent:
            self._sent = False
            self._quiet_since = now
        elif not self._keepalive_due and now - self._quiet_since >= self._hub.keepalive:
            self._keepalive_due = True
            # A full buffer needs no wake-up: the subscriber finds the debt once it is drained.
            with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError):
                self._send.send_nowait(KEEPALIVE)

    def _end(self, reason: EndReason) -> None:
        if self.reason is None:
            self.reason = reason
        self._send.close()

    def _finish(self) -> NoReturn:
        if self.reason is EndReason.UNAVAILABLE and self._error is not None:
            raise self._error
        raise StopAsyncIteration


# -------------------------------------------------------------------------------------------------
# Wire format
# -------------------------------------------------------------------------------------------------

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")
_KEEPALIVE_COMMENT: Final = b": keep-alive\n\n"
_FORMAT_CACHE_SIZE: Final = 64


def _single_line(name: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise InvalidInput(f"an SSE {name} cannot hold a line break: {value!r}", field=name)
    return value


def sse_message(data: str, *, id: str | None = None, event: str | None = None) -> bytes:
    """One SSE message: optional ``id:`` and ``event:`` lines, then ``data`` as one ``data:`` line
    per line of text (CR, LF and CRLF all break lines, as the SSE parser reads them).

    :raises InvalidInput: if ``id`` or ``event`` holds a line break.
    """
    lines = []
    if id is not None:
        lines.append(f"id: {_single_line('id', id)}")
    if event is not None:
        lines.append(f"event: {_single_line('event', event)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    lines.append("\n")
    return "\n".join(lines).encode()


def sse_comment(text: str) -> bytes:
    """A comment block (``: text``), one comment line per line; clients ignore it."""
    lines = [f": {line}" for line in _LINE_BREAK.split(text)]
    lines.append("\n")
    return "\n".join(lines).encode()


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _json_value(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


# Every subscriber of an Environment formats the same entries: remember the last few so 1,000
# subscribers cost one JSON decode and encode per entry, not 1,000.
@functools.lru_cache(maxsize=_FORMAT_CACHE_SIZE)
def _entry_message(entry: KvEntry) -> bytes:
    data = {
        "key": entry.key,
        "revision": entry.revision,
        "operation": entry.operation.value,
        "value": _json_value(entry.value),
    }
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return sse_message(text, id=str(entry.revision), event=entry.operation.value)


def format_sse(item: KvEntry | KeepAlive) -> bytes:
    """The ``text/event-stream`` bytes of one item a :class:`Subscription` yields.

    An entry becomes ``id: <revision>``, ``event: put|delete`` and ``data:`` with the JSON object
    ``{"key", "revision", "operation", "value"}``, where ``value`` is the entry's value decoded as
    JSON, or ``null`` when it is not JSON (or the entry is a delete). :data:`KEEPALIVE` becomes the
    comment ``: keep-alive``.
    """
    if isinstance(item, KeepAlive):
        return _KEEPALIVE_COMMENT
    return _entry_message(item)
