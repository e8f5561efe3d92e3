"""Projector throughput on the embedded spine, against the physical limit of the same disk.

Figure: events/s the projector applies (the kernel's projections, Deployment change events,
batches of 256) from a pre-published stream into the KV bucket.
Limit: a raw sqlite3 loop doing the least work the same result needs — append the events in
batches, read each batch back, write one KV row per event — on the same machine, in this run.

Run: uv run python benchmarks/bench_projector.py [EVENTS]
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import anyio

from catalyst_kernel.model import Event
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.readside.codec import encode
from catalyst_kernel.readside.projector import Projector
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.settings import load_settings

BATCH = 256


def make_event(n: int) -> Event:
    name = f"web-{n % 500}"
    return Event.create(
        source="/sovereigns/bench/clusters/c1/informer",
        type="io.catalyst.k8s.object.changed",
        subject=f"k8s.Deployment.shop.{name}",
        id=f"event-{n}",
        data={
            "object": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": "shop",
                    "resourceVersion": str(n),
                    "labels": {"openova.io/application": f"app-{n % 20}"},
                },
                "spec": {"replicas": 2},
                "status": {"readyReplicas": 2, "observedGeneration": 1},
            }
        },
    )


def raw_limit(path: Path, events: list[bytes]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body BLOB)")
    db.execute("CREATE TABLE kv (revision INTEGER PRIMARY KEY, key TEXT, value BLOB)")
    start = time.perf_counter()
    for offset in range(0, len(events), BATCH):
        chunk = events[offset : offset + BATCH]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO events (seq, body) VALUES (?, ?)",
            [(offset + i + 1, body) for i, body in enumerate(chunk)],
        )
        db.execute("COMMIT")
        rows = db.execute(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (offset, BATCH)
        ).fetchall()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO kv (key, value) VALUES (?, ?)",
            [
                (f"k/{seq % 500}", json.dumps(json.loads(body)["data"]).encode())
                for seq, body in rows
            ],
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(events) / elapsed


async def projector_rate(folder: Path, events: list[Event]) -> float:
    spine = SqliteSpine(folder / "spine.db")
    await spine.start()
    for event in events:
        await spine.publish("bench-prod", event)
    settings = load_settings(Path("/dev/null"), environ={}, overrides={"data_dir": str(folder)})
    projections = PluginManager(settings).load(entry_points=()).projections()
    projector = Projector(spine, projections, batch=BATCH, max_wait=0.01)
    start = time.perf_counter()
    applied = await projector.catch_up("bench-prod")
    elapsed = time.perf_counter() - start
    await spine.close()
    assert applied == len(events), (applied, len(events))
    return len(events) / elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    events = [make_event(n) for n in range(1, count + 1)]
    with tempfile.TemporaryDirectory() as folder:
        limit = raw_limit(Path(folder) / "raw.db", [encode(event) for event in events])
        rate = anyio.run(projector_rate, Path(folder), events)
    print(f"events: {count}")
    print(f"raw SQLite append-then-read loop: {limit:,.0f} events/s (physical limit)")
    print(f"projector (embedded spine):       {rate:,.0f} events/s")
    print(f"ratio projector / limit:          {rate / limit:.3f}")


if __name__ == "__main__":
    main()
