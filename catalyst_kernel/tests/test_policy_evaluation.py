"""The policy evaluator: aggregation of rule verdicts, ``next_possible``, validation pointers,
failures contained per rule, Organization-wide rules, and a third-party rule kind registered
through the plugin hook evaluated exactly like the built-ins."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.convert import structure
from catalyst_kernel.model.policy import EnvironmentPolicy, PolicyMetadata, PolicyRule, PolicySpec
from catalyst_kernel.plugins import PluginManager, hookimpl
from catalyst_kernel.promotion.evaluation import PolicyEvaluator, Verdict
from catalyst_kernel.promotion.kinds import ChangeWindow, Freeze, PrRequired, Soak
from catalyst_kernel.promotion.kinds.params import ParamReader
from catalyst_kernel.promotion.rules import RuleContext, RuleKind, RuleVerdict, TimelineEntry
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeRequest,
    ChangeStatus,
)

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # a Wednesday, between two windows
THURSDAY_WINDOW = datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # 14:00 Europe/Berlin


class Timeline:
    def __init__(self, entries: Sequence[TimelineEntry] = ()) -> None:
        self.entries = list(entries)

    async def application_timeline(
        self, environment: str, application: str
    ) -> Sequence[TimelineEntry]:
        return [e for e in self.entries if e.application == application]


def running(hours_ago: float) -> TimelineEntry:
    return TimelineEntry(
        time=NOW - timedelta(hours=hours_ago),
        kind="health",
        application="web",
        version="1.2.0",
        status="Running",
    )


def change(*approvals: Approval, ticket: str = "") -> ChangeRequest:
    return ChangeRequest(
        id="7",
        environment="acme-prod",
        title="Promote web",
        author="alice",
        status=ChangeStatus.OPEN,
        revision=1,
        head="h",
        base="b",
        created=NOW,
        updated=NOW,
        description=ticket,
        approvals=approvals,
        applications=(ApplicationChange("web", ApplicationAction.PROMOTE, "bp-web", "1.2.0"),),
    )


def context(
    the_change: ChangeRequest | None = None,
    *,
    timeline: Sequence[TimelineEntry] = (),
    now: datetime = NOW,
) -> RuleContext:
    return RuleContext("acme-prod", the_change or change(), now, Timeline(timeline))


def policy(*rules: PolicyRule) -> EnvironmentPolicy:
    return EnvironmentPolicy(PolicyMetadata("prod-default"), PolicySpec(rules=rules))


def builtin_evaluator(**extra: RuleKind) -> PolicyEvaluator:
    kinds: dict[str, RuleKind] = {
        k.kind: k for k in (PrRequired(), Soak(), ChangeWindow(), Freeze())
    }
    return PolicyEvaluator({**kinds, **extra})


BOB = Approval("bob", 1, NOW, frozenset({"team-platform"}))
CAROL = Approval("carol", 1, NOW, frozenset({"team-security"}))
PR = PolicyRule("pr-required", {"approvers": ["team-platform", "team-security"], "minApprovals": 2})
SOAK = PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "72h"})
WINDOW = PolicyRule(
    "change-window", {"cron": "0 14 * * 2,4", "duration": "2h", "timeZone": "Europe/Berlin"}
)


# -------------------------------------------------------------------------------------------------
# A third-party rule kind, as a plugin would ship it
# -------------------------------------------------------------------------------------------------


class TicketLinked:
    """``ticket-linked``: the change's description names a ticket with the given prefix."""

    kind = "ticket-linked"

    def validate(self, rule: PolicyRule) -> None:
        reader = ParamReader(rule, ("prefix",))
        reader.string("prefix", required=True)
        reader.done()

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        self.validate(rule)
        prefix = rule.params["prefix"]
        found = prefix in context.change.description
        return RuleVerdict(
            kind=self.kind,
            passed=found,
            summary=f"a {prefix} ticket is linked" if found else f"link a {prefix} ticket",
            evidence={"prefix": prefix, "checkedAt": context.now},
        )


class Raising:
    kind = "raising"

    def validate(self, rule: PolicyRule) -> None:
        raise RuntimeError("validation bug with a secret-ish detail")

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        raise KeyError("secret-ish detail")


class Hanging:
    kind = "hanging"

    def validate(self, rule: PolicyRule) -> None:
        pass

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        await anyio.Event().wait()
        raise AssertionError("unreachable")


