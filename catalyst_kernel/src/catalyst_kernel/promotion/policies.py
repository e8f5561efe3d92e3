"""EnvironmentPolicy in the Environment repository, and the Organization's blocked versions.

The policy is ``policies/environment-policy.yaml`` of the destination's repository: reading it is
reading that file at the head; writing it is a commit (SPEC §5.4). A missing file is the default
policy (no rules). Blocked versions are an Organization-level list kept in the Sovereign's
directory bucket (``blocked-versions/<org>``): install, update and promotion refuse what matches.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Final

from attrs import field, frozen
from semantic_version import NpmSpec, Version

from catalyst_kernel.blueprints.yamlsafe import safe_load
from catalyst_kernel.errors import BlockedVersionError, Conflict, InvalidInput
from catalyst_kernel.model.blueprint import parse_version_range
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import check_blueprint_name, check_organization_name
from catalyst_kernel.model.plan import FileAction
from catalyst_kernel.model.policy import EnvironmentPolicy
from catalyst_kernel.model.tenancy import Environment
from catalyst_kernel.model.validators import non_empty
from catalyst_kernel.provisioning.committer import CommitRequest
from catalyst_kernel.provisioning.environments import POLICY_PATH, default_policy, policy_file

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from catalyst_kernel.promotion.evaluation import PolicyEvaluator
    from catalyst_kernel.provisioning.committer import CommitInfo, Committer
    from catalyst_kernel.readside.spine import KeyValue

__all__ = [
    "BlockedVersion",
    "blocked_reason",
    "check_not_blocked",
    "read_blocked_versions",
    "read_policy",
    "write_blocked_versions",
    "write_policy",
]

_BLOCKED: Final = "blocked-versions/"
_MAX_BLOCKED: Final = 500


async def read_policy(committer: Committer, environment: str) -> EnvironmentPolicy:
    """The Environment's policy at its head (the default one when the file is missing).

    :raises InvalidInput: the file in the repository is not a valid EnvironmentPolicy.
    """
    content = await committer.read_file(environment, POLICY_PATH)
    if content is None:
        return default_policy(Environment.parse(environment))
    document = safe_load(content, source=POLICY_PATH)
    return structure(document, EnvironmentPolicy, what=POLICY_PATH)


async def write_policy(
    committer: Committer,
    environment: str,
    policy: EnvironmentPolicy,
    evaluator: PolicyEvaluator,
    *,
    actor: str,
) -> CommitInfo:
    """Validate ``policy`` and commit it as the Environment's policy.

    :raises InvalidInput: an unknown rule kind, bad parameters, or a policy that does not apply
        to ``environment``.
    """
    if environment not in policy.spec.applies_to.environments:
        raise InvalidInput(
            f"the policy of {environment} must list it in spec.appliesTo.environments",
            field="spec.appliesTo.environments",
        )
    evaluator.validate(policy)
    exists = await committer.read_file(environment, POLICY_PATH) is not None
    change = policy_file(policy, FileAction.MODIFY if exists else FileAction.ADD)
    current = await committer.read_file(environment, POLICY_PATH)
    if current is not None and current.decode() == change.content:
        raise Conflict(f"{environment} already has this policy: nothing to change")
    kinds = ", ".join(rule.kind for rule in policy.spec.rules) or "no rules"
    request = CommitRequest(
        environment=environment,
        message=f"Set the EnvironmentPolicy of {environment} ({kinds})",
        files=(change,),
        actor=actor,
        operation_id=str(uuid.uuid4()),
    )
    return await committer.commit(request)


# -------------------------------------------------------------------------------------------------
# Blocked versions
# -------------------------------------------------------------------------------------------------


def _range(_instance: Any, _attribute: Any, value: str) -> None:
    parse_version_range(value)


@frozen
class BlockedVersion:
    """Versions of a Blueprint that no install, update or promotion may bring in."""

    blueprint: str = field(validator=lambda _i, _a, v: check_blueprint_name(v))
    versions: str = field(validator=_range)
    reason: str = field(validator=non_empty)

    def matches(self, blueprint: str, version: str) -> bool:
        return blueprint == self.blueprint and Version(version) in NpmSpec(self.versions)


def blocked_reason(
    blocked: Iterable[BlockedVersion], blueprint: str, version: str
) -> BlockedVersion | None:
    """The first entry of ``blocked`` that matches ``blueprint`` ``version``."""
    return next((entry for entry in blocked if entry.matches(blueprint, version)), None)


def check_not_blocked(
    blocked: Sequence[BlockedVersion], items: Iterable[tuple[str, str, str]]
) -> None:
    """Refuse if any ``(application, blueprint, version)`` of ``items`` is blocked.

    :raises BlockedVersionError: naming the Application, the version and the reason.
    """
    for application, blueprint, version in items:
        entry = blocked_reason(blocked, blueprint, version)
        if entry is not None:
            raise BlockedVersionError(
                f"{blueprint} {version} (for {application}) is blocked in this Organization: "
                f"{entry.reason}",
                field="version",
            )


async def read_blocked_versions(directory: KeyValue, organization: str) -> list[BlockedVersion]:
    """The Organization's blocked versions (empty when none were set)."""
    entry = await directory.get(_BLOCKED + check_organization_name(organization))
    if entry is None or entry.value is None:
        return []
    return structure(json.loads(entry.value), list[BlockedVersion], what="blocked versions")


async def write_blocked_versions(
    directory: KeyValue, organization: str, items: Sequence[BlockedVersion]
) -> list[BlockedVersion]:
    """Replace the Organization's blocked versions."""
    if len(items) > _MAX_BLOCKED:
        raise InvalidInput(f"at most {_MAX_BLOCKED} blocked versions", field="items")
    body = json.dumps(unstructure(list(items)), sort_keys=True).encode()
    await directory.put(_BLOCKED + check_organization_name(organization), body)
    return list(items)
