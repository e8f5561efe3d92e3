"""``POST /graphql`` over a real uvicorn: the REST API's authentication and authorization, the
problem codes in GraphQL errors, and the query limits."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from graphql import get_introspection_query

from catalyst_kernel.api.graphql.types import newest_first
from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.settings import ApiSettings, Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

GRAPHQL = "/graphql"
LIMITS = ApiSettings()  # the default limits
ENVIRONMENTS = ("acme-dev", "acme-prod", "globex-dev")

# (environment, name, blueprint, version, status)
APPLICATIONS = [
    ("acme-dev", "blog", "bp-wordpress", "1.2.0", "Installing"),
    ("acme-dev", "cache", "bp-redis", "7.2.0", "Degraded"),
    ("acme-dev", "web", "bp-wordpress", "1.1.0", "Running"),
    ("acme-prod", "shop", "bp-wordpress", "1.1.0", "Failed"),
    ("acme-prod", "web", "bp-wordpress", "1.0.0", "Running"),
    ("globex-dev", "site", "bp-wordpress", "1.1.0", "Running"),
]

APPLICATION_FIELDS = """
    environment organization name status reason since version blueprint everRunning
    lastCommit { sha position action time }
"""


def status_document(name: str, blueprint: str, version: str, status: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "reason": f"{name} is {status.lower()}",
        "since": "2026-11-30T12:00:30.000000+00:00",
        "version": version,
        "blueprint": blueprint,
        "lastCommit": {
            "sha": f"{name}-sha",
            "position": 7,
            "action": "install",
            "time": "2026-11-30T12:00:00.000000+00:00",
        },
        "everRunning": status == "Running",
        "inputs": {"workloads": {"total": 1, "notReady": {}}, "changeRequests": []},
    }


@pytest.fixture
async def service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    async with running_service(catalyst_settings(data_dir=str(tmp_path / "data"))) as service:
        for environment in ENVIRONMENTS:
            await service.create_environment(environment)
        for environment, name, blueprint, version, status in APPLICATIONS:
            kv = await service.kv(environment)
            document = status_document(name, blueprint, version, status)
            await kv.put(f"application/{name}", json.dumps(document).encode())
        # The status projection's private inputs are no Applications.
        kv = await service.kv("acme-dev")
        await kv.put("application-index/record/ghost", b'{"name": "ghost"}')
        yield service


async def query(
    service: ApiService, document: str, headers: dict[str, str], **variables: Any
) -> dict[str, Any]:
    """The GraphQL answer to ``document`` (a 200 JSON response, data and/or errors)."""
    response = await service.client.post(
        GRAPHQL, json={"query": document, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def errors(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The answer's errors by their dotted path (``""`` for request-level errors)."""
    found = {".".join(str(p) for p in e.get("path") or ()): e for e in body.get("errors", [])}
    assert len(found) == len(body.get("errors", [])), body
    return found


def codes(body: dict[str, Any]) -> dict[str, str]:
    return {path: error["extensions"]["code"] for path, error in errors(body).items()}


def names(items: list[dict[str, Any]] | None, *keys: str) -> list[Any]:
    assert items is not None
    keys = keys or ("name",)
    return [tuple(item[k] for k in keys) if len(keys) > 1 else item[keys[0]] for item in items]


# -------------------------------------------------------------------------------------------------
# Authentication and transport
# -------------------------------------------------------------------------------------------------


async def test_graphql_without_a_token_is_a_401_problem(service: ApiService) -> None:
    response = await service.client.post(GRAPHQL, json={"query": "{ organizations { name } }"})
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_graphql_with_a_bad_token_is_a_401_problem(service: ApiService) -> None:
    for authorization in ("Bearer not-a-token", "Basic YWRtaW46YWRtaW4=", "Bearer a b"):
        response = await service.client.post(
            GRAPHQL,
            json={"query": "{ organizations { name } }"},
            headers={"Authorization": authorization},
        )
        body = assert_problem(response, 401, "unauthenticated")
        assert "not-a-token" not in json.dumps(body)


