"""Editing Git trees with :class:`~catalyst_kernel.model.plan.FileChange` s, for Git committers.

A commit's tree is its parent's tree plus a request's file changes. :func:`plan_edits` checks the
changes and nests them by folder (an :data:`Edit`); :func:`apply_edits` writes the new root tree,
reading and rewriting only the trees on the changed paths, so every other subtree keeps its id and
the cost follows the change, not the repository. A change that does not fit the tree (adding a
file that exists, modifying one that does not) is a :class:`~catalyst_kernel.errors.Conflict`
naming the path (:func:`apply_proposal` says it is a change request's that does not apply).

Wide trees (``applications/`` with one entry per Application) are edited as raw entries instead of
through libgit2's tree builder, and the entries of each one written are kept in a
:class:`TreeCache`, so the next commit on top does not read and parse it again.

Reading a tree: :func:`file_data` (a file's content), :func:`list_paths` (the files below a
prefix, from :func:`walk_files`) and :func:`entry_id` (the object at a path).

The functions are synchronous pygit2 work: call them from a worker thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import pygit2

from catalyst_kernel.errors import Conflict, InvalidInput
from catalyst_kernel.model.plan import FileAction, FileChange, check_repository_path
from catalyst_kernel.provisioning.gitformat import DEFAULT_BRANCH

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "Edit",
    "TreeCache",
    "apply_edits",
    "apply_proposal",
    "entry_id",
    "file_data",
    "list_paths",
    "plan_edits",
    "walk_files",
]

_REGULAR_FILE_MODES: Final = frozenset(
    {pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE}
)
# Trees of at least this many bytes (about 130 entries) are edited as raw entries (_WideTree).
_WIDE_TREE_BYTES: Final = 4096

Edit = dict[str, "Edit | FileChange"]
"""A nested edit: a folder's name maps to the edit below it, a file's name to its change."""


def plan_edits(files: Sequence[FileChange]) -> Edit:
    """Check ``files`` and nest them by folder, ready for :func:`apply_edits`.

    :raises InvalidInput: an item is not a :class:`FileChange`, a path is not a repository path,
        or two changes touch the same path (or one path as a file and as a folder).
    """
    root: Edit = {}
    for change in files:
        if not isinstance(change, FileChange):
            raise InvalidInput(f"files must be FileChange objects, got {type(change).__name__}")
        check_repository_path(change.path)
        *folders, name = change.path.split("/")
        node = root
        for depth, folder in enumerate(folders):
            child = node.setdefault(folder, {})
            if isinstance(child, FileChange):
                raise InvalidInput(
                    f"{change.path}: {'/'.join(folders[: depth + 1])} is changed as a file in "
                    "the same request",
                    field="files",
                )
            node = child
        if name in node:
            raise InvalidInput(
                f"{change.path} is changed twice (or as a file and a folder) in one request",
                field="files",
            )
        node[name] = change
    return root


class TreeCache:
    """Entries of recently written wide trees, by tree id, so the next commit on top of one
    starts from memory instead of reading, inflating and parsing it again. Trees are immutable,
    so entries never go stale; the cache is bounded and shared by threads.

    :param size: how many trees are kept (least recently used first out).
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._trees: OrderedDict[bytes, dict[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, oid: pygit2.Oid) -> dict[bytes, bytes] | None:
        """A copy of the raw entries of tree ``oid`` by name, or ``None`` when not cached."""
        with self._lock:
            entries = self._trees.get(oid.raw)
            if entries is None:
                return None
            self._trees.move_to_end(oid.raw)
            return dict(entries)  # a copy: the caller edits it

    def put(self, oid: pygit2.Oid, entries: dict[bytes, bytes]) -> None:
        """Keep the raw ``entries`` (by name, in Git's order) of the tree written as ``oid``."""
        with self._lock:
            self._trees[oid.raw] = entries
            self._trees.move_to_end(oid.raw)
            while len(self._trees) > self._size:
                self._trees.popitem(last=False)


def apply_edits(
    repo: pygit2.Repository, base: pygit2.Commit | None, edit: Edit, cache: TreeCache
) -> pygit2.Oid:
    """Write the tree of ``base`` (``None``: an empty tree) with ``edit`` applied; its id.

    Folders left empty disappear (Git has no empty directories); a modified file keeps its
    executable bit.

    :raises Conflict: a change does not fit the tree; the message names the path.
    """
    written = _write_tree(repo, base.tree_id if base is not None else None, edit, "", cache)
    return written if written is not None else repo.TreeBuilder().write()


def apply_proposal(
    repo: pygit2.Repository, base: pygit2.Commit | None, edit: Edit, cache: TreeCache
) -> pygit2.Oid:
    """As :func:`apply_edits`, for a change request's proposed revision, built on ``base`` (the
    head of the default branch).

    :raises Conflict: a change does not fit the tree: "the change does not apply to ``main``",
        then the path.
    """
    try:
        return apply_edits(repo, base, edit, cache)
    except Conflict as exc:
        raise Conflict(f"the change does not apply to {DEFAULT_BRANCH}: {exc.message}") from None


def walk_files(tree: pygit2.Tree, prefix: str = "") -> Iterator[str]:
    """The paths of the regular files and symbolic links below ``tree``, each after ``prefix``
    (the tree's own path followed by ``/``, or empty for a root tree)."""
    for entry in tree:
        if isinstance(entry, pygit2.Tree):
            yield from walk_files(entry, f"{prefix}{entry.name}/")
        elif entry.filemode in _REGULAR_FILE_MODES or entry.filemode == pygit2.GIT_FILEMODE_LINK:
            yield f"{prefix}{entry.name}"


def entry_id(tree: pygit2.Tree, path: str) -> pygit2.Oid | None:
    """The id of the object at ``path`` in ``tree``, or ``None`` when there is none."""
    try:
        return tree[path].id
    except KeyError:
        return None


def file_data(tree: pygit2.Tree, path: str) -> bytes | None:
    """The content of the file at ``path`` in ``tree``, or ``None`` when there is none (nothing
    at ``path``, or a folder)."""
    try:
        entry = tree[path]
    except KeyError:
        return None
    return entry.data if isinstance(entry, pygit2.Blob) else None


def list_paths(tree: pygit2.Tree, prefix: str = "") -> list[str]:
    """The sorted paths of the files in ``tree`` (see :func:`walk_files`) that start with
    ``prefix``. Only the deepest folder ``prefix`` names in full is walked; a folder that is
    missing or a file lists nothing."""
    folder = prefix.rpartition("/")[0]
    if folder:
        try:
            subtree = tree[folder]
        except KeyError:
            return []
        if not isinstance(subtree, pygit2.Tree):
            return []
        paths = walk_files(subtree, f"{folder}/")
    else:
        paths = walk_files(tree, "")
    return sorted(p for p in paths if p.startswith(prefix))


# -------------------------------------------------------------------------------------------------
# Small and wide trees
# -------------------------------------------------------------------------------------------------


class _SmallTree:
    """A tree edited through libgit2's tree builder."""

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Oid | None) -> None:
        self._builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()

    def entry(self, name: str) -> tuple[int, pygit2.Oid] | None:
        found: pygit2.Object | None = self._builder.get(name)
        return None if found is None else (found.filemode, found.id)

    def insert(self, name: str, oid: pygit2.Oid, mode: int) -> None:
        self._builder.insert(name, oid, mode)

    def remove(self, name: str) -> None:
        self._builder.remove(name)

    def __len__(self) -> int:
        return len(self._builder)

    def write(self) -> pygit2.Oid:
        return self._builder.write()


