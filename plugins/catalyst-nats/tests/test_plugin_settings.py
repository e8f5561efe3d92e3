"""``[plugins.nats]``: structured by the kernel, errors naming the key, the spine it selects."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.errors import InvalidInput, SettingsError
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.settings import Settings, load_settings
from catalyst_nats.settings import NatsSettings, Storage
from catalyst_nats.spine import NatsSpine

NATS_ENTRY_POINTS = importlib.metadata.entry_points(group="catalyst", name="nats")


def manager_for(settings: Settings) -> PluginManager:
    return PluginManager(settings, strict=True).load(entry_points=NATS_ENTRY_POINTS)


def test_providers_spine_nats_selects_the_nats_spine(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(
        providers={"spine": "nats"},
        plugins={"nats": {"servers": ["nats://a:4222", "tls://b:4443"], "history": 10}},
    )
    spine = manager_for(settings).spine()
    assert isinstance(spine, NatsSpine)
    assert spine.settings.servers == ("nats://a:4222", "tls://b:4443")
    assert spine.settings.history == 10
    assert spine.settings.tls
    assert spine.managed is None


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        Path("/dev/null"),
        environ={
            "CATALYST_DATA_DIR": str(tmp_path),
            "CATALYST_PROVIDERS__SPINE": "nats",
            "CATALYST_PLUGINS__NATS__SERVERS": "nats://a:4222, nats://b:4222",
            "CATALYST_PLUGINS__NATS__STORAGE": "memory",
            "CATALYST_PLUGINS__NATS__MANAGED": "false",
        },
    )
    nats_settings = manager_for(settings).plugin_settings("nats")
    assert nats_settings.servers == ("nats://a:4222", "nats://b:4222")
    assert nats_settings.storage is Storage.MEMORY


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"history": 65}, "plugins.nats.history"),
        ({"servers": ["http://a"]}, "plugins.nats.servers"),
        ({"request_timeout": 0}, "plugins.nats.request_timeout"),
        ({"storage": "tape"}, "plugins.nats.storage"),
        ({"jetstream_domain": "a.b"}, "plugins.nats.jetstream_domain"),
        ({"no_such_key": 1}, "plugins.nats.no_such_key"),
    ],
)
def test_bad_settings_name_their_key(
    catalyst_settings: Callable[..., Settings], section: dict[str, Any], key: str
) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")) as raised:
        manager_for(catalyst_settings(plugins={"nats": section}))
    assert raised.value.field == key


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"user": "a", "token": "t"}, "one way to authenticate"),
        ({"password": "p"}, "password needs a user"),
        ({"tls_cert_file": "/c.pem"}, "go together"),
        ({"reconnect_wait": 5, "reconnect_wait_max": 1}, "at least reconnect_wait"),
    ],
)
def test_inconsistent_settings_are_refused(
    catalyst_settings: Callable[..., Settings], section: dict[str, Any], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem):
        manager_for(catalyst_settings(plugins={"nats": section}))


def test_managed_mode_keeps_jetstream_in_the_plugin_data_dir(
    catalyst_settings: Callable[..., Settings],
) -> None:
    settings = catalyst_settings(providers={"spine": "nats"}, plugins={"nats": {"managed": True}})
    spine = manager_for(settings).spine()
    assert isinstance(spine, NatsSpine)
    assert spine.managed is not None
    assert spine.managed.store == settings.data_dir / "plugins" / "nats" / "jetstream"


def test_defaults_are_a_local_durable_server() -> None:
    settings = NatsSettings()
    assert settings.servers == ("nats://127.0.0.1:4222",)
    assert settings.storage is Storage.FILE
    assert settings.history == 64
    assert not settings.tls


def test_credentials_never_show_in_reprs_or_errors() -> None:
    assert "s3cret" not in repr(NatsSettings(user="catalyst", password="s3cret-password"))
    assert "s3cret" not in repr(NatsSettings(token="s3cret-token"))
    with pytest.raises(InvalidInput) as caught:
        NatsSettings(servers=("nats://catalyst:s3cret-password@127.0.0.1:4222",))
    assert "s3cret" not in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        NatsSettings(servers=("http://catalyst:s3cret-password@127.0.0.1:4222",))
    assert "s3cret" not in str(caught.value)
