"""``freeze``: no merges, unless someone allowed to breaks the glass.

.. code-block:: yaml

    - kind: freeze
      scope: organization          # or environment (the default)
      reason: Black Friday
      until: 2026-11-30T06:00:00Z  # optional; from then on the freeze no longer applies
      breakGlass:                  # optional; without it nobody can override the freeze
        approvers: [team-sre]

A freeze with ``scope: organization`` written in any Environment's policy applies to every
Environment of the Organization (the caller of
:meth:`~catalyst_kernel.promotion.evaluation.PolicyEvaluator.evaluate` passes it as an
``organization_rules`` entry); ``environment`` applies only where it is written.

**Break-glass**: an approval of the change's current revision, by someone other than the author
who was in one of the ``breakGlass.approvers`` teams when approving, carrying a ``reason`` and an
``expires`` still in the future. It lets the change through while it lasts; the approval itself
(who, team, reason, expiry) is part of the change's record and of the verdict's evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from catalyst_kernel.promotion.kinds.params import ParamReader, format_time
from catalyst_kernel.promotion.kinds.pr_required import approval_row, approving_team
from catalyst_kernel.promotion.rules import RuleVerdict

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import PolicyRule
    from catalyst_kernel.promotion.rules import RuleContext
    from catalyst_kernel.provisioning.committer import ChangeRequest

__all__ = ["SCOPES", "Freeze", "break_glass"]

SCOPES: Final = ("environment", "organization")
_PARAMS: Final = ("scope", "reason", "until", "breakGlass")
_BREAK_GLASS_PARAMS: Final = ("approvers",)


@frozen
class _Params:
    scope: str
    reason: str
    until: datetime | None
    break_glass: tuple[str, ...] | None


def break_glass(
    change: ChangeRequest, teams: tuple[str, ...], now: datetime
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The valid break-glass approval with the latest expiry (or ``None``), and every other
    approval carrying a reason or an expiry, with why it does not count (``ignoredBecause``:
    ``stale-revision``, ``author``, ``not-in-team``, ``no-reason``, ``no-expiry``, ``expired``).

    Rows are ``{approver, revision, time, team, reason, expires}``.
    """
    valid: list[tuple[datetime, dict[str, Any]]] = []
    ignored: list[dict[str, Any]] = []
    for approval in sorted(change.approvals, key=lambda a: (a.time, a.approver)):
        if approval.reason is None and approval.expires is None:
            continue  # an ordinary approval, not an attempt to break the glass
        team, why = approving_team(approval, change, teams)
        reason = (approval.reason or "").strip()
        row = {
            **approval_row(approval),
            "team": team,
            "reason": reason or None,
            "expires": format_time(approval.expires),
        }
        if why is None and not reason:
            why = "no-reason"
        elif why is None and approval.expires is None:
            why = "no-expiry"
        elif why is None and approval.expires is not None and approval.expires <= now:
            why = "expired"
        if why is not None:
            ignored.append({**row, "ignoredBecause": why})
        elif approval.expires is not None:
            valid.append((approval.expires, row))
    chosen = max(valid, key=lambda pair: pair[0])[1] if valid else None
    return chosen, ignored


class Freeze:
    """The ``freeze`` rule kind (see the module docstring)."""

    kind = "freeze"

    def _parse(self, rule: PolicyRule) -> _Params:
        reader = ParamReader(rule, _PARAMS)
        scope = reader.choice("scope", SCOPES, default="environment")
        reason = reader.string("reason", required=True)
        until = reader.instant("until")
        section = reader.section("breakGlass", _BREAK_GLASS_PARAMS)
        teams = None if section is None else section.teams("approvers")
        reader.done()
        return _Params(scope, reason, until, teams)

    def validate(self, rule: PolicyRule) -> None:
        """``scope``: organization or environment; ``reason``: required text; ``until``: an
        ISO 8601 date-time with a zone; ``breakGlass.approvers``: a list of teams."""
        self._parse(rule)

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """Block unless the freeze has ended or a valid break-glass approval exists."""
        params = self._parse(rule)
        now = context.now
        evidence: dict[str, Any] = {
            "scope": params.scope,
            "reason": params.reason,
            "until": format_time(params.until),
            "breakGlassApprovers": None if params.break_glass is None else list(params.break_glass),
        }
        if params.until is not None and now >= params.until:
            return RuleVerdict(
                kind=self.kind,
                passed=True,
                summary=f"the freeze ({params.reason}) ended at {format_time(params.until)}",
                evidence={**evidence, "active": False, "breakGlass": None, "ignored": []},
            )
        used: dict[str, Any] | None = None
        ignored: list[dict[str, Any]] = []
        if params.break_glass is not None:
            used, ignored = break_glass(context.change, params.break_glass, now)
        evidence.update(active=True, breakGlass=used, ignored=ignored)
        if used is not None:
            return RuleVerdict(
                kind=self.kind,
                passed=True,
                summary=(
                    f"frozen ({params.reason}), overridden by a break-glass approval of "
                    f"{used['approver']} ({used['team']}) until {used['expires']}: "
                    f"{used['reason']}"
                ),
                evidence=evidence,
            )
        summary = f"frozen: {params.reason}"
        if params.until is not None:
            summary += f" (until {format_time(params.until)})"
        if params.break_glass is None:
            summary += "; this freeze allows no break-glass"
        else:
            summary += (
                f"; a break-glass needs an approval of revision {context.change.revision} by a "
                f"member of {' or '.join(params.break_glass)} other than the author, with a "
                "reason and an expiry"
            )
        return RuleVerdict(
            kind=self.kind,
            passed=False,
            summary=summary,
            evidence=evidence,
            next_possible=params.until,
        )
