"""The API service's first slice, served by a real uvicorn on a loopback port."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import prometheus_client
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody

from catalyst_kernel.api.app import create_app
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.api.server import serve
from catalyst_kernel.builtin import embedded
from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    PluginError,
    Unauthenticated,
)
from catalyst_kernel.health import Readiness
from catalyst_kernel.plugins.context import HookContext
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.plugins.markers import hookimpl
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import assert_problem, running_service

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-internal-detail"

# -------------------------------------------------------------------------------------------------
# A test extension: routes that exercise the error mapping
# -------------------------------------------------------------------------------------------------


class Item(msgspec.Struct):
    name: str
    count: int


@post("/v1/test/items", sync_to_thread=False)
def create_item(data: JSONBody[Item]) -> dict[str, Any]:
    return {"name": data.name, "count": data.count}


RAISED: dict[str, CatalystError] = {
    "invalid": InvalidInput(
        "the name is too long",
        field="name",
        problems=[FieldProblem.at(["spec", "name"], "at most 63 characters")],
    ),
    "missing": NotFound("Environment 'acme-prod' does not exist"),
    "conflict": Conflict("Application 'shop' already exists"),
    "anonymous": Unauthenticated("the token has expired"),
    "forbidden": Forbidden("org-viewer may not install Applications"),
    "down": BackendUnavailable("the spine cannot be reached"),
    "plugin": PluginError("plugin 'gitea' failed", plugin="gitea"),
}


@get("/v1/test/raise/{kind:str}", sync_to_thread=False)
def raise_error(kind: FromPath[str]) -> None:
    raise RAISED[kind]


@get("/v1/test/crash", sync_to_thread=False)
def crash() -> None:
    raise RuntimeError(f"database password is {SECRET}")


class Extension:
    def __init__(self, name: str, handlers: list[Any]) -> None:
        self.name = name
        self.handlers = handlers

    def route_handlers(self) -> list[Any]:
        return self.handlers


class ExtensionPlugin:
    def __init__(self, *extensions: Extension) -> None:
        self.extensions = list(extensions)

    @hookimpl
    def catalyst_api_extensions(self) -> list[Extension]:
        return self.extensions


class UnreadySpine(SqliteSpine):
    async def check(self) -> Readiness:
        return Readiness.unavailable("nats://10.0.0.1:4222: connection refused")


class SilentSpine(SqliteSpine):
    async def check(self) -> Readiness:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


class SpinePlugin:
    def __init__(self, spine_class: type[SqliteSpine]) -> None:
        self.spine_class = spine_class

    @hookimpl
    def catalyst_spine(self, ctx: HookContext) -> SqliteSpine:
        return self.spine_class(ctx.settings.data_dir / "test-spine.db")


# -------------------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(catalyst_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return catalyst_settings(data_dir=str(tmp_path))


def manager_for(settings: Settings, *plugins: tuple[object, str]) -> PluginManager:
    manager = PluginManager(settings).load(entry_points=())
    for plugin, name in plugins:
        manager.register(plugin, name)
    return manager


def with_test_routes(settings: Settings) -> PluginManager:
    """The built-ins and an extension with the error-mapping routes above."""
    plugin = ExtensionPlugin(Extension("test", [create_item, raise_error, crash]))
    return manager_for(settings, (plugin, "test-api"))


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """Serve an app built here, for the tests that need ``create_app`` arguments (or defaults)
    :func:`running_service` does not pass."""
    async with anyio.create_task_group() as group:
        port = await group.start(serve, app, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
        group.cancel_scope.cancel()


# -------------------------------------------------------------------------------------------------
# Health, readiness, metrics, plugins
# -------------------------------------------------------------------------------------------------


async def test_healthz_answers_ok(settings: Settings) -> None:
    async with running_service(settings) as service:
        response = await service.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_the_embedded_providers(settings: Settings) -> None:
    async with running_service(settings) as service:
        response = await service.client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    for slot in ("spine", "committer", "secrets"):
        assert body["providers"][slot] == {
            "provider": "embedded",
            "active": True,
            "ready": True,
            "reason": None,
        }


async def test_readyz_is_503_with_the_reason_of_an_unready_provider(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(data_dir=str(tmp_path), providers={"spine": "unready"})
    manager = manager_for(settings, (SpinePlugin(UnreadySpine), "unready"))
    async with running_service(settings, manager=manager) as service:
        response = await service.client.get("/readyz")
    body = assert_problem(response, 503, "not-ready")
    spine = body["providers"]["spine"]
    assert spine["provider"] == "unready"
    assert spine["ready"] is False
    assert spine["reason"] == "unavailable: nats://10.0.0.1:4222: connection refused"
    assert "spine (unready): unavailable: nats://10.0.0.1:4222" in body["detail"]
    assert body["providers"]["committer"]["ready"] is True


async def test_readyz_counts_a_check_that_does_not_answer_as_unavailable(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(data_dir=str(tmp_path), providers={"spine": "silent"})
    manager = manager_for(settings, (SpinePlugin(SilentSpine), "silent"))
    async with running_service(settings, manager=manager, check_timeout=0.05) as service:
        with anyio.fail_after(5):
            response = await service.client.get("/readyz")
    body = assert_problem(response, 503, "not-ready")
    assert body["providers"]["spine"]["reason"] == (
        "unavailable: no answer to the readiness check within 0.05s"
    )


async def test_an_unavailable_optional_slot_is_reported_without_blocking_readiness(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(data_dir=str(tmp_path), providers={"identity": "nobody"})
    async with running_service(settings) as service:
        response = await service.client.get("/readyz")
    assert response.status_code == 200, response.text
    identity = response.json()["providers"]["identity"]
    assert identity["active"] is False
    assert identity["ready"] is False
    assert "selects plugin 'nobody', which is not installed" in identity["reason"]


async def test_a_missing_required_provider_stops_the_runtime_from_starting(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(data_dir=str(tmp_path), providers={"spine": "nats"})
    runtime = Runtime(settings, manager_for(settings))
    with pytest.raises(PluginError, match=r"providers\.spine selects plugin 'nats'"):
        async with runtime:
            pass


class _Recorder:
    """Delegates to a real provider, logging start and close."""

    def __init__(self, inner: Any, slot: str, log: list[str]) -> None:
        self._inner = inner
        self._slot = slot
        self._log = log

    async def start(self) -> None:
        self._log.append(f"start {self._slot}")
        await self._inner.start()

    async def close(self) -> None:
        self._log.append(f"close {self._slot}")
        await self._inner.close()

    async def check(self) -> Readiness:
        result: Readiness = await self._inner.check()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingPlugin:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def _embedded(self, ctx: HookContext) -> HookContext:
        return HookContext(ctx.settings, "embedded", embedded.EmbeddedSettings(git_fsync=False))

    @hookimpl
    def catalyst_spine(self, ctx: HookContext) -> Any:
        return _Recorder(embedded.catalyst_spine(self._embedded(ctx)), "spine", self.log)

    @hookimpl
    def catalyst_committer(self, ctx: HookContext) -> Any:
        return _Recorder(embedded.catalyst_committer(self._embedded(ctx)), "committer", self.log)

    @hookimpl
    def catalyst_secrets(self, ctx: HookContext) -> Any:
        return _Recorder(embedded.catalyst_secrets(self._embedded(ctx)), "secrets", self.log)


async def test_the_runtime_closes_providers_in_reverse_order_when_the_server_stops(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    slots = {"spine": "recording", "committer": "recording", "secrets": "recording"}
    settings = catalyst_settings(data_dir=str(tmp_path), providers={**slots, "identity": "nobody"})
    log: list[str] = []
    manager = manager_for(settings, (RecordingPlugin(log), "recording"))
    async with running_service(settings, manager=manager) as service:
        runtime = service.runtime
        assert (await service.client.get("/readyz")).status_code == 200
        assert log == ["start spine", "start committer", "start secrets"]
        assert set(runtime.started) == {Slot.SPINE, Slot.COMMITTER, Slot.SECRETS}
    assert log[3:] == ["close secrets", "close committer", "close spine"]
    assert runtime.started == {}


async def test_v1_plugins_is_the_json_of_catalyst_plugins(
    settings: Settings, run_catalyst: Callable[..., Any], tmp_path: Path
) -> None:
    cli = run_catalyst("plugins", "--json", env={"CATALYST_DATA_DIR": str(tmp_path)})
    assert cli.returncode == 0, cli.stderr
    # No manager given: the app loads the built-ins and installed plugins, as the CLI does.
    token = run_catalyst(
        "token", "--role", "org-viewer", "--org", "acme", env={"CATALYST_DATA_DIR": str(tmp_path)}
    )
    assert token.returncode == 0, token.stderr
    async with serving(create_app(settings)) as client:
        anonymous = await client.get("/v1/plugins")
        response = await client.get(
            "/v1/plugins", headers={"Authorization": f"Bearer {token.stdout.strip()}"}
        )
    assert anonymous.status_code == 401
    assert response.status_code == 200
    assert response.json() == json.loads(cli.stdout)


async def test_every_v1_route_but_webhooks_requires_a_principal(settings: Settings) -> None:
    app = create_app(settings, manager=PluginManager(settings).load(entry_points=()))
    v1_paths = {route.path for route in app.routes if route.path.startswith("/v1/")}
    assert {"/v1/plugins", "/v1/blueprints", "/v1/environments/{env:str}/state"} <= v1_paths
    unguarded = sorted(
        f"{method} {route.path}"
        for route in app.routes
        if route.path.startswith("/v1/") and not route.path.startswith("/v1/webhooks/")
        for handler in getattr(route, "route_handlers", ())
        for method in handler.http_methods
        # Litestar answers OPTIONS itself (CORS preflight); it returns no resource.
        if method != "OPTIONS" and "principal" not in handler.resolve_dependencies()
    )
    assert unguarded == []


async def test_metrics_count_requests_by_route_template_and_report_providers(
    settings: Settings,
) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        for _ in range(3):
            await service.client.get("/healthz")
        await service.client.get("/v1/test/raise/missing")
        await service.client.get("/no/such/route")
        response = await service.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'catalyst_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in text
    assert (
        'catalyst_http_requests_total{method="GET",route="/v1/test/raise/{kind}",status="404"} 1.0'
    ) in text
    assert 'catalyst_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert 'catalyst_provider_ready{provider="embedded",slot="spine"} 1.0' in text
    # The app has a registry of its own: nothing leaks into the process-global one.
    assert prometheus_client.REGISTRY.get_sample_value("catalyst_http_requests_total") is None


async def test_openapi_document_and_interactive_docs_are_served(settings: Settings) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        document = await service.client.get("/schema/openapi.json")
        docs = await service.client.get("/schema/swagger")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {"/healthz", "/readyz", "/v1/plugins", "/v1/test/items"} <= set(paths)
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


# -------------------------------------------------------------------------------------------------
# Problem details
# -------------------------------------------------------------------------------------------------


async def test_an_unknown_route_is_a_404_problem(settings: Settings) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.get("/v1/nothing-here")
    body = assert_problem(response, 404, "route-not-found")
    assert body["detail"] == "no route matches /v1/nothing-here"


async def test_a_wrong_method_is_a_405_problem_with_allow(settings: Settings) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.post("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_a_malformed_json_body_is_a_400_problem(settings: Settings) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.post(
            "/v1/test/items", content=b'{"name": ', headers={"content-type": "application/json"}
        )
    assert_problem(response, 400, "malformed-request")


async def test_a_body_of_the_wrong_shape_is_a_422_problem_with_pointers(
    settings: Settings,
) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.post("/v1/test/items", json={"name": 7, "count": 1})
    body = assert_problem(response, 422, "invalid-input")
    assert body["errors"] == [{"pointer": "/name", "message": "Expected `str`, got `int`"}]


async def test_an_oversized_body_is_a_413_problem(settings: Settings) -> None:
    app = create_app(settings, manager=with_test_routes(settings), max_body_size=64)
    async with serving(app) as client:
        small = await client.post("/v1/test/items", json={"name": "a", "count": 1})
        large = await client.post("/v1/test/items", json={"name": "a" * 100, "count": 1})
    assert small.status_code == 201
    assert_problem(large, 413, "body-too-large")


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("invalid", 422, "invalid-input"),
        ("missing", 404, "not-found"),
        ("conflict", 409, "conflict"),
        ("anonymous", 401, "unauthenticated"),
        ("forbidden", 403, "forbidden"),
        ("down", 503, "backend-unavailable"),
        ("plugin", 500, "plugin-error"),
    ],
)
async def test_catalyst_errors_become_problems_with_their_status_and_code(
    settings: Settings, kind: str, status: int, code: str
) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.get(f"/v1/test/raise/{kind}")
    body = assert_problem(response, status, code)
    assert body["detail"] == RAISED[kind].message
    assert body["code"] == code
    if kind == "anonymous":
        assert response.headers["www-authenticate"] == "Bearer"
    if kind == "invalid":
        assert body["field"] == "name"
        assert body["errors"] == [{"pointer": "/spec/name", "message": "at most 63 characters"}]


async def test_an_unexpected_exception_is_a_500_problem_without_internals(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.get("/v1/test/crash")
    body = assert_problem(response, 500, "internal-error")
    assert SECRET not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "code", "instance"}
    logged = [record.exc_info[1] for record in caplog.records if record.exc_info]
    assert any(SECRET in str(exc) for exc in logged)


# -------------------------------------------------------------------------------------------------
# API extensions
# -------------------------------------------------------------------------------------------------


async def test_an_extension_route_under_v1_is_mounted(settings: Settings) -> None:
    async with running_service(settings, manager=with_test_routes(settings)) as service:
        response = await service.client.post("/v1/test/items", json={"name": "shop", "count": 2})
    assert response.status_code == 201
    assert response.json() == {"name": "shop", "count": 2}


@get("/webhooks/gitea", sync_to_thread=False)
def outside_v1() -> None:
    return None


def test_an_extension_route_outside_v1_is_refused_at_startup(settings: Settings) -> None:
    plugin = ExtensionPlugin(Extension("rogue", [outside_v1]))
    manager = manager_for(settings, (plugin, "rogue"))
    with pytest.raises(PluginError, match=r"'rogue' mounts /webhooks/gitea outside /v1/"):
        create_app(settings, manager=manager)
