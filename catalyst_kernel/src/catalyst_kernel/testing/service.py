"""A running API service for tests: a real uvicorn on a loopback port, an HTTP client, tokens.

``async with running_service(settings) as service:`` serves ``create_app`` over the providers of
``settings`` (or of ``manager``), yields an :class:`ApiService` and shuts everything down on exit.
Plugin authors use it to test their routes and providers through the API exactly as the kernel
tests its own.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio
import httpx
from attrs import frozen

from catalyst_kernel.api.app import create_app
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.api.server import serve
from catalyst_kernel.identity.dev import DevIdentityProvider
from catalyst_kernel.model.tenancy import Environment, Organization
from catalyst_kernel.plugins.manager import PluginManager, Slot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from catalyst_kernel.directory import EnvironmentRecord
    from catalyst_kernel.readside.spine import KeyValue
    from catalyst_kernel.settings import Settings

__all__ = ["PROBLEMS", "ApiService", "assert_problem", "running_service"]

PROBLEMS: Final = "https://catalyst.openova.io/problems/"


@frozen
class ApiService:
    """A served API: ``client`` has the service's base URL; ``runtime`` its providers."""

    client: httpx.AsyncClient
    runtime: Runtime

    @property
    def base_url(self) -> str:
        return str(self.client.base_url)

    @property
    def identity(self) -> DevIdentityProvider:
        provider = self.runtime.started.get(Slot.IDENTITY)
        if not isinstance(provider, DevIdentityProvider):
            raise TypeError("tokens are minted by the development identity provider only")
        return provider

    def token(self, role: str = "org-viewer", org: str | None = "acme", **claims: Any) -> str:
        """A development token of ``role`` in ``org`` (``None`` for a sovereign-admin)."""
        subject = claims.pop("subject", f"{role}@{org or 'sovereign'}")
        return self.identity.mint(subject, organization=org, role=role, **claims)

    def auth(
        self, role: str = "org-viewer", org: str | None = "acme", **claims: Any
    ) -> dict[str, str]:
        """The ``Authorization`` header of :meth:`token`."""
        return {"Authorization": f"Bearer {self.token(role, org, **claims)}"}

    async def kv(self, environment: str) -> KeyValue:
        """The Environment's read-model bucket."""
        return await self.runtime.spine.key_value(environment)

    async def create_environment(self, name: str, *, actor: str = "admin") -> EnvironmentRecord:
        """Create ``name`` (and its Organization, if missing) directly, without the API."""
        environment = Environment.parse(name)
        directory = self.runtime.directory
        if await directory.find_organization(environment.organization) is None:
            await directory.create_organization(Organization(environment.organization), actor=actor)
        return await directory.create_environment(
            environment,
            self.runtime.committer,
            sovereign=self.runtime.settings.sovereign,
            repository_url=self.runtime.settings.repository_url(environment.organization, name),
            actor=actor,
        )


@asynccontextmanager
async def running_service(
    settings: Settings,
    *,
    manager: PluginManager | None = None,
    client_timeout: float = 10.0,
    **runtime_options: Any,
) -> AsyncIterator[ApiService]:
    """Serve the API on ``127.0.0.1`` and a free port until the block ends.

    :param manager: a loaded plugin manager (default: the built-in plugins only, so installed
        plugins do not change what a test sees).
    :param runtime_options: further :class:`Runtime` arguments (``projector=True``, ``sources``).
    """
    if manager is None:
        manager = PluginManager(settings).load(entry_points=())
    runtime = Runtime(settings, manager, **runtime_options)
    async with anyio.create_task_group() as group:
        port = await group.start(serve, create_app(settings, runtime=runtime), "127.0.0.1", 0)
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=client_timeout) as client:
            yield ApiService(client, runtime)
        group.cancel_scope.cancel()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem of ``status`` with type ``…/problems/<code>``
    and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEMS + code, body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    return body
