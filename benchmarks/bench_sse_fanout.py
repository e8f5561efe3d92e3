"""SSE fan-out: 1,000 subscribers on one Environment of an embedded (SQLite) spine.

Measures, in one run:

* **burst**: ``ENTRIES`` KV puts written back to back while 1,000 subscriptions of one
  :class:`~catalyst_kernel.readside.fanout.FanoutHub` consume them; deliveries per second (entries
  times subscribers, from the first write to the last delivery) and the write → receive latency.
* **paced**: ``PACED`` puts, each written once every subscriber received the previous one; the
  latency of one change reaching 1,000 subscribers on an otherwise idle hub (and the same for
  the bare broadcast).
* **physical limit**: the same entries pushed by a bare loop to 1,000 anyio memory object streams
  and consumed by 1,000 tasks: no spine, no watch, no subscription logic. The pusher yields to the
  consumers after every entry, as the hub does. (Pushing everything before yielding measured the
  same throughput, with far worse latency.)

Burst and bare runs alternate ``ROUNDS`` times and the best of each counts, so a neighbour's load
on a shared machine hits both sides alike. The figure is the fan-out throughput and its ratio to
the bare broadcast's. Run with ``uv run python benchmarks/bench_sse_fanout.py`` (30-50 s on two
cores; ``--entries``, ``--subscribers`` and ``--rounds`` change the size).
"""

from __future__ import annotations

import argparse
import array
import gc
import tempfile
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel

from catalyst_kernel.readside.fanout import FanoutHub
from catalyst_kernel.readside.spine import KvEntry
from catalyst_kernel.readside.sqlite_spine import SqliteSpine

ENVIRONMENT = "bench-dev"
SUBSCRIBERS = 1_000
ENTRIES = 300
PACED = 200
ROUNDS = 5
KEYS = 50  # distinct keys the entries cycle through, like objects being updated
VALUE = b'{"kind":"Deployment","status":{"readyReplicas":3,"replicas":3}}'
LIMIT = 120.0  # seconds; only reached when something hangs


class Run:
    """Write times by sequence number and what the subscribers observed."""

    def __init__(self, subscribers: int, entries: int) -> None:
        self.subscribers = subscribers
        self.entries = entries
        # Arrays, not lists: the collector does not walk them, so the measuring itself does not
        # lengthen the garbage-collection pauses it would then measure.
        self.written = array.array("d")
        self.latencies = array.array("d")
        self.remaining = [subscribers] * entries  # subscribers yet to receive each entry
        self.all_received = [anyio.Event() for _ in range(entries)]
        self.last_delivery = 0.0

    def received(self, index: int, now: float) -> None:
        self.latencies.append(now - self.written[index])
        self.remaining[index] -= 1
        if not self.remaining[index]:
            self.all_received[index].set()
            self.last_delivery = now

    def throughput(self) -> float:
        return self.subscribers * self.entries / (self.last_delivery - self.written[0])


