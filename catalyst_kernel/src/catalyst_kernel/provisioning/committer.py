"""The committer slot: Environment repositories and change requests.

The embedded provider keeps bare repositories under the data dir and change requests as refs;
``catalyst-gitea`` uses a Gitea server and pull requests. Both pass
:class:`catalyst_kernel.testing.CommitterConformance`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from attrs import field, frozen

from catalyst_kernel.health import Service
from catalyst_kernel.model.names import check_application_name, check_environment_name
from catalyst_kernel.model.plan import FileChange
from catalyst_kernel.model.validators import name_rule, non_empty

if TYPE_CHECKING:
    from catalyst_kernel.model.tenancy import Environment

__all__ = [
    "ApplicationAction",
    "ApplicationChange",
    "Approval",
    "ChangeRequest",
    "ChangeStatus",
    "CommitInfo",
    "CommitRequest",
    "Committer",
]


class ApplicationAction(enum.StrEnum):
    """What a commit does to an Application (carried by its ``git`` event)."""

    INSTALL = "install"
    UPDATE = "update"
    UNINSTALL = "uninstall"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@frozen
class ApplicationChange:
    """One Application a commit touches, and how."""

    name: str = field(validator=name_rule(check_application_name))
    action: ApplicationAction
    blueprint: str | None = None
    version: str | None = None


@frozen
class CommitRequest:
    """One operation to commit atomically.

    ``files`` are applied to the current head; an ``add`` of an existing path or a ``modify`` or
    ``delete`` of a missing one is a conflict. Without ``expected_head`` the committer retries on
    a concurrent commit by re-applying ``files`` to the new head; with it, a moved head is a
    :class:`~catalyst_kernel.errors.Conflict`.
    """

    environment: str = field(validator=name_rule(check_environment_name))
    message: str = field(validator=non_empty)
    files: tuple[FileChange, ...]
    actor: str = field(validator=non_empty)
    operation_id: str = field(validator=non_empty)
    plan_digest: str | None = None
    expected_head: str | None = None
    trailers: Mapping[str, str] = field(factory=dict)
    applications: tuple[ApplicationChange, ...] = ()


@frozen
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    message: str
    author: str
    time: datetime
    trailers: Mapping[str, str] = field(factory=dict)


class ChangeStatus(enum.StrEnum):
    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


@frozen
class Approval:
    """An approval of one revision of a change; ``groups`` are the approver's teams then.

    ``reason`` and ``expires`` make it a break-glass approval for a ``freeze`` rule (who breaks
    a freeze must say why, and the override ends at ``expires``); ordinary approvals leave them
    ``None``. Committers store and return both unchanged.
    """

    approver: str
    revision: int
    time: datetime
    groups: frozenset[str] = frozenset()
    reason: str | None = None
    expires: datetime | None = None


@frozen
class ChangeRequest:
    """A proposed commit on an Environment repository (a ref locally, a pull request on Gitea)."""

    id: str
    environment: str
    title: str
    author: str
    status: ChangeStatus
    revision: int
    head: str
    base: str
    created: datetime
    updated: datetime
    description: str = ""
    approvals: tuple[Approval, ...] = ()
    merge_commit: str | None = None
    applications: tuple[ApplicationChange, ...] = ()


@runtime_checkable
class Committer(Service, Protocol):
    """Environment repositories: atomic commits, history and change requests."""

    async def create_repository(
        self, environment: Environment, initial: CommitRequest
    ) -> CommitInfo:
        """Create the Environment's repository with ``initial`` as its first commit."""

    async def repository_exists(self, environment: str) -> bool:
        """Whether the Environment has a repository."""

    async def read_file(self, environment: str, path: str, ref: str | None = None) -> bytes | None:
        """The content of ``path`` at ``ref`` (default: head), or ``None`` if absent."""

    async def list_files(
        self, environment: str, prefix: str = "", ref: str | None = None
    ) -> Sequence[str]:
        """Paths under ``prefix`` at ``ref`` (default: head), sorted."""

    async def commit(self, request: CommitRequest) -> CommitInfo:
        """Apply ``request`` as one commit on the default branch."""

    async def log(
        self, environment: str, path: str | None = None, limit: int = 50
    ) -> Sequence[CommitInfo]:
        """Commits touching ``path`` (or all), newest first."""

    async def open_change(self, request: CommitRequest, title: str) -> ChangeRequest:
        """Propose ``request`` as a change request instead of committing it."""

    async def update_change(self, change_id: str, request: CommitRequest) -> ChangeRequest:
        """Replace the change's content; its revision increases and approvals are dismissed."""

    async def get_change(self, environment: str, change_id: str) -> ChangeRequest:
        """One change request; :class:`~catalyst_kernel.errors.NotFound` if unknown."""

    async def list_changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        """Change requests of the Environment, newest first."""

    async def approve_change(
        self, environment: str, change_id: str, approval: Approval
    ) -> ChangeRequest:
        """Record ``approval`` for the change's current revision."""

    async def merge_change(
        self, environment: str, change_id: str, actor: str, *, revision: int | None = None
    ) -> CommitInfo:
        """Merge the change atomically onto the default branch (policy is checked by the caller).

        With ``revision``, merge only that revision (the one the policy evaluated): a change
        updated since is a :class:`~catalyst_kernel.errors.Conflict`, checked atomically with
        the merge."""

    async def close_change(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        """Close the change without merging."""
