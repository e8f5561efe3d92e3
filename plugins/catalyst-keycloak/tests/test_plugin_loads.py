"""Both topology plugins are installed under their entry-point names and load without errors."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import pytest

from catalyst_kernel.plugins import PluginManager, PluginStatus
from catalyst_kernel.settings import Settings


@pytest.mark.parametrize("name", ["keycloak-per-organization", "keycloak-shared-sovereign"])
def test_entry_point_loads(catalyst_settings: Callable[..., Settings], name: str) -> None:
    entry_points = importlib.metadata.entry_points(group="catalyst", name=name)
    manager = PluginManager(catalyst_settings(), strict=True).load(entry_points=entry_points)
    (info,) = [info for info in manager.plugins() if info.name == name]
    assert info.status is PluginStatus.LOADED
    assert info.distribution == "catalyst-keycloak"
