"""The embedded committer's Git helpers this plugin reuses, imported in one place.

Tree editing (applying :class:`~catalyst_kernel.model.plan.FileChange` s to a tree, conflicts
named by path), the trailer rules and the checks of actors, change ids and approvals are the
embedded committer's, so both committers give the same answers. Some of them are private in
:mod:`catalyst_kernel.provisioning.git_committer`; they are pure functions over pygit2 objects and
importing them is deliberate (see ``docs/decisions/0010-gitea-committer.md``). When the kernel
makes them public, only this module changes.
"""

from __future__ import annotations

from catalyst_kernel.provisioning.git_committer import (
    ACTOR_TRAILER,
    CHANGE_REVISION_TRAILER,
    CHANGE_TRAILER,
    DEFAULT_BRANCH,
    OPERATION_TRAILER,
    PLAN_DIGEST_TRAILER,
    compose_message,
    split_trailers,
)
from catalyst_kernel.provisioning.git_committer import (
    _apply as apply_edits,
)
from catalyst_kernel.provisioning.git_committer import (
    _approval_json as approval_json,
)
from catalyst_kernel.provisioning.git_committer import (
    _check_actor as check_actor,
)
from catalyst_kernel.provisioning.git_committer import (
    _check_approval as check_approval,
)
from catalyst_kernel.provisioning.git_committer import (
    _check_change_id as check_change_id,
)
from catalyst_kernel.provisioning.git_committer import (
    _Edit as Edit,
)
from catalyst_kernel.provisioning.git_committer import (
    _entry_id as entry_id,
)
from catalyst_kernel.provisioning.git_committer import (
    _parse_approval as parse_approval,
)
from catalyst_kernel.provisioning.git_committer import (
    _plan_edits as plan_edits,
)
from catalyst_kernel.provisioning.git_committer import (
    _request_trailers as request_trailers,
)
from catalyst_kernel.provisioning.git_committer import (
    _TreeCache as TreeCache,
)
from catalyst_kernel.provisioning.git_committer import (
    _walk_files as walk_files,
)

__all__ = [
    "ACTOR_TRAILER",
    "CHANGE_REVISION_TRAILER",
    "CHANGE_TRAILER",
    "DEFAULT_BRANCH",
    "OPERATION_TRAILER",
    "PLAN_DIGEST_TRAILER",
    "Edit",
    "TreeCache",
    "apply_edits",
    "approval_json",
    "check_actor",
    "check_approval",
    "check_change_id",
    "compose_message",
    "entry_id",
    "parse_approval",
    "plan_edits",
    "request_trailers",
    "split_trailers",
    "walk_files",
]
