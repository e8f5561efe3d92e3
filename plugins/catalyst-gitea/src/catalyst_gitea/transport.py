"""Git over HTTP(S) with pygit2: a local bare mirror per Environment, fetched and pushed.

Layout of a mirror (``<mirror_dir>/<org>/<environment>.git``)
    ``refs/remotes/origin/<branch>``  Gitea's branches, as of the last fetch or push;
    ``refs/remotes/pull/<n>/head``    each pull request's head (Gitea keeps ``refs/pull/<n>/head``
                                      even after the branch is deleted).

Authentication is HTTP Basic with Catalyst's Gitea login and its token as password, handed to
libgit2 through the credentials callback only: the token is in no URL, no config and no message.
A second credentials request in one operation means Gitea refused the first: that is
:class:`~catalyst_gitea.errors.TokenRejected`, not an endless loop.

Bounds: libgit2's connect and socket timeouts are set process-wide at start
(:func:`configure_libgit2`), and every transfer callback checks the operation's deadline
(``git_timeout``) and aborts past it.

Everything here blocks; callers run it in worker threads (one :class:`pygit2.Repository` per call)
and serialise the mirror's mutations per Environment.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Final

import attrs
import pygit2
from attrs import frozen

from catalyst_gitea.errors import (
    GiteaUnreachable,
    InsufficientPermission,
    PushRejected,
    TokenRejected,
)
from catalyst_kernel.errors import CatalystError, NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from catalyst_gitea.settings import GiteaSettings

__all__ = [
    "FETCH_REFSPECS",
    "MovedHead",
    "Pushed",
    "RefPush",
    "Transport",
    "branch_ref",
    "configure_libgit2",
    "pull_ref",
]

log = logging.getLogger(__name__)

FETCH_REFSPECS: Final = [
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/pull/*/head:refs/remotes/pull/*/head",
]
_OUTGOING: Final = "refs/catalyst/outgoing/"
_MOVED: Final = re.compile(
    r"non-fastforward|non-fast-forward|not present locally|fetch first|stale info|"
    r"failed to update ref|cannot lock ref|failed to lock|reference already exists|"
    r"already exists",
    re.IGNORECASE,
)
_UNREACHABLE: Final = re.compile(
    r"failed to connect|connection refused|timed out|timeout|could not resolve|resolve host|"
    r"connection reset|broken pipe|ssl|certificate|tls|unexpected http status code: 5\d\d|"
    r"early eof|unexpected eof|network",
    re.IGNORECASE,
)


def configure_libgit2(settings: GiteaSettings) -> None:
    """Set libgit2's process-wide network bounds (and CA bundle) from ``settings``."""
    pygit2.settings.server_connect_timeout = int(settings.connect_timeout * 1000)
    pygit2.settings.server_timeout = int(settings.request_timeout * 1000)
    if settings.ca_file is not None:
        pygit2.settings.set_ssl_cert_locations(str(settings.ca_file), None)


def branch_ref(branch: str) -> str:
    """The mirror's ref of Gitea's ``branch``."""
    return f"refs/remotes/origin/{branch}"


def pull_ref(number: int | str) -> str:
    """The mirror's ref of pull request ``number``'s head."""
    return f"refs/remotes/pull/{number}/head"


class MovedHead(Exception):
    """The remote branch is not where the push expected it: fetch, rebuild, push again."""


@frozen
class RefPush:
    """Push ``commit`` to Gitea's ``branch``; ``force`` allows a non-fast-forward."""

    commit: pygit2.Oid
    branch: str
    force: bool = False


@frozen
class Pushed:
    """What a push did: each remote ref and Gitea's refusal message (``None``: updated)."""

    updates: dict[str, str | None] = attrs.Factory(dict)
    remote_messages: str = ""


class _CredentialsRejected(Exception):
    pass


class _DeadlinePassed(Exception):
    pass


class _Callbacks(pygit2.RemoteCallbacks):
    def __init__(self, login: str, token: str, deadline: float) -> None:
        super().__init__()
        self._login = login
        self._token = token
        self._deadline = deadline
        self._asked = 0
        self.updates: dict[str, str | None] = {}
        self.sideband: list[str] = []

    def credentials(
        self,
        url: str,
        username_from_url: str | None,
        allowed_types: pygit2.enums.CredentialType,
    ) -> pygit2.UserPass:
        self._asked += 1
        if self._asked > 1:
            raise _CredentialsRejected
        return pygit2.UserPass(self._login, self._token)

    def _check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            raise _DeadlinePassed

    def transfer_progress(self, stats: pygit2.remotes.TransferProgress) -> None:
        self._check_deadline()

    def push_transfer_progress(
        self, objects_pushed: int, total_objects: int, bytes_pushed: int
    ) -> None:
        self._check_deadline()

    def sideband_progress(self, string: str) -> None:
        self.sideband.append(string)
        self._check_deadline()

    def push_update_reference(self, refname: str, message: str | None) -> None:
        self.updates[refname] = message


