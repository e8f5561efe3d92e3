"""Serving an ASGI app with uvicorn inside an anyio task group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import uvicorn

from catalyst_kernel.errors import BackendUnavailable

if TYPE_CHECKING:
    from anyio.abc import TaskStatus
    from litestar.types import ASGIApp

__all__ = ["serve"]

_POLL_INTERVAL = 0.01


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    graceful_shutdown: int = 10,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve ``app`` on ``host:port`` until cancelled, then shut down gracefully.

    Use ``port = await task_group.start(serve, app, host, 0)`` to wait until the app has started
    (its lifespan included) and learn the port it bound. Cancellation makes uvicorn stop
    accepting, finish requests in flight for up to ``graceful_shutdown`` seconds and run the
    lifespan shutdown, so providers are closed. If the app fails to start (its lifespan raised),
    :class:`BackendUnavailable` is raised; the cause is in uvicorn's log.

    :param options: further :class:`uvicorn.Config` arguments.
    """
    options.setdefault("log_config", None)
    options.setdefault("access_log", False)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        timeout_graceful_shutdown=graceful_shutdown,
        **options,
    )
    server = uvicorn.Server(config)
    finished = anyio.Event()

    async def run() -> None:
        try:
            # Shielded: a cancelled serve() must still run uvicorn's shutdown (and the lifespan's).
            with anyio.CancelScope(shield=True):
                await server.serve()
        finally:
            finished.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        try:
            while not server.started:
                if finished.is_set():
                    raise BackendUnavailable(f"the API service failed to start on {host}:{port}")
                await anyio.sleep(_POLL_INTERVAL)
            sockets = [s for srv in server.servers for s in (srv.sockets or ())]
            task_status.started(sockets[0].getsockname()[1] if sockets else port)
            await finished.wait()
        finally:
            server.should_exit = True
