"""The embedded committer: one bare Git repository per Environment, change requests as refs.

Layout
    ``<root>/<org>/<org>-<env_type>.git`` (``root`` is ``<data_dir>/git``), a bare repository whose
    default branch is ``main``. They are ordinary repositories: ``git clone`` shows the
    Environment's files, ``git log`` shows the ``Catalyst-*`` trailers, ``git fsck`` is clean.

Commits
    A commit is built from the head tree plus the request's :class:`FileChange` s, editing only
    the trees on the changed paths (cost follows the change, not the repository), and written as
    one commit whose message ends with Git trailers. Wide trees (``applications/`` with one
    entry per Application) are edited as raw entries and cached by id, so the next commit does
    not parse them again (see :mod:`catalyst_kernel.provisioning.gittree`). The branch then
    moves with compare-and-swap semantics: only if it still points at the commit the new one
    was built on.

Concurrency (the choice, and why)
    Two locks guard every reference update, and the swap itself is checked under both:

    1. An ``flock`` on ``<repo>/catalyst-writer.flock`` serialises Catalyst writers across
       processes. ``flock`` is released by the kernel when a process dies, so a crash never
       leaves it stale, and it blocks (we poll with a deadline) instead of failing at once.
    2. Inside it, a libgit2 reference transaction locks each ref the way ``git`` does
       (``refs/heads/main.lock``). That excludes writers outside Catalyst (a ``git push`` into
       the bare repository) too. While the lock is held the current value is read back and
       compared with the expected one; only then is the new value committed (an atomic
       rename). A ``.lock`` file older than the lock timeout, found while holding the
       ``flock``, is left over from a crash and is removed with a warning.

    Objects (blobs, trees, commits) are written *before* the locks are taken, against the head
    read without a lock: that is the optimistic part. When the head moved meanwhile, the same
    file changes are applied to the new head and the swap is tried again, up to
    ``max_attempts`` times. The last attempt builds while holding the ``flock``, so Catalyst
    writers cannot starve one another; only a writer outside Catalyst can still make it fail,
    which is a :class:`Conflict`. With ``expected_head`` there is no retry: a moved head is a
    :class:`Conflict`. A failed operation moves no ref (objects it wrote stay as unreachable
    garbage that ``git gc`` prunes). Within one process, writes to one repository are also
    serialised by an :class:`anyio.Lock`, so tasks of one process never race each other.

Change requests
    ``refs/changes/<id>/head`` is the proposed commit (based on ``main`` when the revision was
    made) and ``refs/changes/<id>/<revision>`` keeps every revision. The metadata is a JSON
    document, ``change.json``, in the tree of a commit that ``refs/catalyst/changes/<id>``
    points at; each step (opened, updated, approved, merged, closed) is a new commit whose parent
    is the previous one, so ``git log refs/catalyst/changes/<id>`` is the change's audit trail and
    every update is the same crash-safe swap as a commit. Ids are ``1, 2, 3 …`` per Environment.
    An approval names the revision it approves; approving another revision than the current one
    is a :class:`Conflict`, and a new revision drops the approvals of the earlier ones. The author
    may approve their own change: it is recorded, and the ``pr-required`` rule ignores it.
    Merging applies the change's file changes to the current ``main`` as one commit (linear
    history, no merge commit) carrying ``Catalyst-Change`` and ``Catalyst-Change-Revision``
    trailers, then marks the change merged; ``main`` moves first. If the process dies between the
    two reference updates, the next write to that change finds its merge commit on ``main`` and
    completes the record instead of applying the change twice.

All blocking pygit2 work runs in worker threads; every pygit2 and OS error becomes a
:class:`BackendUnavailable`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, TypeVar

import anyio
import anyio.to_thread
import attrs
import pygit2
from attrs import frozen

from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    Conflict,
    InvalidInput,
    NotFound,
)
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import check_environment_name, split_environment_name
from catalyst_kernel.model.plan import FileAction, FileChange, check_repository_path
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitInfo,
    CommitRequest,
)
from catalyst_kernel.provisioning.gitcommits import (
    author_signature,
    commit_info,
    committer_signature,
    make_commit,
    path_history,
)
from catalyst_kernel.provisioning.gitformat import (
    ACTOR_TRAILER,
    CHANGE_REVISION_TRAILER,
    CHANGE_TRAILER,
    DEFAULT_BRANCH,
    approval_json,
    check_actor,
    check_approval,
    check_approval_revision,
    check_change_id,
    check_change_request,
    check_commit_request,
    check_evaluated_revision,
    check_initial_commit,
    check_list_query,
    check_log_query,
    check_status_filter,
    check_title,
    compose_message,
    format_time,
    merge_message,
    parse_approval,
    request_trailers,
    require_open,
    split_trailers,
)
from catalyst_kernel.provisioning.gittree import (
    Edit,
    TreeCache,
    apply_edits,
    apply_proposal,
    file_data,
    list_paths,
    plan_edits,
)

if TYPE_CHECKING:
    from pathlib import Path

    from catalyst_kernel.model.tenancy import Environment

__all__ = ["GitCommitter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAIN_REF: Final = f"refs/heads/{DEFAULT_BRANCH}"
_CHANGE_HEAD: Final = "refs/changes/{id}/head"
_CHANGE_REVISION: Final = "refs/changes/{id}/{revision}"
_CHANGE_META: Final = "refs/catalyst/changes/{id}"
_CHANGE_META_PREFIX: Final = "refs/catalyst/changes/"
_CHANGES_PREFIX: Final = "refs/changes/"
_META_FILE: Final = "change.json"
_META_FORMAT: Final = 1
_WRITER_LOCK: Final = "catalyst-writer.flock"
_OPEN_REPOSITORIES_PER_THREAD: Final = 64
# How far back main is searched for the commit of an interrupted merge (see _landed).
_MERGE_SEARCH_LIMIT: Final = 10_000


# -------------------------------------------------------------------------------------------------
# Locks and compare-and-swap
# -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _writer_lock(gitdir: Path, timeout: float) -> Iterator[None]:
    """Hold the repository's writer ``flock`` (see the module docstring)."""
    fd = os.open(gitdir / _WRITER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"embedded committer: {gitdir} has been locked by another writer for "
                        f"more than {timeout:g} s"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@frozen
class _RefUpdate:
    """Move ``name`` from ``old`` (``None``: must not exist) to ``new``."""

    name: str
    old: pygit2.Oid | None
    new: pygit2.Oid


def _current(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    reference = repo.references.get(name)
    if reference is None:
        return None
    target = reference.target
    return target if isinstance(target, pygit2.Oid) else None


def _free(transaction: pygit2.transaction.ReferenceTransaction) -> None:
    # Leaving the context with an exception type frees the transaction without committing it
    # (and unlocks its refs); pygit2 has no public "abort".
    transaction.__exit__(GeneratorExit, None, None)


def _lock_ref(
    transaction: pygit2.transaction.ReferenceTransaction, gitdir: Path, name: str, timeout: float
) -> None:
    started = time.monotonic()
    lock_file = gitdir / f"{name}.lock"
    while True:
        try:
            transaction.lock_ref(name)
            return
        except pygit2.GitError:
            waited = time.monotonic() - started
            try:
                age: float | None = time.time() - lock_file.stat().st_mtime
            except FileNotFoundError:
                age = None  # released meanwhile, or not a lock conflict at all
            if age is not None and age - waited > timeout:
                # Older than the timeout before this write began, while we hold the writer
                # flock (so no Catalyst writer owns it): git never holds a ref lock that long,
                # so a crash left it.
                log.warning("removing stale reference lock %s (%.0f s old)", lock_file, age)
                lock_file.unlink(missing_ok=True)
                continue
            if waited > timeout:
                if age is None:
                    raise  # a real error, translated by the caller
                raise BackendUnavailable(
                    f"embedded committer: {name} is locked by another process ({lock_file}); "
                    "if no git process is running, remove that file"
                ) from None
            time.sleep(0.002)


def _compare_and_swap(
    repo: pygit2.Repository, gitdir: Path, updates: Sequence[_RefUpdate], timeout: float
) -> bool:
    """Apply ``updates`` in order if every ref still holds its ``old`` value; else change
    nothing and return ``False``. The caller holds the writer flock."""
    transactions: list[pygit2.transaction.ReferenceTransaction] = []
    try:
        for update in updates:
            transaction = repo.transaction()
            transactions.append(transaction)
            _lock_ref(transaction, gitdir, update.name, timeout)
        for update in updates:
            if _current(repo, update.name) != update.old:
                return False
        # One transaction per ref, committed in order: the first ref moves first, which is what
        # crash recovery relies on (main before a change's record).
        for transaction, update in zip(transactions, updates, strict=True):
            transaction.set_target(update.name, update.new)
            transaction.commit()
        return True
    finally:
        for transaction in transactions:
            _free(transaction)


@frozen
class _Plan(Generic[T]):
    """What one attempt of a write decided: the refs to swap, then ``outcome()`` — which
    returns the result, or raises when a record was repaired on the way to a refusal."""

    updates: tuple[_RefUpdate, ...]
    outcome: Callable[[], T]


def _returning(value: T) -> Callable[[], T]:
    return lambda: value


def _raising(error: CatalystError) -> Callable[[], NoReturn]:
    def outcome() -> NoReturn:
        raise error

    return outcome


@frozen
class _Decision(Generic[T]):
    """A change-record step: the new record (the same object: nothing to write), the step's
    name for the audit trail, the result, and refs that move before the record."""

    record: _Record
    step: str
    result: T
    refs: tuple[_RefUpdate, ...] = ()


# -------------------------------------------------------------------------------------------------
# Change records
# -------------------------------------------------------------------------------------------------


@frozen
class _StoredFile:
    path: str
    action: FileAction
    blob: str | None


@frozen
class _Record:
    """A change request as stored in ``change.json``: the public view plus what merging needs."""

    change: ChangeRequest
    message: str
    operation_id: str
    plan_digest: str | None
    trailers: Mapping[str, str]
    files: tuple[_StoredFile, ...]


def _record_json(record: _Record) -> bytes:
    change = record.change
    document: dict[str, Any] = {
        "format": _META_FORMAT,
        "id": change.id,
        "environment": change.environment,
        "title": change.title,
        "description": change.description,
        "author": change.author,
        "status": change.status.value,
        "revision": change.revision,
        "head": change.head,
        "base": change.base,
        "created": format_time(change.created),
        "updated": format_time(change.updated),
        "approvals": [approval_json(approval) for approval in change.approvals],
        "merge_commit": change.merge_commit,
        "applications": [
            {
                "name": application.name,
                "action": application.action.value,
                "blueprint": application.blueprint,
                "version": application.version,
            }
            for application in change.applications
        ],
        "request": {
            "message": record.message,
            "operation_id": record.operation_id,
            "plan_digest": record.plan_digest,
            "trailers": dict(record.trailers),
            "files": [
                {"path": f.path, "action": f.action.value, "blob": f.blob} for f in record.files
            ],
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _parse_record(data: bytes) -> _Record:
    document = json.loads(data)
    if document.get("format") != _META_FORMAT:
        raise BackendUnavailable(f"change record format {document.get('format')!r} is unknown")
    request = document["request"]
    change = ChangeRequest(
        id=document["id"],
        environment=document["environment"],
        title=document["title"],
        description=document["description"],
        author=document["author"],
        status=ChangeStatus(document["status"]),
        revision=document["revision"],
        head=document["head"],
        base=document["base"],
        created=datetime.fromisoformat(document["created"]),
        updated=datetime.fromisoformat(document["updated"]),
        approvals=tuple(parse_approval(a) for a in document["approvals"]),
        merge_commit=document["merge_commit"],
        applications=tuple(
            ApplicationChange(
                name=a["name"],
                action=ApplicationAction(a["action"]),
                blueprint=a["blueprint"],
                version=a["version"],
            )
            for a in document["applications"]
        ),
    )
    return _Record(
        change=change,
        message=request["message"],
        operation_id=request["operation_id"],
        plan_digest=request["plan_digest"],
        trailers=dict(request["trailers"]),
        files=tuple(
            _StoredFile(f["path"], FileAction(f["action"]), f["blob"]) for f in request["files"]
        ),
    )


# -------------------------------------------------------------------------------------------------
# The provider
# -------------------------------------------------------------------------------------------------


class _Handles(threading.local):
    """Open repositories of one worker thread (libgit2 repositories are not shared between
    threads); bounded, least recently used first out."""

    def __init__(self) -> None:
        self.repositories: OrderedDict[str, pygit2.Repository] = OrderedDict()


class GitCommitter:
    """The ``embedded`` committer provider (see the module docstring for the design).

    :param root: the folder holding ``<org>/<environment>.git`` (created by :meth:`start`).
    :param max_attempts: how many times a write is tried while other writers move the branch.
    :param lock_timeout: seconds a write waits for another writer's lock before giving up; a
        Git reference lock older than this is considered left over from a crash.
    :param fsync: make libgit2 fsync objects and refs (power-loss safety). The switch is
        process-wide in libgit2; ``False`` leaves its default (no fsync) untouched.
    :param committer_name: the Git committer of every commit (authors are the actors).
    :param committer_email: the committer's e-mail address.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_attempts: int = 10,
        lock_timeout: float = 10.0,
        fsync: bool = True,
        committer_name: str = "Catalyst",
        committer_email: str = "catalyst@localhost",
    ) -> None:
        if max_attempts < 1:
            raise InvalidInput(f"max_attempts must be at least 1, got {max_attempts}")
        if lock_timeout <= 0:
            raise InvalidInput(f"lock_timeout must be positive, got {lock_timeout}")
        self.root = root
        self.max_attempts = max_attempts
        self.lock_timeout = lock_timeout
        self.fsync = fsync
        self.committer_name = check_actor(committer_name)
        if "@" not in check_actor(committer_email):
            raise InvalidInput(f"committer_email {committer_email!r} is not an e-mail address")
        self.committer_email = committer_email
        self._started = False
        self._locks: dict[str, anyio.Lock] = {}
        self._handles = _Handles()
        self._trees = TreeCache()

    def __repr__(self) -> str:
        return f"GitCommitter({str(self.root)!r})"

    # ---------------------------------------------------------------------------------------------
    # Service
    # ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        def prepare() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if self.fsync:
                pygit2.settings.enable_fsync_gitdir(True)

        try:
            await anyio.to_thread.run_sync(prepare)
        except OSError as exc:
            raise BackendUnavailable(f"embedded committer: cannot use {self.root}: {exc}") from None
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def check(self) -> Readiness:
        if not self._started:
            return Readiness.unavailable("embedded committer is not started (or was closed)")
        if not os.access(self.root, os.W_OK | os.X_OK):
            return Readiness.unavailable(f"embedded committer: {self.root} is not writable")
        return Readiness.ok()

    # ---------------------------------------------------------------------------------------------
    # Plumbing
    # ---------------------------------------------------------------------------------------------

    def _gitdir(self, environment: str) -> Path:
        organization, _ = split_environment_name(environment)
        return self.root / organization / f"{environment}.git"

    async def _run(self, work: Callable[[], T]) -> T:
        if not self._started:
            raise BackendUnavailable("embedded committer is not started (or was closed)")

        def translated() -> T:
            try:
                return work()
            except CatalystError:
                raise
            except (pygit2.GitError, OSError, ValueError) as exc:
                raise BackendUnavailable(f"embedded committer: {exc}") from None
            except KeyError as exc:  # pygit2's "no such object": the repository is damaged
                raise BackendUnavailable(f"embedded committer: missing object {exc}") from None

        return await anyio.to_thread.run_sync(translated)

    async def _write(self, environment: str, work: Callable[[], T]) -> T:
        lock = self._locks.setdefault(environment, anyio.Lock())
        async with lock:
            return await self._run(work)

    def _open(self, environment: str) -> tuple[pygit2.Repository, Path]:
        gitdir = self._gitdir(environment)
        key = str(gitdir)
        cache = self._handles.repositories
        repo = cache.get(key)
        if repo is not None:
            cache.move_to_end(key)
            return repo, gitdir
        if not (gitdir / "HEAD").is_file():
            raise NotFound(f"Environment {environment} has no repository", field="environment")
        repo = pygit2.Repository(key)
        cache[key] = repo
        if len(cache) > _OPEN_REPOSITORIES_PER_THREAD:
            cache.popitem(last=False)
        return repo, gitdir

    def _signature(self, name: str) -> pygit2.Signature:
        return author_signature(name, self.committer_email)

    def _committer(self) -> pygit2.Signature:
        return committer_signature(self.committer_name, self.committer_email)

    def _transact(
        self,
        environment: str,
        build: Callable[[pygit2.Repository], _Plan[T]],
        *,
        retry: bool = True,
    ) -> T:
        """Run ``build`` and swap its refs, retrying on a moved ref (see the module docstring)."""
        repo, gitdir = self._open(environment)
        attempts = self.max_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            # The last attempt builds under the writer lock, so no Catalyst writer can beat it.
            pessimistic = retry and attempt == attempts
            with _writer_lock(gitdir, self.lock_timeout) if pessimistic else _nothing():
                plan = build(repo)
                with _nothing() if pessimistic else _writer_lock(gitdir, self.lock_timeout):
                    swapped = _compare_and_swap(repo, gitdir, plan.updates, self.lock_timeout)
            if swapped:
                return plan.outcome()
            if not retry:
                raise Conflict(
                    f"{environment}: {DEFAULT_BRANCH} moved while the commit was being made",
                    field="expected_head",
                )
            log.debug("%s: another writer moved a ref; retrying (attempt %d)", environment, attempt)
            time.sleep(random.uniform(0, 0.002 * attempt))
        raise Conflict(
            f"{environment}: gave up after {attempts} attempts because the repository kept "
            "changing under the commit (a writer outside Catalyst?)"
        )

    def _head(self, repo: pygit2.Repository) -> pygit2.Commit | None:
        oid = _current(repo, MAIN_REF)
        return repo[oid].peel(pygit2.Commit) if oid is not None else None

    def _resolve(self, repo: pygit2.Repository, environment: str, ref: str | None) -> pygit2.Commit:
        if ref is None:
            head = self._head(repo)
            if head is None:
                raise NotFound(f"Environment {environment} has no {DEFAULT_BRANCH} branch")
            return head
        if not isinstance(ref, str) or not ref or ref.startswith("-"):
            raise InvalidInput(f"ref {ref!r} is not a revision", field="ref")
        try:
            return repo.revparse_single(ref).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            raise NotFound(
                f"{ref!r} is not a commit of the {environment} repository", field="ref"
            ) from None

    def _make_commit(
        self,
        repo: pygit2.Repository,
        parent: pygit2.Commit | None,
        tree: pygit2.Oid,
        message: str,
        author: str,
    ) -> pygit2.Commit:
        return make_commit(repo, parent, tree, message, self._signature(author), self._committer())

    # ---------------------------------------------------------------------------------------------
    # Repositories and commits
    # ---------------------------------------------------------------------------------------------

    async def create_repository(
        self, environment: Environment, initial: CommitRequest
    ) -> CommitInfo:
        message = check_initial_commit(environment, initial)
        actor = initial.actor
        edit = plan_edits(initial.files)
        gitdir = self._gitdir(environment.name)

        def create() -> CommitInfo:
            if gitdir.exists():
                raise Conflict(f"Environment {environment.name} already has a repository")
            staging = self.root / ".staging" / f"{environment.name}-{uuid.uuid4().hex}.git"
            staging.parent.mkdir(parents=True, exist_ok=True)
            try:
                repo = pygit2.init_repository(str(staging), bare=True, initial_head=DEFAULT_BRANCH)
                commit = self._make_commit(
                    repo, None, apply_edits(repo, None, edit, self._trees), message, actor
                )
                repo.references.create(MAIN_REF, commit.id)
                info = commit_info(commit)
                gitdir.parent.mkdir(parents=True, exist_ok=True)
                try:
                    # Atomic: the repository appears complete or not at all; rename(2) refuses
                    # a non-empty target, so of two concurrent creators exactly one wins.
                    os.rename(staging, gitdir)
                except OSError:
                    if gitdir.exists():
                        raise Conflict(
                            f"Environment {environment.name} already has a repository"
                        ) from None
                    raise
                if self.fsync:
                    _fsync_directory(gitdir.parent)
                return info
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)

        return await self._write(environment.name, create)

    async def repository_exists(self, environment: str) -> bool:
        gitdir = self._gitdir(check_environment_name(environment))
        return await self._run(lambda: (gitdir / "HEAD").is_file())

    async def read_file(self, environment: str, path: str, ref: str | None = None) -> bytes | None:
        check_environment_name(environment)
        check_repository_path(path)

        def read() -> bytes | None:
            repo, _ = self._open(environment)
            return file_data(self._resolve(repo, environment, ref).tree, path)

        return await self._run(read)

    async def list_files(
        self, environment: str, prefix: str = "", ref: str | None = None
    ) -> Sequence[str]:
        check_list_query(environment, prefix)

        def listing() -> list[str]:
            repo, _ = self._open(environment)
            return list_paths(self._resolve(repo, environment, ref).tree, prefix)

        return await self._run(listing)

    async def commit(self, request: CommitRequest) -> CommitInfo:
        message = check_commit_request(request)
        environment = request.environment
        actor = request.actor
        edit = plan_edits(request.files)
        expected = request.expected_head

        def build(repo: pygit2.Repository) -> _Plan[CommitInfo]:
            head = self._head(repo)
            if expected is not None and (head is None or str(head.id) != expected):
                raise Conflict(
                    f"{environment}: {DEFAULT_BRANCH} is at {head.id if head else 'nothing'}, "
                    f"not at the expected {expected}",
                    field="expected_head",
                )
            commit = self._make_commit(
                repo, head, apply_edits(repo, head, edit, self._trees), message, actor
            )
            update = _RefUpdate(MAIN_REF, head.id if head else None, commit.id)
            return _Plan((update,), _returning(commit_info(commit)))

        return await self._write(
            environment, lambda: self._transact(environment, build, retry=expected is None)
        )

    async def log(
        self, environment: str, path: str | None = None, limit: int = 50
    ) -> Sequence[CommitInfo]:
        check_log_query(environment, path, limit)

        def history() -> list[CommitInfo]:
            repo, _ = self._open(environment)
            return path_history(repo, self._head(repo), path, limit)

        return await self._run(history)

    # ---------------------------------------------------------------------------------------------
    # Change requests
    # ---------------------------------------------------------------------------------------------

    def _load(
        self, repo: pygit2.Repository, environment: str, change_id: str
    ) -> tuple[_Record, pygit2.Oid]:
        meta = _current(repo, _CHANGE_META.format(id=change_id))
        if meta is None:
            raise NotFound(f"{environment} has no change request {change_id}", field="change_id")
        commit = repo[meta].peel(pygit2.Commit)
        blob = commit.tree[_META_FILE]
        if not isinstance(blob, pygit2.Blob):
            raise BackendUnavailable(f"change {change_id}: {_META_FILE} is not a file")
        try:
            return _parse_record(blob.data), meta
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendUnavailable(
                f"embedded committer: the record of change {change_id} in {environment} is "
                f"damaged ({exc})"
            ) from None

    def _record_commit(
        self,
        repo: pygit2.Repository,
        record: _Record,
        previous: pygit2.Oid | None,
        step: str,
        actor: str,
    ) -> pygit2.Oid:
        builder = repo.TreeBuilder()
        builder.insert(_META_FILE, repo.create_blob(_record_json(record)), pygit2.GIT_FILEMODE_BLOB)
        change = record.change
        message = compose_message(
            f"Change {change.id} {step} (revision {change.revision})",
            [(ACTOR_TRAILER, actor), (CHANGE_TRAILER, change.id)],
        )
        parents = [previous] if previous is not None else []
        return repo.create_commit(
            None, self._signature(actor), self._committer(), message, builder.write(), parents
        )

    def _landed(self, repo: pygit2.Repository, record: _Record) -> pygit2.Commit | None:
        """The commit on main that merged the record's current revision, if an interrupted
        merge left one (see the module docstring)."""
        change = record.change
        head = _current(repo, MAIN_REF)
        if head is None or change.status is not ChangeStatus.OPEN:
            return None
        walker = repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
        with contextlib.suppress(KeyError, ValueError, pygit2.GitError):
            walker.hide(pygit2.Oid(hex=change.base))
        wanted = {CHANGE_TRAILER: change.id, CHANGE_REVISION_TRAILER: str(change.revision)}
        for count, commit in enumerate(walker):
            if count >= _MERGE_SEARCH_LIMIT:
                break
            _, trailers = split_trailers(commit.message)
            if all(trailers.get(key) == value for key, value in wanted.items()):
                return commit
        return None

    def _proposal(
        self,
        repo: pygit2.Repository,
        request: CommitRequest,
        change_id: str,
        revision: int,
        edit: Edit,
    ) -> tuple[pygit2.Commit, pygit2.Commit | None, tuple[_StoredFile, ...]]:
        """The change's head commit for ``revision``: ``request`` applied to main now."""
        base = self._head(repo)
        tree = apply_proposal(repo, base, edit, self._trees)
        trailers = [
            *request_trailers(request, request.actor),
            (CHANGE_TRAILER, change_id),
            (CHANGE_REVISION_TRAILER, str(revision)),
        ]
        message = compose_message(request.message, trailers)
        head = self._make_commit(repo, base, tree, message, request.actor)
        stored = []
        for change in request.files:
            blob = None if change.action is FileAction.DELETE else str(head.tree[change.path].id)
            stored.append(_StoredFile(change.path, change.action, blob))
        return head, base, tuple(stored)

    def _next_change_id(self, repo: pygit2.Repository) -> str:
        # Both namespaces count, so the head refs of an open that died before its record was
        # written are never reused.
        highest = 0
        for name in repo.listall_references():
            for prefix in (_CHANGE_META_PREFIX, _CHANGES_PREFIX):
                if name.startswith(prefix):
                    number = name[len(prefix) :].split("/", 1)[0]
                    if number.isdigit():
                        highest = max(highest, int(number))
        return str(highest + 1)

    async def open_change(self, request: CommitRequest, title: str) -> ChangeRequest:
        check_change_request(request)
        environment = request.environment
        title = check_title(title)
        edit = plan_edits(request.files)

        def build(repo: pygit2.Repository) -> _Plan[ChangeRequest]:
            change_id = self._next_change_id(repo)
            head, base, files = self._proposal(repo, request, change_id, 1, edit)
            now = datetime.now(UTC)
            change = ChangeRequest(
                id=change_id,
                environment=environment,
                title=title,
                author=request.actor,
                status=ChangeStatus.OPEN,
                revision=1,
                head=str(head.id),
                base=str(base.id) if base is not None else "",
                created=now,
                updated=now,
                description=request.message.strip(),
                applications=request.applications,
            )
            record = _Record(
                change, request.message, request.operation_id, request.plan_digest,
                dict(request.trailers), files,
            )  # fmt: skip
            meta = self._record_commit(repo, record, None, "opened", request.actor)
            updates = (
                _RefUpdate(_CHANGE_HEAD.format(id=change_id), None, head.id),
                _RefUpdate(_CHANGE_REVISION.format(id=change_id, revision=1), None, head.id),
                _RefUpdate(_CHANGE_META.format(id=change_id), None, meta),
            )
            return _Plan(updates, _returning(change))

        return await self._write(environment, lambda: self._transact(environment, build))

    def _step(
        self,
        environment: str,
        change_id: str,
        actor: str,
        decide: Callable[[pygit2.Repository, _Record], _Decision[T]],
    ) -> Callable[[pygit2.Repository], _Plan[T]]:
        """The build step of a write to an existing change's record.

        ``decide`` gets the current record and returns a :class:`_Decision`, or raises to refuse.
        A record whose merge was interrupted is completed first, and the step is then refused.
        """
        meta_ref = _CHANGE_META.format(id=change_id)

        def build(repo: pygit2.Repository) -> _Plan[T]:
            record, meta = self._load(repo, environment, change_id)
            landed = self._landed(repo, record)
            if landed is not None:
                healed = self._record_commit(repo, _merged(record, landed), meta, "merged", actor)
                error = Conflict(f"change {change_id} was merged as {landed.id}")
                return _Plan((_RefUpdate(meta_ref, meta, healed),), _raising(error))
            decision = decide(repo, record)
            if decision.record is record:
                return _Plan((), _returning(decision.result))
            commit = self._record_commit(repo, decision.record, meta, decision.step, actor)
            # Refs the record names move before the record itself.
            updates = (*decision.refs, _RefUpdate(meta_ref, meta, commit))
            return _Plan(updates, _returning(decision.result))

        return build

    async def update_change(self, change_id: str, request: CommitRequest) -> ChangeRequest:
        check_change_request(request)
        environment = request.environment
        check_change_id(change_id)
        edit = plan_edits(request.files)

        def decide(repo: pygit2.Repository, record: _Record) -> _Decision[ChangeRequest]:
            require_open(record.change)
            revision = record.change.revision + 1
            # The author stays the author; the new head commit names who revised it.
            head, base, files = self._proposal(repo, request, change_id, revision, edit)
            change = attrs.evolve(
                record.change,
                revision=revision,
                head=str(head.id),
                base=str(base.id) if base is not None else "",
                updated=datetime.now(UTC),
                description=request.message.strip(),
                approvals=(),
                applications=request.applications,
            )
            new = _Record(
                change, request.message, request.operation_id, request.plan_digest,
                dict(request.trailers), files,
            )  # fmt: skip
            head_ref = _CHANGE_HEAD.format(id=change_id)
            refs = (
                _RefUpdate(head_ref, _current(repo, head_ref), head.id),
                _RefUpdate(_CHANGE_REVISION.format(id=change_id, revision=revision), None, head.id),
            )
            return _Decision(new, "updated", change, refs)

        build = self._step(environment, change_id, request.actor, decide)
        return await self._write(environment, lambda: self._transact(environment, build))

    async def get_change(self, environment: str, change_id: str) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)

        def get() -> ChangeRequest:
            repo, _ = self._open(environment)
            return self._load(repo, environment, change_id)[0].change

        return await self._run(get)

    async def list_changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        check_environment_name(environment)
        check_status_filter(status)

        def listing() -> list[ChangeRequest]:
            repo, _ = self._open(environment)
            numbers = [
                name[len(_CHANGE_META_PREFIX) :]
                for name in repo.listall_references()
                if name.startswith(_CHANGE_META_PREFIX)
            ]
            ids = sorted((int(n) for n in numbers if n.isdigit()), reverse=True)
            changes = [self._load(repo, environment, str(n))[0].change for n in ids]
            return [c for c in changes if status is None or c.status is status]

        return await self._run(listing)

    async def approve_change(
        self, environment: str, change_id: str, approval: Approval
    ) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)
        check_approval(approval)

        def decide(_repo: pygit2.Repository, record: _Record) -> _Decision[ChangeRequest]:
            change = record.change
            require_open(change)
            check_approval_revision(change_id, change, approval)
            # One approval per approver and revision: approving again refreshes it.
            others = (a for a in change.approvals if a.approver != approval.approver)
            approvals = tuple(sorted((*others, approval), key=lambda a: a.approver))
            updated = attrs.evolve(change, approvals=approvals, updated=datetime.now(UTC))
            return _Decision(attrs.evolve(record, change=updated), "approved", updated)

        build = self._step(environment, change_id, approval.approver, decide)
        return await self._write(environment, lambda: self._transact(environment, build))

    async def merge_change(
        self, environment: str, change_id: str, actor: str, *, revision: int | None = None
    ) -> CommitInfo:
        check_environment_name(environment)
        check_change_id(change_id)
        check_actor(actor)
        meta_ref = _CHANGE_META.format(id=change_id)

        def build(repo: pygit2.Repository) -> _Plan[CommitInfo]:
            record, meta = self._load(repo, environment, change_id)
            landed = self._landed(repo, record)
            if landed is not None:  # an interrupted merge: complete its record
                healed = self._record_commit(repo, _merged(record, landed), meta, "merged", actor)
                return _Plan((_RefUpdate(meta_ref, meta, healed),), _returning(commit_info(landed)))
            change = record.change
            require_open(change)
            check_evaluated_revision(change_id, change, revision)
            head = self._head(repo)
            changes = [
                FileChange(
                    stored.path,
                    stored.action,
                    None if stored.blob is None else _blob_text(repo, stored.blob),
                )
                for stored in record.files
            ]
            try:
                tree = apply_edits(repo, head, plan_edits(changes), self._trees)
            except Conflict as exc:
                raise Conflict(
                    f"change {change_id} does not apply to {DEFAULT_BRANCH} any more: {exc.message}"
                ) from None
            message = merge_message(
                record.message,
                record.trailers,
                actor=actor,
                operation_id=record.operation_id,
                plan_digest=record.plan_digest,
                change_id=change_id,
                revision=change.revision,
            )
            # The change's author authors the commit; Catalyst-Actor names who merged it.
            merged = self._make_commit(repo, head, tree, message, change.author)
            stored = self._record_commit(repo, _merged(record, merged), meta, "merged", actor)
            updates = (
                _RefUpdate(MAIN_REF, head.id if head else None, merged.id),
                _RefUpdate(meta_ref, meta, stored),
            )
            return _Plan(updates, _returning(commit_info(merged)))

        return await self._write(environment, lambda: self._transact(environment, build))

    async def close_change(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)
        check_actor(actor)

        def decide(_repo: pygit2.Repository, record: _Record) -> _Decision[ChangeRequest]:
            change = record.change
            if change.status is ChangeStatus.CLOSED:
                return _Decision(record, "closed", change)  # closing twice changes nothing
            require_open(change)
            closed = attrs.evolve(change, status=ChangeStatus.CLOSED, updated=datetime.now(UTC))
            return _Decision(attrs.evolve(record, change=closed), "closed", closed)

        build = self._step(environment, change_id, actor, decide)
        return await self._write(environment, lambda: self._transact(environment, build))


# -------------------------------------------------------------------------------------------------
# Small helpers
# -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _merged(record: _Record, commit: pygit2.Commit) -> _Record:
    change = attrs.evolve(
        record.change,
        status=ChangeStatus.MERGED,
        merge_commit=str(commit.id),
        updated=datetime.now(UTC),
    )
    return attrs.evolve(record, change=change)


def _blob_text(repo: pygit2.Repository, sha: str) -> str:
    blob = repo[pygit2.Oid(hex=sha)]
    if not isinstance(blob, pygit2.Blob):
        raise BackendUnavailable(f"object {sha} of a change record is not a blob")
    return blob.data.decode()