def _tree_order(item: tuple[bytes, bytes]) -> bytes:
    # Git sorts tree entries by name, a folder's name as if it ended in "/".
    name, entry = item
    return name + b"/" if entry.startswith(b"40000 ") else name


class _WideTree:
    """A wide tree (``applications/`` with an entry per Application) edited as its raw entries.

    libgit2's tree builder parses every entry into a hash table and sorts them all again on
    write; here a changed entry is replaced in place, the order is recomputed only when an
    entry is added, and the written tree's entries are cached for the next commit. That keeps
    a commit's cost close to what Git's format cannot avoid: writing the wide tree once.
    """

    def __init__(
        self, repo: pygit2.Repository, entries: dict[bytes, bytes], cache: TreeCache
    ) -> None:
        self._repo = repo
        self._cache = cache
        self._entries = entries
        self._added = False

    def entry(self, name: str) -> tuple[int, pygit2.Oid] | None:
        raw = self._entries.get(name.encode())
        if raw is None:
            return None
        return int(raw[: raw.index(b" ")], 8), pygit2.Oid(raw=raw[-20:])

    def insert(self, name: str, oid: pygit2.Oid, mode: int) -> None:
        key = name.encode()
        self._added = self._added or key not in self._entries
        self._entries[key] = b"%o %s\x00%s" % (mode, key, oid.raw)

    def remove(self, name: str) -> None:
        del self._entries[name.encode()]

    def __len__(self) -> int:
        return len(self._entries)

    def write(self) -> pygit2.Oid:
        if self._added:
            self._entries = dict(sorted(self._entries.items(), key=_tree_order))
        oid = self._repo.odb.write(pygit2.enums.ObjectType.TREE, b"".join(self._entries.values()))
        self._cache.put(oid, self._entries)
        return oid


