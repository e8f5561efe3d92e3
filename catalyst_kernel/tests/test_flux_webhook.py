"""The Flux event receiver: notification translation (pure) and ``POST /v1/webhooks/flux/{env}``
served by a real uvicorn."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalyst_kernel.api.routes.flux_webhook import FLUX_SIGNATURE
from catalyst_kernel.api.webhooks import BadSignature, HmacScheme
from catalyst_kernel.errors import InvalidInput, SettingsError
from catalyst_kernel.model.event import Event
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.readside.flux_events import (
    FLUX_CHANGED,
    event_id,
    event_time,
    flux_object,
    notification_event,
    parse_notification,
)
from catalyst_kernel.readside.projections import builtin_projections
from catalyst_kernel.readside.projections.status import flux_state
from catalyst_kernel.readside.projector import Projector, decode_value
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service
from catalyst_kernel.testing.service import assert_problem as assert_api_problem

SECRET = "flux-hmac-secret-0123456789"
SHA = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345"
SOURCE = "/sovereigns/test/flux-webhook"
NOW = datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)


def notification(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "shop",
            "uid": "7d0c5b7e-1111-2222-3333-444455556666",
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "resourceVersion": "12345",
        },
        "severity": "info",
        "timestamp": "2024-05-01T10:00:00Z",
        "message": "Health check passed in 2.1s",
        "reason": "ReconciliationSucceeded",
        "metadata": {"revision": f"main@sha1:{SHA}"},
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-5f7b6c9d8-abcde",
    }
    for key, value in overrides.items():
        if key in document["involvedObject"]:
            document["involvedObject"][key] = value
        else:
            document[key] = value
    return document


# -------------------------------------------------------------------------------------------------
# Pure: parsing and translation
# -------------------------------------------------------------------------------------------------


def test_a_notification_is_parsed() -> None:
    parsed = parse_notification(notification())
    assert (parsed.kind, parsed.namespace, parsed.name) == ("Kustomization", "flux-system", "shop")
    assert parsed.uid == "7d0c5b7e-1111-2222-3333-444455556666"
    assert parsed.resource_version == "12345"
    assert parsed.timestamp == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parsed.revision == f"main@sha1:{SHA}"
    assert parsed.ready == "True"
    assert parsed.reporting_controller == "kustomize-controller"


def test_optional_fields_may_be_absent() -> None:
    document = notification()
    for key in ("uid", "namespace", "apiVersion", "resourceVersion"):
        del document["involvedObject"][key]
    for key in ("metadata", "reportingController", "reportingInstance"):
        del document[key]
    parsed = parse_notification({**document, "message": ""})
    assert parsed.uid is None
    assert parsed.revision is None
    assert parsed.metadata == {}
    assert parsed.message == ""


def test_every_missing_or_wrong_field_is_reported() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_notification(
            {
                "involvedObject": {"kind": "", "namespace": 3},
                "severity": "fatal",
                "timestamp": "yesterday",
                "metadata": {"revision": 5},
            }
        )
    pointers = {problem.pointer for problem in caught.value.problems}
    assert pointers == {
        "/involvedObject/kind",
        "/involvedObject/name",
        "/involvedObject/namespace",
        "/severity",
        "/reason",
        "/message",
        "/timestamp",
        "/metadata",
    }


@pytest.mark.parametrize("document", [[], "text", None, 42])
def test_a_notification_must_be_an_object(document: Any) -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_notification(document)


def test_the_event_id_is_deterministic_and_tells_notifications_apart() -> None:
    first = parse_notification(notification())
    assert event_id(first) == event_id(parse_notification(notification()))
    assert event_id(first).startswith("flux-")
    others = [
        notification(reason="Progressing", message="Server-side apply completed"),
        notification(resourceVersion="12346"),
        notification(uid="another-uid"),
        notification(timestamp="2024-05-01T10:00:01Z"),
        notification(metadata={"revision": "main@sha1:" + "0" * 40}),
    ]
    ids = {event_id(parse_notification(other)) for other in others}
    assert event_id(first) not in ids
    assert len(ids) == len(others)


def test_event_time_puts_outcomes_after_progress_within_a_second() -> None:
    success = parse_notification(notification())
    failure = parse_notification(notification(severity="error", reason="BuildFailed"))
    progress = parse_notification(notification(reason="Progressing"))
    stamp = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert event_time(progress) == stamp
    assert event_time(success) == event_time(failure) == stamp + timedelta(microseconds=1)
    precise = parse_notification(notification(timestamp="2024-05-01T10:00:00.5+02:00"))
    assert event_time(precise) == precise.timestamp == datetime(2024, 5, 1, 8, 0, 0, 500000, UTC)


def test_a_successful_kustomization_is_ready_and_applied() -> None:
    obj = flux_object(parse_notification(notification()))
    assert obj["kind"] == "Kustomization"
    assert obj["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert obj["metadata"] == {
        "name": "shop",
        "namespace": "flux-system",
        "uid": "7d0c5b7e-1111-2222-3333-444455556666",
    }
    assert obj["status"]["lastAppliedRevision"] == f"main@sha1:{SHA}"
    assert obj["status"]["lastAttemptedRevision"] == f"main@sha1:{SHA}"
    (ready,) = obj["status"]["conditions"]
    assert ready == {
        "type": "Ready",
        "status": "True",
        "reason": "ReconciliationSucceeded",
        "message": "Health check passed in 2.1s",
        "lastTransitionTime": "2024-05-01T10:00:00Z",
    }


def test_a_failed_kustomization_is_not_ready_and_only_attempted() -> None:
    parsed = parse_notification(
        notification(severity="error", reason="BuildFailed", message="kustomize build failed")
    )
    obj = flux_object(parsed)
    assert "lastAppliedRevision" not in obj["status"]
    assert obj["status"]["lastAttemptedRevision"] == f"main@sha1:{SHA}"
    state = flux_state(obj, NOW)
    assert (state["ready"], state["reason"]) == ("False", "BuildFailed")


def test_a_progressing_kustomization_is_unknown() -> None:
    obj = flux_object(
        parse_notification(notification(reason="Progressing", message="Deployment/shop created"))
    )
    assert obj["status"]["conditions"][0]["status"] == "Unknown"
    assert "lastAppliedRevision" not in obj["status"]


def test_a_successful_helm_release_has_caught_up() -> None:
    parsed = parse_notification(
        notification(
            kind="HelmRelease",
            apiVersion=None,
            reason="UpgradeSucceeded",
            message="Helm upgrade succeeded",
            metadata={"revision": "1.4.2"},
            reportingController="helm-controller",
        )
    )
    obj = flux_object(parsed)
    assert obj["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert "generation" not in obj["metadata"]
    assert obj["status"]["observedGeneration"] == 0
    assert obj["status"]["history"] == [{"chartVersion": "1.4.2", "status": "deployed"}]
    state = flux_state(obj, NOW)
    assert state["ready"] == "True"
    assert state["settled"]["revision"] == "1.4.2"


def test_a_failed_helm_release_is_not_ready() -> None:
    parsed = parse_notification(
        notification(kind="HelmRelease", severity="error", reason="UpgradeFailed", message="boom")
    )
    obj = flux_object(parsed)
    assert "observedGeneration" not in obj["status"]
    assert obj["status"]["conditions"][0]["status"] == "False"


def test_the_event_carries_the_object_and_the_notification() -> None:
    parsed = parse_notification(notification(name="my.shop"))
    event = notification_event(parsed, source=SOURCE)
    assert event.type == FLUX_CHANGED
    assert event.subject == "flux.my=2Eshop"
    assert event.id == event_id(parsed)
    assert event.source == SOURCE
    assert event.data["object"]["metadata"]["name"] == "my.shop"
    assert event.data["notification"]["involvedObject"]["resourceVersion"] == "12345"
    assert event.data["notification"]["reason"] == "ReconciliationSucceeded"


def test_other_kinds_are_not_flux_objects() -> None:
    with pytest.raises(InvalidInput):
        flux_object(parse_notification(notification(kind="GitRepository")))


def test_signatures() -> None:
    body = b'{"a": 1}'
    for name in ("sha256", "sha384", "sha512"):
        digest = hmac.new(SECRET.encode(), body, getattr(hashlib, name)).hexdigest()
        FLUX_SIGNATURE.verify(SECRET, body, f"{name}={digest}")
        FLUX_SIGNATURE.verify(SECRET, body, f"{name.upper()}={digest.upper()}")
    sha1 = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    sha256 = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    for header in (
        None,
        "",
        sha256,
        f"sha1={sha1}",
        "sha256=not-hex",
        f"sha256={sha256[:-2]}",
        f"sha512={sha256}",
        f"sha256={hmac.new(b'other-secret-0123456', body, hashlib.sha256).hexdigest()}",
    ):
        with pytest.raises(BadSignature) as caught:
            FLUX_SIGNATURE.verify(SECRET, body, header)
        assert SECRET not in str(caught.value)
        assert sha256 not in str(caught.value)


def test_flux_signs_with_the_hash_name_before_the_digest() -> None:
    body = b'{"a": 1}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert FLUX_SIGNATURE.sign(SECRET, body) == f"sha256={digest}"


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"algorithms": ()}, "at least one hash"),
        ({"algorithms": ("sha256", "not-a-hash")}, "not a hashlib hash"),
        ({"algorithms": ("SHA256",)}, "not a hashlib hash"),
        ({"algorithms": ("sha256", "sha512")}, "only be of one hash"),
    ],
)
def test_a_signature_scheme_refuses_hashes_it_cannot_check(
    options: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidInput, match=why):
        HmacScheme(header="X-Signature", realm="test", refused="not signed", **options)


def test_settings_refuse_bad_secrets_without_echoing_them(
    catalyst_settings: Callable[..., Settings],
) -> None:
    for secrets in ({"acme-dev": "too-short"}, {"Not An Env": SECRET}):
        settings = catalyst_settings(plugins={"core": {"flux_webhook_secrets": secrets}})
        with pytest.raises(SettingsError) as caught:
            PluginManager(settings).load(entry_points=())
        assert "too-short" not in str(caught.value)
        assert SECRET not in str(caught.value)
    settings = catalyst_settings(plugins={"core": {"flux_webhook_secrets": {"acme-dev": SECRET}}})
    core = PluginManager(settings).load(entry_points=()).plugin_settings("core")
    assert SECRET not in repr(core)


# -------------------------------------------------------------------------------------------------
# Over HTTP
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(catalyst_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return catalyst_settings(
        data_dir=str(tmp_path),
        sovereign="test",
        plugins={
            "core": {"flux_webhook_secrets": {"acme-dev": SECRET}, "flux_webhook_max_body": 4096}
        },
    )


class Server:
    """The served API, with a Flux notification-controller's way of posting."""

    def __init__(self, service: ApiService) -> None:
        self.client = service.client
        self.spine = service.runtime.spine

    async def post(
        self,
        env: str,
        body: bytes | dict[str, Any],
        *,
        secret: str = SECRET,
        algorithm: str = "sha256",
        signature: str | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Signature"] = signature
        elif sign:
            digest = hmac.new(secret.encode(), raw, getattr(hashlib, algorithm)).hexdigest()
            headers["X-Signature"] = f"{algorithm}={digest}"
        return await self.client.post(f"/v1/webhooks/flux/{env}", content=raw, headers=headers)

    async def events(self, env: str = "acme-dev") -> list[Event]:
        return [delivery.event for delivery in await self.spine.read(env)]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Server]:
    async with running_service(settings) as service:
        yield Server(service)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = assert_api_problem(response, status, code)
    assert SECRET not in response.text
    return body


