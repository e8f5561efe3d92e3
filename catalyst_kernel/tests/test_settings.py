"""Settings from catalyst.toml and CATALYST_* variables: precedence and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from catalyst_kernel.errors import SettingsError
from catalyst_kernel.model import KeycloakTopology
from catalyst_kernel.settings import Settings, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalyst.toml"
    path.write_text(text)
    return path


def test_defaults_select_the_built_in_providers() -> None:
    settings = load_settings(Path("/dev/null"), environ={})
    assert settings.providers.spine == "embedded"
    assert settings.providers.committer == "embedded"
    assert settings.providers.secrets == "embedded"
    assert settings.providers.identity == "dev"
    assert settings.keycloak_topology is KeycloakTopology.PER_ORGANIZATION
    assert settings.data_dir.is_absolute()


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
        data_dir = "/srv/catalyst"
        sovereign = "omantel"
        port = 9000
        catalog_paths = ["/catalog", "/more"]
        [providers]
        spine = "nats"
        committer = "gitea"
        [plugins.nats]
        servers = ["nats://a:4222"]
        """.replace("        ", ""),
    )
    settings = load_settings(
        path,
        environ={"CATALYST_PROVIDERS__SPINE": "embedded", "CATALYST_PORT": "9100"},
        overrides={"port": 9200},
    )
    assert settings.data_dir == Path("/srv/catalyst")
    assert settings.sovereign == "omantel"
    assert settings.catalog_paths == (Path("/catalog"), Path("/more"))
    assert settings.providers.spine == "embedded"
    assert settings.providers.committer == "gitea"
    assert settings.port == 9200
    assert settings.plugin_section("nats") == {"servers": ["nats://a:4222"]}


def test_config_file_is_found_through_catalyst_config(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'sovereign = "bankdhofar"\n')
    settings = load_settings(environ={"CATALYST_CONFIG": str(path)})
    assert settings.sovereign == "bankdhofar"


def test_catalyst_toml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(tmp_path, 'sovereign = "cwd"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).sovereign == "cwd"


def test_environment_variables_nest_with_double_underscores() -> None:
    settings = load_settings(
        Path("/dev/null"),
        environ={
            "CATALYST_PROVIDERS__IDENTITY": "keycloak",
            "CATALYST_KEYCLOAK_TOPOLOGY": "shared-sovereign",
            "CATALYST_STRICT_PLUGINS": "1",
            "CATALYST_CATALOG_PATHS": "/a,/b",
            "CATALYST_PLUGIN_DENY": "gitea",
            "CATALYST_PLUGINS__KEYCLOAK_SHARED_SOVEREIGN__REALM": "sovereign",
            "UNRELATED": "ignored",
        },
    )
    assert settings.providers.identity == "keycloak"
    assert settings.keycloak_topology is KeycloakTopology.SHARED_SOVEREIGN
    assert settings.strict_plugins is True
    assert settings.catalog_paths == (Path("/a"), Path("/b"))
    assert settings.plugin_deny == ("gitea",)
    assert settings.plugin_section("keycloak-shared-sovereign") == {"realm": "sovereign"}


@pytest.mark.parametrize(
    ("environ", "key", "fragment"),
    [
        ({"CATALYST_DATA_DIRR": "/x"}, "data_dirr", "unknown key"),
        ({"CATALYST_PROVIDERS__SPINEE": "nats"}, "providers.spinee", "unknown key"),
        ({"CATALYST_PORT": "eighty"}, "port", "expected an integer"),
        ({"CATALYST_PORT": "70000"}, "port", "0..65535"),
        ({"CATALYST_STRICT_PLUGINS": "perhaps"}, "strict_plugins", "true or false"),
        ({"CATALYST_KEYCLOAK_TOPOLOGY": "per-org"}, "keycloak_topology", "'per-organization'"),
        ({"CATALYST_SOVEREIGN": "My Sovereign"}, "sovereign", "DNS label"),
        ({"CATALYST_PROVIDERS__SPINE": "Nats!"}, "providers.spine", "plugin name"),
        ({"CATALYST_PLUGIN_ALLOW": "ok,Bad Name"}, "plugin_allow", "plugin name"),
    ],
)
def test_bad_environment_values_name_the_key_and_variable(
    environ: dict[str, str], key: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(Path("/dev/null"), environ=environ)
    assert caught.value.field == key
    message = str(caught.value)
    assert f"settings key {key} (from environment variable {next(iter(environ))})" in message
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('colour = "blue"\n', "colour", "unknown key"),
        ("[providers]\nspine = 3\n", "providers.spine", "expected a string"),
        ('port = "8000"\n', "port", "expected an integer"),
        ("strict_plugins = 1\n", "strict_plugins", "true or false"),
        ('providers = "nats"\n', "providers", ""),
        ('plugins = {nats = "x"}\n', "plugins.nats", "expected a mapping"),
        ('catalog_paths = "/x"\n', "catalog_paths", "expected a list"),
    ],
)
def test_bad_file_values_name_the_key_and_file(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    path = _toml(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={})
    assert caught.value.field == key
    assert f"settings key {key} (from {path})" in str(caught.value)
    assert fragment in str(caught.value)


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = \n")
    with pytest.raises(SettingsError, match=r"not valid TOML.*line 1"):
        load_settings(path, environ={})


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"CATALYST_CONFIG": str(tmp_path / "nope.toml")})


def test_keycloak_plugin_name_must_agree_with_the_topology() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            Path("/dev/null"),
            environ={},
            overrides={"providers": {"identity": "keycloak-shared-sovereign"}},
        )
    assert "contradicts keycloak_topology" in str(caught.value)
    assert caught.value.field == "providers"


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'colour = "blue"\nport = "x"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={})
    assert "colour" in str(caught.value)
    assert "port" in str(caught.value)


def test_repository_url_template_fills_in_the_environment() -> None:
    settings = load_settings(Path("/dev/null"), environ={"CATALYST_SOVEREIGN": "omantel"})
    assert settings.repository_url("acme", "acme-prod") == (
        "https://git.omantel.example/acme/acme-prod.git"
    )


def test_repository_url_template_accepts_only_known_fields() -> None:
    with pytest.raises(SettingsError, match=r"not env, sovereign\.__class__"):
        load_settings(
            Path("/dev/null"),
            environ={"CATALYST_REPOSITORY_URL_TEMPLATE": "x/{env}/{sovereign.__class__}"},
        )


def _keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for field in attrs.fields(cls):
        if isinstance(field.type, type) and attrs.has(field.type):
            keys += _keys(field.type, f"{prefix}{field.name}.")
        else:
            keys.append(f"{prefix}{field.name}")
    return keys


def test_every_key_is_in_the_operator_guide() -> None:
    guide = (Path(__file__).parents[2] / "docs" / "operator-guide.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.<>]+)` \|", guide, flags=re.MULTILINE))
    keys = _keys(attrs.resolve_types(Settings))
    assert "policy.recheck_interval" in keys
    missing = [
        key for key in keys if key not in documented and f"{key}.<name>.<key>" not in documented
    ]
    assert missing == []
