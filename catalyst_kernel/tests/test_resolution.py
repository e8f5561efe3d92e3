"""Dependency resolution: ranges, conditions, values, diamonds, cycles, pins (SPEC §5.1, §9)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from catalyst_kernel.blueprints.lookup import BlueprintLookup
from catalyst_kernel.errors import InvalidInput, NotFound
from catalyst_kernel.model import Blueprint, structure
from catalyst_kernel.provisioning.resolution import (
    InstallTarget,
    Resolution,
    ResolutionError,
    Resolver,
    resolve,
)

TARGET = InstallTarget(application="marketing-site", environment="acme-prod")
PLANTED = "PLANTED-admin-s3cr3t"


class Catalog:
    """A dict-backed :class:`BlueprintLookup` that counts what resolution asks for."""

    def __init__(self, blueprints: Sequence[Blueprint]) -> None:
        self.blueprints = {(bp.name, bp.version): bp for bp in blueprints}
        self.calls: Counter[tuple[str, str]] = Counter()

    def versions(self, name: str) -> Sequence[str]:
        self.calls["versions", name] += 1
        return [version for (bp, version) in self.blueprints if bp == name]

    def get(self, name: str, version: str) -> Blueprint:
        self.calls["get", f"{name}@{version}"] += 1
        try:
            return self.blueprints[name, version]
        except KeyError:
            raise NotFound(f"{name}@{version} not found") from None


def blueprint(
    name: str,
    version: str,
    *depends: dict[str, Any],
    schema: dict[str, Any] | None = None,
) -> Blueprint:
    return structure(
        {
            "metadata": {"name": name, "version": version},
            "spec": {
                "card": {"title": name},
                "configSchema": schema or {},
                "depends": list(depends),
                "manifests": {"source": {"kind": "Kustomize", "ref": {"path": "manifests"}}},
            },
        },
        Blueprint,
    )


def dep(
    name: str, version: str, alias: str, when: str | None = None, **values: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {"blueprint": name, "version": version, "alias": alias}
    if when is not None:
        entry["when"] = when
    if values:
        entry["values"] = values
    return entry


POSTGRES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "databases": {"type": "array", "items": {"type": "string"}, "default": []},
        "storage": {"type": "string", "default": "10Gi"},
        "superuserPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
    },
}
WORDPRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "postgres": {
            "type": "object",
            "properties": {"mode": {"enum": ["embedded", "external"], "default": "embedded"}},
        },
        "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
    },
}
POSTGRES_VERSIONS = ("1.3.0", "1.4.0", "1.4.2", "1.5.1", "1.9.0", "2.0.0", "2.1.0-rc.1")


def postgres(*versions: str) -> list[Blueprint]:
    return [blueprint("bp-postgres", v, schema=POSTGRES_SCHEMA) for v in versions]


def wordpress(version: str = "1.4.0", postgres_range: str = "^1.4") -> Blueprint:
    return blueprint(
        "bp-wordpress",
        version,
        dep(
            "bp-postgres",
            postgres_range,
            "db",
            when="{{ .config.postgres.mode == 'embedded' }}",
            databases=["{{ .application.name }}"],
        ),
        schema=WORDPRESS_SCHEMA,
    )


def run(
    catalog: BlueprintLookup,
    name: str,
    version: str | None = None,
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Resolution:
    return resolve(catalog, name, version, config or {}, TARGET, **kwargs)


def failure(catalog: BlueprintLookup, name: str, **kwargs: Any) -> ResolutionError:
    with pytest.raises(ResolutionError) as caught:
        run(catalog, name, **kwargs)
    return caught.value


# --------------------------------------------------------------------------------------------
# versions


@pytest.mark.parametrize(
    ("requested", "selected"),
    [
        ("^1.4", "1.9.0"),
        ("^1.4.1", "1.9.0"),
        ("~1.4", "1.4.2"),
        ("~1.4.0", "1.4.2"),
        ("1.4.x", "1.4.2"),
        ("1.x", "1.9.0"),
        ("1.4.0", "1.4.0"),
        ("=1.5.1", "1.5.1"),
        (">=1.4.0 <1.9.0", "1.5.1"),
        ("^1.0 || ^2.0", "2.0.0"),
        ("^2", "2.0.0"),  # the prerelease 2.1.0-rc.1 is not picked by a plain range
        ("^2.1.0-rc.1", "2.1.0-rc.1"),
        ("*", "2.0.0"),
        (None, "2.0.0"),
    ],
)
def test_every_range_form_selects_the_highest_satisfying_version(
    requested: str | None, selected: str
) -> None:
    catalog = Catalog(postgres(*POSTGRES_VERSIONS))
    assert run(catalog, "bp-postgres", requested).root_node.version == selected


@pytest.mark.parametrize(
    ("requested", "selected"),
    [("^1.4", "1.9.0"), ("~1.4", "1.4.2"), ("1.5.x", "1.5.1"), ("1.4.0", "1.4.0")],
)
def test_a_dependency_gets_the_highest_version_in_its_range(requested: str, selected: str) -> None:
    catalog = Catalog([wordpress(postgres_range=requested), *postgres(*POSTGRES_VERSIONS)])
    assert run(catalog, "bp-wordpress").versions == {
        "bp-postgres": selected,
        "bp-wordpress": "1.4.0",
    }


def test_version_lists_are_read_once_per_blueprint() -> None:
    catalog = Catalog(
        [
            blueprint(
                "bp-stack",
                "1.0.0",
                dep("bp-wordpress", "^1", "blog"),
                dep("bp-matomo", "^1", "analytics"),
                dep("bp-postgres", "^1", "db"),
            ),
            wordpress(postgres_range="^1.4"),
            blueprint("bp-matomo", "1.0.0", dep("bp-postgres", "~1.4", "db")),
            *postgres(*POSTGRES_VERSIONS),
        ]
    )
    result = run(catalog, "bp-stack")
    assert result.versions["bp-postgres"] == "1.4.2"  # a second pass lowered it
    assert {k: v for k, v in catalog.calls.items() if k[0] == "versions"} == {
        ("versions", "bp-stack"): 1,
        ("versions", "bp-wordpress"): 1,
        ("versions", "bp-matomo"): 1,
        ("versions", "bp-postgres"): 1,
    }
    assert all(count == 1 for (kind, _), count in catalog.calls.items() if kind == "get")


def test_an_unsatisfiable_range_names_the_chain_and_the_published_versions() -> None:
    catalog = Catalog([wordpress(postgres_range="^3"), *postgres(*POSTGRES_VERSIONS)])
    caught = failure(catalog, "bp-wordpress")
    assert caught.kind == "unsatisfiable"
    assert caught.chains == ("bp-wordpress@1.4.0 → db(bp-postgres ^3)",)
    assert str(caught) == (
        "no version of bp-postgres satisfies ^3: required by "
        "bp-wordpress@1.4.0 → db(bp-postgres ^3); published: "
        "2.1.0-rc.1, 2.0.0, 1.9.0, 1.5.1, 1.4.2, 1.4.0, 1.3.0"
    )


def test_a_missing_dependency_is_unsatisfiable() -> None:
    caught = failure(Catalog([wordpress()]), "bp-wordpress")
    assert caught.kind == "unsatisfiable"
    assert "no version of bp-postgres is published" in str(caught)
    assert "bp-wordpress@1.4.0 → db(bp-postgres ^1.4)" in str(caught)


def test_an_unsatisfiable_root_range_is_named() -> None:
    caught = failure(Catalog(postgres("1.4.0")), "bp-postgres", version="^2")
    assert caught.chains == ("bp-postgres ^2",)
    assert "published: 1.4.0" in str(caught)


def test_an_unknown_root_blueprint_is_not_found() -> None:
    with pytest.raises(NotFound, match="bp-nope does not exist"):
        run(Catalog([]), "bp-nope")


def test_a_malformed_root_range_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        run(Catalog(postgres("1.4.0")), "bp-postgres", "^^1")


# --------------------------------------------------------------------------------------------
# when and values


def test_when_on_records_the_reason_and_renders_values() -> None:
    catalog = Catalog([wordpress(), *postgres("1.4.2")])
    result = run(catalog, "bp-wordpress")
    assert [node.name for node in result.nodes] == ["bp-postgres", "bp-wordpress"]
    root = result.root_node
    assert root.application == "marketing-site"
    assert root.dependencies == {"db": "bp-postgres"}
    (decision,) = root.decisions
    assert decision.application == "marketing-site"
    assert decision.alias == "db"
    assert decision.enabled is True
    assert decision.expression == "{{ .config.postgres.mode == 'embedded' }}"
    assert decision.reason == (
        "{{ .config.postgres.mode == 'embedded' }} is true (.config.postgres.mode = \"embedded\")"
    )
    db = result.node("bp-postgres")
    assert db.application == "marketing-site-postgres"
    # values rendered in the requirer's context, then defaulted against bp-postgres's schema
    assert db.config == {"databases": ["marketing-site"], "storage": "10Gi"}
    assert db.requirements[0].chain == "bp-wordpress@1.4.0 → db(bp-postgres ^1.4)"


def test_when_off_leaves_the_dependency_out_and_says_why() -> None:
    catalog = Catalog([wordpress(), *postgres("1.4.2")])
    result = run(catalog, "bp-wordpress", config={"postgres": {"mode": "external"}})
    assert [node.name for node in result.nodes] == ["bp-wordpress"]
    assert result.root_node.dependencies == {}
    (decision,) = result.decisions
    assert decision.enabled is False
    assert decision.reason.endswith('is false (.config.postgres.mode = "external")')
    assert ("versions", "bp-postgres") not in catalog.calls


def test_a_dependency_without_when_is_always_on() -> None:
    catalog = Catalog(
        [blueprint("bp-blog", "1.0.0", dep("bp-postgres", "^1", "db")), *postgres("1.4.2")]
    )
    (decision,) = run(catalog, "bp-blog").decisions
    assert (decision.enabled, decision.expression) == (True, None)
    assert decision.reason == "no condition: always required"


def test_values_see_the_environment_and_typed_values() -> None:
    catalog = Catalog(
        [
            blueprint(
                "bp-app",
                "1.0.0",
                dep(
                    "bp-postgres",
                    "^1",
                    "db",
                    databases=["{{ .environment.organization }}-{{ .environment.envType }}"],
                    storage="{{ default(.config.storage, '5Gi') }}",
                ),
                schema={"properties": {"storage": {"type": "string"}}},
            ),
            *postgres("1.4.2"),
        ]
    )
    assert run(catalog, "bp-app").node("bp-postgres").config == {
        "databases": ["acme-prod"],
        "storage": "5Gi",
    }
    tuned = run(catalog, "bp-app", config={"storage": "50Gi"})
    assert tuned.node("bp-postgres").config["storage"] == "50Gi"


def test_a_broken_when_names_the_blueprint_field_and_position() -> None:
    catalog = Catalog(
        [blueprint("bp-app", "1.0.0", dep("bp-postgres", "^1", "db", when="{{ .config.x == }}"))]
    )
    caught = failure(catalog, "bp-app")
    assert caught.kind == "invalid-blueprint"
    assert caught.field == "/spec/depends/0/when"
    assert str(caught).startswith("bp-app@1.0.0: /spec/depends/0/when (db): expression")
    assert "column 17" in str(caught)


def test_a_broken_value_template_names_its_pointer() -> None:
    catalog = Catalog(
        [blueprint("bp-app", "1.0.0", dep("bp-postgres", "^1", "db", databases=["{{ nope }}"]))]
    )
    caught = failure(catalog, "bp-app")
    assert caught.field == "/spec/depends/0/values/databases/0"


def test_rendered_values_that_break_the_dependency_schema_name_the_chain() -> None:
    catalog = Catalog(
        [
            blueprint("bp-app", "1.0.0", dep("bp-postgres", "^1", "db", databases="{{ 5 }}")),
            *postgres("1.4.2"),
        ]
    )
    caught = failure(catalog, "bp-app")
    assert caught.kind == "invalid-config"
    assert str(caught).startswith(
        "bp-app@1.0.0 → db(bp-postgres@1.4.2): config of bp-postgres@1.4.2 is invalid: "
        "/databases: must be of type array, not integer"
    )
    assert [p.pointer for p in caught.problems] == ["/databases"]


def test_an_invalid_root_config_reports_every_problem_by_pointer() -> None:
    catalog = Catalog(postgres("1.4.2"))
    with pytest.raises(InvalidInput) as caught:
        run(catalog, "bp-postgres", config={"storage": 5, "colour": "red"})
    assert {p.pointer for p in caught.value.problems} == {"/storage", "/colour"}


def test_an_invalid_config_schema_is_an_invalid_blueprint() -> None:
    catalog = Catalog([blueprint("bp-app", "1.0.0", schema={"type": "strin"})])
    caught = failure(catalog, "bp-app")
    assert caught.kind == "invalid-blueprint"
    assert "configSchema of bp-app@1.0.0 is not a valid JSON Schema" in str(caught)


# --------------------------------------------------------------------------------------------
# diamonds


def web_stack(matomo_postgres: str, *, extra: dict[str, Any] | None = None) -> list[Blueprint]:
    return [
        blueprint(
            "bp-web-stack",
            "1.0.0",
            dep("bp-wordpress", "^1", "wordpress"),
            dep("bp-matomo", "^2", "analytics"),
        ),
        wordpress("1.4.0", "^1.4"),
        blueprint(
            "bp-matomo",
            "2.0.0",
            dep(
                "bp-postgres",
                matomo_postgres,
                "db",
                databases=["{{ .application.name }}"],
                **(extra or {}),
            ),
        ),
        *postgres(*POSTGRES_VERSIONS),
    ]


def test_a_diamond_collapses_to_one_node_at_the_highest_common_version() -> None:
    result = run(Catalog(web_stack("~1.5")), "bp-web-stack")
    assert [node.name for node in result.nodes] == [
        "bp-postgres",
        "bp-wordpress",
        "bp-matomo",
        "bp-web-stack",
    ]
    db = result.node("bp-postgres")
    assert db.version == "1.5.1"  # ^1.4 alone would be 1.9.0, ~1.5 alone 1.5.1
    assert [r.chain for r in db.requirements] == [
        "bp-web-stack@1.0.0 → wordpress(bp-wordpress@1.4.0) → db(bp-postgres ^1.4)",
        "bp-web-stack@1.0.0 → analytics(bp-matomo@2.0.0) → db(bp-postgres ~1.5)",
    ]
    # Each requirer's values are merged into the one node: lists are united.
    assert db.config["databases"] == ["marketing-site-wordpress", "marketing-site-matomo"]
    assert db.application == "marketing-site-postgres"
    assert result.node("bp-wordpress").dependencies == {"db": "bp-postgres"}
    assert result.node("bp-matomo").dependencies == {"db": "bp-postgres"}


def test_a_diamond_with_incompatible_ranges_names_both_chains() -> None:
    caught = failure(Catalog(web_stack("^2")), "bp-web-stack")
    assert caught.kind == "conflict"
    assert caught.chains == (
        "bp-web-stack@1.0.0 → wordpress(bp-wordpress@1.4.0) → db(bp-postgres ^1.4)",
        "bp-web-stack@1.0.0 → analytics(bp-matomo@2.0.0) → db(bp-postgres ^2)",
    )
    message = str(caught)
    assert message.startswith("bp-postgres is required with incompatible ranges: ")
    assert all(chain in message for chain in caught.chains)


def test_a_diamond_with_different_scalar_values_is_a_conflict() -> None:
    catalog = Catalog(
        [
            blueprint(
                "bp-stack",
                "1.0.0",
                dep("bp-postgres", "^1", "db", storage="10Gi"),
                dep("bp-matomo", "^2", "analytics"),
            ),
            blueprint("bp-matomo", "2.0.0", dep("bp-postgres", "^1", "db", storage="20Gi")),
            *postgres("1.4.2"),
        ]
    )
    caught = failure(catalog, "bp-stack")
    assert caught.kind == "conflict"
    assert caught.field == "/storage"
    assert caught.chains == (
        "bp-stack@1.0.0 → db(bp-postgres ^1)",
        "bp-stack@1.0.0 → analytics(bp-matomo@2.0.0) → db(bp-postgres ^1)",
    )


def test_lowering_a_diamond_version_drops_what_only_the_higher_version_needed() -> None:
    # First pass: bp-cache ^1 alone picks 1.9.0, which needs bp-redis. The second requirement,
    # ~1.2, lowers bp-cache to 1.2.0, which does not: bp-redis must disappear from the plan.
    catalog = Catalog(
        [
            blueprint(
                "bp-stack", "1.0.0", dep("bp-cache", "^1", "cache"), dep("bp-api", "^1", "api")
            ),
            blueprint("bp-api", "1.0.0", dep("bp-cache", "~1.2", "cache")),
            blueprint("bp-cache", "1.2.0"),
            blueprint("bp-cache", "1.9.0", dep("bp-redis", "^7", "redis")),
            blueprint("bp-redis", "7.0.0"),
        ]
    )
    result = run(catalog, "bp-stack")
    assert result.versions == {"bp-cache": "1.2.0", "bp-api": "1.0.0", "bp-stack": "1.0.0"}


# --------------------------------------------------------------------------------------------
# cycles


def test_a_cycle_is_named() -> None:
    catalog = Catalog(
        [
            blueprint("bp-a", "1.0.0", dep("bp-b", "^1", "b")),
            blueprint("bp-b", "1.0.0", dep("bp-c", "^1", "c")),
            blueprint("bp-c", "1.0.0", dep("bp-b", "^1", "back")),
        ]
    )
    caught = failure(catalog, "bp-a")
    assert caught.kind == "cycle"
    assert str(caught) == "dependency cycle: bp-b@1.0.0 → c(bp-c@1.0.0) → back(bp-b ^1)"


def test_a_blueprint_depending_on_itself_is_a_cycle() -> None:
    caught = failure(Catalog([blueprint("bp-a", "1.0.0", dep("bp-a", "^1", "me"))]), "bp-a")
    assert str(caught) == "dependency cycle: bp-a@1.0.0 → me(bp-a ^1)"


def test_a_cycle_back_to_the_root_is_named() -> None:
    catalog = Catalog(
        [
            blueprint("bp-a", "1.0.0", dep("bp-b", "^1", "b")),
            blueprint("bp-b", "1.0.0", dep("bp-a", "^1", "a")),
        ]
    )
    assert failure(catalog, "bp-a").chains == ("bp-a@1.0.0 → b(bp-b@1.0.0) → a(bp-a ^1)",)


def test_a_cycle_switched_off_by_when_is_fine() -> None:
    catalog = Catalog(
        [
            blueprint("bp-a", "1.0.0", dep("bp-b", "^1", "b")),
            blueprint("bp-b", "1.0.0", dep("bp-a", "^1", "a", when="{{ false }}")),
        ]
    )
    assert [node.name for node in run(catalog, "bp-a").nodes] == ["bp-b", "bp-a"]


# --------------------------------------------------------------------------------------------
# pinned: reuse an existing Application


def test_a_pinned_dependency_is_reused_and_not_descended_into() -> None:
    catalog = Catalog(
        [
            wordpress(),
            *[
                blueprint("bp-postgres", v, dep("bp-backup", "^1", "backup"))
                for v in POSTGRES_VERSIONS
            ],
        ]
    )
    result = run(catalog, "bp-wordpress", pinned={"bp-postgres": "1.4.2"})
    db = result.node("bp-postgres")
    assert (db.version, db.pinned, db.application, db.blueprint) == ("1.4.2", True, None, None)
    assert db.config == {}
    assert db.dependencies == {}
    assert "bp-backup" not in result.versions  # bp-postgres's own dependencies are its business
    assert ("versions", "bp-backup") not in catalog.calls
    assert result.root_node.dependencies == {"db": "bp-postgres"}


def test_a_pinned_version_outside_a_range_names_the_chain() -> None:
    catalog = Catalog([wordpress(), *postgres(*POSTGRES_VERSIONS)])
    caught = failure(catalog, "bp-wordpress", pinned={"bp-postgres": "1.3.0"})
    assert caught.kind == "pinned"
    assert str(caught) == (
        "bp-postgres is pinned to 1.3.0 (an existing Application is reused), which does not "
        "satisfy bp-wordpress@1.4.0 → db(bp-postgres ^1.4)"
    )


def test_pins_that_are_not_required_are_ignored() -> None:
    catalog = Catalog(postgres("1.4.2"))
    assert run(catalog, "bp-postgres", pinned={"bp-redis": "7.0.0"}).versions == {
        "bp-postgres": "1.4.2"
    }


@pytest.mark.parametrize(
    ("pinned", "fragment"),
    [
        ({"bp-postgres": "1.4"}, "not a SemVer"),
        ({"postgres": "1.4.0"}, "must start with 'bp-'"),
        ({"bp-wordpress": "1.4.0"}, "cannot also be pinned"),
    ],
)
def test_malformed_pins_are_invalid_input(pinned: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        run(Catalog([wordpress(), *postgres("1.4.2")]), "bp-wordpress", pinned=pinned)


# --------------------------------------------------------------------------------------------
# secrets


def test_secrets_are_split_per_node_and_invisible_to_templates() -> None:
    catalog = Catalog(
        [
            blueprint(
                "bp-app",
                "1.0.0",
                dep(
                    "bp-postgres",
                    "^1",
                    "db",
                    when="{{ .config.adminPassword == null }}",
                    databases=["{{ default(.config.adminPassword, 'hidden') }}"],
                ),
                schema=WORDPRESS_SCHEMA,
            ),
            *postgres("1.4.2"),
        ]
    )
    result = run(catalog, "bp-app", config={"adminPassword": PLANTED})
    root = result.root_node
    assert root.secrets["/adminPassword"].value == PLANTED
    assert root.secrets["/adminPassword"].name == "admin-password"
    assert "adminPassword" not in root.config
    assert result.node("bp-postgres").config["databases"] == ["hidden"]
    assert PLANTED not in repr(result)
    public = [node.config for node in result.nodes], [d.reason for d in result.decisions]
    assert PLANTED not in json.dumps(public)


def test_a_secret_never_appears_in_a_resolution_error() -> None:
    catalog = Catalog(
        [
            blueprint(
                "bp-app",
                "1.0.0",
                schema={
                    "properties": {
                        "token": {"type": "integer", "x-catalyst-ui-hint": "password"},
                        "other": {"anyOf": [{"type": "integer"}]},
                    }
                },
            )
        ]
    )
    with pytest.raises(InvalidInput) as caught:
        run(catalog, "bp-app", config={"token": PLANTED, "other": {"x": PLANTED}})
    assert PLANTED not in str(caught.value)
    assert all(PLANTED not in p.message for p in caught.value.problems)


# --------------------------------------------------------------------------------------------
# the API


def test_dependency_application_names_follow_the_naming_rule() -> None:
    result = run(Catalog(web_stack("^1.4")), "bp-web-stack")
    assert {node.name: node.application for node in result.nodes} == {
        "bp-web-stack": "marketing-site",
        "bp-wordpress": "marketing-site-wordpress",
        "bp-matomo": "marketing-site-matomo",
        "bp-postgres": "marketing-site-postgres",
    }


def test_a_resolver_can_be_reused_against_the_same_catalog() -> None:
    catalog = Catalog([wordpress(), *postgres(*POSTGRES_VERSIONS)])
    resolver = Resolver(catalog)
    first = resolver.resolve("bp-wordpress", None, {}, TARGET)
    assert resolver.resolve("bp-wordpress", None, {}, TARGET) == first
    assert resolver.resolve("bp-wordpress", "^1", {}, TARGET).versions == first.versions
    assert catalog.calls["versions", "bp-postgres"] == 1


def test_install_target_names_are_validated() -> None:
    with pytest.raises(InvalidInput):
        InstallTarget(application="Marketing", environment="acme-prod")
    with pytest.raises(InvalidInput):
        InstallTarget(application="marketing", environment="acme-staging")


def test_a_deep_chain_resolves_without_recursion_limits() -> None:
    depth = 1500
    catalog = Catalog(
        [
            blueprint(
                f"bp-n{i}", "1.0.0", *([dep(f"bp-n{i + 1}", "^1", "next")] if i < depth else [])
            )
            for i in range(depth + 1)
        ]
    )
    result = resolve(
        catalog, "bp-n0", None, {}, InstallTarget(application="x", environment="acme-prod")
    )
    assert len(result.nodes) == depth + 1
    assert result.nodes[0].name == f"bp-n{depth}"
    assert result.nodes[-1].name == "bp-n0"