class Confused:
    kind = "confused"

    def validate(self, rule: PolicyRule) -> None:
        pass

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> Any:
        return {"passed": True}


class Waiting:
    """Fails with a fixed ``next_possible`` (or none)."""

    def __init__(self, kind: str, until: datetime | None) -> None:
        self.kind = kind
        self.until = until

    def validate(self, rule: PolicyRule) -> None:
        pass

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        return RuleVerdict(self.kind, False, f"wait for {self.until}", next_possible=self.until)


class Plugin:
    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, function in hooks.items():
            setattr(self, name, hookimpl(function))


# -------------------------------------------------------------------------------------------------
# Aggregation and next_possible
# -------------------------------------------------------------------------------------------------


async def test_a_policy_without_rules_passes() -> None:
    verdict = await builtin_evaluator().evaluate(policy(), context())
    assert verdict == Verdict(passed=True, rules=(), evaluated_at=NOW, next_possible=None)


async def test_every_rule_must_pass() -> None:
    evaluator = builtin_evaluator()
    soaked = [running(100)]
    inside = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)
    everything = policy(PR, SOAK, WINDOW)
    verdict = await evaluator.evaluate(
        everything, context(change(BOB, CAROL), timeline=soaked, now=inside)
    )
    assert verdict.passed
    assert [rule.kind for rule in verdict.rules] == ["pr-required", "soak", "change-window"]
    assert verdict.next_possible is None
    assert verdict.evaluated_at == inside

    verdict = await evaluator.evaluate(
        everything, context(change(BOB), timeline=soaked, now=inside)
    )
    assert not verdict.passed
    assert [rule.passed for rule in verdict.rules] == [False, True, True]


async def test_next_possible_is_the_latest_of_the_failing_rules() -> None:
    # Soaking until Friday 03:00 UTC; the window opens on Thursday: the change waits for both.
    verdict = await builtin_evaluator().evaluate(
        policy(SOAK, WINDOW), context(timeline=[running(30)])
    )
    soak_end = NOW + timedelta(hours=42)
    assert [rule.next_possible for rule in verdict.rules] == [soak_end, THURSDAY_WINDOW]
    assert verdict.next_possible == max(soak_end, THURSDAY_WINDOW) == soak_end


async def test_next_possible_is_unknown_when_a_failing_rule_needs_people() -> None:
    verdict = await builtin_evaluator().evaluate(
        policy(PR, SOAK, WINDOW), context(timeline=[running(10)])
    )
    assert not verdict.passed
    assert verdict.rules[0].next_possible is None
    assert verdict.next_possible is None


async def test_passing_rules_do_not_hold_back_next_possible() -> None:
    later = NOW + timedelta(days=30)
    evaluator = builtin_evaluator(wait=Waiting("wait", NOW + timedelta(hours=1)))
    verdict = await evaluator.evaluate(
        policy(
            PolicyRule("wait"), PolicyRule("freeze", {"reason": "x", "until": later.isoformat()})
        ),
        context(now=later),
    )
    assert [rule.passed for rule in verdict.rules] == [False, True]
    assert verdict.next_possible == NOW + timedelta(hours=1)


# -------------------------------------------------------------------------------------------------
# Failures are contained per rule
# -------------------------------------------------------------------------------------------------


async def test_an_unknown_kind_is_a_failed_verdict() -> None:
    verdict = await builtin_evaluator().evaluate(policy(PolicyRule("vibes"), WINDOW), context())
    assert not verdict.passed
    unknown = verdict.rules[0]
    assert (unknown.kind, unknown.passed) == ("vibes", False)
    assert "unknown rule kind 'vibes'" in unknown.summary
    assert unknown.evidence == {"error": "UnknownRuleKind"}
    assert verdict.rules[1].kind == "change-window"


async def test_a_raising_kind_fails_its_rule_names_the_error_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    evaluator = builtin_evaluator(raising=Raising())
    with caplog.at_level(logging.ERROR, logger="catalyst_kernel.promotion.evaluation"):
        verdict = await evaluator.evaluate(
            policy(PolicyRule("raising"), PR), context(change(BOB, CAROL))
        )
    assert not verdict.passed
    failed, other = verdict.rules
    assert (failed.passed, failed.evidence) == (False, {"error": "KeyError"})
    assert "KeyError" in failed.summary
    assert "secret-ish" not in failed.summary
    assert other.passed  # the other rules were still evaluated
    assert any("'raising' raised" in record.getMessage() for record in caplog.records)


