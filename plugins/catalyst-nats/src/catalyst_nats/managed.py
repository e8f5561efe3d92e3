"""Managed mode: a local ``nats-server`` with JetStream, started and stopped with the spine.

For single-node installations: the server listens on loopback only and keeps JetStream under
the plugin's data directory, so a restart of Catalyst finds every stream where it left it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Final

import anyio

from catalyst_kernel.errors import BackendUnavailable
from catalyst_nats.binary import find_nats_server

if TYPE_CHECKING:
    from pathlib import Path

    from catalyst_nats.settings import NatsSettings

__all__ = ["ManagedServer", "free_port", "wait_for_port"]

_HOST: Final = "127.0.0.1"
_POLL: Final = 0.02


def free_port(host: str = _HOST) -> int:
    """A TCP port nothing listens on now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once something accepts connections on ``port``; :class:`BackendUnavailable`
    after ``timeout`` seconds or if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise BackendUnavailable(f"nats-server exited with status {process.returncode}")
        try:
            with socket.create_connection((_HOST, port), timeout=_POLL * 5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"nats-server did not accept connections on port {port} within {timeout:g} s"
                ) from None
            time.sleep(_POLL)


class ManagedServer:
    """A ``nats-server -js`` child process on loopback.

    :param settings: the plugin's settings (``managed_binary``, ``managed_port``,
        ``connect_timeout``).
    :param store: the JetStream store directory (created).
    """

    def __init__(self, settings: NatsSettings, store: Path) -> None:
        self.settings = settings
        self.store = store
        self.port = settings.managed_port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def reason(self) -> str:
        process = self._process
        if process is None:
            return "not started"
        if process.poll() is None:
            return "running"
        return f"exit status {process.returncode} (log: {self.store / 'nats-server.log'})"

    async def start(self) -> str:
        """Start the server and return its URL once it accepts connections."""
        binary = find_nats_server(self.settings.managed_binary)
        if binary is None:
            raise BackendUnavailable(
                f"managed mode: {self.settings.managed_binary!r} is not on PATH; install "
                "catalyst-nats[server] (or nats-server) or set plugins.nats.managed = false and "
                "point servers at one"
            )
        self.store.mkdir(parents=True, exist_ok=True)
        port = self.port or free_port()
        command = [
            binary,
            "--jetstream",
            "--store_dir",
            str(self.store),
            "--addr",
            _HOST,
            "--port",
            str(port),
            "--server_name",
            "catalyst",
            "--log",
            str(self.store / "nats-server.log"),
        ]

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        self._process = await anyio.to_thread.run_sync(spawn)
        try:
            await anyio.to_thread.run_sync(
                wait_for_port, port, self.settings.connect_timeout * 4, self._process
            )
        except BackendUnavailable as exc:
            await self.stop()
            raise BackendUnavailable(f"managed mode: {exc} (log: {self.store})") from None
        self.port = port
        return f"nats://{_HOST}:{port}"

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()

        def wait() -> None:
            try:
                process.wait(timeout=self.settings.connect_timeout * 2)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=self.settings.connect_timeout)

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(wait)
