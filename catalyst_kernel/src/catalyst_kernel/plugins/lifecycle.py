"""The lifecycle slot: code that runs when the service starts and stops."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["LifecycleHandler"]


@runtime_checkable
class LifecycleHandler(Protocol):
    """Started in plugin-name order after the providers, stopped in reverse order."""

    async def startup(self) -> None:
        """Run once when the service starts; raising marks the plugin as failed."""

    async def shutdown(self) -> None:
        """Run once when the service stops."""