def _parse_tree(data: bytes) -> dict[bytes, bytes]:
    """A raw tree's entries (``<mode> <name>\\0<20-byte id>``) by name, in Git's order."""
    entries: dict[bytes, bytes] = {}
    position = 0
    while position < len(data):
        end = data.index(b"\x00", position) + 21
        entry = data[position:end]
        entries[entry[entry.index(b" ") + 1 : -21]] = entry
        position = end
    return entries


def _open_tree(
    repo: pygit2.Repository, tree: pygit2.Oid | None, cache: TreeCache
) -> _SmallTree | _WideTree:
    # By id, without loading the tree: libgit2 does not keep trees over 4 KiB in its object
    # cache, so loading a wide one would inflate and parse it again on every commit.
    if tree is None:
        return _SmallTree(repo, None)
    cached = cache.get(tree)
    if cached is not None:
        return _WideTree(repo, cached, cache)
    if repo.odb.read_header(tree)[1] >= _WIDE_TREE_BYTES:
        return _WideTree(repo, _parse_tree(repo.odb.read(tree)[1]), cache)
    return _SmallTree(repo, tree)


def _write_tree(
    repo: pygit2.Repository, tree: pygit2.Oid | None, edit: Edit, prefix: str, cache: TreeCache
) -> pygit2.Oid | None:
    """Write the tree ``tree`` with ``edit`` applied; ``None`` when the result is empty.

    Only the trees on changed paths are read and rewritten; every other subtree keeps its id.
    """
    builder = _open_tree(repo, tree, cache)
    for name, item in edit.items():
        existing = builder.entry(name)
        if isinstance(item, FileChange):
            mode = existing[0] if existing is not None else None
            if item.action is FileAction.ADD:
                if existing is not None:
                    raise Conflict(f"{item.path}: cannot add, it already exists", field="files")
                blob = repo.create_blob((item.content or "").encode())
                builder.insert(name, blob, pygit2.GIT_FILEMODE_BLOB)
            elif mode not in _REGULAR_FILE_MODES:
                verb = "modify" if item.action is FileAction.MODIFY else "delete"
                what = "does not exist" if existing is None else "is not a regular file"
                raise Conflict(f"{item.path}: cannot {verb}, it {what}", field="files")
            elif item.action is FileAction.MODIFY:
                blob = repo.create_blob((item.content or "").encode())
                builder.insert(name, blob, mode)  # keeps the executable bit
            else:
                builder.remove(name)
            continue
        folder = f"{prefix}{name}"
        if existing is not None and existing[0] != pygit2.GIT_FILEMODE_TREE:
            raise Conflict(f"cannot change files below {folder}: it is a file", field="files")
        subtree = existing[1] if existing is not None else None
        written = _write_tree(repo, subtree, item, f"{folder}/", cache)
        if written is not None:
            builder.insert(name, written, pygit2.GIT_FILEMODE_TREE)
        elif existing is not None:
            builder.remove(name)  # Git has no empty directories
    if len(builder) == 0:
        return None
    return builder.write()
