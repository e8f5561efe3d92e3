"""What the gitea committer does on Gitea beyond the conformance suite: Organizations and
repositories, pushes that race other writers, pull requests, reviews and squash merges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.errors import Conflict, NotFound
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.model.tenancy import Environment
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeStatus,
    CommitRequest,
)

from .conftest import HUMAN_TOKEN, CommitterMaker

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
POLICY = "policies/environment-policy.yaml"


def request(*files: FileChange, actor: str = "alice", message: str = "Change it") -> CommitRequest:
    return CommitRequest(
        environment=ENV,
        message=message,
        files=files,
        actor=actor,
        operation_id=f"op-{uuid.uuid4().hex[:8]}",
    )


def add(path: str, content: str = "a: 1\n") -> FileChange:
    return FileChange(path, FileAction.ADD, content)


def modify(path: str, content: str) -> FileChange:
    return FileChange(path, FileAction.MODIFY, content)


async def create(committer: GiteaCommitter) -> str:
    initial = request(add(POLICY, "rules: []\n"), message=f"Create {ENV}")
    return (await committer.create_repository(Environment.parse(ENV), initial)).sha


def approval(approver: str, revision: int, *groups: str) -> Approval:
    return Approval(approver, revision, datetime.now(UTC), frozenset(groups))


def push_as_outsider(standin: GiteaStandIn, branch: str, path: str, content: bytes) -> str:
    """Commit straight into the repository on disk, as a person with a Git client would."""
    git = standin.git("acme", ENV)
    head = git.references[f"refs/heads/{branch}"].peel(pygit2.Commit)
    builder = git.TreeBuilder(head.tree)
    builder.insert(path, git.create_blob(content), pygit2.GIT_FILEMODE_BLOB)
    signature = pygit2.Signature("Dana", "dana@gitea.invalid")
    oid = git.create_commit(
        f"refs/heads/{branch}", signature, signature, "Outside", builder.write(), [head.id]
    )
    return str(oid)


async def test_an_environment_is_a_private_repository_of_its_organization(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer(
        webhook_url="https://catalyst.invalid/v1/webhooks/gitea", webhook_secret="s" * 20
    ) as committer:
        sha = await create(committer)
    assert standin.orgs["acme"]["visibility"] == "private"
    repo = standin.repository("acme", ENV)
    assert repo.private
    assert repo.collaborators == {"catalyst-reviewer": "write"}
    assert repo.default_branch == "main"
    assert str(standin.git("acme", ENV).references["refs/heads/main"].target) == sha
    (hook,) = repo.hooks
    assert hook.url == "https://catalyst.invalid/v1/webhooks/gitea"
    assert hook.secret == "s" * 20
    assert {"push", "pull_request", "pull_request_review"} <= set(hook.events)


async def test_an_empty_repository_left_by_a_failed_creation_is_completed(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        standin.fail_next(500, times=1)  # the organization lookup fails: nothing is created
        with pytest.raises(Exception, match="500"):
            await create(committer)
        await committer._ensure_organization("acme")
        await committer._ensure_repository(Environment.parse(ENV))
        assert not await committer.repository_exists(ENV)  # exists on Gitea, but empty
        sha = await create(committer)
        assert await committer.repository_exists(ENV)
        assert [c.sha for c in await committer.log(ENV)] == [sha]


async def test_commits_carry_the_actor_and_trailers_and_land_on_gitea(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        info = await committer.commit(request(add("applications/web/values.yaml"), actor="bob"))
    commit = standin.git("acme", ENV)[pygit2.Oid(hex=info.sha)].peel(pygit2.Commit)
    assert commit.author.name == "bob"
    assert commit.committer.name == "Catalyst"
    assert "Catalyst-Actor: bob" in commit.message
    assert str(standin.git("acme", ENV).references["refs/heads/main"].target) == info.sha


async def test_a_commit_on_a_moved_branch_is_rebuilt_and_pushed_again(
    make_committer: CommitterMaker, standin: GiteaStandIn, tmp_path: Path
) -> None:
    async with make_committer() as first, make_committer(mirror_dir=tmp_path / "other") as second:
        await create(first)
        one = await first.commit(request(add("applications/one/values.yaml")))
        # The second process's mirror is stale once the first commits again: its push of a
        # commit built on the old head is refused, and it rebuilds on the new one.
        two = await second.commit(request(add("applications/two/values.yaml")))
        three = await first.commit(request(add("applications/three/values.yaml")))
        outside = push_as_outsider(standin, "main", "README.md", b"hello\n")
        four = await second.commit(request(add("applications/four/values.yaml")))
        assert two.parents == (one.sha,)
        assert four.parents == (outside,)
        history = [c.sha for c in await first.log(ENV)]
        assert history[:5] == [four.sha, outside, three.sha, two.sha, one.sha]
        files = await first.list_files(ENV, "applications/")
        assert len(files) == 4


async def test_expected_head_is_checked_against_gitea_not_the_mirror(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        initial = await create(committer)
        push_as_outsider(standin, "main", "README.md", b"hello\n")
        with pytest.raises(Conflict, match="expected"):
            await committer.commit(
                CommitRequest(
                    environment=ENV,
                    message="m",
                    files=(add("a.yaml"),),
                    actor="alice",
                    operation_id="op-1",
                    expected_head=initial,
                )
            )


async def test_a_change_is_a_pull_request_with_its_record(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        app = ApplicationChange("web", ApplicationAction.PROMOTE, "bp-wordpress", "1.2.0")
        change = await committer.open_change(
            CommitRequest(
                environment=ENV,
                message="Promote web\n\nFrom acme-stg.",
                files=(add("applications/web/values.yaml"),),
                actor="alice",
                operation_id="op-7",
                applications=(app,),
            ),
            "Promote web",
        )
    pull = standin.repository("acme", ENV).pulls[int(change.id)]
    assert pull.poster == "catalyst"
    assert pull.title == "Promote web"
    assert pull.head_branch.startswith("catalyst/change-")
    assert pull.base_branch == "main"
    assert pull.head_sha == change.head
    assert pull.body.startswith("Promote web\n\nFrom acme-stg.\n\n<!-- catalyst-change\n")
    assert change.description == "Promote web\n\nFrom acme-stg."
    assert change.applications == (app,)
    statuses = [s for s in standin.repository("acme", ENV).statuses if s.sha == change.head]
    assert [(s.context, s.state) for s in statuses] == [("catalyst/environment-policy", "pending")]


async def test_approvals_are_reviews_of_the_reviewer_user_recording_the_approver(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml")), "One")
        approved = await committer.approve_change(ENV, change.id, approval("bob", 1, "ops"))
    (review,) = standin.repository("acme", ENV).pulls[int(change.id)].reviews
    assert (review.user, review.state, review.commit_id) == (
        "catalyst-reviewer",
        "APPROVED",
        change.head,
    )
    assert review.body.startswith("Approved by bob (ops) in Catalyst, revision 1.")
    assert [(a.approver, a.groups) for a in approved.approvals] == [("bob", frozenset({"ops"}))]


async def test_without_a_reviewer_approvals_are_comment_reviews(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer(reviewer_token=None) as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml")), "One")
        approved = await committer.approve_change(ENV, change.id, approval("bob", 1))
    (review,) = standin.repository("acme", ENV).pulls[int(change.id)].reviews
    assert (review.user, review.state) == ("catalyst", "COMMENT")
    assert [a.approver for a in approved.approvals] == ["bob"]


async def test_a_new_revision_dismisses_the_approvals_in_gitea_too(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml", "v: 1\n")), "One")
        await committer.approve_change(ENV, change.id, approval("bob", 1))
        updated = await committer.update_change(change.id, request(add("a/one.yaml", "v: 2\n")))
    assert updated.approvals == ()
    (review,) = standin.repository("acme", ENV).pulls[int(change.id)].reviews
    assert review.dismissed


async def test_a_push_to_the_change_branch_outside_catalyst_is_a_new_revision(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml")), "One")
        await committer.approve_change(ENV, change.id, approval("bob", 1))
        pull = standin.repository("acme", ENV).pulls[int(change.id)]
        # Through the stand-in's Git endpoint, so Gitea's bookkeeping follows the branch.
        sha = _push_with_git_cli(standin, pull.head_branch)
        now = await committer.get_change(ENV, change.id)
        assert (now.revision, now.head, now.approvals) == (2, sha, ())
        with pytest.raises(Conflict):
            await committer.approve_change(ENV, change.id, approval("carol", 1))
        again = await committer.approve_change(ENV, change.id, approval("carol", 2))
        assert [a.approver for a in again.approvals] == ["carol"]


def _push_with_git_cli(standin: GiteaStandIn, branch: str) -> str:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        url = standin.url.replace("http://", f"http://dana:{HUMAN_TOKEN}@") + f"/acme/{ENV}.git"

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["git", *args], cwd=work, check=True, capture_output=True, text=True
            )

        run("clone", "-q", "-b", branch, url, ".")
        Path(work, "extra.yaml").write_text("extra: true\n")
        run("add", "extra.yaml")
        run("-c", "user.name=Dana", "-c", "user.email=dana@gitea.invalid", "commit", "-qm", "x")
        run("push", "-q", "origin", branch)
        return run("rev-parse", "HEAD").stdout.strip()


async def test_reviews_and_pull_requests_by_others_do_not_count(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml")), "One")
        # Dana copies an approval block into her own review: it is not Catalyst's.
        forged = approval("mallory", 1, "ops")
        from catalyst_gitea.records import ApprovalRecord, approval_body

        body = approval_body(ApprovalRecord(forged, change.head))
        _api(
            standin,
            "POST",
            f"/repos/acme/{ENV}/pulls/{change.id}/reviews",
            {"body": body, "event": "APPROVED"},
        )
        assert (await committer.get_change(ENV, change.id)).approvals == ()
        # A pull request Dana opens is not a Catalyst change request.
        pull = standin.repository("acme", ENV).pulls[int(change.id)]
        foreign = _api(
            standin,
            "POST",
            f"/repos/acme/{ENV}/pulls",
            {"title": "Mine", "head": pull.head_branch, "base": "main", "body": pull.body},
        )
        assert foreign["status"] == 409  # one open pull request per head and base, as Gitea
        assert [c.id for c in await committer.list_changes(ENV)] == [change.id]


def _api(standin: GiteaStandIn, method: str, path: str, body: object) -> dict[str, object]:
    import httpx

    response = httpx.request(
        method,
        f"{standin.url}/api/v1{path}",
        json=body,
        headers={"Authorization": f"token {HUMAN_TOKEN}"},
    )
    document = response.json() if response.content else {}
    return {"status": response.status_code, **(document if isinstance(document, dict) else {})}


async def test_a_merge_is_gitea_squash_merge_pinned_to_the_evaluated_head(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(
            request(add("applications/web/values.yaml"), message="Install web\n\nBody text."),
            "Install web",
        )
        merged = await committer.merge_change(ENV, change.id, "carol")
        record = await committer.get_change(ENV, change.id)
    pull = standin.repository("acme", ENV).pulls[int(change.id)]
    assert (pull.merged, pull.merged_by, pull.merge_commit_sha) == (True, "catalyst", merged.sha)
    assert record.status is ChangeStatus.MERGED
    assert merged.message == "Install web\n\nBody text."
    assert merged.trailers["Catalyst-Actor"] == "carol"
    assert merged.trailers["Catalyst-Change"] == change.id
    assert merged.trailers["Catalyst-Change-Revision"] == "1"
    assert "catalyst/change-" not in "".join(standin.git("acme", ENV).references)  # deleted
    statuses = [s.state for s in standin.repository("acme", ENV).statuses if s.sha == change.head]
    assert statuses[-1] == "success"
    with pytest.raises(Conflict, match="merged"):
        await committer_merge_again(make_committer, change.id)


async def committer_merge_again(make_committer: CommitterMaker, change_id: str) -> None:
    async with make_committer() as committer:
        await committer.merge_change(ENV, change_id, "carol")


async def test_a_merge_refused_by_gitea_is_a_conflict_and_resets_the_status(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml")), "One")
        standin.fail_next(409, method="POST", path="/merge")
        with pytest.raises(Conflict, match="refused to merge"):
            await committer.merge_change(ENV, change.id, "carol")
        assert (await committer.get_change(ENV, change.id)).status is ChangeStatus.OPEN
    statuses = [s.state for s in standin.repository("acme", ENV).statuses if s.sha == change.head]
    assert statuses[-2:] == ["success", "pending"]


async def test_unknown_pull_requests_and_foreign_ones_are_not_found(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        push_as_outsider(standin, "main", "x.yaml", b"x\n")
        git = standin.git("acme", ENV)
        git.references.create("refs/heads/feature", git.references["refs/heads/main"].target)
        push_as_outsider(standin, "feature", "y.yaml", b"y\n")
        foreign = _api(
            standin,
            "POST",
            f"/repos/acme/{ENV}/pulls",
            {"title": "Mine", "head": "feature", "base": "main"},
        )
        assert foreign["status"] == 201
        with pytest.raises(NotFound, match="not opened through Catalyst"):
            await committer.get_change(ENV, str(foreign["number"]))
        assert list(await committer.list_changes(ENV)) == []


async def test_reads_see_merges_made_in_gitea(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(request(add("a/one.yaml", "x: 1\n")), "One")
        merged = _api(
            standin, "POST", f"/repos/acme/{ENV}/pulls/{change.id}/merge", {"do": "squash"}
        )
        assert merged["status"] == 200  # main is not protected: anyone with write may merge
        assert await committer.read_file(ENV, "a/one.yaml") == b"x: 1\n"
        state = await committer.get_change(ENV, change.id)
        assert state.status is ChangeStatus.MERGED
        head = str(standin.git("acme", ENV).references["refs/heads/main"].target)
        assert state.merge_commit == head
        assert (await committer.log(ENV, limit=1))[0].sha == head
