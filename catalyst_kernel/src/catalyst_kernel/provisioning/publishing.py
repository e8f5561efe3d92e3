"""Write-side events: every commit and change-request step made through the committer is
published on the spine, so the read model shows an install the moment it is committed.

:class:`PublishingCommitter` wraps the active committer; the host installs it once, so no caller
can commit without the event. Event ids derive from the commit sha or change revision, so
publishing again (a retry, :meth:`PublishingCommitter.backfill`) is deduplicated by the spine.
If the spine is down when a commit lands, the commit stands and the event is published by the
next ``backfill`` (run at startup) — the commit is never undone for the read model's sake.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.model.event import Event
from catalyst_kernel.readside.event_types import CHANGE_PREFIX, COMMIT
from catalyst_kernel.readside.subjects import escape

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from catalyst_kernel.health import Readiness
    from catalyst_kernel.model.tenancy import Environment
    from catalyst_kernel.provisioning.committer import (
        ApplicationChange,
        Approval,
        ChangeRequest,
        ChangeStatus,
        CommitInfo,
        CommitRequest,
        Committer,
    )
    from catalyst_kernel.readside.spine import Spine

__all__ = [
    "COMMIT_EVENT",
    "CommitKind",
    "PublishingCommitter",
    "change_event",
    "commit_event",
]

log = logging.getLogger(__name__)

COMMIT_EVENT = COMMIT

CommitKind: TypeAlias = Literal["repository", "commit", "merge"]
"""What made a commit: an Environment repository's creation, an operation, a merged change."""


def commit_event(
    source: str,
    environment: str,
    commit: CommitInfo,
    request: CommitRequest | None = None,
    applications: Sequence[ApplicationChange] | None = None,
) -> Event:
    """The ``io.catalyst.git.commit`` event of ``commit``.

    ``request`` (the operation Catalyst committed) or ``applications`` (a merged change's) say
    which Applications it touched; otherwise the commit's trailers are all there is.
    """
    trailers = dict(commit.trailers)
    touched = request.applications if request else (applications or ())
    data: dict[str, Any] = {
        "sha": commit.sha,
        "parents": list(commit.parents),
        "message": commit.message,
        "actor": request.actor if request else trailers.get("Catalyst-Actor", commit.author),
        "operation": request.operation_id if request else trailers.get("Catalyst-Operation"),
        "applications": [
            {
                "name": change.name,
                "action": change.action.value,
                "blueprint": change.blueprint,
                "version": change.version,
            }
            for change in touched
        ],
    }
    digest = request.plan_digest if request else trailers.get("Catalyst-Plan-Digest")
    if digest:
        data["planDigest"] = digest
    return Event(
        id=f"git-{commit.sha}",
        source=source,
        type=COMMIT_EVENT,
        subject=f"git.{escape(commit.sha)}",
        time=commit.time,
        data=data,
    )


def change_event(
    source: str, change: ChangeRequest, action: str, extra: Mapping[str, Any] | None = None
) -> Event:
    """The ``io.catalyst.change.<action>`` event for one step of a change request."""
    data: dict[str, Any] = {
        "id": change.id,
        "revision": change.revision,
        "author": change.author,
        "title": change.title,
        "applications": [application.name for application in change.applications],
        **(extra or {}),
    }
    suffix = "-".join(str(part) for part in (action, change.revision, *(extra or {}).values()))
    return Event(
        id=f"change-{change.id}-{suffix}",
        source=source,
        type=f"{CHANGE_PREFIX}{action}",
        subject=f"catalyst.change.{escape(change.id)}",
        time=change.updated,
        data=data,
    )


