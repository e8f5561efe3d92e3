"""The journeys' shared steps: the service's settings, Flux played by the test, and the promotion
journey of issue 6, which every committer walks (``test_journey_promotion.py`` with the embedded
one, ``test_journey_gitea.py`` with Gitea's).

The promotion journey: install in acme-dev → promote to acme-stg (refused while its database is
missing, then bundled) → promote to acme-prod under pr-required (2 of team-platform/team-security)
+ soak (72h from acme-stg) + change-window (Tue/Thu 14:00 UTC, 2h). Each refusal carries the
explanation; the merge succeeds once every condition holds; the prod repository then holds the
same Application directory as stg (rendered for prod: its context labels and secret paths name
acme-prod). A committer's own checks (what the change, an approval, the verdict and the merge are
on its side) come in through :class:`CommitterChecks`, called at each of those points.

The clock the policy sees is the runtime's (``runtime.clock``), set by the journey: nothing sleeps.
Flux is played by the test, posting signed notifications with the times it chooses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem

ROOT = Path(__file__).resolve().parents[1]
FLUX_SECRET = "journey-flux-hmac-secret-0123456789"
PASSWORD = "journey-admin-password-5678"
ENVIRONMENTS = ("acme-dev", "acme-stg", "acme-prod")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def journey_settings(
    catalyst_settings: Callable[..., Settings],
    tmp_path: Path,
    *,
    plugins: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> Settings:
    """The journeys' service: sovereign ``journey``, the repository's catalog, and Flux's
    notifications for every journey Environment signed with :data:`FLUX_SECRET`."""
    return catalyst_settings(
        data_dir=str(tmp_path),
        sovereign="journey",
        catalog_paths=[str(ROOT / "catalog")],
        plugins={
            "core": {"flux_webhook_secrets": dict.fromkeys(ENVIRONMENTS, FLUX_SECRET)},
            **(plugins or {}),
        },
        **overrides,
    )


async def flux_ready(
    service: ApiService, environment: str, application: str, sha: str, at: datetime
) -> None:
    """Play Flux: the application's Kustomization is ready at ``sha``, as of ``at`` (what
    notification-controller's generic-hmac provider posts)."""
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
    digest = hmac.new(FLUX_SECRET.encode(), body, hashlib.sha256).hexdigest()
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


async def install_wordpress(
    service: ApiService, environment: str, headers: dict[str, str], **request: Any
) -> httpx.Response:
    """Install bp-wordpress as ``marketing-site`` (admin password :data:`PASSWORD`); ``request``
    adds to the request's body (``dependencies``…)."""
    config = {"siteTitle": "Acme", "adminEmail": "web@acme.example", "adminPassword": PASSWORD}
    return await service.client.post(
        f"/v1/environments/{environment}/applications",
        json={"name": "marketing-site", "blueprint": "bp-wordpress", "config": config, **request},
        headers=headers,
    )


async def promote(
    service: ApiService, source: str, target: str, headers: dict[str, str], *, bundle: bool
) -> httpx.Response:
    """Promote ``marketing-site`` from ``source`` to ``target`` (with its dependencies if
    ``bundle``)."""
    request: dict[str, Any] = {"application": "marketing-site", "from": source, "to": target}
    if bundle:
        request["bundleDependencies"] = True
    return await service.client.post("/v1/promotions", json=request, headers=headers)


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


class CommitterChecks:
    """What a committer checks on its own side along the promotion journey (by default nothing:
    the embedded committer has no side but the API's). Each method is called once, at its point.
    """

    async def environments_created(self) -> None:
        """acme-dev, acme-stg and acme-prod have just been created."""

    async def stg_merged(self, change: str, sha: str) -> None:
        """The bundled change ``change`` has merged into acme-stg as commit ``sha``."""

    async def prod_policy_saved(self) -> None:
        """acme-prod's policy (pr-required, soak, change-window) has just been saved."""

    async def prod_change_opened(self, change: str, head: str) -> None:
        """The promotion to acme-prod opened ``change`` at ``head``, refused by every rule."""

    async def prod_change_approved(self, change: str) -> None:
        """Four approvals are given (by dana, webby, pat and sec): pr-required now passes."""

    async def prod_merged(self, change: str, merged: dict[str, Any]) -> None:
        """``change`` has merged into acme-prod; ``merged`` is the merge's answer."""


async def promotion_journey(service: ApiService, checks: CommitterChecks) -> None:
    """Walk the promotion journey (see the module's docstring), calling ``checks`` on the way."""
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
    await checks.environments_created()

    # 1. Install in acme-dev.
    installed = await install_wordpress(service, "acme-dev", developer)
    assert installed.status_code == 201, installed.text
    names = [app["name"] for app in installed.json()["plan"]["applications"]]
    database = next(name for name in names if name != "marketing-site")

    # 2. Promote to acme-stg without its database: opened, but blocked by the dependency.
    lone = await promote(service, "acme-dev", "acme-stg", developer, bundle=False)
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
    bundled = await promote(service, "acme-dev", "acme-stg", developer, bundle=True)
    assert bundled.status_code == 201, bundled.text
    assert sorted(a["name"] for a in bundled.json()["applications"]) == sorted(names)
    assert bundled.json()["verdict"]["passed"] is True
    merged = await client.post(
        f"/v1/environments/acme-stg/changes/{bundled.json()['id']}/merge", headers=developer
    )
    assert merged.status_code == 200, merged.text
    stg_sha = merged.json()["commit"]["sha"]
    await checks.stg_merged(bundled.json()["id"], stg_sha)

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
    await checks.prod_policy_saved()
    read = (await client.get("/v1/environments/acme-prod/policy", headers=developer)).json()
    assert [rule["kind"] for rule in read["spec"]["rules"]] == [
        "pr-required",
        "soak",
        "change-window",
    ]

    # 4. Promote to prod, an hour after stg went Running: every rule refuses, each explains.
    now[0] = T0 + timedelta(hours=1)
    promoted = await promote(service, "acme-stg", "acme-prod", developer, bundle=True)
    assert promoted.status_code == 201, promoted.text
    change = promoted.json()["id"]
    change_path = f"/v1/environments/acme-prod/changes/{change}"
    await checks.prod_change_opened(change, promoted.json()["head"])
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
    await checks.prod_change_approved(change)

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
    await checks.prod_merged(change, merged.json())

    # The prod repository holds stg's Application directory, rendered for prod. Secret values
    # were copied into prod's paths, so prod's secrets revision is its own (a new one).
    provisioner = service.runtime.provisioner
    for name in names:
        stg = await application_files(service, "acme-stg", name)
        prod = await application_files(service, "acme-prod", name)
        assert sorted(stg) == sorted(prod)
        stg_record = await provisioner.application("acme-stg", name)
        prod_record = await provisioner.application("acme-prod", name)
        assert stg_record is not None
        assert prod_record is not None
        stg_revision, prod_revision = stg_record.secrets_revision, prod_record.secrets_revision
        assert (stg_revision is None) == (prod_revision is None) == (not stg_record.secrets)
        if stg_revision is not None:
            assert prod_revision != stg_revision
        for path, content in stg.items():
            expected = content.replace("acme-stg", "acme-prod").replace("/env/stg/", "/env/prod/")
            if stg_revision is not None and prod_revision is not None:
                expected = expected.replace(stg_revision, prod_revision)
            assert prod[path] == expected, path
        assert PASSWORD not in json.dumps(prod)
