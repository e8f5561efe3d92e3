"""Faults: the server down at startup, and restarted in the middle of a 100,000-event run.

The restart test is the NATS twin of the kernel's SIGKILL test, with one difference: JetStream
has no atomic ``put_many``, so a batch cut short by the restart may be stored in part and then
applied again. The projections are idempotent (the kernel's, and the loss detector here), so
the read model still ends up exactly as a projection from scratch; an event applied twice is
not detected, an event lost is.

``NATS_FAULT_EVENTS`` lowers the event count of the restart test for quick local runs;
the default is the acceptance figure.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.model import Event
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.readside.projection import ProjectionView
from catalyst_kernel.readside.projector import CURSOR_KEY, Projector, decode_value
from catalyst_kernel.settings import load_settings
from catalyst_nats.managed import free_port
from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer

from .conftest import eventually, settings_for

pytestmark = pytest.mark.anyio

EVENTS = int(os.environ.get("NATS_FAULT_EVENTS", "100000"))
OBJECTS = 1_000
ENV = "acme-prod"
PLUGIN = Path(__file__).resolve().parents[1]


class Seen:
    """Marks every event it is given in a bitmap of 1,000 events per key (idempotent, as
    projections on a spine without atomic ``put_many`` must be): a lost event shows as a 0."""

    name = "zz-seen"

    def handles(self, event: Event) -> bool:
        return True

    async def apply(self, event: Event, view: ProjectionView) -> None:
        n = int(event.id.removeprefix("event-"))
        key = f"seen/{n // 1000}"
        bits = int(await view.get(key) or "0", 16) | 1 << (n % 1000)
        await view.put(key, f"{bits:x}")


def _unseen(state: dict[str, bytes]) -> list[int]:
    missing = []
    for n in range(1, EVENTS + 1):
        value = state.get(f"seen/{n // 1000}")
        if value is None or not int(decode_value(value), 16) >> (n % 1000) & 1:
            missing.append(n)
    return missing


def _event(n: int) -> Event:
    name = f"web-{n % OBJECTS}"
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "resourceVersion": str(n)}
    meta["labels"] = {"openova.io/application": f"app-{n % 7}"}
    obj: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    kind = "deleted" if n % 997 == 0 else "changed"
    if kind == "changed":
        obj["spec"] = {"replicas": n % 5 + 1}
        obj["status"] = {"readyReplicas": n % 5 + 1, "observedGeneration": 1}
    return Event.create(
        source="/sovereigns/test/clusters/c1/informer",
        type=f"io.catalyst.k8s.object.{kind}",
        subject=f"k8s.Deployment.shop.{name}",
        data={"object": obj},
        id=f"event-{n}",
    )


def _projections() -> list[Any]:
    settings = load_settings(
        Path("/dev/null"), environ={}, overrides={"data_dir": tempfile.mkdtemp()}
    )
    return [*PluginManager(settings).load(entry_points=()).projections(), Seen()]


async def _cursor(spine: NatsSpine) -> int:
    entry = await (await spine.key_value(ENV)).get(CURSOR_KEY)
    return 0 if entry is None or entry.value is None else int(decode_value(entry.value))


async def test_server_down_at_startup_is_unready_then_recovers(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    spine = NatsSpine(settings_for(server))
    with anyio.fail_after(10):
        await spine.start()  # does not wait for the server
    try:
        readiness = await spine.check()
        assert not readiness.ready
        assert readiness.reason is not None
        assert readiness.reason.startswith("unavailable: nats: cannot connect to nats://127.0.0.1")
        with pytest.raises(BackendUnavailable, match="cannot connect"):
            await spine.publish(ENV, _event(1))
        kv = await spine.key_value(ENV)  # handles are lazy: the service can start
        with pytest.raises(BackendUnavailable):
            await kv.get("a")

        with server:

            async def ready() -> bool:
                return (await spine.check()).ready

            await eventually(ready, within=20)
            assert (await spine.publish(ENV, _event(1))).sequence == 1
            projector = Projector(spine, _projections())
            assert await projector.catch_up(ENV) == 1
            assert await _cursor(spine) == 1
    finally:
        await spine.close()


# The publisher: another process, as event sources are, riding out the restart (an event id
# deduplicates its retries).
PUBLISHER = textwrap.dedent(
    """
    import sys, anyio
    from catalyst_kernel.errors import BackendUnavailable
    from catalyst_nats.settings import NatsSettings
    from catalyst_nats.spine import NatsSpine
    from tests.test_faults import ENV, _event

    async def main(url, count, workers):
        spine = NatsSpine(NatsSettings(servers=(url,), reconnect_wait=0.05, reconnect_wait_max=0.5))
        await spine.start()

        async def publish(first):
            for n in range(first, count + 1, workers):
                while True:
                    try:
                        await spine.publish(ENV, _event(n))
                        break
                    except BackendUnavailable:
                        await anyio.sleep(0.05)

        async with anyio.create_task_group() as tasks:
            for first in range(1, workers + 1):
                tasks.start_soon(publish, first)
        await spine.close()

    anyio.run(main, sys.argv[1], int(sys.argv[2]), 16)
    """
)


async def test_server_restart_mid_run_loses_nothing(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # What the client and the projector went through is shown should the run fail.
    caplog.set_level(logging.INFO, logger="catalyst_nats")
    caplog.set_level(logging.INFO, logger="catalyst_kernel.readside.projector")
    spine = NatsSpine(settings_for(nats_server))
    await spine.start()
    projections = _projections()
    projector = Projector(spine, projections, batch=256, max_wait=0.2)

    async def applied(count: int) -> bool:
        return projector.applied.get(ENV, 0) >= count

    try:
        async with (
            await anyio.open_process(
                [sys.executable, "-c", PUBLISHER, nats_server.url, str(EVENTS)],
                cwd=PLUGIN,
                stdout=None,
                stderr=None,
            ) as publisher,
            anyio.create_task_group() as tasks,
        ):
            tasks.start_soon(projector.run_environment, ENV)
            await eventually(partial(applied, EVENTS // 3), within=300)
            restarted_at = projector.applied[ENV]
            await anyio.to_thread.run_sync(nats_server.restart)
            with anyio.fail_after(300):
                assert await publisher.wait() == 0
            await eventually(partial(applied, EVENTS), within=300)
            tasks.cancel_scope.cancel()
        assert restarted_at < EVENTS, "restarted part-way through"
        assert spine.connection.reconnects >= 1, "the client saw the restart"
        kv = await spine.key_value(ENV)
        _, entries = await kv.snapshot()
        final = {entry.key: entry.value or b"" for entry in entries}
        _, expected = await Projector(spine, projections).project(ENV)
    finally:
        await spine.close()
    assert _unseen(final) == []  # nothing lost
    assert decode_value(final[CURSOR_KEY]) == EVENTS
    # key by key, value by value, as a projection from scratch (naming the keys that differ:
    # a diff of two 3,000-key dictionaries hides them)
    differing = sorted(
        key for key in final.keys() | expected.keys() if final.get(key) != expected.get(key)
    )
    assert differing == [], {key: (final.get(key), expected.get(key)) for key in differing[:10]}
