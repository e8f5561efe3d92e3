"""The promotion journey of issue 6, with the gitea committer (issue 8's acceptance).

The same flow as ``test_journey_promotion.py`` (:func:`journeys.promotion_journey`: install in
acme-dev, promote to acme-stg (refused while its database is missing, then bundled), promote to
acme-prod under pr-required + soak + change-window) with every Environment repository on a Gitea
stand-in (its REST API validated against Gitea's OpenAPI description, Git over HTTP through
``git http-backend``) and Gitea's webhooks delivered to the service. On top of the embedded
journey, :class:`GiteaChecks` checks the Gitea side: the change is a pull request, approvals are
reviews, the policy verdict is the required commit status ``catalyst/environment-policy`` (so a
merge in Gitea's own UI is refused until it passes), and the merge is Gitea's, made only once the
verdict passes.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from tests.journeys import ENVIRONMENTS, ROOT, CommitterChecks, journey_settings, promotion_journey

from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service

pytestmark = pytest.mark.anyio

OPENAPI = ROOT / "tests" / "upstream-schemas" / "gitea" / "v1_openapi3_json.rendered.json"
CATALYST_TOKEN = "journey-catalyst-token-0123456789"
REVIEWER_TOKEN = "journey-reviewer-token-0123456789"
DANA_TOKEN = "journey-dana-token-0123456789"
WEBHOOK_SECRET = "journey-gitea-webhook-secret-0123"
WEBHOOK_URL = "http://catalyst.invalid/v1/webhooks/gitea"


@pytest.fixture
def gitea(tmp_path: Path) -> Iterator[GiteaStandIn]:
    with GiteaStandIn(tmp_path / "gitea", OPENAPI) as server:
        server.add_user("catalyst", CATALYST_TOKEN)
        server.add_user("catalyst-reviewer", REVIEWER_TOKEN)
        server.add_user("dana", DANA_TOKEN)
        yield server
    assert server.validation_errors == [], server.validation_errors


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path, gitea: GiteaStandIn
) -> AsyncIterator[ApiService]:
    settings = journey_settings(
        catalyst_settings,
        tmp_path,
        repository_url_template=gitea.url + "/{organization}/{environment}.git",
        providers={"committer": "gitea"},
        plugins={
            "gitea": {
                "url": gitea.url,
                "token": CATALYST_TOKEN,
                "reviewer_token": REVIEWER_TOKEN,
                "webhook_url": WEBHOOK_URL,
                "webhook_secret": WEBHOOK_SECRET,
                "connect_timeout": 2.0,
                "request_timeout": 20.0,
                "status_url_template": "https://catalyst.journey/{environment}/changes/{change}",
            },
        },
    )
    entry_points = importlib.metadata.entry_points(group="catalyst", name="gitea")
    manager = PluginManager(settings, strict=True).load(entry_points=entry_points)
    manager.check_settings()
    async with running_service(
        settings, manager=manager, projector=True, client_timeout=60
    ) as running:
        gitea.redirect_webhooks("http://catalyst.invalid", running.base_url)
        yield running
        await settle(gitea)


async def settle(gitea: GiteaStandIn) -> None:
    """Wait until Gitea's webhooks so far have reached the service."""
    await anyio.to_thread.run_sync(gitea.flush_webhooks)


def policy_status(gitea: GiteaStandIn, environment: str, sha: str) -> str:
    statuses = [s for s in gitea.repository("acme", environment).statuses if s.sha == sha]
    assert statuses, f"no policy status on {sha}"
    assert {s.context for s in statuses} == {"catalyst/environment-policy"}
    return statuses[-1].state


def merge_in_gitea_ui(gitea: GiteaStandIn, environment: str, number: str) -> httpx.Response:
    """Dana presses "Squash and merge" in Gitea (the same API call Gitea's UI makes)."""
    return httpx.post(
        f"{gitea.url}/api/v1/repos/acme/{environment}/pulls/{number}/merge",
        json={"do": "squash"},
        headers={"Authorization": f"token {DANA_TOKEN}"},
    )


class GiteaChecks(CommitterChecks):
    """The journey's Gitea side: repositories, pull requests, reviews, statuses, protection."""

    def __init__(self, gitea: GiteaStandIn) -> None:
        self.gitea = gitea
        self.head = ""

    async def environments_created(self) -> None:
        for environment in ENVIRONMENTS:
            repository = self.gitea.repository("acme", environment)
            assert repository.private
            assert [hook.url for hook in repository.hooks] == [WEBHOOK_URL]

    async def stg_merged(self, change: str, sha: str) -> None:
        stg_pull = self.gitea.repository("acme", "acme-stg").pulls[int(change)]
        assert (stg_pull.merged, stg_pull.merge_commit_sha) == (True, sha)
        assert str(self.gitea.git("acme", "acme-stg").references["refs/heads/main"].target) == sha

    async def prod_policy_saved(self) -> None:
        protection = self.gitea.repository("acme", "acme-prod").protections["main"]
        assert protection["enable_status_check"]
        assert protection["status_check_contexts"] == ["catalyst/environment-policy"]
        assert protection["push_whitelist_usernames"] == ["catalyst"]

    async def prod_change_opened(self, change: str, head: str) -> None:
        pull = self.gitea.repository("acme", "acme-prod").pulls[int(change)]
        assert (pull.poster, pull.base_branch, pull.state) == ("catalyst", "main", "open")
        assert pull.head_sha == head
        self.head = pull.head_sha
        await settle(self.gitea)
        assert policy_status(self.gitea, "acme-prod", self.head) == "failure"  # needs approvals
        refused_in_gitea = merge_in_gitea_ui(self.gitea, "acme-prod", change)
        assert refused_in_gitea.status_code == 405, refused_in_gitea.text

    async def prod_change_approved(self, change: str) -> None:
        reviews = self.gitea.repository("acme", "acme-prod").pulls[int(change)].reviews
        assert {(r.user, r.state) for r in reviews} == {("catalyst-reviewer", "APPROVED")}
        approvers = {
            subject
            for subject in ("dana@acme", "webby@acme", "pat@acme", "sec@acme")
            if any(f"by {subject} " in r.body for r in reviews)
        }
        assert approvers == {"dana@acme", "webby@acme", "pat@acme", "sec@acme"}
        await settle(self.gitea)
        assert policy_status(self.gitea, "acme-prod", self.head) == "pending"  # waits for time now
        assert merge_in_gitea_ui(self.gitea, "acme-prod", change).status_code == 405

    async def prod_merged(self, change: str, merged: dict[str, Any]) -> None:
        prod_sha = merged["commit"]["sha"]
        pull = self.gitea.repository("acme", "acme-prod").pulls[int(change)]
        assert (pull.merged, pull.merged_by, pull.merge_commit_sha) == (True, "catalyst", prod_sha)
        assert policy_status(self.gitea, "acme-prod", pull.head_sha) == "success"
        main = self.gitea.git("acme", "acme-prod").references["refs/heads/main"]
        assert str(main.target) == prod_sha
        assert merged["commit"]["trailers"]["Catalyst-Actor"] == "dana@acme"


async def test_the_promotion_journey_on_gitea(service: ApiService, gitea: GiteaStandIn) -> None:
    await promotion_journey(service, GiteaChecks(gitea))
