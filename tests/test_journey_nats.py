"""The API journey on the NATS spine (issue 7's acceptance), and ``catalyst serve`` riding out a
NATS server that is down when it starts.

The journey is the embedded spine's, run unchanged (``tests/test_journey_api.py``): only the
``service`` fixture differs, selecting ``providers.spine = "nats"`` against a real nats-server.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

testing = pytest.importorskip("catalyst_nats.testing")
if testing.nats_server_binary() is None:  # pragma: no cover - uv sync installs it
    pytest.fail("nats-server not found: uv sync installs it (catalyst-nats[server])", pytrace=False)

from catalyst_nats.managed import free_port  # noqa: E402
from catalyst_nats.spine import NatsSpine  # noqa: E402
from catalyst_nats.testing import NatsServer  # noqa: E402

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
CATALYST = str(Path(sys.executable).with_name("catalyst"))


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_catalyst_journey_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


journey = _load(ROOT / "tests" / "test_journey_api.py")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path, nats_server: NatsServer
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(
        data_dir=str(tmp_path / "data"),
        sovereign="journey",
        catalog_paths=[str(ROOT / "catalog")],
        providers={"spine": "nats"},
        plugins={
            "core": {"flux_webhook_secrets": {journey.ENV: journey.FLUX_SECRET}},
            "nats": {"servers": [nats_server.url], "reconnect_wait_max": 1.0},
        },
    )
    manager = PluginManager(settings, strict=True).load(
        entry_points=importlib.metadata.entry_points(group="catalyst", name="nats")
    )
    async with running_service(
        settings, manager=manager, projector=True, client_timeout=30
    ) as service:
        assert isinstance(service.runtime.spine, NatsSpine)
        yield service


# The embedded spine's journey, collected here with this module's ``service`` fixture.
test_the_api_journey = journey.test_the_api_journey


def _served_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "serving on " in line:
            return line.split("serving on ", 1)[1].split()[0]
    raise AssertionError("".join(seen))


def test_serve_on_nats_is_unready_until_the_server_comes_up(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CATALYST_")}
    environ |= {
        "CATALYST_PROVIDERS__SPINE": "nats",
        "CATALYST_PLUGINS__NATS__SERVERS": server.url,
        "CATALYST_PLUGINS__NATS__RECONNECT_WAIT_MAX": "0.5",
        "CATALYST_OBSERVABILITY__LOG_LEVEL": "error",
    }
    process = subprocess.Popen(
        [CATALYST, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        cwd=tmp_path,
        env=environ,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = _served_url(process)
        with httpx.Client(base_url=base, timeout=30) as client:
            down = client.get("/readyz")
            assert down.status_code == 503, down.text
            spine = down.json()["providers"]["spine"]
            assert spine["provider"] == "nats"
            assert not spine["ready"]
            assert spine["reason"].startswith(f"unavailable: nats: cannot connect to {server.url}")

            with server:  # no restart of Catalyst: it connects once the server is up
                for _ in range(200):
                    ready = client.get("/readyz")
                    if ready.status_code == 200:
                        break
                    time.sleep(0.05)
                assert ready.status_code == 200, ready.text
                assert ready.json()["providers"]["spine"]["provider"] == "nats"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 1, -signal.SIGINT)
