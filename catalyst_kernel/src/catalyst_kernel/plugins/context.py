"""The one context object every hook receives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from catalyst_kernel.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["HookContext"]


@frozen
class HookContext:
    """Passed as ``ctx`` to every hook, so new fields never break existing plugins.

    :ivar settings: the Sovereign's settings.
    :ivar plugin_name: the name of the plugin being called (its entry-point name).
    :ivar plugin_settings: the plugin's ``[plugins.<name>]`` table, structured into the class
        its :func:`~catalyst_kernel.plugins.hookspecs.catalyst_plugin_settings` returned, or
        ``None`` when it declares none.
    """

    settings: Settings
    plugin_name: str
    plugin_settings: Any = None

    @property
    def data_dir(self) -> Path:
        """A directory the plugin may own: ``<data_dir>/plugins/<plugin_name>`` (not created)."""
        return self.settings.data_dir / "plugins" / self.plugin_name
