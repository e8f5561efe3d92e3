"""The domain model: construction-time validation and the one converter's wire format."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import (
    Blueprint,
    EnvironmentPolicy,
    Event,
    FileAction,
    FileChange,
    InstallPlan,
    PlanAction,
    PlannedApplication,
    Principal,
    Role,
    SourceKind,
    Visibility,
    WhenDecision,
    structure,
    unstructure,
)

WORDPRESS: dict[str, Any] = {
    "apiVersion": "catalyst.openova.io/v1alpha1",
    "kind": "Blueprint",
    "metadata": {"name": "bp-wordpress", "version": "1.3.0"},
    "spec": {
        "card": {"title": "WordPress", "summary": "Blog and CMS", "category": "component"},
        "visibility": "listed",
        "owner": {"team": "team-web"},
        "configSchema": {
            "type": "object",
            "properties": {
                "postgres": {
                    "type": "object",
                    "properties": {"mode": {"enum": ["embedded", "external"]}},
                },
                "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
            },
        },
        "placementSchema": {"type": "object"},
        "depends": [
            {
                "blueprint": "bp-postgres",
                "version": "^1.4",
                "alias": "db",
                "when": "{{ .config.postgres.mode == 'embedded' }}",
                "values": {"databases": ["{{ .application.name }}"]},
            }
        ],
        "manifests": {
            "source": {
                "kind": "HelmChart",
                "ref": {"chart": "wordpress", "repository": "oci://charts", "version": "24.1.0"},
            },
            "overlays": {"small": {"replicaCount": 1}, "large": {"replicaCount": 3}},
        },
        "upgrades": {"from": "^1.2", "blocks": [{"from": "<1.2.0", "reason": "schema change"}]},
        "rotation": [{"secret": "admin", "every": "720h"}],
        "observability": {"dashboards": ["wordpress"], "serviceMonitor": True},
        "resources": [
            {
                "name": "media",
                "apiVersion": "storage.openova.io/v1alpha1",
                "kind": "BucketClaim",
                "spec": {"size": "10Gi"},
            }
        ],
    },
}


def _problems(data: Any, cl: type) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        structure(data, cl)
    return {problem.pointer: problem.message for problem in caught.value.problems}


def test_blueprint_reference_shape_round_trips() -> None:
    blueprint = structure(WORDPRESS, Blueprint)
    assert blueprint.name == "bp-wordpress"
    assert blueprint.spec.visibility is Visibility.LISTED
    assert blueprint.spec.manifests.source.kind is SourceKind.HELM_CHART
    assert blueprint.spec.depends[0].alias == "db"
    assert blueprint.spec.upgrades.from_ == "^1.2"
    assert structure(unstructure(blueprint), Blueprint) == blueprint
    wire = unstructure(blueprint)
    assert wire["spec"]["configSchema"] == WORDPRESS["spec"]["configSchema"]
    assert wire["spec"]["upgrades"]["from"] == "^1.2"
    assert wire["spec"]["visibility"] == "listed"


def test_unknown_blueprint_keys_are_reported_with_json_pointers() -> None:
    data = copy.deepcopy(WORDPRESS)
    data["spec"]["colour"] = "blue"
    data["spec"]["depends"][0]["optional"] = True
    problems = _problems(data, Blueprint)
    assert problems == {"/spec/colour": "unknown key", "/spec/depends/0/optional": "unknown key"}


@pytest.mark.parametrize(
    ("path", "value", "pointer", "fragment"),
    [
        (("metadata", "name"), "wordpress", "/metadata/name", "must start with 'bp-'"),
        (("metadata", "version"), "1.3", "/metadata/version", "SemVer"),
        (("spec", "depends", 0, "version"), "^^1", "/spec/depends/0/version", "not valid"),
        (("spec", "depends", 0, "alias"), "DB", "/spec/depends/0/alias", "DNS label"),
        (("spec", "visibility"), "secret", "/spec/visibility", "'listed'"),
        (("kind",), "Chart", "/kind", "must be 'Blueprint'"),
        (
            ("spec", "manifests", "source", "kind"),
            "Helm",
            "/spec/manifests/source/kind",
            "HelmChart",
        ),
    ],
)
def test_bad_blueprint_values_are_reported_where_they_are(
    path: tuple[Any, ...], value: Any, pointer: str, fragment: str
) -> None:
    data = copy.deepcopy(WORDPRESS)
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    problems = _problems(data, Blueprint)
    assert pointer in problems, problems
    assert fragment in problems[pointer]


def test_helm_source_needs_chart_repository_and_version() -> None:
    data = copy.deepcopy(WORDPRESS)
    del data["spec"]["manifests"]["source"]["ref"]["repository"]
    problems = _problems(data, Blueprint)
    assert "ref.repository" in problems["/spec/manifests/source/ref"]


def test_duplicate_dependency_aliases_are_rejected() -> None:
    data = copy.deepcopy(WORDPRESS)
    data["spec"]["depends"].append(dict(data["spec"]["depends"][0]))
    assert "used twice" in _problems(data, Blueprint)["/spec/depends"]


def test_missing_required_keys_are_reported() -> None:
    problems = _problems({"metadata": {"name": "bp-x"}}, Blueprint)
    assert problems["/metadata/version"] == "required key is missing"
    assert problems["/spec"] == "required key is missing"


def test_wrong_types_are_not_coerced() -> None:
    data = copy.deepcopy(WORDPRESS)
    data["spec"]["card"]["title"] = 42
    data["spec"]["observability"]["serviceMonitor"] = "yes"
    problems = _problems(data, Blueprint)
    assert "expected a string" in problems["/spec/card/title"]
    assert "true or false" in problems["/spec/observability/serviceMonitor"]


def test_policy_rules_keep_their_parameters_beside_kind() -> None:
    wire = {
        "apiVersion": "catalyst.openova.io/v1alpha1",
        "kind": "EnvironmentPolicy",
        "metadata": {"name": "prod-default", "namespace": "acme"},
        "spec": {
            "appliesTo": {"environments": ["acme-prod"]},
            "rules": [
                {"kind": "pr-required", "approvers": ["team-platform"], "minApprovals": 2},
                {"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "72h"},
            ],
        },
    }
    policy = structure(wire, EnvironmentPolicy)
    assert policy.spec.rules[1].kind == "soak"
    assert policy.spec.rules[1].params == {"sourceEnvironment": "acme-stg", "duration": "72h"}
    assert unstructure(policy) == wire


def test_policy_applies_to_valid_environments_only() -> None:
    wire = {
        "metadata": {"name": "p"},
        "spec": {"appliesTo": {"environments": ["acme-staging"]}},
    }
    problems = _problems(wire, EnvironmentPolicy)
    assert "staging" in problems["/spec/appliesTo/environments"]


def test_policy_rule_needs_a_kind() -> None:
    problems = _problems(
        {"metadata": {"name": "p"}, "spec": {"rules": [{"x": 1}]}}, EnvironmentPolicy
    )
    assert "'kind'" in problems["/spec/rules/0"]


def _plan(**changes: Any) -> InstallPlan:
    fields: dict[str, Any] = {
        "id": "op-1",
        "environment": "acme-prod",
        "application": "marketing-site",
        "applications": (
            PlannedApplication(
                name="marketing-site",
                blueprint="bp-wordpress",
                version="1.3.0",
                action=PlanAction.CREATE,
                depends_on=("marketing-site-postgres",),
            ),
            PlannedApplication(
                name="marketing-site-postgres",
                blueprint="bp-postgres",
                version="1.4.2",
                action=PlanAction.CREATE,
                alias="db",
                parent="marketing-site",
            ),
        ),
        "decisions": (
            WhenDecision(
                "marketing-site", "db", "{{ .config.postgres.mode == 'embedded' }}", True, "true"
            ),
        ),
        "files": (FileChange("applications/marketing-site/values.yaml", FileAction.ADD, "a: 1\n"),),
    }
    fields.update(changes)
    return InstallPlan(**fields)


def test_plan_digest_depends_on_content_not_on_id() -> None:
    assert _plan().digest == _plan(id="op-2").digest
    assert _plan().digest.startswith("sha256:")
    changed = (FileChange("applications/marketing-site/values.yaml", FileAction.ADD, "a: 2\n"),)
    assert _plan(files=changed).digest != _plan().digest


def test_plan_round_trips_and_a_forged_digest_is_refused() -> None:
    wire = unstructure(_plan())
    assert wire["digest"] == _plan().digest
    assert structure(wire, InstallPlan) == _plan()
    wire["digest"] = "sha256:" + "0" * 64
    assert "does not match" in _problems(wire, InstallPlan)["/digest"]


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside",
        "applications/../../x",
        "applications//x",
        "a\\b",
        ".git/config",
        "applications/./x",
        "",
    ],
)
def test_file_changes_refuse_path_tricks(path: str) -> None:
    with pytest.raises(InvalidInput):
        FileChange(path, FileAction.ADD, "x")


def test_file_change_content_matches_its_action() -> None:
    with pytest.raises(InvalidInput, match="needs no content"):
        FileChange("a.yaml", FileAction.DELETE, "x")
    with pytest.raises(InvalidInput, match="needs content"):
        FileChange("a.yaml", FileAction.ADD)


def test_event_is_a_cloudevent_envelope() -> None:
    event = Event.create(
        source="/sovereigns/demo", type="io.catalyst.test", subject="git.abc", data={"a": 1}
    )
    wire = unstructure(event)
    assert wire["specversion"] == "1.0"
    assert wire["datacontenttype"] == "application/json"
    assert wire["time"].endswith("Z")
    assert structure(wire, Event) == event
    assert Event.create(source="s", type="t").id != Event.create(source="s", type="t").id


def test_event_rejects_naive_time_and_other_spec_versions() -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        Event(id="1", source="s", type="t", time=datetime(2026, 1, 1))
    problems = _problems(
        {
            "id": "1",
            "source": "s",
            "type": "t",
            "time": "2026-01-01T00:00:00Z",
            "specversion": "0.3",
        },
        Event,
    )
    assert "1.0" in problems["/specversion"]


def test_principal_scope() -> None:
    developer = Principal(
        subject="u1",
        roles={"org-developer"},
        organization="acme",
        groups={"team-web"},
        environments={"acme-dev"},
    )
    assert developer.roles == frozenset({Role.ORG_DEVELOPER})
    assert developer.may_act_in("acme-dev")
    assert not developer.may_act_in("acme-prod")
    assert not developer.may_act_in("globex-dev")
    admin = Principal(subject="root", roles={"sovereign-admin"})
    assert admin.may_act_in("globex-prod")


def test_principal_needs_an_organization_unless_sovereign_admin() -> None:
    with pytest.raises(InvalidInput, match="sovereign-admin"):
        Principal(subject="u1", roles={"org-admin"})
    with pytest.raises(InvalidInput, match="roles are"):
        Principal(subject="u1", roles={"god"}, organization="acme")


def test_principal_time_fields_are_aware() -> None:
    principal = Principal(
        subject="u", roles={"org-viewer"}, organization="acme", expires_at=datetime.now(UTC)
    )
    assert principal.expires_at is not None


@pytest.mark.parametrize("text", ["^ - ^", "~", ">=", "1.2.3 - ", "||"])
def test_ranges_the_library_chokes_on_are_invalid_input(text: str) -> None:
    from catalyst_kernel.model.blueprint import check_version_range

    with pytest.raises(InvalidInput):
        check_version_range(text)
