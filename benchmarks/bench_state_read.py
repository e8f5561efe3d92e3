"""API reads: ``GET /v1/environments/{env}/state`` of an Environment of 10,000 objects.

Figure: requests/s of the real route, served by the API service (``running_service``: the app
``create_app`` builds, its runtime over an embedded SQLite spine in a temporary directory, a real
uvicorn on loopback), with a development token on every request, over an Environment whose read
model holds ``OBJECTS`` Kubernetes objects (``k8s/<kind>/<ns>/<name>`` keys, values of about 500
bytes as the object projection writes them; a 5.8 MB response).

Limit, measured in the same run: a bare Litestar app with one route at the same path returning
the same snapshot, already decoded (a :class:`StateSnapshot` in memory, encoded per request as
the real route's result is): no token, no directory lookup, no KV read, no value decoding. Same
serving helper (:func:`catalyst_kernel.api.server.serve`), same uvicorn settings, and the same
body to the byte (checked). Target: real ÷ bare >= 0.7.

The load comes from a separate process (this script with ``--load``), so the client's own work
does not share the server's event loop: ``--workers`` concurrent httpx requests in a loop, a
warm-up, then completions counted over ``--seconds``. Real and bare rounds alternate (the order
swapping every round) ``--rounds`` times and the best of each counts, so a neighbour's load hits
both alike. Also printed: the server's CPU time per request on each side (this process's CPU
time over a load run ÷ the requests it served), which a neighbour's load hardly moves, and the
client's CPU use (near 100%: the client, not the server, set the pace).

Run: uv run python benchmarks/bench_state_read.py [--objects N] [--workers N] [--seconds S]
[--rounds N] [--warmup S]   (about 80 s on two cores; ``--rounds 1 --seconds 1`` for a quick
look)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
from litestar import Litestar, MediaType, get
from litestar.params import FromPath  # noqa: TC002 (Litestar reads annotations)

from catalyst_kernel.api.routes.readmodel import StateSnapshot
from catalyst_kernel.api.server import serve
from catalyst_kernel.readside.projector import encode_value
from catalyst_kernel.readside.subjects import kv_key
from catalyst_kernel.settings import load_settings
from catalyst_kernel.testing.service import ApiService, running_service

ENVIRONMENT = "acme-dev"
PATH = f"/v1/environments/{ENVIRONMENT}/state"
OBJECTS = 10_000
WORKERS = 4
SECONDS = 3.0
WARMUP = 0.5
ROUNDS = 5
MIN_COMPLETIONS = 10  # per round: slow requests lengthen the round
BATCH = 500  # KV puts per put_many while filling the bucket
TARGET = 0.7
TOKEN_VARIABLE = "CATALYST_BENCH_TOKEN"  # the load process's bearer token (kept out of argv)
SCRIPT = str(Path(__file__).resolve())  # run again with --load as the load process
LIMIT = 600.0  # seconds; only reached when something hangs
KINDS = ("Pod", "Pod", "Pod", "ReplicaSet", "Deployment", "Service", "ConfigMap", "Secret")


# -------------------------------------------------------------------------------------------------
# The read model: objects as the Kubernetes object projection stores them
# -------------------------------------------------------------------------------------------------


def make_object(n: int) -> tuple[str, bytes]:
    kind = KINDS[n % len(KINDS)]
    namespace = f"team-{n % 10}"
    app = f"app-{n % 200}"
    name = f"{app}-{kind.lower()}-{n:05d}"
    document: dict[str, Any] = {
        "apiVersion": "apps/v1" if kind in ("ReplicaSet", "Deployment") else "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"5f0c{n:08x}-1111-2222-3333-444455556666",
            "resourceVersion": str(100_000 + n),
            "generation": 1 + n % 3,
            "labels": {"app.kubernetes.io/name": app, "openova.io/application": app},
            "creationTimestamp": "2026-11-30T09:00:00Z",
        },
        "status": {
            "phase": "Running",
            "observedGeneration": 1 + n % 3,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastTransitionTime": "2026-11-30T09:00:05Z",
                }
            ],
        },
        "observedAt": f"2026-11-30T09:{n % 60:02d}:00.000000+00:00",
    }
    return kv_key("k8s", kind, namespace, name), encode_value(document)


# -------------------------------------------------------------------------------------------------
# The physical limit: a bare Litestar route returning the same snapshot
# -------------------------------------------------------------------------------------------------


def bare_app(snapshot: StateSnapshot) -> Litestar:
    @get("/v1/environments/{env:str}/state", media_type=MediaType.JSON, sync_to_thread=False)
    def state(env: FromPath[str]) -> StateSnapshot:
        return snapshot

    return Litestar(route_handlers=[state], openapi_config=None, logging_config=None)


# -------------------------------------------------------------------------------------------------
# The load: a separate process, the same for both servers
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one load run counted."""

    requests: int  # completed while measuring
    seconds: float  # from the first of those completions to the last
    client_cpu: float  # the load process's CPU seconds per wall second while measuring
    body_bytes: int
    total: int  # completed in the whole run, warm-up included
    server_cpu: float = 0.0  # the server process's CPU seconds over the whole run

    @property
    def rate(self) -> float:
        return (self.requests - 1) / self.seconds

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu / self.total


