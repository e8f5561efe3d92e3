"""``catalyst serve --demo``: the bootstrap (Organization, Environments, tokens) and the simulated
reconciler, over a real uvicorn with the projector running."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_kernel.blueprints.catalog import Catalog, CatalogView, FolderSource
from catalyst_kernel.demo import (
    DEMO_ENVIRONMENTS,
    DEMO_ORGANIZATION,
    DEMO_USERS,
    SimulatedReconciler,
    bootstrap_demo,
)
from catalyst_kernel.demo.notifications import KUSTOMIZATION, Step, demo_event_id
from catalyst_kernel.demo.ordering import reconcile_waves
from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.event import Event
from catalyst_kernel.model.principal import Role
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.provisioning.provisioner import InstallRequest
from catalyst_kernel.readside.event_types import FLUX_CHANGED, FLUX_DELETED
from catalyst_kernel.readside.projections import KvTimelineReader
from catalyst_kernel.readside.spine import Published
from catalyst_kernel.readside.subjects import kv_key
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ENV = "acme-dev"
DELAY = 0.05
WAIT = 10.0
POLL = 0.02
SOURCE = "/sovereigns/demo/demo-reconciler"
BLOG, DATABASE = "blog", "blog-postgres"


# -------------------------------------------------------------------------------------------------
# A demo service
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(catalyst_settings: Callable[..., Settings]) -> Settings:
    return catalyst_settings(catalog_paths=[str(ROOT / "catalog")], sovereign="demo")


@pytest.fixture(scope="module")
def catalog() -> CatalogView:
    return Catalog.load([FolderSource(ROOT / "catalog")], strict=True).view(
        DEMO_ORGANIZATION, sovereign_admin=True
    )


def reconciler_for(manager: PluginManager, **options: Any) -> SimulatedReconciler:
    options.setdefault("delay", DELAY)
    return SimulatedReconciler(
        manager.spine(),
        manager.committer(),
        sovereign=manager.settings.sovereign,
        discover_interval=0.05,
        fetch_wait=0.2,
        **options,
    )


@asynccontextmanager
async def demo_service(settings: Settings) -> AsyncIterator[tuple[ApiService, SimulatedReconciler]]:
    manager = PluginManager(settings).load(entry_points=())
    reconciler = reconciler_for(manager)
    async with running_service(
        settings, manager=manager, projector=True, sources=[reconciler]
    ) as service:
        yield service, reconciler


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition`` until it holds; fail after ``WAIT`` seconds."""
    with anyio.fail_after(WAIT):
        while True:
            if await condition():
                return
            await anyio.sleep(POLL)


async def document(service: ApiService, name: str) -> dict[str, Any] | None:
    entry = await (await service.kv(ENV)).get(kv_key("application", name))
    return None if entry is None or entry.value is None else json.loads(entry.value)


async def wait_for_status(service: ApiService, name: str, status: str) -> dict[str, Any]:
    found: dict[str, Any] | None = None

    async def reached() -> bool:
        nonlocal found
        found = await document(service, name)
        return found is not None and found["status"] == status

    await eventually(reached)
    assert found is not None
    return found


async def health(service: ApiService, name: str) -> list[tuple[datetime, str | None]]:
    """The Application's health changes from its timeline: (time, status), oldest first."""
    reader = KvTimelineReader(service.runtime.spine.key_value)
    timeline = await reader.application_timeline(ENV, name)
    return [(entry.time, entry.status) for entry in timeline if entry.kind == "health"]


async def install_blog(service: ApiService, catalog: CatalogView) -> str:
    request = InstallRequest(
        name=BLOG,
        blueprint="bp-wordpress",
        config={
            "siteTitle": "Acme",
            "adminEmail": "web@acme.example",
            "adminPassword": "correct-horse-battery-staple-42",
        },
    )
    plan, commit = await service.runtime.provisioner.install(ENV, request, catalog, actor="dev")
    assert {application.name for application in plan.applications} == {BLOG, DATABASE}
    return commit.sha


async def last_sequence(service: ApiService) -> int:
    deliveries = await service.runtime.spine.read(ENV, 0, 100_000)
    return deliveries[-1].sequence


async def wait_until_reconciled(service: ApiService, reconciler: SimulatedReconciler) -> None:
    """Until ``reconciler`` has handled (and acknowledged) the whole stream."""

    async def caught_up() -> bool:
        return reconciler.reconciled.get(ENV, 0) >= await last_sequence(service)

    await eventually(caught_up)


class RecordingPublisher:
    """Publishes on the spine and remembers what it published and whether it was new."""

    def __init__(self, service: ApiService) -> None:
        self.spine = service.runtime.spine
        self.published: list[tuple[Event, Published]] = []

    async def publish(self, environment: str, event: Event) -> None:
        self.published.append((event, await self.spine.publish(environment, event)))


