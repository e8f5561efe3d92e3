"""What the NATS spine promises beyond the conformance suite: JetStream layout, history,
deduplication window, error translation, and a KV watch that rides out a server restart."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from catalyst_kernel.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from catalyst_kernel.model import Event
from catalyst_kernel.readside.spine import KvEntry
from catalyst_nats.connection import api_error
from catalyst_nats.pull import Puller
from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer

from .conftest import SpineMaker, eventually, settings_for

pytestmark = pytest.mark.anyio


def _event(n: int, subject: str = "test.x") -> Event:
    return Event.create(source="/t", type="io.catalyst.test", subject=subject, id=f"e-{n}")


async def test_streams_and_buckets_follow_the_settings(make_spine: SpineMaker) -> None:
    async with make_spine(history=5, duplicate_window=600.0) as spine:
        await spine.publish("acme-dev", _event(1))
        kv = await spine.key_value("acme-dev")
        for n in range(8):
            await kv.put("app/web", str(n).encode())
        assert [e.value for e in await kv.history("app/web")] == [b"3", b"4", b"5", b"6", b"7"]
        events = await spine.connection.api("STREAM.INFO.ws-acme-dev-events")
        assert events["config"]["subjects"] == ["ws.acme-dev", "ws.acme-dev.>"]
        assert events["config"]["duplicate_window"] == 600 * 10**9
        bucket = await spine.connection.api("STREAM.INFO.KV_ws-acme-dev-state")
        assert bucket["config"]["max_msgs_per_subject"] == 5
        assert bucket["config"]["subjects"] == ["$KV.ws-acme-dev-state.>"]
        names = await spine.connection.api("STREAM.NAMES")
        assert sorted(names["streams"]) == ["KV_ws-acme-dev-state", "ws-acme-dev-events"]


async def test_an_event_without_subject_lands_on_the_environment_subject(
    make_spine: SpineMaker,
) -> None:
    async with make_spine() as spine:
        event = Event.create(source="/t", type="io.catalyst.test", id="bare")
        assert (await spine.publish("acme-dev", event)).sequence == 1
        assert [d.event for d in await spine.read("acme-dev")] == [event]
        with pytest.raises(InvalidInput, match="not a NATS subject"):
            await spine.publish("acme-dev", _event(2, subject="wild.*"))


async def test_reads_of_one_event_and_one_change(make_spine: SpineMaker) -> None:
    async with make_spine() as spine:
        for n in range(1, 4):
            await spine.publish("acme-dev", _event(n))
        (second,) = await spine.read("acme-dev", 1, 1)
        assert second.sequence == 2
        assert await spine.read("acme-dev", 3, 1) == []
        assert await spine.read("acme-poc", 0, 1) == []
        kv = await spine.key_value("acme-dev")
        first = await kv.put("a/b.c", b"1")
        await kv.delete("a/b.c")
        (change,) = await kv.changes(first, 1)
        assert (change.key, change.value, change.revision) == ("a/b.c", None, first + 1)
        assert await kv.changes(first + 1, 1) == []


async def test_a_late_page_is_waited_for_not_taken_for_the_end(
    make_spine: SpineMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a busy server a page may not come within the request timeout: reads and snapshots
    # must then wait for the rest, not return a short answer that passes for the whole.
    async with make_spine() as spine:
        for n in range(1, 6):
            await spine.publish("acme-dev", _event(n))
        kv = await spine.key_value("acme-dev")
        await kv.put_many([(f"app/{n}", b"1") for n in range(5)])
        original = Puller.pull
        calls = 0

        async def slow(self: Puller, *args: Any, **kwargs: Any) -> list[Any]:
            nonlocal calls
            calls += 1
            if calls % 2:  # the first page of each scan does not come in time
                return []
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(Puller, "pull", slow)
        assert [d.sequence for d in await spine.read("acme-dev", 0, 100)] == [1, 2, 3, 4, 5]
        assert len((await kv.snapshot())[1]) == 5

        async def stalled(self: Puller, *args: Any, **kwargs: Any) -> list[Any]:
            return []

        monkeypatch.setattr(Puller, "pull", stalled)
        with pytest.raises(BackendUnavailable, match="stalled after 0 of 5 messages"):
            await spine.read("acme-dev", 0, 100)


async def test_keys_with_dots_and_empty_segments_round_trip(make_spine: SpineMaker) -> None:
    async with make_spine() as spine:
        kv = await spine.key_value("acme-dev")
        keys = ["a..b", "/lead", "trail/", "x//y", "v1.2/app", "app"]
        for key in keys:
            await kv.put(key, key.encode())
        _, entries = await kv.snapshot()
        assert [(e.key, e.value) for e in entries] == sorted((k, k.encode()) for k in keys)
        _, under = await kv.snapshot("x/")
        assert [e.key for e in under] == ["x//y"]


def test_jetstream_errors_become_catalysts() -> None:
    assert isinstance(api_error({"code": 404, "err_code": 10059}, "x"), NotFound)
    assert isinstance(api_error({"code": 400, "err_code": 10071}, "x"), Conflict)
    assert isinstance(api_error({"code": 400, "err_code": 10058}, "x"), Conflict)
    assert isinstance(api_error({"code": 400, "err_code": 10094}, "x"), InvalidInput)
    assert isinstance(api_error({"code": 503, "err_code": 10039}, "x"), BackendUnavailable)
    assert isinstance(api_error({"code": 500}, "x"), BackendUnavailable)


async def test_requests_are_bounded_when_the_server_stops(
    nats_server: NatsServer, make_spine: SpineMaker
) -> None:
    async with make_spine(request_timeout=1.0, outage_grace=1.0) as spine:
        kv = await spine.key_value("acme-dev")
        await kv.put("a", b"1")
        nats_server.stop()
        with anyio.fail_after(10):
            with pytest.raises(BackendUnavailable):
                await kv.put("a", b"2")
            with pytest.raises(BackendUnavailable):
                await spine.publish("acme-dev", _event(1))
            readiness = await spine.check()
        assert not readiness.ready
        assert (readiness.reason or "").startswith("unavailable: nats:")


async def test_a_watch_rides_out_a_server_restart(nats_server: NatsServer) -> None:
    spine = NatsSpine(settings_for(nats_server))
    await spine.start()
    seen: list[KvEntry] = []
    try:
        kv = await spine.key_value("acme-dev")
        await kv.put("before", b"0")
        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                async for entry in kv.watch(0):
                    seen.append(entry)

            tasks.start_soon(watch)
            for n in range(1, 51):
                await kv.put(f"k/{n % 7}", str(n).encode())

            async def caught_up() -> bool:
                return len(seen) == 51

            await eventually(caught_up)
            await anyio.to_thread.run_sync(nats_server.restart)
            for n in range(51, 101):
                while True:
                    try:
                        await kv.put(f"k/{n % 7}", str(n).encode())
                        break
                    except BackendUnavailable:
                        await anyio.sleep(0.05)

            async def all_seen() -> bool:
                return len(seen) >= 101

            await eventually(all_seen)
            tasks.cancel_scope.cancel()
    finally:
        await spine.close()
    revisions = [entry.revision for entry in seen]
    assert revisions == sorted(set(revisions)), "in order, no duplicate"
    assert [entry.value for entry in seen[1:]] == [str(n).encode() for n in range(1, 101)]


async def test_closing_the_spine_ends_a_watch(make_spine: SpineMaker) -> None:
    async with make_spine() as spine:
        kv = await spine.key_value("acme-dev")
        ended = anyio.Event()

        async def watch() -> None:
            with pytest.raises(BackendUnavailable):
                async for _ in kv.watch():
                    pass
            ended.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch)
            await kv.put("a", b"1")
            await anyio.sleep(0.1)
            await spine.close()
            with anyio.fail_after(10):
                await ended.wait()
