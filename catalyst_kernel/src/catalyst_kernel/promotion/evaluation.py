"""Evaluating an EnvironmentPolicy: every rule's verdict, and whether the change may merge.

The evaluator knows rule kinds only through the registry it is given (the plugin manager's
``policy_rule_kinds()``), so built-in and third-party kinds are treated alike. It never raises
because of a rule: an unknown kind, a kind that raises or times out, or one that returns
something else than a :class:`~catalyst_kernel.promotion.rules.RuleVerdict` is a failed verdict
saying so, and the problem is logged.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from attrs import frozen

from catalyst_kernel.errors import CatalystError, FieldProblem, InvalidInput
from catalyst_kernel.promotion.kinds.params import format_duration, format_time
from catalyst_kernel.promotion.rules import RuleVerdict

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import EnvironmentPolicy, PolicyRule
    from catalyst_kernel.promotion.rules import RuleContext, RuleKind

__all__ = ["DEFAULT_RULE_TIMEOUT", "PolicyEvaluator", "Verdict", "describe_rule"]

_log = logging.getLogger(__name__)

DEFAULT_RULE_TIMEOUT: Final = 30.0
"""Seconds one rule may take (a ``soak`` reads the read model) before it fails as timed out."""


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready data (third-party kinds may put datetimes and the like in it)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


def describe_rule(verdict: RuleVerdict) -> dict[str, Any]:
    """One rule's verdict as a document: ``{kind, passed, summary, evidence, nextPossible}``."""
    return {
        "kind": verdict.kind,
        "passed": verdict.passed,
        "summary": verdict.summary,
        "evidence": _plain(verdict.evidence),
        "nextPossible": format_time(verdict.next_possible),
    }


@frozen
class Verdict:
    """A policy's answer for one change at one instant.

    :ivar passed: every rule passed (a policy without rules passes).
    :ivar rules: each rule's verdict, in the policy's order, then the Organization-wide rules.
    :ivar evaluated_at: the clock reading the rules saw.
    :ivar next_possible: when the change may next pass, if every failing rule can say (the
        latest of their answers; a lower bound, since a window may have closed again by then);
        ``None`` when it passed or when some failing rule needs people rather than time.
    """

    passed: bool
    rules: tuple[RuleVerdict, ...]
    evaluated_at: datetime
    next_possible: datetime | None = None

    def describe(self) -> dict[str, Any]:
        """The verdict as the API shows it (camelCase, JSON-ready).

        ``{passed, evaluatedAt, nextPossible, rules: [{kind, passed, summary, evidence,
        nextPossible}]}``
        """
        return {
            "passed": self.passed,
            "evaluatedAt": format_time(self.evaluated_at),
            "nextPossible": format_time(self.next_possible),
            "rules": [describe_rule(rule) for rule in self.rules],
        }


def _pointer_parts(field: str) -> tuple[str, ...]:
    if field.startswith("/"):
        return FieldProblem(field, "").parts
    return tuple(field.split("."))


