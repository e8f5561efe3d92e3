"""The API-extension slot: routes a plugin adds to the service (webhook receivers and such)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ApiExtension"]


@runtime_checkable
class ApiExtension(Protocol):
    """A named set of Litestar route handlers mounted by the API service.

    Paths must live under ``/v1/``; authorization is the extension's own duty for webhook routes
    (signatures) and the kernel's for everything else.
    """

    name: str

    def route_handlers(self) -> Sequence[Any]:
        """Litestar route handlers, controllers or routers."""
