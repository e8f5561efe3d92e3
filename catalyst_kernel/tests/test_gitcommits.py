"""Making and reading commits (gitcommits), on real bare repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pygit2
import pytest

from catalyst_kernel.model import FileAction, FileChange
from catalyst_kernel.provisioning.gitcommits import (
    author_signature,
    commit_info,
    committer_signature,
    make_commit,
    path_history,
)
from catalyst_kernel.provisioning.gitformat import compose_message
from catalyst_kernel.provisioning.gittree import TreeCache, apply_edits, plan_edits

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "repo.git"), bare=True, initial_head="main")


def commit_files(
    repo: pygit2.Repository,
    parent: pygit2.Commit | None,
    message: str,
    *changes: tuple[str, FileAction, str | None],
) -> pygit2.Commit:
    edit = plan_edits([FileChange(path, action, content) for path, action, content in changes])
    tree = apply_edits(repo, parent, edit, TreeCache())
    author = author_signature("alice", "catalyst@example.com")
    committer = committer_signature("Catalyst", "catalyst@example.com")
    return make_commit(repo, parent, tree, message, author, committer)


def test_an_actor_without_an_address_gets_one_at_the_committers_domain() -> None:
    signature = author_signature("Alice Smith/ops", "catalyst@example.com")
    assert (signature.name, signature.email) == ("Alice Smith/ops", "Alice-Smith-ops@example.com")
    assert signature.offset == 0


def test_an_address_is_its_own_email_and_a_committer_without_a_domain_means_localhost() -> None:
    assert author_signature("bob@corp.example", "catalyst@example.com").email == "bob@corp.example"
    assert author_signature("bob", "catalyst@").email == "bob@localhost"


def test_make_commit_moves_no_ref_and_commit_info_splits_the_trailers(
    repo: pygit2.Repository,
) -> None:
    message = compose_message("Add web\n\nWhy it matters.", [("Catalyst-Actor", "alice")])
    root = commit_files(repo, None, message, ("a.yaml", FileAction.ADD, "a: 1\n"))
    assert repo.references.get("refs/heads/main") is None
    assert root.parent_ids == []
    info = commit_info(root)
    assert info.sha == str(root.id)
    assert info.parents == ()
    assert info.message == "Add web\n\nWhy it matters."
    assert info.trailers == {"Catalyst-Actor": "alice"}
    assert info.author == "alice"
    assert info.time == datetime.fromtimestamp(root.commit_time, UTC)
    child = commit_files(repo, root, "Next\n", ("b.yaml", FileAction.ADD, "b: 1\n"))
    assert commit_info(child).parents == (str(root.id),)
    assert root.committer.name == "Catalyst"
    assert root.committer.email == "catalyst@example.com"


def test_path_history_lists_the_commits_that_touched_the_path(repo: pygit2.Repository) -> None:
    first = commit_files(repo, None, "one\n", ("a.yaml", FileAction.ADD, "1\n"))
    second = commit_files(repo, first, "two\n", ("b.yaml", FileAction.ADD, "1\n"))
    third = commit_files(repo, second, "three\n", ("a.yaml", FileAction.MODIFY, "2\n"))
    fourth = commit_files(repo, third, "four\n", ("a.yaml", FileAction.DELETE, None))
    shas = [str(c.id) for c in (fourth, third, second, first)]
    assert [i.sha for i in path_history(repo, fourth, None, 50)] == shas
    assert [i.sha for i in path_history(repo, fourth, None, 2)] == shas[:2]
    touched_a = [i.sha for i in path_history(repo, fourth, "a.yaml", 50)]
    assert touched_a == [str(fourth.id), str(third.id), str(first.id)]
    assert [i.sha for i in path_history(repo, fourth, "b.yaml", 50)] == [str(second.id)]
    assert path_history(repo, fourth, "missing.yaml", 50) == []
    assert [i.sha for i in path_history(repo, fourth, "a.yaml", 1)] == [str(fourth.id)]


def test_path_history_of_no_head_is_empty(repo: pygit2.Repository) -> None:
    assert path_history(repo, None, None, 10) == []
