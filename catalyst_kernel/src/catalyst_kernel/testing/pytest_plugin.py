"""pytest plugin for plugin authors (entry point ``pytest11``: ``catalyst``).

Fixtures:

``catalyst_settings``
    A factory: ``catalyst_settings(**overrides)`` returns :class:`Settings` with ``data_dir`` in
    the test's temporary directory, ignoring ``CATALYST_*`` variables and ``catalyst.toml``.
``catalyst_plugin_manager``
    A fresh :class:`PluginManager` per test with the built-ins loaded and no entry points.
``catalyst_register``
    ``catalyst_register(plugin, name)`` registers a plugin object on that manager and
    unregisters it when the test ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from catalyst_kernel.plugins.manager import PluginInfo, PluginManager
from catalyst_kernel.settings import Settings, load_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def catalyst_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", str(tmp_path / "catalyst-data"))
        return load_settings(Path("/dev/null"), environ={}, overrides=overrides)

    return make


@pytest.fixture
def catalyst_plugin_manager(catalyst_settings: Callable[..., Settings]) -> PluginManager:
    return PluginManager(catalyst_settings()).load(entry_points=())


@pytest.fixture
def catalyst_register(
    catalyst_plugin_manager: PluginManager,
) -> Iterator[Callable[..., PluginInfo]]:
    registered: list[str] = []

    def register(plugin: object, name: str, **kwargs: Any) -> PluginInfo:
        info = catalyst_plugin_manager.register(plugin, name, **kwargs)
        registered.append(name)
        return info

    yield register
    for name in reversed(registered):
        catalyst_plugin_manager.unregister(name)
