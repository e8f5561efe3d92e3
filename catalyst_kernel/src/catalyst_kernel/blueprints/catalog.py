"""The Blueprint catalog: every version from every source, and what each viewer may see of it.

Sources are folders on disk (:class:`FolderSource`) or the tree of a Git commit
(:class:`GitSource`, read blob by blob with pygit2, never checked out). In either, any folder
holding a ``blueprint.yaml`` is one Blueprint version (``bp-postgres/1.4.2/blueprint.yaml``).
The Sovereign's public catalog is a source without an Organization; an Organization's
``shared-blueprints`` is a source with one.

Visibility (SPEC §5.1), applied on every read:

============  ================================================  =================================
visibility    public catalog                                    an Organization's shared-blueprints
============  ================================================  =================================
``listed``    everyone; listed                                  that Organization; listed
``unlisted``  everyone, by exact name; not listed               that Organization, by exact name
``private``   ``spec.owner.organization`` only; listed to it    that Organization; listed
============  ================================================  =================================

A sovereign-admin view sees everything. A hidden Blueprint is reported exactly as a missing one
(:class:`~catalyst_kernel.errors.NotFound`), so a view never reveals that it exists.

A broken Blueprint never hides the others: its problems are collected in
:attr:`Catalog.problems` and the rest load. So are duplicates — one name and version published
twice where one viewer sees both; asking a view that sees both for that version is a
:class:`~catalyst_kernel.errors.Conflict` naming both origins.
"""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
import pygit2
from attrs import field, frozen
from semantic_version import Version

from catalyst_kernel.blueprints.loader import (
    BLUEPRINT_FILE,
    BlueprintProblem,
    FolderOrigin,
    GitOrigin,
    InvalidBlueprint,
    LoadedBlueprint,
    LoadLimits,
    Origin,
    load_blueprint,
    read_folder,
)
from catalyst_kernel.errors import Conflict, InvalidInput, NotFound
from catalyst_kernel.model.blueprint import Visibility, check_blueprint_version
from catalyst_kernel.model.names import check_blueprint_name, check_organization_name
from catalyst_kernel.model.plan import check_repository_path
from catalyst_kernel.model.validators import name_rule

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from catalyst_kernel.model.blueprint import Blueprint

__all__ = ["Catalog", "CatalogView", "FolderSource", "GitSource", "ListedBlueprint", "Source"]

_LINK_HOPS: Final = 8


_organization = attrs.validators.optional(name_rule(check_organization_name))


@frozen
class FolderSource:
    """Blueprints in a folder on disk (walked recursively).

    :ivar organization: the Organization whose ``shared-blueprints`` this is; ``None`` for the
        Sovereign's public catalog.
    """

    path: Path = field(converter=Path)
    organization: str | None = field(default=None, validator=_organization)

    def __str__(self) -> str:
        return str(self.path)


@frozen
class GitSource:
    """Blueprints in the tree of ``ref`` of a Git repository (bare or not), read without checkout.

    :ivar path: a folder of the tree to read instead of its root.
    :ivar organization: as for :class:`FolderSource`.
    """

    repository_path: Path = field(converter=Path)
    ref: str = "HEAD"
    organization: str | None = field(default=None, validator=_organization)
    path: str = ""

    def __str__(self) -> str:
        return f"{self.repository_path}@{self.ref}:{self.path or '.'}"


Source = FolderSource | GitSource


@frozen
class ListedBlueprint:
    """One Blueprint in a listing: its listed versions (ascending SemVer) and the latest one."""

    name: str
    versions: tuple[str, ...]
    latest: LoadedBlueprint


def _version_key(version: str) -> Version:
    # SemVer precedence ignores build metadata: 1.0.0+a and 1.0.0+b are the same version.
    return Version(version).truncate("prerelease")


def _audience(entry: LoadedBlueprint) -> str | None:
    """Who may see ``entry`` without being sovereign-admin: ``"*"`` for everyone, else an Org."""
    if entry.organization is not None:
        return entry.organization
    if entry.blueprint.spec.visibility is Visibility.PRIVATE:
        return entry.owner
    return "*"


