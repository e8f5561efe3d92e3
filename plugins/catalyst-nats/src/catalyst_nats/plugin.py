"""The ``nats`` plugin module registered under the ``catalyst`` entry-point group.

Select it with ``providers.spine = "nats"`` and configure it in ``[plugins.nats]``
(:class:`~catalyst_nats.settings.NatsSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.plugins.markers import hookimpl
from catalyst_nats.cli import nats
from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine

if TYPE_CHECKING:
    import click

    from catalyst_kernel.plugins.context import HookContext


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    return NatsSettings


@hookimpl
def catalyst_spine(ctx: HookContext) -> NatsSpine:
    settings: NatsSettings = ctx.plugin_settings
    return NatsSpine(settings, data_dir=ctx.data_dir)


@hookimpl
def catalyst_cli_commands(ctx: HookContext) -> list[click.Command]:
    """``catalyst nats accounts``: render the per-Organization account configuration."""
    return [nats]
