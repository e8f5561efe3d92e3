"""`catalyst plugins` with the whole workspace installed: built-ins and the in-repo plugins."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RunCatalyst = Callable[..., Any]
IN_REPO_PLUGINS = {
    "gitea": "catalyst-gitea",
    "nats": "catalyst-nats",
    "crossplane": "catalyst-crossplane",
    "keycloak-per-organization": "catalyst-keycloak",
    "keycloak-shared-sovereign": "catalyst-keycloak",
    "openbao": "catalyst-openbao",
    "kubernetes": "catalyst-kubernetes",
}


def test_plugins_json_lists_built_ins_in_repo_plugins_and_providers(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    result = run_catalyst("plugins", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    plugins = {plugin["name"]: plugin for plugin in document["plugins"]}
    assert plugins["embedded"]["builtin"]
    assert plugins["dev"]["builtin"]
    assert plugins["embedded"]["distribution"] == "catalyst-kernel"
    for name, distribution in IN_REPO_PLUGINS.items():
        assert plugins[name]["distribution"] == distribution
        assert plugins[name]["version"] == "0.1.0"
        assert plugins[name]["status"] == "loaded"
    assert set(document["providers"]) == {"spine", "committer", "identity", "secrets"}
    assert document["providers"]["spine"]["provider"] == "embedded"
    assert document["providers"]["identity"]["provider"] == "dev"
    assert document["errors"] == []


def test_plugins_table_shows_providers(run_catalyst: RunCatalyst, tmp_path: Path) -> None:
    result = run_catalyst("plugins", env={"CATALYST_PROVIDERS__SPINE": "nats"})
    assert result.returncode == 0, result.stderr
    assert "keycloak-per-organization" in result.stdout
    assert "Providers:" in result.stdout
    assert "spine      nats" in result.stdout


def test_keycloak_topology_selects_the_identity_plugin(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    result = run_catalyst(
        "plugins",
        "--json",
        env={
            "CATALYST_PROVIDERS__IDENTITY": "keycloak",
            "CATALYST_KEYCLOAK_TOPOLOGY": "shared-sovereign",
        },
    )
    providers = json.loads(result.stdout)["providers"]
    assert providers["identity"]["provider"] == "keycloak-shared-sovereign"
