"""The plugin is installed under its entry-point name and loads without errors."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

from catalyst_kernel.plugins import PluginManager, PluginStatus
from catalyst_kernel.settings import Settings


def test_entry_point_loads(catalyst_settings: Callable[..., Settings]) -> None:
    entry_points = importlib.metadata.entry_points(group="catalyst", name="crossplane")
    manager = PluginManager(catalyst_settings(), strict=True).load(entry_points=entry_points)
    (info,) = [info for info in manager.plugins() if info.name == "crossplane"]
    assert info.status is PluginStatus.LOADED
    assert info.distribution == "catalyst-crossplane"
