"""Reading a policy rule's parameters: one reader that collects every problem at once.

The built-in rule kinds use it, and third-party kinds may: each problem is a
:class:`~catalyst_kernel.errors.FieldProblem` whose pointer is relative to the rule (``/duration``,
``/approvers/1``), which :class:`~catalyst_kernel.promotion.evaluation.PolicyEvaluator` prefixes
with the rule's place in the policy (``/spec/rules/2/duration``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar

from catalyst_kernel.errors import FieldProblem, InvalidInput

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import PolicyRule

__all__ = [
    "MAX_DURATION",
    "ParamReader",
    "format_duration",
    "format_time",
    "parse_duration",
    "parse_instant",
]

MAX_DURATION: Final = timedelta(days=366)
"""The longest ``duration`` a rule accepts: a soak or a window of more than a year is a typo."""

_DURATION: Final = re.compile(
    r"(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?"
)
_UNITS: Final = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_HELP: Final = (
    "a duration is numbers with units w, d, h, m, s, largest first (30m, 72h, 1d, 1d12h)"
)

T = TypeVar("T")


def parse_duration(text: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """A positive duration from ``30m``, ``72h``, ``1d`` or ``1d12h``, at most ``maximum``.

    :raises InvalidInput: naming the text and the accepted forms.
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise InvalidInput(f"{text!r} is not a duration: {_DURATION_HELP}")
    seconds = sum(int(match[unit] or 0) * size for unit, size in _UNITS)
    if seconds <= 0:
        raise InvalidInput(f"duration {text!r} must be longer than zero")
    if seconds > maximum.total_seconds():
        raise InvalidInput(f"duration {text!r} is longer than {format_duration(maximum)}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``delta`` (``72h`` → ``3d``)."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS[1:]:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_time(value: datetime | None) -> str | None:
    """An instant as ISO 8601 text, as it appears in evidence (``None`` stays ``None``)."""
    return None if value is None else value.isoformat()


class ParamReader:
    """Reads ``rule.params`` and collects every problem; :meth:`done` raises them together.

    :param rule: the rule being read.
    :param known: every parameter name the kind accepts; any other is an "unknown parameter".

    The readers return a usable default when a value is missing or wrong, so a kind can read every
    parameter before calling :meth:`done`, and the caller learns about all problems in one go.
    """

    def __init__(
        self,
        rule: PolicyRule,
        known: Iterable[str],
        *,
        params: Mapping[str, Any] | None = None,
        at: Sequence[str | int] = (),
        problems: list[FieldProblem] | None = None,
    ) -> None:
        self.rule = rule
        self.params: Mapping[str, Any] = rule.params if params is None else params
        self.problems: list[FieldProblem] = [] if problems is None else problems
        self._at = tuple(at)
        self._known = tuple(known)
        for name in sorted(set(self.params) - set(self._known)):
            self.problem(
                (name,), f"unknown parameter; {self._where()}accepts " + ", ".join(self._known)
            )

    def _where(self) -> str:
        if self._at:
            return f"{'.'.join(str(part) for part in self._at)} of a {self.rule.kind!r} rule "
        return f"a {self.rule.kind!r} rule "

    def section(self, name: str, known: Iterable[str]) -> ParamReader | None:
        """A reader of the nested mapping ``name`` (``None`` if absent or not a mapping)."""
        if self._missing(name, False, ""):
            return None
        value = self.params[name]
        if not isinstance(value, Mapping):
            self.problem((name,), f"must be a mapping, got {value!r}")
            return None
        return ParamReader(
            self.rule, known, params=value, at=(*self._at, name), problems=self.problems
        )

    def problem(self, where: Sequence[str | int], message: str) -> None:
        """Record a problem at ``where`` (path segments relative to this reader's mapping)."""
        self.problems.append(FieldProblem.at((*self._at, *where), message))

    def done(self) -> None:
        """Raise :class:`InvalidInput` listing every problem found, if any."""
        if self.problems:
            summary = "; ".join(problem.describe() for problem in self.problems)
            raise InvalidInput(
                f"invalid {self.rule.kind!r} rule: {summary}",
                field=self.problems[0].pointer,
                problems=self.problems,
            )

    def _missing(self, name: str, required: bool, what: str) -> bool:
        if name in self.params:
            return False
        if required:
            self.problem((name,), f"required: {what}")
        return True

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        """A non-empty string (surrounding blanks removed)."""
        if self._missing(name, required, "a non-empty string"):
            return default
        value = self.params[name]
        if not isinstance(value, str) or not value.strip():
            self.problem((name,), f"must be a non-empty string, got {value!r}")
            return default
        return value.strip()

    def choice(self, name: str, choices: Sequence[str], *, default: str) -> str:
        """One of ``choices``."""
        if self._missing(name, False, ""):
            return default
        value = self.params[name]
        if value not in choices:
            self.problem((name,), f"must be one of {', '.join(choices)}, got {value!r}")
            return default
        return str(value)

    def integer(self, name: str, *, default: int, minimum: int) -> int:
        """A whole number of at least ``minimum``."""
        if self._missing(name, False, ""):
            return default
        value = self.params[name]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem((name,), f"must be a whole number, got {value!r}")
            return default
        if value < minimum:
            self.problem((name,), f"must be at least {minimum}, got {value}")
            return default
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        """``true`` or ``false``."""
        if self._missing(name, False, ""):
            return default
        value = self.params[name]
        if not isinstance(value, bool):
            self.problem((name,), f"must be true or false, got {value!r}")
            return default
        return value

    def duration(self, name: str, *, required: bool = True) -> timedelta | None:
        """A duration such as ``72h`` (see :func:`parse_duration`)."""
        if self._missing(name, required, "a duration such as 30m, 72h or 1d"):
            return None
        return self.parse((name,), self.params[name], parse_duration)

    def parse(self, where: Sequence[str | int], value: Any, parse: Callable[[Any], T]) -> T | None:
        """``parse(value)``, recording its :class:`InvalidInput` as a problem at ``where``."""
        try:
            return parse(value)
        except InvalidInput as exc:
            self.problem(where, exc.message)
            return None

    def teams(self, name: str, *, required: bool = True) -> tuple[str, ...]:
        """A non-empty list of distinct team names (identity groups)."""
        if self._missing(name, required, "a non-empty list of team names"):
            return ()
        value = self.params[name]
        if isinstance(value, str) or not isinstance(value, Sequence) or not value:
            self.problem((name,), f"must be a non-empty list of team names, got {value!r}")
            return ()
        teams: list[str] = []
        for index, team in enumerate(value):
            if not isinstance(team, str) or not team.strip():
                self.problem((name, index), f"a team name must be a non-empty string, got {team!r}")
            elif team in teams:
                self.problem((name, index), f"team {team!r} is listed twice")
            else:
                teams.append(team)
        return tuple(teams)

    def instant(self, name: str) -> datetime | None:
        """An optional ISO 8601 date-time with a time zone (``2026-12-24T18:00:00Z``)."""
        if self._missing(name, False, ""):
            return None
        return self.parse((name,), self.params[name], parse_instant)


def parse_instant(value: Any) -> datetime:
    """An aware datetime from ISO 8601 text (or the datetime YAML already made of it)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{value!r} is not an ISO 8601 date-time (2026-12-24T18:00:00Z)"
            ) from None
    if not isinstance(value, datetime):
        kind = "a date without a time" if isinstance(value, date) else repr(value)
        raise InvalidInput(f"must be an ISO 8601 date-time with a time zone, got {kind}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"date-time {value.isoformat()!r} must carry a time zone (Z or +01:00)")
    return value
