"""The stand-in holds itself to Gitea's API description: a request or a response that does not
match it fails the exchange and is recorded; Git over HTTP needs a token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from catalyst_gitea.testing import GiteaStandIn
from catalyst_gitea.testing.openapi import UNDOCUMENTED

from .conftest import CATALYST_TOKEN

AUTH = {"Authorization": f"token {CATALYST_TOKEN}"}


def call(standin: GiteaStandIn, method: str, path: str, **options: Any) -> httpx.Response:
    return httpx.request(method, f"{standin.url}/api/v1{path}", headers=AUTH, **options)


def test_a_request_that_breaks_the_description_is_refused_and_recorded(
    standin: GiteaStandIn,
) -> None:
    assert call(standin, "POST", "/orgs", json={"username": "acme"}).status_code == 201
    bad = call(standin, "POST", "/orgs/acme/repos", json={"name": 42})
    assert bad.status_code == 500
    assert "does not match Gitea's API" in bad.json()["message"]
    unknown = call(standin, "GET", "/repos/acme/x/nonsense")
    assert unknown.status_code == 500
    assert len(standin.validation_errors) == 2
    standin.validator.errors.clear()


def test_a_response_that_breaks_the_description_is_caught(
    standin: GiteaStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wrong(**_: Any) -> tuple[int, Any]:
        return 200, {"version": 1.24}  # a number where Gitea's ServerVersion has text

    monkeypatch.setattr(
        standin, "_routes", [r if r[1] != "/version" else (*r[:3], wrong) for r in standin._routes]
    )
    answer = call(standin, "GET", "/version")
    assert answer.status_code == 500
    assert "response 200 to GET /api/v1/version" in standin.validation_errors[0]
    standin.validator.errors.clear()


def test_undocumented_statuses_are_allowed_only_where_gitea_gives_them(
    standin: GiteaStandIn,
) -> None:
    assert ("POST", "/orgs/{org}/repos") in UNDOCUMENTED
    call(standin, "POST", "/orgs", json={"username": "acme"})
    assert call(standin, "POST", "/orgs/acme/repos", json={"name": "acme-dev"}).status_code == 201
    again = call(standin, "POST", "/orgs/acme/repos", json={"name": "acme-dev"})
    assert again.status_code == 409
    wrong = httpx.get(f"{standin.url}/api/v1/user", headers={"Authorization": "token wrong"})
    assert wrong.status_code == 401  # Gitea's description leaves 401 out everywhere
    standin.fail_next(409, path="/version")
    assert call(standin, "GET", "/version").status_code == 500  # 409 is not Gitea's answer there
    assert len(standin.validation_errors) == 1
    standin.validator.errors.clear()
    assert standin.validator.exchanges >= 4


def test_git_over_http_needs_a_valid_token(standin: GiteaStandIn) -> None:
    call(standin, "POST", "/orgs", json={"username": "acme"})
    call(standin, "POST", "/orgs/acme/repos", json={"name": "acme-dev"})
    refs = f"{standin.url}/acme/acme-dev.git/info/refs?service=git-upload-pack"
    anonymous = httpx.get(refs)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.get(refs, auth=("catalyst", "wrong")).status_code == 401
    served = httpx.get(refs, auth=("catalyst", CATALYST_TOKEN))
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    missing = f"{standin.url}/acme/acme-nope.git/info/refs?service=git-upload-pack"
    assert httpx.get(missing, auth=("catalyst", CATALYST_TOKEN)).status_code == 404
