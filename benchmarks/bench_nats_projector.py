"""Projector throughput and lag on the NATS spine, against a raw nats-py loop on the same server.

Measures, in one run, against one real ``nats-server`` (JetStream in a temporary store, on a
free loopback port):

* **throughput**: events/s the projector applies (the kernel's projections, Deployment change
  events as in ``bench_projector.py``, batches of 256) from a pre-published Environment stream
  into its KV bucket, end to end through the ``nats`` spine: pull fetch, decode, projections,
  KV writes, cursor, acknowledgement.
* **physical limit**: a raw nats-py loop doing the least work the same path needs, with
  nats-py's own API: a durable pull consumer fetching batches of 256, one ``ack_sync`` per
  batch (acknowledgement ``all``), and for every event a JSON decode and one KV put, pipelined
  with ``publish_async`` and awaited once per batch. No projections, no cursor.

  Projector and raw rounds alternate ``--rounds`` times on fresh streams; the best of each
  counts. The figure is the projector's rate and its ratio to the raw loop's (target >= 0.6).
* **lag**: a separate publisher process sends events at a steady ``--rate`` (5,000/s) for
  ``--seconds`` while the projector runs; every 20 ms the lag is sampled: events published and
  not yet applied, and the age of the newest applied event (now minus the time the publisher
  sent it). Printed as p50 / p99 / max, with the projector's sustained rate.

Run: ``uv run python benchmarks/bench_nats_projector.py`` (about a minute on two cores;
``--events``, ``--rounds``, ``--rate`` and ``--seconds`` change the size).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import nats

# The same Deployment change events as the embedded spine's benchmark.
from bench_projector import make_event
from nats.js.api import AckPolicy, ConsumerConfig, KeyValueConfig, StreamConfig

from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.readside.codec import encode
from catalyst_kernel.readside.projector import Projector
from catalyst_kernel.settings import load_settings
from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer

if TYPE_CHECKING:
    from catalyst_kernel.model import Event

BATCH = 256
EVENTS = 20_000
ROUNDS = 3
RATE = 5_000
SECONDS = 10.0
SAMPLE = 0.02
PUBLISH_CHUNK = 1_000
HERE = Path(__file__).resolve().parent


def projections() -> list[Any]:
    settings = load_settings(
        Path("/dev/null"), environ={}, overrides={"data_dir": tempfile.mkdtemp()}
    )
    return PluginManager(settings).load(entry_points=()).projections()


async def publish_pipelined(
    client: nats.NATS, subject_prefix: str, events: list[Event], bodies: list[bytes]
) -> None:
    """Publish ``events`` with their ids as ``Nats-Msg-Id``, a chunk of acks awaited at once."""
    js = client.jetstream(publish_async_max_pending=PUBLISH_CHUNK * 2)
    for offset in range(0, len(events), PUBLISH_CHUNK):
        for event, body in zip(
            events[offset : offset + PUBLISH_CHUNK],
            bodies[offset : offset + PUBLISH_CHUNK],
            strict=True,
        ):
            await js.publish_async(
                f"{subject_prefix}.{event.subject}", body, headers={"Nats-Msg-Id": event.id}
            )
        await js.publish_async_completed()


async def projector_rate(spine: NatsSpine, client: nats.NATS, environment: str, n: int) -> float:
    events = [make_event(i) for i in range(1, n + 1)]
    await spine.ensure_stream(environment)
    await publish_pipelined(client, f"ws.{environment}", events, [encode(e) for e in events])
    projector = Projector(spine, projections(), batch=BATCH, max_wait=0.01)
    start = time.perf_counter()
    applied = await projector.catch_up(environment)
    elapsed = time.perf_counter() - start
    assert applied == n, (applied, n)
    return n / elapsed


async def raw_rate(client: nats.NATS, name: str, n: int) -> float:
    js = client.jetstream(publish_async_max_pending=BATCH * 4)
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    await js.create_key_value(KeyValueConfig(bucket=f"{name}-kv", history=64))
    events = [make_event(i) for i in range(1, n + 1)]
    await publish_pipelined(client, name, events, [encode(e) for e in events])
    pull = await js.pull_subscribe(
        f"{name}.>",
        durable="raw",
        config=ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=-1),
    )
    kv_prefix = f"$KV.{name}-kv."
    start = time.perf_counter()
    done = 0
    while done < n:
        messages = await pull.fetch(BATCH, timeout=5)
        for message in messages:
            event = json.loads(message.data)
            key = event["subject"].rsplit(".", 1)[-1]
            await js.publish_async(kv_prefix + key, json.dumps(event["data"]).encode())
        await js.publish_async_completed()
        await messages[-1].ack_sync()
        done += len(messages)
    return n / (time.perf_counter() - start)


# The load: another process, as event sources are. It encodes every event first, then sends
# `rate` events/s in ticks of 10 ms (each tick's events pipelined) and finally writes the
# wall-clock time each event was sent to the file given.
PUBLISHER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import nats
    from catalyst_kernel.readside.codec import encode
    sys.path.insert(0, sys.argv[5])
    from bench_nats_projector import make_event

    async def main(url, subject, rate, seconds, folder, times_file):
        total = int(rate * seconds)
        events = [make_event(n) for n in range(1, total + 1)]
        bodies = [(f"{subject}.{e.subject}", encode(e), {"Nats-Msg-Id": e.id}) for e in events]
        client = await nats.connect(url)
        js = client.jetstream(publish_async_max_pending=rate)
        sent = []
        tick, n, start = 0.01, 0, time.monotonic()
        while n < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            now = time.time()
            while n < due:
                subject_, body, headers = bodies[n]
                await js.publish_async(subject_, body, headers=headers)
                sent.append(now)
                n += 1
            await asyncio.sleep(tick)
        await js.publish_async_completed()
        await client.close()
        with open(times_file, "w") as out:
            json.dump(sent, out)

    asyncio.run(main(*sys.argv[1:3], int(sys.argv[3]), float(sys.argv[4]), *sys.argv[5:7]))
    """
)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def lag_run(
    spine: NatsSpine, url: str, environment: str, rate: int, seconds: float
) -> dict[str, float]:
    await spine.ensure_stream(environment)
    projector = Projector(spine, projections(), batch=BATCH, max_wait=0.2)
    total = int(rate * seconds)
    samples: list[tuple[float, int]] = []  # (wall-clock time, events applied)
    with tempfile.TemporaryDirectory() as folder:
        times_file = str(Path(folder) / "sent.json")
        command = [sys.executable, "-c", PUBLISHER, url, f"ws.{environment}", str(rate)]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(projector.run_environment, environment)
            async with await anyio.open_process(
                [*command, str(seconds), str(HERE), times_file], stdout=None, stderr=None
            ) as publisher:
                start = time.monotonic()
                while (applied := projector.applied.get(environment, 0)) < total:
                    samples.append((time.time(), applied))
                    if time.monotonic() - start > seconds * 6 + 30:
                        raise RuntimeError(f"the projector fell behind: {applied} of {total}")
                    await anyio.sleep(SAMPLE)
                samples.append((time.time(), projector.applied[environment]))
                await publisher.wait()
            tasks.cancel_scope.cancel()
        sent = json.loads(await anyio.Path(times_file).read_text())
    # Each sample: events sent by then and not applied, and how long ago the newest applied
    # event was sent (while the publisher runs: its first event onwards).
    backlog = [float(bisect.bisect_right(sent, t) - applied) for t, applied in samples]
    age = [t - sent[applied - 1] for t, applied in samples if applied]
    applying = [s for s in samples if s[1]]
    return {
        "rate": (applying[-1][1] - applying[0][1]) / (applying[-1][0] - applying[0][0]),
        "age_p50": percentile(age, 0.5) * 1000,
        "age_p99": percentile(age, 0.99) * 1000,
        "age_max": max(age) * 1000,
        "backlog_p50": percentile(backlog, 0.5),
        "backlog_p99": percentile(backlog, 0.99),
        "backlog_max": max(backlog),
    }


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, NatsServer(Path(folder) / "nats") as server:
        spine = NatsSpine(NatsSettings(servers=(server.url,)))
        await spine.start()
        client = await nats.connect(server.url)
        try:
            projected, raw = [], []
            for round_ in range(1, args.rounds + 1):
                projected.append(
                    await projector_rate(spine, client, f"bench-r{round_}-prod", args.events)
                )
                raw.append(await raw_rate(client, f"raw{round_}", args.events))
                print(
                    f"round {round_}: projector {projected[-1]:,.0f} events/s, "
                    f"raw loop {raw[-1]:,.0f} events/s",
                    flush=True,
                )
            lag = await lag_run(spine, server.url, "lag-prod", args.rate, args.seconds)
        finally:
            await client.close()
            await spine.close()
    best, limit = max(projected), max(raw)
    print(f"events per round: {args.events:,} (batches of {BATCH})")
    print(f"raw nats-py fetch + ack + pipelined KV put: {limit:,.0f} events/s (physical limit)")
    print(f"projector on the nats spine:                {best:,.0f} events/s")
    print(f"ratio projector / limit:                    {best / limit:.2f} (target >= 0.6)")
    print(
        f"steady load {args.rate:,} events/s for {args.seconds:g} s: "
        f"applied at {lag['rate']:,.0f} events/s"
    )
    print(
        f"  lag, age of the newest applied event: p50 {lag['age_p50']:.0f} ms, "
        f"p99 {lag['age_p99']:.0f} ms, max {lag['age_max']:.0f} ms"
    )
    print(
        f"  lag, events published not yet applied: p50 {lag['backlog_p50']:.0f}, "
        f"p99 {lag['backlog_p99']:.0f}, max {lag['backlog_max']:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS, help="events per round")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each (best counts)")
    parser.add_argument("--rate", type=int, default=RATE, help="steady load, events/s")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="steady load duration")
    asyncio.run(main(parser.parse_args()))
