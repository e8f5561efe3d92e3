"""The promotion journey of issue 6, with the gitea committer (issue 8's acceptance).

The same flow as ``test_journey_promotion.py`` — install in acme-dev, promote to acme-stg (refused
while its database is missing, then bundled), promote to acme-prod under pr-required + soak +
change-window — with every Environment repository on a Gitea stand-in (its REST API validated
against Gitea's OpenAPI description, Git over HTTP through ``git http-backend``) and Gitea's
webhooks delivered to the service. On top of the embedded journey it checks the Gitea side: the
change is a pull request, approvals are reviews, the policy verdict is the required commit status
``catalyst/environment-policy`` (so a merge in Gitea's own UI is refused until it passes), and the
merge is Gitea's, made only once the verdict passes.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "tests" / "upstream-schemas" / "gitea" / "v1_openapi3_json.rendered.json"
SECRET = "promotion-journey-flux-secret-0123"
PASSWORD = "journey-admin-password-5678"
ENVIRONMENTS = ("acme-dev", "acme-stg", "acme-prod")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
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
    settings = catalyst_settings(
        data_dir=str(tmp_path),
        sovereign="journey",
        catalog_paths=[str(ROOT / "catalog")],
        repository_url_template=gitea.url + "/{organization}/{environment}.git",
        providers={"committer": "gitea"},
        plugins={
            "core": {"flux_webhook_secrets": dict.fromkeys(ENVIRONMENTS, SECRET)},
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


async def flux_ready(
    service: ApiService, environment: str, application: str, sha: str, at: datetime
) -> None:
    """Play Flux: the application's Kustomization is ready at ``sha``, as of ``at``."""
    body = json.dumps(
        {
            "involvedObject": {
                "kind": "Kustomization",
                "namespace": "flux-system",
                "name": application,
                "uid": f"uid-{environment}-{application}",
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "resourceVersion": str(int(at.timestamp())),
            },
            "severity": "info",
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": "Health check passed",
            "reason": "ReconciliationSucceeded",
            "metadata": {"revision": f"main@sha1:{sha}"},
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-0",
        }
    ).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await service.client.post(
        f"/v1/webhooks/flux/{environment}",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": f"sha256={digest}"},
    )
    assert response.status_code in (200, 202, 204), response.text


async def wait_for_status(service: ApiService, environment: str, wanted: dict[str, str]) -> None:
    with anyio.fail_after(30):
        while True:
            response = await service.client.get(
                f"/v1/environments/{environment}/applications", headers=service.auth()
            )
            statuses = {item["name"]: item["status"] for item in response.json()["items"]}
            if all(statuses.get(name) == status for name, status in wanted.items()):
                return
            await anyio.sleep(0.05)


def failing(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["kind"]: rule for rule in verdict["rules"] if not rule["passed"]}


async def application_files(service: ApiService, environment: str, app: str) -> dict[str, str]:
    committer = service.runtime.committer
    paths = await committer.list_files(environment, f"applications/{app}/")
    files = {}
    for path in paths:
        content = await committer.read_file(environment, path)
        assert content is not None
        files[path] = content.decode()
    return files