async def test_invalid_parameters_at_evaluation_fail_the_rule_with_the_message() -> None:
    verdict = await builtin_evaluator().evaluate(
        policy(PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "72"})), context()
    )
    (rule,) = verdict.rules
    assert not rule.passed
    assert rule.evidence == {"error": "InvalidInput"}
    assert "/duration" in rule.summary


async def test_a_hanging_kind_times_out() -> None:
    evaluator = PolicyEvaluator({"hanging": Hanging()}, rule_timeout=0)
    verdict = await evaluator.evaluate(policy(PolicyRule("hanging")), context())
    assert not verdict.passed
    assert verdict.rules[0].evidence == {"error": "TimeoutError"}


async def test_a_kind_returning_no_verdict_fails_its_rule() -> None:
    verdict = await PolicyEvaluator({"confused": Confused()}).evaluate(
        policy(PolicyRule("confused")), context()
    )
    assert not verdict.passed
    assert verdict.rules[0].evidence == {"error": "dict"}


async def test_a_naive_next_possible_is_dropped_not_compared() -> None:
    evaluator = PolicyEvaluator(
        {"naive": Waiting("naive", datetime(2027, 1, 1)), "aware": Waiting("aware", NOW)}
    )
    verdict = await evaluator.evaluate(policy(PolicyRule("naive"), PolicyRule("aware")), context())
    assert [rule.next_possible for rule in verdict.rules] == [None, NOW]
    assert verdict.next_possible is None


async def test_the_evaluation_time_must_be_aware() -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        await builtin_evaluator().evaluate(policy(), context(now=NOW.replace(tzinfo=None)))


# -------------------------------------------------------------------------------------------------
# Organization-wide rules
# -------------------------------------------------------------------------------------------------


async def test_organization_rules_are_evaluated_with_the_policys_own() -> None:
    org_freeze = PolicyRule(
        "freeze",
        {"scope": "organization", "reason": "Year-end", "breakGlass": {"approvers": ["team-sre"]}},
    )
    evaluator = builtin_evaluator()
    verdict = await evaluator.evaluate(
        policy(PR), context(change(BOB, CAROL)), organization_rules=[org_freeze]
    )
    assert not verdict.passed
    assert [(rule.kind, rule.passed) for rule in verdict.rules] == [
        ("pr-required", True),
        ("freeze", False),
    ]
    assert verdict.rules[1].evidence["scope"] == "organization"

    glass = Approval(
        "dave", 1, NOW, frozenset({"team-sre"}), reason="INC-7", expires=NOW + timedelta(hours=2)
    )
    verdict = await evaluator.evaluate(
        policy(PR), context(change(BOB, CAROL, glass)), organization_rules=[org_freeze]
    )
    assert verdict.passed
    assert verdict.rules[1].evidence["breakGlass"]["approver"] == "dave"


# -------------------------------------------------------------------------------------------------
# Validation
# -------------------------------------------------------------------------------------------------


def test_the_seed_policy_is_valid() -> None:
    wire = {
        "apiVersion": "catalyst.openova.io/v1alpha1",
        "kind": "EnvironmentPolicy",
        "metadata": {"name": "prod-default", "namespace": "acme"},
        "spec": {
            "appliesTo": {"environments": ["acme-prod"]},
            "rules": [
                {"kind": "pr-required", "approvers": ["team-platform", "team-security"]},
                {"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "72h"},
                {"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"},
            ],
        },
    }
    builtin_evaluator().validate(structure(wire, EnvironmentPolicy))


def test_the_examples_in_the_policy_reference_are_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    assert len(blocks) >= 2
    evaluator = builtin_evaluator()
    evaluator.validate(structure(blocks[0], EnvironmentPolicy))
    for rules in blocks[1:]:
        for rule in rules:
            wire = dict(rule)
            kind = wire.pop("kind")
            assert evaluator.rule_problems(PolicyRule(kind, wire), ()) == [], rule


def test_validation_points_at_every_bad_rule_in_the_policy() -> None:
    bad = policy(
        PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "72"}),
        PR,
        PolicyRule("vibes", {"level": 3}),
        PolicyRule("pr-required", {"approvers": ["team-platform", 7], "minApprovals": 0}),
        PolicyRule("change-window", {"cron": "0 14 * *", "duration": "2h", "timeZone": "Mars/X"}),
    )
    with pytest.raises(InvalidInput) as caught:
        builtin_evaluator().validate(bad)
    pointers = [problem.pointer for problem in caught.value.problems]
    assert pointers == [
        "/spec/rules/0/duration",
        "/spec/rules/2/kind",
        "/spec/rules/3/approvers/1",
        "/spec/rules/3/minApprovals",
        "/spec/rules/4/cron",
        "/spec/rules/4/timeZone",
    ]
    assert caught.value.field == "/spec/rules/0/duration"
    assert "'prod-default'" in caught.value.message
    assert "registered kinds: change-window, freeze, pr-required, soak" in caught.value.message