class Transport:
    """Fetches and pushes the mirrors under ``root`` (see the module docstring).

    :param settings: the plugin's settings (URL, timeouts).
    :param root: the mirrors' folder.
    :param login: Catalyst's Gitea login (the HTTP Basic user name).
    :param token: its access token (the password).
    """

    def __init__(self, settings: GiteaSettings, root: Path, login: str, token: str) -> None:
        self.settings = settings
        self.root = root
        self._login = login
        self._token = token

    def __repr__(self) -> str:
        return f"Transport({str(self.root)!r})"

    def path(self, organization: str, environment: str) -> Path:
        return self.root / organization / f"{environment}.git"

    def open(self, organization: str, environment: str) -> pygit2.Repository:
        """The Environment's mirror, created (empty) on first use."""
        path = self.path(organization, environment)
        url = self.settings.clone_url(organization, environment)
        if (path / "HEAD").is_file():
            repo = pygit2.Repository(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            repo = pygit2.init_repository(str(path), bare=True)
        try:
            remote = repo.remotes["origin"]
        except KeyError:
            repo.remotes.create("origin", url, FETCH_REFSPECS[0])
            repo.remotes.add_fetch("origin", FETCH_REFSPECS[1])
            return repo
        if remote.url != url:
            repo.remotes.set_url("origin", url)
        return repo

    def _callbacks(self) -> _Callbacks:
        return _Callbacks(self._login, self._token, time.monotonic() + self.settings.git_timeout)

    def _translate(self, exc: BaseException, operation: str, environment: str) -> Exception:
        """The error for a failed fetch or push (:class:`MovedHead` when a retry may help)."""
        if isinstance(exc, _CredentialsRejected):
            return TokenRejected(
                f"gitea rejected Catalyst's token for git {operation} of {environment}; check "
                "plugins.gitea.token (or token_file)"
            )
        if isinstance(exc, _DeadlinePassed):
            return GiteaUnreachable(
                f"gitea: git {operation} of {environment} took longer than "
                f"{self.settings.git_timeout:g} s"
            )
        if isinstance(exc, CatalystError):
            return exc
        text = str(exc).strip() or type(exc).__name__
        if "http status code: 404" in text:
            return NotFound(f"Environment {environment} has no repository on gitea")
        if "http status code: 401" in text:
            return TokenRejected(f"gitea rejected Catalyst's token for git {operation}")
        if "http status code: 403" in text:
            return InsufficientPermission(
                f"Catalyst's Gitea user may not git {operation} {environment} (403)"
            )
        if _MOVED.search(text):
            return MovedHead(text)
        if _UNREACHABLE.search(text):
            return GiteaUnreachable(
                f"gitea at {self.settings.base_url} is unreachable for git {operation} of "
                f"{environment}: {text}"
            )
        return GiteaUnreachable(f"gitea: git {operation} of {environment} failed: {text}")

    def fetch(self, repo: pygit2.Repository, environment: str) -> None:
        """Bring the mirror up to date with Gitea (branches and pull request heads).

        :raises NotFound: Gitea has no such repository.
        :raises BackendUnavailable: Gitea cannot be reached, or rejects the token.
        """
        callbacks = self._callbacks()
        try:
            repo.remotes["origin"].fetch(
                FETCH_REFSPECS, callbacks=callbacks, prune=pygit2.enums.FetchPrune.PRUNE
            )
        except (pygit2.GitError, OSError, _CredentialsRejected, _DeadlinePassed) as exc:
            error = self._translate(exc, "fetch", environment)
            if isinstance(error, MovedHead):  # a local ref lock: another fetch won the race
                raise GiteaUnreachable(f"gitea: git fetch of {environment}: {error}") from None
            raise error from None

    def push(self, repo: pygit2.Repository, environment: str, pushes: Sequence[RefPush]) -> Pushed:
        """Push commits to Gitea's branches in one connection.

        A branch that moved meanwhile raises :class:`MovedHead`; a refusal by Gitea's hooks
        raises :class:`~catalyst_gitea.errors.PushRejected` with Gitea's message. On success the
        mirror's refs of the pushed branches point at the pushed commits.
        """
        temporary = []
        specs = []
        for push in pushes:
            name = f"{_OUTGOING}{uuid.uuid4().hex}"
            repo.references.create(name, push.commit)
            temporary.append(name)
            specs.append(f"{'+' if push.force else ''}{name}:refs/heads/{push.branch}")
        callbacks = self._callbacks()
        try:
            repo.remotes["origin"].push(specs, callbacks=callbacks)
        except (pygit2.GitError, OSError, _CredentialsRejected, _DeadlinePassed) as exc:
            raise self._translate(exc, "push", environment) from None
        finally:
            for name in temporary:
                reference = repo.references.get(name)
                if reference is not None:
                    reference.delete()
        said = "".join(callbacks.sideband).strip()
        result = Pushed(dict(callbacks.updates), said)
        for push in pushes:
            remote_ref = f"refs/heads/{push.branch}"
            message = result.updates.get(remote_ref, "no answer for the ref")
            if message is None:
                repo.references.create(branch_ref(push.branch), push.commit, force=True)
                continue
            if "hook" in message or "protected" in message.lower() or "declined" in message:
                raise PushRejected(
                    f"gitea refused the push to {push.branch} of {environment}: {message}"
                    + (f" ({said})" if said else "")
                )
            raise MovedHead(f"{push.branch}: {message}")
        return result

    def delete_branches(
        self, repo: pygit2.Repository, environment: str, branches: Sequence[str]
    ) -> None:
        """Delete Gitea's ``branches`` (best effort is the caller's choice)."""
        callbacks = self._callbacks()
        specs = [f":refs/heads/{branch}" for branch in branches]
        try:
            repo.remotes["origin"].push(specs, callbacks=callbacks)
        except (pygit2.GitError, OSError, _CredentialsRejected, _DeadlinePassed) as exc:
            raise self._translate(exc, "push", environment) from None
        for branch in branches:
            reference = repo.references.get(branch_ref(branch))
            if reference is not None:
                reference.delete()
