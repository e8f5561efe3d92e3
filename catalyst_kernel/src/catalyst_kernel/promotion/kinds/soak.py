"""``soak``: the version being promoted has run healthily in the source Environment long enough.

.. code-block:: yaml

    - kind: soak
      sourceEnvironment: acme-stg
      duration: 72h           # 30m, 72h, 1d, 1d12h …
      skipOnRollback: true    # default: a rollback does not wait for a soak

For every Application the change installs, updates or promotes, the rule reads the Application's
timeline in the source Environment (the read model's ``health`` entries) and finds the current
uninterrupted streak of ``Running`` *at the change's version*. Any other status (``Degraded``,
``Failed``, ``Updating``, ``Pending approval`` …, or the Application disappearing) and ``Running``
at another version end the streak; the next ``Running`` at the version starts a new one. The rule
passes when every such streak is at least ``duration`` old.

A status other than ``Running`` resets the clock even when it only masks health (``Pending
approval`` while a change in the source Environment is open): the read model cannot tell that the
Application stayed healthy meanwhile, and a soak must not pass on a guess.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.promotion.kinds.params import ParamReader, format_duration, format_time
from catalyst_kernel.promotion.rules import RuleVerdict
from catalyst_kernel.provisioning.committer import ApplicationAction
from catalyst_kernel.readside.projections.status import ApplicationStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.model.policy import PolicyRule
    from catalyst_kernel.promotion.rules import RuleContext, TimelineEntry

__all__ = ["Soak", "running_since"]

_PARAMS: Final = ("sourceEnvironment", "duration", "skipOnRollback")
_HEALTH: Final = "health"


@frozen
class _Params:
    source: str
    duration: timedelta
    skip_on_rollback: bool


def running_since(
    timeline: Sequence[TimelineEntry], version: str, now: datetime
) -> tuple[datetime | None, TimelineEntry | None]:
    """When the current uninterrupted ``Running`` streak at ``version`` began (``None``: not
    Running at that version now), and the latest health entry up to ``now``."""
    start: datetime | None = None
    latest: TimelineEntry | None = None
    for entry in timeline:
        if entry.kind != _HEALTH or entry.time > now:
            continue
        latest = entry
        if entry.status == ApplicationStatus.RUNNING and entry.version == version:
            if start is None:
                start = entry.time
        else:
            start = None
    return start, latest


class Soak:
    """The ``soak`` rule kind (see the module docstring)."""

    kind = "soak"

    def _parse(self, rule: PolicyRule) -> _Params:
        reader = ParamReader(rule, _PARAMS)
        source = reader.string("sourceEnvironment", required=True)
        if source:
            source = reader.parse(("sourceEnvironment",), source, check_environment_name) or ""
        duration = reader.duration("duration")
        skip = reader.boolean("skipOnRollback", default=True)
        reader.done()
        assert duration is not None  # done() raised otherwise
        return _Params(source, duration, skip)

    def validate(self, rule: PolicyRule) -> None:
        """``sourceEnvironment``: an Environment name; ``duration``: e.g. ``72h``;
        ``skipOnRollback``: a boolean."""
        self._parse(rule)

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """Pass when every Application's version has been Running in the source long enough."""
        params = self._parse(rule)
        evidence: dict[str, Any] = {
            "sourceEnvironment": params.source,
            "duration": format_duration(params.duration),
        }
        if context.rollback and params.skip_on_rollback:
            return RuleVerdict(
                kind=self.kind,
                passed=True,
                summary="a rollback skips the soak (skipOnRollback)",
                evidence={**evidence, "skipped": "rollback", "applications": []},
            )
        rows: list[dict[str, Any]] = []
        failing: list[str] = []
        waits: list[datetime | None] = []
        for application in context.change.applications:
            if application.action is ApplicationAction.UNINSTALL:
                continue
            row: dict[str, Any] = {
                "application": application.name,
                "version": application.version,
            }
            if application.version is None:
                failing.append(f"{application.name}: the change names no version to soak")
                waits.append(None)
                rows.append({**row, "passed": False, "runningSince": None, "soakEnds": None})
                continue
            timeline = await context.timeline.application_timeline(params.source, application.name)
            start, latest = running_since(timeline, application.version, context.now)
            ends = None if start is None else start + params.duration
            passed = ends is not None and context.now >= ends
            rows.append(
                {
                    **row,
                    "passed": passed,
                    "runningSince": format_time(start),
                    "soakEnds": format_time(ends),
                    "soakedFor": format_duration(context.now - start)
                    if start is not None
                    else None,
                    "sourceStatus": None if latest is None else latest.status,
                    "sourceVersion": None if latest is None else latest.version,
                    "sourceStatusSince": None if latest is None else format_time(latest.time),
                }
            )
            if passed:
                continue
            waits.append(ends)
            label = f"{application.name} {application.version}"
            if ends is not None:
                failing.append(
                    f"{label} Running in {params.source} since {format_time(start)}; "
                    f"the soak ends at {format_time(ends)}"
                )
            elif latest is None:
                failing.append(f"{label} has no health history in {params.source}")
            else:
                failing.append(
                    f"{label} is not Running in {params.source} (now {latest.status or 'absent'}"
                    f" at {latest.version or 'no version'} since {format_time(latest.time)})"
                )
        evidence["applications"] = rows
        if failing:
            known = [wait for wait in waits if wait is not None]
            return RuleVerdict(
                kind=self.kind,
                passed=False,
                summary="; ".join(failing),
                evidence=evidence,
                next_possible=max(known) if known and len(known) == len(waits) else None,
            )
        if not rows:
            summary = "the change installs or promotes no Application; nothing to soak"
        else:
            summary = "; ".join(
                f"{row['application']} {row['version']} Running in {params.source} since "
                f"{row['runningSince']}"
                for row in rows
            )
        return RuleVerdict(kind=self.kind, passed=True, summary=summary, evidence=evidence)
