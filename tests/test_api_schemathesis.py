"""schemathesis against the served OpenAPI document (issue 5's acceptance): with valid tokens,
no request the schema allows gets a 5xx, and every response matches the schema.

The document is read from the app (``create_app(...).openapi_schema``) when the module is
collected, because schemathesis parametrizes at collection; the requests go over real HTTP to
the same app served by uvicorn in a background thread, holding an Organization, three
Environments and an installed Application so that generated requests find real things.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from catalyst_kernel.api.app import create_app
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

ROOT = Path(__file__).resolve().parents[1]
FLUX_SECRET = "schemathesis-flux-secret-0123456789"


def _settings(data_dir: str) -> Settings:
    return Settings(
        data_dir=Path(data_dir),
        sovereign="fuzz",
        catalog_paths=(ROOT / "catalog",),
        plugins={"core": {"flux_webhook_secrets": {"acme-dev": FLUX_SECRET}}},
    )


with TemporaryDirectory() as _scratch:
    _document = create_app(_settings(_scratch)).openapi_schema.to_schema()

schema = schemathesis.openapi.from_dict(_document)


class _Served:
    """The app served by uvicorn on a loopback port, in a thread of its own."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.ready = threading.Event()
        self.stop: anyio.Event | None = None
        self.portal: anyio.from_thread.BlockingPortal | None = None
        self.service: ApiService | None = None
        self.error: BaseException | None = None

    async def _main(self) -> None:
        async with anyio.from_thread.BlockingPortal() as portal:
            self.portal = portal
            self.stop = anyio.Event()
            try:
                async with running_service(_settings(self.data_dir), projector=True) as service:
                    await _populate(service)
                    self.service = service
                    self.ready.set()
                    await self.stop.wait()
            except BaseException as exc:
                self.error = exc
                self.ready.set()
                raise

    def run(self) -> None:
        try:
            anyio.run(self._main)
        except BaseException as exc:
            self.error = exc
            self.ready.set()


async def _populate(service: ApiService) -> None:
    for name in ("acme-dev", "acme-stg", "globex-dev"):
        await service.create_environment(name)
    response = await service.client.post(
        "/v1/environments/acme-dev/applications",
        json={"name": "cache", "blueprint": "bp-redis"},
        headers=service.auth("org-developer"),
    )
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, dict[str, str]]]:
    with TemporaryDirectory() as data_dir:
        served = _Served(data_dir)
        thread = threading.Thread(target=served.run, daemon=True)
        thread.start()
        assert served.ready.wait(60), "the service did not start"
        if served.error is not None:
            raise served.error
        assert served.service is not None
        assert served.portal is not None
        service = served.service
        headers = service.auth("org-admin", "acme", groups=["team-platform"])
        try:
            yield str(service.client.base_url).rstrip("/"), headers
        finally:
            stop = served.stop
            assert stop is not None
            served.portal.call(stop.set)
            thread.join(60)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_openapi_document(
    case: Any, served: tuple[str, dict[str, str]]
) -> None:
    base_url, headers = served
    if case.path.endswith("/events"):
        # An event stream does not end by itself: check its status line only.
        with httpx.stream(
            "GET",
            base_url + case.formatted_path,
            headers={**(case.headers or {}), **headers},
            params=case.query,
            timeout=10,
        ) as response:
            assert response.status_code < 500
        return
    case.call_and_validate(
        base_url=base_url,
        headers={**(case.headers or {}), **headers},
        # A schema-valid request may rightly be refused: a name that matches the documented
        # pattern but is reserved, another Organization (403), a target that does not exist
        # (404) or exists already (409). Unknown query parameters are ignored, as HTTP APIs
        # conventionally do, where schemathesis counts a request carrying one as invalid (bodies
        # are strict: unknown fields are refused, tested in the API tests). Every response is
        # still checked against the schema.
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
