"""OpenTelemetry traces of API requests, exported over OTLP/HTTP when an endpoint is configured.

Without an endpoint there is no tracer provider, no Litestar plugin and no middleware: tracing
costs nothing. With one, every request but the probes (``/healthz``, ``/readyz``, ``/metrics``)
gets one server span, named ``<METHOD> <route template>`` (``GET /v1/environments/{env}/state``)
so a trace backend groups requests by route, not by raw path.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final, cast

import anyio.to_thread
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from catalyst_kernel import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar.types import Message, Scope
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

    from catalyst_kernel.settings import Settings

__all__ = [
    "TRACES_PATH",
    "UNTRACED_PATHS",
    "name_span_by_route",
    "otlp_traces_endpoint",
    "shutdown_tracer_provider",
    "tracer_provider_from_settings",
    "tracing_plugin",
]

TRACES_PATH: Final = "/v1/traces"
"""Appended to a base OTLP/HTTP endpoint, as the OpenTelemetry specification says."""

UNTRACED_PATHS: Final = ("/healthz", "/readyz", "/metrics")
"""Probes and scrapes: frequent, uninteresting, and they would drown the traces that matter."""

TRACES_ENDPOINT_ENV: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENDPOINT_ENV: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
SDK_DISABLED_ENV: Final = "OTEL_SDK_DISABLED"

_HTTP_ROUTE: Final = "http.route"
_SOVEREIGN: Final = "catalyst.sovereign"
# The ASGI scope is shared by the tracing middleware and the router: the middleware leaves the
# server span here, the router the route template, and name_span_by_route puts them together.
_SPAN_KEY: Final = "catalyst.server_span"


def _traces_url(base: str) -> str:
    return base.rstrip("/") + TRACES_PATH


def otlp_traces_endpoint(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> str | None:
    """The URL spans are exported to, or ``None`` when tracing is off.

    Settings key ``observability.otlp_endpoint`` (a base URL: ``/v1/traces`` is appended) wins;
    then ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as it is); then
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL). ``OTEL_SDK_DISABLED=true`` turns tracing off
    whatever is configured.

    :param environ: the environment variables (default ``os.environ``).
    """
    environ = os.environ if environ is None else environ
    if environ.get(SDK_DISABLED_ENV, "").strip().lower() == "true":
        return None
    if settings.observability.otlp_endpoint:
        return _traces_url(settings.observability.otlp_endpoint)
    if environ.get(TRACES_ENDPOINT_ENV, "").strip():
        return environ[TRACES_ENDPOINT_ENV].strip()
    if environ.get(ENDPOINT_ENV, "").strip():
        return _traces_url(environ[ENDPOINT_ENV].strip())
    return None


def tracer_provider_from_settings(
    settings: Settings,
    *,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """An SDK tracer provider exporting spans in batches, or ``None`` when tracing is off.

    The provider is not made the process's global one: :func:`tracing_plugin` hands it to the
    app, so two apps in one process trace independently. Spans carry the resource attributes
    ``service.name`` (settings key ``observability.service_name``), ``service.version`` and
    ``catalyst.sovereign``, plus any from ``OTEL_RESOURCE_ATTRIBUTES``; ``OTEL_TRACES_SAMPLER``
    and the ``OTEL_EXPORTER_OTLP_*`` headers, timeout and TLS variables apply as usual.

    :param settings: the Sovereign's settings.
    :param exporter: export to this instead of OTLP/HTTP (tests pass an in-memory exporter);
        tracing is then on whatever the endpoint settings say.
    :param environ: the environment variables (default ``os.environ``), see
        :func:`otlp_traces_endpoint`.
    :return: the provider, or ``None`` without an exporter or a configured endpoint. Whoever
        gets a provider shuts it down (:func:`shutdown_tracer_provider`) to flush the last spans.
    """
    if exporter is None:
        endpoint = otlp_traces_endpoint(settings, environ)
        if endpoint is None:
            return None
        exporter = OTLPSpanExporter(endpoint=endpoint)
    resource = Resource.create(
        {
            SERVICE_NAME: settings.observability.service_name,
            SERVICE_VERSION: __version__,
            _SOVEREIGN: settings.sovereign,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


async def shutdown_tracer_provider(provider: TracerProvider) -> None:
    """Export the spans still queued and stop ``provider`` (in a worker thread: the final export
    may wait for the collector)."""
    await anyio.to_thread.run_sync(provider.shutdown)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span starts before routing: it is named after the method alone (the semantic
    # conventions' name for a request without a route) until name_span_by_route knows more.
    method = str(scope.get("method", "")).strip()
    return method or "HTTP", {}


def _remember_span(span: Span, scope: dict[str, Any]) -> None:
    scope[_SPAN_KEY] = span


def tracing_plugin(tracer_provider: TracerProvider) -> OpenTelemetryPlugin:
    """The Litestar plugin tracing every request but :data:`UNTRACED_PATHS` with
    ``tracer_provider``: one server span per request (no spans per ASGI message, which a
    long-lived event stream would multiply). Install :func:`name_span_by_route` as a
    ``before_send`` hook of the same app to name the spans by route template."""
    config = OpenTelemetryConfig(
        tracer_provider=tracer_provider,
        scope_span_details_extractor=_span_details,
        server_request_hook_handler=_remember_span,
        exclude=[f"^{path}$" for path in UNTRACED_PATHS],
        exclude_spans=["receive", "send"],
    )
    return OpenTelemetryPlugin(config)


async def name_span_by_route(message: Message, scope: Scope) -> None:
    """Litestar ``before_send`` hook: when the response starts, name the request's server span
    ``<METHOD> <route template>`` and set its ``http.route``. A request no route matched keeps
    the method alone, so unknown paths cannot multiply span names."""
    if message["type"] != "http.response.start":
        return
    state = cast("Mapping[str, Any]", scope)
    span: Span | None = state.get(_SPAN_KEY)
    template = state.get("path_template")
    if span is None or not template:
        return
    span.update_name(f"{state.get('method', '')} {template}".strip())
    span.set_attribute(_HTTP_ROUTE, template)