def percentile(values: array.array[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def describe(name: str, run: Run) -> str:
    p50 = percentile(run.latencies, 0.50) * 1000
    p99 = percentile(run.latencies, 0.99) * 1000
    return (
        f"{name:<34} {run.throughput():>12,.0f} deliveries/s   "
        f"latency p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
    )


# -------------------------------------------------------------------------------------------------
# Fan-out through the hub
# -------------------------------------------------------------------------------------------------


async def fanout(
    folder: Path, subscribers: int, entries: int, *, paced: bool = False
) -> tuple[Run, dict[str, int]]:
    spine = SqliteSpine(folder / "spine.db")
    await spine.start()
    try:
        kv = await spine.key_value(ENVIRONMENT)
        run = Run(subscribers, entries)
        base, _ = await kv.snapshot()
        async with FanoutHub(spine) as hub, anyio.create_task_group() as tasks:

            async def subscriber(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                async with hub.subscribe(ENVIRONMENT) as subscription:
                    task_status.started()
                    async for item in subscription:
                        if isinstance(item, KvEntry):
                            index = item.revision - base - 1
                            run.received(index, time.perf_counter())
                            if index == entries - 1:
                                return

            for _ in range(subscribers):
                await tasks.start(subscriber)
            for index in range(entries):
                run.written.append(time.perf_counter())
                await kv.put(f"k8s/Deployment/bench/app{index % KEYS}", VALUE)
                if paced:
                    await run.all_received[index].wait()
            await run.all_received[-1].wait()
            counters = hub.counters()[ENVIRONMENT]
        return run, {"dropped": counters.dropped, "watch_starts": counters.watch_starts}
    finally:
        await spine.close()


# -------------------------------------------------------------------------------------------------
# The physical limit: a bare broadcast loop over memory object streams
# -------------------------------------------------------------------------------------------------


async def bare(subscribers: int, entries: int, *, paced: bool = False) -> Run:
    run = Run(subscribers, entries)
    async with anyio.create_task_group() as tasks:
        senders = []

        async def consumer(receive: anyio.abc.ObjectReceiveStream[int]) -> None:
            async with receive:
                async for index in receive:
                    run.received(index, time.perf_counter())
                    if index == entries - 1:
                        return

        for _ in range(subscribers):
            send, receive = anyio.create_memory_object_stream[int](entries)
            senders.append(send)
            tasks.start_soon(consumer, receive)
        await anyio.lowlevel.checkpoint()  # let every consumer reach its first receive
        for index in range(entries):
            run.written.append(time.perf_counter())
            for send in senders:
                send.send_nowait(index)
            await anyio.lowlevel.checkpoint()
            if paced:
                await run.all_received[index].wait()
        await run.all_received[-1].wait()
        for send in senders:
            send.close()
    return run


# -------------------------------------------------------------------------------------------------


async def measure(subscribers: int, entries: int, paced_entries: int, rounds: int) -> None:
    print(f"SSE fan-out: {subscribers:,} subscribers, one Environment, embedded SQLite spine")
    bursts: list[Run] = []
    bares: list[Run] = []
    dropped = watch_starts = 0
    with anyio.fail_after(LIMIT), tempfile.TemporaryDirectory() as folder:
        for attempt in range(rounds):
            gc.collect()
            burst, counters = await fanout(Path(folder) / str(attempt), subscribers, entries)
            bursts.append(burst)
            dropped += counters["dropped"]
            watch_starts = max(watch_starts, counters["watch_starts"])
            gc.collect()
            bares.append(await bare(subscribers, entries))
        gc.collect()
        paced, _ = await fanout(Path(folder) / "paced", subscribers, paced_entries, paced=True)
        gc.collect()
        bare_paced = await bare(subscribers, paced_entries, paced=True)
    burst = max(bursts, key=Run.throughput)
    limit = max(bares, key=Run.throughput)

    print(describe(f"fan-out, burst of {entries:,} puts", burst))
    print(describe(f"fan-out, {paced_entries} paced puts", paced))
    print(describe("bare broadcast (physical limit)", limit))
    print(describe(f"bare broadcast, {paced_entries} paced", bare_paced))
    print(f"dropped subscribers: {dropped}, KV watches per run: {watch_starts}")
    print(
        f"figure: {burst.throughput():,.0f} deliveries/s = "
        f"{burst.throughput() / limit.throughput():.2f} x the bare broadcast "
        f"({limit.throughput():,.0f} deliveries/s); "
        f"paced write -> receive p50 {percentile(paced.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(paced.latencies, 0.99) * 1000:.1f} ms "
        f"(bare: p50 {percentile(bare_paced.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(bare_paced.latencies, 0.99) * 1000:.1f} ms)"
    )
    if dropped:
        raise SystemExit("subscribers were dropped: the figure is not valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=SUBSCRIBERS)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--paced", type=int, default=PACED)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    started = time.perf_counter()
    anyio.run(measure, args.subscribers, args.entries, args.paced, args.rounds)
    print(f"(run took {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
