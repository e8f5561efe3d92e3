"""Every route scoped to an Organization or Environment denies other Organizations' principals.

The routes are read from the app itself, so a route added later is covered without editing this
test; a path parameter it does not know how to fill fails the test instead of being skipped.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.routes import HTTPRoute

from catalyst_kernel.api.app import create_app
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
# How to fill each path parameter so that the target exists in acme.
VALUES = {
    "org": "acme",
    "env": "acme-dev",
    "app": "cache",
    "name": "bp-redis",
    "version": "7.2.0",
    "id": "1",
}
INSTALL = {"name": "other", "blueprint": "bp-redis"}
# Bodies that are valid, so that authorization (not body validation) decides.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/environments/{env}/plans"): INSTALL,
    ("POST", "/v1/environments/{env}/applications"): INSTALL,
    ("PATCH", "/v1/environments/{env}/applications/{app}"): {"config": {}},
    ("POST", "/v1/organizations/{org}/environments"): {"envType": "prod"},
    ("PUT", "/v1/environments/{env}/policy"): {
        "metadata": {"name": "acme-dev-policy"},
        "spec": {"appliesTo": {"environments": ["acme-dev"]}, "rules": []},
    },
    ("POST", "/v1/environments/{env}/applications/{app}/rollback"): {"to": "0" * 40},
    ("PUT", "/v1/organizations/{org}/blocked-versions"): {"items": []},
}
# Not scoped by the caller's Organization: authenticated by an HMAC signature per Environment.
SIGNED = ("/v1/webhooks/",)
PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


def scoped_routes(settings: Settings) -> list[tuple[str, str]]:
    app = create_app(settings)
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(SIGNED):
            continue
        names = set(PARAMETER.findall(route.path))
        if not names & {"org", "env"}:
            continue
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            found.append((method, PARAMETER.sub(r"{\1}", route.path)))
    return found


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(
        data_dir=str(tmp_path), sovereign="test", catalog_paths=[str(ROOT / "catalog")]
    )
    async with running_service(settings) as service:
        await service.create_environment("acme-dev")
        await service.create_environment("globex-dev")
        installed = await service.client.post(
            "/v1/environments/acme-dev/applications",
            json={"name": "cache", "blueprint": "bp-redis"},
            headers=service.auth("org-developer"),
        )
        assert installed.status_code == 201, installed.text
        yield service


async def test_every_scoped_route_denies_another_organization(
    service: ApiService, catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    routes = scoped_routes(catalyst_settings(data_dir=str(tmp_path / "listing")))
    assert len(routes) >= 14, routes
    outsiders = {
        role: service.auth(role, "globex")
        for role in ("org-admin", "org-developer", "org-viewer", "security-officer")
    }
    for method, template in routes:
        unknown = set(PARAMETER.findall(template)) - set(VALUES)
        assert not unknown, f"{method} {template}: no value for {unknown}"
        path = PARAMETER.sub(lambda m: VALUES[m.group(1)], template)
        body = BODIES.get((method, template))
        for role, headers in outsiders.items():
            response = await service.client.request(method, path, json=body, headers=headers)
            problem = assert_problem(response, 403, "forbidden")
            assert "acme" in problem["detail"], (method, path, role)


async def test_the_event_stream_denies_another_organization(service: ApiService) -> None:
    response = await service.client.get(
        "/v1/environments/acme-dev/events", headers=service.auth("org-admin", "globex")
    )
    assert_problem(response, 403, "forbidden")
