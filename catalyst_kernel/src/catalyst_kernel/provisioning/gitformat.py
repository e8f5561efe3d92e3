"""What Catalyst writes into Git, the same for every Git committer.

Commits go to :data:`DEFAULT_BRANCH`; their messages end with Git trailers (:func:`compose_message`,
read back with :func:`split_trailers`): who acted (``Catalyst-Actor``), the operation, the plan's
digest, and for a merged change request its id and revision. The committer writes those trailers
itself (:func:`request_trailers`, and :func:`merge_message` for a merged change request); a
request may add others but not set them. Approvals are stored as JSON documents
(:func:`approval_json`, :func:`parse_approval`). The ``check_*`` functions refuse, as
:class:`~catalyst_kernel.errors.InvalidInput`, the actors, change ids, approvals and queries that
could not be written or read this way, so every committer refuses the same inputs with the same
messages; likewise the change-request rules (:func:`require_open`,
:func:`check_approval_revision`, :func:`check_evaluated_revision`) refuse, as
:class:`~catalyst_kernel.errors.Conflict`, a step the change's state does not allow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from catalyst_kernel.errors import Conflict, InvalidInput
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.model.plan import check_repository_path
from catalyst_kernel.model.tenancy import Environment
from catalyst_kernel.provisioning.committer import (
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitRequest,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "ACTOR_TRAILER",
    "CHANGE_REVISION_TRAILER",
    "CHANGE_TRAILER",
    "DEFAULT_BRANCH",
    "OPERATION_TRAILER",
    "PLAN_DIGEST_TRAILER",
    "approval_json",
    "check_actor",
    "check_approval",
    "check_approval_revision",
    "check_change_id",
    "check_change_request",
    "check_commit_request",
    "check_evaluated_revision",
    "check_initial_commit",
    "check_list_query",
    "check_log_query",
    "check_status_filter",
    "check_title",
    "compose_message",
    "format_time",
    "merge_message",
    "parse_approval",
    "request_trailers",
    "require_open",
    "split_trailers",
]

DEFAULT_BRANCH: Final = "main"
"""The branch of an Environment repository that commits and merged change requests go to."""
ACTOR_TRAILER: Final = "Catalyst-Actor"
OPERATION_TRAILER: Final = "Catalyst-Operation"
PLAN_DIGEST_TRAILER: Final = "Catalyst-Plan-Digest"
CHANGE_TRAILER: Final = "Catalyst-Change"
CHANGE_REVISION_TRAILER: Final = "Catalyst-Change-Revision"
_RESERVED_TRAILERS: Final = frozenset(
    key.lower()
    for key in (
        ACTOR_TRAILER,
        OPERATION_TRAILER,
        PLAN_DIGEST_TRAILER,
        CHANGE_TRAILER,
        CHANGE_REVISION_TRAILER,
    )
)
_TRAILER_KEY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_TRAILER_LINE: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*): (.*)")
_CHANGE_ID: Final = re.compile(r"[1-9][0-9]{0,17}")


# -------------------------------------------------------------------------------------------------
# Messages and trailers
# -------------------------------------------------------------------------------------------------


def _check_trailer(key: str, value: str) -> None:
    if not _TRAILER_KEY.fullmatch(key):
        raise InvalidInput(
            f"trailer key {key!r} must be letters, digits and '-', starting with a letter or digit",
            field="trailers",
        )
    if not value or value != value.strip() or any(c in value for c in "\r\n\x00"):
        raise InvalidInput(
            f"trailer {key}: the value must be one non-empty line without surrounding spaces",
            field="trailers",
        )


def compose_message(message: str, trailers: Sequence[tuple[str, str]]) -> str:
    """``message`` followed by a blank line and ``trailers`` as Git trailers (``Key: value``).

    :raises InvalidInput: the message is empty or holds NUL, or a trailer is not one line.
    """
    if "\x00" in message:
        raise InvalidInput("a commit message cannot contain NUL characters", field="message")
    body = message.rstrip()
    if not body:
        raise InvalidInput("a commit message must not be empty", field="message")
    for key, value in trailers:
        _check_trailer(key, value)
    if not trailers:
        return body + "\n"
    return body + "\n\n" + "".join(f"{key}: {value}\n" for key, value in trailers)


def split_trailers(message: str) -> tuple[str, dict[str, str]]:
    """Split a commit message into its body and its trailers (the last paragraph, when every
    line of it is ``Key: value``, as ``git interpret-trailers`` reads it)."""
    text = message.rstrip()
    body, separator, last = text.rpartition("\n\n")
    if not separator:
        return text, {}
    matches = [_TRAILER_LINE.fullmatch(line) for line in last.split("\n")]
    if not all(matches):
        return text, {}
    return body.rstrip(), {m[1]: m[2] for m in matches if m is not None}


def request_trailers(request: CommitRequest, actor: str) -> list[tuple[str, str]]:
    """The trailers of a commit made for ``request`` by ``actor``: the committer's own
    (actor, operation, plan digest when there is one), then the request's.

    :raises InvalidInput: a request trailer is not text, or is one the committer writes.
    """
    trailers = [(ACTOR_TRAILER, actor), (OPERATION_TRAILER, request.operation_id)]
    if request.plan_digest:
        trailers.append((PLAN_DIGEST_TRAILER, request.plan_digest))
    for key, value in request.trailers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("trailers map text to text", field="trailers")
        if key.lower() in _RESERVED_TRAILERS:
            raise InvalidInput(
                f"trailer {key} is written by the committer and cannot be set", field="trailers"
            )
        trailers.append((key, value))
    return trailers


def merge_message(
    message: str,
    trailers: Mapping[str, str],
    *,
    actor: str,
    operation_id: str,
    plan_digest: str | None,
    change_id: str,
    revision: int,
) -> str:
    """The message of the commit that merges revision ``revision`` of change ``change_id``: the
    request's ``message`` with the committer's trailers (``actor`` who merged, the operation, the
    plan digest when there is one), the request's ``trailers``, then the change and revision.

    :raises InvalidInput: as :func:`compose_message`.
    """
    lines = [(ACTOR_TRAILER, actor), (OPERATION_TRAILER, operation_id)]
    if plan_digest:
        lines.append((PLAN_DIGEST_TRAILER, plan_digest))
    lines.extend(trailers.items())
    lines.append((CHANGE_TRAILER, change_id))
    lines.append((CHANGE_REVISION_TRAILER, str(revision)))
    return compose_message(message, lines)


# -------------------------------------------------------------------------------------------------
# Input checks
# -------------------------------------------------------------------------------------------------


def check_actor(actor: str) -> str:
    """``actor`` if it can name a Git author and fill a trailer (one line, no ``<`` or ``>``).

    :raises InvalidInput: on ``field="actor"``.
    """
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidInput("the actor must be a non-empty string", field="actor")
    if any(c in actor for c in "<>\r\n\x00") or actor != actor.strip():
        raise InvalidInput(
            f"actor {actor!r} cannot contain '<', '>', line breaks or surrounding spaces",
            field="actor",
        )
    return actor


def check_change_id(change_id: str) -> str:
    """``change_id`` if it is a change request id (a positive decimal number).

    :raises InvalidInput: on ``field="change_id"``.
    """
    if not isinstance(change_id, str) or not _CHANGE_ID.fullmatch(change_id):
        raise InvalidInput(
            f"change id {change_id!r} must be a positive decimal number", field="change_id"
        )
    return change_id


def check_approval(approval: Approval) -> None:
    """Refuse an approval that cannot be recorded: a bad approver, a revision below 1, a time
    without a time zone, an empty reason or an expiry without a time zone.

    :raises InvalidInput: on the failing ``approval.*`` field.
    """
    if not isinstance(approval, Approval):
        raise InvalidInput("approval must be an Approval", field="approval")
    check_actor(approval.approver)
    if not isinstance(approval.revision, int) or approval.revision < 1:
        raise InvalidInput("an approval names a revision (1 or more)", field="approval.revision")
    if approval.time.tzinfo is None:
        raise InvalidInput("an approval time must carry a time zone", field="approval.time")
    if approval.reason is not None and (
        not isinstance(approval.reason, str) or not approval.reason.strip()
    ):
        raise InvalidInput(
            "an approval's reason must be non-empty text when given", field="approval.reason"
        )
    if approval.expires is not None and (
        not isinstance(approval.expires, datetime) or approval.expires.tzinfo is None
    ):
        raise InvalidInput(
            "an approval's expiry must be a date-time with a time zone", field="approval.expires"
        )


# -------------------------------------------------------------------------------------------------
# Records
# -------------------------------------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """``value`` as records store times: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat()


