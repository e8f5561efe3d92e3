"""Prometheus metrics of one API app, in a registry of its own (never the process-global one).

Requests and commits are counted as they happen; provider readiness, SSE clients and projector
lag are read from the runtime when ``/metrics`` is scraped (:meth:`ApiMetrics.collect`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from catalyst_kernel.errors import CatalystError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from litestar.types import Message, Scope

    from catalyst_kernel.api.runtime import ProviderState, Runtime
    from catalyst_kernel.provisioning.publishing import CommitKind
    from catalyst_kernel.readside.fanout import FanoutCounters
    from catalyst_kernel.readside.projector import Projector
    from catalyst_kernel.readside.spine import Spine

__all__ = ["CONTENT_TYPE", "UNMATCHED_ROUTE", "ApiMetrics", "last_sequence"]

logger = logging.getLogger(__name__)

# The text format generate_latest writes; Litestar adds "; charset=utf-8" to text/* types.
CONTENT_TYPE: Final = "text/plain; version=0.0.4"
# Requests no route matched share one label value, so scanners cannot blow up the series count.
UNMATCHED_ROUTE: Final = "<unmatched>"


async def last_sequence(spine: Spine, environment: str, after: int) -> int:
    """The last sequence of ``environment``'s stream, or ``after`` when nothing follows it.

    Found with one-event reads, doubling the step and then bisecting, so a backlog of ``n``
    events costs about ``2 log2 n`` reads, and an idle stream one.
    """
    # Invariant: ``low`` is ``after`` or an existing sequence; no event is at ``high`` or beyond.
    low, step = after, 1
    while True:
        probe = low + step
        page = await spine.read(environment, probe - 1, 1)
        if not page:
            high = probe
            break
        low, step = page[0].sequence, step * 2
    while high - low > 1:
        middle = (low + high) // 2
        page = await spine.read(environment, middle - 1, 1)
        if page and page[0].sequence < high:
            low = page[0].sequence
        else:
            high = middle
    return low


class ApiMetrics:
    """``catalyst_http_requests_total``, ``catalyst_provider_ready``, ``catalyst_sse_clients``,
    ``catalyst_projector_lag_events`` and ``catalyst_commits_total``.

    :param scrape_timeout: seconds :meth:`collect` may spend reading the spine for the
        projector lag; past it the lag is left out of that scrape.
    """

    def __init__(self, *, scrape_timeout: float = 5.0) -> None:
        self.scrape_timeout = scrape_timeout
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
        self.sse_clients = Gauge(
            "catalyst_sse_clients",
            "Event-stream (SSE) clients connected now, by Environment.",
            ("environment",),
            registry=self.registry,
        )
        self.projector_lag = Gauge(
            "catalyst_projector_lag_events",
            "Events in the Environment's stream the in-process projector has not applied yet.",
            ("environment",),
            registry=self.registry,
        )
        self.commits = Counter(
            "catalyst_commits",
            "Commits made through this process, by Environment and kind "
            "(repository, commit, merge).",
            ("environment", "kind"),
            registry=self.registry,
        )

    async def before_send(self, message: Message, scope: Scope) -> None:
        """Litestar ``before_send`` hook: count each response as its status line goes out."""
        if message["type"] != "http.response.start":
            return
        route = scope.get("path_template") or UNMATCHED_ROUTE
        self.requests.labels(route, scope.get("method", ""), str(message["status"])).inc()

    def record_commit(self, environment: str, kind: CommitKind) -> None:
        """Count one commit (a :attr:`Runtime.commit_listeners` callback)."""
        self.commits.labels(environment, kind).inc()

    def record_providers(self, states: Iterable[ProviderState]) -> None:
        for state in states:
            ready = state.active and state.readiness.ready
            self.provider_ready.labels(state.slot.value, state.provider).set(1 if ready else 0)

    def record_sse(self, counters: Mapping[str, FanoutCounters]) -> None:
        """Set the SSE client gauge from the fan-out hub's counters (series of Environments the
        hub no longer knows are dropped)."""
        self.sse_clients.clear()
        for environment, counter in counters.items():
            self.sse_clients.labels(environment).set(counter.subscribers)

    async def record_projector(self, projector: Projector | None) -> None:
        """Set the lag gauge of every Environment from ``projector`` (none: no series)."""
        lags: dict[str, int] = {}
        if projector is not None:
            try:
                with anyio.fail_after(self.scrape_timeout):
                    for environment in await projector.spine.environments():
                        applied = projector.applied.get(environment)
                        if applied is None:
                            # Nothing applied since this process started: the stored cursor.
                            applied = await projector.cursor(environment)
                        head = await last_sequence(projector.spine, environment, applied)
                        lags[environment] = head - applied
            except (TimeoutError, CatalystError) as exc:
                # An unknown lag is left out rather than reported stale; /readyz says why.
                logger.warning("projector lag not measured: %s", exc or "timed out")
                lags = {}
        self.projector_lag.clear()
        for environment, lag in lags.items():
            self.projector_lag.labels(environment).set(lag)

    async def collect(self, runtime: Runtime) -> None:
        """Read what is measured at scrape time from ``runtime``."""
        self.record_providers(await runtime.states())
        self.record_sse(runtime.fanout_counters())
        await self.record_projector(runtime.projector)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
