"""``change-window``: merge only while a window is open.

.. code-block:: yaml

    - kind: change-window
      cron: "0 14 * * 2,4"        # when windows open: 5 cron fields, in timeZone
      duration: 2h                # how long each stays open (elapsed time)
      timeZone: Europe/Berlin     # an IANA zone; default UTC

A window opens at every time the cron expression matches on the wall clock of ``timeZone`` and
stays open for ``duration`` of elapsed time. The change passes while ``start <= now < start +
duration`` for the most recent start.

Daylight-saving changes, explicitly (the wall clock is iterated without a zone, then each wall
time is placed on the timeline once):

* a start in the hour the clocks skip (``30 2 * * *`` in Europe/Berlin on the last Sunday of
  March) opens the window when the clocks jump (03:00 CEST), like cron running a skipped job
  right after the change; the window still lasts ``duration``;
* a start in the hour that happens twice (``30 2 * * *`` on the last Sunday of October) opens one
  window, at the first occurrence (02:30 CEST), not two;
* ``duration`` is elapsed time, so a 3h window opening at 01:00 CEST on the fall-back day closes
  at 03:00 CET.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import frozen
from croniter import CroniterError, croniter  # type: ignore[import-untyped]

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.promotion.kinds.params import ParamReader, format_duration, format_time
from catalyst_kernel.promotion.rules import RuleVerdict

if TYPE_CHECKING:
    from collections.abc import Iterator

    from catalyst_kernel.model.policy import PolicyRule
    from catalyst_kernel.promotion.rules import RuleContext

__all__ = ["ChangeWindow", "Window", "WindowSchedule", "parse_cron", "parse_time_zone"]

_PARAMS: Final = ("cron", "duration", "timeZone")
_CRON_FIELDS: Final = 5
# Enough to step over any repeated or skipped wall-clock stretch of a minutely schedule.
_MAX_STEPS: Final = 10_000
# A fixed reference point for checking that an expression ever matches.
_EPOCH: Final = datetime(2000, 1, 1)  # a wall-clock time: deliberately naive


def parse_cron(value: Any) -> str:
    """A 5-field cron expression that matches at least once; raises :class:`InvalidInput`."""
    if not isinstance(value, str) or len(value.split()) != _CRON_FIELDS:
        raise InvalidInput(
            f"cron {value!r} must have 5 fields: minute hour day-of-month month day-of-week "
            "(0 14 * * 2,4)"
        )
    expression = " ".join(value.split())
    try:
        croniter(expression, _EPOCH).get_next(datetime)
    except CroniterError as exc:
        raise InvalidInput(f"cron {expression!r} is not valid: {exc}") from None
    return expression


def parse_time_zone(value: Any) -> ZoneInfo:
    """An IANA time zone (``Europe/Berlin``, ``UTC``); raises :class:`InvalidInput`."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"time zone must be an IANA name such as Europe/Berlin, got {value!r}")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin or UTC"
        ) from None


@frozen
class Window:
    """One window: it opens at ``start`` and closes at ``end`` (both in UTC)."""

    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def describe(self, zone: ZoneInfo) -> dict[str, Any]:
        """``{start, end, startLocal, endLocal}`` as ISO 8601 text."""
        return {
            "start": format_time(self.start),
            "end": format_time(self.end),
            "startLocal": format_time(self.start.astimezone(zone)),
            "endLocal": format_time(self.end.astimezone(zone)),
        }


