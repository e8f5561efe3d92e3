"""Readiness of a provider, as reported to ``/readyz`` and ``catalyst plugins``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from attrs import frozen

__all__ = ["Readiness", "Service"]


@frozen
class Readiness:
    """Whether a provider can serve requests now; ``reason`` says why not (``"unavailable: …"``)."""

    ready: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> Readiness:
        return cls(True)

    @classmethod
    def unavailable(cls, reason: str) -> Readiness:
        return cls(False, reason)


@runtime_checkable
class Service(Protocol):
    """What every single-provider slot object has: a start, a stop and a readiness check."""

    async def start(self) -> None:
        """Connect, open files, start background tasks. Called once before first use."""

    async def close(self) -> None:
        """Release everything :meth:`start` acquired. Safe to call twice."""

    async def check(self) -> Readiness:
        """Report readiness without raising; a down backend is ``Readiness.unavailable(...)``."""
