"""The ``gitea`` committer: Environment repositories on Gitea, change requests as pull requests.

Repositories
    One Gitea Organization per Catalyst Organization and one repository ``{org}/{org}-{env_type}``
    per Environment (private by default), created with the Environment. A repository Gitea
    reports as *empty* was left by a creation that died before its first push: creating the
    Environment again completes it. With ``webhook_url`` set, the repository gets Catalyst's
    webhook (pushes, pull requests, reviews) before its first commit.

Commits
    Built with pygit2 in a local bare mirror (:mod:`catalyst_gitea.transport`), with the embedded
    committer's tree editing and trailers (:mod:`catalyst_kernel.provisioning.gittree`,
    :mod:`catalyst_kernel.provisioning.gitformat`), and pushed to ``main`` over HTTP(S) with the
    token. The push is a compare-and-swap (Git's receive-pack updates the branch only from the
    value it advertised): when the branch moved — a merge in Gitea, another Catalyst process —
    the mirror is fetched, the same file changes are applied to the new head, and the push is
    tried again, up to ``push_attempts`` times. With ``expected_head`` a moved head is a
    ``Conflict`` at once. A failed operation moves no branch on Gitea.

Change requests
    A pull request from its own branch (``catalyst/change-<hex>``) into ``main``; the change id is
    the pull request's number. Its body ends with a hidden record (:mod:`catalyst_gitea.records`):
    author, revision, the head and base of that revision, and what merging needs. A new revision
    force-pushes the branch (the file changes applied to ``main`` now) and rewrites the record.
    Approvals are pull-request reviews posted by Catalyst on behalf of the approver, whose body
    records approver, teams, revision, head commit and any break-glass reason and expiry; an
    approval counts for that revision and head only. Gitea refuses a review that approves a pull
    request by its own author (Catalyst's user opened it), so with ``reviewer_token`` they are
    ``APPROVED`` reviews of a second user, else ``COMMENT`` reviews. A push to the branch outside
    Catalyst makes a new, unrecorded revision: its approvals are gone.

Merging
    The caller has checked the policy (:class:`~catalyst_kernel.promotion.changes.ChangeDesk`).
    The merge is Gitea's squash merge through the API, pinned to the evaluated head
    (``head_commit_id``), with Catalyst's message and trailers (``Catalyst-Actor`` is who merged);
    so ``main`` gets one commit on top of its current head. Conflicts are found first in the mirror
    with a three-way merge, so the error names the paths and nothing changes. Just before merging,
    the policy status (``catalyst/environment-policy``) of the head is set to ``success``: Gitea
    enforces it as a required check on protected branches.

Branch protection and policy status
    After a commit that changes ``policies/environment-policy.yaml``, the default branch's
    protection follows the policy: while it has a ``pr-required`` rule, ``main`` is protected —
    only Catalyst's user may push, and the policy status is a required check, so a merge in
    Gitea's own UI obeys the policy — and it is unprotected otherwise. :meth:`publish_verdict`
    sets the status from a verdict (success; pending while waiting for time; failure).

Errors translate into the kernel's hierarchy (:mod:`catalyst_gitea.errors`); no message holds the
token.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import anyio
import anyio.to_thread
import attrs
import pygit2

from catalyst_gitea.api import GiteaApi, Json, message_of
from catalyst_gitea.errors import GiteaUnreachable
from catalyst_gitea.policy import PolicyGate
from catalyst_gitea.records import (
    ApprovalRecord,
    ChangeRecord,
    approval_body,
    change_body,
    read_approval,
    read_change,
    record_key,
)
from catalyst_gitea.transport import MovedHead, RefPush, Transport, branch_ref, configure_libgit2
from catalyst_kernel.errors import (
    BackendUnavailable,
    CatalystError,
    Conflict,
    InvalidInput,
    NotFound,
)
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import check_environment_name, split_environment_name
from catalyst_kernel.model.plan import check_repository_path
from catalyst_kernel.provisioning.committer import (
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitInfo,
    CommitRequest,
)
from catalyst_kernel.provisioning.environments import POLICY_PATH
from catalyst_kernel.provisioning.gitcommits import (
    author_signature,
    commit_info,
    committer_signature,
    make_commit,
    path_history,
)
from catalyst_kernel.provisioning.gitformat import (
    DEFAULT_BRANCH,
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
    merge_message,
    request_trailers,
    require_open,
)
from catalyst_kernel.provisioning.gittree import (
    Edit,
    TreeCache,
    apply_edits,
    apply_proposal,
    entry_id,
    file_data,
    list_paths,
    plan_edits,
)

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from catalyst_gitea.settings import GiteaSettings
    from catalyst_kernel.model.tenancy import Environment
    from catalyst_kernel.promotion.evaluation import Verdict

__all__ = ["CHANGE_BRANCH_PREFIX", "WEBHOOK_EVENTS", "GiteaCommitter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANGE_BRANCH_PREFIX: Final = "catalyst/change-"
WEBHOOK_EVENTS: Final = ("push", "pull_request", "pull_request_sync", "pull_request_review")
_REVIEW_CONCURRENCY: Final = 8
_MERGE_POLL: Final = 0.25
_AWAITING: Final = "waiting for the policy verdict"


@attrs.define
class _Mirror:
    """A mirror's lock (fetches, pushes and local ref updates) and when its last fetch began."""

    lock: anyio.Lock = attrs.Factory(anyio.Lock)
    fetched_at: float = -1.0


