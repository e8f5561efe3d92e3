"""The plugin report shown by ``catalyst plugins --json`` and ``GET /v1/plugins`` (one shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalyst_kernel.model.convert import unstructure

if TYPE_CHECKING:
    from catalyst_kernel.plugins.manager import PluginInfo, PluginManager, SlotSelection

__all__ = ["plugin_json", "plugins_document", "selection_json"]


def plugin_json(info: PluginInfo) -> dict[str, Any]:
    """One plugin as JSON."""
    return {
        "name": info.name,
        "distribution": info.distribution,
        "version": info.version,
        "builtin": info.builtin,
        "module": info.module,
        "status": info.status.value,
        "provides": list(info.provides),
        "hooks": list(info.hooks),
        "error": info.error,
    }


def selection_json(selection: SlotSelection) -> dict[str, Any]:
    """One slot's selection as JSON."""
    return unstructure(selection)  # type: ignore[no-any-return]


def plugins_document(manager: PluginManager) -> dict[str, Any]:
    """Every plugin, the provider of each slot and the load errors."""
    return {
        "plugins": [plugin_json(info) for info in manager.plugins()],
        "providers": {s.slot.value: selection_json(s) for s in manager.selections()},
        "errors": [
            {"name": info.name, "distribution": info.distribution, "error": info.error}
            for info in manager.errors()
        ],
    }
