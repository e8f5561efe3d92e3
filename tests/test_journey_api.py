"""The API journey over real HTTP (issue 5's acceptance).

A sovereign-admin creates Organization ``acme``; its admin creates ``acme-dev``; a developer
installs bp-wordpress with a new postgres; the test plays Flux's notification-controller, posting
signed ``generic-hmac`` notifications as the Kustomizations become ready, postgres first; the SSE
stream shows both Applications ``Installing`` then ``Running``; the state rebuilt from the stream
equals ``/state``; the uninstall removes both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import ObjectReceiveStream

from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
FLUX_SECRET = "journey-flux-hmac-secret-0123456789"
PASSWORD = "journey-admin-password-1234"
ENV = "acme-dev"


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(
        data_dir=str(tmp_path),
        sovereign="journey",
        catalog_paths=[str(ROOT / "catalog")],
        plugins={"core": {"flux_webhook_secrets": {ENV: FLUX_SECRET}}},
    )
    async with running_service(settings, projector=True, client_timeout=30) as service:
        yield service


async def read_events(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    after: int,
    sink: Any,
    *,
    task_status: Any = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Follow the Environment's SSE stream from ``after``, sending each event's data to ``sink``."""
    request_headers = {**headers, "Last-Event-ID": str(after), "Accept": "text/event-stream"}
    async with client.stream(
        "GET", f"/v1/environments/{ENV}/events", headers=request_headers, timeout=None
    ) as response:
        assert response.status_code == 200, await response.aread()
        task_status.started()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if "data" in fields:
                    await sink.send((int(fields["id"]), json.loads(fields["data"])))
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def flux_notification(application: str, sha: str) -> bytes:
    """What notification-controller's generic-hmac provider posts when a Kustomization is ready."""
    return json.dumps(
        {
            "involvedObject": {
                "kind": "Kustomization",
                "namespace": "flux-system",
                "name": application,
                "uid": f"uid-{application}",
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "resourceVersion": "1",
            },
            "severity": "info",
            "timestamp": "2026-11-30T12:00:00Z",
            "message": "Health check passed in 1.2s",
            "reason": "ReconciliationSucceeded",
            "metadata": {"revision": f"main@sha1:{sha}"},
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-0",
        }
    ).encode()


async def post_flux(service: ApiService, body: bytes) -> None:
    digest = hmac.new(FLUX_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await service.client.post(
        f"/v1/webhooks/flux/{ENV}",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": f"sha256={digest}"},
    )
    assert response.status_code in (200, 202, 204), response.text


async def test_the_api_journey(service: ApiService) -> None:
    client = service.client
    admin = service.auth("sovereign-admin", None)
    org_admin = service.auth("org-admin", "acme")
    developer = service.auth("org-developer", "acme")
    viewer = service.auth("org-viewer", "acme")

    # Organization, then Environment.
    created = await client.post("/v1/organizations", json={"name": "acme"}, headers=admin)
    assert created.status_code == 201, created.text
    env = await client.post(
        "/v1/organizations/acme/environments", json={"envType": "dev"}, headers=org_admin
    )
    assert env.status_code == 201, env.text

    # A snapshot, then the stream from its revision.
    snapshot = (await client.get(f"/v1/environments/{ENV}/state", headers=viewer)).json()
    state: dict[str, Any] = {item["key"]: item["value"] for item in snapshot["items"]}
    revision = snapshot["revision"]
    statuses: dict[str, list[str]] = {}
    send, receive = anyio.create_memory_object_stream[tuple[int, dict[str, Any]]](1000)

    async with anyio.create_task_group() as group:
        await group.start(read_events, client, viewer, revision, send)

        async def follow(until: Callable[[], bool], stream: ObjectReceiveStream[Any]) -> None:
            nonlocal revision
            with anyio.fail_after(30):
                while not until():
                    event_revision, data = await stream.receive()
                    assert event_revision > revision, "no duplicates, in order"
                    revision = event_revision
                    key = data["key"]
                    if data["operation"] == "delete":
                        state.pop(key, None)
                    else:
                        state[key] = data["value"]
                    if key.startswith("application/") and data["value"] is not None:
                        history = statuses.setdefault(key.removeprefix("application/"), [])
                        if not history or history[-1] != data["value"]["status"]:
                            history.append(data["value"]["status"])

        # Install bp-wordpress with a new postgres.
        install = await client.post(
            f"/v1/environments/{ENV}/applications",
            json={
                "name": "marketing-site",
                "blueprint": "bp-wordpress",
                "config": {
                    "siteTitle": "Acme",
                    "adminEmail": "web@acme.example",
                    "adminPassword": PASSWORD,
                },
                "dependencies": {"db": {"create": True}},
            },
            headers=developer,
        )
        assert install.status_code == 201, install.text
        sha = install.json()["commit"]["sha"]
        names = [app["name"] for app in install.json()["plan"]["applications"]]
        database = next(name for name in names if name != "marketing-site")

        def both_installing() -> bool:
            return all(statuses.get(name, [None])[-1] == "Installing" for name in names)

        await follow(both_installing, receive)

        # Flux reconciles postgres first (dependsOn), then wordpress.
        await post_flux(service, flux_notification(database, sha))
        await follow(lambda: statuses[database][-1] == "Running", receive)
        assert statuses["marketing-site"][-1] == "Installing"
        await post_flux(service, flux_notification("marketing-site", sha))
        await follow(lambda: statuses["marketing-site"][-1] == "Running", receive)
        for name in names:
            assert statuses[name] == ["Installing", "Running"], statuses

        # The state rebuilt from the stream is /state (the stream leaves out the projector's
        # private keys, so /state's revision may be ahead of the last event's).
        with anyio.fail_after(30):
            while True:
                current = (await client.get(f"/v1/environments/{ENV}/state", headers=viewer)).json()
                if {item["key"]: item["value"] for item in current["items"]} == state:
                    break
                with anyio.move_on_after(0.2):
                    await follow(lambda: False, receive)
        assert current["revision"] >= revision

        # The Applications list and the cross-Environment view agree.
        listed = (await client.get(f"/v1/environments/{ENV}/applications", headers=viewer)).json()
        assert {item["name"]: item["status"] for item in listed["items"]} == dict.fromkeys(
            names, "Running"
        )
        running = await client.get("/v1/applications", params={"status": "Running"}, headers=viewer)
        assert sorted(item["name"] for item in running.json()["items"]) == sorted(names)

        # Uninstall both.
        removed = await client.delete(
            f"/v1/environments/{ENV}/applications/{database}",
            params={"cascade": "true"},
            headers=developer,
        )
        assert removed.status_code == 200, removed.text
        await follow(lambda: not any(k.startswith("application/") for k in state), receive)
        group.cancel_scope.cancel()

    assert not any(key.startswith("application/") for key in state)
    for response_text in (install.text, removed.text):
        assert PASSWORD not in response_text
