"""Prometheus metrics of one API app, in a registry of its own (never the process-global one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import Message, Scope

    from catalyst_kernel.api.runtime import ProviderState

__all__ = ["CONTENT_TYPE", "UNMATCHED_ROUTE", "ApiMetrics"]

# The text format generate_latest writes; Litestar adds "; charset=utf-8" to text/* types.
CONTENT_TYPE: Final = "text/plain; version=0.0.4"
# Requests no route matched share one label value, so scanners cannot blow up the series count.
UNMATCHED_ROUTE: Final = "<unmatched>"


class ApiMetrics:
    """``catalyst_http_requests_total`` and ``catalyst_provider_ready``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "catalyst_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.provider_ready = Gauge(
            "catalyst_provider_ready",
            "1 when the slot's provider is started and its readiness check passes, else 0.",
            ("slot", "provider"),
            registry=self.registry,
        )

    async def before_send(self, message: Message, scope: Scope) -> None:
        """Litestar ``before_send`` hook: count each response as its status line goes out."""
        if message["type"] != "http.response.start":
            return
        route = scope.get("path_template") or UNMATCHED_ROUTE
        self.requests.labels(route, scope.get("method", ""), str(message["status"])).inc()

    def record_providers(self, states: Iterable[ProviderState]) -> None:
        for state in states:
            ready = state.active and state.readiness.ready
            self.provider_ready.labels(state.slot.value, state.provider).set(1 if ready else 0)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
