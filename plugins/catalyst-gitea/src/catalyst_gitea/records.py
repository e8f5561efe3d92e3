"""What Catalyst keeps on Gitea that Gitea has no field for, as machine-readable blocks.

A pull request that Catalyst opened ends its body with a hidden block (an HTML comment Gitea does
not render) holding the change's Catalyst side::

    <!-- catalyst-change
    {"format": 1, "author": "alice", "revision": 2, "head": "<sha>", "base": "<sha>", ...}
    -->

and each approval recorded through Catalyst is a review whose body ends with::

    <!-- catalyst-approval
    {"format": 1, "approver": "bob", "revision": 2, "head": "<sha>", "groups": [...], ...}
    -->

Blocks are trusted only from Catalyst's own Gitea users (the committer checks the author), and an
approval counts only for the revision *and* head commit it names, so a push to the branch outside
Catalyst dismisses it. JSON in a block never contains ``<`` or ``>``, so no text can end it early.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from attrs import frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
)
from catalyst_kernel.provisioning.gitformat import approval_json, parse_approval

__all__ = [
    "ApprovalRecord",
    "ChangeRecord",
    "approval_body",
    "change_body",
    "read_approval",
    "read_change",
    "record_key",
]

_MAC: Final = "mac"
_FORMAT: Final = 1
_CHANGE: Final = "catalyst-change"
_APPROVAL: Final = "catalyst-approval"
_BLOCK: Final = re.compile(r"<!-- (catalyst-[a-z]+)\n(\{[^<>]*\})\n-->\s*\Z")


@frozen
class ChangeRecord:
    """The Catalyst side of a pull request: who asked, which revision, what to merge."""

    author: str
    revision: int
    head: str
    base: str
    message: str
    operation_id: str
    plan_digest: str | None
    trailers: Mapping[str, str]
    applications: tuple[ApplicationChange, ...]


@frozen
class ApprovalRecord:
    """An approval, and the head commit of the revision it approved."""

    approval: Approval
    head: str


def record_key(token: str) -> bytes:
    """The key that signs Catalyst's records, derived from Catalyst's Gitea token: only
    Catalyst can sign, and a record edited by anyone else no longer verifies."""
    return hashlib.sha256(b"catalyst-gitea-record\0" + token.encode()).digest()


def _mac(key: bytes, document: Mapping[str, Any]) -> str:
    canonical = json.dumps(dict(document), sort_keys=True, separators=(",", ":"))
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def _block(kind: str, document: Mapping[str, Any], key: bytes | None = None) -> str:
    if key is not None:
        document = {**document, _MAC: _mac(key, document)}
    text = json.dumps(dict(document), sort_keys=True, separators=(",", ":"))
    # "<" and ">" appear only inside JSON strings, where their escapes mean the same.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<!-- {kind}\n{text}\n-->"


def _split(
    body: str | None, kind: str, key: bytes | None = None
) -> tuple[str, Mapping[str, Any] | None]:
    if not body:
        return "", None
    match = _BLOCK.search(body)
    if match is None or match[1] != kind:
        return body, None
    try:
        document = json.loads(match[2])
    except ValueError:
        return body, None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        return body, None
    if key is not None:
        # Anyone who may write to the repository may edit a pull request's body: only a record
        # Catalyst signed counts as Catalyst's.
        signed = document.pop(_MAC, None)
        if not isinstance(signed, str) or not hmac.compare_digest(signed, _mac(key, document)):
            return body, None
    return body[: match.start()].rstrip(), document


def change_body(description: str, record: ChangeRecord, *, key: bytes | None = None) -> str:
    """A pull request body: ``description`` for people, then the record for Catalyst."""
    document = {
        "format": _FORMAT,
        "author": record.author,
        "revision": record.revision,
        "head": record.head,
        "base": record.base,
        "message": record.message,
        "operation": record.operation_id,
        "planDigest": record.plan_digest,
        "trailers": dict(record.trailers),
        "applications": [
            {
                "name": application.name,
                "action": application.action.value,
                "blueprint": application.blueprint,
                "version": application.version,
            }
            for application in record.applications
        ],
    }
    return f"{description.strip()}\n\n{_block(_CHANGE, document, key)}"


def read_change(body: str | None, *, key: bytes | None = None) -> tuple[str, ChangeRecord | None]:
    """The description and the record of a pull request body (``None``: not Catalyst's, or
    not signed with ``key``)."""
    description, document = _split(body, _CHANGE, key)
    if document is None:
        return description, None
    try:
        record = ChangeRecord(
            author=str(document["author"]),
            revision=int(document["revision"]),
            head=str(document["head"]),
            base=str(document["base"]),
            message=str(document["message"]),
            operation_id=str(document["operation"]),
            plan_digest=document.get("planDigest"),
            trailers={str(k): str(v) for k, v in dict(document.get("trailers") or {}).items()},
            applications=tuple(
                ApplicationChange(
                    name=item["name"],
                    action=ApplicationAction(item["action"]),
                    blueprint=item.get("blueprint"),
                    version=item.get("version"),
                )
                for item in document.get("applications") or ()
            ),
        )
    except (KeyError, TypeError, ValueError, InvalidInput):
        return description, None
    return description, record


def approval_body(record: ApprovalRecord, *, key: bytes | None = None) -> str:
    """A review body recording ``record`` (a line for people, then the block)."""
    approval = record.approval
    kind = "Break-glass approval" if approval.reason is not None else "Approved"
    teams = ", ".join(sorted(approval.groups)) or "no team"
    line = f"{kind} by {approval.approver} ({teams}) in Catalyst, revision {approval.revision}."
    if approval.reason is not None:
        line += f"\n\nReason: {approval.reason}"
    document = {"format": _FORMAT, "head": record.head, **approval_json(approval)}
    return f"{line}\n\n{_block(_APPROVAL, document, key)}"


def read_approval(body: str | None, *, key: bytes | None = None) -> ApprovalRecord | None:
    """The approval a review body records, or ``None`` (also when not signed with ``key``)."""
    _, document = _split(body, _APPROVAL, key)
    if document is None:
        return None
    try:
        approval = parse_approval(document)
        if not isinstance(approval.time, datetime) or approval.time.tzinfo is None:
            return None
        return ApprovalRecord(approval, str(document["head"]))
    except (KeyError, TypeError, ValueError, InvalidInput):
        return None
