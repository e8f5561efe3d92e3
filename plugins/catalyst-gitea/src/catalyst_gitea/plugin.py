"""The ``gitea`` plugin module registered under the ``catalyst`` entry-point group.

Select it with ``providers.committer = "gitea"`` and configure it in ``[plugins.gitea]``
(:class:`~catalyst_gitea.settings.GiteaSettings`). Besides the committer it registers the webhook
receiver ``POST /v1/webhooks/gitea`` and the projection of pushes that bypassed Catalyst.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_gitea.bypass import BypassProjection
from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.settings import GiteaSettings
from catalyst_gitea.webhooks import GiteaWebhooks
from catalyst_kernel.plugins.markers import hookimpl

if TYPE_CHECKING:
    from catalyst_kernel.plugins.context import HookContext


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    """``[plugins.gitea]``: Gitea's URL, Catalyst's token, timeouts, webhooks."""
    return GiteaSettings


@hookimpl
def catalyst_committer(ctx: HookContext) -> GiteaCommitter:
    """Environment repositories on Gitea, change requests as pull requests."""
    settings: GiteaSettings = ctx.plugin_settings
    return GiteaCommitter(settings, data_dir=ctx.data_dir)


def _selected(ctx: HookContext) -> bool:
    # The receiver and the projection serve the committer: a Sovereign on another committer
    # gets neither.
    return bool(ctx.settings.providers.committer == ctx.plugin_name)


@hookimpl
def catalyst_api_extensions(ctx: HookContext) -> list[GiteaWebhooks]:
    """``POST /v1/webhooks/gitea``: pushes, pull requests and reviews from Gitea (when the
    gitea committer is selected)."""
    settings: GiteaSettings = ctx.plugin_settings
    return [GiteaWebhooks(settings)] if _selected(ctx) else []


@hookimpl
def catalyst_projections(ctx: HookContext) -> list[BypassProjection]:
    """``gitea-bypass/<sha>`` and ``bypass`` timeline entries for pushes around Catalyst (when
    the gitea committer is selected)."""
    return [BypassProjection()] if _selected(ctx) else []
