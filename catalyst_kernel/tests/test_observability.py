"""Observability (SPEC §10): API settings, JSON logs, traces and metrics, over a real uvicorn."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from litestar import Litestar, Request, post
from litestar.plugins.opentelemetry import OpenTelemetryPlugin
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from catalyst_kernel.api.app import create_app
from catalyst_kernel.api.metrics import ApiMetrics, last_sequence
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.api.server import serve
from catalyst_kernel.errors import SettingsError
from catalyst_kernel.model import Event, FileAction, FileChange
from catalyst_kernel.observability import (
    configure_logging,
    otlp_traces_endpoint,
    tracer_provider_from_settings,
)
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    CommitRequest,
)
from catalyst_kernel.readside.fanout import DEFAULT_BUFFER_SIZE, DEFAULT_KEEPALIVE
from catalyst_kernel.readside.projector import Projector
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.settings import LogFormat, LogLevel, Settings, load_settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
EVENTS = f"/v1/environments/{ENV}/events"
STATE = f"/v1/environments/{ENV}/state"
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@pytest.fixture
def settings(catalyst_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return catalyst_settings(data_dir=str(tmp_path))


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tests see must not depend on the OTEL_* variables of the machine running them."""
    for variable in OTEL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored (handlers and level) after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalyst.toml"
    path.write_text(text)
    return path


def install_request(name: str = "shop", action: FileAction = FileAction.ADD) -> CommitRequest:
    return CommitRequest(
        environment=ENV,
        message=f"Install {name}",
        files=(FileChange(f"applications/{name}/values.yaml", action, "{}\n"),),
        actor="alice",
        operation_id=f"op-{name}",
        applications=(ApplicationChange(name, ApplicationAction.INSTALL, "bp-web", "1.0.0"),),
    )


async def metrics_text(service: ApiService) -> str:
    response = await service.client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def wait_for_metric(service: ApiService, line: str) -> str:
    """The metrics once they show ``line`` (what the server measures moves on its own schedule)."""
    with anyio.fail_after(10):
        for _ in range(1000):
            text = await metrics_text(service)
            if line in text:
                return text
            await anyio.sleep(0.05)
    raise AssertionError(f"the metrics never showed {line!r}")


