"""The embedded spine passes the spine conformance suite, plus what only it promises."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.readside.spine import Delivery
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.testing import SpineConformance, SpineFactory


class TestSqliteSpine(SpineConformance):
    @pytest.fixture
    def spine_factory(self, tmp_path: Path) -> SpineFactory:
        @asynccontextmanager
        async def make() -> AsyncIterator[SqliteSpine]:
            spine = SqliteSpine(tmp_path / "spine" / "spine.db", poll_interval=0.01)
            await spine.start()
            try:
                yield spine
            finally:
                await spine.close()

        return make


@pytest.mark.anyio
async def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    spine = SqliteSpine(tmp_path / "spine.db")
    await spine.start()
    await spine.close()
    with sqlite3.connect(tmp_path / "spine.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.anyio
async def test_an_unopenable_path_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(BackendUnavailable, match="cannot open"):
        await SqliteSpine(tmp_path / "file" / "spine.db").start()


@pytest.mark.anyio
async def test_history_keeps_the_configured_number_of_revisions(tmp_path: Path) -> None:
    spine = SqliteSpine(tmp_path / "spine.db", history=3)
    await spine.start()
    kv = await spine.key_value("acme-dev")
    for n in range(10):
        await kv.put("k", str(n).encode())
    assert [e.value for e in await kv.history("k")] == [b"7", b"8", b"9"]
    await spine.close()


@pytest.mark.anyio
async def test_one_put_many_keeps_history_per_key_like_single_puts(tmp_path: Path) -> None:
    spine = SqliteSpine(tmp_path / "spine.db", history=3)
    await spine.start()
    kv = await spine.key_value("acme-dev")
    await kv.put("k", b"0")
    items: list[tuple[str, bytes | None]] = [("k", b"1"), ("other", b"a"), ("k", b"2")]
    items += [("k", None), ("other", b"b"), ("k", b"3"), ("k", b"4")]
    last = await kv.put_many(items)
    assert last == await kv.revision() == 1 + len(items)
    history = await kv.history("k")
    assert [(e.operation.value, e.value) for e in history] == [
        ("delete", None),
        ("put", b"3"),
        ("put", b"4"),
    ]
    assert [e.revision for e in history] == [5, 7, 8]
    entry = await kv.get("k")
    assert entry is not None
    assert (entry.revision, entry.value) == (8, b"4")
    assert [e.value for e in await kv.history("other")] == [b"a", b"b"]
    assert [(e.key, e.revision) for e in await kv.changes(0, 100)] == [
        ("other", 3),
        ("k", 5),
        ("other", 6),
        ("k", 7),
        ("k", 8),
    ]
    await spine.close()


def test_history_outside_jetstream_limits_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"1\.\.64"):
        SqliteSpine(tmp_path / "spine.db", history=65)


PUBLISHER = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from catalyst_kernel.model import Event
    from catalyst_kernel.readside.sqlite_spine import SqliteSpine

    async def main(path, worker, count):
        spine = SqliteSpine(Path(path))
        await spine.start()
        for n in range(count):
            await spine.publish("acme-dev", Event.create(
                source="/t", type="t", subject="x", id=f"{worker}-{n}",
                data={"worker": worker, "n": n}))
        await spine.close()

    anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    """
)


async def _read_all(path: Path, limit: int) -> list[Delivery]:
    spine = SqliteSpine(path)
    await spine.start()
    try:
        return list(await spine.read("acme-dev", limit=limit))
    finally:
        await spine.close()


def test_concurrent_publisher_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spine.db"
    workers, count = 4, 300
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(path), str(worker), str(count)],
            env={**os.environ},
        )
        for worker in range(workers)
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0
    deliveries = anyio.run(_read_all, path, workers * count + 1)
    assert [d.sequence for d in deliveries] == list(range(1, workers * count + 1))
    for worker in range(workers):
        mine = [d.event.data["n"] for d in deliveries if d.event.data["worker"] == worker]
        assert mine == list(range(count))


@pytest.mark.anyio
async def test_a_consumer_sees_another_process_publish(tmp_path: Path) -> None:
    path = tmp_path / "spine.db"
    spine = SqliteSpine(path, poll_interval=0.02)
    await spine.start()
    consumer = await spine.consumer("acme-dev", "watcher")
    async with await anyio.open_process(
        [sys.executable, "-c", PUBLISHER, str(path), "9", "1"]
    ) as process:
        with anyio.fail_after(60):
            deliveries = await consumer.fetch(10, 60)
            assert await process.wait() == 0
    assert deliveries[0].event.data == {"worker": 9, "n": 0}
    await spine.close()


@pytest.mark.anyio
async def test_close_while_watching_does_not_hang(tmp_path: Path) -> None:
    spine = SqliteSpine(tmp_path / "spine.db", poll_interval=0.01)
    await spine.start()
    kv = await spine.key_value("acme-dev")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                with pytest.raises(BackendUnavailable):
                    async for _ in kv.watch():
                        pass

            tasks.start_soon(watch)
            await kv.put("a", b"1")
            await spine.close()
