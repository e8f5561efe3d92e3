"""Acceptance: SIGKILL the projector part-way through 100,000 events, restart it, and the read
model is exactly what processing the stream once yields — nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_kernel.model import Event
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.readside.projector import CURSOR_KEY, Projector, decode_value
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.settings import load_settings

EVENTS = 100_000
OBJECTS = 1_000

# The projector process: the kernel's registered projections plus a counter that is *not*
# idempotent, so any event applied twice (or lost) shows in count/all.
PROJECTOR = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from catalyst_kernel.plugins import PluginManager
    from catalyst_kernel.readside.projector import Projector
    from catalyst_kernel.readside.sqlite_spine import SqliteSpine
    from catalyst_kernel.settings import load_settings

    class Counter:
        name = "zz-counter"

        def handles(self, event):
            return True

        async def apply(self, event, view):
            await view.put("count/all", (await view.get("count/all") or 0) + 1)

    async def main(path, batch):
        data_dir = str(Path(path).parent)
        settings = load_settings(Path("/dev/null"), environ={}, overrides={"data_dir": data_dir})
        projections = PluginManager(settings).load(entry_points=()).projections()
        spine = SqliteSpine(Path(path))
        await spine.start()
        projector = Projector(spine, [*projections, Counter()], batch=batch, max_wait=0.2)
        await projector.catch_up("acme-prod")
        await spine.close()

    anyio.run(main, sys.argv[1], int(sys.argv[2]))
    """
)


def _event(n: int) -> Event:
    name = f"web-{n % OBJECTS}"
    if n % 997 == 0:
        kind, data = "deleted", {"object": _object(name, n, deleted=True)}
    else:
        kind, data = "changed", {"object": _object(name, n)}
    return Event.create(
        source="/sovereigns/test/clusters/c1/informer",
        type=f"io.catalyst.k8s.object.{kind}",
        subject=f"k8s.Deployment.shop.{name}",
        data=data,
        id=f"event-{n}",
    )


def _object(name: str, n: int, *, deleted: bool = False) -> dict[str, Any]:
    meta = {"name": name, "namespace": "shop", "resourceVersion": str(n)}
    meta["labels"] = {"openova.io/application": f"app-{n % 7}"}
    if deleted:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"replicas": n % 5 + 1},
        "status": {"readyReplicas": n % 5 + 1, "observedGeneration": 1},
    }


async def _publish(path: Path) -> None:
    spine = SqliteSpine(path)
    await spine.start()
    for n in range(1, EVENTS + 1):
        await spine.publish("acme-prod", _event(n))
    await spine.close()


async def _cursor(path: Path) -> int:
    spine = SqliteSpine(path)
    await spine.start()
    try:
        entry = await (await spine.key_value("acme-prod")).get(CURSOR_KEY)
        return 0 if entry is None or entry.value is None else int(decode_value(entry.value))
    finally:
        await spine.close()


async def _final_and_expected(path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    settings = load_settings(
        Path("/dev/null"), environ={}, overrides={"data_dir": str(path.parent)}
    )
    projections = PluginManager(settings).load(entry_points=()).projections()
    spine = SqliteSpine(path)
    await spine.start()
    try:
        _, entries = await (await spine.key_value("acme-prod")).snapshot()
        final = {entry.key: entry.value or b"" for entry in entries}
        _, expected = await Projector(spine, projections).project("acme-prod")
    finally:
        await spine.close()
    return final, expected


def _start(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", PROJECTOR, str(path), "500"], env={**os.environ})


def test_sigkill_mid_stream_then_restart_converges(tmp_path: Path) -> None:
    path = tmp_path / "spine" / "spine.db"
    anyio.run(_publish, path)

    first = _start(path)
    deadline = time.monotonic() + 300
    while (cursor := anyio.run(_cursor, path)) < EVENTS // 3:
        assert first.poll() is None, "the projector finished before it could be killed"
        assert time.monotonic() < deadline, "the projector made no progress"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    killed_at = anyio.run(_cursor, path)
    assert cursor <= killed_at < EVENTS, "killed part-way through the stream"

    second = _start(path)
    assert second.wait(timeout=600) == 0

    final, expected = anyio.run(_final_and_expected, path)
    assert decode_value(final.pop("count/all")) == EVENTS  # none lost, none applied twice
    assert decode_value(final[CURSOR_KEY]) == EVENTS
    assert final == expected  # key by key, value by value


@pytest.mark.parametrize("n", [1, 997, 1_000])
def test_story_events_are_valid(n: int) -> None:
    assert _event(n).subject is not None
