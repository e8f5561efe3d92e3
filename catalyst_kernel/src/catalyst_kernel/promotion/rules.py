"""The policy-rule-kind slot: what each ``kind`` of an EnvironmentPolicy rule means."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from attrs import field, frozen

from catalyst_kernel.provisioning.committer import ChangeRequest

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import PolicyRule

__all__ = ["RuleContext", "RuleKind", "RuleVerdict", "TimelineEntry", "TimelineReader"]


@frozen
class TimelineEntry:
    """One entry of an Application's timeline in the read model."""

    time: datetime
    kind: str
    application: str
    version: str | None = None
    status: str | None = None
    detail: Mapping[str, Any] = field(factory=dict)


@runtime_checkable
class TimelineReader(Protocol):
    async def application_timeline(
        self, environment: str, application: str
    ) -> Sequence[TimelineEntry]:
        """The Application's timeline in ``environment``, oldest first."""


@frozen
class RuleContext:
    """What a rule sees: the change, the destination, the clock and the read model's history."""

    environment: str
    change: ChangeRequest
    now: datetime
    timeline: TimelineReader
    applications: tuple[str, ...] = ()
    rollback: bool = False


@frozen
class RuleVerdict:
    """One rule's answer, with its evidence and when a blocked change may next pass."""

    kind: str
    passed: bool
    summary: str
    evidence: Mapping[str, Any] = field(factory=dict)
    next_possible: datetime | None = None


@runtime_checkable
class RuleKind(Protocol):
    """Implements one ``kind`` of EnvironmentPolicy rule (``pr-required``, ``soak`` …)."""

    kind: str

    def validate(self, rule: PolicyRule) -> None:
        """Raise :class:`~catalyst_kernel.errors.InvalidInput` if ``rule.params`` are malformed."""

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """Decide whether the change passes this rule now."""