@pytest.mark.anyio
async def test_a_signed_notification_is_published_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(settings) as server:
        first = await server.post("acme-dev", notification())
        again = await server.post("acme-dev", notification())
        events = await server.events()
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["duplicate"] is False
    assert body["published"] is True
    assert again.status_code == 202
    assert again.json() == {"id": body["id"], "duplicate": True, "published": True}
    (event,) = events
    assert event.id == body["id"]
    assert event.type == FLUX_CHANGED
    assert event.subject == "flux.shop"
    assert event.source == SOURCE
    assert event.data["object"]["status"]["lastAppliedRevision"] == f"main@sha1:{SHA}"
    assert SECRET not in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
async def test_longer_hashes_are_accepted(settings: Settings, algorithm: str) -> None:
    async with running(settings) as server:
        response = await server.post("acme-dev", notification(), algorithm=algorithm)
    assert response.status_code == 202, response.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"secret": "a-wrong-secret-0123456789"}, "does not match"),
        ({"sign": False}, "missing"),
        ({"algorithm": "sha1"}, "not accepted"),
        ({"signature": "sha256"}, "<hash>=<hex digest>"),
        ({"signature": "sha256=zz"}, "not hexadecimal"),
    ],
)
async def test_a_badly_signed_notification_is_401_and_not_published(
    settings: Settings, caplog: pytest.LogCaptureFixture, options: dict[str, Any], why: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(settings) as server:
        response = await server.post("acme-dev", notification(), **options)
        events = await server.events()
    body = assert_problem(response, 401, "unauthenticated")
    assert why in body["detail"]
    assert "Bearer" not in response.headers["www-authenticate"]
    assert events == []
    assert SECRET not in caplog.text


@pytest.mark.anyio
async def test_a_tampered_body_is_401(settings: Settings) -> None:
    raw = json.dumps(notification()).encode()
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    tampered = raw.replace(b"ReconciliationSucceeded", b"ReconciliationFailed")
    async with running(settings) as server:
        response = await server.post("acme-dev", tampered, signature=f"sha256={digest}")
        events = await server.events()
    assert_problem(response, 401, "unauthenticated")
    assert events == []


@pytest.mark.anyio
async def test_no_webhook_is_404_whether_or_not_the_environment_exists(
    settings: Settings,
) -> None:
    async with running(settings) as server:
        # acme-stg is a plausible Environment without a secret; zzz-dev does not exist at all.
        # Signed with the acme-dev secret: knowing one Environment's secret opens no other.
        answers = [await server.post(env, notification()) for env in ("acme-stg", "zzz-dev")]
        events = [await server.events(env) for env in ("acme-stg", "zzz-dev")]
    first, second = (assert_problem(a, 404, "not-found") for a in answers)
    assert first["detail"] == second["detail"] == "no Flux webhook for this Environment"
    assert {k: v for k, v in first.items() if k != "instance"} == {
        k: v for k, v in second.items() if k != "instance"
    }
    assert events == [[], []]


@pytest.mark.anyio
async def test_an_invalid_environment_name_is_422(settings: Settings) -> None:
    async with running(settings) as server:
        response = await server.post("Not_An_Env", notification())
    assert response.status_code == 422, response.text


@pytest.mark.anyio
async def test_an_oversized_body_is_413_and_not_published(settings: Settings) -> None:
    huge = notification(message="x" * 5000)
    async with running(settings) as server:
        response = await server.post("acme-dev", huge)

        async def chunks() -> AsyncIterator[bytes]:
            raw = json.dumps(huge).encode()
            for start in range(0, len(raw), 1000):
                yield raw[start : start + 1000]

        streamed = await server.client.post("/v1/webhooks/flux/acme-dev", content=chunks())
        events = await server.events()
    assert_problem(response, 413, "body-too-large")
    assert_problem(streamed, 413, "body-too-large")
    assert events == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "raw", [b"{not json", b"\xff\xfe", b"[]", json.dumps({"severity": "info"}).encode()]
)
async def test_a_malformed_notification_is_422_and_not_published(
    settings: Settings, raw: bytes
) -> None:
    async with running(settings) as server:
        response = await server.post("acme-dev", raw)
        events = await server.events()
    assert_problem(response, 422, "invalid-input")
    assert events == []


