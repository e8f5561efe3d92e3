"""Applications over a real uvicorn: plan, install, read, update, uninstall, history, search."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pygit2
import pytest

from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple-42"
ENV = "acme-dev"
APPS = f"/v1/environments/{ENV}/applications"


def wordpress(name: str = "marketing-site", **config: Any) -> dict[str, Any]:
    base = {"siteTitle": "Acme", "adminEmail": "web@acme.example", "adminPassword": PASSWORD}
    return {"name": name, "blueprint": "bp-wordpress", "config": {**base, **config}}


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(
        data_dir=str(tmp_path), sovereign="test", catalog_paths=[str(ROOT / "catalog")]
    )
    async with running_service(settings, projector=True) as service:
        await service.create_environment(ENV)
        yield service


def developer(service: ApiService, org: str = "acme", **claims: Any) -> dict[str, str]:
    return service.auth("org-developer", org, **claims)


async def install(service: ApiService, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await service.client.post(APPS, json=body or wordpress(), headers=developer(service))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_for(service: ApiService, predicate: Callable[[dict[str, dict]], bool]) -> dict:
    """Poll the Environment's Applications (the read model) until ``predicate`` holds."""
    with anyio.fail_after(20):
        while True:
            response = await service.client.get(APPS, headers=service.auth())
            assert response.status_code == 200, response.text
            by_name = {item["name"]: item for item in response.json()["items"]}
            if predicate(by_name):
                return by_name
            await anyio.sleep(0.05)


def repository_log(tmp_path: Path) -> list[str]:
    repo = pygit2.Repository(str(tmp_path / "git" / "acme" / f"{ENV}.git"))
    return [str(commit.id) for commit in repo.walk(repo.head.target)]


def all_git_text(tmp_path: Path) -> str:
    repo = pygit2.Repository(str(tmp_path / "git" / "acme" / f"{ENV}.git"))
    texts = []
    for oid in repo.odb:
        obj = repo.get(oid)
        if isinstance(obj, pygit2.Blob):
            texts.append(obj.data.decode("utf-8", "replace"))
        elif isinstance(obj, pygit2.Commit):
            texts.append(obj.message)
    return "\n".join(texts)


# -------------------------------------------------------------------------------------------------
# Plans
# -------------------------------------------------------------------------------------------------


