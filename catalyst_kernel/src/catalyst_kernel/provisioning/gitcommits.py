"""Making and reading the commits of an Environment repository, the same for every Git committer.

A commit's author is the actor (:func:`author_signature` gives an actor that is not an e-mail
address one at the committer's domain) and its committer is Catalyst (:func:`committer_signature`);
:func:`make_commit` writes it without moving any ref, so the committer decides how the branch moves.
Read back, a commit is a :class:`~catalyst_kernel.provisioning.committer.CommitInfo`
(:func:`commit_info`: the message split from its trailers), and :func:`path_history` walks a
branch for the commits that touched a path.

The functions are synchronous pygit2 work: call them from a worker thread.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Final

import pygit2

from catalyst_kernel.provisioning.committer import CommitInfo
from catalyst_kernel.provisioning.gitformat import split_trailers
from catalyst_kernel.provisioning.gittree import entry_id

__all__ = [
    "author_signature",
    "commit_info",
    "committer_signature",
    "make_commit",
    "path_history",
]

_NOT_IN_ADDRESS: Final = re.compile(r"[^A-Za-z0-9._+-]")


def committer_signature(name: str, email: str) -> pygit2.Signature:
    """A signature of ``name <email>`` at the current time (UTC)."""
    return pygit2.Signature(name, email, int(time.time()), 0)


def author_signature(name: str, committer_email: str) -> pygit2.Signature:
    """The signature of actor ``name`` at the current time.

    Actors are user names or token subjects rather than addresses, and Git wants an address: an
    actor without ``@`` gets one at the domain of ``committer_email`` (``localhost`` when it has
    none), its characters outside ``[A-Za-z0-9._+-]`` replaced by ``-``.
    """
    if "@" in name:
        email = name
    else:
        domain = committer_email.rpartition("@")[2] or "localhost"
        email = f"{_NOT_IN_ADDRESS.sub('-', name)}@{domain}"
    return committer_signature(name, email)


def make_commit(
    repo: pygit2.Repository,
    parent: pygit2.Commit | None,
    tree: pygit2.Oid,
    message: str,
    author: pygit2.Signature,
    committer: pygit2.Signature,
) -> pygit2.Commit:
    """Write a commit of ``tree`` on ``parent`` (``None``: a root commit); no ref moves."""
    parents = [parent.id] if parent is not None else []
    oid = repo.create_commit(None, author, committer, message, tree, parents)
    return repo[oid].peel(pygit2.Commit)


def commit_info(commit: pygit2.Commit) -> CommitInfo:
    """``commit`` as a :class:`CommitInfo`: its message without the trailers, the trailers
    apart, the author's name and the commit time (UTC)."""
    body, trailers = split_trailers(commit.message)
    return CommitInfo(
        sha=str(commit.id),
        parents=tuple(str(parent) for parent in commit.parent_ids),
        message=body,
        author=commit.author.name,
        time=datetime.fromtimestamp(commit.commit_time, UTC),
        trailers=trailers,
    )


def path_history(
    repo: pygit2.Repository, head: pygit2.Commit | None, path: str | None, limit: int
) -> list[CommitInfo]:
    """Up to ``limit`` commits reachable from ``head``, newest first (topological order); with
    ``path``, only those that touched it: the object at ``path`` differs from the one in every
    parent (for a root commit: ``path`` exists). ``head`` ``None`` (no branch yet): none."""
    if head is None:
        return []
    found: list[CommitInfo] = []
    for commit in repo.walk(head.id, pygit2.enums.SortMode.TOPOLOGICAL):
        if path is not None:
            mine = entry_id(commit.tree, path)
            theirs = [entry_id(parent.tree, path) for parent in commit.parents]
            if (not theirs and mine is None) or any(mine == t for t in theirs):
                continue
        found.append(commit_info(commit))
        if len(found) >= limit:
            break
    return found