def _visible(entry: LoadedBlueprint, organization: str | None, sovereign_admin: bool) -> bool:
    if sovereign_admin:
        return True
    audience = _audience(entry)
    return audience == "*" or (audience is not None and audience == organization)


def _listed(entry: LoadedBlueprint) -> bool:
    return entry.blueprint.spec.visibility is not Visibility.UNLISTED


class Catalog:
    """Every Blueprint version loaded from the sources, and the problems met loading them.

    Build one with :meth:`load`; it does not change afterwards (load again to refresh).

    :param blueprints: the versions that loaded.
    :param problems: problems met while loading (duplicates are added to them).
    :param rejected: where the Blueprints that failed to load were found.
    """

    def __init__(
        self,
        blueprints: Iterable[LoadedBlueprint] = (),
        problems: Iterable[BlueprintProblem] = (),
        rejected: Iterable[Origin] = (),
    ) -> None:
        self._blueprints = tuple(blueprints)
        self._rejected = tuple(rejected)
        groups: dict[tuple[str, Version], list[LoadedBlueprint]] = defaultdict(list)
        for entry in self._blueprints:
            groups[entry.name, _version_key(entry.version)].append(entry)
        self._problems = tuple(problems) + tuple(_duplicates(groups.values()))

    @classmethod
    def load(
        cls,
        sources: Iterable[Source],
        *,
        strict: bool = False,
        limits: LoadLimits | None = None,
    ) -> Catalog:
        """Load every Blueprint of every source.

        :param strict: raise instead of collecting problems (for CI and ``catalyst blueprint
            lint``-style checks).
        :param limits: what one Blueprint may cost to read (default: :class:`LoadLimits`).
        :raises InvalidInput: with ``strict``, if any Blueprint failed or is duplicated.
        """
        limits = limits or LoadLimits()
        blueprints: list[LoadedBlueprint] = []
        problems: list[BlueprintProblem] = []
        rejected: list[Origin] = []
        for source in sources:
            found = (
                _read_git(source, limits)
                if isinstance(source, GitSource)
                else _read_folders(source, limits)
            )
            try:
                for origin, files, read_problems in found:
                    try:
                        blueprints.append(
                            load_blueprint(
                                files,
                                origin=origin,
                                organization=source.organization,
                                limits=limits,
                                read_problems=read_problems,
                            )
                        )
                    except InvalidBlueprint as exc:
                        problems.extend(exc.located)
                        rejected.append(exc.origin)
            except _SourceUnreadable as exc:
                problems.append(BlueprintProblem(str(source), "", exc.message))
        catalog = cls(blueprints, problems, rejected)
        if strict:
            catalog.check()
        return catalog

    @property
    def blueprints(self) -> tuple[LoadedBlueprint, ...]:
        """Every version that loaded, whoever may see it."""
        return self._blueprints

    @property
    def problems(self) -> tuple[BlueprintProblem, ...]:
        """Every problem met: invalid Blueprints, unreadable sources, duplicates."""
        return self._problems

    @property
    def rejected(self) -> tuple[Origin, ...]:
        """The origins of the Blueprint folders that failed to load."""
        return self._rejected

    def check(self) -> None:
        """Raise :class:`InvalidInput` listing every problem, if there is any."""
        if self._problems:
            raise InvalidInput(
                f"the catalog has {len(self._problems)} problem(s): "
                + "; ".join(problem.describe() for problem in self._problems)
            )

    def view(self, organization: str | None, *, sovereign_admin: bool = False) -> CatalogView:
        """The catalog as seen by a member of ``organization`` (``None``: anonymous).

        :param sovereign_admin: see every Blueprint of every Organization.
        """
        if organization is not None:
            check_organization_name(organization)
        visible = [e for e in self._blueprints if _visible(e, organization, sovereign_admin)]
        return CatalogView(visible, organization=organization, sovereign_admin=sovereign_admin)


