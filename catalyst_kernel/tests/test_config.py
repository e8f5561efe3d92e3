"""configSchema validation: defaults, every error by JSON pointer, secrets kept out of sight."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.provisioning.config import (
    MAX_CONFIG_DEPTH,
    ConfigSchema,
    ValidatedConfig,
    check_config_schema,
    secret_name,
    validate_config,
)

PLANTED = "PLANTED-s3cr3t-value"

WORDPRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "postgres": {
            "type": "object",
            "properties": {
                "mode": {"enum": ["embedded", "external"], "default": "embedded"},
                "size": {"$ref": "#/$defs/size"},
            },
        },
        "replicas": {"type": "integer", "minimum": 1, "default": 1},
        "adminPassword": {"type": "string", "minLength": 12, "x-catalyst-ui-hint": "password"},
        "smtp": {
            "type": "object",
            "properties": {
                "host": {"type": "string", "format": "hostname"},
                "port": {"type": "integer", "default": 587},
                "password": {"type": "string", "x-catalyst-ui-hint": "password"},
            },
            "required": ["host"],
        },
        "tls": {
            "type": "object",
            "properties": {"enabled": {"default": False}, "cert": {"type": "string"}},
            "required": ["cert"],
        },
        "title": {"type": "string", "pattern": "^[A-Z]"},
    },
    "$defs": {"size": {"enum": ["small", "large"], "default": "small"}},
}


def problems_of(schema: dict[str, Any], config: Any) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        ConfigSchema(schema).validate(config)
    return {problem.pointer: problem.message for problem in caught.value.problems}


# --------------------------------------------------------------------------------------------
# defaults


def test_defaults_fill_missing_keys_and_nested_objects() -> None:
    result = ConfigSchema(WORDPRESS_SCHEMA).validate({})
    assert result.public == {"postgres": {"mode": "embedded", "size": "small"}, "replicas": 1}
    assert result.secrets == {}


def test_defaults_never_overwrite_given_values_nor_mutate_the_input() -> None:
    config = {"postgres": {"mode": "external"}, "replicas": 3, "smtp": {"host": "mail.example"}}
    original = copy.deepcopy(config)
    result = ConfigSchema(WORDPRESS_SCHEMA).validate(config)
    assert config == original
    assert result.public["postgres"] == {"mode": "external", "size": "small"}
    assert result.public["replicas"] == 3
    assert result.public["smtp"] == {"host": "mail.example", "port": 587}


def test_an_object_is_not_created_when_it_would_lack_a_required_key() -> None:
    # "tls" has a default inside but requires "cert": creating it would make a valid config
    # invalid, so it stays absent.
    assert "tls" not in ConfigSchema(WORDPRESS_SCHEMA).with_defaults({})
    filled = ConfigSchema(WORDPRESS_SCHEMA).with_defaults({"tls": {"cert": "pem"}})
    assert filled["tls"] == {"cert": "pem", "enabled": False}


def test_defaults_follow_refs_all_of_and_array_items() -> None:
    schema = {
        "type": "object",
        "allOf": [{"properties": {"fromAllOf": {"default": "a"}}}],
        "properties": {
            "users": {
                "type": "array",
                "items": {"$ref": "#/$defs/user"},
            },
            "pair": {"type": "array", "prefixItems": [{"$ref": "#/$defs/user"}]},
            "explicit": {"$ref": "#/$defs/port", "default": 1},
            "viaRef": {"$ref": "#/$defs/port"},
        },
        "$defs": {
            "user": {"type": "object", "properties": {"role": {"default": "viewer"}}},
            "port": {"type": "integer", "default": 8080},
        },
    }
    filled = ConfigSchema(schema).with_defaults(
        {"users": [{}, {"role": "admin"}], "pair": [{}, {}]}
    )
    assert filled == {
        "fromAllOf": "a",
        "users": [{"role": "viewer"}, {"role": "admin"}],
        "pair": [{"role": "viewer"}, {}],
        "explicit": 1,
        "viaRef": 8080,
    }


def test_defaults_of_a_recursive_schema_terminate() -> None:
    schema = {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}, "weight": {"default": 1}},
            }
        },
    }
    assert ConfigSchema(schema).with_defaults({}) == {"weight": 1}
    assert ConfigSchema(schema).with_defaults({"child": {"child": {}}}) == {
        "weight": 1,
        "child": {"weight": 1, "child": {"weight": 1}},
    }


def test_default_values_are_copies() -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array", "default": []}}}
    checked = ConfigSchema(schema)
    first = checked.with_defaults({})
    first["tags"].append("x")
    assert checked.with_defaults({}) == {"tags": []}


# --------------------------------------------------------------------------------------------
# every error, by pointer


def test_every_error_is_reported_with_its_json_pointer() -> None:
    problems = problems_of(
        WORDPRESS_SCHEMA,
        {
            "postgres": {"mode": "sideways", "size": "huge"},
            "replicas": 0,
            "smtp": {"port": "25"},
            "colour": "blue",
            "title": "lower",
        },
    )
    assert problems == {
        "/colour": "unknown key",
        "/postgres/mode": 'must be one of ["embedded", "external"]',
        "/postgres/size": 'must be one of ["small", "large"]',
        "/replicas": "must be at least 1",
        "/smtp/host": "is required",
        "/smtp/port": "must be of type integer, not string",
        "/title": 'must match the pattern "^[A-Z]"',
    }


def test_the_summary_lists_the_problems_and_field_is_the_first() -> None:
    with pytest.raises(InvalidInput) as caught:
        ConfigSchema(WORDPRESS_SCHEMA).validate({"replicas": 0, "colour": 1}, what="config of x")
    assert str(caught.value) == (
        "config of x is invalid: /colour: unknown key; /replicas: must be at least 1"
    )
    assert caught.value.field == "/colour"


@pytest.mark.parametrize(
    ("schema", "config", "pointer", "message"),
    [
        ({"properties": {"a": {"const": 1}}}, {"a": 2}, "/a", "must be 1"),
        ({"properties": {"a": {"maxLength": 2}}}, {"a": "abc"}, "/a", "at most 2 characters"),
        ({"properties": {"a": {"format": "email"}}}, {"a": "nope"}, "/a", "valid email"),
        ({"properties": {"a": {"multipleOf": 5}}}, {"a": 7}, "/a", "multiple of 5"),
        ({"properties": {"a": {"exclusiveMaximum": 5}}}, {"a": 5}, "/a", "less than 5"),
        ({"properties": {"a": {"maxItems": 1}}}, {"a": [1, 2]}, "/a", "at most 1 items"),
        ({"properties": {"a": {"uniqueItems": True}}}, {"a": [1, 1]}, "/a", "duplicate"),
        ({"properties": {"a": {"not": {"type": "string"}}}}, {"a": "x"}, "/a", "excluded"),
        (
            {"properties": {"a": {"oneOf": [{"type": "integer"}, {"type": "number"}]}}},
            {"a": 1},
            "/a",
            "exactly one",
        ),
        (
            {"properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}},
            {"a": "x"},
            "/a",
            "must match one of the allowed forms (closest: must be of type",
        ),
        ({"dependentRequired": {"a": ["b"]}}, {"a": 1}, "/b", "is required when 'a' is set"),
        ({"prefixItems": [{}], "items": False}, [1, 2], "", "more items"),
    ],
)
def test_keyword_messages(schema: dict[str, Any], config: Any, pointer: str, message: str) -> None:
    checked = ConfigSchema(schema)
    found = {problem.pointer: problem.message for problem in checked.problems(config)}
    assert pointer in found
    assert message in found[pointer]


def test_a_config_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInput, match="must be a mapping, not array"):
        ConfigSchema({}).validate([1, 2])  # type: ignore[arg-type]
    assert ConfigSchema({}).validate(None) == ValidatedConfig(public={})


def test_config_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_CONFIG_DEPTH + 1):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidInput, match=f"deeper than {MAX_CONFIG_DEPTH}"):
        ConfigSchema({}).validate(deep)


# --------------------------------------------------------------------------------------------
# secrets


def test_password_values_are_split_out_by_pointer() -> None:
    result = ConfigSchema(WORDPRESS_SCHEMA).validate(
        {"adminPassword": PLANTED + "-admin", "smtp": {"host": "mail.example", "password": PLANTED}}
    )
    assert result.public == {
        "postgres": {"mode": "embedded", "size": "small"},
        "replicas": 1,
        "smtp": {"host": "mail.example", "port": 587},
    }
    assert {pointer: secret.value for pointer, secret in result.secrets.items()} == {
        "/adminPassword": PLANTED + "-admin",
        "/smtp/password": PLANTED,
    }
    assert result.secret_names == {
        "/adminPassword": "admin-password",
        "/smtp/password": "smtp-password",
    }
    assert PLANTED not in json.dumps(result.public)
    assert PLANTED not in repr(result)


def test_secrets_under_additional_and_pattern_properties_and_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tokens": {
                "type": "object",
                "additionalProperties": {"type": "string", "x-catalyst-ui-hint": "password"},
            },
            "keys": {"type": "array", "items": {"x-catalyst-ui-hint": "password"}},
            "env": {
                "type": "object",
                "patternProperties": {"_SECRET$": {"x-catalyst-ui-hint": "password"}},
            },
            "either": {"anyOf": [{"type": "integer"}, {"x-catalyst-ui-hint": "password"}]},
        },
    }
    result = ConfigSchema(schema).validate(
        {
            "tokens": {"github": "t1", "gitlab": "t2"},
            "keys": ["k1", "k2"],
            "env": {"DB_SECRET": "e1", "DB_HOST": "db"},
            "either": "maybe-secret",
        }
    )
    assert result.public == {"tokens": {}, "keys": [], "env": {"DB_HOST": "db"}}
    assert {p: s.value for p, s in result.secrets.items()} == {
        "/either": "maybe-secret",
        "/env/DB_SECRET": "e1",
        "/keys/0": "k1",
        "/keys/1": "k2",
        "/tokens/github": "t1",
        "/tokens/gitlab": "t2",
    }


def test_a_password_default_is_a_secret_too() -> None:
    schema = {
        "properties": {
            "pin": {"type": "string", "default": "0000", "x-catalyst-ui-hint": "password"}
        }
    }
    result = ConfigSchema(schema).validate({})
    assert result.public == {}
    assert result.secrets["/pin"].value == "0000"


def test_no_secret_value_appears_in_any_error_message() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "password": {
                "type": "string",
                "maxLength": 5,
                "pattern": "^[0-9]+$",
                "format": "email",
                "enum": ["a", "b"],
                "x-catalyst-ui-hint": "password",
            },
            "wrapped": {
                "anyOf": [{"type": "integer"}, {"type": "array"}],
                "properties": {"inner": {"x-catalyst-ui-hint": "password"}},
            },
            "typed": {"type": "integer", "x-catalyst-ui-hint": "password"},
            "constant": {"const": "x", "x-catalyst-ui-hint": "password"},
            "listed": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        },
        "required": ["missing"],
    }
    config = {
        "password": PLANTED,
        "wrapped": {"inner": PLANTED},
        "typed": PLANTED,
        "constant": PLANTED,
        "listed": [PLANTED, PLANTED],
        PLANTED: "as a key is not secret, but still must not be echoed as a value",
    }
    with pytest.raises(InvalidInput) as caught:
        ConfigSchema(schema).validate(config)
    messages = [str(caught.value), *(problem.message for problem in caught.value.problems)]
    assert len(caught.value.problems) >= 8
    for message in messages:
        assert PLANTED not in message.replace(f"/{PLANTED}", "")  # a key may be a pointer


def test_secret_names_are_stable_dns_labels() -> None:
    assert secret_name("/adminPassword") == "admin-password"
    assert secret_name("/smtp/API_Key") == "smtp-api-key"
    assert secret_name("/0/token") == "secret-0-token"
    assert secret_name("") == "config"
    long = "/" + "veryLongName" * 10
    assert len(secret_name(long)) == 63
    assert secret_name(long) != secret_name(long + "x")
    for name in (secret_name(long), secret_name("/a~1b/c~0d")):
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name


def test_colliding_secret_names_are_told_apart() -> None:
    schema = {
        "properties": {
            "db_password": {"x-catalyst-ui-hint": "password"},
            "db-password": {"x-catalyst-ui-hint": "password"},
        }
    }
    result = validate_config(schema, {"db_password": "a", "db-password": "b"})
    names = set(result.secret_names.values())
    assert len(names) == 2
    assert all(name.startswith("db-password-") for name in names)


# --------------------------------------------------------------------------------------------
# the schema itself


@pytest.mark.parametrize(
    ("schema", "pointer", "fragment"),
    [
        ({"type": "strin"}, "/type", "'strin'"),
        ({"properties": {"a": {"minLength": -1}}}, "/properties/a/minLength", "minimum of 0"),
        ({"properties": {"a": {"pattern": "("}}}, "/properties/a/pattern", "regex"),
        ({"required": "a"}, "/required", "not of type 'array'"),
        ({"$ref": "#/$defs/nope"}, "/$ref", "does not resolve inside the schema"),
        (
            {"properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "/properties/a/$ref",
            "only local references",
        ),
        ({"$schema": "http://json-schema.org/draft-07/schema#"}, "/$schema", "2020-12"),
    ],
)
def test_an_invalid_schema_is_refused_with_pointers(
    schema: dict[str, Any], pointer: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_config_schema(schema, what="configSchema of bp-x@1.0.0")
    assert str(caught.value).startswith("configSchema of bp-x@1.0.0 is not a valid JSON Schema")
    found = {problem.pointer: problem.message for problem in caught.value.problems}
    assert pointer in found
    assert fragment in found[pointer]


def test_a_schema_must_be_an_object() -> None:
    with pytest.raises(InvalidInput, match="must be a JSON Schema object"):
        check_config_schema(["type", "object"])


def test_local_refs_and_anchors_are_accepted() -> None:
    schema = {
        "properties": {"a": {"$ref": "#/$defs/a"}, "b": {"$ref": "#bee"}},
        "$defs": {"a": {"type": "string"}, "b": {"$anchor": "bee", "type": "integer"}},
    }
    checked = ConfigSchema(schema)
    assert {p.pointer for p in checked.problems({"a": 1, "b": "x"})} == {"/a", "/b"}


META_CORPUS: list[Any] = [
    WORDPRESS_SCHEMA,
    {},
    {"type": "strin"},
    {"type": ["string", "string"]},
    {"$id": 5},
    {"$schema": 1},
    {"$anchor": "1-bad"},
    {"$dynamicRef": 5},
    {"$vocabulary": {"https://x": "yes"}},
    {"$comment": 5},
    {"$defs": {"a": {"minimum": "x"}}},
    {"definitions": {"a": 5}},
    {"dependencies": {"a": 5}},
    {"dependencies": {"a": ["b"], "c": {"type": "string"}}},
    {"items": [{}]},
    {"prefixItems": {}},
    {"unevaluatedProperties": 5},
    {"contentMediaType": 5},
    {"deprecated": "yes"},
    {"format": 5},
    {"allOf": []},
    {"enum": []},
    {"required": ["a", "a"]},
    {"multipleOf": 0},
    {"properties": {"$id": {"type": "string"}, "$ref": {"minLength": -1}}},
    {"properties": {"a": {"properties": {"b": {"items": {"maxItems": 1.5}}}}}},
    {"if": {"type": "string"}, "then": {"minLength": 1}, "else": {"const": None}},
    {"patternProperties": {"^x-": {"type": "integer"}}, "propertyNames": {"pattern": "^[a-z]"}},
    {"anyOf": [{"$ref": "#/$defs/a"}, True, False], "$defs": {"a": {"type": "object"}}},
]


@pytest.mark.parametrize("schema", META_CORPUS, ids=[json.dumps(s)[:40] for s in META_CORPUS])
def test_the_fast_meta_schema_agrees_with_the_official_one(schema: Any) -> None:
    from catalyst_kernel.provisioning import config

    assert config._FAST_META_VALIDATOR is not None
    official = not any(config._META_VALIDATOR.iter_errors(schema))
    assert config._FAST_META_VALIDATOR.is_valid(schema) is official
