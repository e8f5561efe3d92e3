"""The API service's app factory (SPEC §10): health, readiness, metrics, plugins, extensions."""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from catalyst_kernel import __version__
from catalyst_kernel.api.allow import complete_allow_header
from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.catalog import CatalogHolder
from catalyst_kernel.api.metrics import CONTENT_TYPE, ApiMetrics
from catalyst_kernel.api.openapi import SECURITY_COMPONENTS, document_problems
from catalyst_kernel.api.problems import exception_handlers, problem_body, problem_response
from catalyst_kernel.api.routes import kernel_routes
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.errors import PluginError
from catalyst_kernel.identity.permissions import Operation, authorize
from catalyst_kernel.model.principal import Principal  # noqa: TC001 (Litestar reads annotations)
from catalyst_kernel.observability.tracing import (
    name_span_by_route,
    shutdown_tracer_provider,
    tracer_provider_from_settings,
    tracing_plugin,
)
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.plugins.report import plugins_document
from catalyst_kernel.settings import DEFAULT_MAX_BODY_SIZE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar.plugins import PluginProtocol
    from litestar.types import BeforeMessageSendHookHandler, LifespanHook
    from opentelemetry.sdk.trace import TracerProvider

    from catalyst_kernel.settings import Settings

__all__ = ["API_PREFIX", "DEFAULT_MAX_BODY_SIZE", "create_app"]

API_PREFIX: Final = "/v1"
OPENAPI_PATH: Final = "/schema"


@get("/healthz", media_type=MediaType.JSON, tags=["operations"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    """The process is alive (it does not look at providers: see ``/readyz``)."""
    return {"status": "ok"}


@get("/readyz", media_type=MediaType.JSON, tags=["operations"])
async def readyz(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    metrics: NamedDependency[ApiMetrics],
) -> Response[Any]:
    """200 when every active provider is ready, else 503 with each provider's reason."""
    states = await runtime.states()
    metrics.record_providers(states)
    providers = {
        s.slot.value: {
            "provider": s.provider,
            "active": s.active,
            "ready": s.readiness.ready,
            "reason": s.readiness.reason,
        }
        for s in states
    }
    failing = [s for s in states if s.active and not s.readiness.ready]
    if not failing:
        return Response({"status": "ready", "providers": providers})
    detail = "; ".join(f"{s.slot.value} ({s.provider}): {s.readiness.reason}" for s in failing)
    body = problem_body(
        code="not-ready",
        status=int(HTTPStatus.SERVICE_UNAVAILABLE),
        title="Not ready",
        detail=detail,
        instance=request.url.path,
        providers=providers,
    )
    return problem_response(body)


@get("/metrics", tags=["operations"], media_type=CONTENT_TYPE)
async def metrics_endpoint(
    runtime: NamedDependency[Runtime],
    metrics: NamedDependency[ApiMetrics],
) -> Response[bytes]:
    """Prometheus metrics of this process."""
    await metrics.collect(runtime)
    return Response(metrics.render(), media_type=CONTENT_TYPE)


@get(
    f"{API_PREFIX}/plugins",
    media_type=MediaType.JSON,
    tags=["plugins"],
    dependencies=AUTHENTICATED,
    sync_to_thread=False,
)
def list_plugins(
    manager: NamedDependency[PluginManager], principal: NamedDependency[Principal]
) -> dict[str, Any]:
    """Installed plugins, the provider of each slot and load errors (as ``catalyst plugins``)."""
    authorize(principal, Operation.PLUGINS_READ)
    return plugins_document(manager)


def _under_prefix(path: str) -> bool:
    return path.startswith(f"{API_PREFIX}/")


def _extension_routers(manager: PluginManager) -> list[Router]:
    routers = []
    for extension in manager.api_extensions():
        try:
            handlers = list(extension.route_handlers())
            document_problems(handlers)
            router = Router(path="/", route_handlers=handlers)
        except Exception as exc:
            raise PluginError(
                f"API extension {extension.name!r} has invalid routes: {exc}"
            ) from exc
        outside = sorted({route.path for route in router.routes if not _under_prefix(route.path)})
        if outside:
            raise PluginError(
                f"API extension {extension.name!r} mounts {', '.join(outside)} outside "
                f"{API_PREFIX}/; plugin routes must live under {API_PREFIX}/"
            )
        routers.append(router)
    return routers


def _provide(value: object) -> Provide:
    def dependency() -> Any:
        return value

    return Provide(dependency, use_cache=True, sync_to_thread=False)


def create_app(
    settings: Settings,
    *,
    manager: PluginManager | None = None,
    runtime: Runtime | None = None,
    max_body_size: int | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Litestar:
    """Build the API service.

    :param settings: the Sovereign's settings.
    :param manager: a loaded plugin manager (default: load the built-ins and installed plugins).
    :param runtime: the providers' runtime (default: one over ``manager``); the app's lifespan
        enters and exits it. The app's metrics count the commits made through it.
    :param max_body_size: largest request body accepted, in bytes (larger ones get 413;
        default: settings key ``api.max_body_size``).
    :param tracer_provider: trace requests with this provider (the caller shuts it down).
        Default: the one :func:`~catalyst_kernel.observability.tracer_provider_from_settings`
        builds when an OTLP endpoint is configured, shut down with the app; without one,
        requests are not traced and no tracing middleware is installed.
    :raises PluginError: an API extension mounts a route outside ``/v1/``.
    """
    if runtime is not None:
        manager = runtime.manager
    if manager is None:
        manager = PluginManager(settings).load()
        manager.check_settings()
    if runtime is None:
        runtime = Runtime(settings, manager)
    metrics = ApiMetrics(scrape_timeout=runtime.check_timeout)
    runtime.commit_listeners.append(metrics.record_commit)
    active_runtime = runtime
    body_limit = settings.api.max_body_size if max_body_size is None else max_body_size
    before_send: list[BeforeMessageSendHookHandler] = [metrics.before_send, complete_allow_header]
    on_shutdown: list[LifespanHook] = []
    plugins: list[PluginProtocol] = []
    if tracer_provider is None:
        tracer_provider = tracer_provider_from_settings(settings)
        if tracer_provider is not None:
            on_shutdown.append(functools.partial(shutdown_tracer_provider, tracer_provider))
    if tracer_provider is not None:
        plugins.append(tracing_plugin(tracer_provider))
        before_send.append(name_span_by_route)

    @asynccontextmanager
    async def run_providers(_app: Litestar) -> AsyncIterator[None]:
        async with active_runtime:
            yield

    operations = [healthz, readyz, metrics_endpoint, list_plugins]
    document_problems(operations)
    return Litestar(
        route_handlers=[
            *operations,
            *kernel_routes(settings),
            *_extension_routers(manager),
        ],
        dependencies={
            "settings": _provide(settings),
            "manager": _provide(manager),
            "runtime": _provide(runtime),
            "metrics": _provide(metrics),
            "catalog": _provide(CatalogHolder(settings)),
        },
        lifespan=[run_providers],
        on_shutdown=on_shutdown,
        plugins=plugins,
        exception_handlers=exception_handlers(),
        before_send=before_send,
        request_max_body_size=body_limit,
        openapi_config=OpenAPIConfig(
            title="Catalyst",
            version=__version__,
            path=OPENAPI_PATH,
            components=SECURITY_COMPONENTS,
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
        # The host configures logging (JSON logs, SPEC §10); an app must not reconfigure the
        # process's root logger behind its back.
        logging_config=None,
        debug=False,
    )
