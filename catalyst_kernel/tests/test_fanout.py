"""SSE fan-out: one KV watch per Environment, bounded buffers, resume, keep-alives, the wire format.

Everything runs against a real :class:`SqliteSpine`. Waits are bounded by ``anyio.fail_after``
and assertions never depend on how fast the machine is: ordering on one event loop is
deterministic, and timeouts only turn a hang into a failure.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.readside.fanout import (
    KEEPALIVE,
    EndReason,
    FanoutHub,
    Subscription,
    format_sse,
    sse_comment,
    sse_message,
)
from catalyst_kernel.readside.spine import KeyValue, KvEntry, KvOperation
from catalyst_kernel.readside.sqlite_spine import SqliteSpine

ENV = "acme-dev"
OTHER = "acme-prod"
LIMIT = 20.0  # seconds; only ever reached when something hangs


@pytest.fixture
async def spine(tmp_path: Path) -> AsyncIterator[SqliteSpine]:
    spine = SqliteSpine(tmp_path / "spine.db")
    await spine.start()
    yield spine
    await spine.close()


async def entries(subscription: Subscription, count: int) -> list[KvEntry]:
    """The next ``count`` entries of ``subscription``, keep-alives skipped."""
    got: list[KvEntry] = []
    async for item in subscription:
        if isinstance(item, KvEntry):
            got.append(item)
            if len(got) == count:
                break
    return got


async def write(kv: KeyValue, keys: Sequence[str]) -> list[int]:
    return [await kv.put(key, json.dumps({"key": key}).encode()) for key in keys]


async def read(
    hub: FanoutHub,
    environment: str,
    count: int,
    into: list[KvEntry],
    *,
    task_status: anyio.abc.TaskStatus[Subscription] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Subscribe (reporting started once attached), then collect ``count`` entries ``into``."""
    async with hub.subscribe(environment) as subscription:
        task_status.started(subscription)
        into.extend(await entries(subscription, count))


def parse_sse(stream: bytes) -> list[dict[str, Any]]:
    """A reader of ``text/event-stream`` following the HTML standard's parsing rules."""
    messages: list[dict[str, Any]] = []
    fields: dict[str, Any] = {"data": []}
    for line in re.split(r"\r\n|\r|\n", stream.decode()):
        if line == "":
            if fields["data"] or "comment" in fields:
                messages.append({**fields, "data": "\n".join(fields["data"])})
            fields = {"data": []}
        elif line.startswith(":"):
            fields.setdefault("comment", []).append(line[1:].removeprefix(" "))
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                fields["data"].append(value)
            else:
                fields[name] = value
    return messages


# --- live delivery -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_live_entries_reach_every_subscriber_in_revision_order(spine: SqliteSpine) -> None:
    kv = await spine.key_value(ENV)
    await write(kv, ["app/before"])  # written before subscribing: not part of a live stream
    results: list[list[KvEntry]] = [[] for _ in range(5)]
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine) as hub, anyio.create_task_group() as tasks:
            for got in results:
                await tasks.start(read, hub, ENV, 21, got)
            written = await write(kv, [f"app/a{n}" for n in range(20)])
            written.append(await kv.delete("app/a3"))
    assert written == sorted(written)
    for got in results:
        assert [entry.revision for entry in got] == written
        assert got[-1].operation is KvOperation.DELETE
        assert got[-1].value is None


# --- resume --------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("page", [1, 4, 512])
@pytest.mark.parametrize("watch_running", [False, True], ids=["cold", "warm"])
async def test_resume_delivers_missed_entries_then_live_ones_once_while_writes_continue(
    spine: SqliteSpine, page: int, watch_running: bool
) -> None:
    kv = await spine.key_value(ENV)
    before = await write(kv, [f"app/old{n % 7}" for n in range(30)])
    last_seen = before[9]
    more = 40
    with anyio.fail_after(LIMIT):
        async with (
            FanoutHub(spine, catch_up_page=page, buffer_size=4 * more) as hub,
            hub.subscribe(ENV) as bystander,
            anyio.create_task_group() as tasks,
        ):

            async def writer() -> None:
                for n in range(more):
                    await kv.put(f"app/new{n}", b"{}")
                    await anyio.lowlevel.checkpoint()

            if not watch_running:
                await bystander.__aexit__(None, None, None)
            tasks.start_soon(writer)
            # Entered while the writer runs: the catch-up/live boundary moves under it.
            await anyio.lowlevel.checkpoint()
            async with hub.subscribe(ENV, last_event_id=last_seen) as resumed:
                got = await entries(resumed, len(before) - 10 + more)
    # Keys repeat in the first batch, yet no superseded revision was compacted (history 64).
    assert [entry.revision for entry in got] == list(range(last_seen + 1, before[-1] + more + 1))