class PublishingCommitter:
    """A :class:`Committer` that publishes what it does; everything else is the inner one's.

    :param on_commit: called with the Environment and the :data:`CommitKind` of every commit
        that landed (metrics count them); what it raises is logged, never propagated, since
        the commit stands either way.
    """

    def __init__(
        self,
        inner: Committer,
        spine: Spine,
        *,
        sovereign: str,
        on_commit: Callable[[str, CommitKind], None] | None = None,
    ) -> None:
        self.inner = inner
        self.spine = spine
        self.source = f"/sovereigns/{sovereign}/committer"
        self.on_commit = on_commit

    def _committed(self, environment: str, kind: CommitKind) -> None:
        if self.on_commit is None:
            return
        try:
            self.on_commit(environment, kind)
        except Exception:
            log.exception("the on_commit callback failed for a %s in %s", kind, environment)

    async def _publish(self, environment: str, event: Event) -> None:
        try:
            await self.spine.publish(environment, event)
        except BackendUnavailable as exc:
            # The commit stands; backfill() publishes the event when the spine is back.
            log.error("write-side event %s not published (spine unavailable): %s", event.id, exc)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def check(self) -> Readiness:
        return await self.inner.check()

    async def create_repository(
        self, environment: Environment, initial: CommitRequest
    ) -> CommitInfo:
        commit = await self.inner.create_repository(environment, initial)
        self._committed(initial.environment, "repository")
        event = commit_event(self.source, initial.environment, commit, initial)
        await self._publish(initial.environment, event)
        return commit

    async def repository_exists(self, environment: str) -> bool:
        return await self.inner.repository_exists(environment)

    async def read_file(self, environment: str, path: str, ref: str | None = None) -> bytes | None:
        return await self.inner.read_file(environment, path, ref)

    async def list_files(
        self, environment: str, prefix: str = "", ref: str | None = None
    ) -> Sequence[str]:
        return await self.inner.list_files(environment, prefix, ref)

    async def commit(self, request: CommitRequest) -> CommitInfo:
        commit = await self.inner.commit(request)
        self._committed(request.environment, "commit")
        await self._publish(
            request.environment, commit_event(self.source, request.environment, commit, request)
        )
        return commit

    async def log(
        self, environment: str, path: str | None = None, limit: int = 50
    ) -> Sequence[CommitInfo]:
        return await self.inner.log(environment, path, limit)

    async def open_change(self, request: CommitRequest, title: str) -> ChangeRequest:
        change = await self.inner.open_change(request, title)
        await self._publish(change.environment, change_event(self.source, change, "opened"))
        return change

    async def update_change(self, change_id: str, request: CommitRequest) -> ChangeRequest:
        change = await self.inner.update_change(change_id, request)
        await self._publish(change.environment, change_event(self.source, change, "updated"))
        return change

    async def get_change(self, environment: str, change_id: str) -> ChangeRequest:
        return await self.inner.get_change(environment, change_id)

    async def list_changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        return await self.inner.list_changes(environment, status)

    async def approve_change(
        self, environment: str, change_id: str, approval: Approval
    ) -> ChangeRequest:
        change = await self.inner.approve_change(environment, change_id, approval)
        extra = {"approver": approval.approver, "groups": sorted(approval.groups)}
        event = change_event(self.source, change, "approved", extra)
        if approval.reason is not None:
            # A break-glass approval: its reason and expiry go into the audit trail, not into
            # the event id (free text has no place in an id).
            data = {**event.data, "reason": approval.reason}
            if approval.expires is not None:
                data["expires"] = approval.expires.isoformat()
            event = attrs.evolve(event, data=data)
        await self._publish(environment, event)
        return change

    async def merge_change(
        self, environment: str, change_id: str, actor: str, *, revision: int | None = None
    ) -> CommitInfo:
        commit = await self.inner.merge_change(environment, change_id, actor, revision=revision)
        self._committed(environment, "merge")
        change = await self.inner.get_change(environment, change_id)
        await self._publish(
            environment,
            commit_event(self.source, environment, commit, applications=change.applications),
        )
        merged = change_event(self.source, change, "merged", {"commit": commit.sha})
        await self._publish(environment, merged)
        return commit

    async def close_change(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        change = await self.inner.close_change(environment, change_id, actor)
        await self._publish(environment, change_event(self.source, change, "closed"))
        return change

    @property
    def publishes_verdicts(self) -> bool:
        """Whether the inner committer shows policy verdicts where changes live."""
        return callable(getattr(self.inner, "publish_verdict", None))

    async def publish_verdict(self, change: ChangeRequest, verdict: Any) -> None:
        """Forward to the inner committer when it shows verdicts (Gitea); otherwise nothing."""
        publish = getattr(self.inner, "publish_verdict", None)
        if callable(publish):
            await publish(change, verdict)

    async def backfill(self, environment: str, limit: int = 1000) -> int:
        """Publish the events of the last ``limit`` commits (duplicates are dropped by the
        spine); returns how many were new."""
        published = 0
        for commit in reversed(await self.inner.log(environment, limit=limit)):
            result = await self.spine.publish(
                environment, commit_event(self.source, environment, commit)
            )
            published += not result.duplicate
        return published
