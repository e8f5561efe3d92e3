"""``POST /v1/webhooks/gitea`` over real HTTP: deliveries of the stand-in (signed as Gitea signs
them) become events on the spine, the policy status follows the verdict, a merge in Gitea obeys
it, and a push that bypassed Catalyst is flagged in the read model and the timeline."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from catalyst_gitea.testing import GiteaStandIn
from catalyst_gitea.webhooks import GITEA_SIGNATURE
from catalyst_kernel.api.webhooks import BadSignature
from catalyst_kernel.model.plan import FileAction, FileChange, InstallPlan
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    ChangeRequest,
    CommitRequest,
)
from catalyst_kernel.provisioning.provisioner import Operation
from catalyst_kernel.secrets.backend import SecretPath
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

from .conftest import HUMAN_TOKEN, WEBHOOK_SECRET, gitea_manager, service_settings

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
ROUTE = "/v1/webhooks/gitea"
SECRET = SecretPath("acme", "dev", "web", "password")


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def settle(standin: GiteaStandIn) -> None:
    await anyio.to_thread.run_sync(standin.flush_webhooks)


async def events(service: ApiService, environment: str = ENV) -> list[Any]:
    return [d.event for d in await service.runtime.spine.read(environment)]


async def wait_for_key(service: ApiService, key: str) -> Any:
    kv = await service.kv(ENV)
    with anyio.fail_after(15):
        while True:
            entry = await kv.get(key)
            if entry is not None and entry.value is not None:
                return json.loads(entry.value)
            await anyio.sleep(0.05)


def git_push(standin: GiteaStandIn, branch: str, files: dict[str, str], user: str = "dana") -> str:
    """Clone, change ``files`` and push as ``user`` (a person with a Git client)."""
    with tempfile.TemporaryDirectory() as work:
        token = standin.users[user].token
        url = standin.url.replace("http://", f"http://{user}:{token}@") + f"/acme/{ENV}.git"

        def run(*args: str) -> str:
            return subprocess.run(
                ["git", *args], cwd=work, check=True, capture_output=True, text=True
            ).stdout

        run("clone", "-q", "-b", branch, url, ".")
        for path, content in files.items():
            Path(work, path).parent.mkdir(parents=True, exist_ok=True)
            Path(work, path).write_text(content)
            run("add", path)
        run(
            "-c",
            f"user.name={user}",
            "-c",
            f"user.email={user}@gitea.invalid",
            "commit",
            "-qm",
            "Changed outside Catalyst",
        )
        result = subprocess.run(
            ["git", "push", "-q", "origin", branch], cwd=work, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise PermissionError(result.stderr)
        return run("rev-parse", "HEAD").strip()


def as_dana(standin: GiteaStandIn, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{standin.url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"token {HUMAN_TOKEN}"},
    )


async def open_change(
    service: ApiService, path: str = "applications/web/values.yaml"
) -> ChangeRequest:
    request = CommitRequest(
        environment=ENV,
        message="Promote web",
        files=(FileChange(path, FileAction.ADD, "replicas: 2\n"),),
        actor="alice",
        operation_id=f"op-{uuid.uuid4().hex[:8]}",
        applications=(ApplicationChange("web", ApplicationAction.PROMOTE, "bp-web", "1.0.0"),),
    )
    return await service.runtime.committer.open_change(request, "Promote web")


def policy_status(standin: GiteaStandIn, sha: str) -> tuple[str, str]:
    statuses = [s for s in standin.repository("acme", ENV).statuses if s.sha == sha]
    assert statuses, f"no status on {sha}"
    return statuses[-1].state, statuses[-1].description


async def set_policy(service: ApiService, rules: list[dict[str, Any]]) -> None:
    policy = {
        "metadata": {"name": f"{ENV}-policy", "namespace": "acme"},
        "spec": {"appliesTo": {"environments": [ENV]}, "rules": rules},
    }
    saved = await service.client.put(
        f"/v1/environments/{ENV}/policy", json=policy, headers=service.auth("sovereign-admin", None)
    )
    assert saved.status_code == 200, saved.text


# --- authentication and framing -------------------------------------------------------------


def test_the_signature_is_the_bare_hex_hmac_sha256_of_the_body() -> None:
    body = b'{"ref": "refs/heads/main"}'
    right = sign(body)
    assert GITEA_SIGNATURE.sign(WEBHOOK_SECRET, body) == right
    GITEA_SIGNATURE.verify(WEBHOOK_SECRET, body, right)
    GITEA_SIGNATURE.verify(WEBHOOK_SECRET, body, f" {right.upper()} ")
    for signature, why in [
        (None, "header is missing"),
        ("", "header is missing"),
        ("zz", "not hexadecimal"),
        (f"sha256={right}", "not hexadecimal"),
        (right[:-2], "does not match"),
        (sign(body, "another-secret-0123456789"), "does not match"),
        (hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha512).hexdigest(), "does not match"),
    ]:
        with pytest.raises(BadSignature, match=why) as caught:
            GITEA_SIGNATURE.verify(WEBHOOK_SECRET, body, signature)
        assert WEBHOOK_SECRET not in str(caught.value)
        assert right not in str(caught.value)


async def test_a_wrong_signature_is_401_and_publishes_nothing(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    sha = git_push(standin, "main", {"README.md": "hello\n"})
    await settle(standin)
    (delivery,) = [d for d in standin.deliveries if d.event == "push" and sha in d.body.decode()]
    before = await events(service)
    for signature in (sign(delivery.body, "another-secret-0123456789"), "", "zz"):
        headers = {**delivery.headers, "X-Gitea-Signature": signature}
        refused = await service.client.post(ROUTE, content=delivery.body, headers=headers)
        assert_problem(refused, 401, "unauthenticated")
        assert refused.headers["WWW-Authenticate"].startswith("HMAC")
    unsigned = {k: v for k, v in delivery.headers.items() if k != "X-Gitea-Signature"}
    assert_problem(
        await service.client.post(ROUTE, content=delivery.body, headers=unsigned),
        401,
        "unauthenticated",
    )
    assert await events(service) == before
    # The same delivery, rightly signed, is accepted; its events were published already.
    again = await service.client.post(ROUTE, content=delivery.body, headers=delivery.headers)
    assert again.status_code == 202
    assert again.json()["published"] == []
    assert again.json()["duplicates"] == [f"git-{sha}"]


async def test_bodies_that_are_too_large_or_not_json_are_refused(service: ApiService) -> None:
    body = b"x" * (3 * 1024 * 1024)
    too_large = await service.client.post(
        ROUTE, content=body, headers={"X-Gitea-Signature": sign(body), "X-Gitea-Event": "push"}
    )
    assert too_large.status_code == 413
    garbage = b"{not json"
    refused = await service.client.post(
        ROUTE,
        content=garbage,
        headers={"X-Gitea-Signature": sign(garbage), "X-Gitea-Event": "push"},
    )
    assert_problem(refused, 422, "invalid-input")
    other = json.dumps({"repository": {"full_name": "someone/else"}}).encode()
    ignored = await service.client.post(
        ROUTE, content=other, headers={"X-Gitea-Signature": sign(other), "X-Gitea-Event": "push"}
    )
    assert ignored.status_code == 202
    assert ignored.json() == {
        "event": "push",
        "environment": None,
        "published": [],
        "duplicates": [],
    }


async def test_without_a_secret_the_route_is_not_found(
    catalyst_settings: Callable[..., Settings], standin: GiteaStandIn
) -> None:
    settings = service_settings(catalyst_settings, standin, webhook_secret=None, webhook_url=None)
    async with running_service(settings, manager=gitea_manager(settings)) as running:
        body = b"{}"
        answer = await running.client.post(
            ROUTE, content=body, headers={"X-Gitea-Signature": sign(body)}
        )
        assert_problem(answer, 404, "not-found")


# --- pushes ----------------------------------------------------------------------------------


async def test_catalyst_own_pushes_publish_nothing_more(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    await settle(standin)
    (push,) = [d for d in standin.deliveries if d.event == "push"]
    assert push.status == 202
    assert json.loads(push.response)["published"] == []
    commits = [e for e in await events(service) if e.type == "io.catalyst.git.commit"]
    assert len(commits) == 1  # the committer's own event


async def test_a_push_outside_catalyst_is_a_git_event(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    sha = git_push(standin, "main", {"applications/web/values.yaml": "replicas: 3\n"})
    await settle(standin)
    stored = await wait_for_key(service, f"git/{sha}")
    assert stored["actor"] == "dana"
    assert stored["message"] == "Changed outside Catalyst"
    kv = await service.kv(ENV)
    _, flags = await kv.snapshot("gitea-bypass/")
    assert flags == []  # main is not protected: nothing bypassed


async def test_a_push_that_bypasses_a_protected_main_is_flagged(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    await set_policy(
        service, [{"kind": "pr-required", "approvers": ["team-ops"], "minApprovals": 1}]
    )
    repo = standin.repository("acme", ENV)
    rule = repo.protections["main"]
    assert rule["enable_status_check"]
    assert rule["status_check_contexts"] == ["catalyst/environment-policy"]
    assert rule["push_whitelist_usernames"] == ["catalyst"]
    with pytest.raises(PermissionError, match="protected branch main"):
        git_push(standin, "main", {"applications/web/values.yaml": "replicas: 3\n"})
    # Dana (a repository admin) lifts the protection and pushes: Catalyst notices.
    assert (
        as_dana(standin, "DELETE", f"/repos/acme/{ENV}/branch_protections/main").status_code == 204
    )
    sha = git_push(standin, "main", {"applications/web/values.yaml": "replicas: 3\n"})
    await settle(standin)
    flag = await wait_for_key(service, f"gitea-bypass/{sha}")
    assert flag["pusher"] == "dana"
    assert flag["commits"] == [sha]
    assert flag["applications"] == ["web"]
    assert flag["protectedBy"] == ["policy"]
    history = await service.client.get(
        f"/v1/environments/{ENV}/applications/web/history", headers=service.auth()
    )
    assert history.status_code == 200, history.text
    (entry,) = [item for item in history.json()["items"] if item["kind"] == "bypass"]
    assert entry["detail"]["pusher"] == "dana"
    assert entry["detail"]["after"] == sha


# --- pull requests, reviews and the policy status ----------------------------------------------


async def test_pull_request_events_publish_the_verdict_as_the_policy_status(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    change = await open_change(service)
    await settle(standin)
    state, description = policy_status(standin, change.head)
    assert state == "success", description  # no rules: it may merge
    status = [s for s in standin.repository("acme", ENV).statuses if s.sha == change.head][-1]
    assert status.target_url == f"https://catalyst.invalid/environments/{ENV}/changes/{change.id}"
    # Dana's own review is news for the change request, not an approval.
    review = as_dana(
        standin,
        "POST",
        f"/repos/acme/{ENV}/pulls/{change.id}/reviews",
        {"event": "COMMENT", "body": "Looks fine."},
    )
    assert review.status_code == 200
    await settle(standin)
    reviewed = [e for e in await events(service) if e.type == "io.catalyst.change.reviewed"]
    assert [e.data["reviewer"] for e in reviewed] == ["dana"]
    assert (await service.runtime.committer.get_change(ENV, change.id)).approvals == ()
    # A pull request Dana opens is no change request: its policy status fails.
    branch = "dana/feature"
    git = standin.git("acme", ENV)
    git.references.create(f"refs/heads/{branch}", git.references["refs/heads/main"].target)
    sha = git_push(standin, branch, {"notes.md": "mine\n"})
    opened = as_dana(
        standin,
        "POST",
        f"/repos/acme/{ENV}/pulls",
        {"title": "Mine", "head": branch, "base": "main"},
    )
    assert opened.status_code == 201
    await settle(standin)
    assert policy_status(standin, sha)[0] == "failure"


async def test_a_merge_in_gitea_obeys_the_policy_status(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    await set_policy(
        service, [{"kind": "pr-required", "approvers": ["team-ops"], "minApprovals": 1}]
    )
    # The change carries a new secret value, staged until it merges (as the API stages it).
    operation = Operation(
        InstallPlan(id="op", environment=ENV, application="web", applications=()),
        CommitRequest(
            environment=ENV,
            message="Update web",
            files=(FileChange("applications/web/values.yaml", FileAction.ADD, "replicas: 2\n"),),
            actor="alice",
            operation_id=f"op-{uuid.uuid4().hex[:8]}",
            applications=(ApplicationChange("web", ApplicationAction.UPDATE, "bp-web", "1.0.0"),),
        ),
        secrets=((SECRET, {"value": "rotated-password-2468"}),),
    )
    change = await service.runtime.changes.propose(operation, "Update web")
    await settle(standin)
    assert policy_status(standin, change.head)[0] == "failure"
    early = as_dana(standin, "POST", f"/repos/acme/{ENV}/pulls/{change.id}/merge", {"do": "squash"})
    assert early.status_code == 405
    assert "status checks" in early.json()["message"]
    ops = service.auth("org-developer", groups=["team-ops"], subject="pat@acme")
    approved = await service.client.post(
        f"/v1/environments/{ENV}/changes/{change.id}/approve", headers=ops
    )
    assert approved.status_code == 200, approved.text
    await settle(standin)  # the review's webhook re-evaluates the policy
    assert policy_status(standin, change.head)[0] == "success"
    merged = as_dana(
        standin, "POST", f"/repos/acme/{ENV}/pulls/{change.id}/merge", {"do": "squash"}
    )
    assert merged.status_code == 200, merged.text
    await settle(standin)
    record = await wait_for_key(service, f"change/{change.id}")
    with anyio.fail_after(10):
        while record["state"] != "merged":
            await anyio.sleep(0.05)
            record = await wait_for_key(service, f"change/{change.id}")
    sha = record["commit"]
    commit = await wait_for_key(service, f"git/{sha}")
    assert [a["name"] for a in commit["applications"]] == ["web"]
    kv = await service.kv(ENV)
    _, flags = await kv.snapshot("gitea-bypass/")
    assert flags == []  # merged through the pull request: the policy was obeyed
    # Merged in Gitea, not by Catalyst: the webhook settled the staged value all the same.
    assert await service.runtime.secrets.read(SECRET) == {"value": "rotated-password-2468"}


async def test_pushes_to_a_change_and_closing_it_in_gitea_update_the_change(
    service: ApiService, standin: GiteaStandIn
) -> None:
    await service.create_environment(ENV)
    change = await open_change(service)
    branch = standin.repository("acme", ENV).pulls[int(change.id)].head_branch
    sha = git_push(standin, branch, {"applications/web/extra.yaml": "x: 1\n"})
    await settle(standin)
    closed = as_dana(standin, "PATCH", f"/repos/acme/{ENV}/pulls/{change.id}", {"state": "closed"})
    assert closed.status_code == 201
    await settle(standin)
    published = [
        (e.type.rsplit(".", 1)[-1], e.data["revision"])
        for e in await events(service)
        if e.type.startswith("io.catalyst.change.")
    ]
    assert published == [("opened", 1), ("updated", 2), ("closed", 2)]
    record = await wait_for_key(service, f"change/{change.id}")
    with anyio.fail_after(10):
        while record["state"] != "closed":
            await anyio.sleep(0.05)
            record = await wait_for_key(service, f"change/{change.id}")
    assert record["revision"] == 2
    state = await service.runtime.committer.get_change(ENV, change.id)
    assert (state.head, state.revision) == (sha, 2)