def _read_secret(value: str | None, path: Path | None, name: str) -> str | None:
    if value is not None:
        return value
    if path is None:
        return None
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise InvalidInput(f"plugins.gitea.{name}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise InvalidInput(f"plugins.gitea.{name}: {path} is empty", field=name)
    return text


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise GiteaUnreachable(f"gitea sent no {what}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise GiteaUnreachable(f"gitea sent an unreadable {what}: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _login_of(document: Any) -> str | None:
    if isinstance(document, Mapping) and isinstance(document.get("login"), str):
        return cast(str, document["login"])
    return None


def _check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not ref or ref.startswith("-") or "\x00" in ref:
        raise InvalidInput(f"ref {ref!r} is not a revision", field="ref")
    return ref


class GiteaCommitter:
    """The ``gitea`` committer provider (see the module docstring for the design).

    :param settings: the plugin's settings.
    :param data_dir: the plugin's data directory (mirrors live under ``mirrors/`` unless
        ``mirror_dir`` says otherwise).
    :param http_transport: an httpx transport for the API instead of the network (tests).
    """

    def __init__(
        self,
        settings: GiteaSettings,
        *,
        data_dir: Path,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.mirror_root = settings.mirror_dir or data_dir / "mirrors"
        self._http_transport = http_transport
        self._api: GiteaApi | None = None
        self._reviewer: GiteaApi | None = None
        self._token: str | None = None
        self._record_key: bytes | None = None
        self._login: str | None = None
        self._reviewer_login: str | None = None
        self._git: Transport | None = None
        self._locks: dict[str, anyio.Lock] = {}
        self._mirrors: dict[str, _Mirror] = {}
        self._identity_lock = anyio.Lock()
        self._trees = TreeCache()
        self._started = False
        self.policy = PolicyGate(self)
        """Policy statuses and branch protection (:class:`~catalyst_gitea.policy.PolicyGate`)."""

    def __repr__(self) -> str:
        return f"GiteaCommitter({self.settings.url!r})"

    # ---------------------------------------------------------------------------------------------
    # Service
    # ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the API clients. Gitea need not be up: :meth:`check` reports it until it is."""
        if self._started:
            return
        settings = self.settings
        settings.base_url  # noqa: B018 - raises InvalidInput when no URL is configured
        token = _read_secret(settings.token, settings.token_file, "token")
        if token is None:
            raise InvalidInput("plugins.gitea.token (or token_file) is not set", field="token")
        reviewer = _read_secret(
            settings.reviewer_token, settings.reviewer_token_file, "reviewer_token"
        )
        self._token = token
        self._record_key = record_key(token)
        self._api = GiteaApi(settings, token, transport=self._http_transport)
        await self._api.start()
        if reviewer is not None:
            self._reviewer = GiteaApi(settings, reviewer, transport=self._http_transport)
            await self._reviewer.start()
        await anyio.to_thread.run_sync(configure_libgit2, settings)
        await anyio.to_thread.run_sync(lambda: self.mirror_root.mkdir(parents=True, exist_ok=True))
        self._started = True

    async def close(self) -> None:
        self._started = False
        for api in (self._api, self._reviewer):
            if api is not None:
                await api.close()
        self._api = self._reviewer = None

    async def check(self) -> Readiness:
        """Ready when Gitea answers and accepts the token(s)."""
        if not self._started or self._api is None:
            return Readiness.unavailable("gitea committer is not started (or was closed)")
        try:
            await self.identity(refresh=True)
        except CatalystError as exc:
            return Readiness.unavailable(f"unavailable: {exc}")
        return Readiness.ok()

    async def identity(self, *, refresh: bool = False) -> str:
        """Catalyst's Gitea login (and the reviewer's), asked once."""
        if self._login is not None and not refresh:
            return self._login
        # A readiness check asks once: /readyz must answer within its own deadline.
        retries = 0 if refresh else None
        async with self._identity_lock:
            api = self.api
            user = await api.object(
                "GET", "/user", what="look up Catalyst's Gitea user", retries=retries
            )
            login = _login_of(user)
            if login is None:
                raise GiteaUnreachable("gitea did not say who Catalyst's user is (GET /user)")
            if self._reviewer is not None:
                reviewer = await self._reviewer.object(
                    "GET",
                    "/user",
                    what="look up the reviewer user (reviewer_token)",
                    retries=retries,
                )
                self._reviewer_login = _login_of(reviewer)
                if self._reviewer_login == login:
                    raise InvalidInput(
                        "plugins.gitea.reviewer_token belongs to Catalyst's own user; it must be "
                        "another user's (Gitea refuses approvals by a pull request's author)",
                        field="reviewer_token",
                    )
            self._login = login
            if self._git is None:
                assert self._token is not None
                self._git = Transport(self.settings, self.mirror_root, login, self._token)
            return login

    @property
    def login(self) -> str | None:
        """Catalyst's Gitea login, once known."""
        return self._login

    @property
    def api(self) -> GiteaApi:
        """The REST client. :raises GiteaUnreachable: not started."""
        if not self._started or self._api is None:
            raise GiteaUnreachable("the gitea committer is not started (or was closed)")
        return self._api

    async def _transport(self) -> Transport:
        await self.identity()
        assert self._git is not None
        return self._git

    # ---------------------------------------------------------------------------------------------
    # Plumbing
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def repository_path(environment: str) -> str:
        """The API path of the Environment's repository (``/repos/<org>/<environment>``)."""
        organization, _ = split_environment_name(environment)
        return f"/repos/{organization}/{environment}"

    async def _run(self, work: Callable[[], T]) -> T:
        def translated() -> T:
            try:
                return work()
            except (CatalystError, MovedHead):
                raise
            except (pygit2.GitError, OSError, ValueError) as exc:
                raise BackendUnavailable(f"gitea committer: local mirror: {exc}") from None
            except KeyError as exc:
                raise BackendUnavailable(f"gitea committer: missing object {exc}") from None

        return await anyio.to_thread.run_sync(translated)

    def _lock(self, environment: str) -> anyio.Lock:
        return self._locks.setdefault(environment, anyio.Lock())

    def _mirror(self, environment: str) -> _Mirror:
        return self._mirrors.setdefault(environment, _Mirror())

    async def _with_mirror(
        self, environment: str, work: Callable[[pygit2.Repository], T], *, exclusive: bool = True
    ) -> T:
        """Run ``work`` on the Environment's mirror in a worker thread (holding its lock)."""
        git = await self._transport()
        organization, _ = split_environment_name(environment)

        def run() -> T:
            return work(git.open(organization, environment))

        if not exclusive:
            return await self._run(run)
        async with self._mirror(environment).lock:
            return await self._run(run)

    async def _fetch(self, environment: str) -> None:
        """Bring the mirror up to date: a fetch that began after this call (a concurrent one
        that began later is shared; see the module docstring of the transport)."""
        git = await self._transport()
        organization, _ = split_environment_name(environment)
        mirror = self._mirror(environment)
        asked = time.monotonic()
        async with mirror.lock:
            if mirror.fetched_at >= asked:
                return
            began = time.monotonic()
            await self._run(lambda: git.fetch(git.open(organization, environment), environment))
            mirror.fetched_at = began

    @staticmethod
    def _head(repo: pygit2.Repository, branch: str = DEFAULT_BRANCH) -> pygit2.Commit | None:
        reference = repo.references.get(branch_ref(branch))
        if reference is None:
            return None
        return repo[reference.target].peel(pygit2.Commit)

    def _make_commit(
        self,
        repo: pygit2.Repository,
        parent: pygit2.Commit | None,
        tree: pygit2.Oid,
        message: str,
        author: str,
    ) -> pygit2.Commit:
        settings = self.settings
        committer = committer_signature(settings.committer_name, settings.committer_email)
        signature = author_signature(author, settings.committer_email)
        return make_commit(repo, parent, tree, message, signature, committer)

    async def _push_on(
        self,
        environment: str,
        build: Callable[[pygit2.Repository, pygit2.Commit | None], pygit2.Commit],
        *,
        branch: str = DEFAULT_BRANCH,
        expected: str | None = None,
        fetch_first: bool = False,
        force: bool = False,
    ) -> pygit2.Commit:
        """Build a commit on ``main``'s head and push it to ``branch``, rebuilding on a moved
        head (see the module docstring). ``build`` gets the mirror and the head."""
        git = await self._transport()
        attempts = 1 if expected is not None else self.settings.push_attempts
        mirror = self._mirror(environment)
        for attempt in range(1, attempts + 1):
            # Optimistic: build on the mirror's head; a moved branch refuses the push.
            if fetch_first or expected is not None or attempt > 1 or mirror.fetched_at < 0:
                await self._fetch(environment)

            def build_and_push(repo: pygit2.Repository) -> pygit2.Commit:
                head = self._head(repo)
                if head is None and not (branch == DEFAULT_BRANCH and expected is None):
                    raise NotFound(f"Environment {environment} has no {DEFAULT_BRANCH} branch")
                if expected is not None and (head is None or str(head.id) != expected):
                    raise Conflict(
                        f"{environment}: {DEFAULT_BRANCH} is at "
                        f"{head.id if head else 'nothing'}, not at the expected {expected}",
                        field="expected_head",
                    )
                commit = build(repo, head)
                git.push(repo, environment, [RefPush(commit.id, branch, force)])
                return commit

            try:
                return await self._with_mirror(environment, build_and_push)
            except MovedHead as exc:
                if expected is not None:
                    raise Conflict(
                        f"{environment}: {DEFAULT_BRANCH} moved while the commit was being made",
                        field="expected_head",
                    ) from None
                log.debug(
                    "%s: %s moved (%s); rebuilding (attempt %d)", environment, branch, exc, attempt
                )
                await anyio.sleep(random.uniform(0, 0.05 * attempt))
        raise Conflict(
            f"{environment}: gave up after {attempts} attempts because {DEFAULT_BRANCH} kept "
            "changing under the commit"
        )

    # ---------------------------------------------------------------------------------------------
    # Repositories and commits
    # ---------------------------------------------------------------------------------------------

    async def _ensure_organization(self, organization: str) -> None:
        api = self.api
        what = f"look up Organization {organization}"
        found = await api.request("GET", f"/orgs/{organization}", what=what, ok=(200, 404))
        if found.status_code == 200:
            return
        created = await api.request(
            "POST",
            "/orgs",
            what=f"create Organization {organization}",
            json={
                "username": organization,
                "visibility": self.settings.organization_visibility,
                "description": f"Catalyst Organization {organization}",
            },
            ok=(201, 422),
        )
        if created.status_code == 201:
            return
        again = await api.request("GET", f"/orgs/{organization}", what=what, ok=(200, 404))
        if again.status_code != 200:
            raise Conflict(
                f"gitea refused to create Organization {organization} ({message_of(created)}); "
                "is the name taken by a Gitea user?"
            )

    async def _repository_state(self, environment: str) -> Json | None:
        response = await self.api.request(
            "GET",
            self.repository_path(environment),
            what=f"look up the repository of {environment}",
            ok=(200, 404),
        )
        if response.status_code == 404:
            return None
        body = response.json()
        if not isinstance(body, dict):
            raise GiteaUnreachable("gitea sent something else than a repository")
        return body

    async def _ensure_repository(self, environment: Environment) -> None:
        name = environment.name
        state = await self._repository_state(name)
        if state is None:
            created = await self.api.request(
                "POST",
                f"/orgs/{environment.organization}/repos",
                what=f"create the repository of {name}",
                json={
                    "name": name,
                    "private": self.settings.private_repositories,
                    "default_branch": DEFAULT_BRANCH,
                    "auto_init": False,
                    "description": f"Catalyst Environment {name}",
                },
                ok=(201, 409),
            )
            if created.status_code == 201:
                return
            state = await self._repository_state(name)
        if state is not None and not state.get("empty", False):
            raise Conflict(f"Environment {name} already has a repository")

    async def _ensure_reviewer(self, environment: str) -> None:
        """Give the reviewer user write access to the repository (to review its pull
        requests); Catalyst's user owns the Organization, the reviewer does not."""
        if self._reviewer is None:
            return
        await self.identity()
        await self.api.request(
            "PUT",
            f"{self.repository_path(environment)}/collaborators/{self._reviewer_login}",
            what=f"let the reviewer user review the pull requests of {environment}",
            json={"permission": "write"},
            ok=(204,),
        )

    async def _ensure_webhook(self, environment: str) -> None:
        settings = self.settings
        if settings.webhook_url is None or settings.webhook_secret is None:
            return
        api = self.api
        path = f"{self.repository_path(environment)}/hooks"
        hooks = await api.pages(path, what=f"list the webhooks of {environment}")
        for hook in hooks:
            config = hook.get("config")
            if isinstance(config, Mapping) and config.get("url") == settings.webhook_url:
                return
        await api.request(
            "POST",
            path,
            what=f"add Catalyst's webhook to {environment}",
            json={
                "type": "gitea",
                "active": True,
                "branch_filter": "*",
                "events": list(WEBHOOK_EVENTS),
                "config": {
                    "url": settings.webhook_url,
                    "content_type": "json",
                    "secret": settings.webhook_secret,
                },
            },
            ok=(201,),
        )

    async def create_repository(
        self, environment: Environment, initial: CommitRequest
    ) -> CommitInfo:
        message = check_initial_commit(environment, initial)
        actor = initial.actor
        edit = plan_edits(initial.files)
        name = environment.name
        async with self._lock(name):
            await self._ensure_organization(environment.organization)
            await self._ensure_repository(environment)
            await self._ensure_reviewer(name)
            await self._ensure_webhook(name)

            def build(repo: pygit2.Repository, head: pygit2.Commit | None) -> pygit2.Commit:
                if head is not None:  # another creator pushed first
                    raise Conflict(f"Environment {name} already has a repository")
                tree = apply_edits(repo, None, edit, self._trees)
                return self._make_commit(repo, None, tree, message, actor)

            commit = await self._push_on(name, build, fetch_first=True)
            info = commit_info(commit)
        await self.policy.sync(name)
        return info

    async def repository_exists(self, environment: str) -> bool:
        check_environment_name(environment)
        state = await self._repository_state(environment)
        return state is not None and not state.get("empty", False)

    async def _commit_at(self, environment: str, ref: str | None) -> pygit2.Oid:
        """The commit ``ref`` names (default: ``main``'s head), fetching when needed."""
        if ref is None:
            await self._fetch(environment)

            def head(repo: pygit2.Repository) -> pygit2.Oid:
                commit = self._head(repo)
                if commit is None:
                    raise NotFound(f"Environment {environment} has no {DEFAULT_BRANCH} branch")
                return commit.id

            return await self._with_mirror(environment, head, exclusive=False)
        ref = _check_ref(ref)

        def lookup(repo: pygit2.Repository) -> pygit2.Oid | None:
            for name in (branch_ref(ref), ref):
                try:
                    return repo.revparse_single(name).peel(pygit2.Commit).id
                except (KeyError, ValueError, pygit2.GitError):
                    continue
            return None

        is_sha = re.fullmatch(r"[0-9a-f]{7,40}", ref) is not None
        if is_sha:
            found = await self._with_mirror(environment, lookup, exclusive=False)
            if found is not None:
                return found  # commits are immutable: no fetch needed
        await self._fetch(environment)
        found = await self._with_mirror(environment, lookup, exclusive=False)
        if found is None:
            raise NotFound(f"{ref!r} is not a commit of the {environment} repository", field="ref")
        return found

    async def read_file(self, environment: str, path: str, ref: str | None = None) -> bytes | None:
        check_environment_name(environment)
        check_repository_path(path)
        oid = await self._commit_at(environment, ref)

        def read(repo: pygit2.Repository) -> bytes | None:
            return file_data(repo[oid].peel(pygit2.Commit).tree, path)

        return await self._with_mirror(environment, read, exclusive=False)

    async def list_files(
        self, environment: str, prefix: str = "", ref: str | None = None
    ) -> Sequence[str]:
        check_list_query(environment, prefix)
        oid = await self._commit_at(environment, ref)

        def listing(repo: pygit2.Repository) -> list[str]:
            return list_paths(repo[oid].peel(pygit2.Commit).tree, prefix)

        return await self._with_mirror(environment, listing, exclusive=False)

    async def commit(self, request: CommitRequest) -> CommitInfo:
        message = check_commit_request(request)
        environment = request.environment
        actor = request.actor
        edit = plan_edits(request.files)

        def build(repo: pygit2.Repository, head: pygit2.Commit | None) -> pygit2.Commit:
            tree = apply_edits(repo, head, edit, self._trees)
            return self._make_commit(repo, head, tree, message, actor)

        async with self._lock(environment):
            commit = await self._push_on(environment, build, expected=request.expected_head)
            info = commit_info(commit)
        if any(change.path == POLICY_PATH for change in request.files):
            await self.policy.sync(environment)
        return info

    async def log(
        self, environment: str, path: str | None = None, limit: int = 50
    ) -> Sequence[CommitInfo]:
        check_log_query(environment, path, limit)
        await self._fetch(environment)

        def history(repo: pygit2.Repository) -> list[CommitInfo]:
            return path_history(repo, self._head(repo), path, limit)

        return await self._with_mirror(environment, history, exclusive=False)

    # ---------------------------------------------------------------------------------------------
    # Change requests
    # ---------------------------------------------------------------------------------------------

    def trusted_logins(self) -> frozenset[str]:
        """Gitea users whose records Catalyst believes: its own, and its reviewer."""
        return frozenset(login for login in (self._login, self._reviewer_login) if login)

    def change_of(
        self, environment: str, pull: Json, reviews: Sequence[Json]
    ) -> ChangeRequest | None:
        """The change request a pull request is, or ``None`` when Catalyst did not open it.

        :param pull: the ``PullRequest`` as Gitea returns it.
        :param reviews: its ``PullReview`` s.
        """
        if _login_of(pull.get("user")) != self._login:
            return None
        description, record = read_change(pull.get("body"), key=self._record_key)
        if record is None:
            return None
        head_info = pull.get("head")
        head = head_info.get("sha") if isinstance(head_info, Mapping) else None
        if not isinstance(head, str) or not head:
            raise GiteaUnreachable(f"gitea sent pull request {pull.get('number')} without a head")
        recorded = head == record.head
        revision = record.revision if recorded else record.revision + 1
        if pull.get("merged"):
            status = ChangeStatus.MERGED
        elif pull.get("state") == "closed":
            status = ChangeStatus.CLOSED
        else:
            status = ChangeStatus.OPEN
        trusted = self.trusted_logins()
        approvals: dict[str, Approval] = {}
        for review in sorted(reviews, key=lambda r: int(r.get("id") or 0)):
            if _login_of(review.get("user")) not in trusted or review.get("dismissed"):
                continue
            found = read_approval(review.get("body"), key=self._record_key)
            if found is None:
                continue
            approval = found.approval
            if approval.revision == revision and found.head == head:
                approvals[approval.approver] = approval  # approving again refreshes it
        merge_base = pull.get("merge_base")
        base = record.base if recorded or not isinstance(merge_base, str) else merge_base
        merged = pull.get("merge_commit_sha") if status is ChangeStatus.MERGED else None
        return ChangeRequest(
            id=str(pull["number"]),
            environment=environment,
            title=str(pull.get("title") or ""),
            author=record.author,
            status=status,
            revision=revision,
            head=head,
            base=base,
            created=_time(pull.get("created_at"), "pull request creation time"),
            updated=_time(pull.get("updated_at"), "pull request update time"),
            description=description,
            approvals=tuple(approvals[name] for name in sorted(approvals)),
            merge_commit=merged if isinstance(merged, str) and merged else None,
            applications=record.applications,
        )

    async def _pull(self, environment: str, change_id: str) -> Json:
        response = await self.api.request(
            "GET",
            f"{self.repository_path(environment)}/pulls/{change_id}",
            what=f"read change request {change_id} of {environment}",
            ok=(200, 404),
        )
        if response.status_code == 404:
            raise NotFound(f"{environment} has no change request {change_id}", field="change_id")
        body = response.json()
        if not isinstance(body, dict):
            raise GiteaUnreachable("gitea sent something else than a pull request")
        return body

    async def _reviews(self, environment: str, number: str) -> list[Json]:
        return await self.api.pages(
            f"{self.repository_path(environment)}/pulls/{number}/reviews",
            what=f"list the reviews of change request {number} of {environment}",
        )

    async def _read_change(self, environment: str, change_id: str) -> tuple[ChangeRequest, Json]:
        await self.identity()
        pull = await self._pull(environment, change_id)
        change = self.change_of(environment, pull, await self._reviews(environment, change_id))
        if change is None:
            raise NotFound(
                f"pull request {change_id} of {environment} was not opened through Catalyst",
                field="change_id",
            )
        return change, pull

    def _proposal(
        self, request: CommitRequest, edit: Edit
    ) -> Callable[[pygit2.Repository, pygit2.Commit | None], pygit2.Commit]:
        message = compose_message(request.message, request_trailers(request, request.actor))

        def build(repo: pygit2.Repository, head: pygit2.Commit | None) -> pygit2.Commit:
            tree = apply_proposal(repo, head, edit, self._trees)
            return self._make_commit(repo, head, tree, message, request.actor)

        return build

    def _record(
        self, request: CommitRequest, author: str, revision: int, head: pygit2.Commit
    ) -> ChangeRecord:
        return ChangeRecord(
            author=author,
            revision=revision,
            head=str(head.id),
            base=str(head.parent_ids[0]) if head.parent_ids else "",
            message=request.message,
            operation_id=request.operation_id,
            plan_digest=request.plan_digest,
            trailers=dict(request.trailers),
            applications=request.applications,
        )

    async def open_change(self, request: CommitRequest, title: str) -> ChangeRequest:
        check_change_request(request)
        environment = request.environment
        title = check_title(title)
        edit = plan_edits(request.files)
        branch = f"{CHANGE_BRANCH_PREFIX}{uuid.uuid4().hex[:16]}"
        async with self._lock(environment):
            head = await self._push_on(
                environment, self._proposal(request, edit), branch=branch, fetch_first=True
            )
            record = self._record(request, request.actor, 1, head)
            try:
                pull = await self.api.object(
                    "POST",
                    f"{self.repository_path(environment)}/pulls",
                    what=f"open a pull request on {environment}",
                    json={
                        "title": title.strip(),
                        "head": branch,
                        "base": DEFAULT_BRANCH,
                        "body": change_body(request.message, record, key=self._record_key),
                    },
                    ok=(201,),
                )
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._delete_branches(environment, [branch])
                raise
        number = str(pull.get("number"))
        await self.policy.pending(environment, str(head.id), number, _AWAITING)
        change, _ = await self._read_change(environment, number)
        return change

    async def _delete_branches(self, environment: str, branches: Sequence[str]) -> None:
        git = await self._transport()
        try:
            await self._with_mirror(
                environment, lambda repo: git.delete_branches(repo, environment, branches)
            )
        except (CatalystError, MovedHead) as exc:
            log.warning("%s: could not delete branches %s: %s", environment, branches, exc)

    async def update_change(self, change_id: str, request: CommitRequest) -> ChangeRequest:
        check_change_request(request)
        environment = request.environment
        check_change_id(change_id)
        edit = plan_edits(request.files)
        async with self._lock(environment):
            change, pull = await self._read_change(environment, change_id)
            require_open(change)
            branch = str(pull["head"]["ref"])
            head = await self._push_on(
                environment,
                self._proposal(request, edit),
                branch=branch,
                fetch_first=True,
                force=True,
            )
            record = self._record(request, change.author, change.revision + 1, head)
            await self.api.request(
                "PATCH",
                f"{self.repository_path(environment)}/pulls/{change_id}",
                what=f"record revision {record.revision} of change request {change_id}",
                json={"body": change_body(request.message, record, key=self._record_key)},
                ok=(200, 201),
            )
        await self._dismiss_approvals(environment, change_id, f"revision {record.revision}")
        await self.policy.pending(environment, record.head, change_id, _AWAITING)
        updated, _ = await self._read_change(environment, change_id)
        return updated

    async def _dismiss_approvals(self, environment: str, change_id: str, why: str) -> None:
        """Dismiss the reviewer's ``APPROVED`` reviews in Gitea's UI too (best effort: they no
        longer count for Catalyst either way)."""
        if self._reviewer is None:
            return
        try:
            reviews = await self._reviews(environment, change_id)
            for review in reviews:
                if (
                    review.get("state") == "APPROVED"
                    and not review.get("dismissed")
                    and _login_of(review.get("user")) == self._reviewer_login
                ):
                    await self.api.request(
                        "POST",
                        f"{self.repository_path(environment)}/pulls/{change_id}/reviews/"
                        f"{review['id']}/dismissals",
                        what=f"dismiss an approval of change request {change_id}",
                        json={"message": f"Superseded by {why}.", "priors": False},
                        ok=(200,),
                    )
        except CatalystError as exc:
            log.warning("%s: approvals of change %s not dismissed: %s", environment, change_id, exc)

    async def get_change(self, environment: str, change_id: str) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)
        change, _ = await self._read_change(environment, change_id)
        return change

    async def list_changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        check_environment_name(environment)
        check_status_filter(status)
        await self.identity()
        state = {None: "all", ChangeStatus.OPEN: "open"}.get(status, "closed")
        pulls = await self.api.pages(
            f"{self.repository_path(environment)}/pulls",
            what=f"list the change requests of {environment}",
            params={"state": state},
        )
        ours = [
            pull
            for pull in pulls
            if _login_of(pull.get("user")) == self._login
            and read_change(pull.get("body"), key=self._record_key)[1]
        ]
        reviews: dict[int, list[Json]] = {}
        limiter = anyio.CapacityLimiter(_REVIEW_CONCURRENCY)

        async def load(number: int) -> None:
            async with limiter:
                reviews[number] = await self._reviews(environment, str(number))

        async with anyio.create_task_group() as group:
            for pull in ours:
                group.start_soon(load, int(pull["number"]))
        changes = [
            change
            for pull in ours
            if (change := self.change_of(environment, pull, reviews[int(pull["number"])]))
            is not None
        ]
        changes = [c for c in changes if status is None or c.status is status]
        return sorted(changes, key=lambda c: int(c.id), reverse=True)

    async def approve_change(
        self, environment: str, change_id: str, approval: Approval
    ) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)
        check_approval(approval)
        change, _ = await self._read_change(environment, change_id)
        require_open(change)
        check_approval_revision(change_id, change, approval)
        api = self._reviewer or self.api
        await api.request(
            "POST",
            f"{self.repository_path(environment)}/pulls/{change_id}/reviews",
            what=f"record {approval.approver}'s approval of change request {change_id}",
            json={
                "body": approval_body(ApprovalRecord(approval, change.head), key=self._record_key),
                "event": "APPROVED" if self._reviewer is not None else "COMMENT",
                "commit_id": change.head,
            },
            ok=(200,),
        )
        approved, _ = await self._read_change(environment, change_id)
        return approved

    def _merge_message(self, change: ChangeRequest, record: ChangeRecord, actor: str) -> str:
        return merge_message(
            record.message,
            record.trailers,
            actor=actor,
            operation_id=record.operation_id,
            plan_digest=record.plan_digest,
            change_id=change.id,
            revision=change.revision,
        )

    @staticmethod
    def _conflicts(repo: pygit2.Repository, head: pygit2.Commit, theirs: str) -> list[str]:
        """Paths a three-way merge of ``theirs`` into ``head`` conflicts on."""
        incoming = repo[pygit2.Oid(hex=theirs)].peel(pygit2.Commit)
        base = repo.merge_base(head.id, incoming.id)
        ancestor = (
            repo[base].peel(pygit2.Commit).tree if base is not None else repo.TreeBuilder().write()
        )
        index = repo.merge_trees(ancestor, head.tree, incoming.tree)
        if index.conflicts is None:
            return []
        paths: set[str] = set()
        for entries in index.conflicts:
            paths.update(entry.path for entry in entries if entry is not None)
        return sorted(paths)

    async def merge_change(
        self, environment: str, change_id: str, actor: str, *, revision: int | None = None
    ) -> CommitInfo:
        check_environment_name(environment)
        check_change_id(change_id)
        check_actor(actor)
        async with self._lock(environment):
            change, pull = await self._read_change(environment, change_id)
            require_open(change)
            # Pushed to (or updated) since the policy evaluated it: the head merged below must
            # be the evaluated one, and Gitea refuses a head that moved after this read.
            check_evaluated_revision(change_id, change, revision)
            _, record = read_change(pull.get("body"), key=self._record_key)
            assert record is not None
            await self._fetch(environment)

            def check(repo: pygit2.Repository) -> list[str]:
                head = self._head(repo)
                if head is None:
                    raise NotFound(f"Environment {environment} has no {DEFAULT_BRANCH} branch")
                return self._conflicts(repo, head, change.head)

            conflicts = await self._with_mirror(environment, check, exclusive=False)
            if conflicts:
                raise Conflict(
                    f"change {change_id} does not apply to {DEFAULT_BRANCH} any more: "
                    f"{', '.join(conflicts)} changed on both sides"
                )
            message = self._merge_message(change, record, actor)
            title, _, rest = message.rstrip().partition("\n\n")
            await self.policy.status(
                environment,
                change.head,
                "success",
                f"Policy passed; merged through Catalyst by {actor}",
                change_id,
            )
            try:
                await self._merge(environment, change, title, rest)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.policy.pending(
                        environment, change.head, change_id, "the merge failed; evaluate again"
                    )
                raise
            merged = await self._pull(environment, change_id)
            sha = merged.get("merge_commit_sha")
            if not merged.get("merged") or not isinstance(sha, str):
                raise GiteaUnreachable(f"gitea merged change {change_id} but names no merge commit")
            await self._fetch(environment)

            def load(repo: pygit2.Repository) -> tuple[CommitInfo, bool]:
                commit = repo[pygit2.Oid(hex=sha)].peel(pygit2.Commit)
                parents = commit.parents
                policy_changed = not parents or entry_id(commit.tree, POLICY_PATH) != entry_id(
                    parents[0].tree, POLICY_PATH
                )
                return commit_info(commit), policy_changed

            info, policy_changed = await self._with_mirror(environment, load, exclusive=False)
        if policy_changed:
            await self.policy.sync(environment)
        return info

    async def _merge(self, environment: str, change: ChangeRequest, title: str, rest: str) -> None:
        deadline = time.monotonic() + self.settings.merge_check_timeout
        path = f"{self.repository_path(environment)}/pulls/{change.id}/merge"
        while True:
            response = await self.api.request(
                "POST",
                path,
                what=f"merge change request {change.id}",
                json={
                    "do": "squash",
                    "merge_title_field": title,
                    "merge_message_field": rest,
                    "head_commit_id": change.head,
                    "delete_branch_after_merge": True,
                },
                ok=(200, 404, 405, 409),
            )
            if response.status_code == 200:
                return
            said = message_of(response)
            # Gitea checks mergeability in the background after every push to main; until it
            # has, it answers 405 "Please try again later".
            if (
                response.status_code == 405
                and "try again later" in said.lower()
                and time.monotonic() < deadline
            ):
                await anyio.sleep(_MERGE_POLL)
                continue
            current, _ = await self._read_change(environment, change.id)
            require_open(current)
            if current.head != change.head:
                raise Conflict(
                    f"change {change.id} was updated while it was being merged; evaluate it again"
                )
            raise Conflict(
                f"gitea refused to merge change {change.id} ({response.status_code})"
                + (f": {said}" if said else "")
            )

    async def close_change(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        check_environment_name(environment)
        check_change_id(change_id)
        check_actor(actor)
        async with self._lock(environment):
            change, _ = await self._read_change(environment, change_id)
            if change.status is ChangeStatus.CLOSED:
                return change  # closing twice changes nothing
            require_open(change)
            await self.api.request(
                "PATCH",
                f"{self.repository_path(environment)}/pulls/{change_id}",
                what=f"close change request {change_id}",
                json={"state": "closed"},
                ok=(200, 201),
            )
            closed, _ = await self._read_change(environment, change_id)
        return closed

    # ---------------------------------------------------------------------------------------------
    # Policy
    # ---------------------------------------------------------------------------------------------

    async def publish_verdict(self, change: ChangeRequest, verdict: Verdict) -> None:
        """Publish ``verdict`` on ``change`` as its head's policy status (``success``; ``pending``
        while waiting for time; ``failure``). Nothing for a change that is no longer open."""
        await self.policy.publish_verdict(change, verdict)

    # ---------------------------------------------------------------------------------------------
    # What webhooks need
    # ---------------------------------------------------------------------------------------------

    async def merged_change(self, environment: str, sha: str) -> ChangeRequest | None:
        """The change request Gitea merged as commit ``sha``, if Catalyst opened it."""
        await self.identity()
        found = await self.api.request(
            "GET",
            f"{self.repository_path(environment)}/commits/{sha}/pull",
            what=f"find the pull request merged as {sha[:12]} in {environment}",
            ok=(200, 404),
        )
        if found.status_code == 404:
            return None
        pull = found.json()
        if not isinstance(pull, dict) or not pull.get("merged"):
            return None
        number = str(pull.get("number"))
        return self.change_of(environment, pull, await self._reviews(environment, number))

    async def commit_info(self, environment: str, sha: str) -> CommitInfo:
        """One commit of the Environment's repository. :raises NotFound: no such commit."""
        oid = await self._commit_at(environment, sha)
        return await self._with_mirror(
            environment,
            lambda repo: commit_info(repo[oid].peel(pygit2.Commit)),
            exclusive=False,
        )

    async def pushed_commits(
        self, environment: str, before: str, after: str, limit: int = 1000
    ) -> list[tuple[CommitInfo, tuple[str, ...]]]:
        """The commits a push brought (``before`` excluded), oldest first, each with the
        Applications whose folder it changed."""
        await self._fetch(environment)

        def walk(repo: pygit2.Repository) -> list[tuple[CommitInfo, tuple[str, ...]]]:
            try:
                walker = repo.walk(pygit2.Oid(hex=after), pygit2.enums.SortMode.TOPOLOGICAL)
            except (KeyError, ValueError):
                raise NotFound(f"{after} is not a commit of {environment}") from None
            if before.strip("0"):
                with contextlib.suppress(KeyError, ValueError, pygit2.GitError):
                    walker.hide(pygit2.Oid(hex=before))
            found = []
            for commit in walker:
                found.append((commit_info(commit), _touched_applications(commit)))
                if len(found) >= limit:
                    break
            found.reverse()
            return found

        return await self._with_mirror(environment, walk, exclusive=False)


def _applications(tree: pygit2.Tree | None) -> dict[str, pygit2.Oid]:
    if tree is None:
        return {}
    try:
        folder = tree["applications"]
    except KeyError:
        return {}
    if not isinstance(folder, pygit2.Tree):
        return {}
    return {entry.name: entry.id for entry in folder if entry.name}


def _touched_applications(commit: pygit2.Commit) -> tuple[str, ...]:
    """Applications whose ``applications/<name>/`` folder differs from the first parent's."""
    mine = _applications(commit.tree)
    theirs = _applications(commit.parents[0].tree) if commit.parents else {}
    return tuple(sorted(n for n in set(mine) | set(theirs) if mine.get(n) != theirs.get(n)))
