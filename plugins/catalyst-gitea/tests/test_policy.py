"""The policy on Gitea: the verdict as the required status, and ``main``'s protection following
the policy's ``pr-required`` rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from catalyst_gitea.committer import GiteaCommitter
from catalyst_gitea.testing import GiteaStandIn
from catalyst_kernel.model.convert import unstructure
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.model.policy import PolicyRule
from catalyst_kernel.model.tenancy import Environment
from catalyst_kernel.promotion.evaluation import Verdict
from catalyst_kernel.promotion.rules import RuleVerdict
from catalyst_kernel.provisioning.committer import CommitRequest
from catalyst_kernel.provisioning.environments import default_policy, policy_file

from .conftest import CommitterMaker

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def request(*files: FileChange) -> CommitRequest:
    return CommitRequest(
        environment=ENV,
        message="Change",
        files=files,
        actor="alice",
        operation_id=f"op-{uuid.uuid4().hex[:8]}",
    )


def policy(*rules: PolicyRule) -> FileChange:
    environment = Environment.parse(ENV)
    document = default_policy(environment)
    document = type(document)(
        metadata=document.metadata,
        spec=type(document.spec)(applies_to=document.spec.applies_to, rules=rules),
    )
    return policy_file(document, FileAction.MODIFY)


PR_REQUIRED = PolicyRule("pr-required", {"approvers": ["team-ops"], "minApprovals": 1})


async def create(committer: GiteaCommitter) -> None:
    initial = request(policy_file(default_policy(Environment.parse(ENV))))
    await committer.create_repository(Environment.parse(ENV), initial)


async def test_main_is_protected_while_the_policy_requires_pull_requests(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer() as committer:
        await create(committer)
        repo = standin.repository("acme", ENV)
        assert repo.protections == {}
        await committer.commit(request(policy(PR_REQUIRED)))
        rule = repo.protections["main"]
        assert (rule["enable_push_whitelist"], rule["push_whitelist_usernames"]) == (
            True,
            ["catalyst"],
        )
        assert (rule["enable_status_check"], rule["status_check_contexts"]) == (
            True,
            ["catalyst/environment-policy"],
        )
        assert rule["block_admin_merge_override"]
        # Catalyst's own commits still land: it is on the allow-list.
        await committer.commit(request(FileChange("a.yaml", FileAction.ADD, "a: 1\n")))
        # Someone loosens the rule in Gitea: the next policy commit puts it back.
        rule["enable_status_check"] = False
        soak = PolicyRule("soak", {"sourceEnvironment": "acme-stg", "duration": "1h"})
        await committer.commit(request(policy(PR_REQUIRED, soak)))
        assert repo.protections["main"]["enable_status_check"]
        await committer.commit(request(policy()))
        assert repo.protections == {}
        assert not await committer.policy.wanted(ENV)


async def test_protection_can_be_left_to_the_operator(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    async with make_committer(protect_branches=False) as committer:
        await create(committer)
        await committer.commit(request(policy(PR_REQUIRED)))
    assert standin.repository("acme", ENV).protections == {}


def verdict(*rules: RuleVerdict) -> Verdict:
    waits = [r.next_possible for r in rules if not r.passed]
    known = [w for w in waits if w is not None]
    failing = [r for r in rules if not r.passed]
    return Verdict(
        passed=not failing,
        rules=rules,
        evaluated_at=NOW,
        next_possible=max(known) if failing and len(known) == len(waits) else None,
    )


async def test_the_verdict_becomes_the_policy_status(
    make_committer: CommitterMaker, standin: GiteaStandIn
) -> None:
    approvals = RuleVerdict("pr-required", False, "1 of 2 approvals", {})
    soak = RuleVerdict("soak", False, "soaking until Thursday", {}, NOW + timedelta(hours=72))
    passing = RuleVerdict("soak", True, "soaked", {})
    async with make_committer() as committer:
        await create(committer)
        change = await committer.open_change(
            request(FileChange("a.yaml", FileAction.ADD, "a: 1\n")), "One"
        )
        states = []
        for outcome in (verdict(approvals, soak), verdict(soak), verdict(passing)):
            await committer.publish_verdict(change, outcome)
            latest = [s for s in standin.repository("acme", ENV).statuses if s.sha == change.head]
            states.append((latest[-1].state, latest[-1].description))
        closed = await committer.close_change(ENV, change.id, "alice")
        await committer.publish_verdict(closed, verdict(approvals))  # not open: nothing
    assert states == [
        ("failure", "Catalyst: 1 of 2 approvals; soaking until Thursday"),
        ("pending", "Catalyst: soaking until Thursday"),
        ("success", "Catalyst: every policy rule passes"),
    ]
    assert len([s for s in standin.repository("acme", ENV).statuses if s.sha == change.head]) == 4
    assert unstructure(change.approvals) == []
