"""A local stand-in for Gitea: its REST API for the routes Catalyst uses, and real Git over HTTP.

Git is served by ``git http-backend`` (Git's own smart-HTTP server) behind a small WSGI wrapper
that does what Gitea does around it: HTTP Basic authentication with an access token as password,
the protected-branch check in a ``pre-receive`` hook (push allow-list, no force push, no deletion),
and after each push the bookkeeping of pull requests (their heads follow their branches) and the
``push`` and ``pull_request`` webhooks.

The REST API keeps Organizations, repositories, pull requests, reviews, commit statuses, branch
protections and webhooks in memory, with the repositories on disk. Status codes, messages and
JSON shapes follow Gitea (the Gitea source each behaviour comes from is named where it matters),
and :class:`~catalyst_gitea.testing.openapi.OpenApiValidator` checks every exchange against
Gitea's OpenAPI description. Merging is Gitea's squash merge (including its required status checks
on protected branches and its refusals: 404 for a closed pull request, 405 when already merged,
not ready or not mergeable, 409 when the head moved).

Webhooks are delivered in the background, in order, signed like Gitea's (``X-Gitea-Signature``:
hex HMAC-SHA256 of the body); :meth:`GiteaStandIn.flush_webhooks` waits for them.

Test controls: :meth:`GiteaStandIn.add_user`, :meth:`~GiteaStandIn.fail_next` (answer the next
API requests with an error, e.g. 429 with ``Retry-After``), :meth:`~GiteaStandIn.stop` and
:meth:`~GiteaStandIn.start` (Gitea unreachable, then back on the same port),
:meth:`~GiteaStandIn.redirect_webhooks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import httpx
import pygit2
from attrs import define, field
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from catalyst_gitea.testing.openapi import (
    API_PREFIX,
    REQUEST_KEY,
    ROUTE_KEY,
    OpenApiValidator,
    load_openapi,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Delivery", "GiteaStandIn", "StandInUser"]

log = logging.getLogger(__name__)

ZERO: Final = "0" * 40
_PROTECTION_FILE: Final = "standin-protection.json"
_GIT_PATH: Final = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/(?P<rest>info/refs|git-upload-pack|git-receive-pack)$"
)
_PRE_RECEIVE: Final = """#!{python}
# The stand-in's protected-branch check (Gitea runs the same check in its pre-receive hook).
import json, os, subprocess, sys
try:
    with open(os.path.join(os.environ.get("GIT_DIR", "."), "{rules}")) as handle:
        rules = json.load(handle)
except FileNotFoundError:
    rules = {{}}
user = os.environ.get("REMOTE_USER", "")
zero = "0" * 40
for line in sys.stdin:
    old, new, ref = line.split()
    if not ref.startswith("refs/heads/"):
        continue
    branch = ref[len("refs/heads/"):]
    rule = rules.get(branch)
    if rule is None:
        continue
    if new == zero:
        print(f"Not allowed to delete protected branch {{branch}}", file=sys.stderr)
        sys.exit(1)
    allowed = rule.get("enable_push") and (
        not rule.get("enable_push_whitelist") or user in rule.get("push_whitelist_usernames", [])
    )
    if not allowed:
        print(f"Not allowed to push to protected branch {{branch}}", file=sys.stderr)
        sys.exit(1)
    if old != zero and not rule.get("enable_force_push"):
        ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", old, new])
        if ancestor.returncode != 0:
            print(f"Not allowed to force push to protected branch {{branch}}", file=sys.stderr)
            sys.exit(1)
