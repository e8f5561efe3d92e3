"""The example plugin proves itself with the kernel's conformance suite and fixtures."""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

import pytest

from catalyst_example_heartbeat.settings import HeartbeatSettings
from catalyst_example_heartbeat.source import HeartbeatSource
from catalyst_kernel.errors import SettingsError
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.testing import EventSourceConformance

if TYPE_CHECKING:
    from collections.abc import Callable

    from catalyst_kernel.settings import Settings


class TestHeartbeatSource(EventSourceConformance):
    expected_events = 2

    @pytest.fixture
    def provider(self) -> HeartbeatSource:
        settings = HeartbeatSettings(environments=("acme-dev", "acme-prod"), interval_seconds=0.01)
        return HeartbeatSource(settings, "test")


def _heartbeat_entry_point() -> importlib.metadata.EntryPoint:
    (entry_point,) = importlib.metadata.entry_points(group="catalyst", name="heartbeat")
    return entry_point


def test_installed_plugin_takes_its_settings_table(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(
        plugins={"heartbeat": {"environments": ["acme-dev"], "interval_seconds": 5}}
    )
    manager = PluginManager(settings).load(entry_points=[_heartbeat_entry_point()])
    (source,) = manager.event_sources()
    assert isinstance(source, HeartbeatSource)
    assert manager.plugin_settings("heartbeat") == HeartbeatSettings(("acme-dev",), 5.0)


def test_bad_settings_name_the_key(catalyst_settings: Callable[..., Settings]) -> None:
    settings = catalyst_settings(plugins={"heartbeat": {"environments": ["acme-staging"]}})
    with pytest.raises(SettingsError, match=r"plugins\.heartbeat\.environments") as caught:
        PluginManager(settings).load(entry_points=[_heartbeat_entry_point()])
    assert "staging" in str(caught.value)