def _duplicates(groups: Iterable[list[LoadedBlueprint]]) -> Iterator[BlueprintProblem]:
    """Duplicates some viewer other than a sovereign-admin would see (two Organizations may
    each have their own ``bp-tool`` 1.0.0 in their ``shared-blueprints``)."""
    for entries in groups:
        for first, second in combinations(entries, 2):
            a, b = _audience(first), _audience(second)
            if a is None or b is None or (a != b and "*" not in (a, b)):
                continue
            for entry, other in ((first, second), (second, first)):
                yield BlueprintProblem(
                    entry.origin.file(BLUEPRINT_FILE),
                    "/metadata/version",
                    f"{entry.name} {entry.version} is published twice: here and at {other.origin}",
                )


class CatalogView:
    """The catalog as one viewer sees it; implements
    :class:`~catalyst_kernel.blueprints.lookup.BlueprintLookup`."""

    def __init__(
        self,
        blueprints: Iterable[LoadedBlueprint],
        *,
        organization: str | None,
        sovereign_admin: bool = False,
    ) -> None:
        self.organization = organization
        self.sovereign_admin = sovereign_admin
        self._index: dict[str, dict[Version, list[LoadedBlueprint]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for entry in blueprints:
            self._index[entry.name][_version_key(entry.version)].append(entry)

    def _entries(self, name: str) -> Mapping[Version, list[LoadedBlueprint]]:
        check_blueprint_name(name)
        return self._index.get(name, {})

    def versions(self, name: str) -> Sequence[str]:
        """Every version of ``name`` this viewer may see, ascending (empty if none)."""
        entries = self._entries(name)
        return tuple(entries[key][0].version for key in sorted(entries))

    def loaded(self, name: str, version: str) -> LoadedBlueprint:
        """One version with its origin and files.

        :raises NotFound: if absent or hidden from this viewer (the two are indistinguishable).
        :raises Conflict: if this viewer sees it published twice.
        """
        check_blueprint_version(version)
        found = self._entries(name).get(_version_key(version), [])
        if not found:
            raise NotFound(f"Blueprint {name} {version} is not in the catalog")
        if len(found) > 1:
            origins = " and ".join(str(entry.origin) for entry in found)
            raise Conflict(f"Blueprint {name} {version} is published twice: at {origins}")
        return found[0]

    def get(self, name: str, version: str) -> Blueprint:
        """One version (see :meth:`loaded`)."""
        return self.loaded(name, version).blueprint

    def list(self) -> Sequence[ListedBlueprint]:
        """The Blueprints listed to this viewer, by name, each with its listed versions."""
        listing: list[ListedBlueprint] = []
        for name in sorted(self._index):
            entries = self._index[name]
            keys = [key for key in sorted(entries) if any(_listed(e) for e in entries[key])]
            if keys:
                listed = [next(e for e in entries[key] if _listed(e)) for key in keys]
                versions = tuple(entry.version for entry in listed)
                listing.append(ListedBlueprint(name, versions, listed[-1]))
        return listing


# --------------------------------------------------------------------------- reading sources


class _SourceUnreadable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_Found = tuple[Origin, dict[str, bytes], list[BlueprintProblem]]


def _read_folders(source: FolderSource, limits: LoadLimits) -> Iterator[_Found]:
    root = source.path
    if not root.is_dir():
        raise _SourceUnreadable("is not a folder")
    found: list[Path] = []
    for directory, folders, files in os.walk(root, onerror=None, followlinks=False):
        # Hidden folders (.git, .github) hold no Blueprints; symlinked folders are not followed.
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        if BLUEPRINT_FILE in files:
            found.append(Path(directory))
    for folder in sorted(found):
        files_read, problems = read_folder(folder, limits=limits)
        yield FolderOrigin(folder), files_read, problems


def _read_git(source: GitSource, limits: LoadLimits) -> Iterator[_Found]:
    try:
        repository = pygit2.Repository(str(source.repository_path))
    except (pygit2.GitError, KeyError) as exc:
        raise _SourceUnreadable(f"is not a Git repository: {exc}") from None
    try:
        commit = repository.revparse_single(source.ref).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise _SourceUnreadable(f"the ref {source.ref!r} does not name a commit: {exc}") from None
    tree = commit.tree
    if source.path:
        try:
            tree = tree[source.path].peel(pygit2.Tree)
        except (KeyError, ValueError, pygit2.GitError):
            raise _SourceUnreadable(f"the commit has no folder {source.path!r}") from None
    entries = dict(_walk_tree(tree, ""))
    folders = sorted(
        posixpath.dirname(path) for path in entries if posixpath.basename(path) == BLUEPRINT_FILE
    )
    for folder in folders:
        origin = GitOrigin(
            repository=source.repository_path,
            ref=source.ref,
            commit=str(commit.id),
            path=posixpath.join(source.path, folder) if source.path else folder,
        )
        files, problems = _GitFolder(repository, entries, folder, folders, origin, limits).read()
        yield origin, files, problems


def _walk_tree(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, pygit2.Object]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if isinstance(entry, pygit2.Tree):
            yield from _walk_tree(entry, path + "/")
        else:
            yield path, entry


class _GitFolder:
    """The files of one Blueprint folder in a Git tree (the equivalent of ``read_folder``)."""

    def __init__(
        self,
        repository: pygit2.Repository,
        entries: Mapping[str, pygit2.Object],
        folder: str,
        folders: Sequence[str],
        origin: GitOrigin,
        limits: LoadLimits,
    ) -> None:
        self.repository = repository
        self.entries = entries
        self.folder = folder
        self.prefix = f"{folder}/" if folder else ""
        # Folders below this one with their own blueprint.yaml are other Blueprint versions.
        self.nested = [
            f"{other}/" for other in folders if other != folder and other.startswith(self.prefix)
        ]
        self.origin = origin
        self.limits = limits
        self.files: dict[str, bytes] = {}
        self.problems: list[BlueprintProblem] = []
        self.total = 0

    def problem(self, relative: str, message: str) -> None:
        self.problems.append(BlueprintProblem(self.origin.file(relative), "", message))

    def read(self) -> tuple[dict[str, bytes], list[BlueprintProblem]]:
        for path, entry in self.entries.items():
            if not path.startswith(self.prefix) or any(path.startswith(n) for n in self.nested):
                continue
            relative = path[len(self.prefix) :]
            try:
                check_repository_path(relative)
            except InvalidInput:
                self.problem(relative, "the file name is not a safe relative path")
                continue
            data = self._content(path, entry, relative)
            if data is None:
                continue
            if len(self.files) >= self.limits.max_files:
                self.problem(relative, f"the folder holds more than {self.limits.max_files} files")
                break
            self.total += len(data)
            if self.total > self.limits.max_total_bytes:
                self.problem(
                    relative, f"the folder holds more than {self.limits.max_total_bytes} bytes"
                )
                break
            self.files[relative] = data
        return self.files, self.problems

    def _content(self, path: str, entry: pygit2.Object, relative: str) -> bytes | None:
        for _hop in range(_LINK_HOPS):
            if entry.filemode == pygit2.enums.FileMode.COMMIT:
                self.problem(relative, "is a Git submodule; Blueprints cannot contain submodules")
                return None
            blob = self.repository[entry.id].peel(pygit2.Blob)
            if blob.size > self.limits.max_file_bytes:
                self.problem(
                    relative, f"the file is larger than {self.limits.max_file_bytes} bytes"
                )
                return None
            if entry.filemode != pygit2.enums.FileMode.LINK:
                return bytes(blob.data)
            target = posixpath.normpath(
                posixpath.join(posixpath.dirname(path), blob.data.decode("utf-8", "replace"))
            )
            if (
                blob.data.startswith(b"/")
                or not target.startswith(self.prefix)
                or target.startswith("../")
            ):
                self.problem(relative, "is a symlink that points outside the Blueprint folder")
                return None
            if target not in self.entries:
                inside = any(name.startswith(f"{target}/") for name in self.entries)
                reason = (
                    "is a symlink to a folder; only symlinks to files are read"
                    if inside
                    else "is a broken symlink"
                )
                self.problem(relative, reason)
                return None
            path, entry = target, self.entries[target]
        self.problem(relative, f"is a chain of more than {_LINK_HOPS} symlinks")
        return None