@pytest.mark.anyio
async def test_resume_from_zero_replays_every_retained_entry_then_goes_live(
    spine: SqliteSpine,
) -> None:
    kv = await spine.key_value(ENV)
    written = await write(kv, ["app/a", "app/b", "app/a"])
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine) as hub, hub.subscribe(ENV, last_event_id=0) as subscription:
            replayed = await entries(subscription, 3)
            written += await write(kv, ["app/c"])
            live = await entries(subscription, 1)
    assert replayed == list(await kv.changes(0, 3))
    assert [entry.revision for entry in replayed + live] == written


@pytest.mark.anyio
async def test_resume_while_the_watch_lags_behind_the_bucket_sends_nothing_twice(
    spine: SqliteSpine,
) -> None:
    counting = CountingSpine(spine)
    kv = await spine.key_value(ENV)
    await write(kv, [f"app/a{n}" for n in range(5)])
    with anyio.fail_after(LIMIT):
        async with FanoutHub(counting) as hub, hub.subscribe(ENV):  # type: ignore[arg-type]
            counting.hold()
            lagging = await write(kv, [f"app/b{n}" for n in range(5)])
            async with hub.subscribe(ENV, last_event_id=3) as resumed:
                # Catching up reads revisions 4-10 from the bucket, past the watch (still at 5).
                caught_up = await entries(resumed, 7)
                counting.release()  # the watch now delivers 6-10 again, then 11
                live = await write(kv, ["app/c"])
                rest = await entries(resumed, 1)
    assert [entry.revision for entry in caught_up] == [4, 5, *lagging]
    assert [entry.revision for entry in rest] == live


@pytest.mark.anyio
async def test_last_event_id_beyond_the_bucket_is_invalid_input(spine: SqliteSpine) -> None:
    kv = await spine.key_value(ENV)
    (revision,) = await write(kv, ["app/a"])
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine) as hub:
            with pytest.raises(InvalidInput, match="beyond"):
                async with hub.subscribe(ENV, last_event_id=revision + 1):
                    pass
            with pytest.raises(InvalidInput):
                hub.subscribe(ENV, last_event_id=-1)
            async with hub.subscribe(ENV, last_event_id=revision) as subscription:
                assert subscription.last_revision == revision


# --- slow subscribers ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_subscriber_that_never_reads_is_dropped_and_the_others_get_everything(
    spine: SqliteSpine,
) -> None:
    kv = await spine.key_value(ENV)
    buffer = 8
    one: list[KvEntry] = []
    two: list[KvEntry] = []
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine, buffer_size=buffer) as hub, hub.subscribe(ENV) as slow:
            async with anyio.create_task_group() as tasks:
                await tasks.start(read, hub, ENV, 50, one)
                await tasks.start(read, hub, ENV, 50, two)
                written = await write(kv, [f"app/a{n}" for n in range(50)])
            assert slow.reason is EndReason.TOO_SLOW
            assert hub.counters()[ENV].dropped == 1
            # What was buffered before the drop is still delivered, then iteration ends.
            leftovers = [item async for item in slow]
    assert [entry.revision for entry in one] == written
    assert [entry.revision for entry in two] == written
    assert leftovers == one[:buffer]


@pytest.mark.anyio
async def test_a_burst_larger_than_the_buffer_does_not_drop_subscribers_that_keep_up(
    spine: SqliteSpine,
) -> None:
    counting = CountingSpine(spine)
    kv = await spine.key_value(ENV)
    got: list[list[KvEntry]] = [[], []]
    with anyio.fail_after(LIMIT):
        async with FanoutHub(counting, buffer_size=4) as hub:  # type: ignore[arg-type]
            async with anyio.create_task_group() as tasks:
                for into in got:
                    await tasks.start(read, hub, ENV, 40, into)
                counting.hold()
                written = await write(kv, [f"app/a{n}" for n in range(40)])
                counting.release()  # 40 entries reach the watch at once
            assert hub.counters()[ENV].dropped == 0
    assert [[entry.revision for entry in into] for into in got] == [written, written]


# --- keep-alives ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_idle_subscription_yields_keep_alives_then_entries(spine: SqliteSpine) -> None:
    kv = await spine.key_value(ENV)
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine, keepalive=0.05) as hub, hub.subscribe(ENV) as subscription:
            assert await anext(subscription) is KEEPALIVE
            assert await anext(subscription) is KEEPALIVE
            (revision,) = await write(kv, ["app/a"])
            (entry,) = await entries(subscription, 1)
    assert entry.revision == revision


