"""configSchema validation: defaults, every error with its JSON pointer, and the secret split.

A Blueprint's ``configSchema`` is a JSON Schema (Draft 2020-12). :class:`ConfigSchema` checks the
schema once, then for each config:

1. applies ``default``s (see :meth:`ConfigSchema.with_defaults` for the exact rules),
2. validates the result and reports **every** error as a :class:`FieldProblem` (JSON pointer),
3. splits out the values whose schema says ``x-catalyst-ui-hint: password``: they are secrets,
   returned apart from the public config (which is safe for Git) with a stable secret name each.

Error messages never quote the config's values (only the schema's words and the value's JSON
type), so a secret cannot leak through an error, whatever schema keyword failed.

References (``$ref``) must point inside the schema (``#/$defs/…``, ``#anchor``); nothing is ever
fetched.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import referencing
import referencing.exceptions
from attrs import field, frozen
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema_specifications import (  # type: ignore[import-untyped]
    REGISTRY as SPECIFICATIONS,
)

from catalyst_kernel.errors import FieldProblem, InvalidInput

__all__ = [
    "MAX_CONFIG_DEPTH",
    "PASSWORD_HINT",
    "UI_HINT",
    "ConfigSchema",
    "SecretValue",
    "ValidatedConfig",
    "check_config_schema",
    "secret_name",
    "validate_config",
]

UI_HINT: Final = "x-catalyst-ui-hint"
"""The schema annotation the console reads; ``password`` also marks a secret."""
PASSWORD_HINT: Final = "password"
MAX_CONFIG_DEPTH: Final = 64
"""Deepest nesting of mappings and lists accepted in a config."""

_DRAFT_2020_12: Final = frozenset(
    {
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
    }
)
_SECRET_NAME_MAX: Final = 63
_SUMMARY_PROBLEMS: Final = 10
# An empty registry: jsonschema would otherwise fetch unknown remote $refs over the network.
_LOCAL_ONLY: Final[referencing.Registry[Any]] = referencing.Registry()
_META_VALIDATOR: Final = Draft202012Validator(
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
)
_DRAFT_BASE: Final = "https://json-schema.org/draft/2020-12/"
_SCHEMA_KEYWORDS: Final = (
    "items",
    "additionalProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_SCHEMA_MAP_KEYWORDS: Final = (
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
)
_SCHEMA_LIST_KEYWORDS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")


@frozen
class SecretValue:
    """One secret of a config: where it was (``pointer``), its stable ``name`` and its value.

    The value is left out of ``repr`` so that logging the object cannot leak it.
    """

    pointer: str
    name: str
    value: Any = field(repr=False)


@frozen
class ValidatedConfig:
    """A defaulted, valid config split into its public part and its secrets.

    :param public: the config with every secret removed: safe to write to Git.
    :param secrets: the secrets by JSON pointer (``/adminPassword``).
    """

    public: Mapping[str, Any]
    secrets: Mapping[str, SecretValue] = field(factory=dict)

    @property
    def secret_names(self) -> Mapping[str, str]:
        """Secret name by JSON pointer."""
        return {pointer: secret.name for pointer, secret in self.secrets.items()}


# --------------------------------------------------------------------------------------------
# secret names


def _hash8(pointer: str) -> str:
    return hashlib.sha256(pointer.encode()).hexdigest()[:8]


def _with_hash(base: str, pointer: str) -> str:
    keep = _SECRET_NAME_MAX - 9
    return f"{base[:keep].rstrip('-')}-{_hash8(pointer)}"


def secret_name(pointer: str) -> str:
    """A stable DNS label naming the secret at JSON pointer ``pointer``.

    ``/smtp/adminPassword`` gives ``smtp-admin-password``; a name that would not start with a
    letter gets a ``secret-`` prefix, and an empty pointer (the whole config) is ``config``.
    The name depends only on the pointer. Names longer than 63 characters are cut and end with
    eight hex digits of the pointer's SHA-256, so distinct long pointers keep distinct names.
    """
    words: list[str] = []
    for part in FieldProblem(pointer, "").parts:
        part = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", part).lower()
        part = re.sub(r"[^a-z0-9]+", "-", part).strip("-")
        if part:
            words.append(part)
    name = "-".join(words) or "config"
    if not name[0].isalpha():
        name = f"secret-{name}"
    if len(name) > _SECRET_NAME_MAX:
        name = _with_hash(name, pointer)
    return name


def _secret_names(pointers: Iterable[str]) -> dict[str, str]:
    names = {pointer: secret_name(pointer) for pointer in pointers}
    taken: dict[str, int] = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    # "/a_b" and "/a-b" both read "a-b": each colliding name gets its pointer's hash.
    return {
        pointer: _with_hash(name, pointer) if taken[name] > 1 else name
        for pointer, name in names.items()
    }


# --------------------------------------------------------------------------------------------
# the schema itself


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _resolve_local(root: Any, ref: str) -> Any:
    """The subschema a local ``$ref`` points to, or ``None``."""
    if not ref.startswith("#"):
        return None
    fragment = ref[1:]
    if fragment and not fragment.startswith("/"):
        return _find_anchor(root, fragment)
    node = root
    for part in FieldProblem(fragment, "").parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _subschemas(schema: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    for keyword in _SCHEMA_KEYWORDS:
        if keyword in schema:
            yield (keyword,), schema[keyword]
    for keyword in _SCHEMA_MAP_KEYWORDS:
        members = schema.get(keyword)
        if isinstance(members, Mapping):
            for name, member in members.items():
                yield (keyword, name), member
    for keyword in _SCHEMA_LIST_KEYWORDS:
        members = schema.get(keyword)
        if isinstance(members, list):
            for index, member in enumerate(members):
                yield (keyword, index), member


def _walk_schema(root: Any) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), root)]
    while stack:
        path, schema = stack.pop()
        if isinstance(schema, Mapping):
            yield path, schema
            stack.extend(((*path, *step), sub) for step, sub in _subschemas(schema))


def _find_anchor(root: Any, anchor: str) -> Any:
    for _path, schema in _walk_schema(root):
        if schema.get("$anchor") == anchor:
            return schema
    return None


def check_config_schema(schema: Any, *, what: str = "configSchema") -> None:
    """Raise :class:`InvalidInput` unless ``schema`` is a valid Draft 2020-12 JSON Schema.

    Every problem is reported with its JSON pointer inside the schema, including ``$ref``s that
    do not resolve inside the schema (remote references are refused: nothing is fetched).
    Results are cached by the schema's content: checking against the meta-schema takes
    milliseconds, and a catalog serves the same schemas over and over.
    """
    if not isinstance(schema, Mapping):
        raise InvalidInput(f"{what} must be a JSON Schema object, got {type(schema).__name__}")
    try:
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        problems = _schema_problems(schema)  # not JSON (a YAML date…): the meta-schema says why
    else:
        problems = _schema_problems_cached(canonical)
    if problems:
        raise _invalid(f"{what} is not a valid JSON Schema", problems)


def _fast_meta_validator() -> Draft202012Validator | None:
    """A validator of the Draft 2020-12 meta-schema as one flat schema, or ``None``.

    The official meta-schema is an ``allOf`` of seven vocabulary schemas linked by
    ``$dynamicRef``; jsonschema evaluates all seven at every subschema, which costs several
    milliseconds per configSchema. The vocabularies declare disjoint, open sets of keywords, so
    merging their ``properties`` and ``$defs`` into one schema (and pointing ``$dynamicRef:
    #meta`` at the root, which is what it resolves to when nothing extends the meta-schema)
    accepts and rejects exactly the same schemas, about eight times faster. Any surprise in the
    bundled meta-schemas disables the shortcut rather than risk a different verdict.
    """

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SCHEMA_MAP_KEYWORDS:
                # Keys here are property or definition names ("$id" is one), not keywords.
                out[key] = {name: rewrite(sub) for name, sub in value.items()}
            elif key == "$dynamicRef":
                if value != "#meta":
                    raise ValueError(value)
                out["$ref"] = "#"
            elif key == "$ref" and not value.startswith("#"):
                # "meta/validation#/$defs/stringArray": the $defs are merged into the root.
                vocabulary, _, fragment = value.partition("#")
                if vocabulary not in vocabularies:
                    raise ValueError(value)
                out["$ref"] = f"#{fragment}"
            elif key not in ("$dynamicAnchor", "$vocabulary", "$id", "$schema"):
                out[key] = rewrite(value)
        return out

    top = Draft202012Validator.META_SCHEMA
    vocabularies = [member.get("$ref") for member in top.get("allOf", ())]
    try:
        parts = [SPECIFICATIONS.contents(_DRAFT_BASE + name) for name in vocabularies]
        parts.append({key: value for key, value in top.items() if key != "allOf"})
        flat: dict[str, Any] = {"type": ["object", "boolean"], "properties": {}, "$defs": {}}
        for part in parts:
            for key, value in rewrite(part).items():
                if key in ("properties", "$defs"):
                    if set(flat[key]) & set(value):
                        raise ValueError(key)
                    flat[key].update(value)
                elif key == "type":
                    if value != flat["type"]:
                        raise ValueError(key)
                elif key not in ("title", "$comment", "format"):
                    raise ValueError(key)
        fast = Draft202012Validator(
            flat, registry=_LOCAL_ONLY, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        # Smoke test: the official meta-schema is itself a valid schema; every $ref resolves.
        if not fast.is_valid(top) or not fast.is_valid(flat):
            return None
    except (
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
        referencing.exceptions.Unresolvable,
    ):
        return None
    return fast


_FAST_META_VALIDATOR: Final = _fast_meta_validator()


@functools.lru_cache(maxsize=1024)
def _schema_problems_cached(canonical: str) -> tuple[FieldProblem, ...]:
    return _schema_problems(json.loads(canonical))


def _schema_problems(schema: Mapping[str, Any]) -> tuple[FieldProblem, ...]:
    problems: list[FieldProblem] = []
    declared = schema.get("$schema")
    if declared is not None and declared not in _DRAFT_2020_12:
        problems.append(
            FieldProblem.at(
                ("$schema",),
                "only JSON Schema Draft 2020-12 is supported "
                "(https://json-schema.org/draft/2020-12/schema)",
            )
        )
    # The flat meta-schema decides; only a schema it rejects pays for the official one's words.
    fast = _FAST_META_VALIDATOR
    if fast is None or not fast.is_valid(schema):
        for error in _META_VALIDATOR.iter_errors(schema):
            problems.append(FieldProblem.at(error.absolute_path, error.message))
    for path, subschema in _walk_schema(schema):
        ref = subschema.get("$ref")
        if isinstance(ref, str) and _resolve_local(schema, ref) is None:
            problems.append(
                FieldProblem.at(
                    (*path, "$ref"),
                    f"{ref!r} does not resolve inside the schema "
                    "(only local references such as '#/$defs/name' are allowed)",
                )
            )
    return tuple(problems)


def _invalid(headline: str, problems: Sequence[FieldProblem]) -> InvalidInput:
    shown = "; ".join(problem.describe() for problem in problems[:_SUMMARY_PROBLEMS])
    more = len(problems) - _SUMMARY_PROBLEMS
    if more > 0:
        shown += f"; and {more} more"
    return InvalidInput(
        f"{headline}: {shown}", field=problems[0].pointer if problems else None, problems=problems
    )


# --------------------------------------------------------------------------------------------
# error messages that never quote the instance


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


_MESSAGES: Final[Mapping[str, str]] = {
    "enum": "must be one of {json}",
    "const": "must be {json}",
    "minLength": "must be at least {value} characters long",
    "maxLength": "must be at most {value} characters long",
    "pattern": "must match the pattern {json}",
    "format": "must be a valid {value}",
    "minimum": "must be at least {json}",
    "maximum": "must be at most {json}",
    "exclusiveMinimum": "must be greater than {json}",
    "exclusiveMaximum": "must be less than {json}",
    "multipleOf": "must be a multiple of {json}",
    "minItems": "must have at least {value} items",
    "maxItems": "must have at most {value} items",
    "uniqueItems": "must not contain duplicate items",
    "minProperties": "must have at least {value} keys",
    "maxProperties": "must have at most {value} keys",
    "contains": "must contain an item matching the schema",
    "minContains": "must contain at least {value} matching items",
    "maxContains": "must contain at most {value} matching items",
    "not": "must not match the excluded schema",
    "propertyNames": "has a key whose name is not allowed",
    "unevaluatedProperties": "has keys the schema does not allow",
    "unevaluatedItems": "has items the schema does not allow",
    "items": "has more items than the schema allows",
    "dependentRequired": "lacks keys that other keys require",
}


def _message(error: ValidationError) -> str:
    """Describe ``error`` from the schema alone: the instance may be a secret."""
    keyword: Any = error.validator
    expected: Any = error.validator_value
    instance = error.instance
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"must be of type {' or '.join(map(str, kinds))}, not {_type_of(instance)}"
    if keyword in _MESSAGES:
        return _MESSAGES[keyword].format(value=expected, json=_json(expected))
    if keyword in ("anyOf", "oneOf"):
        if keyword == "oneOf" and not error.context:
            return "matches more than one of the allowed forms; it must match exactly one"
        closest = best_match(error.context) if error.context else None
        hint = f" (closest: {_message(closest)})" if closest is not None else ""
        quantity = "one" if keyword == "anyOf" else "exactly one"
        return f"must match {quantity} of the allowed forms{hint}"
    if keyword is None or keyword == "False":
        return "is not allowed here"
    return f"does not satisfy {keyword!r}"


def _problems(error: ValidationError) -> Iterator[FieldProblem]:
    path = tuple(error.absolute_path)
    instance = error.instance
    expected: Any = error.validator_value
    schema: Any = error.schema
    if error.validator == "required" and isinstance(instance, Mapping):
        for key in expected:
            if key not in instance:
                yield FieldProblem.at((*path, key), "is required")
        return
    if (
        error.validator == "additionalProperties"
        and expected is False
        and isinstance(instance, Mapping)
    ):
        properties = schema.get("properties") or {}
        patterns = list(schema.get("patternProperties") or {})
        for key in instance:
            if key not in properties and not any(re.search(p, key) for p in patterns):
                yield FieldProblem.at((*path, key), "unknown key")
        return
    if error.validator == "dependentRequired" and isinstance(instance, Mapping):
        for key, needed in expected.items():
            if key in instance:
                for other in needed:
                    if other not in instance:
                        yield FieldProblem.at((*path, other), f"is required when {key!r} is set")
        return
    yield FieldProblem.at(path, _message(error))


# --------------------------------------------------------------------------------------------
# walking a config along its schema


def _applicable(
    schemas: Iterable[Any], root: Any, *, alternatives: bool
) -> list[Mapping[str, Any]]:
    """The schemas that apply at one instance location: the given ones, their ``$ref`` targets,
    ``allOf`` members and, with ``alternatives``, ``anyOf``/``oneOf``/``then``/``else`` members."""
    out: list[Mapping[str, Any]] = []
    seen: set[int] = set()
    stack = list(reversed(list(schemas)))
    while stack:
        schema = stack.pop()
        if not isinstance(schema, Mapping) or id(schema) in seen:
            continue
        seen.add(id(schema))
        out.append(schema)
        members: list[Any] = []
        ref = schema.get("$ref")
        if isinstance(ref, str):
            members.append(_resolve_local(root, ref))
        members.extend(schema.get("allOf") or ())
        if alternatives:
            members.extend(schema.get("anyOf") or ())
            members.extend(schema.get("oneOf") or ())
            members.extend(schema[key] for key in ("then", "else") if key in schema)
        stack.extend(reversed(members))
    return out


def _object_like(schemas: Sequence[Mapping[str, Any]]) -> bool:
    for schema in schemas:
        kind = schema.get("type")
        if kind == "object" or (isinstance(kind, list) and "object" in kind):
            return True
        if "properties" in schema:
            return True
    return False


def _check_depth(config: Any) -> None:
    stack: list[tuple[Any, int]] = [(config, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise InvalidInput(f"config nests deeper than {MAX_CONFIG_DEPTH} levels")
        if isinstance(value, Mapping):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)


def _delete(document: Any, parts: tuple[str | int, ...]) -> None:
    parent = document
    for part in parts[:-1]:
        parent = parent[part]
    del parent[parts[-1]]


class ConfigSchema:
    """A checked ``configSchema``, ready to default, validate and split configs.

    :param schema: the JSON Schema (Draft 2020-12).
    :param what: how errors name the schema (``configSchema of bp-postgres@1.4.2``).
    :raises InvalidInput: if ``schema`` is not a valid JSON Schema.
    """

    def __init__(self, schema: Mapping[str, Any], *, what: str = "configSchema") -> None:
        check_config_schema(schema, what=what)
        self.schema = schema
        self.what = what
        self._validator = Draft202012Validator(
            schema,
            registry=_LOCAL_ONLY,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        self._applicable_cache: dict[tuple[tuple[int, ...], bool], list[Mapping[str, Any]]] = {}

    def _applicable(self, schemas: Sequence[Any], *, alternatives: bool) -> list[Mapping[str, Any]]:
        # Subschemas belong to self.schema, so their ids are stable while self lives.
        key = (tuple(id(schema) for schema in schemas), alternatives)
        found = self._applicable_cache.get(key)
        if found is None:
            found = _applicable(schemas, self.schema, alternatives=alternatives)
            self._applicable_cache[key] = found
        return found

    # -- defaults ------------------------------------------------------------------------------

    def with_defaults(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``config`` with the schema's defaults applied.

        For every ``properties`` entry missing from an object (the schema's own, and those of
        its ``$ref`` targets and ``allOf`` members), the first ``default`` found on the property
        (or its ``$ref``/``allOf``) is copied in. A missing property without a default whose
        schema is an object is created when its own defaults give it content and every key it
        ``require``s; defaults then apply inside present objects and array items (``items``,
        ``prefixItems``). ``anyOf``/``oneOf``/``if`` branches are not used: which one applies
        depends on the value. Nothing in ``config`` is overwritten.
        """
        document = copy.deepcopy(dict(config))
        self._fill(document, self._applicable([self.schema], alternatives=False), 0, set())
        return document

    def _fill(
        self,
        instance: Any,
        schemas: Sequence[Mapping[str, Any]],
        depth: int,
        ancestors: set[int],
    ) -> None:
        """Apply defaults in ``instance``; ``ancestors`` are the schemas applied above it."""
        if depth > MAX_CONFIG_DEPTH:
            return
        ancestors = ancestors | {id(schema) for schema in schemas}
        if isinstance(instance, dict):
            declared: dict[str, list[Any]] = {}
            for schema in schemas:
                properties = schema.get("properties")
                if isinstance(properties, Mapping):
                    for key, sub in properties.items():
                        declared.setdefault(key, []).append(sub)
            for key, subs in declared.items():
                applicable = self._applicable(subs, alternatives=False)
                if key not in instance:
                    defaults = [schema["default"] for schema in applicable if "default" in schema]
                    if defaults:
                        instance[key] = copy.deepcopy(defaults[0])
                    else:
                        created = self._materialize(applicable, depth, ancestors)
                        if created is not None:
                            instance[key] = created
                        continue
                self._fill(instance[key], applicable, depth + 1, ancestors)
        elif isinstance(instance, list):
            for index, item in enumerate(instance):
                subs = []
                for schema in schemas:
                    prefix = schema.get("prefixItems")
                    if isinstance(prefix, list) and index < len(prefix):
                        subs.append(prefix[index])
                    elif isinstance(schema.get("items"), Mapping):
                        subs.append(schema["items"])
                if subs:
                    applicable = self._applicable(subs, alternatives=False)
                    self._fill(item, applicable, depth + 1, ancestors)

    def _materialize(
        self, schemas: Sequence[Mapping[str, Any]], depth: int, ancestors: set[int]
    ) -> dict[str, Any] | None:
        # A recursive schema (a "node" with an optional "child" node) would otherwise create
        # children forever: never create an object whose schema already applies above it.
        if not _object_like(schemas) or any(id(schema) in ancestors for schema in schemas):
            return None
        candidate: dict[str, Any] = {}
        self._fill(candidate, schemas, depth + 1, ancestors)
        required = {key for schema in schemas for key in schema.get("required") or ()}
        if candidate and required <= candidate.keys():
            return candidate
        return None

    # -- validation ----------------------------------------------------------------------------

    def problems(self, config: Mapping[str, Any]) -> list[FieldProblem]:
        """Every problem of ``config`` as it is (no defaults applied), sorted by pointer."""
        try:
            found = {
                problem
                for error in self._validator.iter_errors(config)
                for problem in _problems(error)
            }
        except referencing.exceptions.Unresolvable as exc:
            raise InvalidInput(
                f"{self.what} has a reference that cannot be resolved: {exc}"
            ) from None
        return sorted(found)

    def validate(
        self, config: Mapping[str, Any] | None, *, what: str = "config"
    ) -> ValidatedConfig:
        """Apply defaults, validate, and split secrets out.

        :raises InvalidInput: listing every problem with its JSON pointer; messages never quote
            a value from ``config``.
        """
        if config is None:
            config = {}
        if not isinstance(config, Mapping):
            raise InvalidInput(f"{what} must be a mapping, not {_type_of(config)}")
        _check_depth(config)
        document = self.with_defaults(config)
        problems = self.problems(document)
        if problems:
            raise _invalid(f"{what} is invalid", problems)
        return self.split(document)

    # -- secrets -------------------------------------------------------------------------------

    def secret_paths(self, config: Mapping[str, Any]) -> list[tuple[str | int, ...]]:
        """Locations in ``config`` whose schema is marked ``x-catalyst-ui-hint: password``.

        Every applicable schema counts, including ``anyOf``/``oneOf``/``then``/``else``
        branches, ``patternProperties`` and ``additionalProperties``: when in doubt, a value is
        a secret. Nothing inside a secret is examined further.
        """
        found: list[tuple[str | int, ...]] = []
        stack: list[tuple[Any, list[Mapping[str, Any]], tuple[str | int, ...]]] = [
            (config, self._applicable([self.schema], alternatives=True), ())
        ]
        while stack:
            instance, schemas, path = stack.pop()
            if any(schema.get(UI_HINT) == PASSWORD_HINT for schema in schemas):
                found.append(path)
                continue
            if len(path) > MAX_CONFIG_DEPTH:
                continue
            for step, subs in self._children(instance, schemas):
                if subs:
                    applicable = self._applicable(subs, alternatives=True)
                    stack.append((_child(instance, step), applicable, (*path, step)))
        return found

    @staticmethod
    def _children(
        instance: Any, schemas: Sequence[Mapping[str, Any]]
    ) -> Iterator[tuple[str | int, list[Any]]]:
        if isinstance(instance, Mapping):
            for key in instance:
                subs: list[Any] = []
                for schema in schemas:
                    properties = schema.get("properties") or {}
                    matched = key in properties
                    if matched:
                        subs.append(properties[key])
                    for pattern, sub in (schema.get("patternProperties") or {}).items():
                        if re.search(pattern, str(key)):
                            matched = True
                            subs.append(sub)
                    additional = schema.get("additionalProperties")
                    if not matched and isinstance(additional, Mapping):
                        subs.append(additional)
                yield key, subs
        elif isinstance(instance, (list, tuple)):
            for index in range(len(instance)):
                subs = []
                for schema in schemas:
                    prefix = schema.get("prefixItems")
                    if isinstance(prefix, list) and index < len(prefix):
                        subs.append(prefix[index])
                    elif isinstance(schema.get("items"), Mapping):
                        subs.append(schema["items"])
                yield index, subs

    def split(self, config: Mapping[str, Any]) -> ValidatedConfig:
        """Separate the secrets of an already valid ``config`` from its public part."""
        paths = self.secret_paths(config)
        pointers = {path: FieldProblem.at(path, "").pointer for path in paths}
        names = _secret_names(pointers.values())
        secrets = {
            pointers[path]: SecretValue(
                pointer=pointers[path],
                name=names[pointers[path]],
                value=copy.deepcopy(_get(config, path)),
            )
            for path in paths
        }
        if () in pointers:
            return ValidatedConfig(public={}, secrets=secrets)
        public = copy.deepcopy(dict(config))
        # Deepest and last first, so deleting a list item does not shift one still to delete.
        for path in sorted(paths, key=_path_key, reverse=True):
            _delete(public, path)
        return ValidatedConfig(public=public, secrets=dict(sorted(secrets.items())))


def _child(instance: Any, step: str | int) -> Any:
    return instance[step]


def _get(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _path_key(path: tuple[str | int, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)


def validate_config(
    schema: Mapping[str, Any], config: Mapping[str, Any] | None, *, what: str = "config"
) -> ValidatedConfig:
    """Check ``schema``, then default, validate and split ``config`` (see :class:`ConfigSchema`)."""
    return ConfigSchema(schema).validate(config, what=what)
