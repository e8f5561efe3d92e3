"""blueprint.schema.json and the attrs model say the same thing about blueprint.yaml."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from semantic_version import NpmSpec

from catalyst_kernel.blueprints.loader import blueprint_schema, parse_blueprint
from catalyst_kernel.blueprints.yamlsafe import safe_load
from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import Blueprint, names, structure
from catalyst_kernel.model import blueprint as model

CATALOG = Path(__file__).resolve().parents[2] / "catalog"
DEMO = sorted(CATALOG.glob("*/*/blueprint.yaml"))
VALIDATOR = jsonschema.Draft202012Validator(dict(blueprint_schema()))


def _document(path: Path = CATALOG / "bp-wordpress" / "1.4.0" / "blueprint.yaml") -> Any:
    return safe_load(path.read_bytes(), source=str(path))


def _schema_pointers(data: Any) -> set[str]:
    """Pointers of the schema's findings (the parent object's for unknown/missing keys)."""
    pointers = set()
    for error in VALIDATOR.iter_errors(data):
        parts = "".join(f"/{part}" for part in error.absolute_path)
        if error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            pointers.update(f"{parts}/{key}" for key in error.instance if key not in known)
        elif error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            pointers.update(f"{parts}/{key}" for key in missing)
        else:
            pointers.add(parts)
    return pointers


def _model_pointers(data: Any) -> set[str]:
    try:
        structure(data, Blueprint)
    except InvalidInput as exc:
        return {problem.pointer for problem in exc.problems}
    return set()


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for step in path[:-1]:
        node = node[step]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(dict(blueprint_schema()))
    assert blueprint_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_schema_uses_the_models_own_patterns() -> None:
    defs = blueprint_schema()["$defs"]
    assert defs["semver"]["pattern"] == model.SEMVER_PATTERN
    assert defs["versionRange"]["pattern"] == model.VERSION_RANGE_PATTERN
    assert defs["rotationRule"]["properties"]["every"]["pattern"] == model.DURATION_PATTERN
    resource = defs["resourceNeed"]["properties"]
    assert resource["apiVersion"]["pattern"] == model.CLAIM_API_VERSION_PATTERN
    assert resource["kind"]["pattern"] == model.KIND_PATTERN
    assert defs["dnsLabel"]["pattern"] == f"^{names.DNS_LABEL_PATTERN.pattern}$"
    assert defs["blueprintName"]["pattern"] == f"^bp-{names.DNS_LABEL_PATTERN.pattern}$"
    organization = defs["organizationName"]
    assert organization["pattern"] == f"^{names.ORGANIZATION_PATTERN.pattern}$"
    assert set(organization["not"]["anyOf"][0]["enum"]) == names.ORGANIZATION_RESERVED
    assert defs["card"]["properties"].keys() == {
        "title",
        "summary",
        "description",
        "category",
        "icon",
        "tags",
        "documentation",
    }
    assert defs["spec"]["properties"]["visibility"]["enum"] == [v.value for v in model.Visibility]
    kinds = defs["manifestSource"]["properties"]["kind"]["enum"]
    assert kinds == [kind.value for kind in model.SourceKind]
    overlays = defs["manifests"]["properties"]["overlays"]["properties"]
    assert list(overlays) == [size.value for size in model.SizingOverlay]


@pytest.mark.parametrize("path", DEMO, ids=lambda p: "/".join(p.parts[-3:-1]))
def test_every_demo_blueprint_passes_the_schema_and_the_model(path: Path) -> None:
    data = _document(path)
    assert _schema_pointers(data) == set()
    assert _model_pointers(data) == set()


def test_the_demo_catalog_has_the_promised_blueprints() -> None:
    found = {"/".join(p.parts[-3:-1]) for p in DEMO}
    assert found == {
        "bp-wordpress/1.2.0", "bp-wordpress/1.3.0", "bp-wordpress/1.4.0",
        "bp-postgres/1.4.0", "bp-postgres/1.4.2", "bp-postgres/1.5.0", "bp-postgres/2.0.0",
        "bp-redis/7.2.0", "bp-redis/7.4.1", "bp-web-stack/1.0.0",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        (("colour",), "blue", "/colour"),
        (("spec", "depends", 0, "optional"), True, "/spec/depends/0/optional"),
        (("spec", "card", "colour"), "blue", "/spec/card/colour"),
        (("metadata", "name"), "bp-WordPress", "/metadata/name"),
        (("metadata", "name"), "bp-word/press", "/metadata/name"),
        (("metadata", "name"), "bp-..", "/metadata/name"),
        (("metadata", "name"), "wordpress", "/metadata/name"),
        (("metadata", "name"), "bp-" + "a" * 64, "/metadata/name"),
        (("metadata", "version"), "1.4", "/metadata/version"),
        (("metadata", "version"), "v1.4.0", "/metadata/version"),
        (("metadata", "version"), "1.4.0-01", "/metadata/version"),
        (("metadata", "version"), 1.4, "/metadata/version"),
        (("metadata", "version"), _DELETE, "/metadata/version"),
        (("apiVersion",), "catalyst.openova.io/v2", "/apiVersion"),
        (("kind",), "Chart", "/kind"),
        (("spec",), _DELETE, "/spec"),
        (("spec", "card", "title"), 42, "/spec/card/title"),
        (("spec", "card", "title"), "", "/spec/card/title"),
        (("spec", "card", "tags"), "cms", "/spec/card/tags"),
        (("spec", "visibility"), "secret", "/spec/visibility"),
        (("spec", "owner", "organization"), "Acme", "/spec/owner/organization"),
        (("spec", "owner", "organization"), "kube-public", "/spec/owner/organization"),
        (("spec", "owner", "organization"), "system", "/spec/owner/organization"),
        (("spec", "configSchema"), ["not", "an", "object"], "/spec/configSchema"),
        (("spec", "depends", 0, "blueprint"), "postgres", "/spec/depends/0/blueprint"),
        (("spec", "depends", 0, "version"), "^^1", "/spec/depends/0/version"),
        (("spec", "depends", 0, "version"), ">= 1.4", "/spec/depends/0/version"),
        (("spec", "depends", 0, "version"), "^1.4 ||", "/spec/depends/0/version"),
        (("spec", "depends", 0, "alias"), "DB", "/spec/depends/0/alias"),
        (("spec", "depends", 0, "values"), ["x"], "/spec/depends/0/values"),
        (("spec", "manifests", "source", "kind"), "Helm", "/spec/manifests/source/kind"),
        (("spec", "manifests", "overlays", "huge"), {}, "/spec/manifests/overlays/huge"),
        (("spec", "upgrades", "from"), "^x", "/spec/upgrades/from"),
        (("spec", "upgrades", "blocks", 0, "reason"), "", "/spec/upgrades/blocks/0/reason"),
        (("spec", "rotation", 0, "every"), "monthly", "/spec/rotation/0/every"),
        (("spec", "observability", "serviceMonitor"), "yes", "/spec/observability/serviceMonitor"),
        (("spec", "resources", 0, "kind"), "bucketClaim", "/spec/resources/0/kind"),
        (("spec", "resources", 0, "apiVersion"), "v1", "/spec/resources/0/apiVersion"),
        (("spec", "resources", 0, "name"), "Media", "/spec/resources/0/name"),
    ],
)
def test_what_the_model_rejects_the_schema_rejects_at_the_same_pointer(
    path: tuple[Any, ...], value: Any, pointer: str
) -> None:
    data = _set(_document(), path, value)
    assert pointer in _model_pointers(data)
    assert pointer in _schema_pointers(data)
    problems = {p.pointer for p in _problems(data)}
    assert pointer in problems


def _problems(data: Any) -> tuple[Any, ...]:
    with pytest.raises(InvalidInput) as caught:
        parse_blueprint(data)
    return caught.value.problems


def test_a_helm_source_without_its_chart_fields_is_rejected_by_both() -> None:
    data = _set(_document(), ("spec", "manifests", "source", "ref", "repository"), _DELETE)
    assert "/spec/manifests/source/ref/repository" in _schema_pointers(data)
    assert "/spec/manifests/source/ref" in _model_pointers(data)
    # One mistake, one report: at the deeper pointer the schema found.
    assert [(p.pointer, p.message) for p in _problems(data)] == [
        ("/spec/manifests/source/ref/repository", "required key is missing")
    ]


def test_a_kustomize_source_needs_a_path_or_a_url() -> None:
    data = _set(
        _document(), ("spec", "manifests", "source"), {"kind": "Kustomize", "ref": {"chart": "x"}}
    )
    assert "/spec/manifests/source/ref" in _schema_pointers(data)
    assert "/spec/manifests/source/ref" in _model_pointers(data)
    [problem] = _problems(data)
    assert problem.pointer == "/spec/manifests/source/ref"
    assert "ref.path or ref.url" in problem.message


def test_config_schema_must_itself_be_a_valid_json_schema() -> None:
    data = _set(_document(), ("spec", "configSchema", "properties", "siteTitle", "type"), "strin")
    [problem] = _problems(data)
    assert problem.pointer == "/spec/configSchema/properties/siteTitle/type"
    assert "'strin'" in problem.message


def test_unique_aliases_are_a_rule_only_the_model_can_check() -> None:
    data = _document()
    data["spec"]["depends"].append(dict(data["spec"]["depends"][0]))
    assert _schema_pointers(data) == set()
    [problem] = _problems(data)
    assert problem.pointer == "/spec/depends"
    assert "used twice" in problem.message


def test_every_problem_is_reported_once_with_the_clearest_message() -> None:
    data = _document()
    data["metadata"] = {"name": "bp-Word", "version": "1.4"}
    data["spec"]["colour"] = "blue"
    data["spec"]["depends"][0]["version"] = "^^1"
    problems = {p.pointer: p.message for p in _problems(data)}
    assert problems.keys() == {
        "/metadata/name",
        "/metadata/version",
        "/spec/colour",
        "/spec/depends/0/version",
    }
    assert "must be a DNS label" in problems["/metadata/name"]  # the model's words
    assert "SemVer 2.0" in problems["/metadata/version"]  # the schema's description
    assert problems["/spec/colour"] == "unknown key"
    assert "is not valid" in problems["/spec/depends/0/version"]


def test_a_trailing_newline_is_caught_by_the_model_where_python_regex_lets_it_pass() -> None:
    # Python's re.search lets "$" match before a final newline (ECMA-262 does not); the loader
    # runs the model too, whose checks use fullmatch.
    data = _set(_document(), ("metadata", "name"), "bp-wordpress\n")
    assert "/metadata/name" in {p.pointer for p in _problems(data)}


@settings(max_examples=100, deadline=None)
@given(st.from_regex(model.VERSION_RANGE_PATTERN, fullmatch=True))
def test_every_range_the_pattern_accepts_is_understood_by_npm_spec(text: str) -> None:
    NpmSpec(text)
    assert model.check_version_range(text) == text


RANGE_PIECES = st.sampled_from(
    ["^", "~", ">=", "<", "=", "1", "0", "12", ".", "x", "*", "-", "rc", "+", " ", "||", "v", "01"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(RANGE_PIECES, min_size=1, max_size=10).map("".join))
def test_the_range_pattern_and_the_model_agree(text: str) -> None:
    in_schema = re.fullmatch(model.VERSION_RANGE_PATTERN, text) is not None
    try:
        model.check_version_range(text)
        in_model = True
    except InvalidInput:
        in_model = False
    assert in_schema == in_model


NAME_TEXT = st.text(alphabet="abz09-_./ABp", max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(NAME_TEXT, NAME_TEXT.map(lambda s: "bp-" + s)))
def test_the_name_patterns_and_the_name_rules_agree(text: str) -> None:
    defs = blueprint_schema()["$defs"]
    for definition, check in (
        ("blueprintName", names.check_blueprint_name),
        ("dnsLabel", names.check_dns_label),
        ("organizationName", names.check_organization_name),
    ):
        schema_ok = jsonschema.Draft202012Validator(defs[definition]).is_valid(text)
        try:
            check(text)
            model_ok = True
        except InvalidInput:
            model_ok = False
        assert schema_ok == model_ok, (definition, text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["0", "1", "01", "9", ".", "-", "+", "rc", "a", "x"]), max_size=9))
def test_the_semver_pattern_and_the_version_rule_agree(pieces: list[str]) -> None:
    text = "".join(pieces)
    schema_ok = re.fullmatch(model.SEMVER_PATTERN, text) is not None
    try:
        model.check_blueprint_version(text)
        model_ok = True
    except InvalidInput:
        model_ok = False
    assert schema_ok == model_ok
