"""Catalyst plugin: Environment repositories, pull requests and webhooks on Gitea.

Select it with ``providers.committer = "gitea"``; see ``docs/gitea.md``.
"""

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.errors import (
    GiteaUnreachable,
    InsufficientPermission,
    PushRejected,
    RateLimited,
    TokenRejected,
)
from catalyst_gitea.settings import GiteaSettings

__all__ = [
    "GiteaCommitter",
    "GiteaSettings",
    "GiteaUnreachable",
    "InsufficientPermission",
    "PushRejected",
    "RateLimited",
    "TokenRejected",
]
