"""The plugin module named by the ``catalyst`` entry point ``heartbeat``.

Hooks are plain functions: they run once, synchronously, and return objects; the objects do the
(async) work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_example_heartbeat.settings import HeartbeatSettings
from catalyst_example_heartbeat.source import HeartbeatSource
from catalyst_kernel.plugins import HookContext, hookimpl

if TYPE_CHECKING:
    from catalyst_kernel.readside.sources import EventSource


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    return HeartbeatSettings


@hookimpl
def catalyst_event_sources(ctx: HookContext) -> list[EventSource]:
    settings: HeartbeatSettings = ctx.plugin_settings
    return [HeartbeatSource(settings, ctx.settings.sovereign)]
