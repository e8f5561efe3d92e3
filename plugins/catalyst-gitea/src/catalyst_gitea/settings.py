"""``[plugins.gitea]``: where Gitea is, how Catalyst authenticates, and how patient it is.

Every key can also come from the environment: ``CATALYST_PLUGINS__GITEA__URL=https://git.example``,
``CATALYST_PLUGINS__GITEA__TOKEN=…``. The token and the webhook secret are never shown in
``repr``, logs or error messages; prefer ``token_file`` (a mounted Kubernetes Secret) to a token
in the settings file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput

__all__ = [
    "DEFAULT_STATUS_CONTEXT",
    "WEBHOOK_SECRET_MIN_LENGTH",
    "GiteaSettings",
]

DEFAULT_STATUS_CONTEXT: Final = "catalyst/environment-policy"
WEBHOOK_SECRET_MIN_LENGTH: Final = 16


def _between(low: float, high: float) -> Any:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise InvalidInput(
                f"{attribute.name} must be between {low} and {high}, got {value}",
                field=attribute.name,
            )

    return validate


def _http_url(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"{attribute.name} must be an http:// or https:// URL, got {value!r}",
            field=attribute.name,
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        # Credentials belong in ``token``/``token_file``: a URL ends up in logs.
        raise InvalidInput(
            f"{attribute.name} must not carry credentials, a query or a fragment",
            field=attribute.name,
        )


def _secret(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    # Messages name the setting, never its value.
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidInput(
            f"{attribute.name} must be non-empty text without surrounding spaces",
            field=attribute.name,
        )
    if attribute.name == "webhook_secret" and len(value) < WEBHOOK_SECRET_MIN_LENGTH:
        raise InvalidInput(
            f"{attribute.name} must be at least {WEBHOOK_SECRET_MIN_LENGTH} characters",
            field=attribute.name,
        )


@frozen
class GiteaSettings:
    """``[plugins.gitea]``.

    Where Gitea is and who Catalyst is there:

    :ivar url: Gitea's base URL (``https://git.example``; the API is ``<url>/api/v1``, an
        Environment's repository ``<url>/<org>/<org>-<env_type>.git``). Required.
    :ivar token: an access token of Catalyst's Gitea user (scopes ``write:organization``,
        ``write:repository``, ``read:user``); it must be allowed to create Organizations.
        Never shown in ``repr`` or logs.
    :ivar token_file: a file holding the token (read at start); instead of ``token``.
    :ivar reviewer_token: a token of a second Gitea user that posts Catalyst's approvals as
        ``APPROVED`` reviews (Gitea refuses approvals of a pull request by its own author, which
        Catalyst's user is). Without it approvals are ``COMMENT`` reviews. Never shown.
    :ivar reviewer_token_file: a file holding ``reviewer_token``.
    :ivar ca_file: a CA bundle to verify Gitea's certificate with (default: the system's). For Git
        it is set process-wide in libgit2.
    :ivar verify_tls: verify Gitea's TLS certificate (turn off only in a lab).

    Timeouts and retries:

    :ivar connect_timeout: seconds to establish a connection (API and Git).
    :ivar request_timeout: seconds an API request may take to answer.
    :ivar git_timeout: seconds one fetch or push may take altogether.
    :ivar max_retries: retries of a request that failed transiently (connection refused or
        reset, 502/503/504, 429) before the error is reported.
    :ivar backoff_initial: seconds before the first retry; doubles, with jitter.
    :ivar backoff_max: the longest pause between two retries.
    :ivar rate_limit_max_wait: the longest ``Retry-After`` honoured; a longer one is reported at
        once as :class:`~catalyst_gitea.errors.RateLimited`.
    :ivar push_attempts: how often a commit is rebuilt on a moved branch and pushed again.
    :ivar merge_check_timeout: seconds a merge waits for Gitea to finish checking mergeability.

    Repositories, pull requests and policy:

    :ivar organization_visibility: visibility of the Organizations Catalyst creates.
    :ivar private_repositories: create Environment repositories as private.
    :ivar protect_branches: manage the default branch's protection from the Environment's
        policy (protected, with the policy status as a required check, while it has a
        ``pr-required`` rule; unprotected otherwise).
    :ivar status_context: the commit status that carries the policy verdict.
    :ivar status_url_template: the link of that status, with ``{environment}`` and ``{change}``
        (for example ``https://catalyst.example/environments/{environment}/changes/{change}``).
    :ivar committer_name: the Git committer of commits Catalyst builds (authors are the actors).
    :ivar committer_email: the committer's address; its domain also completes authors'.
    :ivar mirror_dir: where the local mirrors of Environment repositories live (default
        ``<data_dir>/plugins/gitea/mirrors``); a cache, safe to delete while stopped.

    Webhooks:

    :ivar webhook_url: the URL Gitea delivers events to (``https://catalyst.example/v1/
        webhooks/gitea``). When set, each Environment repository gets a webhook for pushes,
        pull requests and reviews when it is created.
    :ivar webhook_secret: the HMAC-SHA256 secret of those webhooks; ``POST /v1/webhooks/gitea``
        answers 404 without it. At least 16 characters; never shown.
    :ivar webhook_max_body: the largest delivery accepted, in bytes (larger: 413).
    """

    url: str | None = field(default=None, validator=_http_url)
    token: str | None = field(default=None, validator=_secret, repr=False)
    token_file: Path | None = None
    reviewer_token: str | None = field(default=None, validator=_secret, repr=False)
    reviewer_token_file: Path | None = None
    ca_file: Path | None = None
    verify_tls: bool = True
    connect_timeout: float = field(default=5.0, validator=_between(0.05, 120))
    request_timeout: float = field(default=30.0, validator=_between(0.05, 600))
    git_timeout: float = field(default=120.0, validator=_between(0.5, 3600))
    max_retries: int = field(default=4, validator=_between(0, 20))
    backoff_initial: float = field(default=0.25, validator=_between(0.0, 60))
    backoff_max: float = field(default=10.0, validator=_between(0.0, 600))
    rate_limit_max_wait: float = field(default=60.0, validator=_between(0.0, 3600))
    push_attempts: int = field(default=10, validator=_between(1, 100))
    merge_check_timeout: float = field(default=30.0, validator=_between(0.0, 600))
    organization_visibility: str = field(
        default="private", validator=attrs.validators.in_(("public", "limited", "private"))
    )
    private_repositories: bool = True
    protect_branches: bool = True
    status_context: str = field(default=DEFAULT_STATUS_CONTEXT, validator=_secret)
    status_url_template: str | None = None
    committer_name: str = "Catalyst"
    committer_email: str = "catalyst@localhost"
    mirror_dir: Path | None = None
    webhook_url: str | None = field(default=None, validator=_http_url)
    webhook_secret: str | None = field(default=None, validator=_secret, repr=False)
    webhook_max_body: int = field(default=2 * 1024 * 1024, validator=_between(1024, 64 * 1048576))

    def __attrs_post_init__(self) -> None:
        if self.token is not None and self.token_file is not None:
            raise InvalidInput("choose token or token_file, not both", field="token_file")
        if self.reviewer_token is not None and self.reviewer_token_file is not None:
            raise InvalidInput(
                "choose reviewer_token or reviewer_token_file, not both",
                field="reviewer_token_file",
            )
        if self.backoff_max < self.backoff_initial:
            raise InvalidInput("backoff_max must be at least backoff_initial", field="backoff_max")
        if "@" not in self.committer_email:
            raise InvalidInput(
                f"committer_email {self.committer_email!r} is not an e-mail address",
                field="committer_email",
            )
        if self.status_url_template is not None:
            try:
                self.status_url_template.format(environment="acme-dev", change="1")
            except (KeyError, IndexError, ValueError):
                raise InvalidInput(
                    "status_url_template may only use {environment} and {change}",
                    field="status_url_template",
                ) from None

    @property
    def api_url(self) -> str:
        """``<url>/api/v1``. :raises InvalidInput: no URL is configured."""
        return f"{self.base_url}/api/v1"

    @property
    def base_url(self) -> str:
        """``url`` without a trailing slash. :raises InvalidInput: no URL is configured."""
        if self.url is None:
            raise InvalidInput("plugins.gitea.url is not set", field="url")
        return self.url.rstrip("/")

    def clone_url(self, organization: str, environment: str) -> str:
        """The HTTP(S) URL Git uses for an Environment's repository."""
        return f"{self.base_url}/{organization}/{environment}.git"