@pytest.mark.anyio
async def test_hidden_entries_do_not_count_as_sent_for_keep_alives(spine: SqliteSpine) -> None:
    kv = await spine.key_value(ENV)
    with anyio.fail_after(LIMIT):
        async with (
            FanoutHub(spine, keepalive=0.2) as hub,
            hub.subscribe(ENV, visible=lambda _entry: False) as subscription,
            anyio.create_task_group() as tasks,
        ):

            async def writer() -> None:
                while True:
                    await kv.put("secret/a", b"{}")
                    await anyio.sleep(0.01)

            tasks.start_soon(writer)
            # A steady flow of hidden entries must not keep the stream silent.
            assert await anext(subscription) is KEEPALIVE
            tasks.cancel_scope.cancel()
    assert hub.counters()[ENV].entries > 0


# --- visibility ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_visibility_filter_never_lets_a_hidden_key_through(spine: SqliteSpine) -> None:
    kv = await spine.key_value(ENV)

    def visible(entry: KvEntry) -> bool:
        return not entry.key.startswith("secret/")  # delete markers too: decided by key

    keys = [f"app/a{n}" if n % 3 else f"secret/s{n}" for n in range(30)]
    await write(kv, keys[:15])  # replayed through the catch-up path
    stream = b""
    with anyio.fail_after(LIMIT):
        async with (
            FanoutHub(spine, catch_up_page=4) as hub,
            hub.subscribe(ENV, last_event_id=0, visible=visible) as subscription,
        ):
            await write(kv, keys[15:])  # delivered through the live path
            await kv.delete("secret/s0")
            await kv.put("app/end", b"{}")
            async for item in subscription:
                stream += format_sse(item)
                if isinstance(item, KvEntry) and item.key == "app/end":
                    break
    sent = [json.loads(message["data"]) for message in parse_sse(stream) if "id" in message]
    expected = [key for key in keys if not key.startswith("secret/")]
    assert [message["key"] for message in sent] == [*expected, "app/end"]
    assert b"secret" not in stream


# --- one watch per Environment -------------------------------------------------------------------


class CountingKeyValue:
    """A KV bucket that counts the watches opened on it (and how many are open now), whose watch
    can be held back (entries pile up in the bucket, then arrive in one burst), and whose watch
    fails like a lost backend when it meets the key ``app/fail``."""

    def __init__(self, kv: KeyValue, environment: str, spine: CountingSpine) -> None:
        self._kv = kv
        self._environment = environment
        self._spine = spine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def watch(self, from_revision: int = 0) -> AsyncIterator[KvEntry]:
        self._spine.watches[self._environment] += 1
        self._spine.open[self._environment] += 1
        try:
            async for entry in self._kv.watch(from_revision):
                if not self._spine.released.is_set():  # no checkpoint otherwise: bursts stay bursts
                    await self._spine.released.wait()
                if entry.key == "app/fail":
                    raise BackendUnavailable("spine: connection lost")
                yield entry
        finally:
            self._spine.open[self._environment] -= 1


class CountingSpine:
    def __init__(self, spine: SqliteSpine) -> None:
        self._spine = spine
        self.watches: Counter[str] = Counter()
        self.open: Counter[str] = Counter()
        self.released = anyio.Event()
        self.released.set()

    def hold(self) -> None:
        """Keep watches from yielding until :meth:`release`."""
        self.released = anyio.Event()

    def release(self) -> None:
        self.released.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spine, name)

    async def key_value(self, environment: str) -> CountingKeyValue:
        return CountingKeyValue(await self._spine.key_value(environment), environment, self)


@pytest.mark.anyio
async def test_one_watch_per_environment_however_many_subscribers(spine: SqliteSpine) -> None:
    counting = CountingSpine(spine)
    dev, prod = await spine.key_value(ENV), await spine.key_value(OTHER)
    got: dict[str, list[list[KvEntry]]] = {
        ENV: [[] for _ in range(40)],
        OTHER: [[] for _ in range(5)],
    }
    with anyio.fail_after(LIMIT):
        async with FanoutHub(counting) as hub:  # type: ignore[arg-type]
            async with anyio.create_task_group() as tasks:
                for environment, lists in got.items():
                    for into in lists:
                        await tasks.start(read, hub, environment, 3, into)
                counters = hub.counters()
                assert (counters[ENV].subscribers, counters[OTHER].subscribers) == (40, 5)
                assert counters[ENV].watching
                dev_revisions = await write(dev, ["app/a", "app/b", "app/c"])
                prod_revisions = await write(prod, ["app/a", "app/b", "app/c"])
            assert counting.watches == {ENV: 1, OTHER: 1}
            assert [[e.revision for e in into] for into in got[ENV]] == [dev_revisions] * 40
            assert [[e.revision for e in into] for into in got[OTHER]] == [prod_revisions] * 5
            # The last subscriber to leave stops the watch; the next one starts it again.
            after = hub.counters()
            assert (after[ENV].subscribers, after[ENV].watching) == (0, False)
            while counting.open[ENV]:  # the cancelled watch closes at its next checkpoint
                await anyio.lowlevel.checkpoint()
            async with hub.subscribe(ENV), hub.subscribe(ENV):
                assert hub.counters()[ENV].watch_starts == 2
                assert counting.watches[ENV] == 2
            assert hub.counters()[ENV].deliveries == 3 * 40


