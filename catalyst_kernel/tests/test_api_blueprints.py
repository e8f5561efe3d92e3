"""``/v1/blueprints``: the catalog over HTTP, with visibility per caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

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
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    private = tmp_path / "private-catalog" / "bp-acme-internal" / "1.0.0"
    private.mkdir(parents=True)
    (private / "blueprint.yaml").write_text(PRIVATE)
    settings = catalyst_settings(
        data_dir=str(tmp_path / "data"),
        catalog_paths=[str(ROOT / "catalog"), str(tmp_path / "private-catalog")],
    )
    async with running_service(settings) as service:
        yield service


async def test_listing_shows_listed_blueprints_with_versions(service: ApiService) -> None:
    http = service.client
    response = await http.get("/v1/blueprints", headers=service.auth("org-viewer", "acme"))
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert {"bp-wordpress", "bp-postgres", "bp-redis", "bp-web-stack"} <= set(items)
    assert items["bp-postgres"]["versions"] == ["2.0.0", "1.5.0", "1.4.2", "1.4.0"]
    assert items["bp-postgres"]["latest"] == "2.0.0"
    assert items["bp-wordpress"]["card"]["title"] == "WordPress"


async def test_a_private_blueprint_is_visible_only_inside_its_organization(
    service: ApiService,
) -> None:
    http = service.client
    own = await http.get(
        "/v1/blueprints/bp-acme-internal", headers=service.auth("org-viewer", "acme")
    )
    assert own.status_code == 200
    assert own.json() == {"name": "bp-acme-internal", "versions": ["1.0.0"]}
    other = await http.get(
        "/v1/blueprints/bp-acme-internal", headers=service.auth("org-viewer", "globex")
    )
    assert other.status_code == 404
    missing = await http.get(
        "/v1/blueprints/bp-nothing", headers=service.auth("org-viewer", "globex")
    )
    assert other.json()["detail"].replace("bp-acme-internal", "X") == missing.json()[
        "detail"
    ].replace("bp-nothing", "X")
    listing = await http.get("/v1/blueprints", headers=service.auth("org-viewer", "globex"))
    assert "bp-acme-internal" not in {item["name"] for item in listing.json()["items"]}
    admin = await http.get(
        "/v1/blueprints/bp-acme-internal/1.0.0", headers=service.auth("sovereign-admin", None)
    )
    assert admin.status_code == 200


async def test_a_version_returns_the_full_blueprint(service: ApiService) -> None:
    http = service.client
    response = await http.get(
        "/v1/blueprints/bp-wordpress/1.4.0", headers=service.auth("org-developer", "acme")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"name": "bp-wordpress", "version": "1.4.0"}
    assert body["spec"]["configSchema"]["properties"]["adminPassword"]["x-catalyst-ui-hint"] == (
        "password"
    )


async def test_bad_names_and_tokens_are_problems(service: ApiService) -> None:
    http = service.client
    unauthenticated = await http.get("/v1/blueprints")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    bad = await http.get("/v1/blueprints/wordpress", headers=service.auth("org-viewer", "acme"))
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    bad_version = await http.get(
        "/v1/blueprints/bp-wordpress/1.4", headers=service.auth("org-viewer", "acme")
    )
    assert bad_version.status_code == 422
    billing = await http.get("/v1/blueprints", headers=service.auth("billing-admin", "acme"))
    assert billing.status_code == 403