"""
_REVIEW_EVENTS: Final = {
    "APPROVED": ("pull_request_approved", "pull_request_review_approved"),
    "REQUEST_CHANGES": ("pull_request_rejected", "pull_request_review_rejected"),
    "COMMENT": ("pull_request_comment", "pull_request_review_comment"),
}
_PROTECTION_FIELDS: Final = (
    "enable_push",
    "enable_push_whitelist",
    "push_whitelist_usernames",
    "push_whitelist_teams",
    "push_whitelist_deploy_keys",
    "enable_force_push",
    "enable_merge_whitelist",
    "merge_whitelist_usernames",
    "merge_whitelist_teams",
    "enable_status_check",
    "status_check_contexts",
    "required_approvals",
    "enable_approvals_whitelist",
    "approvals_whitelist_username",
    "approvals_whitelist_teams",
    "block_on_rejected_reviews",
    "block_on_official_review_requests",
    "block_on_outdated_branch",
    "dismiss_stale_approvals",
    "ignore_stale_approvals",
    "require_signed_commits",
    "protected_file_patterns",
    "unprotected_file_patterns",
    "block_admin_merge_override",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error answer: Gitea's ``APIError`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@define
class StandInUser:
    """A Gitea user and its access token."""

    id: int
    login: str
    token: str = field(repr=False)
    email: str
    admin: bool = False
    can_write: bool = True


@define
class Review:
    id: int
    user: str
    state: str
    body: str
    commit_id: str
    submitted: datetime
    dismissed: bool = False


@define
class Pull:
    id: int
    number: int
    title: str
    body: str
    poster: str
    head_branch: str
    base_branch: str
    head_sha: str
    merge_base: str
    created: datetime
    updated: datetime
    state: str = "open"
    merged: bool = False
    merged_at: datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    closed_at: datetime | None = None
    reviews: list[Review] = attrs.Factory(list)


@define
class Status:
    id: int
    sha: str
    state: str
    context: str
    description: str
    target_url: str | None
    creator: str
    created: datetime


@define
class Hook:
    id: int
    url: str
    secret: str = field(repr=False)
    events: list[str]
    active: bool
    content_type: str
    branch_filter: str
    created: datetime


@define
class Repo:
    id: int
    owner: str
    name: str
    path: Path
    private: bool
    default_branch: str
    description: str
    created: datetime
    updated: datetime
    pulls: dict[int, Pull] = attrs.Factory(dict)
    next_index: int = 1
    hooks: list[Hook] = attrs.Factory(list)
    protections: dict[str, dict[str, Any]] = attrs.Factory(dict)
    statuses: list[Status] = attrs.Factory(list)
    collaborators: dict[str, str] = attrs.Factory(dict)
    lock: threading.RLock = attrs.Factory(threading.RLock)


@define
class Delivery:
    """A webhook delivery: where it went, what it carried, what came back."""

    url: str
    event: str
    event_type: str
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    status: int | None = None
    error: str | None = None
    response: bytes = field(default=b"", repr=False)


@define
class _Fault:
    status: int
    remaining: int
    retry_after: float | None
    message: str
    method: str | None
    path: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or self.path in path
        )


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("stand-in %s %s", self.requestline, code)


_Handler = Callable[..., tuple[int, Any]]


class GiteaStandIn:
    """The stand-in server (see the module docstring).

    :param root: a folder for the repositories.
    :param openapi: Gitea's OpenAPI 3 description (``v1_openapi3_json.rendered.json``).
    :param version: what ``GET /version`` says.
    """

    def __init__(self, root: Path, openapi: Path, *, version: str = "1.24.0+standin") -> None:
        self.root = root
        self.version = version
        self.users: dict[str, StandInUser] = {}
        self.orgs: dict[str, dict[str, Any]] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.deliveries: list[Delivery] = []
        self.requests: list[tuple[str, str, str, int]] = []
        """``(user, method, path, status)`` of every API request, in order."""
        self.app_errors: list[str] = []
        self._ids = itertools.count(1)
        self._state = threading.RLock()
        self._faults: list[_Fault] = []
        self._redirects: list[tuple[str, str]] = []
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._server: BaseWSGIServer | None = None
        self._serving: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._port = 0
        self._mergeable_cache: dict[tuple[str, str], bool] = {}
        self.validator = OpenApiValidator(self._dispatch, load_openapi(openapi))
        self._routes: list[tuple[str, str, re.Pattern[str], _Handler]] = []
        self._register_routes()

    # ---------------------------------------------------------------------------------------------
    # Life cycle and test controls
    # ---------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def validation_errors(self) -> list[str]:
        """Every exchange that did not match Gitea's OpenAPI description, and every fault of
        the stand-in itself."""
        return [*self.validator.errors, *self.app_errors]

    def start(self) -> GiteaStandIn:
        """Serve (again, on the same port after :meth:`stop`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        server = make_server(
            "127.0.0.1",
            self._port,
            self.validator,
            threaded=True,
            request_handler=_QuietHandler,
        )
        self._port = server.port
        self._server = server
        self._serving = threading.Thread(target=server.serve_forever, daemon=True)
        self._serving.start()
        if self._worker is None:
            self._worker = threading.Thread(target=self._deliver_forever, daemon=True)
            self._worker.start()
        return self

    def stop(self) -> None:
        """Stop answering (connections are refused) until :meth:`start`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._serving is not None:
            self._serving.join(timeout=10)

    def close(self) -> None:
        """Stop serving and delivering."""
        self.stop()
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=10)
            self._worker = None

    def __enter__(self) -> GiteaStandIn:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def add_user(
        self,
        login: str,
        token: str | None = None,
        *,
        admin: bool = False,
        can_write: bool = True,
    ) -> StandInUser:
        """A user (with a fresh token unless given)."""
        with self._state:
            user = StandInUser(
                id=next(self._ids),
                login=login,
                token=token or uuid.uuid4().hex,
                email=f"{login}@gitea.invalid",
                admin=admin,
                can_write=can_write,
            )
            self.users[login] = user
            return user

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
        message: str = "",
    ) -> None:
        """Answer the next ``times`` API requests (with ``method``, whose path under
        ``/api/v1`` contains ``path``, when given) with ``status`` and ``Retry-After``."""
        with self._state:
            self._faults.append(
                _Fault(
                    status,
                    times,
                    retry_after,
                    message or f"stand-in fault {status}",
                    method,
                    path,
                )
            )

    def redirect_webhooks(self, prefix: str, to: str) -> None:
        """Deliver webhooks whose URL starts with ``prefix`` to ``to`` + the rest instead."""
        self._redirects.append((prefix, to))

    def flush_webhooks(self, timeout: float = 30.0) -> None:
        """Wait until every webhook queued so far has been delivered."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self._pending} webhook deliveries still pending")

    def repository(self, owner: str, name: str) -> Repo:
        """A repository's state (for assertions)."""
        return self.repos[(owner, name)]

    def git(self, owner: str, name: str) -> pygit2.Repository:
        """A repository on disk (for assertions and for pushes that bypass the server)."""
        return pygit2.Repository(str(self.repos[(owner, name)].path))

    # ---------------------------------------------------------------------------------------------
    # Dispatch
    # ---------------------------------------------------------------------------------------------

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(f"{API_PREFIX}/"):
            return self._api(environ, start_response)
        match = _GIT_PATH.match(path)
        if match is not None:
            return self._git_http(environ, start_response, match)
        return Response("Not found\n", status=404)(environ, start_response)

    def _user_of(self, request: Request) -> StandInUser | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        token = None
        if scheme.lower() in ("token", "bearer"):
            token = value.strip()
        elif scheme.lower() == "basic":
            try:
                _, _, token = base64.b64decode(value).decode().partition(":")
            except ValueError:
                token = None
        if not token:
            return None
        return next((u for u in self.users.values() if hmac.compare_digest(u.token, token)), None)

    @staticmethod
    def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
        if body is None:
            return Response(status=status, headers=dict(headers or {}))
        return Response(
            json.dumps(body), status=status, content_type="application/json", headers=headers
        )

    @staticmethod
    def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        body = {"message": message, "url": "https://gitea.invalid/api/swagger"}
        return GiteaStandIn._json(status, body, headers)

    def _api(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request: Request = environ.get(REQUEST_KEY) or Request(environ)
        path = request.path[len(API_PREFIX) :]
        method = request.method.upper()
        user = self._user_of(request)
        response = self._answer(environ, request, method, path, user)
        with self._state:
            self.requests.append(
                (user.login if user else "-", method, request.full_path, response.status_code)
            )
        return response(environ, start_response)

    def _answer(
        self,
        environ: WSGIEnvironment,
        request: Request,
        method: str,
        path: str,
        user: StandInUser | None,
    ) -> Response:
        route = None
        for route_method, template, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and route_method == method:
                route = (template, handler, match.groupdict())
                break
        if route is not None and isinstance(environ.get(ROUTE_KEY), dict):
            environ[ROUTE_KEY]["route"] = (method, route[0])
        with self._state:
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return self._error(fault.status, fault.message, headers)
        if route is None:
            return self._error(404, "not found")
        template, handler, params = route
        if template != "/version" and user is None:
            return self._error(401, "token is required")
        try:
            body = request.get_json(silent=True) if request.data else None
            status, answer = handler(request=request, user=user, body=body, **params)
        except ApiError as exc:
            return self._error(exc.status, exc.message)
        except Exception as exc:  # a fault of the stand-in itself: fail the test
            log.exception("stand-in: %s %s failed", method, path)
            self.app_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return self._error(500, f"stand-in failure: {exc}")
        return self._json(status, answer)

    def _route(self, method: str, template: str, handler: _Handler) -> None:
        pattern = re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template))
        self._routes.append((method, template, pattern, handler))

    def _register_routes(self) -> None:
        route = self._route
        route("GET", "/version", lambda **_: (200, {"version": self.version}))
        route("GET", "/user", lambda user, **_: (200, self._user_json(user)))
        route("GET", "/orgs/{org}", self._get_org)
        route("POST", "/orgs", self._create_org)
        route("POST", "/orgs/{org}/repos", self._create_repo)
        route("GET", "/repos/{owner}/{repo}", self._get_repo)
        route("PUT", "/repos/{owner}/{repo}/collaborators/{collaborator}", self._add_collaborator)
        route("GET", "/repos/{owner}/{repo}/hooks", self._list_hooks)
        route("POST", "/repos/{owner}/{repo}/hooks", self._create_hook)
        route("GET", "/repos/{owner}/{repo}/pulls", self._list_pulls)
        route("POST", "/repos/{owner}/{repo}/pulls", self._create_pull)
        route("GET", "/repos/{owner}/{repo}/pulls/{index}", self._get_pull)
        route("PATCH", "/repos/{owner}/{repo}/pulls/{index}", self._edit_pull)
        route("GET", "/repos/{owner}/{repo}/pulls/{index}/reviews", self._list_reviews)
        route("POST", "/repos/{owner}/{repo}/pulls/{index}/reviews", self._create_review)
        route(
            "POST",
            "/repos/{owner}/{repo}/pulls/{index}/reviews/{id}/dismissals",
            self._dismiss_review,
        )
        route("POST", "/repos/{owner}/{repo}/pulls/{index}/merge", self._merge_pull)
        route("GET", "/repos/{owner}/{repo}/statuses/{sha}", self._list_statuses)
        route("POST", "/repos/{owner}/{repo}/statuses/{sha}", self._create_status)
        route("GET", "/repos/{owner}/{repo}/commits/{ref}/status", self._combined_status)
        route("GET", "/repos/{owner}/{repo}/commits/{sha}/pull", self._commit_pull)
        route("GET", "/repos/{owner}/{repo}/branch_protections", self._list_protections)
        route("POST", "/repos/{owner}/{repo}/branch_protections", self._create_protection)
        route("GET", "/repos/{owner}/{repo}/branch_protections/{name}", self._get_protection)
        route("PATCH", "/repos/{owner}/{repo}/branch_protections/{name}", self._edit_protection)
        route("DELETE", "/repos/{owner}/{repo}/branch_protections/{name}", self._delete_protection)

    # ---------------------------------------------------------------------------------------------
    # JSON shapes (Gitea's modules/structs, with nulls left out as the description has no
    # nullable fields)
    # ---------------------------------------------------------------------------------------------

    def _user_json(self, user: StandInUser | str | None) -> dict[str, Any]:
        if isinstance(user, str):
            user = self.users.get(user) or StandInUser(0, user, "", f"{user}@gitea.invalid")
        assert user is not None
        return {
            "id": user.id,
            "login": user.login,
            "login_name": "",
            "source_id": 0,
            "full_name": user.login,
            "email": user.email,
            "avatar_url": f"{self.url}/avatars/{user.id}",
            "html_url": f"{self.url}/{user.login}",
            "language": "en-US",
            "is_admin": user.admin,
            "last_login": _stamp(_now()),
            "created": "2024-01-01T00:00:00Z",
            "restricted": False,
            "active": True,
            "prohibit_login": False,
            "location": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
        }

    def _org_json(self, org: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": org["id"],
            "name": org["name"],
            "username": org["name"],
            "full_name": org.get("full_name", ""),
            "email": "",
            "avatar_url": f"{self.url}/avatars/org-{org['id']}",
            "description": org.get("description", ""),
            "website": "",
            "location": "",
            "visibility": org["visibility"],
            "repo_admin_change_team_access": False,
        }

    def _repo_json(self, repo: Repo, user: StandInUser | None = None) -> dict[str, Any]:
        git = pygit2.Repository(str(repo.path))
        owner = self.orgs.get(repo.owner)
        owner_json = (
            self._user_json(repo.owner)
            if owner is None
            else {**self._user_json(repo.owner), "id": owner["id"]}
        )
        full = f"{repo.owner}/{repo.name}"
        return {
            "id": repo.id,
            "owner": owner_json,
            "name": repo.name,
            "full_name": full,
            "description": repo.description,
            # libgit2's is_empty only knows "master" as the unborn default branch.
            "empty": not any(name.startswith("refs/heads/") for name in git.references),
            "private": repo.private,
            "fork": False,
            "template": False,
            "mirror": False,
            "size": 0,
            "language": "",
            "html_url": f"{self.url}/{full}",
            "url": f"{self.url}/api/v1/repos/{full}",
            "link": "",
            "ssh_url": f"ssh://git@127.0.0.1/{full}.git",
            "clone_url": f"{self.url}/{full}.git",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 0,
            "open_issues_count": 0,
            "open_pr_counter": sum(1 for p in repo.pulls.values() if p.state == "open"),
            "release_counter": 0,
            "default_branch": repo.default_branch,
            "archived": False,
            "created_at": _stamp(repo.created),
            "updated_at": _stamp(repo.updated),
            "permissions": {
                "admin": bool(user and user.can_write),
                "push": bool(user and user.can_write),
                "pull": True,
            },
            "has_issues": True,
            "has_wiki": False,
            "has_pull_requests": True,
            "has_projects": False,
            "has_releases": True,
            "has_packages": False,
            "has_actions": False,
            "ignore_whitespace_conflicts": False,
            "allow_merge_commits": True,
            "allow_rebase": True,
            "allow_rebase_explicit": True,
            "allow_squash_merge": True,
            "allow_fast_forward_only_merge": True,
            "allow_rebase_update": True,
            "default_delete_branch_after_merge": False,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": False,
            "avatar_url": "",
            "internal": False,
            "mirror_interval": "",
            "object_format_name": "sha1",
            "topics": [],
            "licenses": [],
        }

    def _branch_info(self, repo: Repo, branch: str, sha: str) -> dict[str, Any]:
        return {
            "label": branch,
            "ref": branch,
            "sha": sha,
            "repo_id": repo.id,
            "repo": self._repo_json(repo),
        }

    def _pull_json(self, repo: Repo, pull: Pull) -> dict[str, Any]:
        git = pygit2.Repository(str(repo.path))
        base_ref = git.references.get(f"refs/heads/{pull.base_branch}")
        base_sha = str(base_ref.target) if base_ref is not None else pull.merge_base
        full = f"{repo.owner}/{repo.name}"
        document: dict[str, Any] = {
            "id": pull.id,
            "url": f"{self.url}/{full}/pulls/{pull.number}",
            "number": pull.number,
            "user": self._user_json(pull.poster),
            "title": pull.title,
            "body": pull.body,
            "labels": [],
            "state": pull.state,
            "is_locked": False,
            "comments": 0,
            "review_comments": 0,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
            "html_url": f"{self.url}/{full}/pulls/{pull.number}",
            "diff_url": f"{self.url}/{full}/pulls/{pull.number}.diff",
            "patch_url": f"{self.url}/{full}/pulls/{pull.number}.patch",
            "mergeable": not pull.merged
            and pull.state == "open"
            and self._mergeable(git, base_sha, pull.head_sha),
            "merged": pull.merged,
            "base": self._branch_info(repo, pull.base_branch, base_sha),
            "head": self._branch_info(repo, pull.head_branch, pull.head_sha),
            "merge_base": pull.merge_base,
            "created_at": _stamp(pull.created),
            "updated_at": _stamp(pull.updated),
            "allow_maintainer_edit": False,
            "draft": False,
            "assignees": [],
            "requested_reviewers": [],
            "requested_reviewers_teams": [],
            "pin_order": 0,
        }
        if pull.merged:
            assert pull.merged_at is not None
            assert pull.merged_by is not None
            document["merged_at"] = _stamp(pull.merged_at)
            document["merged_by"] = self._user_json(pull.merged_by)
            document["merge_commit_sha"] = pull.merge_commit_sha
        if pull.closed_at is not None:
            document["closed_at"] = _stamp(pull.closed_at)
        return document

    def _review_json(self, repo: Repo, pull: Pull, review: Review) -> dict[str, Any]:
        full = f"{repo.owner}/{repo.name}"
        return {
            "id": review.id,
            "user": self._user_json(review.user),
            "state": review.state,
            "body": review.body,
            "commit_id": review.commit_id,
            "stale": review.commit_id != pull.head_sha,
            "official": review.state in ("APPROVED", "REQUEST_CHANGES"),
            "dismissed": review.dismissed,
            "comments_count": 0,
            "submitted_at": _stamp(review.submitted),
            "updated_at": _stamp(review.submitted),
            "html_url": f"{self.url}/{full}/pulls/{pull.number}#issuecomment-{review.id}",
            "pull_request_url": f"{self.url}/{full}/pulls/{pull.number}",
        }

    def _status_json(self, status: Status) -> dict[str, Any]:
        document = {
            "id": status.id,
            "status": status.state,
            "description": status.description,
            "url": "",
            "context": status.context,
            "creator": self._user_json(status.creator),
            "created_at": _stamp(status.created),
            "updated_at": _stamp(status.created),
        }
        if status.target_url:
            document["target_url"] = status.target_url
        return document

    def _hook_json(self, hook: Hook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "type": "gitea",
            "name": "",
            "branch_filter": hook.branch_filter,
            "config": {"url": hook.url, "content_type": hook.content_type},
            "events": list(hook.events),
            "authorization_header": "",
            "active": hook.active,
            "created_at": _stamp(hook.created),
            "updated_at": _stamp(hook.created),
        }

    def _protection_json(self, name: str, rule: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "branch_name": name,
            "rule_name": name,
            "priority": 0,
            **{key: rule[key] for key in _PROTECTION_FIELDS},
            "created_at": _stamp(rule["created"]),
            "updated_at": _stamp(rule["updated"]),
        }

    # ---------------------------------------------------------------------------------------------
    # Lookups
    # ---------------------------------------------------------------------------------------------

    def _repo(self, owner: str, name: str) -> Repo:
        repo = self.repos.get((owner, name.removesuffix(".git")))
        if repo is None:
            raise ApiError(404, "The target couldn't be found.")
        return repo

    @staticmethod
    def _pull(repo: Repo, index: str) -> Pull:
        pull = repo.pulls.get(int(index)) if index.isdigit() else None
        if pull is None:
            raise ApiError(404, "The target couldn't be found.")
        return pull

    @staticmethod
    def _writer(user: StandInUser) -> None:
        if not user.can_write:
            raise ApiError(403, "user should have write permission")

    @staticmethod
    def _page(items: list[Any], request: Request) -> list[Any]:
        page = max(1, int(request.args.get("page", "1") or 1))
        limit = max(1, min(50, int(request.args.get("limit", "30") or 30)))
        return items[(page - 1) * limit : page * limit]

    def _mergeable(self, git: pygit2.Repository, base_sha: str, head_sha: str) -> bool:
        key = (base_sha, head_sha)
        cached = self._mergeable_cache.get(key)
        if cached is None:
            cached = not self._conflicts(git, base_sha, head_sha)
            self._mergeable_cache[key] = cached
        return cached

    @staticmethod
    def _merge_index(git: pygit2.Repository, base_sha: str, head_sha: str) -> pygit2.Index:
        base = git[pygit2.Oid(hex=base_sha)].peel(pygit2.Commit)
        head = git[pygit2.Oid(hex=head_sha)].peel(pygit2.Commit)
        ancestor = git.merge_base(base.id, head.id)
        ancestor_tree = (
            git[ancestor].peel(pygit2.Commit).tree_id
            if ancestor is not None
            else git.TreeBuilder().write()
        )
        return git.merge_trees(ancestor_tree, base.tree_id, head.tree_id)

    def _conflicts(self, git: pygit2.Repository, base_sha: str, head_sha: str) -> bool:
        return self._merge_index(git, base_sha, head_sha).conflicts is not None

    # ---------------------------------------------------------------------------------------------
    # Organizations and repositories
    # ---------------------------------------------------------------------------------------------

    def _get_org(self, org: str, **_: Any) -> tuple[int, Any]:
        found = self.orgs.get(org)
        if found is None:
            raise ApiError(404, "The target couldn't be found.")
        return 200, self._org_json(found)

    def _create_org(self, body: Any, user: StandInUser, **_: Any) -> tuple[int, Any]:
        name = (body or {}).get("username")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ApiError(422, "[UserName]: Required")
        with self._state:
            if name in self.orgs or name in self.users:
                raise ApiError(422, f"user already exists [name: {name}]")
            org = {
                "id": next(self._ids),
                "name": name,
                "visibility": body.get("visibility") or "public",
                "description": body.get("description", ""),
                "owners": [user.login],
            }
            self.orgs[name] = org
        return 201, self._org_json(org)

    def _create_repo(self, org: str, body: Any, user: StandInUser, **_: Any) -> tuple[int, Any]:
        if org not in self.orgs:
            raise ApiError(404, "The target couldn't be found.")
        self._writer(user)
        name = (body or {}).get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ApiError(422, "[Name]: Required")
        with self._state:
            if (org, name) in self.repos:
                # routers/api/v1/repo/repo.go CreateUserRepo: IsErrRepoAlreadyExist -> 409.
                raise ApiError(409, "The repository with the same name already exists.")
            default_branch = body.get("default_branch") or "main"
            path = self.root / org / f"{name}.git"
            git = pygit2.init_repository(str(path), bare=True, initial_head=default_branch)
            git.config["http.receivepack"] = "true"
            now = _now()
            repo = Repo(
                id=next(self._ids),
                owner=org,
                name=name,
                path=path,
                private=bool(body.get("private", False)),
                default_branch=default_branch,
                description=body.get("description", ""),
                created=now,
                updated=now,
            )
            self.repos[(org, name)] = repo
        return 201, self._repo_json(repo, user)

    def _get_repo(self, owner: str, repo: str, user: StandInUser, **_: Any) -> tuple[int, Any]:
        return 200, self._repo_json(self._repo(owner, repo), user)

    def _add_collaborator(
        self, owner: str, repo: str, collaborator: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        if collaborator not in self.users:
            raise ApiError(422, f"user does not exist [uid: 0, name: {collaborator}]")
        permission = (body or {}).get("permission") or "write"
        if permission not in ("read", "write", "admin"):
            raise ApiError(422, f"invalid permission {permission!r}")
        found.collaborators[collaborator] = permission
        return 204, None

    def _list_hooks(self, owner: str, repo: str, request: Request, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        return 200, self._page([self._hook_json(h) for h in found.hooks], request)

    def _create_hook(
        self, owner: str, repo: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        config = (body or {}).get("config") or {}
        url = config.get("url")
        if body.get("type") != "gitea" or not isinstance(url, str) or not url:
            raise ApiError(422, "Invalid hook")
        hook = Hook(
            id=next(self._ids),
            url=url,
            secret=config.get("secret", ""),
            events=list(body.get("events") or ["push"]),
            active=bool(body.get("active", False)),
            content_type=config.get("content_type", "json"),
            branch_filter=body.get("branch_filter") or "*",
            created=_now(),
        )
        found.hooks.append(hook)
        return 201, self._hook_json(hook)

    # ---------------------------------------------------------------------------------------------
    # Pull requests and reviews
    # ---------------------------------------------------------------------------------------------

    def _list_pulls(self, owner: str, repo: str, request: Request, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        state = request.args.get("state", "open")
        with found.lock:
            pulls = sorted(found.pulls.values(), key=lambda p: p.number, reverse=True)
            if state != "all":
                pulls = [p for p in pulls if p.state == state]
            return 200, [self._pull_json(found, p) for p in self._page(pulls, request)]

    def _create_pull(
        self, owner: str, repo: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        body = body or {}
        head, base, title = body.get("head"), body.get("base"), (body.get("title") or "").strip()
        if not title:
            raise ApiError(422, "[Title]: Required")
        with found.lock:
            git = pygit2.Repository(str(found.path))
            head_ref = git.references.get(f"refs/heads/{head}")
            base_ref = git.references.get(f"refs/heads/{base}")
            if head_ref is None or base_ref is None:
                raise ApiError(404, "The target couldn't be found.")
            for other in found.pulls.values():
                if other.state == "open" and (other.head_branch, other.base_branch) == (head, base):
                    raise ApiError(
                        409,
                        f"pull request already exists for these targets [id: {other.id}, "
                        f"issue_id: {other.id}, head_repo_id: {found.id}, base_repo_id: "
                        f"{found.id}, head_branch: {head}, base_branch: {base}]",
                    )
            ancestor = git.merge_base(head_ref.target, base_ref.target)
            now = _now()
            pull = Pull(
                id=next(self._ids),
                number=found.next_index,
                title=title,
                body=body.get("body") or "",
                poster=user.login,
                head_branch=str(head),
                base_branch=str(base),
                head_sha=str(head_ref.target),
                merge_base=str(ancestor) if ancestor is not None else "",
                created=now,
                updated=now,
            )
            found.next_index += 1
            found.pulls[pull.number] = pull
            git.references.create(f"refs/pull/{pull.number}/head", head_ref.target, force=True)
            document = self._pull_json(found, pull)
        self._emit_pull(found, pull, "opened", user.login)
        return 201, document

    def _get_pull(self, owner: str, repo: str, index: str, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        with found.lock:
            return 200, self._pull_json(found, self._pull(found, index))

    def _edit_pull(
        self, owner: str, repo: str, index: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        body = body or {}
        actions = []
        with found.lock:
            pull = self._pull(found, index)
            if "title" in body:
                if not str(body["title"]).strip():
                    raise ApiError(422, "[Title]: Required")
                pull.title = str(body["title"]).strip()
                actions.append("edited")
            if "body" in body:
                pull.body = str(body["body"])
                actions.append("edited")
            state = body.get("state")
            if state is not None and state != pull.state:
                if pull.merged:
                    # routers/api/v1/repo/pull.go EditPullRequest: a merged pull request's state
                    # cannot change.
                    raise ApiError(412, "cannot change state of this pull request, it was merged")
                if state not in ("open", "closed"):
                    raise ApiError(422, "[State]: invalid")
                pull.state = state
                pull.closed_at = _now() if state == "closed" else None
                actions.append("closed" if state == "closed" else "reopened")
            pull.updated = _now()
            document = self._pull_json(found, pull)
        for action in dict.fromkeys(actions):
            self._emit_pull(found, pull, action, user.login)
        # routers/api/v1/repo/pull.go: "TODO this should be 200, not 201".
        return 201, document

    def _list_reviews(
        self, owner: str, repo: str, index: str, request: Request, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        with found.lock:
            pull = self._pull(found, index)
            reviews = [self._review_json(found, pull, r) for r in pull.reviews]
        return 200, self._page(reviews, request)

    def _create_review(
        self, owner: str, repo: str, index: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        body = body or {}
        event = body.get("event") or "PENDING"
        text = body.get("body") or ""
        with found.lock:
            pull = self._pull(found, index)
            if pull.state != "open":
                raise ApiError(422, "cannot submit a review on a closed pull request")
            if event in ("APPROVED", "REQUEST_CHANGES") and pull.poster == user.login:
                # services/pull/review.go: the poster cannot approve or reject their own.
                verb = "approve" if event == "APPROVED" else "reject"
                raise ApiError(422, f"{verb} your own pull is not allowed")
            if event == "COMMENT" and not text.strip():
                raise ApiError(422, "review event COMMENT requires a body or a comment")
            if event not in _REVIEW_EVENTS:
                raise ApiError(422, f"review event {event} is not supported here")
            review = Review(
                id=next(self._ids),
                user=user.login,
                state=event,
                body=text,
                commit_id=body.get("commit_id") or pull.head_sha,
                submitted=_now(),
            )
            pull.reviews.append(review)
            pull.updated = _now()
            document = self._review_json(found, pull, review)
        self._emit_review(found, pull, review)
        return 200, document

    def _dismiss_review(
        self, owner: str, repo: str, index: str, id: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        with found.lock:
            pull = self._pull(found, index)
            review = next((r for r in pull.reviews if str(r.id) == id), None)
            if review is None:
                raise ApiError(404, "The target couldn't be found.")
            if review.state not in ("APPROVED", "REQUEST_CHANGES"):
                raise ApiError(
                    422,
                    "not need to dismiss this review because it's type is not Approve or change "
                    "request",
                )
            review.dismissed = True
            pull.updated = _now()
            return 200, self._review_json(found, pull, review)

    def _required_checks_pass(self, repo: Repo, pull: Pull) -> bool:
        rule = repo.protections.get(pull.base_branch)
        if rule is None or not rule.get("enable_status_check"):
            return True
        for context in rule.get("status_check_contexts") or ():
            latest = [s for s in repo.statuses if s.sha == pull.head_sha and s.context == context]
            if not latest or latest[-1].state != "success":
                return False
        return True

    def _merge_pull(
        self, owner: str, repo: str, index: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        body = body or {}
        with found.lock:
            pull = self._pull(found, index)
            # routers/api/v1/repo/pull.go MergePullRequest -> CheckPullMergeable.
            if pull.merged:
                raise ApiError(405, "")
            if pull.state == "closed":
                raise ApiError(404, "The target couldn't be found.")
            if not user.can_write:
                raise ApiError(405, "User not allowed to merge PR")
            if not self._required_checks_pass(found, pull):
                raise ApiError(405, "Not all required status checks successful")
            git = pygit2.Repository(str(found.path))
            base_ref = git.references.get(f"refs/heads/{pull.base_branch}")
            if base_ref is None:
                raise ApiError(404, "The target couldn't be found.")
            base_sha = str(base_ref.target)
            if self._conflicts(git, base_sha, pull.head_sha):
                raise ApiError(405, "Please try again later")
            # Go's JSON decoding matches field names case-insensitively: "do" or "Do".
            style = next((v for k, v in body.items() if k.lower() == "do"), None)
            if style != "squash":
                raise ApiError(405, f"{style} is not allowed an allowed merge style for this repo")
            head_commit = body.get("head_commit_id")
            if head_commit and head_commit != pull.head_sha:
                raise ApiError(409, "head out of date")
            message = str(body.get("merge_title_field") or "").strip() or (
                f"{pull.title} (#{pull.number})"
            )
            extra = str(body.get("merge_message_field") or "").strip()
            if extra:
                message += "\n\n" + extra
            poster = self.users.get(pull.poster)
            author = pygit2.Signature(pull.poster, poster.email if poster else "x@gitea.invalid")
            committer = pygit2.Signature(user.login, user.email)
            if author.name != committer.name:
                # services/pull/merge_squash.go, with AddCoCommitterTrailers on (the default).
                message += (
                    f"\nCo-authored-by: {author.name} <{author.email}>"
                    f"\nCo-committed-by: {author.name} <{author.email}>\n"
                )
            index_ = self._merge_index(git, base_sha, pull.head_sha)
            tree = index_.write_tree(git)
            oid = git.create_commit(
                None, author, committer, _cleanup(message), tree, [base_ref.target]
            )
            git.references.create(f"refs/heads/{pull.base_branch}", oid, force=True)
            now = _now()
            pull.merged = True
            pull.state = "closed"
            pull.merged_at = pull.closed_at = pull.updated = now
            pull.merged_by = user.login
            pull.merge_commit_sha = str(oid)
            if body.get("delete_branch_after_merge") and not any(
                p.state == "open" and p.head_branch == pull.head_branch
                for p in found.pulls.values()
            ):
                head_branch = git.references.get(f"refs/heads/{pull.head_branch}")
                if head_branch is not None:
                    head_branch.delete()
        self._emit_push(found, pull.base_branch, base_sha, str(oid), user.login)
        self._emit_pull(found, pull, "closed", user.login)
        return 200, None

    # ---------------------------------------------------------------------------------------------
    # Statuses and protections
    # ---------------------------------------------------------------------------------------------

    def _list_statuses(
        self, owner: str, repo: str, sha: str, request: Request, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        statuses = [self._status_json(s) for s in reversed(found.statuses) if s.sha == sha]
        return 200, self._page(statuses, request)

    def _create_status(
        self, owner: str, repo: str, sha: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        body = body or {}
        git = pygit2.Repository(str(found.path))
        try:
            commit = git.revparse_single(sha).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError):
            raise ApiError(404, "The target couldn't be found.") from None
        state = body.get("state")
        if state not in ("pending", "success", "error", "failure", "warning", "skipped"):
            raise ApiError(400, f"invalid state {state!r}")
        status = Status(
            id=next(self._ids),
            sha=str(commit.id),
            state=state,
            context=body.get("context") or "default",
            description=body.get("description") or "",
            target_url=body.get("target_url"),
            creator=user.login,
            created=_now(),
        )
        with found.lock:
            found.statuses.append(status)
        return 201, self._status_json(status)

    def _combined_status(self, owner: str, repo: str, ref: str, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        git = pygit2.Repository(str(found.path))
        try:
            sha = str(git.revparse_single(ref).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError):
            raise ApiError(404, "The target couldn't be found.") from None
        latest: dict[str, Status] = {}
        for status in found.statuses:
            if status.sha == sha:
                latest[status.context] = status
        states = [s.state for s in latest.values()]
        if not states:
            state = "pending"
        elif any(s in ("error", "failure") for s in states):
            state = "failure"
        elif any(s == "pending" for s in states):
            state = "pending"
        else:
            state = "success"
        return 200, {
            "state": state,
            "sha": sha,
            "total_count": len(latest),
            "statuses": [self._status_json(s) for s in latest.values()],
            "repository": self._repo_json(found),
            "commit_url": f"{self.url}/api/v1/repos/{owner}/{repo}/git/commits/{sha}",
            "url": f"{self.url}/api/v1/repos/{owner}/{repo}/commits/{sha}/status",
        }

    def _commit_pull(self, owner: str, repo: str, sha: str, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        with found.lock:
            for pull in found.pulls.values():
                if pull.merge_commit_sha == sha:
                    return 200, self._pull_json(found, pull)
        raise ApiError(404, "The target couldn't be found.")

    def _write_protections(self, repo: Repo) -> None:
        rules = {
            name: {key: rule[key] for key in _PROTECTION_FIELDS}
            for name, rule in repo.protections.items()
        }
        (repo.path / _PROTECTION_FILE).write_text(json.dumps(rules))
        hook = repo.path / "hooks" / "pre-receive"
        if rules:
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(_PRE_RECEIVE.format(python=sys.executable, rules=_PROTECTION_FILE))
            hook.chmod(0o755)
        elif hook.exists():
            hook.unlink()

    def _list_protections(self, owner: str, repo: str, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        return 200, [self._protection_json(n, r) for n, r in found.protections.items()]

    def _get_protection(self, owner: str, repo: str, name: str, **_: Any) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        rule = found.protections.get(name)
        if rule is None:
            raise ApiError(404, "The target couldn't be found.")
        return 200, self._protection_json(name, rule)

    def _create_protection(
        self, owner: str, repo: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        body = body or {}
        name = body.get("rule_name") or body.get("branch_name")
        if not name:
            raise ApiError(422, "[RuleName]: Required")
        with found.lock:
            if name in found.protections:
                raise ApiError(403, "Branch protection already exist")
            now = _now()
            rule: dict[str, Any] = {
                "enable_push": False,
                "enable_push_whitelist": False,
                "push_whitelist_usernames": [],
                "push_whitelist_teams": [],
                "push_whitelist_deploy_keys": False,
                "enable_force_push": False,
                "enable_merge_whitelist": False,
                "merge_whitelist_usernames": [],
                "merge_whitelist_teams": [],
                "enable_status_check": False,
                "status_check_contexts": [],
                "required_approvals": 0,
                "enable_approvals_whitelist": False,
                "approvals_whitelist_username": [],
                "approvals_whitelist_teams": [],
                "block_on_rejected_reviews": False,
                "block_on_official_review_requests": False,
                "block_on_outdated_branch": False,
                "dismiss_stale_approvals": False,
                "ignore_stale_approvals": False,
                "require_signed_commits": False,
                "protected_file_patterns": "",
                "unprotected_file_patterns": "",
                "block_admin_merge_override": False,
                "created": now,
                "updated": now,
            }
            rule.update({k: v for k, v in body.items() if k in _PROTECTION_FIELDS})
            found.protections[name] = rule
            self._write_protections(found)
            return 201, self._protection_json(name, rule)

    def _edit_protection(
        self, owner: str, repo: str, name: str, body: Any, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        with found.lock:
            rule = found.protections.get(name)
            if rule is None:
                raise ApiError(404, "The target couldn't be found.")
            rule.update({k: v for k, v in (body or {}).items() if k in _PROTECTION_FIELDS})
            rule["updated"] = _now()
            self._write_protections(found)
            return 200, self._protection_json(name, rule)

    def _delete_protection(
        self, owner: str, repo: str, name: str, user: StandInUser, **_: Any
    ) -> tuple[int, Any]:
        found = self._repo(owner, repo)
        self._writer(user)
        with found.lock:
            if found.protections.pop(name, None) is None:
                raise ApiError(404, "The target couldn't be found.")
            self._write_protections(found)
        return 204, None

    # ---------------------------------------------------------------------------------------------
    # Git over HTTP
    # ---------------------------------------------------------------------------------------------

    @staticmethod
    def _refs(git: pygit2.Repository) -> dict[str, str]:
        return {
            name: str(git.references[name].target)
            for name in git.references
            if name.startswith("refs/heads/")
        }

    def _git_http(
        self, environ: WSGIEnvironment, start_response: StartResponse, match: re.Match[str]
    ) -> Iterable[bytes]:
        request = Request(environ)
        user = self._user_of(request)
        if user is None:
            response = Response(
                "Unauthorized\n",
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Gitea"'},
            )
            return response(environ, start_response)
        found = self.repos.get((match["owner"], match["repo"]))
        if found is None:
            return Response("Repository not found\n", status=404)(environ, start_response)
        pushing = match["rest"] == "git-receive-pack" or (
            request.args.get("service") == "git-receive-pack"
        )
        if pushing and not user.can_write:
            return Response("Forbidden\n", status=403)(environ, start_response)
        body = request.get_data()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{found.owner}/{found.name}.git/{match['rest']}",
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "REQUEST_METHOD": request.method,
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user.login,
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header, variable in (
            ("HTTP_CONTENT_ENCODING", "HTTP_CONTENT_ENCODING"),
            ("HTTP_GIT_PROTOCOL", "GIT_PROTOCOL"),
        ):
            if environ.get(header):
                env[variable] = environ[header]
        receiving = match["rest"] == "git-receive-pack" and request.method == "POST"
        if not receiving:
            status, headers, payload = _cgi(env, body)
            return Response(payload, status=status, headers=headers)(environ, start_response)
        with found.lock:
            git = pygit2.Repository(str(found.path))
            before = self._refs(git)
            status, headers, payload = _cgi(env, body)
            after = self._refs(pygit2.Repository(str(found.path)))
        self._after_push(found, user.login, before, after)
        return Response(payload, status=status, headers=headers)(environ, start_response)

    def _after_push(
        self, repo: Repo, pusher: str, before: Mapping[str, str], after: Mapping[str, str]
    ) -> None:
        """What Gitea does after a push: pull request heads follow, webhooks go out."""
        for ref in sorted(set(before) | set(after)):
            old, new = before.get(ref, ZERO), after.get(ref, ZERO)
            if old == new or new == ZERO:
                continue
            branch = ref.removeprefix("refs/heads/")
            repo.updated = _now()
            self._emit_push(repo, branch, old, new, pusher)
            synced = []
            with repo.lock:
                git = pygit2.Repository(str(repo.path))
                for pull in repo.pulls.values():
                    if pull.state == "open" and pull.head_branch == branch:
                        pull.head_sha = new
                        base = git.references.get(f"refs/heads/{pull.base_branch}")
                        if base is not None:
                            ancestor = git.merge_base(pygit2.Oid(hex=new), base.target)
                            pull.merge_base = str(ancestor) if ancestor is not None else ""
                        pull.updated = _now()
                        git.references.create(
                            f"refs/pull/{pull.number}/head", pygit2.Oid(hex=new), force=True
                        )
                        synced.append(pull)
            for pull in synced:
                self._emit_pull(repo, pull, "synchronized", pusher)

    # ---------------------------------------------------------------------------------------------
    # Webhooks
    # ---------------------------------------------------------------------------------------------

    def _hooks_for(self, repo: Repo, *events: str) -> list[Hook]:
        return [h for h in repo.hooks if h.active and any(e in h.events for e in events)]

    def _queue_delivery(self, hook: Hook, event: str, event_type: str, payload: Any) -> None:
        body = json.dumps(payload).encode()
        signature = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Gitea-Delivery": delivery_id,
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "X-Gitea-Signature": signature,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Event": event,
            "X-GitHub-Event-Type": event_type,
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        delivery = Delivery(hook.url, event, event_type, body, headers)
        with self._idle:
            self._pending += 1
        self._queue.put(delivery)

    def _emit_push(self, repo: Repo, branch: str, old: str, new: str, pusher: str) -> None:
        hooks = self._hooks_for(repo, "push")
        if not hooks:
            return
        git = pygit2.Repository(str(repo.path))
        walker = git.walk(pygit2.Oid(hex=new), pygit2.enums.SortMode.TOPOLOGICAL)
        if old != ZERO:
            walker.hide(pygit2.Oid(hex=old))
        commits = [self._payload_commit(repo, c) for c in itertools.islice(walker, 20)]
        commits.reverse()
        full = f"{repo.owner}/{repo.name}"
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": old,
            "after": new,
            "compare_url": f"{self.url}/{full}/compare/{old[:10]}...{new[:10]}",
            "commits": commits,
            "total_commits": len(commits),
            "head_commit": commits[-1] if commits else None,
            "repository": self._repo_json(repo),
            "pusher": self._user_json(pusher),
            "sender": self._user_json(pusher),
        }
        for hook in hooks:
            self._queue_delivery(hook, "push", "push", payload)

    def _payload_commit(self, repo: Repo, commit: pygit2.Commit) -> dict[str, Any]:
        def person(signature: pygit2.Signature) -> dict[str, str]:
            user = next((u for u in self.users.values() if u.email == signature.email), None)
            return {
                "name": signature.name,
                "email": signature.email,
                "username": user.login if user else "",
            }

        stamp = datetime.fromtimestamp(commit.commit_time, UTC)
        return {
            "id": str(commit.id),
            "message": commit.message,
            "url": f"{self.url}/{repo.owner}/{repo.name}/commit/{commit.id}",
            "author": person(commit.author),
            "committer": person(commit.committer),
            "timestamp": _stamp(stamp),
            "added": [],
            "removed": [],
            "modified": [],
        }

    def _emit_pull(self, repo: Repo, pull: Pull, action: str, sender: str) -> None:
        event_type = "pull_request_sync" if action == "synchronized" else "pull_request"
        hooks = self._hooks_for(repo, "pull_request", event_type)
        if not hooks:
            return
        with repo.lock:
            payload = {
                "action": action,
                "number": pull.number,
                "pull_request": self._pull_json(repo, pull),
                "repository": self._repo_json(repo),
                "sender": self._user_json(sender),
                "commit_id": "",
            }
        for hook in hooks:
            self._queue_delivery(hook, "pull_request", event_type, payload)

    def _emit_review(self, repo: Repo, pull: Pull, review: Review) -> None:
        event, event_type = _REVIEW_EVENTS[review.state]
        hooks = self._hooks_for(repo, "pull_request_review", "pull_request")
        if not hooks:
            return
        with repo.lock:
            payload = {
                "action": "reviewed",
                "number": pull.number,
                "pull_request": self._pull_json(repo, pull),
                "repository": self._repo_json(repo),
                "sender": self._user_json(review.user),
                "commit_id": review.commit_id,
                "review": {"type": event_type, "content": review.body},
            }
        for hook in hooks:
            self._queue_delivery(hook, event, event_type, payload)

    def _deliver_forever(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                url = delivery.url
                for prefix, to in self._redirects:
                    if url.startswith(prefix):
                        url = to + url[len(prefix) :]
                try:
                    response = client.post(url, content=delivery.body, headers=delivery.headers)
                    delivery.status = response.status_code
                    delivery.response = response.content
                except httpx.HTTPError as exc:
                    delivery.error = f"{type(exc).__name__}: {exc}"
                self.deliveries.append(delivery)
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


def _cleanup(message: str) -> str:
    """``git commit --message``'s clean-up: no trailing spaces, no runs of blank lines, no
    leading or trailing blank lines, one final newline."""
    lines = [line.rstrip() for line in message.strip().splitlines()]
    kept: list[str] = []
    for line in lines:
        if not line and kept and not kept[-1]:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def _cgi(env: Mapping[str, str], body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run ``git http-backend`` as a CGI program: status, headers, body."""
    result = subprocess.run(
        ["git", "http-backend"], input=body, env=dict(env), capture_output=True, timeout=120
    )
    if result.returncode != 0 and not result.stdout:
        return "500 Internal Server Error", [], result.stderr
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    status = "200 OK"
    headers = []
    for line in head.split(b"\r\n"):
        key, _, value = line.decode("latin-1").partition(":")
        if key.lower() == "status":
            status = value.strip()
        elif key:
            headers.append((key, value.strip()))
    return status, headers, payload
