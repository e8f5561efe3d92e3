"""The plugin system: hookspecs, markers, the hook context and the manager.

Plugin authors need :data:`hookimpl` and the interfaces their hooks return; hosts need
:class:`PluginManager`.
"""

from catalyst_kernel.plugins.context import HookContext
from catalyst_kernel.plugins.manager import (
    ENTRY_POINT_GROUP,
    PluginInfo,
    PluginManager,
    PluginStatus,
    Slot,
    SlotSelection,
)
from catalyst_kernel.plugins.markers import hookimpl, hookspec

__all__ = [
    "ENTRY_POINT_GROUP",
    "HookContext",
    "PluginInfo",
    "PluginManager",
    "PluginStatus",
    "Slot",
    "SlotSelection",
    "hookimpl",
    "hookspec",
]
