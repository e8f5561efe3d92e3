"""The one cattrs converter, and the translation of its errors into :class:`InvalidInput`.

Wire format: classes of :mod:`catalyst_kernel.model` use Kubernetes-style camelCase keys
(``configSchema``, ``appliesTo``; a trailing underscore is dropped, so ``from_`` is ``from``).
Every other attrs class (settings, plugin settings) keeps its snake_case attribute names.
Unknown keys are always errors.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Iterator, Mapping, MutableSequence, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from catalyst_kernel.errors import CatalystError, FieldProblem, InvalidInput
from catalyst_kernel.model.plan import InstallPlan
from catalyst_kernel.model.policy import PolicyRule

__all__ = ["EnvText", "converter", "structure", "unstructure", "wire_name"]

T = TypeVar("T")

_CAMEL_CASE_MODULE = "catalyst_kernel.model."


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(word.capitalize() for word in rest)


def _camel_case(cl: type) -> bool:
    return cl.__module__.startswith(_CAMEL_CASE_MODULE)


def wire_name(cl: type, attribute: str) -> str:
    """The key under which ``cl.attribute`` appears in YAML/JSON."""
    return _camel(attribute) if _camel_case(cl) else attribute


def _renames(cl: type) -> dict[str, Any]:
    if not _camel_case(cl):
        return {}
    return {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cl) if a.init}


def _structure_factory(cl: type[Any]) -> Callable[[Any, type[Any]], Any]:
    return make_dict_structure_fn(cl, converter, _cattrs_forbid_extra_keys=True, **_renames(cl))


def _unstructure_factory(cl: type[Any]) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cl, converter, **_renames(cl))


class EnvText(str):
    """A string read from an environment variable: the only text that may stand for a bool or a
    number (``CATALYST_PORT=8080``). Everywhere else, types must match exactly."""

    variable: str

    def __new__(cls, value: str, variable: str) -> EnvText:
        text = super().__new__(cls, value)
        text.variable = variable
        return text


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def _structure_bool(value: Any, _type: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, EnvText) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidInput(f"expected true or false, got {value!r}")


def _structure_int(value: Any, _type: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, EnvText):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidInput(f"expected an integer, got {value!r}")


def _structure_float(value: Any, _type: type) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, EnvText):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise InvalidInput(f"expected a number, got {value!r}")


def _structure_enum(value: Any, cl: type[enum.Enum]) -> enum.Enum:
    try:
        return cl(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in cl)
        raise InvalidInput(f"expected one of {allowed}, got {value!r}") from None


def _is_enum(cl: Any) -> bool:
    return isinstance(cl, type) and issubclass(cl, enum.Enum)


def _is_list_like(cl: Any) -> bool:
    origin = typing.get_origin(cl)
    args = typing.get_args(cl)
    homogenous_tuple = origin is tuple and len(args) == 2 and args[1] is Ellipsis
    return homogenous_tuple or origin in (list, Sequence, MutableSequence)


def _list_like_factory(cl: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    if typing.get_origin(cl) is tuple:
        inner = homogenous_tuple_structure_factory(cl, conv)
    else:
        inner = list_structure_factory(cl, conv)

    def structure_list(value: Any, type_: Any) -> Any:
        # A string is iterable, but "/x" where a list of paths belongs is a mistake.
        if isinstance(value, (str, bytes, Mapping)):
            raise InvalidInput(f"expected a list, got {value!r}")
        return inner(value, type_)

    return structure_list


def _structure_datetime(value: Any, _type: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"expected an RFC 3339 timestamp, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an RFC 3339 timestamp") from None


def _unstructure_datetime(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _structure_path(value: Any, _type: type) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise InvalidInput(f"expected a path, got {value!r}")
    return Path(value).expanduser()


def _structure_str(value: Any, _type: type) -> str:
    # cattrs would call str() on anything; a number where a name belongs is a mistake.
    if not isinstance(value, str):
        raise InvalidInput(f"expected a string, got {value!r}")
    return str(value)


def _structure_policy_rule(value: Any, _type: type) -> PolicyRule:
    if not isinstance(value, Mapping) or "kind" not in value:
        raise InvalidInput(f"a policy rule must be a mapping with a 'kind', got {value!r}")
    params = {key: item for key, item in value.items() if key != "kind"}
    return PolicyRule(kind=_structure_str(value["kind"], str), params=params)


def _unstructure_policy_rule(rule: PolicyRule) -> dict[str, Any]:
    return {"kind": rule.kind, **rule.params}


def _structure_install_plan(value: Any, _type: type) -> InstallPlan:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"an InstallPlan must be a mapping, got {value!r}")
    body = dict(value)
    claimed = body.pop("digest", None)
    plan = _plain_install_plan(body, InstallPlan)
    if claimed is not None and claimed != plan.digest:
        raise InvalidInput("the plan's digest does not match its content", field="digest")
    return plan


converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
converter.register_structure_hook_factory(attrs.has, _structure_factory)
converter.register_unstructure_hook_factory(attrs.has, _unstructure_factory)
# By class (singledispatch, which beats predicates): the StrEnum hook below is more specific
# than str in a StrEnum's MRO, and bool more specific than int.
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(enum.Enum, _structure_enum)
converter.register_structure_hook(enum.StrEnum, _structure_enum)
converter.register_unstructure_hook_func(_is_enum, lambda member: member.value)
converter.register_structure_hook_factory(_is_list_like, _list_like_factory)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, _unstructure_datetime)
converter.register_structure_hook(Path, _structure_path)
converter.register_unstructure_hook(Path, str)
converter.register_structure_hook(PolicyRule, _structure_policy_rule)
converter.register_unstructure_hook(PolicyRule, _unstructure_policy_rule)
_plain_install_plan = make_dict_structure_fn(
    InstallPlan, converter, _cattrs_forbid_extra_keys=True, **_renames(InstallPlan)
)
converter.register_structure_hook(InstallPlan, _structure_install_plan)
converter.register_unstructure_hook(
    InstallPlan,
    make_dict_unstructure_fn(
        InstallPlan, converter, **_renames(InstallPlan), digest=override(omit=False)
    ),
)


def _problems(
    exc: BaseException, path: tuple[str | int, ...], cl: type | None
) -> Iterator[FieldProblem]:
    if isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield FieldProblem.at((*path, key), "unknown key")
        return
    if isinstance(exc, BaseValidationError):
        owner = exc.cl if isinstance(exc, ClassValidationError) else None
        for inner in exc.exceptions:
            step: tuple[str | int, ...] = ()
            for note in getattr(inner, "__notes__", ()):
                if isinstance(note, AttributeValidationNote) and owner is not None:
                    step = (wire_name(owner, note.name),)
                elif isinstance(note, IterableValidationNote):
                    step = (note.index,)
            yield from _problems(inner, (*path, *step), owner)
        return
    if isinstance(exc, KeyError):
        yield FieldProblem.at(path, "required key is missing")
        return
    if isinstance(exc, InvalidInput) and exc.problems:
        for problem in exc.problems:
            yield FieldProblem.at((*path, *problem.parts), problem.message)
        return
    if isinstance(exc, CatalystError):
        where = path
        if exc.field and cl is not None and attrs.has(cl):
            names = {a.name for a in attrs.fields(cl)}
            if exc.field in names:
                where = (*path, wire_name(cl, exc.field))
        yield FieldProblem.at(where, exc.message)
        return
    yield FieldProblem.at(path, cattrs.v.format_exception(exc, None))


def structure(data: Any, cl: type[T], *, what: str | None = None) -> T:
    """Build a ``cl`` from plain data, or raise :class:`InvalidInput` listing every problem.

    Each problem carries the JSON pointer of the offending value; the exception's ``field`` is the
    first problem's pointer.
    """
    try:
        return converter.structure(data, cl)
    except (BaseValidationError, CatalystError, ValueError, TypeError, KeyError) as exc:
        problems = tuple(_problems(exc, (), cl))
        label = what or cl.__name__
        summary = "; ".join(problem.describe() for problem in problems)
        raise InvalidInput(
            f"invalid {label}: {summary}",
            field=problems[0].pointer if problems else None,
            problems=problems,
        ) from None


def unstructure(value: Any) -> Any:
    """Turn a model object into plain data in its wire format."""
    return converter.unstructure(value)
