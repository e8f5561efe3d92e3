"""attrs validators that apply the naming rules at construction and name the failing field.

Public: plugin authors use them in their settings classes (`each(check_environment_name)`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from catalyst_kernel.errors import InvalidInput, InvalidName

if TYPE_CHECKING:
    import attrs

__all__ = ["constant", "each", "name_rule", "non_empty"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def name_rule(check: Callable[[object], str]) -> Validator:
    """Turn a ``check_*`` function of :mod:`catalyst_kernel.model.names` into a validator."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        try:
            check(value)
        except InvalidName as exc:
            exc.field = exc.field or attribute.name
            raise

    return validate


def each(check: Callable[[object], str]) -> Validator:
    """Apply ``check`` to every member of a collection."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        for item in value:
            try:
                check(item)
            except InvalidName as exc:
                exc.field = exc.field or attribute.name
                raise

    return validate


def constant(expected: str) -> Validator:
    """Require a fixed value (``apiVersion``, ``kind``)."""

    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value != expected:
            raise InvalidInput(
                f"{attribute.name} must be {expected!r}, got {value!r}", field=attribute.name
            )

    return validate


def non_empty(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """Reject empty strings and collections."""
    if not value:
        raise InvalidInput(f"{attribute.name} must not be empty", field=attribute.name)
