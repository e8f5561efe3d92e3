"""``pr-required``: enough distinct approvers from the listed teams approved the current revision.

.. code-block:: yaml

    - kind: pr-required
      approvers: [team-platform, team-security]   # teams = the approver's identity groups
      minApprovals: 2                             # default 1

An approval counts when it approves the change's current revision, its approver is not the
change's author, and the approver was in one of the listed teams when approving (the groups the
approval recorded). Each approver counts once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from catalyst_kernel.promotion.kinds.params import ParamReader, format_time
from catalyst_kernel.promotion.rules import RuleVerdict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.model.policy import PolicyRule
    from catalyst_kernel.promotion.rules import RuleContext
    from catalyst_kernel.provisioning.committer import Approval, ChangeRequest

__all__ = ["PrRequired", "approval_row", "approving_team"]

_PARAMS: Final = ("approvers", "minApprovals")


@frozen
class _Params:
    approvers: tuple[str, ...]
    min_approvals: int


def approval_row(approval: Approval) -> dict[str, Any]:
    """``{approver, revision, time}`` of an approval, as evidence shows it."""
    return {
        "approver": approval.approver,
        "revision": approval.revision,
        "time": format_time(approval.time),
    }


def approving_team(
    approval: Approval, change: ChangeRequest, teams: Sequence[str]
) -> tuple[str | None, str | None]:
    """``(team, None)`` when the approval counts for the first of ``teams`` its approver was
    in, else ``(None, why)`` with why ``stale-revision``, ``author`` or ``not-in-team``."""
    if approval.revision != change.revision:
        return None, "stale-revision"
    if approval.approver == change.author:
        return None, "author"
    team = next((t for t in teams if t in approval.groups), None)
    return (team, None) if team is not None else (None, "not-in-team")


class PrRequired:
    """The ``pr-required`` rule kind (see the module docstring)."""

    kind = "pr-required"

    def _parse(self, rule: PolicyRule) -> _Params:
        reader = ParamReader(rule, _PARAMS)
        approvers = reader.teams("approvers")
        min_approvals = reader.integer("minApprovals", default=1, minimum=1)
        reader.done()
        return _Params(approvers, min_approvals)

    def validate(self, rule: PolicyRule) -> None:
        """``approvers``: a non-empty list of teams; ``minApprovals``: a whole number ≥ 1."""
        self._parse(rule)

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """Pass when ``minApprovals`` distinct approvers from the listed teams approved."""
        params = self._parse(rule)
        change = context.change
        counted: list[dict[str, Any]] = []
        ignored: list[dict[str, Any]] = []
        for approval in sorted(change.approvals, key=lambda a: (a.time, a.approver)):
            team, why = approving_team(approval, change, params.approvers)
            if team is None:
                ignored.append({**approval_row(approval), "ignoredBecause": why})
            elif all(row["approver"] != approval.approver for row in counted):
                counted.append({**approval_row(approval), "team": team})
        count = len(counted)
        passed = count >= params.min_approvals
        teams = " or ".join(params.approvers)
        if passed:
            who = ", ".join(f"{row['approver']} ({row['team']})" for row in counted)
            summary = f"{count} of {params.min_approvals} required approvals: {who}"
        else:
            missing = params.min_approvals - count
            summary = (
                f"{count} of {params.min_approvals} required approvals of revision "
                f"{change.revision}; needs {missing} more from {teams} (not the author)"
            )
        return RuleVerdict(
            kind=self.kind,
            passed=passed,
            summary=summary,
            evidence={
                "approvers": list(params.approvers),
                "minApprovals": params.min_approvals,
                "revision": change.revision,
                "author": change.author,
                "counted": list(counted),
                "ignored": list(ignored),
            },
            # Only people can make it pass; time alone never will.
            next_possible=None,
        )