def approval_json(approval: Approval) -> dict[str, Any]:
    """``approval`` as a JSON document (read back by :func:`parse_approval`)."""
    document: dict[str, Any] = {
        "approver": approval.approver,
        "revision": approval.revision,
        "time": format_time(approval.time),
        "groups": sorted(approval.groups),
    }
    # Only break-glass approvals carry these; ordinary ones keep their earlier shape.
    if approval.reason is not None:
        document["reason"] = approval.reason
    if approval.expires is not None:
        document["expires"] = format_time(approval.expires)
    return document


def parse_approval(document: Mapping[str, Any]) -> Approval:
    """The approval an :func:`approval_json` document holds. The values are not checked (see
    :func:`check_approval`).

    :raises KeyError: a required member is missing.
    :raises ValueError: a time is not ISO 8601.
    :raises TypeError: ``groups`` or a time is of the wrong type.
    """
    expires = document.get("expires")
    return Approval(
        approver=document["approver"],
        revision=document["revision"],
        time=datetime.fromisoformat(document["time"]),
        groups=frozenset(document["groups"]),
        reason=document.get("reason"),
        expires=None if expires is None else datetime.fromisoformat(expires),
    )


def check_commit_request(request: CommitRequest) -> str:
    """The commit message of ``request`` with its trailers, after checking the request: a
    :class:`CommitRequest`, a valid Environment name and actor, trailers Catalyst may write.

    :raises InvalidInput: naming what is wrong.
    """
    if not isinstance(request, CommitRequest):
        raise InvalidInput("request must be a CommitRequest")
    check_environment_name(request.environment)
    actor = check_actor(request.actor)
    return compose_message(request.message, request_trailers(request, actor))


