"""Change requests under the destination's EnvironmentPolicy: one evaluation path (SPEC §5.4).

Whatever opened a change (a promotion, a rollback, the console, a Git change ref, a Gitea pull
request), :class:`ChangeDesk` is what evaluates it, records approvals and merges it. A verdict is
the policy's rules (plus the Organization-wide freezes of sibling Environments) and two checks of
its own:

* ``dependencies``: what a promotion recorded as required in the destination (a dependency
  missing or older there, not bundled) is there now, at that version or later;
* ``blocked-versions``: no Application of the change is at a version the Organization blocked.

Merging evaluates again, refuses with :class:`PolicyRefused` (409, the verdict attached) unless
every rule passes, and merges exactly the revision it evaluated: a change updated meanwhile is
evaluated again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import anyio
import attrs
from attrs import frozen
from semantic_version import Version

from catalyst_kernel.errors import Conflict, InvalidInput, PolicyRefused
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import check_environment_name, split_environment_name
from catalyst_kernel.promotion.policies import blocked_reason, read_blocked_versions, read_policy
from catalyst_kernel.promotion.rules import RuleContext, RuleVerdict
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    Approval,
    ChangeRequest,
    ChangeStatus,
    CommitInfo,
)
from catalyst_kernel.provisioning.promotion import ChangeProposal, Requirement
from catalyst_kernel.secrets.backend import SecretPath

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.directory import Directory
    from catalyst_kernel.model.policy import PolicyRule
    from catalyst_kernel.model.principal import Principal
    from catalyst_kernel.promotion.evaluation import PolicyEvaluator, Verdict
    from catalyst_kernel.promotion.rules import TimelineReader
    from catalyst_kernel.provisioning.provisioner import Operation, Provisioner
    from catalyst_kernel.readside.spine import KeyValue

__all__ = [
    "BLOCKED_VERSIONS_CHECK",
    "DEPENDENCIES_CHECK",
    "ChangeDesk",
    "Clock",
    "VerdictPublisher",
    "utc_now",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEPENDENCIES_CHECK: Final = "dependencies"
BLOCKED_VERSIONS_CHECK: Final = "blocked-versions"
_REQUIREMENTS: Final = "change-requirements/"
_SECRET_MOVES: Final = "change-secrets/"
_MAX_REASON: Final = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


def _change_key(change: ChangeRequest) -> str:
    return f"{change.environment}/{change.id}"


@frozen
class SecretMove:
    """What happens to one secret value when a change merges: a ``stage``d value replaces the
    live one, a ``copy`` fills a destination that has none, a ``remove`` deletes the live one.
    Paths only; values stay in the secret backend."""

    action: str
    source: SecretPath | None
    target: SecretPath


def _staging(path: SecretPath, operation_id: str) -> SecretPath:
    """Where a proposed value waits for its change to merge: beside the live one, under an
    Application name no Application can have (``staged-`` and a digest)."""
    digest = hashlib.sha256(f"{operation_id}/{path.application}".encode()).hexdigest()[:24]
    return SecretPath(path.organization, path.env_type, f"staged-{digest}", path.secret)


@runtime_checkable
class VerdictPublisher(Protocol):
    """A committer that shows verdicts where changes live (Gitea: the commit status
    ``catalyst/environment-policy``, a required check), so merging outside Catalyst obeys the
    policy too."""

    async def publish_verdict(self, change: ChangeRequest, verdict: Verdict) -> None:
        """Show ``verdict`` on ``change``; nothing for a change that is no longer open."""


class ChangeDesk:
    """Evaluates, approves, merges and closes change requests; opens promotions and rollbacks.

    :param provisioner: the write side (its committer publishes what it does).
    :param directory: the Sovereign's directory (sibling Environments).
    :param directory_kv: the directory bucket (blocked versions, recorded requirements).
    :param evaluator: the policy evaluator over the registered rule kinds.
    :param timeline: the read model's Application timelines (soak evidence).
    :param clock: the time rules see; tests inject one.
    :param evaluation_timeout: seconds one change's re-evaluation in :meth:`recheck` may take
        (settings key ``policy.evaluation_timeout``).
    """

    def __init__(
        self,
        *,
        provisioner: Provisioner,
        directory: Directory,
        directory_kv: Callable[[], Awaitable[KeyValue]],
        evaluator: PolicyEvaluator,
        timeline: TimelineReader,
        evaluation_timeout: float,
        clock: Clock = utc_now,
    ) -> None:
        self.provisioner = provisioner
        self.committer = provisioner.committer
        self.directory = directory
        self._directory_kv = directory_kv
        self.evaluator = evaluator
        self.timeline = timeline
        self.clock = clock
        self.evaluation_timeout = evaluation_timeout
        self._merging: dict[str, anyio.Lock] = {}
        self._shown: dict[tuple[str, str], tuple[str, bool, datetime | None]] = {}

    # --- opening ---------------------------------------------------------------------------------

    async def open(self, proposal: ChangeProposal) -> ChangeRequest:
        """Open a promotion's or rollback's change request, recording what it requires of the
        destination and the secret values to copy there when it merges."""
        change = await self.committer.open_change(proposal.request, proposal.title)
        moves = [SecretMove("copy", origin, target) for origin, target in proposal.secret_copies]
        await self._record(change, proposal.requires, moves)
        return change

    async def propose(self, operation: Operation, title: str) -> ChangeRequest:
        """Open an install, update or uninstall as a change request (its Environment's policy
        has rules). The operation's secret values are staged beside the live ones and take
        their place only when the change merges; closing it discards them."""
        backend = self.provisioner.secret_backend
        staged: list[SecretMove] = []
        try:
            for path, values in operation.secrets:
                holding = _staging(path, operation.request.operation_id)
                await backend.write(holding, values)
                staged.append(SecretMove("stage", holding, path))
            change = await self.committer.open_change(operation.request, title)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for move in staged:
                    if move.source is not None:
                        await backend.delete(move.source)
            raise
        removals = [SecretMove("remove", None, path) for path in operation.removed_secrets]
        await self._record(change, (), [*staged, *removals])
        return change

    async def _record(
        self,
        change: ChangeRequest,
        requires: Sequence[Requirement],
        moves: Sequence[SecretMove],
    ) -> None:
        kv = await self._directory_kv()
        if requires:
            body = json.dumps(unstructure(list(requires))).encode()
            await kv.put(self._requirements_key(change), body)
        if moves:
            await kv.put(
                _SECRET_MOVES + _change_key(change), json.dumps(unstructure(list(moves))).encode()
            )

    async def _settle(self, change: ChangeRequest, *, merged: bool) -> None:
        """Carry out (merged) or discard (closed) the change's secret moves. A failure is
        logged with the paths (never values); the merge or close stands."""
        kv = await self._directory_kv()
        key = _SECRET_MOVES + _change_key(change)
        entry = await kv.get(key)
        if entry is None or entry.value is None:
            return
        moves = structure(json.loads(entry.value), list[SecretMove], what="secret moves")
        backend = self.provisioner.secret_backend
        for move in moves:
            try:
                if merged and move.action == "stage" and move.source is not None:
                    await backend.write(move.target, await backend.read(move.source))
                elif merged and move.action == "copy" and move.source is not None:
                    if not await backend.exists(move.target):
                        await backend.write(move.target, await backend.read(move.source))
                elif merged and move.action == "remove":
                    await backend.delete(move.target)
                if move.action == "stage" and move.source is not None:
                    await backend.delete(move.source)
            except Exception:
                log.exception(
                    "secret %s for change %s in %s was not settled",
                    move.target,
                    change.id,
                    change.environment,
                )
        await kv.delete(key)

    @staticmethod
    def _requirements_key(change: ChangeRequest) -> str:
        return _REQUIREMENTS + _change_key(change)

    async def _requirements(self, change: ChangeRequest) -> list[Requirement]:
        kv = await self._directory_kv()
        entry = await kv.get(self._requirements_key(change))
        if entry is None or entry.value is None:
            return []
        return structure(json.loads(entry.value), list[Requirement], what="requirements")

    # --- evaluating ------------------------------------------------------------------------------

    async def organization_rules(self, environment: str) -> list[PolicyRule]:
        """Rules of sibling Environments' policies that apply to ``environment`` too
        (``freeze`` with ``scope: organization``)."""
        organization, _ = split_environment_name(environment)
        rules: list[PolicyRule] = []
        for sibling in await self.directory.environments(organization):
            if sibling.name == environment:
                continue
            try:
                policy = await read_policy(self.committer, sibling.name)
            except InvalidInput:
                continue  # a broken sibling policy is that Environment's problem, not this one's
            rules.extend(
                rule
                for rule in policy.spec.rules
                if rule.kind == "freeze" and rule.params.get("scope") == "organization"
            )
        return rules

    async def _dependencies(self, change: ChangeRequest) -> RuleVerdict | None:
        requirements = await self._requirements(change)
        if not requirements:
            return None
        missing = []
        for requirement in requirements:
            present = await self.provisioner.application(
                change.environment, requirement.application
            )
            if present is None or Version(present.version) < Version(requirement.version):
                missing.append(
                    {
                        "application": requirement.application,
                        "blueprint": requirement.blueprint,
                        "required": requirement.version,
                        "found": None if present is None else present.version,
                    }
                )
        if missing:
            names = ", ".join(f"{m['application']} {m['required']}" for m in missing)
            summary = (
                f"{change.environment} needs {names} first: promote them, or promote again "
                "with bundleDependencies"
            )
            return RuleVerdict(DEPENDENCIES_CHECK, False, summary, {"missing": missing})
        return RuleVerdict(
            DEPENDENCIES_CHECK,
            True,
            f"every dependency is in {change.environment}",
            {"required": [str(r) for r in requirements]},
        )

    async def _blocked(self, change: ChangeRequest) -> RuleVerdict | None:
        organization, _ = split_environment_name(change.environment)
        blocked = await read_blocked_versions(await self._directory_kv(), organization)
        if not blocked:
            return None
        hits = []
        for application in change.applications:
            if application.blueprint is None or application.version is None:
                continue
            entry = blocked_reason(blocked, application.blueprint, application.version)
            if entry is not None:
                hits.append(
                    {
                        "application": application.name,
                        "blueprint": application.blueprint,
                        "version": application.version,
                        "reason": entry.reason,
                    }
                )
        if hits:
            summary = "; ".join(
                f"{h['blueprint']} {h['version']} is blocked: {h['reason']}" for h in hits
            )
            return RuleVerdict(BLOCKED_VERSIONS_CHECK, False, summary, {"blocked": hits})
        return RuleVerdict(BLOCKED_VERSIONS_CHECK, True, "no blocked version", {})

    async def verdict(self, change: ChangeRequest) -> Verdict:
        """The destination policy's verdict on ``change`` now."""
        environment = change.environment
        policy = await read_policy(self.committer, environment)
        context = RuleContext(
            environment=environment,
            change=change,
            now=self.clock(),
            timeline=self.timeline,
            applications=tuple(a.name for a in change.applications),
            rollback=any(a.action is ApplicationAction.ROLLBACK for a in change.applications),
        )
        verdict = await self.evaluator.evaluate(
            policy, context, organization_rules=await self.organization_rules(environment)
        )
        extra = [v for v in (await self._dependencies(change), await self._blocked(change)) if v]
        if extra:
            rules = (*verdict.rules, *extra)
            failing = [rule for rule in rules if not rule.passed]
            waits = [rule.next_possible for rule in failing]
            known = [wait for wait in waits if wait is not None]
            verdict = attrs.evolve(
                verdict,
                passed=not failing,
                rules=rules,
                next_possible=max(known) if failing and len(known) == len(waits) else None,
            )
        await self._show(change, verdict)
        return verdict

    async def _show(self, change: ChangeRequest, verdict: Verdict) -> None:
        """Publish the verdict where the change lives when the committer can, and only when its
        outcome changed; a failure to publish is logged, never raised (the verdict stands)."""
        if not isinstance(self.committer, VerdictPublisher):
            return
        key = (change.environment, change.id)
        shown = (change.head, verdict.passed, verdict.next_possible)
        if self._shown.get(key) == shown:
            return
        try:
            await self.committer.publish_verdict(change, verdict)
        except Exception:
            log.exception("the verdict of change %s in %s was not published", *key[::-1])
            return
        self._shown[key] = shown

    async def recheck(self) -> int:
        """Evaluate every open change of every Environment (publishing what changed); time-based
        rules (soak, change windows, freezes ending) move without any event. Returns how many
        changes were evaluated."""
        evaluated = 0
        for record in await self.directory.environments():
            for change in await self.committer.list_changes(record.name, ChangeStatus.OPEN):
                try:
                    with anyio.fail_after(self.evaluation_timeout):
                        await self.verdict(change)
                except Exception:
                    log.exception("re-evaluating change %s in %s failed", change.id, record.name)
                    continue
                evaluated += 1
        return evaluated

    # --- acting ----------------------------------------------------------------------------------

    async def approve(
        self,
        environment: str,
        change_id: str,
        principal: Principal,
        *,
        reason: str | None = None,
        expires: datetime | None = None,
    ) -> ChangeRequest:
        """Approve the change's current revision as ``principal`` (with its teams then).

        A ``reason`` and an ``expires`` in the future make it a break-glass approval (freeze).
        """
        check_environment_name(environment)
        if (reason is None) != (expires is None):
            raise InvalidInput(
                "a break-glass approval needs both a reason and an expiry", field="reason"
            )
        if reason is not None and not (0 < len(reason.strip()) <= _MAX_REASON):
            raise InvalidInput(f"reason must be 1 to {_MAX_REASON} characters", field="reason")
        if expires is not None:
            if expires.tzinfo is None:
                raise InvalidInput("expires must carry a time zone", field="expires")
            if expires <= self.clock():
                raise InvalidInput("expires must be in the future", field="expires")
        change = await self.committer.get_change(environment, change_id)
        approval = Approval(
            approver=principal.subject,
            revision=change.revision,
            time=self.clock(),
            groups=principal.groups,
            reason=None if reason is None else reason.strip(),
            expires=expires,
        )
        return await self.committer.approve_change(environment, change_id, approval)

    async def merge(
        self, environment: str, change_id: str, actor: str
    ) -> tuple[CommitInfo, Verdict]:
        """Evaluate and, if every rule passes, merge the evaluated revision.

        :raises PolicyRefused: a rule does not pass; the verdict says which and until when.
        :raises Conflict: the change is not open.
        """
        check_environment_name(environment)
        lock = self._merging.setdefault(f"{environment}/{change_id}", anyio.Lock())
        async with lock:
            for _ in range(3):
                change = await self.committer.get_change(environment, change_id)
                if change.status is not ChangeStatus.OPEN:
                    raise Conflict(f"change {change_id} is {change.status.value}", field="id")
                verdict = await self.verdict(change)
                if not verdict.passed:
                    failing = "; ".join(r.summary for r in verdict.rules if not r.passed)
                    raise PolicyRefused(
                        f"change {change_id} cannot merge into {environment} yet: {failing}",
                        verdict=verdict.describe(),
                    )
                latest = await self.committer.get_change(environment, change_id)
                if latest.revision == change.revision and latest.approvals == change.approvals:
                    try:
                        commit = await self.committer.merge_change(
                            environment, change_id, actor, revision=change.revision
                        )
                    except Conflict as exc:
                        if exc.field != "revision":
                            raise
                        continue  # updated between the evaluation and the merge: evaluate again
                    merged = await self.committer.get_change(environment, change_id)
                    await self._settle(merged, merged=True)
                    self._forget(merged)
                    return commit, verdict
            raise Conflict(f"change {change_id} keeps changing; retry the merge", field="id")

    async def close(self, environment: str, change_id: str, actor: str) -> ChangeRequest:
        """Close without merging; staged secret values are discarded."""
        closed = await self.committer.close_change(environment, change_id, actor)
        await self._settle(closed, merged=False)
        self._forget(closed)
        return closed

    async def ended(self, change: ChangeRequest) -> None:
        """Settle a change that ended outside Catalyst (merged or closed in the committer's own
        interface, e.g. Gitea's merge button once the policy status allows it): its staged
        secret values go live (merged) or are discarded (closed), as when Catalyst merges or
        closes it. Committers report such ends through their webhooks. Idempotent (what was
        settled is forgotten) and serialized with Catalyst's own merge of the same change; a
        change still open is left alone."""
        if change.status is ChangeStatus.OPEN:
            return
        lock = self._merging.setdefault(f"{change.environment}/{change.id}", anyio.Lock())
        async with lock:
            await self._settle(change, merged=change.status is ChangeStatus.MERGED)
        self._forget(change)

    def _forget(self, change: ChangeRequest) -> None:
        key = (change.environment, change.id)
        self._shown.pop(key, None)
        self._merging.pop(f"{change.environment}/{change.id}", None)

    async def changes(
        self, environment: str, status: ChangeStatus | None = None
    ) -> Sequence[ChangeRequest]:
        return await self.committer.list_changes(environment, status)
