"""Fixtures: a Gitea stand-in per test (REST API validated against Gitea's OpenAPI description,
Git over HTTP through ``git http-backend``) and committers configured for it."""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import pytest

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.settings import GiteaSettings
from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

ROOT: Final = Path(__file__).resolve().parents[3]
OPENAPI: Final = ROOT / "tests" / "upstream-schemas" / "gitea" / "v1_openapi3_json.rendered.json"
CATALYST_TOKEN: Final = "catalyst-token-5f0c2b7d9e1a4c3b"
REVIEWER_TOKEN: Final = "reviewer-token-8a1d3e5f7b9c2d4e"
HUMAN_TOKEN: Final = "human-token-1b2c3d4e5f6a7b8c"
WEBHOOK_SECRET: Final = "gitea-webhook-secret-0123456789"

if shutil.which("git") is None:  # pragma: no cover - the workspace's machines have it
    pytest.skip("git is not on PATH", allow_module_level=True)

CommitterMaker = Callable[..., AbstractAsyncContextManager[GiteaCommitter]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[GiteaStandIn]:
    """A started stand-in with Catalyst's user, its reviewer user and a human (``dana``)."""
    with GiteaStandIn(tmp_path / "gitea", OPENAPI) as server:
        server.add_user("catalyst", CATALYST_TOKEN)
        server.add_user("catalyst-reviewer", REVIEWER_TOKEN)
        server.add_user("dana", HUMAN_TOKEN)
        yield server
    assert server.validation_errors == [], server.validation_errors


def settings_for(standin: GiteaStandIn, tmp_path: Path, **overrides: Any) -> GiteaSettings:
    """Settings for ``standin`` with test-friendly (short) waits."""
    values: dict[str, Any] = {
        "url": standin.url,
        "token": CATALYST_TOKEN,
        "reviewer_token": REVIEWER_TOKEN,
        "connect_timeout": 2.0,
        "request_timeout": 10.0,
        "git_timeout": 30.0,
        "max_retries": 2,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "rate_limit_max_wait": 2.0,
        "merge_check_timeout": 2.0,
        "mirror_dir": tmp_path / "mirrors",
    }
    values.update(overrides)
    return GiteaSettings(**values)


@pytest.fixture
def make_committer(standin: GiteaStandIn, tmp_path: Path) -> CommitterMaker:
    """``async with make_committer(**settings) as committer:`` a started committer."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[GiteaCommitter]:
        committer = GiteaCommitter(settings_for(standin, tmp_path, **overrides), data_dir=tmp_path)
        await committer.start()
        try:
            yield committer
        finally:
            await committer.close()

    return make


WEBHOOK_URL: Final = "http://catalyst.invalid/v1/webhooks/gitea"


def service_settings(
    catalyst_settings: Callable[..., Settings], standin: GiteaStandIn, **gitea: Any
) -> Settings:
    """Catalyst's settings with the gitea committer on ``standin`` (webhooks on)."""
    values: dict[str, Any] = {
        "url": standin.url,
        "token": CATALYST_TOKEN,
        "reviewer_token": REVIEWER_TOKEN,
        "webhook_url": WEBHOOK_URL,
        "webhook_secret": WEBHOOK_SECRET,
        "connect_timeout": 2.0,
        "request_timeout": 10.0,
        "max_retries": 2,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "merge_check_timeout": 2.0,
        "status_url_template": "https://catalyst.invalid/environments/{environment}/changes/{change}",
    }
    values.update(gitea)
    return catalyst_settings(providers={"committer": "gitea"}, plugins={"gitea": values})


def gitea_manager(settings: Settings) -> PluginManager:
    """The built-ins plus this plugin, loaded from its entry point (strict)."""
    entry_points = importlib.metadata.entry_points(group="catalyst", name="gitea")
    manager = PluginManager(settings, strict=True).load(entry_points=entry_points)
    manager.check_settings()
    return manager


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], standin: GiteaStandIn
) -> AsyncIterator[ApiService]:
    """Catalyst's API with the gitea committer on ``standin``; Gitea's webhooks reach it."""
    settings = service_settings(catalyst_settings, standin)
    async with running_service(
        settings, manager=gitea_manager(settings), projector=True, client_timeout=30
    ) as running:
        standin.redirect_webhooks("http://catalyst.invalid", running.base_url)
        yield running
        await anyio.to_thread.run_sync(standin.flush_webhooks)