# --- endings -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_closing_the_hub_ends_subscriptions(spine: SqliteSpine) -> None:
    with anyio.fail_after(LIMIT):
        async with FanoutHub(spine) as hub:
            subscription = hub.subscribe(ENV)
            await subscription.__aenter__()
        assert subscription.reason is EndReason.CLOSED
        assert [item async for item in subscription] == []
        await subscription.__aexit__(None, None, None)


@pytest.mark.anyio
async def test_a_failing_watch_raises_backend_unavailable_and_the_next_subscriber_restarts_it(
    spine: SqliteSpine,
) -> None:
    # Closing the SqliteSpine under a running watch is not used to make it fail: close() can
    # block the event loop while a reader is parked holding the spine's thread lock.
    counting = CountingSpine(spine)
    kv = await spine.key_value(ENV)
    with anyio.fail_after(LIMIT):
        async with FanoutHub(counting) as hub:  # type: ignore[arg-type]
            async with hub.subscribe(ENV) as subscription:
                (before,) = await write(kv, ["app/a"])
                await write(kv, ["app/fail"])
                assert [entry.revision for entry in await entries(subscription, 1)] == [before]
                with pytest.raises(BackendUnavailable, match="connection lost"):
                    await entries(subscription, 1)
                assert subscription.reason is EndReason.UNAVAILABLE
                assert not hub.counters()[ENV].watching
            async with hub.subscribe(ENV) as again:
                (after,) = await write(kv, ["app/b"])
                assert [entry.revision for entry in await entries(again, 1)] == [after]
    assert counting.watches[ENV] == 2


@pytest.mark.anyio
async def test_iterating_before_entering_is_invalid_input(spine: SqliteSpine) -> None:
    async with FanoutHub(spine) as hub:
        with pytest.raises(InvalidInput):
            await anext(hub.subscribe(ENV))


# --- wire format ---------------------------------------------------------------------------------


def _entry(revision: int, operation: KvOperation, value: bytes | None) -> KvEntry:
    return KvEntry("k8s/Deployment/web/api", revision, operation, value, datetime.now(UTC))


def test_an_entry_becomes_one_sse_message_with_its_revision_as_id() -> None:
    value = json.dumps({"status": {"message": "line one\nline two\r\n", "ok": True}}).encode()
    wire = format_sse(_entry(42, KvOperation.PUT, value))
    assert wire.startswith(b"id: 42\nevent: put\ndata: ")
    assert wire.endswith(b"\n\n")
    assert wire.count(b"\n") == 4  # three fields, one blank line: the JSON stays on one line
    (message,) = parse_sse(wire)
    assert (message["id"], message["event"]) == ("42", "put")
    assert json.loads(message["data"]) == {
        "key": "k8s/Deployment/web/api",
        "revision": 42,
        "operation": "put",
        "value": {"status": {"message": "line one\nline two\r\n", "ok": True}},
    }


@pytest.mark.parametrize(
    ("operation", "value"),
    [
        (KvOperation.DELETE, None),
        (KvOperation.PUT, b"plain text"),
        (KvOperation.PUT, b"\xff\xfe not utf-8"),
        (KvOperation.PUT, b"NaN"),
        (KvOperation.PUT, b'{"a": 1'),
    ],
    ids=["delete", "text", "binary", "nan", "truncated"],
)
def test_values_that_are_not_json_are_sent_as_null(
    operation: KvOperation, value: bytes | None
) -> None:
    (message,) = parse_sse(format_sse(_entry(7, operation, value)))
    assert message["event"] == operation.value
    assert json.loads(message["data"])["value"] is None


def test_keep_alive_is_an_sse_comment() -> None:
    assert format_sse(KEEPALIVE) == b": keep-alive\n\n"
    assert parse_sse(format_sse(KEEPALIVE)) == [{"data": "", "comment": ["keep-alive"]}]


def test_multi_line_data_becomes_one_data_line_per_line() -> None:
    wire = sse_message("one\ntwo\r\nthree\rfour\u2028still four", id="9", event="note")
    assert wire == (
        b"id: 9\nevent: note\ndata: one\ndata: two\ndata: three\n"
        b"data: four\xe2\x80\xa8still four\n\n"
    )
    (message,) = parse_sse(wire)
    assert message["data"] == "one\ntwo\nthree\nfour\u2028still four"
    assert sse_comment("a\nb") == b": a\n: b\n\n"


@pytest.mark.parametrize("field", ["id", "event"])
def test_a_line_break_in_id_or_event_is_invalid_input(field: str) -> None:
    with pytest.raises(InvalidInput):
        sse_message("x", **{field: "a\nb"})
