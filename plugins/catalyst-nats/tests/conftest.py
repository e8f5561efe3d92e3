"""Fixtures: a real nats-server per test on a free loopback port, JetStream in ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer, nats_server_binary

if nats_server_binary() is None:  # pragma: no cover - uv sync installs it
    # A failure, not a skip: a run without the server must not pass for a run with it.
    pytest.fail(
        "nats-server not found: uv sync installs it (catalyst-nats[server]); "
        "CATALYST_NATS_SERVER names another executable",
        pytrace=False,
    )

SpineMaker = Callable[..., AbstractAsyncContextManager[NatsSpine]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A started nats-server with JetStream; stopped after the test."""
    with NatsServer(tmp_path / "nats") as server:
        yield server


def settings_for(server: NatsServer, **overrides: Any) -> NatsSettings:
    """Settings for ``server`` with test-friendly (short) waits."""
    values: dict[str, Any] = {
        "servers": (server.url,),
        "connect_timeout": 2.0,
        "request_timeout": 5.0,
        "reconnect_wait": 0.05,
        "reconnect_wait_max": 0.5,
        "outage_grace": 30.0,
    }
    values.update(overrides)
    return NatsSettings(**values)


@pytest.fixture
def make_spine(nats_server: NatsServer) -> SpineMaker:
    """``async with make_spine(**settings) as spine:`` a started spine on ``nats_server``."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[NatsSpine]:
        spine = NatsSpine(settings_for(nats_server, **overrides))
        await spine.start()
        try:
            yield spine
        finally:
            await spine.close()

    return make


async def eventually(condition: Callable[[], Awaitable[bool]], *, within: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    with anyio.fail_after(within):
        while True:
            if await condition():
                return
            await anyio.sleep(0.02)