@pytest.mark.anyio
async def test_the_problem_lists_the_missing_fields(settings: Settings) -> None:
    document = notification()
    del document["reason"]
    del document["involvedObject"]["name"]
    async with running(settings) as server:
        response = await server.post("acme-dev", document)
    body = assert_problem(response, 422, "invalid-input")
    assert {e["pointer"] for e in body["errors"]} == {"/reason", "/involvedObject/name"}


@pytest.mark.anyio
async def test_other_kinds_are_accepted_and_ignored(settings: Settings) -> None:
    async with running(settings) as server:
        response = await server.post("acme-dev", notification(kind="GitRepository"))
        events = await server.events()
    assert response.status_code == 202
    assert response.json() == {"id": None, "duplicate": False, "published": False}
    assert events == []


@pytest.mark.anyio
async def test_notifications_drive_the_application_status(settings: Settings) -> None:
    commit = Event.create(
        id=f"git-{SHA}",
        source="/sovereigns/test/committer",
        type="io.catalyst.git.commit",
        subject=f"git.{SHA}",
        time=datetime(2024, 5, 1, 9, 59, tzinfo=UTC),
        data={
            "sha": SHA,
            "parents": [],
            "message": "install shop",
            "actor": "alice",
            "operation": "op-1",
            "applications": [{"name": "shop", "action": "install", "blueprint": "shop"}],
        },
    )
    progressing = notification(reason="Progressing", message="Deployment/shop/web created")
    async with running(settings) as server:
        await server.spine.publish("acme-dev", commit)
        projector = Projector(server.spine, builtin_projections(), max_wait=0.05)
        kv = await server.spine.key_value("acme-dev")

        async def status() -> dict[str, Any]:
            await projector.catch_up("acme-dev")
            entry = await kv.get("application/shop")
            assert entry is not None
            document: dict[str, Any] = decode_value(entry.value or b"null")
            return document

        assert (await status())["status"] == "Installing"
        # Progressing and succeeded in the same second: the outcome wins.
        assert (await server.post("acme-dev", progressing)).status_code == 202
        installing = await status()
        assert installing["status"] == "Installing"
        assert installing["inputs"]["kustomization"]["reason"] == "Progressing"
        assert (await server.post("acme-dev", notification())).status_code == 202
        running_ = await status()
        assert running_["status"] == "Running", running_["reason"]
        assert (await kv.get("flux/Kustomization/shop")) is not None
        # Progress of the same second arriving after the outcome does not undo it.
        late = notification(reason="Progressing", message="Service/shop/web configured")
        assert (await server.post("acme-dev", late)).json()["duplicate"] is False
        assert (await status())["status"] == "Running"

        failed = notification(
            severity="error",
            reason="HealthCheckFailed",
            message="timeout waiting for Deployment/shop/web",
            timestamp="2024-05-01T10:05:00Z",
        )
        assert (await server.post("acme-dev", failed)).status_code == 202
        assert (await status())["status"] == "Failed"