# -------------------------------------------------------------------------------------------------
# The simulated reconciler
# -------------------------------------------------------------------------------------------------


async def test_an_install_goes_installing_then_running_dependency_first(
    settings: Settings, catalog: CatalogView
) -> None:
    async with demo_service(settings) as (service, _):
        await bootstrap_demo(service.runtime)
        sha = await install_blog(service, catalog)

        blog = await wait_for_status(service, BLOG, "Running")
        await wait_for_status(service, DATABASE, "Running")
        database_health, blog_health = await health(service, DATABASE), await health(service, BLOG)
        deliveries = await service.runtime.spine.read(ENV, 0, 100_000)

    assert [status for _, status in database_health] == ["Installing", "Running"]
    assert [status for _, status in blog_health] == ["Installing", "Running"]
    # The dependency is Running before its dependent is.
    assert database_health[1][0] < blog_health[1][0]
    kustomization = blog["inputs"]["kustomization"]
    assert kustomization["lastAppliedRevision"] == f"main@sha1:{sha}"
    assert kustomization["ready"] == "True"
    assert blog["inputs"]["helmRelease"]["ready"] == "True"

    simulated = [d.event for d in deliveries if d.event.source == SOURCE]
    assert {event.type for event in simulated} == {FLUX_CHANGED}
    assert all("demo: simulated" in event.data["notification"]["message"] for event in simulated)
    steps = [
        (
            event.data["object"]["metadata"]["name"],
            event.data["object"]["status"]["conditions"][0]["reason"],
        )
        for event in simulated
        if event.data["object"]["kind"] == KUSTOMIZATION
    ]
    assert [reason for name, reason in steps if name == BLOG] == [
        "DependencyNotReady",
        "Progressing",
        "ReconciliationSucceeded",
    ]
    assert [reason for name, reason in steps if name == DATABASE] == [
        "Progressing",
        "ReconciliationSucceeded",
    ]
    # The dependent starts once its dependency is Ready.
    assert steps.index((DATABASE, "ReconciliationSucceeded")) < steps.index((BLOG, "Progressing"))


async def test_uninstall_removes_the_applications_and_their_flux_objects(
    settings: Settings, catalog: CatalogView
) -> None:
    async with demo_service(settings) as (service, _):
        await bootstrap_demo(service.runtime)
        await install_blog(service, catalog)
        await wait_for_status(service, BLOG, "Running")
        await wait_for_status(service, DATABASE, "Running")
        kv = await service.kv(ENV)
        assert await kv.get(kv_key("flux", KUSTOMIZATION, BLOG)) is not None

        await service.runtime.provisioner.uninstall(ENV, DATABASE, cascade=True, actor="dev")

        flux_keys = [
            kv_key("flux", kind, name)
            for kind in (KUSTOMIZATION, "HelmRelease")
            for name in (BLOG, DATABASE)
        ]

        async def pruned() -> bool:
            return all([await kv.get(key) is None for key in flux_keys])

        await eventually(pruned)
        assert await document(service, BLOG) is None
        assert await document(service, DATABASE) is None
        deliveries = await service.runtime.spine.read(ENV, 0, 100_000)
        deleted = [d.event for d in deliveries if d.event.type == FLUX_DELETED]
        assert {event.source for event in deleted} == {SOURCE}
        # Dependents are pruned before what they depend on.
        names = [event.data["object"]["metadata"]["name"] for event in deleted]
        assert names.index(BLOG) < names.index(DATABASE)


async def test_a_reconciler_run_again_adds_nothing_and_resumes_after_its_acknowledgements(
    settings: Settings, catalog: CatalogView
) -> None:
    async with demo_service(settings) as (service, reconciler):
        await bootstrap_demo(service.runtime)
        installed = await install_blog(service, catalog)
        await wait_for_status(service, BLOG, "Running")
        await wait_until_reconciled(service, reconciler)
        before = await last_sequence(service)

        # A durable consumer of its own reads every commit again, as a reconciler that lost its
        # acknowledgements would: everything it publishes is a duplicate.
        first = reconciler_for(service.runtime.manager, durable="demo-replay", delay=0)
        replayed = RecordingPublisher(service)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first.run, replayed)
            await wait_until_reconciled(service, first)
            tasks.cancel_scope.cancel()
        after_replay = await last_sequence(service)

        # Restarted on the same durable consumer, it carries on after what it acknowledged.
        restarted = reconciler_for(service.runtime.manager, durable="demo-replay", delay=0)
        resumed = RecordingPublisher(service)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(restarted.run, resumed)
            uninstall = await service.runtime.provisioner.uninstall(
                ENV, DATABASE, cascade=True, actor="dev"
            )
            await wait_until_reconciled(service, restarted)
            tasks.cancel_scope.cancel()

    assert replayed.published
    assert all(result.duplicate for _, result in replayed.published)
    assert after_replay == before
    resumed_ids = {event.id for event, _ in resumed.published}
    install_ids = {
        demo_event_id(ENV, installed, KUSTOMIZATION, name, step)
        for name in (BLOG, DATABASE)
        for step in Step
    }
    assert not resumed_ids & install_ids
    assert demo_event_id(ENV, uninstall.sha, KUSTOMIZATION, BLOG, Step.DELETED) in resumed_ids