@asynccontextmanager
async def serving(
    settings: Settings, *, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[ApiService]:
    """Like :func:`running_service`, for the ``create_app`` arguments it does not pass."""
    runtime = Runtime(settings, PluginManager(settings).load(entry_points=()))
    app = create_app(settings, runtime=runtime, tracer_provider=tracer_provider)
    async with anyio.create_task_group() as group:
        port = await group.start(serve, app, "127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield ApiService(client, runtime)
        group.cancel_scope.cancel()


# -------------------------------------------------------------------------------------------------
# Settings
# -------------------------------------------------------------------------------------------------


def test_api_and_observability_defaults() -> None:
    settings = load_settings(Path("/dev/null"), environ={})
    assert settings.api.max_body_size == 1024 * 1024
    assert settings.api.sse_keepalive == DEFAULT_KEEPALIVE
    assert settings.api.sse_buffer_size == DEFAULT_BUFFER_SIZE
    assert settings.observability.log_format is LogFormat.JSON
    assert settings.observability.log_level is LogLevel.INFO
    assert settings.observability.otlp_endpoint is None
    assert settings.observability.service_name == "catalyst"


def test_api_and_observability_keys_come_from_the_file_then_the_environment(
    tmp_path: Path,
) -> None:
    path = _toml(
        tmp_path,
        "[api]\nmax_body_size = 4096\nsse_keepalive = 5\nsse_buffer_size = 16\n"
        '[observability]\nlog_format = "text"\nlog_level = "debug"\n'
        'otlp_endpoint = "http://collector:4318"\nservice_name = "catalyst-omantel"\n',
    )
    settings = load_settings(
        path,
        environ={
            "CATALYST_API__SSE_KEEPALIVE": "2.5",
            "CATALYST_OBSERVABILITY__LOG_LEVEL": "WARNING",
        },
    )
    assert settings.api.max_body_size == 4096
    assert settings.api.sse_keepalive == 2.5
    assert settings.api.sse_buffer_size == 16
    assert settings.observability.log_format is LogFormat.TEXT
    assert settings.observability.log_level is LogLevel.WARNING
    assert settings.observability.otlp_endpoint == "http://collector:4318"
    assert settings.observability.service_name == "catalyst-omantel"


@pytest.mark.parametrize(
    ("variable", "value", "key", "fragment"),
    [
        ("CATALYST_API__MAX_BODY_SIZE", "512", "api.max_body_size", "at least 1024"),
        ("CATALYST_API__MAX_BODY_SIZE", "1MB", "api.max_body_size", "expected an integer"),
        ("CATALYST_API__SSE_KEEPALIVE", "0", "api.sse_keepalive", "must be positive"),
        ("CATALYST_API__SSE_KEEPALIVE", "soon", "api.sse_keepalive", "expected a number"),
        ("CATALYST_API__SSE_BUFFER_SIZE", "0", "api.sse_buffer_size", "at least 1"),
        ("CATALYST_API__SSE_BUFER_SIZE", "8", "api.sse_bufer_size", "unknown key"),
        ("CATALYST_OBSERVABILITY__LOG_FORMAT", "xml", "observability.log_format", "'json'"),
        ("CATALYST_OBSERVABILITY__LOG_LEVEL", "loud", "observability.log_level", "'debug'"),
        (
            "CATALYST_OBSERVABILITY__OTLP_ENDPOINT",
            "collector:4318",
            "observability.otlp_endpoint",
            "http:// or https:// URL",
        ),
        ("CATALYST_OBSERVABILITY__SERVICE_NAME", "", "observability.service_name", "empty"),
    ],
)
def test_bad_api_and_observability_values_name_the_key(
    variable: str, value: str, key: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Path("/dev/null"), environ={variable: value})
    assert caught.value.field == key
    assert f"settings key {key} (from environment variable {variable})" in str(caught.value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[api]\nmax_body_size = "1MiB"\n', "api.max_body_size", "expected an integer"),
        ("[api]\nsse_keepalive = -1\n", "api.sse_keepalive", "must be positive"),
        ("[observability]\nlog_format = 1\n", "observability.log_format", "'text'"),
        ('api = "big"\n', "api", ""),
    ],
)
def test_bad_api_and_observability_values_in_the_file_name_the_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = _toml(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={})
    assert caught.value.field == key
    assert f"settings key {key} (from {path})" in str(caught.value)
    assert fragment in str(caught.value)


def test_the_runtime_takes_its_sse_settings_unless_given(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(api={"sse_keepalive": 3, "sse_buffer_size": 8})
    manager = PluginManager(settings).load(entry_points=())
    runtime = Runtime(settings, manager)
    assert (runtime.sse_keepalive, runtime.sse_buffer_size) == (3.0, 8)
    explicit = Runtime(settings, manager, sse_keepalive=0.5, sse_buffer_size=2)
    assert (explicit.sse_keepalive, explicit.sse_buffer_size) == (0.5, 2)


async def test_the_body_limit_comes_from_settings(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(api={"max_body_size": 1024})
    async with running_service(settings) as service:
        admin = service.auth("sovereign-admin", org=None)
        small = await service.client.post("/v1/organizations", json={"name": "acme"}, headers=admin)
        large = await service.client.post(
            "/v1/organizations", json={"name": "globex", "padding": "x" * 2000}, headers=admin
        )
    assert small.status_code == 201, small.text
    assert_problem(large, 413, "body-too-large")


# -------------------------------------------------------------------------------------------------
# Logs
# -------------------------------------------------------------------------------------------------


def test_json_log_lines_hold_timestamp_level_logger_message_and_extras(
    settings: Settings, root_logger: logging.Logger
) -> None:
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    logging.getLogger("catalyst.test").warning(
        "installed %s", "shop", extra={"environment": ENV, "revision": 7}
    )
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "catalyst.test"
    assert record["message"] == "installed shop"
    assert record["environment"] == ENV
    assert record["revision"] == 7
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", record["timestamp"])
    assert "trace_id" not in record


def test_an_exception_is_logged_inside_its_json_line(
    settings: Settings, root_logger: logging.Logger
) -> None:
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("catalyst.test").exception("failed")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert "ValueError: boom" in record["exc_info"]


def test_configuring_logging_twice_keeps_one_handler(
    settings: Settings, root_logger: logging.Logger
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(settings, stream=first)
    handler = configure_logging(settings, stream=second)
    logging.getLogger("catalyst.test").warning("once")
    assert first.getvalue() == ""
    assert len(second.getvalue().splitlines()) == 1
    assert sum(h is handler for h in root_logger.handlers) == 1
    assert sum(type(h) is type(handler) for h in root_logger.handlers) == 1


def test_text_format_and_level_come_from_settings(
    catalyst_settings: Callable[..., Settings], root_logger: logging.Logger
) -> None:
    settings = catalyst_settings(observability={"log_format": "text", "log_level": "warning"})
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    logging.getLogger("catalyst.test").info("not shown")
    logging.getLogger("catalyst.test").warning("shown")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" WARNING catalyst.test: shown")
    assert root_logger.level == logging.WARNING


def test_a_json_log_line_inside_a_span_names_the_trace(
    settings: Settings, root_logger: logging.Logger
) -> None:
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("work") as span:
        logging.getLogger("catalyst.test").warning("inside")
    record = json.loads(stream.getvalue())
    context = span.get_span_context()
    assert record["trace_id"] == format(context.trace_id, "032x")
    assert record["span_id"] == format(context.span_id, "016x")


# -------------------------------------------------------------------------------------------------
# Traces
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "environ", "expected"),
    [
        (None, {}, None),
        ("http://c:4318/", {}, "http://c:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}, "http://env:4318/v1/traces"),
        (
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4318/custom",
            },
            "http://env:4318/custom",
        ),
        (
            "http://c:4318",
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4318/custom"},
            "http://c:4318/v1/traces",
        ),
        ("http://c:4318", {"OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_the_traces_endpoint_comes_from_settings_then_the_standard_variables(
    catalyst_settings: Callable[..., Settings],
    setting: str | None,
    environ: dict[str, str],
    expected: str | None,
) -> None:
    settings = catalyst_settings(observability={"otlp_endpoint": setting} if setting else {})
    assert otlp_traces_endpoint(settings, environ) == expected


def test_without_an_exporter_no_tracing_plugin_is_installed(settings: Settings) -> None:
    assert tracer_provider_from_settings(settings) is None
    app = create_app(settings, manager=PluginManager(settings).load(entry_points=()))
    assert not any(isinstance(plugin, OpenTelemetryPlugin) for plugin in app.plugins)
    assert app.middleware == []


async def test_a_request_span_is_named_by_its_route_template(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider_from_settings(settings, exporter=exporter, environ={})
    assert provider is not None
    async with serving(settings, tracer_provider=provider) as service:
        await service.create_environment(ENV)
        state = await service.client.get(STATE, headers=service.auth("org-viewer"))
        missing = await service.client.get(
            "/v1/environments/acme-prod/state", headers=service.auth()
        )
        unknown = await service.client.get("/no/such/route")
        probe = await service.client.get("/healthz")
    assert (state.status_code, missing.status_code, unknown.status_code) == (200, 404, 404)
    assert probe.status_code == 200
    provider.force_flush()
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    # Both Environments' requests share one span name: the template, never the raw path.
    route = "GET /v1/environments/{env}/state"
    assert len(by_name[route]) == 2
    (span, _) = by_name[route]
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/environments/{env}/state"
    assert span.resource.attributes["service.name"] == "catalyst"
    assert span.resource.attributes["catalyst.sovereign"] == settings.sovereign
    assert "GET" in by_name  # the unmatched request: its method only
    assert not [span for span in spans if "acme-dev" in span.name or "no/such" in span.name]
    assert not [span for span in spans if "healthz" in span.name]


async def test_spans_reach_the_otlp_collector_named_in_settings(
    catalyst_settings: Callable[..., Settings],
) -> None:
    received: list[ExportTraceServiceRequest] = []

    @post("/v1/traces", status_code=200)
    async def collect(request: Request[Any, Any, Any]) -> bytes:
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return ExportTraceServiceResponse().SerializeToString()

    collector = Litestar([collect], logging_config=None)
    async with anyio.create_task_group() as group:
        port = await group.start(serve, collector, "127.0.0.1", 0)
        settings = catalyst_settings(
            observability={
                "otlp_endpoint": f"http://127.0.0.1:{port}",
                "service_name": "catalyst-test",
            }
        )
        async with running_service(settings) as service:
            response = await service.client.get("/v1/plugins", headers=service.auth())
            assert response.status_code == 200
        # The app's shutdown flushed the batch to the collector.
        group.cancel_scope.cancel()
    spans = {
        span.name: resource_spans.resource
        for request in received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    }
    assert "GET /v1/plugins" in spans
    attributes = {a.key: a.value.string_value for a in spans["GET /v1/plugins"].attributes}
    assert attributes["service.name"] == "catalyst-test"


# -------------------------------------------------------------------------------------------------
# Metrics
# -------------------------------------------------------------------------------------------------


async def test_metrics_count_an_sse_client_while_its_stream_is_open(settings: Settings) -> None:
    connected = f'catalyst_sse_clients{{environment="{ENV}"}} 1.0'
    gone = f'catalyst_sse_clients{{environment="{ENV}"}} 0.0'
    async with running_service(settings, sse_keepalive=0.2) as service:
        await service.create_environment(ENV)
        assert "catalyst_sse_clients{" not in await metrics_text(service)
        async with service.client.stream(
            "GET", EVENTS, headers=service.auth("org-viewer")
        ) as stream:
            assert stream.status_code == 200
            assert connected in await metrics_text(service)
        await wait_for_metric(service, gone)


async def test_commits_are_counted_by_environment_and_kind(settings: Settings) -> None:
    async with running_service(settings) as service:
        await service.create_environment(ENV)
        committer = service.runtime.committer
        await committer.commit(install_request("shop"))
        change = await committer.open_change(install_request("blog"), "Install blog")
        await committer.merge_change(ENV, change.id, "alice")
        text = await metrics_text(service)
    assert f'catalyst_commits_total{{environment="{ENV}",kind="repository"}} 1.0' in text
    assert f'catalyst_commits_total{{environment="{ENV}",kind="commit"}} 1.0' in text
    assert f'catalyst_commits_total{{environment="{ENV}",kind="merge"}} 1.0' in text


async def test_a_failing_commit_listener_does_not_fail_the_commit(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(environment: str, kind: str) -> None:
        raise RuntimeError("listener bug")

    async with running_service(settings) as service:
        await service.create_environment(ENV)
        service.runtime.commit_listeners.insert(0, broken)
        commit = await service.runtime.committer.commit(install_request("shop"))
        text = await metrics_text(service)
    assert commit.sha
    assert "listener bug" in caplog.text
    assert f'catalyst_commits_total{{environment="{ENV}",kind="commit"}} 1.0' in text


async def test_the_projector_lag_is_reported_when_the_runtime_runs_the_projector(
    settings: Settings,
) -> None:
    async with running_service(settings, projector=True) as service:
        await service.create_environment(ENV)
        await service.runtime.committer.commit(install_request("shop"))
        await wait_for_metric(service, f'catalyst_projector_lag_events{{environment="{ENV}"}} 0.0')


async def test_without_the_projector_there_is_no_lag_series(settings: Settings) -> None:
    async with running_service(settings) as service:
        await service.create_environment(ENV)
        text = await metrics_text(service)
    assert "catalyst_projector_lag_events{" not in text
    assert "# TYPE catalyst_projector_lag_events gauge" in text


def _event(n: int) -> Event:
    return Event.create(source="/test", type="io.catalyst.test.changed", subject="s", id=f"e{n}")


@pytest.fixture
async def spine(tmp_path: Path) -> AsyncIterator[SqliteSpine]:
    spine = SqliteSpine(tmp_path / "spine.db", poll_interval=0.01)
    await spine.start()
    yield spine
    await spine.close()


async def test_the_projector_lag_counts_the_events_not_yet_applied(spine: SqliteSpine) -> None:
    for n in range(1, 38):
        await spine.publish(ENV, _event(n))
    await spine.publish("acme-prod", _event(1))
    projector = Projector(spine, [], max_wait=0.05)
    metrics = ApiMetrics()
    await metrics.record_projector(projector)
    assert metrics.registry.get_sample_value("catalyst_projector_lag_events", {"environment": ENV})
    assert _lag(metrics, ENV) == 37
    assert _lag(metrics, "acme-prod") == 1
    await projector.catch_up(ENV)
    await metrics.record_projector(projector)
    assert _lag(metrics, ENV) == 0
    assert _lag(metrics, "acme-prod") == 1


def _lag(metrics: ApiMetrics, environment: str) -> float | None:
    return metrics.registry.get_sample_value(
        "catalyst_projector_lag_events", {"environment": environment}
    )


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 9, 100])
async def test_last_sequence_finds_the_stream_head(spine: SqliteSpine, count: int) -> None:
    for n in range(1, count + 1):
        await spine.publish(ENV, _event(n))
    for after in sorted({0, count // 2, count}):
        assert await last_sequence(spine, ENV, after) == count