def test_a_kind_raising_without_problems_is_pointed_at_by_its_field() -> None:
    class FieldOnly:
        kind = "field-only"

        def validate(self, rule: PolicyRule) -> None:
            raise InvalidInput("bad limit", field="limits.max")

        async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
            raise NotImplementedError

    with pytest.raises(InvalidInput) as caught:
        PolicyEvaluator({"field-only": FieldOnly()}).validate(policy(PolicyRule("field-only")))
    assert [p.pointer for p in caught.value.problems] == ["/spec/rules/0/limits/max"]


def test_a_kind_that_crashes_while_validating_is_reported_not_raised() -> None:
    with pytest.raises(InvalidInput) as caught:
        builtin_evaluator(raising=Raising()).validate(policy(PR, PolicyRule("raising")))
    (problem,) = caught.value.problems
    assert problem.pointer == "/spec/rules/1"
    assert "RuntimeError" in problem.message
    assert "secret-ish" not in problem.message


# -------------------------------------------------------------------------------------------------
# The verdict document
# -------------------------------------------------------------------------------------------------


async def test_the_verdict_document_is_camel_case_and_json_ready() -> None:
    evaluator = builtin_evaluator(**{"ticket-linked": TicketLinked()})
    verdict = await evaluator.evaluate(
        policy(SOAK, PolicyRule("ticket-linked", {"prefix": "OPS-"})),
        context(timeline=[running(10)]),
    )
    document = verdict.describe()
    assert json.loads(json.dumps(document)) == document
    assert document["passed"] is False
    assert document["evaluatedAt"] == "2026-12-02T09:00:00+00:00"
    assert document["nextPossible"] is None
    soak, ticket = document["rules"]
    assert set(soak) == {"kind", "passed", "summary", "evidence", "nextPossible"}
    assert soak["nextPossible"] == "2026-12-04T23:00:00+00:00"
    assert soak["evidence"]["applications"][0]["runningSince"] == "2026-12-01T23:00:00+00:00"
    # A third-party kind's datetime evidence is made plain too.
    assert ticket["evidence"] == {"prefix": "OPS-", "checkedAt": "2026-12-02T09:00:00+00:00"}


# -------------------------------------------------------------------------------------------------
# Registration through the plugin hook
# -------------------------------------------------------------------------------------------------


def test_core_registers_the_builtin_kinds(catalyst_plugin_manager: PluginManager) -> None:
    kinds = catalyst_plugin_manager.policy_rule_kinds()
    assert {"pr-required", "soak", "change-window", "freeze"} <= set(kinds)
    assert isinstance(kinds["soak"], Soak)
    assert all(isinstance(kind, RuleKind) for kind in kinds.values())


async def test_a_third_party_kind_is_evaluated_like_the_builtins(
    catalyst_register: Callable[..., Any], catalyst_plugin_manager: PluginManager
) -> None:
    catalyst_register(Plugin(catalyst_policy_rule_kinds=lambda ctx: [TicketLinked()]), "tickets")
    evaluator = PolicyEvaluator(catalyst_plugin_manager.policy_rule_kinds())
    mixed = policy(PR, PolicyRule("ticket-linked", {"prefix": "OPS-"}))
    evaluator.validate(mixed)
    with pytest.raises(InvalidInput) as caught:
        evaluator.validate(policy(PolicyRule("ticket-linked", {"prefix": 1, "x": 2})))
    assert [p.pointer for p in caught.value.problems] == ["/spec/rules/0/x", "/spec/rules/0/prefix"]

    blocked = await evaluator.evaluate(mixed, context(change(BOB, CAROL)))
    assert [(rule.kind, rule.passed) for rule in blocked.rules] == [
        ("pr-required", True),
        ("ticket-linked", False),
    ]
    assert not blocked.passed
    linked = await evaluator.evaluate(mixed, context(change(BOB, CAROL, ticket="Fixes OPS-12")))
    assert linked.passed