def test_waves_put_every_dependency_before_its_dependents() -> None:
    waves = reconcile_waves({"web": ["db", "cache"], "db": [], "cache": ["db"], "x": ["elsewhere"]})
    assert waves == [("db", "x"), ("cache",), ("web",)]
    # A cycle still ends: it is reconciled last, all at once.
    assert reconcile_waves({"a": ["b"], "b": ["a"], "c": []}) == [("c",), ("a", "b")]


def test_a_negative_delay_is_refused(catalyst_plugin_manager: PluginManager) -> None:
    with pytest.raises(InvalidInput):
        reconciler_for(catalyst_plugin_manager, delay=-1)


def test_from_manager_uses_the_providers_the_runtime_starts(
    catalyst_plugin_manager: PluginManager,
) -> None:
    reconciler = SimulatedReconciler.from_manager(catalyst_plugin_manager, delay=0.1)
    assert reconciler.spine is catalyst_plugin_manager.spine()
    assert reconciler.committer is catalyst_plugin_manager.committer()
    assert reconciler.source == "/sovereigns/local/demo-reconciler"
    assert reconciler.name == "demo-reconciler"
    assert reconciler.delay == 0.1


# -------------------------------------------------------------------------------------------------
# The bootstrap
# -------------------------------------------------------------------------------------------------


async def test_bootstrap_is_idempotent_on_an_existing_data_directory(settings: Settings) -> None:
    async with demo_service(settings) as (service, _):
        first = await bootstrap_demo(service.runtime)
        again = await bootstrap_demo(service.runtime)
    async with demo_service(settings) as (service, _):
        restarted = await bootstrap_demo(service.runtime)
        directory = service.runtime.directory
        organizations = [record.name for record in await directory.organizations()]
        environments = [record.name for record in await directory.environments()]

    assert first.created == (DEMO_ORGANIZATION, *DEMO_ENVIRONMENTS)
    assert again.created == ()
    assert restarted.created == ()
    assert organizations == [DEMO_ORGANIZATION]
    assert sorted(environments) == sorted(DEMO_ENVIRONMENTS)
    assert restarted.environments == ("acme-dev", "acme-stg", "acme-prod")


async def test_the_printed_tokens_are_accepted_and_the_printed_urls_answer(
    settings: Settings,
) -> None:
    async with demo_service(settings) as (service, _):
        setup = await bootstrap_demo(service.runtime)
        text = setup.render(service.base_url)
        plugins = await service.client.get(
            "/v1/plugins", headers={"Authorization": f"Bearer {setup.token('sovereign-admin')}"}
        )
        viewer = await service.client.get(
            f"/v1/environments/{ENV}/applications",
            headers={"Authorization": f"Bearer {setup.token(Role.ORG_VIEWER)}"},
        )
        principals = {
            role: await service.identity.authenticate(token) for role, token in setup.tokens.items()
        }
        documentation = {
            path: (await service.client.get(path)).status_code
            for path in ("/schema", "/schema/swagger", "/schema/openapi.json")
        }

    assert plugins.status_code == 200, plugins.text
    assert viewer.status_code == 200, viewer.text
    assert set(principals) == {user.role for user in DEMO_USERS}
    assert principals[Role.SOVEREIGN_ADMIN].organization is None
    assert principals[Role.ORG_DEVELOPER].organization == DEMO_ORGANIZATION
    assert principals[Role.ORG_DEVELOPER].groups == {"team-platform"}
    assert principals[Role.SECURITY_OFFICER].groups == {"team-security"}
    assert all(principal.roles == {role} for role, principal in principals.items())
    assert setup.token("org-admin") not in repr(setup)

    assert documentation == {"/schema": 200, "/schema/swagger": 200, "/schema/openapi.json": 200}
    base = service.base_url.rstrip("/")
    for path in documentation:
        assert f"{base}{path}" in text
    assert f'curl -N -H "Authorization: Bearer $CATALYST_DEMO_ORG_DEVELOPER" {base}' in text
    assert f"{base}/v1/environments/{ENV}/events" in text
    assert "SIMULATED" in text
    for role, token in setup.tokens.items():
        assert f"export CATALYST_DEMO_{role.value.upper().replace('-', '_')}={token}" in text
