"""``/v1/blueprints``: the catalog over HTTP, with visibility per caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from catalyst_kernel.api.app import create_app
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.api.server import serve
from catalyst_kernel.identity.dev import DevIdentityProvider
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.settings import Settings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = """\
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata:
  name: bp-acme-internal
  version: 1.0.0
spec:
  card: {title: Acme internal}
  visibility: private
  owner: {organization: acme}
  manifests:
    source:
      kind: HelmChart
      ref: {chart: internal, repository: "oci://registry.acme/charts", version: 1.0.0}
"""


@pytest.fixture
async def client(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, DevIdentityProvider]]:
    private = tmp_path / "private-catalog" / "bp-acme-internal" / "1.0.0"
    private.mkdir(parents=True)
    (private / "blueprint.yaml").write_text(PRIVATE)
    settings = catalyst_settings(
        data_dir=str(tmp_path / "data"),
        catalog_paths=[str(ROOT / "catalog"), str(tmp_path / "private-catalog")],
    )
    manager = PluginManager(settings).load(entry_points=())
    runtime = Runtime(settings, manager)
    async with anyio.create_task_group() as group:
        port = await group.start(serve, create_app(settings, runtime=runtime), "127.0.0.1", 0)
        identity = runtime.started[Slot.IDENTITY]
        assert isinstance(identity, DevIdentityProvider)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield http, identity
        group.cancel_scope.cancel()


def auth(identity: DevIdentityProvider, role: str, org: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity.mint('u', organization=org, role=role)}"}


async def test_listing_shows_listed_blueprints_with_versions(client: Any) -> None:
    http, identity = client
    response = await http.get("/v1/blueprints", headers=auth(identity, "org-viewer", "acme"))
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert {"bp-wordpress", "bp-postgres", "bp-redis", "bp-web-stack"} <= set(items)
    assert items["bp-postgres"]["versions"] == ["2.0.0", "1.5.0", "1.4.2", "1.4.0"]
    assert items["bp-postgres"]["latest"] == "2.0.0"
    assert items["bp-wordpress"]["card"]["title"] == "WordPress"


async def test_a_private_blueprint_is_visible_only_inside_its_organization(client: Any) -> None:
    http, identity = client
    own = await http.get(
        "/v1/blueprints/bp-acme-internal", headers=auth(identity, "org-viewer", "acme")
    )
    assert own.status_code == 200
    assert own.json() == {"name": "bp-acme-internal", "versions": ["1.0.0"]}
    other = await http.get(
        "/v1/blueprints/bp-acme-internal", headers=auth(identity, "org-viewer", "globex")
    )
    assert other.status_code == 404
    missing = await http.get(
        "/v1/blueprints/bp-nothing", headers=auth(identity, "org-viewer", "globex")
    )
    assert other.json()["detail"].replace("bp-acme-internal", "X") == missing.json()[
        "detail"
    ].replace("bp-nothing", "X")
    listing = await http.get("/v1/blueprints", headers=auth(identity, "org-viewer", "globex"))
    assert "bp-acme-internal" not in {item["name"] for item in listing.json()["items"]}
    admin = await http.get(
        "/v1/blueprints/bp-acme-internal/1.0.0", headers=auth(identity, "sovereign-admin", None)
    )
    assert admin.status_code == 200


async def test_a_version_returns_the_full_blueprint(client: Any) -> None:
    http, identity = client
    response = await http.get(
        "/v1/blueprints/bp-wordpress/1.4.0", headers=auth(identity, "org-developer", "acme")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"name": "bp-wordpress", "version": "1.4.0"}
    assert body["spec"]["configSchema"]["properties"]["adminPassword"]["x-catalyst-ui-hint"] == (
        "password"
    )


async def test_bad_names_and_tokens_are_problems(client: Any) -> None:
    http, identity = client
    unauthenticated = await http.get("/v1/blueprints")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    bad = await http.get("/v1/blueprints/wordpress", headers=auth(identity, "org-viewer", "acme"))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    bad_version = await http.get(
        "/v1/blueprints/bp-wordpress/1.4", headers=auth(identity, "org-viewer", "acme")
    )
    assert bad_version.status_code == 422
    billing = await http.get("/v1/blueprints", headers=auth(identity, "billing-admin", "acme"))
    assert billing.status_code == 403
