"""Policies, promotions, rollback, change requests and blocked versions over a real uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from catalyst_kernel.provisioning.committer import ChangeRequest
from catalyst_kernel.provisioning.environments import POLICY_PATH
from catalyst_kernel.secrets.backend import SecretPath
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ADMIN = {"role": "sovereign-admin", "org": None}


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(
        data_dir=str(tmp_path), sovereign="test", catalog_paths=[str(ROOT / "catalog")]
    )
    async with running_service(settings, projector=True) as service:
        service.runtime.clock = lambda: NOW
        for env in ("acme-dev", "acme-prod"):
            await service.create_environment(env)
        yield service


def developer(service: ApiService, **claims: Any) -> dict[str, str]:
    return service.auth("org-developer", "acme", **claims)


async def install(service: ApiService, env: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await service.client.post(
        f"/v1/environments/{env}/applications", json=body, headers=developer(service)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def policy(*rules: dict[str, Any], env: str = "acme-prod") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{env}-policy"},
        "spec": {"appliesTo": {"environments": [env]}, "rules": list(rules)},
    }


# -------------------------------------------------------------------------------------------------
# Policy
# -------------------------------------------------------------------------------------------------


async def test_a_new_environment_has_the_default_policy(service: ApiService) -> None:
    response = await service.client.get("/v1/environments/acme-prod/policy", headers=service.auth())
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["rules"] == []


async def test_putting_a_policy_is_a_commit_in_the_repository(service: ApiService) -> None:
    body = policy({"kind": "pr-required", "approvers": ["team-platform"], "minApprovals": 1})
    saved = await service.client.put(
        "/v1/environments/acme-prod/policy", json=body, headers=service.auth(**ADMIN)
    )
    assert saved.status_code == 200, saved.text
    content = await service.runtime.committer.read_file("acme-prod", POLICY_PATH)
    assert content is not None
    assert b"pr-required" in content
    history = await service.runtime.committer.log("acme-prod", POLICY_PATH)
    assert history[0].sha == saved.json()["commit"]["sha"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (policy({"kind": "no-such-kind"}), 422),
        (policy({"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "forever"}), 422),
        (policy({"kind": "change-window", "cron": "every tuesday", "duration": "2h"}), 422),
        (policy(env="acme-dev"), 422),
        ({"metadata": {"name": "x"}, "spec": {"rules": "all"}}, 422),
        ({"nonsense": True}, 422),
    ],
)
async def test_invalid_policies_are_refused_and_nothing_is_committed(
    service: ApiService, body: dict[str, Any], status: int
) -> None:
    before = await service.runtime.committer.log("acme-prod")
    response = await service.client.put(
        "/v1/environments/acme-prod/policy", json=body, headers=service.auth(**ADMIN)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await service.runtime.committer.log("acme-prod") == before


async def test_only_delegated_org_admins_edit_policies(service: ApiService) -> None:
    body = policy()
    denied = await service.client.put(
        "/v1/environments/acme-prod/policy", json=body, headers=service.auth("org-admin")
    )
    assert_problem(denied, 403, "forbidden")
    created = await service.client.post(
        "/v1/organizations",
        json={"name": "globex", "policyDelegated": True},
        headers=service.auth(**ADMIN),
    )
    assert created.status_code == 201, created.text
    assert created.json()["policyDelegated"] is True
    await service.create_environment("globex-prod")
    allowed = await service.client.put(
        "/v1/environments/globex-prod/policy",
        json=policy({"kind": "pr-required", "approvers": ["team-ops"]}, env="globex-prod"),
        headers=service.auth("org-admin", "globex"),
    )
    assert allowed.status_code == 200, allowed.text
    developer_denied = await service.client.put(
        "/v1/environments/globex-prod/policy",
        json=policy(env="globex-prod"),
        headers=service.auth("org-developer", "globex"),
    )
    assert_problem(developer_denied, 403, "forbidden")


# -------------------------------------------------------------------------------------------------
# Changes: approvals, freeze, merge, rollback
# -------------------------------------------------------------------------------------------------


async def test_a_freeze_blocks_until_a_break_glass_approval(service: ApiService) -> None:
    await install(service, "acme-dev", {"name": "cache", "blueprint": "bp-redis"})
    freeze = {
        "kind": "freeze",
        "scope": "environment",
        "reason": "quarter-end",
        "breakGlass": {"approvers": ["team-sre"]},
    }
    await service.client.put(
        "/v1/environments/acme-prod/policy", json=policy(freeze), headers=service.auth(**ADMIN)
    )
    promoted = await service.client.post(
        "/v1/promotions",
        json={"application": "cache", "from": "acme-dev", "to": "acme-prod"},
        headers=developer(service),
    )
    assert promoted.status_code == 201, promoted.text
    path = f"/v1/environments/acme-prod/changes/{promoted.json()['id']}"
    refused = await service.client.post(f"{path}/merge", headers=developer(service))
    verdict = assert_problem(refused, 409, "policy-refused")["verdict"]
    assert "quarter-end" in verdict["rules"][0]["summary"]

    sre = developer(service, groups=["team-sre"], subject="sre@acme")
    incomplete = await service.client.post(
        f"{path}/approve", json={"reason": "hotfix"}, headers=sre
    )
    assert_problem(incomplete, 422, "invalid-input")
    past = await service.client.post(
        f"{path}/approve",
        json={"reason": "hotfix", "expires": (NOW - timedelta(hours=1)).isoformat()},
        headers=sre,
    )
    assert_problem(past, 422, "invalid-input")
    glass = await service.client.post(
        f"{path}/approve",
        json={"reason": "hotfix INC-42", "expires": (NOW + timedelta(hours=2)).isoformat()},
        headers=sre,
    )
    assert glass.status_code == 200, glass.text
    assert glass.json()["verdict"]["passed"] is True
    merged = await service.client.post(f"{path}/merge", headers=developer(service))
    assert merged.status_code == 200, merged.text
    with anyio.fail_after(20):
        while True:
            timeline = await service.client.get(
                "/v1/environments/acme-prod/applications/cache/history", headers=service.auth()
            )
            approvals = [i for i in timeline.json()["items"] if i["kind"] == "approval"]
            if approvals:
                break
            await anyio.sleep(0.05)
    assert approvals[0]["detail"]["breakGlass"]["reason"] == "hotfix INC-42"
    history = await service.client.get(
        "/v1/environments/acme-prod/changes", params={"status": "merged"}, headers=service.auth()
    )
    assert [c["id"] for c in history.json()["items"]] == [promoted.json()["id"]]


async def test_merging_twice_and_closing_merged_changes_conflict(service: ApiService) -> None:
    await install(service, "acme-dev", {"name": "cache", "blueprint": "bp-redis"})
    promoted = await service.client.post(
        "/v1/promotions",
        json={"application": "cache", "from": "acme-dev", "to": "acme-prod"},
        headers=developer(service),
    )
    path = f"/v1/environments/acme-prod/changes/{promoted.json()['id']}"
    assert (await service.client.post(f"{path}/merge", headers=developer(service))).is_success
    again = await service.client.post(f"{path}/merge", headers=developer(service))
    assert_problem(again, 409, "conflict")
    missing = await service.client.get(
        "/v1/environments/acme-prod/changes/999", headers=service.auth()
    )
    assert_problem(missing, 404, "not-found")
    bad = await service.client.get(
        "/v1/environments/acme-prod/changes/../1", headers=service.auth()
    )
    assert 400 <= bad.status_code < 500


async def test_rollback_opens_a_change_that_restores_the_earlier_files(
    service: ApiService,
) -> None:
    first = await install(
        service, "acme-dev", {"name": "db", "blueprint": "bp-postgres", "version": "1.4.0"}
    )
    updated = await service.client.patch(
        "/v1/environments/acme-dev/applications/db",
        json={"version": "1.5.0"},
        headers=developer(service),
    )
    assert updated.status_code == 200, updated.text
    opened = await service.client.post(
        "/v1/environments/acme-dev/applications/db/rollback",
        json={"to": first["commit"]["sha"]},
        headers=developer(service),
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["applications"][0]["action"] == "rollback"
    assert opened.json()["applications"][0]["version"] == "1.4.0"
    merged = await service.client.post(
        f"/v1/environments/acme-dev/changes/{opened.json()['id']}/merge",
        headers=developer(service),
    )
    assert merged.status_code == 200, merged.text
    record = await service.runtime.provisioner.application("acme-dev", "db")
    assert record is not None
    assert record.version == "1.4.0"
    for to, status in (("not-a-sha", 422), ("0" * 40, 404)):
        bad = await service.client.post(
            "/v1/environments/acme-dev/applications/db/rollback",
            json={"to": to},
            headers=developer(service),
        )
        assert bad.status_code == status, bad.text


async def test_promotion_refuses_bad_requests(service: ApiService) -> None:
    await install(service, "acme-dev", {"name": "cache", "blueprint": "bp-redis"})
    cases = [
        ({"application": "cache", "from": "acme-dev", "to": "acme-dev"}, 422),
        ({"application": "nothing", "from": "acme-dev", "to": "acme-prod"}, 404),
        ({"application": "cache", "from": "acme-dev", "to": "acme-staging"}, 422),
        ({"application": "cache", "from": "acme-dev"}, 422),
        ({"application": "cache", "from": "acme-dev", "to": "globex-prod"}, 403),
    ]
    for body, status in cases:
        response = await service.client.post(
            "/v1/promotions", json=body, headers=developer(service)
        )
        assert response.status_code == status, (body, response.text)
    viewer = await service.client.post(
        "/v1/promotions",
        json={"application": "cache", "from": "acme-dev", "to": "acme-prod"},
        headers=service.auth("org-viewer"),
    )
    assert_problem(viewer, 403, "forbidden")


# -------------------------------------------------------------------------------------------------
# Blocked versions
# -------------------------------------------------------------------------------------------------


async def test_blocked_versions_refuse_install_update_and_promotion(service: ApiService) -> None:
    await install(
        service, "acme-dev", {"name": "db", "blueprint": "bp-postgres", "version": "1.4.0"}
    )
    items = [{"blueprint": "bp-postgres", "versions": ">=1.5.0 <2.0.0", "reason": "CVE-2026-1"}]
    denied = await service.client.put(
        "/v1/organizations/acme/blocked-versions",
        json={"items": items},
        headers=service.auth("org-developer"),
    )
    assert_problem(denied, 403, "forbidden")
    saved = await service.client.put(
        "/v1/organizations/acme/blocked-versions",
        json={"items": items},
        headers=service.auth("security-officer"),
    )
    assert saved.status_code == 200, saved.text
    listed = await service.client.get(
        "/v1/organizations/acme/blocked-versions", headers=service.auth()
    )
    assert listed.json()["items"][0]["reason"] == "CVE-2026-1"

    fresh = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={"name": "db2", "blueprint": "bp-postgres", "version": "1.5.0"},
        headers=developer(service),
    )
    assert "CVE-2026-1" in assert_problem(fresh, 409, "blocked-version")["detail"]
    update = await service.client.patch(
        "/v1/environments/acme-dev/applications/db",
        json={"version": "1.5.0"},
        headers=developer(service),
    )
    assert_problem(update, 409, "blocked-version")
    allowed = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={"name": "db3", "blueprint": "bp-postgres", "version": "1.4.0"},
        headers=developer(service),
    )
    assert allowed.status_code == 201, allowed.text

    items.append({"blueprint": "bp-postgres", "versions": "1.4.0", "reason": "retired"})
    await service.client.put(
        "/v1/organizations/acme/blocked-versions",
        json={"items": items},
        headers=service.auth("org-admin"),
    )
    promotion = await service.client.post(
        "/v1/promotions",
        json={"application": "db", "from": "acme-dev", "to": "acme-prod"},
        headers=developer(service),
    )
    assert_problem(promotion, 409, "blocked-version")

    bad = await service.client.put(
        "/v1/organizations/acme/blocked-versions",
        json={"items": [{"blueprint": "postgres", "versions": "^^", "reason": ""}]},
        headers=service.auth("org-admin"),
    )
    assert 400 <= bad.status_code < 500


async def test_writes_to_an_environment_with_rules_become_change_requests(
    service: ApiService,
) -> None:
    rule = {"kind": "pr-required", "approvers": ["team-platform"], "minApprovals": 1}
    await service.client.put(
        "/v1/environments/acme-prod/policy", json=policy(rule), headers=service.auth(**ADMIN)
    )
    plan = await service.client.post(
        "/v1/environments/acme-prod/plans",
        json={"name": "cache", "blueprint": "bp-redis"},
        headers=developer(service),
    )
    assert plan.json()["policy"] == {"rules": ["pr-required"], "direct": False}
    before = await service.runtime.committer.log("acme-prod")
    proposed = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={"name": "cache", "blueprint": "bp-redis"},
        headers=developer(service),
    )
    assert proposed.status_code == 202, proposed.text
    assert await service.runtime.committer.log("acme-prod") == before
    change = proposed.json()["change"]
    assert [r["kind"] for r in proposed.json()["verdict"]["rules"] if not r["passed"]] == [
        "pr-required"
    ]
    path = f"/v1/environments/acme-prod/changes/{change['id']}"
    reviewer = developer(service, groups=["team-platform"], subject="pat@acme")
    assert (await service.client.post(f"{path}/approve", headers=reviewer)).is_success
    merged = await service.client.post(f"{path}/merge", headers=developer(service))
    assert merged.status_code == 200, merged.text
    assert await service.runtime.provisioner.application("acme-prod", "cache") is not None
    removal = await service.client.delete(
        "/v1/environments/acme-prod/applications/cache", headers=developer(service)
    )
    assert removal.status_code == 202, removal.text
    assert await service.runtime.provisioner.application("acme-prod", "cache") is not None


async def test_an_organization_wide_freeze_in_one_environment_blocks_the_others(
    service: ApiService,
) -> None:
    await install(service, "acme-dev", {"name": "cache", "blueprint": "bp-redis"})
    freeze = {"kind": "freeze", "scope": "organization", "reason": "acme-wide audit"}
    saved = await service.client.put(
        "/v1/environments/acme-dev/policy",
        json=policy(freeze, env="acme-dev"),
        headers=service.auth(**ADMIN),
    )
    assert saved.status_code == 200, saved.text
    promoted = await service.client.post(
        "/v1/promotions",
        json={"application": "cache", "from": "acme-dev", "to": "acme-prod"},
        headers=developer(service),
    )
    assert promoted.status_code == 201, promoted.text
    verdict = promoted.json()["verdict"]
    assert verdict["passed"] is False
    assert [r["kind"] for r in verdict["rules"]] == ["freeze"]
    assert "acme-wide audit" in verdict["rules"][0]["summary"]


async def test_verdicts_are_shown_where_changes_live_when_the_committer_can(
    service: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[tuple[str, bool]] = []

    async def publish_verdict(change: Any, verdict: Any) -> None:
        shown.append((change.id, verdict.passed))

    inner = service.runtime.committer.inner  # type: ignore[attr-defined]
    monkeypatch.setattr(inner, "publish_verdict", publish_verdict, raising=False)
    assert service.runtime.committer.publishes_verdicts  # type: ignore[attr-defined]
    rule = {"kind": "pr-required", "approvers": ["team-platform"]}
    await service.client.put(
        "/v1/environments/acme-prod/policy", json=policy(rule), headers=service.auth(**ADMIN)
    )
    await install(service, "acme-dev", {"name": "cache", "blueprint": "bp-redis"})
    promoted = await service.client.post(
        "/v1/promotions",
        json={"application": "cache", "from": "acme-dev", "to": "acme-prod"},
        headers=developer(service),
    )
    change = promoted.json()["id"]
    assert shown == [(change, False)]
    await service.client.get(f"/v1/environments/acme-prod/changes/{change}", headers=service.auth())
    assert await service.runtime.changes.recheck() == 1
    assert shown == [(change, False)], "an unchanged outcome is not shown again"
    reviewer = developer(service, groups=["team-platform"], subject="pat@acme")
    await service.client.post(
        f"/v1/environments/acme-prod/changes/{change}/approve", headers=reviewer
    )
    assert shown == [(change, False), (change, True)]


async def test_proposed_secret_values_wait_for_the_merge(service: ApiService) -> None:
    rule = {"kind": "pr-required", "approvers": ["team-platform"]}
    await service.client.put(
        "/v1/environments/acme-prod/policy", json=policy(rule), headers=service.auth(**ADMIN)
    )
    backend = service.runtime.secrets
    reviewer = developer(service, groups=["team-platform"], subject="pat@acme")
    config = {"siteTitle": "Acme", "adminEmail": "web@acme.example"}

    async def through_policy(response: Any, *, merge: bool) -> None:
        assert response.status_code == 202, response.text
        path = f"/v1/environments/acme-prod/changes/{response.json()['change']['id']}"
        if merge:
            assert (await service.client.post(f"{path}/approve", headers=reviewer)).is_success
            merged = await service.client.post(f"{path}/merge", headers=developer(service))
            assert merged.status_code == 200, merged.text
        else:
            closed = await service.client.post(f"{path}/close", headers=developer(service))
            assert closed.status_code == 200, closed.text

    install = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={
            "name": "site",
            "blueprint": "bp-wordpress",
            "config": {**config, "adminPassword": "first-password-123456"},
            "dependencies": {"db": {"create": True}},
        },
        headers=developer(service),
    )
    names = [app["name"] for app in install.json()["plan"]["applications"] if app["name"] == "site"]
    assert names == ["site"]
    await through_policy(install, merge=True)
    record = await service.runtime.provisioner.application("acme-prod", "site")
    assert record is not None
    assert record.secrets
    live = SecretPath("acme", "prod", "site", record.secrets[0])
    assert await backend.read(live) == {"value": "first-password-123456"}

    update = await service.client.patch(
        "/v1/environments/acme-prod/applications/site",
        json={
            "config": {**config, "siteTitle": "Acme 2", "adminPassword": "second-password-654321"}
        },
        headers=developer(service),
    )
    assert await backend.read(live) == {"value": "first-password-123456"}, "not before a merge"
    await through_policy(update, merge=False)
    assert await backend.read(live) == {"value": "first-password-123456"}, "closed: discarded"

    again = await service.client.patch(
        "/v1/environments/acme-prod/applications/site",
        json={
            "config": {**config, "siteTitle": "Acme 3", "adminPassword": "third-password-987654"}
        },
        headers=developer(service),
    )
    await through_policy(again, merge=True)
    assert await backend.read(live) == {"value": "third-password-987654"}


async def test_a_change_ended_outside_catalyst_settles_its_secrets(service: ApiService) -> None:
    # Merged or closed in the committer's own interface (Gitea's merge button): the
    # committer's webhook reports it and the staged values go live, or are discarded.
    rule = {"kind": "pr-required", "approvers": ["team-platform"]}
    await service.client.put(
        "/v1/environments/acme-prod/policy", json=policy(rule), headers=service.auth(**ADMIN)
    )
    backend = service.runtime.secrets
    committer = service.runtime.committer
    config = {"siteTitle": "Acme", "adminEmail": "web@acme.example"}

    async def propose(title: str, password: str, *, install: bool = False) -> ChangeRequest:
        body = {"config": {**config, "siteTitle": title, "adminPassword": password}}
        if install:
            body |= {"name": "site", "blueprint": "bp-wordpress"}
            body["dependencies"] = {"db": {"create": True}}
            response = await service.client.post(
                "/v1/environments/acme-prod/applications", json=body, headers=developer(service)
            )
        else:
            response = await service.client.patch(
                "/v1/environments/acme-prod/applications/site",
                json=body,
                headers=developer(service),
            )
        assert response.status_code == 202, response.text
        return await committer.get_change("acme-prod", response.json()["change"]["id"])

    change = await propose("Acme", "first-password-123456", install=True)
    await committer.merge_change("acme-prod", change.id, "dana@acme")  # not through Catalyst
    record = await service.runtime.provisioner.application("acme-prod", "site")
    assert record is not None
    live = SecretPath("acme", "prod", "site", record.secrets[0])
    assert not await backend.exists(live), "staged until the end is reported"
    merged = await committer.get_change("acme-prod", change.id)
    await service.runtime.changes.ended(merged)
    assert await backend.read(live) == {"value": "first-password-123456"}
    await service.runtime.changes.ended(merged)  # reported twice: nothing more happens
    assert await backend.read(live) == {"value": "first-password-123456"}

    change = await propose("Acme 2", "second-password-654321")
    closed = await committer.close_change("acme-prod", change.id, "dana@acme")
    await service.runtime.changes.ended(closed)
    assert await backend.read(live) == {"value": "first-password-123456"}
    again = await propose("Acme 3", "third-password-987654")
    await service.runtime.changes.ended(again)  # still open: left alone
    assert await backend.read(live) == {"value": "first-password-123456"}


async def test_an_organization_wide_freeze_turns_direct_installs_into_changes(
    service: ApiService,
) -> None:
    freeze = {"kind": "freeze", "scope": "organization", "reason": "acme-wide audit"}
    await service.client.put(
        "/v1/environments/acme-dev/policy",
        json=policy(freeze, env="acme-dev"),
        headers=service.auth(**ADMIN),
    )
    response = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={"name": "cache", "blueprint": "bp-redis"},
        headers=developer(service),
    )
    assert response.status_code == 202, response.text
    assert response.json()["verdict"]["passed"] is False
    assert await service.runtime.provisioner.application("acme-prod", "cache") is None
