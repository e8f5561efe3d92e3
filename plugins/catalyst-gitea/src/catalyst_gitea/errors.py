"""Gitea's failures in the kernel's exception hierarchy.

A problem between Catalyst and Gitea is the Sovereign's, not the API caller's: a rejected token
or a missing permission of Catalyst's own Gitea user is reported as a
:class:`~catalyst_kernel.errors.BackendUnavailable` (503 to API clients, *not ready* on
``/readyz``) with a reason that says what to fix, never as the caller's ``Unauthenticated`` or
``Forbidden``. What Gitea says about the caller's request (a missing repository, a conflict) maps
to :class:`~catalyst_kernel.errors.NotFound`, :class:`~catalyst_kernel.errors.Conflict` and
:class:`~catalyst_kernel.errors.InvalidInput` as usual. No message carries a token or a secret.
"""

from __future__ import annotations

from catalyst_kernel.errors import BackendUnavailable

__all__ = [
    "GiteaUnreachable",
    "InsufficientPermission",
    "PushRejected",
    "RateLimited",
    "TokenRejected",
]


class GiteaUnreachable(BackendUnavailable):
    """Gitea did not answer: connection refused or reset, timeout, DNS, TLS, or a 5xx."""


class TokenRejected(BackendUnavailable):
    """Gitea answered 401: Catalyst's token is wrong, expired or revoked."""


class InsufficientPermission(BackendUnavailable):
    """Gitea answered 403: Catalyst's Gitea user may not do what Catalyst needs (create an
    Organization, administer a repository, push to a protected branch)."""


class RateLimited(BackendUnavailable):
    """Gitea (or a proxy in front of it) kept answering 429 beyond the retries and waits allowed.

    :param retry_after: the seconds Gitea last asked to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PushRejected(InsufficientPermission):
    """Gitea refused a push for another reason than a moved branch: its pre-receive hook declined
    it (a protected branch whose push allow-list does not name Catalyst's user, say)."""