async def test_a_plan_shows_what_an_install_would_do_and_writes_nothing(
    service: ApiService, tmp_path: Path
) -> None:
    before = repository_log(tmp_path)
    response = await service.client.post(
        f"/v1/environments/{ENV}/plans", json=wordpress(), headers=developer(service)
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["environment"] == ENV
    assert plan["application"] == "marketing-site"
    assert {app["blueprint"] for app in plan["applications"]} == {"bp-wordpress", "bp-postgres"}
    assert plan["digest"]
    assert plan["files"]
    assert PASSWORD not in response.text
    assert repository_log(tmp_path) == before
    listed = await service.client.get(APPS, headers=service.auth())
    assert listed.json()["items"] == []


async def test_a_viewer_may_not_plan_or_install(service: ApiService) -> None:
    for path in (f"/v1/environments/{ENV}/plans", APPS):
        response = await service.client.post(path, json=wordpress(), headers=service.auth())
        assert_problem(response, 403, "forbidden")


# -------------------------------------------------------------------------------------------------
# Install, read, update, uninstall
# -------------------------------------------------------------------------------------------------


async def test_install_commits_both_applications_and_the_read_model_shows_them(
    service: ApiService, tmp_path: Path
) -> None:
    installed = await install(service)
    assert installed["commit"]["sha"] == repository_log(tmp_path)[0]
    names = {app["name"] for app in installed["plan"]["applications"]}
    assert len(names) == 2
    assert PASSWORD not in json.dumps(installed)
    by_name = await wait_for(service, lambda apps: set(apps) == names)
    assert {doc["status"] for doc in by_name.values()} == {"Installing"}
    assert by_name["marketing-site"]["blueprint"] == "bp-wordpress"

    one = await service.client.get(f"{APPS}/marketing-site", headers=service.auth())
    assert one.status_code == 200
    body = one.json()
    assert body["status"]["status"] == "Installing"
    assert body["spec"]["blueprint"] == "bp-wordpress"
    assert body["spec"]["config"]["siteTitle"] == "Acme"
    assert "adminPassword" not in body["spec"]["config"]
    assert PASSWORD not in one.text
    assert PASSWORD not in all_git_text(tmp_path)

    history = await service.client.get(f"{APPS}/marketing-site/history", headers=service.auth())
    assert history.status_code == 200
    kinds = [item["kind"] for item in history.json()["items"]]
    assert "commit" in kinds


async def test_update_changes_config_and_uninstall_honours_dependents(
    service: ApiService,
) -> None:
    installed = await install(service)
    database = next(
        app["name"]
        for app in installed["plan"]["applications"]
        if app["blueprint"] == "bp-postgres"
    )
    updated = await service.client.patch(
        f"{APPS}/marketing-site",
        json={"config": {"siteTitle": "Acme Blog", "adminPassword": PASSWORD}},
        headers=developer(service),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["commit"]["sha"] != installed["commit"]["sha"]
    spec = (await service.client.get(f"{APPS}/marketing-site", headers=service.auth())).json()
    assert spec["spec"]["config"]["siteTitle"] == "Acme Blog"

    refused = await service.client.delete(f"{APPS}/{database}", headers=developer(service))
    assert_problem(refused, 409, "conflict")
    cascaded = await service.client.delete(
        f"{APPS}/{database}", params={"cascade": "true"}, headers=developer(service)
    )
    assert cascaded.status_code == 200, cascaded.text
    await wait_for(service, lambda apps: not apps)
    gone = await service.client.get(f"{APPS}/marketing-site", headers=service.auth())
    assert_problem(gone, 404, "not-found")


async def test_a_secret_only_update_rotates_it_and_answers_no_value(
    service: ApiService, tmp_path: Path
) -> None:
    installed = await install(service)
    before = (await service.client.get(f"{APPS}/marketing-site", headers=service.auth())).json()
    rotated_password = "rotated-horse-battery-staple-77"
    updated = await service.client.patch(
        f"{APPS}/marketing-site",
        json={"config": {"adminPassword": rotated_password}},
        headers=developer(service),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["commit"]["sha"] != installed["commit"]["sha"]
    assert "secrets admin-password rotated" in updated.json()["commit"]["message"]
    assert rotated_password not in updated.text
    assert PASSWORD not in updated.text
    after = await service.client.get(f"{APPS}/marketing-site", headers=service.auth())
    assert rotated_password not in after.text
    spec = after.json()["spec"]
    assert spec["config"] == before["spec"]["config"]
    assert spec["secretsRevision"] != before["spec"]["secretsRevision"]
    assert rotated_password not in all_git_text(tmp_path)

    again = await service.client.patch(
        f"{APPS}/marketing-site",
        json={"config": {"adminPassword": rotated_password}},
        headers=developer(service),
    )
    assert_problem(again, 409, "conflict")
    assert rotated_password not in again.text


async def test_an_empty_update_is_refused(service: ApiService) -> None:
    await install(service)
    response = await service.client.patch(
        f"{APPS}/marketing-site", json={}, headers=developer(service)
    )
    assert_problem(response, 422, "invalid-input")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (wordpress(name="Marketing"), 422, "invalid-name"),
        ({**wordpress(), "blueprint": "wordpress"}, 422, "invalid-name"),
        ({**wordpress(), "blueprint": "bp-nothing"}, 404, "not-found"),
        ({**wordpress(), "version": "9.9.9"}, 422, "invalid-input"),
        ({**wordpress(), "version": "not a range"}, 422, "invalid-input"),
        (wordpress(adminEmail=3), 422, "invalid-input"),
        (wordpress(colour="blue"), 422, "invalid-input"),
        ({**wordpress(), "overlay": "huge"}, 422, "invalid-input"),
        ({**wordpress(), "dependencies": {"db": {"use": "x", "create": True}}}, 422, None),
        ({**wordpress(), "surprise": 1}, 400, None),
    ],
)
async def test_bad_installs_are_4xx_and_write_nothing(
    service: ApiService, tmp_path: Path, body: dict, status: int, code: str | None
) -> None:
    before = repository_log(tmp_path)
    response = await service.client.post(APPS, json=body, headers=developer(service))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if code is not None:
        assert_problem(response, status, code)
    assert PASSWORD not in response.text
    assert repository_log(tmp_path) == before


async def test_a_config_error_names_its_json_pointer(service: ApiService) -> None:
    response = await service.client.post(
        APPS, json=wordpress(adminEmail=3), headers=developer(service)
    )
    problem = assert_problem(response, 422, "invalid-input")
    assert any("adminEmail" in error["pointer"] for error in problem["errors"]), problem


async def test_installing_an_existing_name_is_a_conflict(service: ApiService) -> None:
    await install(service)
    again = await service.client.post(APPS, json=wordpress(), headers=developer(service))
    assert_problem(again, 409, "conflict")


async def test_unknown_application_and_environment_are_404(service: ApiService) -> None:
    missing = await service.client.get(f"{APPS}/nothing", headers=service.auth())
    assert_problem(missing, 404, "not-found")
    other_env = await service.client.get(
        "/v1/environments/acme-prod/applications", headers=service.auth()
    )
    assert_problem(other_env, 404, "not-found")


# -------------------------------------------------------------------------------------------------
# Authorization
# -------------------------------------------------------------------------------------------------


async def test_other_organizations_are_denied_every_application_route(
    service: ApiService,
) -> None:
    await install(service)
    globex = service.auth("org-admin", "globex")
    client = service.client
    requests = [
        client.get(APPS, headers=globex),
        client.post(APPS, json=wordpress("other"), headers=globex),
        client.post(f"/v1/environments/{ENV}/plans", json=wordpress("other"), headers=globex),
        client.get(f"{APPS}/marketing-site", headers=globex),
        client.patch(f"{APPS}/marketing-site", json={"config": {}}, headers=globex),
        client.delete(f"{APPS}/marketing-site", headers=globex),
        client.get(f"{APPS}/marketing-site/history", headers=globex),
        client.get("/v1/applications", params={"org": "acme"}, headers=globex),
        client.get("/v1/organizations/acme/blueprints/bp-wordpress/applications", headers=globex),
    ]
    for request in requests:
        assert_problem(await request, 403, "forbidden")
    mine = await client.get("/v1/applications", headers=globex)
    assert mine.json()["items"] == []


async def test_environment_scoped_tokens_cannot_touch_other_environments(
    service: ApiService,
) -> None:
    await service.create_environment("acme-prod")
    scoped = developer(service, environments=["acme-prod"])
    response = await service.client.post(APPS, json=wordpress(), headers=scoped)
    assert_problem(response, 403, "forbidden")


# -------------------------------------------------------------------------------------------------
# Across Environments
# -------------------------------------------------------------------------------------------------


async def test_applications_are_searchable_across_environments(service: ApiService) -> None:
    await service.create_environment("acme-prod")
    await install(service)
    prod = await service.client.post(
        "/v1/environments/acme-prod/applications",
        json={"name": "cache", "blueprint": "bp-redis"},
        headers=developer(service),
    )
    assert prod.status_code == 201, prod.text
    await wait_for(service, lambda apps: len(apps) == 2)
    with anyio.fail_after(20):
        while True:
            everything = await service.client.get("/v1/applications", headers=service.auth())
            if len(everything.json()["items"]) == 3:
                break
            await anyio.sleep(0.05)
    items = everything.json()["items"]
    assert [(i["environment"], i["organization"]) for i in items][-1] == ("acme-prod", "acme")
    redis = await service.client.get(
        "/v1/applications", params={"blueprint": "bp-redis"}, headers=service.auth()
    )
    assert [(i["environment"], i["name"]) for i in redis.json()["items"]] == [
        ("acme-prod", "cache")
    ]
    installing = await service.client.get(
        "/v1/applications", params={"status": "Installing", "org": "acme"}, headers=service.auth()
    )
    assert len(installing.json()["items"]) == 3
    running = await service.client.get(
        "/v1/applications", params={"status": "Running"}, headers=service.auth()
    )
    assert running.json()["items"] == []
    bad = await service.client.get(
        "/v1/applications", params={"status": "Happy"}, headers=service.auth()
    )
    assert 400 <= bad.status_code < 500

    usage = await service.client.get(
        "/v1/organizations/acme/blueprints/bp-wordpress/applications", headers=service.auth()
    )
    assert usage.status_code == 200, usage.text
    body = usage.json()
    assert [(i["environment"], i["name"]) for i in body["items"]] == [(ENV, "marketing-site")]
    assert sum(body["versions"].values()) == 1
    scoped = await service.client.get(
        "/v1/applications", headers=service.auth(environments=["acme-prod"])
    )
    assert {i["environment"] for i in scoped.json()["items"]} == {"acme-prod"}
