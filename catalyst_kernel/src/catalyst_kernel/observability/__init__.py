"""Logs and traces of the service (SPEC §10); its metrics live with the API
(:mod:`catalyst_kernel.api.metrics`).

- :func:`configure_logging`: JSON (or text) log lines on the root logger, for ``catalyst serve``.
- :func:`tracer_provider_from_settings`, :func:`tracing_plugin`: OpenTelemetry traces of API
  requests, only when an OTLP exporter is configured.
"""

from catalyst_kernel.observability.logs import configure_logging
from catalyst_kernel.observability.tracing import (
    name_span_by_route,
    otlp_traces_endpoint,
    shutdown_tracer_provider,
    tracer_provider_from_settings,
    tracing_plugin,
)

__all__ = [
    "configure_logging",
    "name_span_by_route",
    "otlp_traces_endpoint",
    "shutdown_tracer_provider",
    "tracer_provider_from_settings",
    "tracing_plugin",
]
