"""Write-side events: what the committer does is published on the spine, once."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.errors import Conflict
from catalyst_kernel.health import Readiness
from catalyst_kernel.model import Environment, FileAction, FileChange
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitInfo,
    CommitRequest,
    Committer,
)
from catalyst_kernel.provisioning.publishing import PublishingCommitter
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.testing import assert_implements

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class MemoryCommitter:
    """Just enough of a committer to drive the wrapper: commits are hashes of their content."""

    def __init__(self) -> None:
        self.commits: list[CommitInfo] = []
        self.changes: dict[str, ChangeRequest] = {}

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def check(self) -> Readiness:
        return Readiness.ok()

    def _commit(self, message: str, actor: str) -> CommitInfo:
        parent = self.commits[-1].sha if self.commits else None
        sha = hashlib.sha1(f"{parent}{message}".encode()).hexdigest()
        info = CommitInfo(sha, (parent,) if parent else (), message, actor, NOW)
        self.commits.append(info)
        return info

    async def create_repository(
        self, environment: Environment, initial: CommitRequest
    ) -> CommitInfo:
        return self._commit(initial.message, initial.actor)

    async def repository_exists(self, environment: str) -> bool:
        return bool(self.commits)

    async def read_file(self, environment: str, path: str, ref: str | None = None) -> bytes | None:
        raise NotImplementedError

    async def list_files(
        self, environment: str, prefix: str = "", ref: str | None = None
    ) -> Sequence[str]:
        raise NotImplementedError

    async def commit(self, request: CommitRequest) -> CommitInfo:
        return self._commit(request.message, request.actor)

    async def log(
        self, environment: str, path: str | None = None, limit: int = 50
    ) -> Sequence[CommitInfo]:
        return list(reversed(self.commits))[:limit]

    async def open_change(self, request: CommitRequest, title: str) -> ChangeRequest:
        change = ChangeRequest(
            id=str(len(self.changes) + 1),
            environment=request.environment,
            title=title,
            author=request.actor,
            status=ChangeStatus.OPEN,
            revision=1,
            head="h",
            base="b",
            created=NOW,
            updated=NOW,
            applications=request.applications,
        )
        self.changes[change.id] = change
        return change

    async def update_change(self, change_id: str, request: CommitRequest) -> ChangeRequest:
        raise NotImplementedError

    async def get_change(self, environment: str, change_id: str) -> ChangeRequest:
        return self.changes[change_id]

    async def list_changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        return list(self.changes.values())

    async def approve_change(
        self, environment: str, change_id: str, approval: Approval
    ) -> ChangeRequest:
        change = self.changes[change_id]
        self.changes[change_id] = change = ChangeRequest(
            **{**_fields(change), "approvals": (*change.approvals, approval)}
        )
        return change

    async def merge_change(
        self, environment: str, change_id: str, actor: str, *, revision: int | None = None
    ) -> CommitInfo:
        change = self.changes[change_id]
        if revision is not None and revision != change.revision:
            raise Conflict(f"change {change_id} moved on", field="revision")
        commit = self._commit(f"Merge change {change_id}", actor)
        self.changes[change_id] = ChangeRequest(
            **{**_fields(change), "status": ChangeStatus.MERGED, "merge_commit": commit.sha}
        )
        return commit

    async def close_change(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        raise NotImplementedError


def _fields(change: ChangeRequest) -> dict[str, Any]:
    import attrs

    return attrs.asdict(change, recurse=False)


def install_request(name: str = "marketing-site") -> CommitRequest:
    return CommitRequest(
        environment="acme-dev",
        message=f"Install {name}",
        files=(FileChange(f"applications/{name}/values.yaml", FileAction.ADD, "{}\n"),),
        actor="alice",
        operation_id="op-1",
        plan_digest="sha256:abc",
        applications=(ApplicationChange(name, ApplicationAction.INSTALL, "bp-wordpress", "1.3.0"),),
    )


@pytest.fixture
async def spine(tmp_path: Path) -> AsyncIterator[SqliteSpine]:
    spine = SqliteSpine(tmp_path / "spine.db")
    await spine.start()
    yield spine
    await spine.close()


def test_the_wrapper_is_a_committer() -> None:
    assert_implements(PublishingCommitter(MemoryCommitter(), None, sovereign="s"), Committer)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_commit_publishes_a_git_event(spine: SqliteSpine) -> None:
    committer = PublishingCommitter(MemoryCommitter(), spine, sovereign="demo")
    commit = await committer.commit(install_request())
    (delivery,) = await spine.read("acme-dev")
    event = delivery.event
    assert (event.id, event.type, event.subject) == (
        f"git-{commit.sha}",
        "io.catalyst.git.commit",
        f"git.{commit.sha}",
    )
    assert event.source == "/sovereigns/demo/committer"
    assert event.data["actor"] == "alice"
    assert event.data["operation"] == "op-1"
    assert event.data["planDigest"] == "sha256:abc"
    assert event.data["applications"] == [
        {
            "name": "marketing-site",
            "action": "install",
            "blueprint": "bp-wordpress",
            "version": "1.3.0",
        }
    ]


@pytest.mark.anyio
async def test_change_steps_publish_events(spine: SqliteSpine) -> None:
    committer = PublishingCommitter(MemoryCommitter(), spine, sovereign="demo")
    change = await committer.open_change(install_request(), "Promote marketing-site")
    await committer.approve_change(
        "acme-dev", change.id, Approval("bob", 1, NOW, frozenset({"team-platform"}))
    )
    merge = await committer.merge_change("acme-dev", change.id, "carol")
    events = [d.event for d in await spine.read("acme-dev")]
    assert [e.type for e in events] == [
        "io.catalyst.change.opened",
        "io.catalyst.change.approved",
        "io.catalyst.git.commit",
        "io.catalyst.change.merged",
    ]
    assert events[0].subject == f"catalyst.change.{change.id}"
    assert events[0].data["applications"] == ["marketing-site"]
    assert events[1].data["approver"] == "bob"
    assert events[1].data["groups"] == ["team-platform"]
    assert events[2].data["applications"][0]["name"] == "marketing-site"
    assert events[3].data["commit"] == merge.sha


@pytest.mark.anyio
async def test_a_down_spine_does_not_undo_the_commit_and_backfill_catches_up(
    spine: SqliteSpine, caplog: pytest.LogCaptureFixture
) -> None:
    inner = MemoryCommitter()
    committer = PublishingCommitter(inner, spine, sovereign="demo")
    await committer.commit(install_request("one"))
    await spine.close()
    commit = await committer.commit(install_request("two"))
    assert commit in inner.commits
    assert "not published (spine unavailable)" in caplog.text
    await spine.start()
    assert await committer.backfill("acme-dev") == 1
    assert await committer.backfill("acme-dev") == 0
    assert [d.event.id for d in await spine.read("acme-dev")] == [
        f"git-{c.sha}" for c in inner.commits
    ]
