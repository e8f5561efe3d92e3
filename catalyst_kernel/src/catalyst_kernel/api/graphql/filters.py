"""The arguments that pick Applications (``blueprint``, ``status``), checked once.

A Blueprint name that breaks the naming rules, or a status that is none of the seven, is an
``invalid-name``/``invalid-input`` error naming the argument rather than an empty list, so a typo
is not mistaken for "nothing there".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from catalyst_kernel.api.queries import matches
from catalyst_kernel.errors import InvalidInput, InvalidName
from catalyst_kernel.model.names import check_blueprint_name
from catalyst_kernel.readside.projections.status import ApplicationStatus

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ApplicationFilter", "checked_blueprint", "checked_filter"]


def checked_blueprint(value: str, field: str = "blueprint") -> str:
    """``value`` as a Blueprint name; :class:`InvalidName` naming the argument ``field``."""
    try:
        return check_blueprint_name(value)
    except InvalidName as exc:
        raise InvalidName(exc.message, rule=exc.rule, field=field) from None


def _checked_status(value: str) -> str:
    try:
        return ApplicationStatus(value).value
    except ValueError:
        statuses = ", ".join(status.value for status in ApplicationStatus)
        raise InvalidInput(
            f"status must be one of {statuses}; got {value[:40]!r}", field="status"
        ) from None


@frozen
class ApplicationFilter:
    """Which Applications a query wants: ``None`` means any."""

    blueprint: str | None = None
    status: str | None = None

    def matches(self, document: Mapping[str, Any]) -> bool:
        """Whether a status document is one of those wanted."""
        return matches(document, blueprint=self.blueprint, status=self.status)


def checked_filter(*, blueprint: str | None, status: str | None) -> ApplicationFilter:
    """The filter of a query's ``blueprint`` and ``status`` arguments.

    :raises InvalidName: ``blueprint`` is not a Blueprint name (``field: "blueprint"``).
    :raises InvalidInput: ``status`` is not an Application status (``field: "status"``).
    """
    return ApplicationFilter(
        blueprint=None if blueprint is None else checked_blueprint(blueprint),
        status=None if status is None else _checked_status(status),
    )
