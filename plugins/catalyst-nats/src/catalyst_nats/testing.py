"""A real ``nats-server`` for tests: free loopback port, JetStream in a temporary store.

::

    from catalyst_nats.binary import find_nats_server
from catalyst_nats.testing import NatsServer

    with NatsServer(tmp_path / "nats") as server:
        settings = NatsSettings(servers=(server.url,))
        ...
        server.restart()  # same port, same store

It needs ``nats-server`` on ``PATH``; :func:`nats_server_binary` says whether there is one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import TYPE_CHECKING, Final

from catalyst_nats.binary import find_nats_server
from catalyst_nats.managed import free_port, wait_for_port

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from types import TracebackType
    from typing import Self

__all__ = ["NatsServer", "nats_server_binary"]

_START_TIMEOUT: Final = 20.0
_STOP_TIMEOUT: Final = 20.0


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable (see :func:`~catalyst_nats.binary.find_nats_server`)."""
    return find_nats_server()


class NatsServer:
    """One ``nats-server`` process; :meth:`start` is bounded, :meth:`stop` always reaps it.

    :param store: the JetStream store directory (kept across :meth:`restart`).
    :param config: a configuration file; its accounts, users and ``jetstream`` block apply
        (the port and address are always the ones chosen here).
    :param port: the port to listen on (default: a free one, kept across restarts).
    :param args: more command-line arguments.
    :param env: environment variables for the server (a configuration's ``$VARIABLES``), on
        top of this process's.
    """

    def __init__(
        self,
        store: Path,
        *,
        config: Path | None = None,
        port: int | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise FileNotFoundError("nats-server is not on PATH")
        self.binary = binary
        self.store = store
        self.config = config
        self.port = port or free_port()
        self.args = tuple(args)
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [self.binary, "--addr", "127.0.0.1", "--port", str(self.port)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        else:
            command += ["--jetstream", "--store_dir", str(self.store)]
        return [*command, "--log", str(self.log), *self.args]

    def start(self) -> Self:
        """Start it and wait (at most 20 s) until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.store.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(),
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, _START_TIMEOUT, self.process)
        except Exception:
            self.stop()
            raise RuntimeError(f"nats-server did not start; log:\n{self.read_log()}") from None
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: SIGTERM (a clean shutdown) or, with ``kill``, SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=_STOP_TIMEOUT)

    def restart(self, *, kill: bool = False) -> Self:
        """Stop and start again on the same port with the same store."""
        self.stop(kill=kill)
        return self.start()

    def read_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text()
        return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
