"""Managed mode: the spine starts its own nats-server, with JetStream under the data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.model import Event
from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine

pytestmark = pytest.mark.anyio


def _managed(data_dir: Path, **overrides: Any) -> NatsSpine:
    return NatsSpine(
        NatsSettings(managed=True, managed_port=0, connect_timeout=2.0, **overrides),
        data_dir=data_dir,
    )


async def test_the_managed_server_keeps_events_across_restarts(tmp_path: Path) -> None:
    event = Event.create(source="/t", type="io.catalyst.test", subject="test.x", id="e-1")
    spine = _managed(tmp_path)
    await spine.start()
    try:
        assert (await spine.check()).ready
        assert spine.managed is not None
        assert spine.managed.alive
        await spine.publish("acme-dev", event)
        await (await spine.key_value("acme-dev")).put("app/web", b"running")
    finally:
        await spine.close()
    assert spine.managed is not None
    assert not spine.managed.alive
    assert (tmp_path / "jetstream" / "jetstream").is_dir()

    again = _managed(tmp_path)
    await again.start()
    try:
        assert [d.event for d in await again.read("acme-dev")] == [event]
        entry = await (await again.key_value("acme-dev")).get("app/web")
        assert entry is not None
        assert entry.value == b"running"
    finally:
        await again.close()


async def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    spine = _managed(tmp_path, managed_binary="no-such-nats-server")
    with pytest.raises(BackendUnavailable, match="not on PATH"):
        await spine.start()