def check_change_request(request: CommitRequest) -> str:
    """As :func:`check_commit_request`, for a change request: it is based on the current head,
    so ``expected_head`` does not apply. Returns the message with its trailers."""
    message = check_commit_request(request)
    if request.expected_head is not None:
        raise InvalidInput(
            "a change request is based on the current head; expected_head does not apply",
            field="expected_head",
        )
    return message


def check_initial_commit(environment: Environment, initial: CommitRequest) -> str:
    """As :func:`check_commit_request`, for a new repository's first commit."""
    if not isinstance(environment, Environment):
        raise InvalidInput("environment must be an Environment", field="environment")
    message = check_commit_request(initial)
    if initial.environment != environment.name:
        raise InvalidInput(
            f"the initial commit is for {initial.environment}, not {environment.name}",
            field="environment",
        )
    if initial.expected_head is not None:
        raise InvalidInput("a new repository has no head to expect", field="expected_head")
    return message


def check_title(title: object) -> str:
    """A change request's title: one non-empty line."""
    if not isinstance(title, str) or not title.strip() or "\n" in title:
        raise InvalidInput("a change request needs a one-line title", field="title")
    return title.strip()


def check_list_query(environment: str, prefix: str) -> None:
    """Refuse a file listing that cannot be answered: a bad Environment name, or a ``prefix``
    that is neither empty nor a repository path (a trailing ``/`` allowed).

    :raises InvalidInput: naming what is wrong.
    """
    check_environment_name(environment)
    if prefix:
        check_repository_path(prefix.rstrip("/") or prefix)


def check_log_query(environment: str, path: str | None, limit: int) -> None:
    """Refuse a history query that cannot be answered: a bad Environment name, a path that is
    not a repository path, a ``limit`` that is not a positive integer.

    :raises InvalidInput: naming what is wrong (``field="limit"`` for the limit).
    """
    check_environment_name(environment)
    if path is not None:
        check_repository_path(path)
    if not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive integer, got {limit!r}", field="limit")


def check_status_filter(status: object) -> None:
    """Refuse a change-listing filter that is neither ``None`` nor a :class:`ChangeStatus`.

    :raises InvalidInput: on ``field="status"``.
    """
    if status is not None and not isinstance(status, ChangeStatus):
        raise InvalidInput(f"status {status!r} is not a change status", field="status")


# -------------------------------------------------------------------------------------------------
# Change-request rules
# -------------------------------------------------------------------------------------------------


def require_open(change: ChangeRequest) -> None:
    """Refuse a step on a change request that is no longer open.

    :raises Conflict: it is merged (naming the merge commit) or closed.
    """
    if change.status is ChangeStatus.MERGED:
        raise Conflict(f"change {change.id} is already merged as {change.merge_commit}")
    if change.status is ChangeStatus.CLOSED:
        raise Conflict(f"change {change.id} is closed")


def check_approval_revision(change_id: str, change: ChangeRequest, approval: Approval) -> None:
    """Refuse ``approval`` of change ``change_id`` unless it names the change's current revision.

    :raises Conflict: on ``field="approval.revision"``.
    """
    if approval.revision != change.revision:
        raise Conflict(
            f"the approval is for revision {approval.revision} of change {change_id}, "
            f"which is at revision {change.revision}",
            field="approval.revision",
        )


def check_evaluated_revision(change_id: str, change: ChangeRequest, revision: int | None) -> None:
    """Refuse to merge change ``change_id`` when it has moved past the ``revision`` the policy
    evaluated (``None``: no revision was named, nothing to check).

    :raises Conflict: on ``field="revision"``.
    """
    if revision is not None and change.revision != revision:
        raise Conflict(
            f"change {change_id} is at revision {change.revision}, not the evaluated "
            f"revision {revision}: evaluate it again",
            field="revision",
        )