class PolicyEvaluator:
    """Validates EnvironmentPolicies and evaluates them for changes.

    :param kinds: the registered rule kinds by ``kind`` (``PluginManager.policy_rule_kinds()``).
    :param rule_timeout: seconds one rule may take to evaluate (``None``: no limit).
    """

    def __init__(
        self, kinds: Mapping[str, RuleKind], *, rule_timeout: float | None = DEFAULT_RULE_TIMEOUT
    ) -> None:
        self.kinds: Mapping[str, RuleKind] = dict(kinds)
        self.rule_timeout = rule_timeout

    def _unknown(self, kind: str) -> str:
        known = ", ".join(sorted(self.kinds)) or "none"
        return f"unknown rule kind {kind!r}; registered kinds: {known}"

    def rule_problems(self, rule: PolicyRule, at: Sequence[str | int]) -> list[FieldProblem]:
        """What is wrong with one rule, with pointers under ``at`` (``("spec", "rules", 2)``)."""
        rule_kind = self.kinds.get(rule.kind)
        if rule_kind is None:
            return [FieldProblem.at((*at, "kind"), self._unknown(rule.kind))]
        try:
            rule_kind.validate(rule)
        except InvalidInput as exc:
            if exc.problems:
                return [FieldProblem.at((*at, *p.parts), p.message) for p in exc.problems]
            where = (*at, *_pointer_parts(exc.field)) if exc.field else tuple(at)
            return [FieldProblem.at(where, exc.message)]
        except Exception as exc:
            # A broken third-party kind must not hide the policy's other problems.
            _log.exception("rule kind %r failed to validate a rule", rule.kind)
            return [
                FieldProblem.at(
                    at, f"rule kind {rule.kind!r} failed to validate it: {type(exc).__name__}"
                )
            ]
        return []

    def validate(self, policy: EnvironmentPolicy) -> None:
        """Raise :class:`InvalidInput` listing every problem of every rule.

        Pointers are relative to the policy document: ``/spec/rules/<i>/kind`` for an unknown
        kind, ``/spec/rules/<i>/<param>…`` for a bad parameter.
        """
        problems: list[FieldProblem] = []
        for index, rule in enumerate(policy.spec.rules):
            problems.extend(self.rule_problems(rule, ("spec", "rules", index)))
        if problems:
            summary = "; ".join(problem.describe() for problem in problems)
            raise InvalidInput(
                f"invalid EnvironmentPolicy {policy.metadata.name!r}: {summary}",
                field=problems[0].pointer,
                problems=problems,
            )

    async def evaluate(
        self,
        policy: EnvironmentPolicy,
        context: RuleContext,
        *,
        organization_rules: Sequence[PolicyRule] = (),
    ) -> Verdict:
        """Evaluate the policy's rules, then ``organization_rules``, for ``context.change``.

        :param organization_rules: rules of other Environments' policies that apply to the whole
            Organization (``freeze`` rules with ``scope: organization``); the caller finds them.
        :raises InvalidInput: if ``context.now`` has no time zone (a caller's mistake).
        """
        now = context.now
        if now.tzinfo is None or now.utcoffset() is None:
            raise InvalidInput("the evaluation time must carry a time zone", field="now")
        verdicts = []
        for rule in (*policy.spec.rules, *organization_rules):
            verdicts.append(await self.evaluate_rule(rule, context))
        failing = [verdict for verdict in verdicts if not verdict.passed]
        waits = [verdict.next_possible for verdict in failing]
        known = [wait for wait in waits if wait is not None]
        return Verdict(
            passed=not failing,
            rules=tuple(verdicts),
            evaluated_at=now,
            next_possible=max(known) if failing and len(known) == len(waits) else None,
        )

    async def evaluate_rule(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        """One rule's verdict; whatever goes wrong becomes a failed verdict saying what."""
        rule_kind = self.kinds.get(rule.kind)
        if rule_kind is None:
            _log.warning("policy rule of unknown kind %r failed", rule.kind)
            return self._failed(rule.kind, self._unknown(rule.kind), "UnknownRuleKind")
        try:
            with anyio.fail_after(self.rule_timeout):
                verdict = await rule_kind.evaluate(rule, context)
        except TimeoutError:
            _log.warning("rule kind %r timed out after %ss", rule.kind, self.rule_timeout)
            return self._failed(
                rule.kind, f"the rule did not answer within {self.rule_timeout}s", "TimeoutError"
            )
        except CatalystError as exc:
            # Our own errors carry messages meant for users (an invalid parameter, a backend down).
            _log.warning("rule kind %r failed: %s", rule.kind, exc.message)
            return self._failed(
                rule.kind, f"the rule could not be evaluated: {exc.message}", type(exc).__name__
            )
        except Exception as exc:
            # Foreign messages may say anything; users see the class, the log keeps the rest.
            _log.exception("rule kind %r raised while evaluating", rule.kind)
            name = type(exc).__name__
            return self._failed(rule.kind, f"the rule could not be evaluated ({name})", name)
        if not isinstance(verdict, RuleVerdict):
            _log.error("rule kind %r returned %s, not a RuleVerdict", rule.kind, type(verdict))
            return self._failed(
                rule.kind, "the rule kind returned no verdict", type(verdict).__name__
            )
        wait = verdict.next_possible
        if wait is not None and (wait.tzinfo is None or wait.utcoffset() is None):
            # It could not be compared with the other rules' times; better no date than a crash.
            _log.error("rule kind %r gave a next_possible without a time zone", rule.kind)
            return attrs.evolve(verdict, next_possible=None)
        return verdict

    @staticmethod
    def _failed(kind: str, summary: str, error: str) -> RuleVerdict:
        return RuleVerdict(kind=kind, passed=False, summary=summary, evidence={"error": error})
