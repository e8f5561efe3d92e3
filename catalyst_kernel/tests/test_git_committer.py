"""The embedded committer passes the committer conformance suite, plus what only it promises:
ordinary Git repositories, compare-and-swap across processes, crash recovery."""

from __future__ import annotations

import itertools
import os
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pygit2
import pytest

from catalyst_kernel.errors import BackendUnavailable, Conflict, InvalidInput
from catalyst_kernel.model import Environment, FileAction, FileChange
from catalyst_kernel.provisioning import git_committer, gittree
from catalyst_kernel.provisioning.committer import Approval, ChangeStatus, CommitRequest
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.provisioning.gitformat import split_trailers
from catalyst_kernel.testing.suites import CommitterConformance, CommitterFactory

ENV = "acme-dev"


class TestGitCommitter(CommitterConformance):
    @pytest.fixture
    def committer_factory(self, tmp_path: Path) -> CommitterFactory:
        @asynccontextmanager
        async def make() -> AsyncIterator[GitCommitter]:
            committer = GitCommitter(tmp_path / "git", lock_timeout=5.0)
            await committer.start()
            try:
                yield committer
            finally:
                await committer.close()

        return make


class TestGitCommitterWideTrees(TestGitCommitter):
    """The same suite with every tree edited as raw entries (the path wide trees take)."""

    @pytest.fixture(autouse=True)
    def every_tree_is_wide(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(gittree, "_WIDE_TREE_BYTES", 0)


def request(*files: FileChange, message: str = "Change", **options: Any) -> CommitRequest:
    options.setdefault("environment", ENV)
    return CommitRequest(
        message=message, files=files, actor="alice", operation_id="op-1", **options
    )


def add(path: str, content: str = "x: 1\n") -> FileChange:
    return FileChange(path, FileAction.ADD, content)


@pytest.fixture
async def committer(tmp_path: Path) -> AsyncIterator[GitCommitter]:
    committer = GitCommitter(tmp_path / "git", lock_timeout=2.0)
    await committer.start()
    await committer.create_repository(
        Environment.parse(ENV), request(add("policies/environment-policy.yaml"), message="Create")
    )
    yield committer
    await committer.close()


def gitdir(committer: GitCommitter) -> Path:
    return committer.root / "acme" / f"{ENV}.git"


async def git(*args: str) -> str:
    with anyio.fail_after(60):
        result = await anyio.run_process(["git", *args])
    return result.stdout.decode()


async def assert_fsck_clean(path: Path) -> None:
    with anyio.fail_after(60):
        result = await anyio.run_process(
            ["git", "-C", str(path), "fsck", "--strict", "--no-dangling"], check=False
        )
    report = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, report
    assert "error" not in report
    assert "warning" not in report


# --- ordinary Git --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_repository_is_ordinary_git(committer: GitCommitter, tmp_path: Path) -> None:
    commit = await committer.commit(
        request(
            add("applications/web/values.yaml", "replicas: 2\n"),
            message="Install web",
            plan_digest="sha256:abc",
        )
    )
    change = await committer.open_change(request(add("applications/api/values.yaml")), "Api")
    await committer.approve_change(
        ENV, change.id, Approval("bob", 1, commit.time, frozenset({"ops"}))
    )
    clone = tmp_path / "clone"
    await git("clone", "--quiet", str(gitdir(committer)), str(clone))
    assert (clone / "applications" / "web" / "values.yaml").read_text() == "replicas: 2\n"
    assert not (clone / "applications" / "api").exists(), "changes are not on main"
    assert (await git("-C", str(clone), "rev-parse", "--abbrev-ref", "HEAD")).strip() == "main"
    trailers = await git("-C", str(clone), "log", "-1", "--format=%(trailers)")
    assert trailers.strip().splitlines() == [
        "Catalyst-Actor: alice",
        "Catalyst-Operation: op-1",
        "Catalyst-Plan-Digest: sha256:abc",
    ]
    assert (await git("-C", str(clone), "log", "-1", "--format=%s")).strip() == "Install web"
    await assert_fsck_clean(gitdir(committer))
    record = await git(
        "-C", str(gitdir(committer)), "show", f"refs/catalyst/changes/{change.id}:change.json"
    )
    assert '"approver": "bob"' in record
    steps = await git(
        "-C", str(gitdir(committer)), "log", "--format=%s", f"refs/catalyst/changes/{change.id}"
    )
    assert steps.splitlines() == [
        f"Change {change.id} approved (revision 1)",
        f"Change {change.id} opened (revision 1)",
    ]


@pytest.mark.anyio
async def test_git_push_from_a_clone_is_seen_and_not_overwritten(
    committer: GitCommitter, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    await git("clone", "--quiet", str(gitdir(committer)), str(clone))
    (clone / "README.md").write_text("hand-written\n")
    await git("-C", str(clone), "add", "README.md")
    await git(
        "-C", str(clone), "-c", "user.name=Ops", "-c", "user.email=ops@x", "commit", "-qm", "Doc"
    )
    await git("-C", str(clone), "push", "--quiet", "origin", "main")
    commit = await committer.commit(request(add("applications/web/values.yaml")))
    assert await committer.read_file(ENV, "README.md") == b"hand-written\n"
    assert commit.parents == ((await git("-C", str(clone), "rev-parse", "HEAD")).strip(),)


@pytest.mark.anyio
@pytest.mark.parametrize("wide", [False, True], ids=["small-trees", "wide-trees"])
async def test_commits_continue_after_git_gc(
    committer: GitCommitter, monkeypatch: pytest.MonkeyPatch, wide: bool
) -> None:
    if wide:
        monkeypatch.setattr(gittree, "_WIDE_TREE_BYTES", 0)
    await committer.commit(request(add("applications/web/values.yaml")))
    change = await committer.open_change(request(add("applications/api/values.yaml")), "Api")
    # Packs every object and every ref, as a maintenance job would.
    await git("-C", str(gitdir(committer)), "gc", "--quiet", "--prune=now")
    assert not (gitdir(committer) / "refs" / "heads" / "main").exists()
    fresh = GitCommitter(committer.root, fsync=False)
    await fresh.start()
    await fresh.commit(
        request(FileChange("applications/web/values.yaml", FileAction.MODIFY, "x: 2\n"))
    )
    merged = await fresh.merge_change(ENV, change.id, "carol")
    assert await fresh.read_file(ENV, "applications/api/values.yaml") == b"x: 1\n"
    assert len(await fresh.log(ENV)) == 4
    assert (await fresh.get_change(ENV, change.id)).merge_commit == merged.sha
    await assert_fsck_clean(gitdir(committer))


def test_messages_split_into_body_and_trailers() -> None:
    assert split_trailers("Title\n\nBody.\n\nA-Key: one\nOther: two: three\n") == (
        "Title\n\nBody.",
        {"A-Key": "one", "Other": "two: three"},
    )
    assert split_trailers("Title\n\nNot: a trailer\nbecause of this line\n") == (
        "Title\n\nNot: a trailer\nbecause of this line",
        {},
    )
    assert split_trailers("Just a title") == ("Just a title", {})


@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [
        {"trailers": {"Catalyst-Actor": "mallory"}},
        {"trailers": {"bad key": "x"}},
        {"trailers": {"Key": "two\nlines"}},
        {"message": "nul \x00 byte"},
    ],
    ids=["reserved-trailer", "bad-key", "multi-line-value", "nul"],
)
async def test_bad_messages_and_trailers_are_invalid_input(
    committer: GitCommitter, options: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput):
        await committer.commit(request(add("a.yaml"), **options))


@pytest.mark.anyio
async def test_bad_actors_and_duplicate_paths_are_invalid_input(committer: GitCommitter) -> None:
    with pytest.raises(InvalidInput):
        await committer.commit(
            CommitRequest(
                environment=ENV,
                message="m",
                files=(add("a.yaml"),),
                actor="Eve <eve@x>",
                operation_id="op",
            )
        )
    with pytest.raises(InvalidInput, match="twice"):
        await committer.commit(request(add("a.yaml"), FileChange("a.yaml", FileAction.DELETE)))
    with pytest.raises(InvalidInput):
        await committer.commit(request(add("a"), add("a/b.yaml")))


@pytest.mark.anyio
async def test_writing_below_a_file_is_a_conflict(committer: GitCommitter) -> None:
    await committer.commit(request(add("applications/web")))
    with pytest.raises(Conflict, match="applications/web"):
        await committer.commit(request(add("applications/web/values.yaml")))


@pytest.mark.anyio
async def test_deleting_the_last_file_removes_the_folder(committer: GitCommitter) -> None:
    await committer.commit(request(add("applications/web/values.yaml")))
    await committer.commit(request(FileChange("applications/web/values.yaml", FileAction.DELETE)))
    repo = pygit2.Repository(str(gitdir(committer)))
    tree = repo.revparse_single("main").peel(pygit2.Commit).tree
    assert "applications" not in tree


@pytest.mark.anyio
async def test_unchanged_folders_keep_their_tree_ids(committer: GitCommitter) -> None:
    for n in range(3):
        await committer.commit(request(add(f"applications/app-{n}/values.yaml", f"n: {n}\n")))
    repo = pygit2.Repository(str(gitdir(committer)))
    before = repo.revparse_single("main").peel(pygit2.Commit).tree
    await committer.commit(request(add("applications/app-9/values.yaml")))
    after = repo.revparse_single("main").peel(pygit2.Commit).tree
    for n in range(3):
        path = f"applications/app-{n}"
        assert before[path].id == after[path].id
    assert before["policies"].id == after["policies"].id


@pytest.mark.anyio
async def test_wide_trees_are_written_exactly_as_git_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Git orders a folder as if its name ended in "/": foo-bar < foo.txt < foo/ < foo0.
    names = ["foo0", "foo/inner.yaml", "foo.txt", "foo-bar", "a", "z/deep/er.yaml", "b.sh"]
    trees = []
    for wide in (1_000_000, 0):
        monkeypatch.setattr(gittree, "_WIDE_TREE_BYTES", wide)
        committer = GitCommitter(tmp_path / f"wide-{wide}", fsync=False)
        await committer.start()
        await committer.create_repository(Environment.parse(ENV), request(add("first.yaml")))
        for name in names:
            await committer.commit(request(add(name, f"{name}\n")))
        await committer.commit(
            request(FileChange("foo.txt", FileAction.MODIFY, "changed\n"), add("foo/more.yaml"))
        )
        await committer.commit(request(FileChange("a", FileAction.DELETE)))
        (head,) = await committer.log(ENV, limit=1)
        repo = pygit2.Repository(str(committer.root / "acme" / f"{ENV}.git"))
        trees.append(repo[pygit2.Oid(hex=head.sha)].peel(pygit2.Commit).tree.id)
        await assert_fsck_clean(committer.root / "acme" / f"{ENV}.git")
        await committer.close()
    assert trees[0] == trees[1], "raw entries and libgit2's builder give the same tree"


# --- compare-and-swap ----------------------------------------------------------------------------


def _external_commit(repo_path: Path, path: str) -> pygit2.Oid:
    """A commit made by a writer outside Catalyst, straight onto main."""
    repo = pygit2.Repository(str(repo_path))
    head = repo.references["refs/heads/main"].target
    assert isinstance(head, pygit2.Oid)
    builder = repo.TreeBuilder(repo[head].peel(pygit2.Commit).tree)
    builder.insert(path, repo.create_blob(b"external\n"), pygit2.GIT_FILEMODE_BLOB)
    signature = pygit2.Signature("ops", "ops@x")
    oid = repo.create_commit(None, signature, signature, "external", builder.write(), [head])
    repo.references.create("refs/heads/main", oid, force=True)
    return oid


@pytest.mark.anyio
async def test_a_lost_race_is_retried_on_the_new_head(
    committer: GitCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = git_committer.apply_edits
    raced: list[pygit2.Oid] = []

    def apply_then_race(*args: Any) -> pygit2.Oid:
        tree = original(*args)
        if not raced:
            raced.append(_external_commit(gitdir(committer), f"external-{len(raced)}.txt"))
        return tree

    monkeypatch.setattr(git_committer, "apply_edits", apply_then_race)
    commit = await committer.commit(request(add("applications/web/values.yaml")))
    assert commit.parents == (str(raced[0]),)
    assert await committer.read_file(ENV, "external-0.txt") == b"external\n"
    assert await committer.read_file(ENV, "applications/web/values.yaml") == b"x: 1\n"


@pytest.mark.anyio
async def test_a_lost_race_with_expected_head_is_a_conflict(
    committer: GitCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    (head,) = await committer.log(ENV, limit=1)
    original = git_committer.apply_edits
    raced: list[pygit2.Oid] = []

    def apply_then_race(*args: Any) -> pygit2.Oid:
        tree = original(*args)
        raced.append(_external_commit(gitdir(committer), f"external-{len(raced)}.txt"))
        return tree

    monkeypatch.setattr(git_committer, "apply_edits", apply_then_race)
    with pytest.raises(Conflict):
        await committer.commit(request(add("a.yaml"), expected_head=head.sha))
    (latest,) = await committer.log(ENV, limit=1)
    assert latest.sha == str(raced[-1])
    assert await committer.read_file(ENV, "a.yaml") is None


@pytest.mark.anyio
async def test_attempts_are_bounded(
    tmp_path: Path, committer: GitCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    bounded = GitCommitter(committer.root, max_attempts=3, lock_timeout=2.0)
    await bounded.start()
    original = git_committer.apply_edits
    raced: list[pygit2.Oid] = []

    def apply_then_race(*args: Any) -> pygit2.Oid:
        tree = original(*args)
        raced.append(_external_commit(gitdir(committer), f"external-{len(raced)}.txt"))
        return tree

    monkeypatch.setattr(git_committer, "apply_edits", apply_then_race)
    with pytest.raises(Conflict, match="3 attempts"):
        await bounded.commit(request(add("a.yaml")))
    assert len(raced) == 3
    assert await bounded.read_file(ENV, "a.yaml") is None


@pytest.mark.anyio
async def test_a_stale_reference_lock_is_removed(committer: GitCommitter) -> None:
    lock = gitdir(committer) / "refs" / "heads" / "main.lock"
    lock.write_text("left by a crash\n")
    old = time.time() - 60
    os.utime(lock, (old, old))
    await committer.commit(request(add("a.yaml")))
    assert not lock.exists()


@pytest.mark.anyio
async def test_a_live_reference_lock_makes_the_write_wait_then_fail(
    committer: GitCommitter,
) -> None:
    lock = gitdir(committer) / "refs" / "heads" / "main.lock"
    lock.write_text("held by git\n")
    with anyio.fail_after(30), pytest.raises(BackendUnavailable, match=r"main\.lock"):
        await committer.commit(request(add("a.yaml")))
    lock.unlink()
    assert await committer.read_file(ENV, "a.yaml") is None
    await committer.commit(request(add("a.yaml")))


WRITER = textwrap.dedent(
    """
    import sys, anyio
    from pathlib import Path
    from catalyst_kernel.model import FileAction, FileChange
    from catalyst_kernel.provisioning.committer import CommitRequest
    from catalyst_kernel.provisioning.git_committer import GitCommitter

    async def main(root, worker, count):
        committer = GitCommitter(Path(root), lock_timeout=60)
        await committer.start()

        async def one(n):
            path = f"applications/w{worker}-{n}/values.yaml"
            await committer.commit(CommitRequest(
                environment="acme-dev", message=f"worker {worker} commit {n}",
                files=(FileChange(path, FileAction.ADD, f"n: {n}\\n"),),
                actor=f"worker-{worker}", operation_id=f"op-{worker}-{n}"))

        async with anyio.create_task_group() as tasks:
            for n in range(count):
                tasks.start_soon(one, n)
        await committer.close()

    anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    """
)


@pytest.mark.anyio
async def test_concurrent_commits_from_processes_land_with_linear_history(
    committer: GitCommitter,
) -> None:
    counts = [13, 13, 12, 12]  # 50 commits from 4 processes

    async def writer(worker: int, count: int) -> None:
        command = [sys.executable, "-c", WRITER, str(committer.root), str(worker), str(count)]
        await anyio.run_process(command, stdout=None, stderr=None)  # raises unless it exits 0

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tasks:
            for worker, count in enumerate(counts):
                tasks.start_soon(writer, worker, count)
    history = list(await committer.log(ENV, limit=100))
    assert len(history) == sum(counts) + 1
    for newer, older in itertools.pairwise(history):
        assert newer.parents == (older.sha,)
    files = set(await committer.list_files(ENV, "applications/"))
    assert files == {
        f"applications/w{worker}-{n}/values.yaml"
        for worker, count in enumerate(counts)
        for n in range(count)
    }
    await assert_fsck_clean(gitdir(committer))


# --- change requests -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_revision_keeps_a_ref(committer: GitCommitter) -> None:
    change = await committer.open_change(request(add("a.yaml", "v: 1\n")), "A")
    updated = await committer.update_change(change.id, request(add("a.yaml", "v: 2\n")))
    repo = pygit2.Repository(str(gitdir(committer)))
    assert str(repo.references[f"refs/changes/{change.id}/1"].target) == change.head
    assert str(repo.references[f"refs/changes/{change.id}/2"].target) == updated.head
    assert str(repo.references[f"refs/changes/{change.id}/head"].target) == updated.head


@pytest.mark.anyio
async def test_the_author_may_approve_and_it_is_recorded(committer: GitCommitter) -> None:
    change = await committer.open_change(request(add("a.yaml")), "A")
    approval = Approval("alice", 1, change.created, frozenset())
    approved = await committer.approve_change(ENV, change.id, approval)
    assert [a.approver for a in approved.approvals] == ["alice"]
    again = await committer.approve_change(ENV, change.id, approval)
    assert len(again.approvals) == 1, "approving twice records one approval"


@pytest.mark.anyio
async def test_an_interrupted_merge_is_completed_not_applied_twice(
    committer: GitCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = await committer.open_change(request(add("applications/web/values.yaml")), "Web")
    original = git_committer._compare_and_swap

    def crash_after_main(repo: pygit2.Repository, path: Path, updates: Any, timeout: float) -> bool:
        # The process "dies" after main moved and before the change record did.
        return original(repo, path, updates[:1], timeout)

    monkeypatch.setattr(git_committer, "_compare_and_swap", crash_after_main)
    merged = await committer.merge_change(ENV, change.id, "carol")
    monkeypatch.undo()
    assert (await committer.get_change(ENV, change.id)).status is ChangeStatus.OPEN
    with pytest.raises(Conflict, match="was merged"):
        await committer.approve_change(
            ENV, change.id, Approval("bob", 1, change.created, frozenset())
        )
    healed = await committer.get_change(ENV, change.id)
    assert healed.status is ChangeStatus.MERGED
    assert healed.merge_commit == merged.sha
    (latest,) = await committer.log(ENV, limit=1)
    assert latest.sha == merged.sha


@pytest.mark.anyio
async def test_merge_after_an_interrupted_merge_returns_the_landed_commit(
    committer: GitCommitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    change = await committer.open_change(request(add("applications/web/values.yaml")), "Web")
    original = git_committer._compare_and_swap
    monkeypatch.setattr(
        git_committer,
        "_compare_and_swap",
        lambda repo, path, updates, timeout: original(repo, path, updates[:1], timeout),
    )
    merged = await committer.merge_change(ENV, change.id, "carol")
    monkeypatch.undo()
    again = await committer.merge_change(ENV, change.id, "carol")
    assert again.sha == merged.sha
    assert len(await committer.log(ENV)) == 2
    assert (await committer.get_change(ENV, change.id)).merge_commit == merged.sha


@pytest.mark.anyio
async def test_change_ids_skip_refs_left_by_an_interrupted_open(
    committer: GitCommitter,
) -> None:
    repo = pygit2.Repository(str(gitdir(committer)))
    head = repo.references["refs/heads/main"].target
    repo.references.create("refs/changes/1/head", head)  # an open that died before its record
    change = await committer.open_change(request(add("a.yaml")), "A")
    assert change.id == "2"


@pytest.mark.anyio
async def test_malformed_change_ids_are_invalid_input(committer: GitCommitter) -> None:
    for change_id in ("0", "abc", "../1", "1/head", ""):
        with pytest.raises(InvalidInput):
            await committer.get_change(ENV, change_id)


# --- service -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_use_after_close_is_backend_unavailable(committer: GitCommitter) -> None:
    await committer.close()
    assert not (await committer.check()).ready
    with pytest.raises(BackendUnavailable):
        await committer.read_file(ENV, "policies/environment-policy.yaml")


@pytest.mark.anyio
async def test_an_unusable_root_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(BackendUnavailable, match="cannot use"):
        await GitCommitter(tmp_path / "file" / "git").start()


@pytest.mark.anyio
async def test_a_damaged_repository_is_backend_unavailable(committer: GitCommitter) -> None:
    (gitdir(committer) / "refs" / "heads" / "main").write_text("not a sha\n")
    with pytest.raises(BackendUnavailable):
        await committer.commit(request(add("a.yaml")))


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidInput):
        GitCommitter(Path("x"), max_attempts=0)
    with pytest.raises(InvalidInput):
        GitCommitter(Path("x"), lock_timeout=0)