@frozen
class WindowSchedule:
    """The windows a cron expression, a duration and a time zone describe."""

    cron: str
    duration: timedelta
    zone: ZoneInfo

    def _instant(self, wall: datetime) -> datetime:
        """The instant a wall-clock time of the zone names, in UTC (see the module docstring)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) == wall:
            return first  # it exists; fold=0 is the first occurrence when it happens twice
        # Skipped by the clocks: fold=1 reads it with the offset after the jump (an instant
        # before it), fold=0 with the offset before (an instant after). The jump lies between.
        low = int(wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC).timestamp())
        high = int(first.timestamp())
        after = first.astimezone(self.zone).utcoffset()
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, UTC).astimezone(self.zone).utcoffset() == after:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)

    def _walls(self, anchor: datetime, *, backwards: bool) -> Iterator[datetime]:
        matches = croniter(self.cron, anchor)
        step = matches.get_prev if backwards else matches.get_next
        for _ in range(_MAX_STEPS):
            try:
                wall: datetime = step(datetime)
            except CroniterError:
                return
            yield wall

    def last_start(self, now: datetime) -> datetime | None:
        """The latest window start at or before ``now`` (UTC), if the expression ever matched."""
        local = now.astimezone(self.zone)
        wall = local.replace(tzinfo=None)
        # In the second pass through a repeated hour, wall times up to the repetition's length
        # ahead of ours have already happened (in the first pass).
        repeated = max(
            (local.replace(fold=0).utcoffset() or timedelta())
            - (local.replace(fold=1).utcoffset() or timedelta()),
            timedelta(),
        )
        for candidate in self._walls(wall + repeated + timedelta(minutes=1), backwards=True):
            instant = self._instant(candidate)
            if instant <= now:
                return instant
        return None

    def next_start(self, now: datetime) -> datetime | None:
        """The first window start after ``now`` (UTC), or ``None`` if there is none."""
        wall = now.astimezone(self.zone).replace(tzinfo=None)
        for candidate in self._walls(wall, backwards=False):
            instant = self._instant(candidate)
            if instant > now:
                return instant
        return None

    def window(self, start: datetime) -> Window:
        return Window(start, start + self.duration)


@frozen
class _Params:
    schedule: WindowSchedule
    time_zone: str


class ChangeWindow:
    """The ``change-window`` rule kind (see the module docstring)."""

    kind = "change-window"

    def _parse(self, rule: PolicyRule) -> _Params:
        reader = ParamReader(rule, _PARAMS)
        cron = reader.string("cron", required=True)
        if cron:
            cron = reader.parse(("cron",), cron, parse_cron) or ""
        duration = reader.duration("duration")
        time_zone = reader.string("timeZone", default="UTC")
        zone = reader.parse(("timeZone",), time_zone, parse_time_zone)
        reader.done()
        # done() raised otherwise
        assert duration is not None
        assert zone is not None
        return _Params(WindowSchedule(cron, duration, zone), time_zone)

    def validate(self, rule: PolicyRule) -> None:
        """``cron``: 5 fields; ``duration``: e.g. ``2h``; ``timeZone``: an IANA zone."""
        self._parse(rule)

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """Pass inside a window; otherwise say when the next one opens."""
        params = self._parse(rule)
        schedule = params.schedule
        zone = schedule.zone
        now = context.now.astimezone(UTC)
        last = schedule.last_start(now)
        current = None if last is None else schedule.window(last)
        following = schedule.next_start(now)
        evidence: dict[str, Any] = {
            "cron": schedule.cron,
            "duration": format_duration(schedule.duration),
            "timeZone": params.time_zone,
            "now": format_time(now),
            "nowLocal": format_time(now.astimezone(zone)),
            "window": None if current is None else current.describe(zone),
            "nextWindow": None if following is None else schedule.window(following).describe(zone),
        }
        if current is not None and current.contains(now):
            end = current.end.astimezone(zone)
            return RuleVerdict(
                kind=self.kind,
                passed=True,
                summary=f"inside the change window until {format_time(end)} ({params.time_zone})",
                evidence=evidence,
            )
        if following is None:
            summary = f"outside any change window; {schedule.cron!r} opens no further window"
        else:
            summary = (
                f"outside the change window; the next opens at "
                f"{format_time(following.astimezone(zone))} ({params.time_zone})"
            )
        return RuleVerdict(
            kind=self.kind,
            passed=False,
            summary=summary,
            evidence=evidence,
            next_possible=following,
        )
