"""Organizations and Environments over a real uvicorn: create, list, look up, authorize."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import jwt
import pygit2
import pytest

from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.model.names import EnvType
from catalyst_kernel.model.tenancy import Environment, Organization
from catalyst_kernel.provisioning.environments import POLICY_PATH, create_environment
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ADMIN = {"role": "sovereign-admin", "org": None}


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    settings = catalyst_settings(data_dir=str(tmp_path), sovereign="test")
    async with running_service(settings) as service:
        yield service


async def create_org(service: ApiService, name: str = "acme", **body: object) -> dict:
    response = await service.client.post(
        "/v1/organizations", json={"name": name, **body}, headers=service.auth(**ADMIN)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_env(service: ApiService, org: str = "acme", env_type: str = "dev") -> dict:
    response = await service.client.post(
        f"/v1/organizations/{org}/environments",
        json={"envType": env_type},
        headers=service.auth("org-admin", org),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


# -------------------------------------------------------------------------------------------------
# Organizations
# -------------------------------------------------------------------------------------------------


async def test_a_sovereign_admin_creates_an_organization(service: ApiService) -> None:
    created = await create_org(service, labels={"openova.io/tier": "gold"})
    assert created["name"] == "acme"
    assert created["labels"] == {"openova.io/tier": "gold"}
    assert created["createdBy"] == "sovereign-admin@sovereign"
    listed = await service.client.get("/v1/organizations", headers=service.auth(**ADMIN))
    assert [item["name"] for item in listed.json()["items"]] == ["acme"]
    one = await service.client.get("/v1/organizations/acme", headers=service.auth())
    assert one.status_code == 200
    assert one.json()["environments"] == []


async def test_an_organization_exists_once(service: ApiService) -> None:
    await create_org(service)
    again = await service.client.post(
        "/v1/organizations", json={"name": "acme"}, headers=service.auth(**ADMIN)
    )
    assert_problem(again, 409, "conflict")


async def test_concurrent_creates_of_one_organization_have_one_winner(
    service: ApiService,
) -> None:
    statuses: list[int] = []

    async def create() -> None:
        response = await service.client.post(
            "/v1/organizations", json={"name": "acme"}, headers=service.auth(**ADMIN)
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(create)
    assert sorted(statuses) == [201] + [409] * 5


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"name": "Acme"}, "invalid-name", "name"),
        ({"name": "ab"}, "invalid-name", "name"),
        ({"name": "system"}, "invalid-name", "name"),
        ({"name": "prod"}, "invalid-name", "name"),
        ({"name": "acme", "labels": {"bad key!": "x"}}, "invalid-input", "labels"),
        ({"name": "acme", "labels": {"ok": "not ok!"}}, "invalid-input", "labels"),
    ],
)
async def test_bad_organizations_are_refused_and_nothing_is_created(
    service: ApiService, body: dict, code: str, field: str
) -> None:
    response = await service.client.post(
        "/v1/organizations", json=body, headers=service.auth(**ADMIN)
    )
    problem = assert_problem(response, 422, code)
    assert problem["field"] == field
    listed = await service.client.get("/v1/organizations", headers=service.auth(**ADMIN))
    assert listed.json()["items"] == []


async def test_malformed_bodies_are_4xx(service: ApiService) -> None:
    for content in (b"{not json", b"[]", b'{"name": "acme", "extra": 1}', b'{"name": 3}'):
        response = await service.client.post(
            "/v1/organizations",
            content=content,
            headers={**service.auth(**ADMIN), "content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("role", ["org-admin", "org-developer", "org-viewer", "security-officer"])
async def test_only_a_sovereign_admin_creates_organizations(service: ApiService, role: str) -> None:
    response = await service.client.post(
        "/v1/organizations", json={"name": "globex"}, headers=service.auth(role, "acme")
    )
    assert_problem(response, 403, "forbidden")


async def test_members_see_only_their_organization(service: ApiService) -> None:
    await create_org(service, "acme")
    await create_org(service, "globex")
    listed = await service.client.get("/v1/organizations", headers=service.auth("org-viewer"))
    assert [item["name"] for item in listed.json()["items"]] == ["acme"]
    other = await service.client.get("/v1/organizations/globex", headers=service.auth())
    assert_problem(other, 403, "forbidden")
    # Whether an Organization exists is not revealed to outsiders.
    missing = await service.client.get("/v1/organizations/initech", headers=service.auth())
    assert_problem(missing, 403, "forbidden")
    mine_missing = await service.client.get(
        "/v1/organizations/initech", headers=service.auth("org-viewer", "initech")
    )
    assert_problem(mine_missing, 404, "not-found")


async def test_requests_without_a_valid_token_are_401(service: ApiService) -> None:
    for path in ("/v1/organizations", "/v1/organizations/acme/environments"):
        assert_problem(await service.client.get(path), 401, "unauthenticated")
        forged = {"Authorization": "Bearer " + service.token()[:-4] + "AAAA"}
        assert_problem(await service.client.get(path, headers=forged), 401, "unauthenticated")


# -------------------------------------------------------------------------------------------------
# Environments
# -------------------------------------------------------------------------------------------------


async def test_an_org_admin_creates_an_environment_with_its_repository(
    service: ApiService, tmp_path: Path
) -> None:
    await create_org(service)
    created = await create_env(service)
    assert created["name"] == "acme-dev"
    assert created["organization"] == "acme"
    assert created["envType"] == "dev"
    assert created["initialCommit"]
    assert created["createdBy"] == "org-admin@acme"
    repository = pygit2.Repository(str(tmp_path / "git" / "acme" / "acme-dev.git"))
    tree = repository.revparse_single("HEAD").peel(pygit2.Tree)
    assert "flux-system" in tree
    assert POLICY_PATH.split("/")[0] in tree
    one = await service.client.get("/v1/environments/acme-dev", headers=service.auth())
    assert one.json()["name"] == "acme-dev"
    listed = await service.client.get("/v1/organizations/acme/environments", headers=service.auth())
    assert [item["name"] for item in listed.json()["items"]] == ["acme-dev"]
    org = await service.client.get("/v1/organizations/acme", headers=service.auth())
    assert org.json()["environments"] == ["acme-dev"]


async def test_an_environment_exists_once(service: ApiService) -> None:
    await create_org(service)
    await create_env(service)
    again = await service.client.post(
        "/v1/organizations/acme/environments",
        json={"envType": "dev"},
        headers=service.auth("org-admin"),
    )
    assert_problem(again, 409, "conflict")


async def test_concurrent_creates_of_one_environment_record_who_made_it(
    service: ApiService, tmp_path: Path
) -> None:
    # Whichever request wins the directory, the record names the author of the repository's
    # first commit and that commit, not the request that merely recorded it.
    await create_org(service)
    statuses: list[int] = []

    async def create(person: str) -> None:
        response = await service.client.post(
            "/v1/organizations/acme/environments",
            json={"envType": "dev"},
            headers=service.auth("org-admin", subject=f"{person}@acme"),
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for person in ("ana", "ben", "cy", "dee"):
            group.start_soon(create, person)
    assert sorted(statuses) == [201] + [409] * 3
    record = (await service.client.get("/v1/environments/acme-dev", headers=service.auth())).json()
    repository = pygit2.Repository(str(tmp_path / "git" / "acme" / "acme-dev.git"))
    (root,) = [c for c in repository.walk(repository.head.target) if not c.parents]
    assert record["initialCommit"] == str(root.id)
    assert f"Catalyst-Actor: {record['createdBy']}" in root.message


async def test_a_repository_left_by_another_request_is_adopted_with_its_author(
    service: ApiService,
) -> None:
    # Ana's request made the repository and died (or is about to record it): Ben's request
    # records the Environment, naming Ana and her commit.
    await create_org(service)
    settings = service.runtime.settings
    first = await create_environment(
        service.runtime.committer,
        Environment("acme", EnvType.STG),
        sovereign=settings.sovereign,
        repository_url=settings.repository_url("acme", "acme-stg"),
        actor="ana@acme",
    )
    response = await service.client.post(
        "/v1/organizations/acme/environments",
        json={"envType": "stg"},
        headers=service.auth("org-admin", subject="ben@acme"),
    )
    assert response.status_code == 201, response.text
    assert (response.json()["createdBy"], response.json()["initialCommit"]) == (
        "ana@acme",
        first.sha,
    )


async def test_an_environment_needs_its_organization(service: ApiService) -> None:
    response = await service.client.post(
        "/v1/organizations/acme/environments",
        json={"envType": "dev"},
        headers=service.auth("org-admin"),
    )
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize("env_type", ["staging", "PROD", "", "dev/../prod"])
async def test_bad_environment_types_are_refused(service: ApiService, env_type: str) -> None:
    await create_org(service)
    response = await service.client.post(
        "/v1/organizations/acme/environments",
        json={"envType": env_type},
        headers=service.auth("org-admin"),
    )
    problem = assert_problem(response, 422, "invalid-name")
    assert problem["field"] == "envType"
    listed = await service.client.get("/v1/organizations/acme/environments", headers=service.auth())
    assert listed.json()["items"] == []


@pytest.mark.parametrize("role", ["org-developer", "org-viewer", "security-officer"])
async def test_only_admins_create_environments(service: ApiService, role: str) -> None:
    await create_org(service)
    response = await service.client.post(
        "/v1/organizations/acme/environments",
        json={"envType": "dev"},
        headers=service.auth(role),
    )
    assert_problem(response, 403, "forbidden")


async def test_other_organizations_cannot_create_or_read_environments(
    service: ApiService,
) -> None:
    await create_org(service, "acme")
    await create_org(service, "globex")
    await create_env(service)
    globex = service.auth("org-admin", "globex")
    create = await service.client.post(
        "/v1/organizations/acme/environments", json={"envType": "prod"}, headers=globex
    )
    assert_problem(create, 403, "forbidden")
    for path in (
        "/v1/environments/acme-dev",
        "/v1/environments/acme-prod",
        "/v1/organizations/acme/environments",
    ):
        assert_problem(await service.client.get(path, headers=globex), 403, "forbidden")


async def test_environment_scoped_tokens_see_only_their_environments(
    service: ApiService,
) -> None:
    await create_org(service)
    await create_env(service, env_type="dev")
    await create_env(service, env_type="prod")
    scoped = service.auth("org-viewer", environments=["acme-dev"])
    listed = await service.client.get("/v1/organizations/acme/environments", headers=scoped)
    assert [item["name"] for item in listed.json()["items"]] == ["acme-dev"]
    prod = await service.client.get("/v1/environments/acme-prod", headers=scoped)
    assert_problem(prod, 403, "forbidden")


async def test_an_unknown_environment_is_404_inside_the_organization(
    service: ApiService,
) -> None:
    await create_org(service)
    response = await service.client.get("/v1/environments/acme-uat", headers=service.auth())
    assert_problem(response, 404, "not-found")
    bad = await service.client.get("/v1/environments/acme-staging", headers=service.auth())
    assert_problem(bad, 422, "invalid-name")


# -------------------------------------------------------------------------------------------------
# Identity: provisioning and the public keys
# -------------------------------------------------------------------------------------------------


async def test_creating_an_organization_provisions_it_with_the_identity_provider(
    service: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned: list[str] = []

    async def provision(organization: Organization) -> None:
        provisioned.append(organization.name)

    monkeypatch.setattr(service.identity, "provision_organization", provision)
    await create_org(service)
    again = await service.client.post(
        "/v1/organizations", json={"name": "acme"}, headers=service.auth(**ADMIN)
    )
    assert again.status_code == 409
    assert provisioned == ["acme"]


async def test_a_failed_provisioning_records_nothing(
    service: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(organization: Organization) -> None:
        raise BackendUnavailable("identity provider is down")

    monkeypatch.setattr(service.identity, "provision_organization", unavailable)
    response = await service.client.post(
        "/v1/organizations", json={"name": "acme"}, headers=service.auth(**ADMIN)
    )
    assert_problem(response, 503, "backend-unavailable")
    assert await service.runtime.directory.find_organization("acme") is None


async def test_tokens_verify_against_the_served_jwks(service: ApiService) -> None:
    response = await service.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    keys = response.json()["keys"]
    assert keys
    assert all("d" not in key for key in keys), "only public keys"
    token = service.token("org-viewer")
    header = jwt.get_unverified_header(token)
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=[header["alg"]],
        options={"verify_aud": False},
    )
    assert claims["org"] == "acme"