async def generate(url: str, workers: int, seconds: float, warmup: float) -> Load:
    """Request ``url`` from ``workers`` tasks; after ``warmup`` seconds, count completions for
    ``seconds`` and at least :data:`MIN_COMPLETIONS` of them."""
    headers = {"Authorization": f"Bearer {os.environ.get(TOKEN_VARIABLE, '')}"}
    completions: list[float] = []  # the counted ones
    sizes: set[int] = set()
    total = 0
    done = anyio.Event()
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        begin = time.perf_counter() + warmup

        async def worker() -> None:
            nonlocal total
            while not done.is_set():
                response = await client.get(url, headers=headers)
                now = time.perf_counter()
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")
                total += 1
                sizes.add(len(response.content))
                if now >= begin and not done.is_set():
                    completions.append(now)
                    if now - begin >= seconds and len(completions) >= MIN_COMPLETIONS:
                        done.set()

        async def clock() -> float:
            await anyio.sleep(warmup)
            cpu = time.process_time()
            await done.wait()
            return (time.process_time() - cpu) / (time.perf_counter() - begin)

        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(worker)
            client_cpu = await clock()
    span = completions[-1] - completions[0]
    return Load(len(completions), span, client_cpu, max(sizes), total)


async def load_from_child(
    url: str, token: str, workers: int, seconds: float, warmup: float
) -> Load:
    """Run :func:`generate` in a fresh process (this script with ``--load``); the server's CPU
    time over the run is this process's."""
    command = [
        sys.executable,
        SCRIPT,
        f"--load={url}",
        f"--workers={workers}",
        f"--seconds={seconds}",
        f"--warmup={warmup}",
    ]
    cpu = time.process_time()
    result = await anyio.run_process(
        command, env={**os.environ, TOKEN_VARIABLE: token}, check=False
    )
    if result.returncode:
        raise SystemExit(f"the load process failed:\n{result.stderr.decode()[-2000:]}")
    return replace(Load(**json.loads(result.stdout)), server_cpu=time.process_time() - cpu)


# -------------------------------------------------------------------------------------------------


async def fill(service: ApiService, objects: int) -> int:
    """Create the Environment and write ``objects`` objects; their average size in bytes."""
    await service.create_environment(ENVIRONMENT)
    kv = await service.kv(ENVIRONMENT)
    items = [make_object(n) for n in range(objects)]
    for offset in range(0, len(items), BATCH):
        await kv.put_many(items[offset : offset + BATCH])
    return sum(len(value) for _, value in items) // objects


def describe(name: str, load: Load) -> str:
    return (
        f"{name:<38} {load.rate:7.1f} requests/s ({load.requests} in {load.seconds:.1f} s), "
        f"server CPU {load.cpu_per_request * 1000:6.1f} ms/request, "
        f"client CPU {load.client_cpu:4.0%}"
    )


async def measure(objects: int, workers: int, seconds: float, rounds: int, warmup: float) -> None:
    print(f"GET {PATH}: {objects:,} objects, {workers} concurrent clients, {seconds:g} s rounds")
    loads: dict[str, list[Load]] = {"real": [], "bare": []}
    with anyio.fail_after(LIMIT), tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path("/dev/null"), environ={}, overrides={"data_dir": folder})
        async with running_service(settings) as service, anyio.create_task_group() as group:
            size = await fill(service, objects)
            token = service.token("org-viewer", "acme")
            reference = await service.client.get(PATH, headers=service.auth("org-viewer", "acme"))
            assert reference.status_code == 200, reference.text
            snapshot = msgspec.json.decode(reference.content, type=StateSnapshot)
            assert len(snapshot.items) == objects, len(snapshot.items)
            print(
                f"read model: {objects:,} values of {size} bytes on average; "
                f"response body {len(reference.content) / 1e6:.2f} MB"
            )
            port = await group.start(serve, bare_app(snapshot), "127.0.0.1", 0)
            urls = {
                "real": service.base_url.rstrip("/") + PATH,
                "bare": f"http://127.0.0.1:{port}{PATH}",
            }
            bare_body = (await service.client.get(urls["bare"])).content
            assert bare_body == reference.content, "the bare route must return the same JSON"
            for attempt in range(rounds):
                for side in ("real", "bare") if attempt % 2 == 0 else ("bare", "real"):
                    load = await load_from_child(urls[side], token, workers, seconds, warmup)
                    assert load.body_bytes == len(reference.content), load
                    loads[side].append(load)
            group.cancel_scope.cancel()
    for side in ("real", "bare"):
        print(f"{side} rounds, requests/s: {', '.join(f'{x.rate:.1f}' for x in loads[side])}")
    real = max(loads["real"], key=lambda load: load.rate)
    bare = max(loads["bare"], key=lambda load: load.rate)
    print(describe("GET /state (API service)", real))
    print(describe("bare Litestar route, same JSON (limit)", bare))
    # CPU per request hardly moves with a neighbour's load, unlike requests/s: a second reading.
    real_cpu = min(load.cpu_per_request for load in loads["real"])
    bare_cpu = min(load.cpu_per_request for load in loads["bare"])
    print(
        f"server CPU per request, least of the rounds: {real_cpu * 1000:.1f} ms against "
        f"{bare_cpu * 1000:.1f} ms (bare / real {bare_cpu / real_cpu:.2f})"
    )
    ratio = real.rate / bare.rate
    print(
        f"figure: {real.rate:,.1f} requests/s = {ratio:.2f} x the bare route "
        f"({bare.rate:,.1f} requests/s); target >= {TARGET}: "
        f"{'met' if ratio >= TARGET else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=OBJECTS)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=WARMUP, help="seconds before counting")
    args = parser.parse_args()
    if args.load:
        load = anyio.run(generate, args.load, args.workers, args.seconds, args.warmup)
        print(json.dumps(asdict(load)))
        return
    started = time.perf_counter()
    anyio.run(measure, args.objects, args.workers, args.seconds, args.rounds, args.warmup)
    print(f"(run took {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