async def test_the_promotion_journey_on_gitea(service: ApiService, gitea: GiteaStandIn) -> None:
    client = service.client
    now = [T0]
    service.runtime.clock = lambda: now[0]
    admin = service.auth("sovereign-admin", None)
    org_admin = service.auth("org-admin")
    developer = service.auth("org-developer", groups=["team-platform"], subject="dana@acme")
    platform = service.auth("org-developer", groups=["team-platform"], subject="pat@acme")
    security = service.auth("security-officer", groups=["team-security"], subject="sec@acme")
    outsider = service.auth("org-developer", groups=["team-web"], subject="webby@acme")

    assert (await client.post("/v1/organizations", json={"name": "acme"}, headers=admin)).is_success
    for env_type in ("dev", "stg", "prod"):
        created = await client.post(
            "/v1/organizations/acme/environments", json={"envType": env_type}, headers=org_admin
        )
        assert created.status_code == 201, created.text
    for environment in ENVIRONMENTS:
        repository = gitea.repository("acme", environment)
        assert repository.private
        assert [hook.url for hook in repository.hooks] == [WEBHOOK_URL]

    # 1. Install in acme-dev.
    installed = await client.post(
        "/v1/environments/acme-dev/applications",
        json={
            "name": "marketing-site",
            "blueprint": "bp-wordpress",
            "config": {
                "siteTitle": "Acme",
                "adminEmail": "web@acme.example",
                "adminPassword": PASSWORD,
            },
        },
        headers=developer,
    )
    assert installed.status_code == 201, installed.text
    names = [app["name"] for app in installed.json()["plan"]["applications"]]
    database = next(name for name in names if name != "marketing-site")

    # 2. Promote to acme-stg without its database: opened, but blocked by the dependency.
    lone = await client.post(
        "/v1/promotions",
        json={"application": "marketing-site", "from": "acme-dev", "to": "acme-stg"},
        headers=developer,
    )
    assert lone.status_code == 201, lone.text
    assert [m["application"] for m in lone.json()["missingDependencies"]] == [database]
    assert set(failing(lone.json()["verdict"])) == {"dependencies"}
    refused = await client.post(
        f"/v1/environments/acme-stg/changes/{lone.json()['id']}/merge", headers=developer
    )
    problem = assert_problem(refused, 409, "policy-refused")
    assert database in failing(problem["verdict"])["dependencies"]["summary"]
    closed = await client.post(
        f"/v1/environments/acme-stg/changes/{lone.json()['id']}/close", headers=developer
    )
    assert closed.json()["status"] == "closed"

    # ... and with bundleDependencies: one change with both, and stg's policy has no rules.
    bundled = await client.post(
        "/v1/promotions",
        json={
            "application": "marketing-site",
            "from": "acme-dev",
            "to": "acme-stg",
            "bundleDependencies": True,
        },
        headers=developer,
    )
    assert bundled.status_code == 201, bundled.text
    assert sorted(a["name"] for a in bundled.json()["applications"]) == sorted(names)
    assert bundled.json()["verdict"]["passed"] is True
    merged = await client.post(
        f"/v1/environments/acme-stg/changes/{bundled.json()['id']}/merge", headers=developer
    )
    assert merged.status_code == 200, merged.text
    stg_sha = merged.json()["commit"]["sha"]
    stg_pull = gitea.repository("acme", "acme-stg").pulls[int(bundled.json()["id"])]
    assert (stg_pull.merged, stg_pull.merge_commit_sha) == (True, stg_sha)
    assert str(gitea.git("acme", "acme-stg").references["refs/heads/main"].target) == stg_sha

    # Flux reconciles stg at T0: both Running from then on.
    for name in (database, "marketing-site"):
        await flux_ready(service, "acme-stg", name, stg_sha, T0)
    await wait_for_status(service, "acme-stg", dict.fromkeys(names, "Running"))

    # 3. The prod policy: set by the sovereign-admin (org-admins are not delegated).
    policy = {
        "metadata": {"name": "prod-default", "namespace": "acme"},
        "spec": {
            "appliesTo": {"environments": ["acme-prod"]},
            "rules": [
                {
                    "kind": "pr-required",
                    "approvers": ["team-platform", "team-security"],
                    "minApprovals": 2,
                },
                {"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "72h"},
                {"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"},
            ],
        },
    }
    denied = await client.put("/v1/environments/acme-prod/policy", json=policy, headers=org_admin)
    assert_problem(denied, 403, "forbidden")
    saved = await client.put("/v1/environments/acme-prod/policy", json=policy, headers=admin)
    assert saved.status_code == 200, saved.text
    protection = gitea.repository("acme", "acme-prod").protections["main"]
    assert protection["enable_status_check"]
    assert protection["status_check_contexts"] == ["catalyst/environment-policy"]
    assert protection["push_whitelist_usernames"] == ["catalyst"]
    read = (await client.get("/v1/environments/acme-prod/policy", headers=developer)).json()
    assert [rule["kind"] for rule in read["spec"]["rules"]] == [
        "pr-required",
        "soak",
        "change-window",
    ]

    # 4. Promote to prod, an hour after stg went Running: every rule refuses, each explains.
    now[0] = T0 + timedelta(hours=1)
    promoted = await client.post(
        "/v1/promotions",
        json={
            "application": "marketing-site",
            "from": "acme-stg",
            "to": "acme-prod",
            "bundleDependencies": True,
        },
        headers=developer,
    )
    assert promoted.status_code == 201, promoted.text
    change = promoted.json()["id"]
    change_path = f"/v1/environments/acme-prod/changes/{change}"
    pull = gitea.repository("acme", "acme-prod").pulls[int(change)]
    assert (pull.poster, pull.base_branch, pull.state) == ("catalyst", "main", "open")
    assert pull.head_sha == promoted.json()["head"]
    await settle(gitea)
    assert policy_status(gitea, "acme-prod", pull.head_sha) == "failure"  # needs approvals
    refused_in_gitea = merge_in_gitea_ui(gitea, "acme-prod", change)
    assert refused_in_gitea.status_code == 405, refused_in_gitea.text
    await wait_for_status(service, "acme-prod", dict.fromkeys(names, "Pending approval"))
    refused = await client.post(f"{change_path}/merge", headers=developer)
    verdict = assert_problem(refused, 409, "policy-refused")["verdict"]
    assert set(failing(verdict)) == {"pr-required", "soak", "change-window"}
    soak = failing(verdict)["soak"]
    assert soak["nextPossible"].startswith("2026-11-05T09:00")
    window = failing(verdict)["change-window"]
    assert window["nextPossible"].startswith("2026-11-03T14:00")

    # 5. Approvals: the author's own and an unlisted team's do not count; two listed ones do.
    for headers in (developer, outsider, platform):
        approved = await client.post(f"{change_path}/approve", headers=headers)
        assert approved.status_code == 200, approved.text
    pr = failing(approved.json()["verdict"])["pr-required"]
    assert "1" in pr["summary"]
    approved = await client.post(f"{change_path}/approve", headers=security)
    assert "pr-required" not in failing(approved.json()["verdict"])
    reviews = gitea.repository("acme", "acme-prod").pulls[int(change)].reviews
    assert {(r.user, r.state) for r in reviews} == {("catalyst-reviewer", "APPROVED")}
    approvers = {
        subject
        for subject in ("dana@acme", "webby@acme", "pat@acme", "sec@acme")
        if any(f"by {subject} " in r.body for r in reviews)
    }
    assert approvers == {"dana@acme", "webby@acme", "pat@acme", "sec@acme"}
    await settle(gitea)
    assert policy_status(gitea, "acme-prod", pull.head_sha) == "pending"  # waits for time now
    assert merge_in_gitea_ui(gitea, "acme-prod", change).status_code == 405

    # 6. Soak done (T0 + 73h, Thursday 10:00 UTC) but outside the window: refused, until 14:00.
    now[0] = T0 + timedelta(hours=73)
    refused = await client.post(f"{change_path}/merge", headers=developer)
    verdict = assert_problem(refused, 409, "policy-refused")["verdict"]
    assert set(failing(verdict)) == {"change-window"}
    assert verdict["nextPossible"].startswith("2026-11-05T14:00")

    # 7. Inside the window: it merges.
    now[0] = datetime(2026, 11, 5, 14, 30, tzinfo=UTC)
    merged = await client.post(f"{change_path}/merge", headers=developer)
    assert merged.status_code == 200, merged.text
    assert merged.json()["verdict"]["passed"] is True
    again = await client.get(change_path, headers=developer)
    assert again.json()["status"] == "merged"
    prod_sha = merged.json()["commit"]["sha"]
    pull = gitea.repository("acme", "acme-prod").pulls[int(change)]
    assert (pull.merged, pull.merged_by, pull.merge_commit_sha) == (True, "catalyst", prod_sha)
    assert policy_status(gitea, "acme-prod", pull.head_sha) == "success"
    assert str(gitea.git("acme", "acme-prod").references["refs/heads/main"].target) == prod_sha
    assert merged.json()["commit"]["trailers"]["Catalyst-Actor"] == "dana@acme"

    # The prod repository holds stg's Application directory, rendered for prod.
    for name in names:
        stg = await application_files(service, "acme-stg", name)
        prod = await application_files(service, "acme-prod", name)
        assert sorted(stg) == sorted(prod)
        for path, content in stg.items():
            expected = content.replace("acme-stg", "acme-prod").replace("/env/stg/", "/env/prod/")
            assert prod[path] == expected, path
        assert PASSWORD not in json.dumps(prod)
