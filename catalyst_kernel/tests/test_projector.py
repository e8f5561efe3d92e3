"""The projector: durable, ordered, effectively-once application of projections; replay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.model import Event
from catalyst_kernel.readside.projection import ProjectionView
from catalyst_kernel.readside.projector import CURSOR_KEY, Projector, decode_value
from catalyst_kernel.readside.spine import Consumer, Delivery
from catalyst_kernel.readside.sqlite_spine import SqliteSpine


class LastValue:
    """Keeps the last value seen per subject; deletes on ``deleted`` events."""

    name = "last-value"

    def handles(self, event: Event) -> bool:
        return event.type.startswith("io.catalyst.test.")

    async def apply(self, event: Event, view: ProjectionView) -> None:
        key = f"object/{event.subject}"
        if event.type.endswith(".deleted"):
            await view.delete(key)
        else:
            await view.put(key, event.data)


class Counter:
    """Not idempotent on purpose: counts applications, so a double application shows."""

    name = "counter"

    def handles(self, event: Event) -> bool:
        return True

    async def apply(self, event: Event, view: ProjectionView) -> None:
        await view.put("count/all", (await view.get("count/all") or 0) + 1)


def changed(n: int, subject: str, value: Any) -> Event:
    return Event.create(
        source="/test", type="io.catalyst.test.changed", subject=subject, data=value, id=f"e{n}"
    )


def deleted(n: int, subject: str) -> Event:
    return Event.create(
        source="/test", type="io.catalyst.test.deleted", subject=subject, id=f"e{n}"
    )


@pytest.fixture
async def spine(tmp_path: Path) -> AsyncIterator[SqliteSpine]:
    spine = SqliteSpine(tmp_path / "spine.db", poll_interval=0.01)
    await spine.start()
    yield spine
    await spine.close()


def projector(spine: SqliteSpine, **options: Any) -> Projector:
    options.setdefault("max_wait", 0.05)
    return Projector(spine, [LastValue(), Counter()], **options)


async def state(spine: SqliteSpine, environment: str) -> dict[str, Any]:
    _, entries = await (await spine.key_value(environment)).snapshot()
    return {entry.key: decode_value(entry.value or b"null") for entry in entries}


async def publish_story(spine: SqliteSpine, environment: str = "acme-dev") -> None:
    await spine.publish(environment, changed(1, "web", {"replicas": 1}))
    await spine.publish(environment, changed(2, "db", {"size": "small"}))
    await spine.publish(environment, changed(3, "web", {"replicas": 3}))
    await spine.publish(environment, deleted(4, "db"))
    await spine.publish(environment, changed(5, "cache", {"ttl": 60}))


@pytest.mark.anyio
async def test_events_are_projected_in_order_with_a_cursor(spine: SqliteSpine) -> None:
    await publish_story(spine)
    assert await projector(spine).catch_up("acme-dev") == 5
    assert await state(spine, "acme-dev") == {
        "object/web": {"replicas": 3},
        "object/cache": {"ttl": 60},
        "count/all": 5,
        CURSOR_KEY: 5,
    }


@pytest.mark.anyio
async def test_a_second_run_applies_only_new_events(spine: SqliteSpine) -> None:
    await publish_story(spine)
    await projector(spine).catch_up("acme-dev")
    await spine.publish("acme-dev", changed(6, "web", {"replicas": 5}))
    assert await projector(spine).catch_up("acme-dev") == 1
    current = await state(spine, "acme-dev")
    assert current["object/web"] == {"replicas": 5}
    assert current["count/all"] == 6


@pytest.mark.anyio
async def test_a_duplicate_publish_is_applied_once(spine: SqliteSpine) -> None:
    await spine.publish("acme-dev", changed(1, "web", {"replicas": 1}))
    await spine.publish("acme-dev", changed(1, "web", {"replicas": 1}))
    await projector(spine).catch_up("acme-dev")
    assert (await state(spine, "acme-dev"))["count/all"] == 1


@pytest.mark.anyio
async def test_redelivery_after_a_crash_before_ack_changes_nothing(
    spine: SqliteSpine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish_story(spine)

    async def crash(self: Consumer, delivery: Delivery) -> None:
        raise RuntimeError("killed between the KV write and the ack")

    crashing = projector(spine)
    consumer = await spine.consumer("acme-dev", crashing.durable)
    monkeypatch.setattr(type(consumer), "ack", crash)
    with pytest.raises(RuntimeError, match="killed"):
        await crashing.catch_up("acme-dev")
    monkeypatch.undo()
    before = await state(spine, "acme-dev")
    assert before["count/all"] == 5

    assert await projector(spine).catch_up("acme-dev") == 5  # redelivered...
    assert await state(spine, "acme-dev") == before  # ...and skipped by the cursor


@pytest.mark.anyio
async def test_a_failed_write_leaves_no_cached_values_behind(
    spine: SqliteSpine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same projector instance retries after its write failed: what it cached for the
    # failed batch must not be applied again on top (the counter would count twice).
    await publish_story(spine)
    same = projector(spine, batch=5)
    kv = await spine.key_value("acme-dev")
    original = type(kv).put_many
    failures = [BackendUnavailable("the spine went away mid-write")]

    async def flaky(self: Any, items: Any) -> int:
        if failures:
            raise failures.pop()
        return await original(self, items)

    monkeypatch.setattr(type(kv), "put_many", flaky)
    with pytest.raises(BackendUnavailable):
        await same.catch_up("acme-dev")
    # The deliveries were fetched but not acknowledged: a fresh consumer sees them again.
    assert await same.step("acme-dev", await spine.consumer("acme-dev", "again"), kv) == 5
    assert (await state(spine, "acme-dev"))["count/all"] == 5


@pytest.mark.anyio
async def test_a_bucket_that_went_back_is_read_again_not_trusted_from_the_cache(
    spine: SqliteSpine,
) -> None:
    # A server that comes back without its last writes (or another writer) leaves the bucket
    # somewhere other than where this projector left it: the values it cached are not there,
    # and a batch that "changes nothing" by the cache would leave the bucket wrong for good.
    same = projector(spine, batch=5)
    await publish_story(spine)
    assert await same.catch_up("acme-dev") == 5
    kv = await spine.key_value("acme-dev")
    await kv.put_many([("count/all", b"2"), (CURSOR_KEY, b"2")])  # the bucket lost 3 events
    # A consumer that delivers from the start: events 1-2 are skipped by the cursor.
    assert await same.step("acme-dev", await spine.consumer("acme-dev", "again"), kv) == 5
    # Re-applied over what the bucket holds (2), not over the cached 5.
    assert (await state(spine, "acme-dev"))["count/all"] == 5


@pytest.mark.anyio
async def test_a_value_that_does_not_change_is_not_written_again(spine: SqliteSpine) -> None:
    await spine.publish("acme-dev", changed(1, "web", {"replicas": 1}))
    await spine.publish("acme-dev", changed(2, "web", {"replicas": 1}))
    await spine.publish("acme-dev", changed(3, "web", {"replicas": 2}))
    await projector(spine, batch=1).catch_up("acme-dev")
    bucket = await spine.key_value("acme-dev")
    history = await bucket.history("object/web")
    assert [decode_value(entry.value or b"null") for entry in history] == [
        {"replicas": 1},
        {"replicas": 2},
    ]
    assert (await state(spine, "acme-dev"))["count/all"] == 3


class PutAndRestore:
    """Changes a key and puts its old value back while applying one event."""

    name = "put-and-restore"

    def handles(self, event: Event) -> bool:
        return True

    async def apply(self, event: Event, view: ProjectionView) -> None:
        old = await view.get("object/web")
        await view.put("object/web", {"changed": event.id})
        await view.put("object/web", old)


@pytest.mark.anyio
async def test_a_batch_writes_only_keys_whose_value_it_changed(spine: SqliteSpine) -> None:
    await spine.publish("acme-dev", changed(1, "web", {"replicas": 1}))
    await Projector(spine, [LastValue()], max_wait=0.05).catch_up("acme-dev")
    await spine.publish("acme-dev", changed(2, "db", {"size": "small"}))
    await Projector(spine, [PutAndRestore()], max_wait=0.05).catch_up("acme-dev")
    bucket = await spine.key_value("acme-dev")
    assert len(await bucket.history("object/web")) == 1
    assert (await state(spine, "acme-dev"))["object/web"] == {"replicas": 1}
    assert (await state(spine, "acme-dev"))[CURSOR_KEY] == 2


@pytest.mark.anyio
async def test_replay_equals_incremental_processing(spine: SqliteSpine, tmp_path: Path) -> None:
    await publish_story(spine)
    await projector(spine).catch_up("acme-dev")
    incremental = await state(spine, "acme-dev")

    empty = SqliteSpine(tmp_path / "other.db")
    await empty.start()
    for delivery in await spine.read("acme-dev"):
        await empty.publish("acme-dev", delivery.event)
    result = await projector(empty).replay("acme-dev")
    assert await state(empty, "acme-dev") == incremental
    assert result.events == 5
    await empty.close()


@pytest.mark.anyio
async def test_replay_repairs_a_damaged_read_model(spine: SqliteSpine) -> None:
    await publish_story(spine)
    await projector(spine).catch_up("acme-dev")
    expected = await state(spine, "acme-dev")
    kv = await spine.key_value("acme-dev")
    await kv.put("object/ghost", b'"left over"')
    await kv.put("object/web", b'{"replicas": 99}')
    await kv.delete("object/cache")

    result = await projector(spine).replay("acme-dev")
    assert await state(spine, "acme-dev") == expected
    assert result.deleted == 1
    assert result.written == 2


@pytest.mark.anyio
async def test_after_replay_the_consumer_continues_after_the_last_event(
    spine: SqliteSpine,
) -> None:
    await publish_story(spine)
    await projector(spine).replay("acme-dev")
    await spine.publish("acme-dev", changed(6, "web", {"replicas": 7}))
    assert await projector(spine).catch_up("acme-dev") == 1
    assert (await state(spine, "acme-dev"))["count/all"] == 6


@pytest.mark.anyio
async def test_projections_run_in_name_order(spine: SqliteSpine) -> None:
    order: list[str] = []

    def recorder(name: str) -> Any:
        class Recorder:
            def handles(self, event: Event) -> bool:
                return True

            async def apply(self, event: Event, view: ProjectionView) -> None:
                order.append(name)

        recorder = Recorder()
        recorder.name = name  # type: ignore[attr-defined]
        return recorder

    await spine.publish("acme-dev", changed(1, "web", {}))
    await Projector(spine, [recorder("b"), recorder("c"), recorder("a")], max_wait=0.05).catch_up(
        "acme-dev"
    )
    assert order == ["a", "b", "c"]


@pytest.mark.anyio
async def test_run_discovers_environments_and_follows_them(spine: SqliteSpine) -> None:
    running = projector(spine, discover_interval=0.02)

    async def seen(environment: str) -> None:
        kv = await spine.key_value(environment)
        async for entry in kv.watch():
            if entry.key == "object/web":
                return

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(running.run)
            await spine.publish("acme-dev", changed(1, "web", {"replicas": 1}))
            await spine.publish("acme-prod", changed(1, "web", {"replicas": 2}))
            await seen("acme-dev")
            await seen("acme-prod")
            tasks.cancel_scope.cancel()


@pytest.mark.anyio
async def test_invalid_environment_names_are_refused(spine: SqliteSpine) -> None:
    with pytest.raises(InvalidInput):
        await projector(spine).replay("acme-staging")


def test_cli_projector_and_replay(run_catalyst: Callable[..., Any], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def seed() -> None:
        spine = SqliteSpine(data_dir / "spine" / "spine.db")
        await spine.start()
        await spine.publish(
            "acme-dev",
            Event.create(
                source="/t",
                type="io.catalyst.git.commit",
                subject="git.abc",
                id="commit-abc",
                data={
                    "sha": "abc",
                    "parents": [],
                    "message": "m",
                    "actor": "a",
                    "applications": [],
                },
            ),
        )
        await spine.close()

    anyio.run(seed)
    env = {"CATALYST_DATA_DIR": str(data_dir)}
    result = run_catalyst("projector", "--until-idle", env=env)
    assert result.returncode == 0, result.stderr
    assert "acme-dev: 1 events applied" in result.stdout
    result = run_catalyst("replay", "acme-dev", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("acme-dev: replayed 1 events")
    missing = run_catalyst("replay", "acme-prod", env=env)
    assert missing.returncode == 1
    assert "has no event stream" in missing.stderr
    bad = run_catalyst("replay", "acme-staging", env=env)
    assert bad.returncode == 1
    assert "staging" in bad.stderr