async def test_graphql_is_post_only(service: ApiService) -> None:
    headers = service.auth("org-viewer", "acme")
    for params in ({}, {"query": "{ organizations { name } }"}):
        response = await service.client.get(
            GRAPHQL, params=params, headers={**headers, "Accept": "text/html"}
        )
        assert_problem(response, 405, "method-not-allowed")


async def test_bodies_that_are_not_graphql_requests_are_problems(service: ApiService) -> None:
    headers = service.auth("org-viewer", "acme")
    not_json = await service.client.post(
        GRAPHQL,
        content=b"{ organizations { name } }",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_problem(not_json, 400, "malformed-request")
    unknown_operation = await service.client.post(
        GRAPHQL,
        json={"query": "query A { organizations { name } }", "operationName": "B"},
        headers=headers,
    )
    assert_problem(unknown_operation, 400, "malformed-request")
    for body in ({"variables": {}}, {"query": 42}, [{"query": "{ organizations { name } }"}]):
        response = await service.client.post(GRAPHQL, json=body, headers=headers)
        problem = assert_problem(response, 422, "invalid-input")
        assert problem["errors"], problem


async def test_the_openapi_document_lists_the_graphql_route(service: ApiService) -> None:
    response = await service.client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    assert set(response.json()["paths"][GRAPHQL]) == {"post"}


# -------------------------------------------------------------------------------------------------
# Reading one's own Organization
# -------------------------------------------------------------------------------------------------


async def test_org_viewer_reads_its_organization_and_environments(service: ApiService) -> None:
    body = await query(
        service,
        """{
            organizations { name createdBy environments { name } }
            organization(name: "acme") { name labels environments { name envType organization } }
            environments { name }
            acme: environments(organization: "acme") { name }
            environment(name: "acme-prod") { name organization envType repository createdBy }
        }""",
        service.auth("org-viewer", "acme"),
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["organizations"] == [
        {
            "name": "acme",
            "createdBy": "admin",
            "environments": [{"name": "acme-dev"}, {"name": "acme-prod"}],
        }
    ]
    assert data["organization"] == {
        "name": "acme",
        "labels": {},
        "environments": [
            {"name": "acme-dev", "envType": "dev", "organization": "acme"},
            {"name": "acme-prod", "envType": "prod", "organization": "acme"},
        ],
    }
    assert names(data["environments"]) == names(data["acme"]) == ["acme-dev", "acme-prod"]
    environment = data["environment"]
    assert environment["name"] == "acme-prod"
    assert (environment["organization"], environment["envType"]) == ("acme", "prod")
    assert environment["repository"]
    assert environment["createdBy"] == "admin"


async def test_org_viewer_reads_an_environments_applications(service: ApiService) -> None:
    body = await query(
        service,
        f"""{{
            environment(name: "acme-dev") {{
                all: applications {{ {APPLICATION_FIELDS} document }}
                wordpress: applications(blueprint: "bp-wordpress") {{ name }}
                running: applications(status: "Running") {{ name }}
                both: applications(blueprint: "bp-redis", status: "Running") {{ name }}
            }}
        }}""",
        service.auth("org-viewer", "acme"),
    )
    assert "errors" not in body, body
    environment = body["data"]["environment"]
    # The status projection's private keys are not Applications.
    assert names(environment["all"]) == ["blog", "cache", "web"]
    web = environment["all"][2]
    expected = status_document("web", "bp-wordpress", "1.1.0", "Running")
    assert web == {
        "environment": "acme-dev",
        "organization": "acme",
        "name": "web",
        "status": "Running",
        "reason": "web is running",
        "since": expected["since"],
        "version": "1.1.0",
        "blueprint": "bp-wordpress",
        "everRunning": True,
        "lastCommit": expected["lastCommit"],
        "document": {"environment": "acme-dev", "organization": "acme", **expected},
    }
    assert names(environment["wordpress"]) == ["blog", "web"]
    assert names(environment["running"]) == ["web"]
    assert environment["both"] == []


async def test_applications_across_environments_filter_by_blueprint_and_status(
    service: ApiService,
) -> None:
    body = await query(
        service,
        """query Apps($org: String) {
            all: applications { environment name }
            acme: applications(organization: $org) { environment name }
            wordpress: applications(blueprint: "bp-wordpress") { environment name version }
            running: applications(status: "Running") { environment name }
            failingWordpress: applications(blueprint: "bp-wordpress", status: "Failed") {
                environment name status reason
            }
        }""",
        service.auth("org-viewer", "acme"),
        org="acme",
    )
    assert "errors" not in body, body
    data = body["data"]
    every = [("acme-dev", "blog"), ("acme-dev", "cache"), ("acme-dev", "web")]
    every += [("acme-prod", "shop"), ("acme-prod", "web")]
    assert names(data["all"], "environment", "name") == every
    assert names(data["acme"], "environment", "name") == every
    assert names(data["wordpress"], "environment", "name", "version") == [
        ("acme-dev", "blog", "1.2.0"),
        ("acme-dev", "web", "1.1.0"),
        ("acme-prod", "shop", "1.1.0"),
        ("acme-prod", "web", "1.0.0"),
    ]
    assert names(data["running"], "environment", "name") == [
        ("acme-dev", "web"),
        ("acme-prod", "web"),
    ]
    assert data["failingWordpress"] == [
        {"environment": "acme-prod", "name": "shop", "status": "Failed", "reason": "shop is failed"}
    ]


async def test_blueprint_usage_across_an_organizations_environments(service: ApiService) -> None:
    body = await query(
        service,
        """{
            blueprintUsage(organization: "acme", blueprint: "bp-wordpress") {
                organization blueprint
                applications { environment name }
                environments { environment versions applications { name version } }
                versions { version environments applications { environment name } }
            }
            unused: blueprintUsage(organization: "acme", blueprint: "bp-ghost") {
                applications { name } environments { environment } versions { version }
            }
        }""",
        service.auth("org-viewer", "acme"),
    )
    assert "errors" not in body, body
    usage = body["data"]["blueprintUsage"]
    assert (usage["organization"], usage["blueprint"]) == ("acme", "bp-wordpress")
    # Another Organization's Environments (globex-dev uses it too) are not part of acme's usage.
    assert names(usage["applications"], "environment", "name") == [
        ("acme-dev", "blog"),
        ("acme-dev", "web"),
        ("acme-prod", "shop"),
        ("acme-prod", "web"),
    ]
    assert usage["environments"] == [
        {
            "environment": "acme-dev",
            "versions": ["1.2.0", "1.1.0"],
            "applications": [
                {"name": "blog", "version": "1.2.0"},
                {"name": "web", "version": "1.1.0"},
            ],
        },
        {
            "environment": "acme-prod",
            "versions": ["1.1.0", "1.0.0"],
            "applications": [
                {"name": "shop", "version": "1.1.0"},
                {"name": "web", "version": "1.0.0"},
            ],
        },
    ]
    assert usage["versions"] == [
        {
            "version": "1.2.0",
            "environments": ["acme-dev"],
            "applications": [{"environment": "acme-dev", "name": "blog"}],
        },
        {
            "version": "1.1.0",
            "environments": ["acme-dev", "acme-prod"],
            "applications": [
                {"environment": "acme-dev", "name": "web"},
                {"environment": "acme-prod", "name": "shop"},
            ],
        },
        {
            "version": "1.0.0",
            "environments": ["acme-prod"],
            "applications": [{"environment": "acme-prod", "name": "web"}],
        },
    ]
    assert body["data"]["unused"] == {"applications": [], "environments": [], "versions": []}


def test_versions_are_ordered_newest_first_unknown_last() -> None:
    versions = ["1.2.0", None, "1.10.0", "not-semver", "1.2.0", "0.9.1"]
    assert newest_first(versions) == ["1.10.0", "1.2.0", "0.9.1", "not-semver", None]


async def test_an_unknown_environment_of_ones_organization_is_not_found(
    service: ApiService,
) -> None:
    body = await query(
        service,
        '{ environment(name: "acme-uat") { name } organization(name: "acme") { name } }',
        service.auth("org-viewer", "acme"),
    )
    assert body["data"] == {"environment": None, "organization": {"name": "acme"}}
    error = errors(body)["environment"]
    assert error["extensions"] == {
        "code": "not-found",
        "status": 404,
        "type": "https://catalyst.openova.io/problems/not-found",
        "field": "name",
    }
    assert error["locations"]


# -------------------------------------------------------------------------------------------------
# Other Organizations
# -------------------------------------------------------------------------------------------------


async def test_another_organizations_principal_is_forbidden_acmes_data(
    service: ApiService,
) -> None:
    body = await query(
        service,
        """{
            organization(name: "acme") { name }
            missingOrganization: organization(name: "nosuch") { name }
            environment(name: "acme-dev") { name applications { name } }
            missingEnvironment: environment(name: "acme-uat") { name }
            environments(organization: "acme") { name }
            applications(organization: "acme") { name }
            blueprintUsage(organization: "acme", blueprint: "bp-wordpress") { blueprint }
        }""",
        service.auth("org-admin", "globex"),
    )
    assert body["data"] == dict.fromkeys(
        [
            "organization",
            "missingOrganization",
            "environment",
            "missingEnvironment",
            "environments",
            "applications",
            "blueprintUsage",
        ]
    )
    assert set(codes(body).values()) == {"forbidden"}
    assert set(codes(body)) == set(body["data"])
    found = errors(body)
    assert {e["extensions"]["status"] for e in found.values()} == {403}
    # Whether acme-dev exists or acme-uat does not, the answer is the same.
    assert found["environment"]["message"].replace("acme-dev", "X") == found["missingEnvironment"][
        "message"
    ].replace("acme-uat", "X")
    assert found["organization"]["message"].replace("acme", "X") == found["missingOrganization"][
        "message"
    ].replace("nosuch", "X")


async def test_another_organizations_principal_lists_only_its_own(service: ApiService) -> None:
    body = await query(
        service,
        """{
            organizations { name environments { name } }
            environments { name }
            applications { environment name }
            wordpress: applications(blueprint: "bp-wordpress") { environment name }
        }""",
        service.auth("org-admin", "globex"),
    )
    assert "errors" not in body, body
    data = body["data"]
    assert data["organizations"] == [{"name": "globex", "environments": [{"name": "globex-dev"}]}]
    assert names(data["environments"]) == ["globex-dev"]
    assert names(data["applications"], "environment", "name") == [("globex-dev", "site")]
    assert data["wordpress"] == data["applications"]


async def test_sovereign_admin_reads_every_organization(service: ApiService) -> None:
    body = await query(
        service,
        """{
            organizations { name environments { name } }
            environments { name }
            applications { environment name }
            environment(name: "globex-dev") { applications { name } }
            usage: blueprintUsage(organization: "globex", blueprint: "bp-wordpress") {
                versions { version environments }
            }
            missing: organization(name: "nosuch") { name }
            missingEnvironments: environments(organization: "nosuch") { name }
            missingUsage: blueprintUsage(organization: "nosuch", blueprint: "bp-wordpress") {
                blueprint
            }
            missingEnvironment: environment(name: "acme-uat") { name }
        }""",
        service.auth("sovereign-admin", None),
    )
    data = body["data"]
    assert data["organizations"] == [
        {"name": "acme", "environments": [{"name": "acme-dev"}, {"name": "acme-prod"}]},
        {"name": "globex", "environments": [{"name": "globex-dev"}]},
    ]
    assert names(data["environments"]) == list(ENVIRONMENTS)
    assert names(data["applications"], "environment", "name") == [
        (environment, name) for environment, name, *_ in APPLICATIONS
    ]
    assert data["environment"] == {"applications": [{"name": "site"}]}
    assert data["usage"] == {"versions": [{"version": "1.1.0", "environments": ["globex-dev"]}]}
    # Only a sovereign-admin may learn that an Organization does not exist.
    missing = ["missing", "missingEnvironments", "missingUsage", "missingEnvironment"]
    assert all(data[key] is None for key in missing)
    assert codes(body) == dict.fromkeys(missing, "not-found")
    fields = {path: error["extensions"]["field"] for path, error in errors(body).items()}
    assert fields == {
        "missing": "name",
        "missingEnvironments": "organization",
        "missingUsage": "organization",
        "missingEnvironment": "name",
    }


async def test_an_environment_scoped_token_sees_only_its_environments(
    service: ApiService,
) -> None:
    body = await query(
        service,
        """{
            organizations { name environments { name } }
            environments { name }
            applications { environment name }
            blueprintUsage(organization: "acme", blueprint: "bp-wordpress") {
                environments { environment }
            }
            dev: environment(name: "acme-dev") { applications { name } }
            prod: environment(name: "acme-prod") { name }
        }""",
        service.auth("org-viewer", "acme", environments=["acme-dev"]),
    )
    data = body["data"]
    assert data["organizations"] == [{"name": "acme", "environments": [{"name": "acme-dev"}]}]
    assert names(data["environments"]) == ["acme-dev"]
    assert {a["environment"] for a in data["applications"]} == {"acme-dev"}
    assert data["blueprintUsage"] == {"environments": [{"environment": "acme-dev"}]}
    assert names(data["dev"]["applications"]) == ["blog", "cache", "web"]
    assert data["prod"] is None
    assert codes(body) == {"prod": "forbidden"}


async def test_a_role_without_applications_read_gets_environments_but_not_applications(
    service: ApiService,
) -> None:
    body = await query(
        service,
        '{ environment(name: "acme-dev") { name applications { name } } }',
        service.auth("billing-admin", "acme"),
    )
    assert body["data"] == {"environment": {"name": "acme-dev", "applications": None}}
    assert codes(body) == {"environment.applications": "forbidden"}


# -------------------------------------------------------------------------------------------------
# Errors and limits
# -------------------------------------------------------------------------------------------------


async def test_invalid_arguments_are_errors_naming_the_argument(service: ApiService) -> None:
    body = await query(
        service,
        """{
            environment(name: "Acme_Dev") { name }
            organization(name: "x") { name }
            environments(organization: "NO") { name }
            badBlueprint: applications(blueprint: "wordpress") { name }
            badStatus: applications(status: "Sleeping") { name }
            usage: blueprintUsage(organization: "acme", blueprint: "bp-") { blueprint }
        }""",
        service.auth("org-viewer", "acme"),
    )
    assert all(value is None for value in body["data"].values())
    found = {
        path: (e["extensions"]["code"], e["extensions"]["status"], e["extensions"]["field"])
        for path, e in errors(body).items()
    }
    assert found == {
        "environment": ("invalid-name", 422, "name"),
        "organization": ("invalid-name", 422, "name"),
        "environments": ("invalid-name", 422, "organization"),
        "badBlueprint": ("invalid-name", 422, "blueprint"),
        "badStatus": ("invalid-input", 422, "status"),
        "usage": ("invalid-name", 422, "blueprint"),
    }
    assert "Running" in errors(body)["badStatus"]["message"]


async def test_a_malformed_query_is_a_graphql_error_never_a_500(service: ApiService) -> None:
    headers = service.auth("org-viewer", "acme")
    cases = {
        "{ organizations { name }": "malformed-request",
        "{ organizations { nope } }": "invalid-input",
        "{ environment { name } }": "invalid-input",
        "{ environment(name: 42) { name } }": "invalid-input",
        "mutation { organizations { name } }": "invalid-input",
        "subscription { organizations { name } }": "invalid-input",
    }
    for document, code in cases.items():
        response = await service.client.post(GRAPHQL, json={"query": document}, headers=headers)
        assert response.status_code < 500, (document, response.text)
        if response.status_code != 200:
            # Strawberry refuses some operations before running them: a problem, then.
            assert response.headers["content-type"].startswith("application/problem+json")
            continue
        body = response.json()
        assert body.get("data") is None, (document, body)
        assert set(codes(body).values()) == {code}, (document, body)
    bad_variables = await query(
        service, "query Q($n: String!) { environment(name: $n) { name } }", headers, n=42
    )
    assert set(codes(bad_variables).values()) == {"invalid-input"}


async def test_queries_deeper_than_the_limit_are_refused(service: ApiService) -> None:
    deep = "name"
    for _ in range(LIMITS.graphql_max_depth):
        deep = f"environments {{ {deep} }}"
    body = await query(service, f"{{ organizations {{ {deep} }} }}", service.auth())
    assert body.get("data") is None
    messages = [e["message"] for e in body["errors"]]
    assert any(
        f"exceeds maximum operation depth of {LIMITS.graphql_max_depth}" in m for m in messages
    )
    assert {e["extensions"]["code"] for e in body["errors"]} == {"invalid-input"}


async def test_too_many_aliases_or_tokens_are_refused(service: ApiService) -> None:
    aliases = " ".join(
        f"a{i}: organizations {{ name }}" for i in range(LIMITS.graphql_max_aliases + 1)
    )
    body = await query(service, f"{{ {aliases} }}", service.auth())
    assert body.get("data") is None
    assert set(codes(body).values()) == {"invalid-input"}
    assert any("aliases" in e["message"] for e in body["errors"])

    fields = " ".join("name" for _ in range(LIMITS.graphql_max_tokens))
    body = await query(service, f"{{ organizations {{ {fields} }} }}", service.auth())
    assert body.get("data") is None
    assert set(codes(body).values()) == {"malformed-request"}


async def test_the_limits_are_settings(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(
        data_dir=str(tmp_path / "data"),
        api={"graphql_max_depth": 4, "graphql_max_aliases": 1},
    )
    async with running_service(settings) as service:
        two = "{ a: organizations { name } b: organizations { name } }"
        body = await query(service, two, service.auth())
        assert any("aliases" in e["message"] for e in body["errors"])
        deep = "{ organizations { environments { applications { name } } } }"
        body = await query(service, f"{{ x: {deep[2:]}", service.auth())
        assert "errors" not in body, body  # depth 3, one alias: within
        deeper = "name"
        for _ in range(4):
            deeper = f"environments {{ {deeper} }}"
        body = await query(service, f"{{ organizations {{ {deeper} }} }}", service.auth())
        assert any("maximum operation depth of 4" in e["message"] for e in body["errors"]), body


async def test_introspection_works_within_the_limits(service: ApiService) -> None:
    body = await query(service, get_introspection_query(descriptions=True), service.auth())
    assert "errors" not in body, body
    types = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Query", "Organization", "Environment", "Application", "BlueprintUsage"} <= types
    assert body["data"]["__schema"]["mutationType"] is None


async def test_an_unexpected_failure_is_masked_and_logged(
    service: ApiService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise RuntimeError("secret internals at /var/lib/catalyst")

    monkeypatch.setattr("catalyst_kernel.api.graphql.schema.applications_across", broken)
    with caplog.at_level(logging.ERROR, logger="catalyst_kernel.api.graphql.schema"):
        body = await query(
            service,
            "{ applications { name } organizations { name } }",
            service.auth("org-viewer", "acme"),
        )
    assert body["data"] == {"applications": None, "organizations": [{"name": "acme"}]}
    error = errors(body)["applications"]
    assert error["message"] == "An unexpected error occurred; it has been logged."
    assert error["extensions"]["code"] == "internal-error"
    assert error["extensions"]["status"] == 500
    assert "secret" not in json.dumps(body)
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_a_backend_outage_is_backend_unavailable(
    service: ApiService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise BackendUnavailable("the spine cannot be reached")

    monkeypatch.setattr("catalyst_kernel.api.graphql.types.environment_applications", unavailable)
    body = await query(
        service, '{ environment(name: "acme-dev") { name applications { name } } }', service.auth()
    )
    assert body["data"] == {"environment": {"name": "acme-dev", "applications": None}}
    error = errors(body)["environment.applications"]
    assert error["extensions"]["code"] == "backend-unavailable"
    assert error["extensions"]["status"] == 503
