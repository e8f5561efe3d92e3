"""The API journey over real HTTP (issue 5's acceptance).

A sovereign-admin creates Organization ``acme``; its admin creates ``acme-dev``; a developer
installs bp-wordpress with a new postgres; the test plays Flux's notification-controller, posting
signed ``generic-hmac`` notifications as the Kustomizations become ready, postgres first; the SSE
stream shows both Applications ``Installing`` then ``Running``; the state rebuilt from the stream
equals ``/state``; the uninstall removes both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import ObjectReceiveStream
from tests.journeys import PASSWORD, flux_ready, install_wordpress

from catalyst_kernel.testing.service import ApiService

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
FLUX_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


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


async def test_the_api_journey(journey_service: ApiService) -> None:
    client = journey_service.client
    admin = journey_service.auth("sovereign-admin", None)
    org_admin = journey_service.auth("org-admin", "acme")
    developer = journey_service.auth("org-developer", "acme")
    viewer = journey_service.auth("org-viewer", "acme")

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
        install = await install_wordpress(
            journey_service, ENV, developer, dependencies={"db": {"create": True}}
        )
        assert install.status_code == 201, install.text
        sha = install.json()["commit"]["sha"]
        names = [app["name"] for app in install.json()["plan"]["applications"]]
        database = next(name for name in names if name != "marketing-site")

        def both_installing() -> bool:
            return all(statuses.get(name, [None])[-1] == "Installing" for name in names)

        await follow(both_installing, receive)

        # Flux reconciles postgres first (dependsOn), then wordpress.
        await flux_ready(journey_service, ENV, database, sha, FLUX_AT)
        await follow(lambda: statuses[database][-1] == "Running", receive)
        assert statuses["marketing-site"][-1] == "Installing"
        await flux_ready(journey_service, ENV, "marketing-site", sha, FLUX_AT)
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
