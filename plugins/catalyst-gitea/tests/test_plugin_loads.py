"""The plugin is installed under its entry-point name, loads without errors and registers the
committer, the webhook receiver, the bypass projection and its settings."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import pytest

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.settings import GiteaSettings
from catalyst_kernel.errors import SettingsError
from catalyst_kernel.plugins import PluginManager, PluginStatus
from catalyst_kernel.settings import Settings


def load(settings: Settings) -> PluginManager:
    entry_points = importlib.metadata.entry_points(group="catalyst", name="gitea")
    return PluginManager(settings, strict=True).load(entry_points=entry_points)


def test_entry_point_loads(catalyst_settings: Callable[..., Settings]) -> None:
    manager = load(catalyst_settings())
    (info,) = [info for info in manager.plugins() if info.name == "gitea"]
    assert info.status is PluginStatus.LOADED
    assert info.distribution == "catalyst-gitea"


def test_selected_as_committer_with_its_settings(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(
        providers={"committer": "gitea"},
        plugins={"gitea": {"url": "https://git.example", "token": "t0k3n-value"}},
    )
    manager = load(settings)
    gitea = manager.plugin_settings("gitea")
    assert isinstance(gitea, GiteaSettings)
    assert gitea.url == "https://git.example"
    assert "t0k3n-value" not in repr(gitea)
    assert isinstance(manager.committer(), GiteaCommitter)
    assert [e.name for e in manager.api_extensions()] == ["gitea-webhooks"]
    assert "gitea-bypassed-pushes" in [p.name for p in manager.projections()]


def test_nothing_but_the_committer_without_being_selected(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = load(catalyst_settings())
    assert [e.name for e in manager.api_extensions()] == []
    assert "gitea-bypassed-pushes" not in [p.name for p in manager.projections()]


def test_unknown_settings_are_refused_by_name(
    catalyst_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(SettingsError, match=r"plugins\.gitea"):
        load(catalyst_settings(plugins={"gitea": {"tokn": "typo"}}))
