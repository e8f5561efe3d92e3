"""Creating an Environment: its repository, Flux bootstrap and default EnvironmentPolicy."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from catalyst_kernel.model.convert import unstructure
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.model.policy import AppliesTo, EnvironmentPolicy, PolicyMetadata, PolicySpec
from catalyst_kernel.provisioning.committer import CommitRequest
from catalyst_kernel.provisioning.composers.flux import bootstrap_files
from catalyst_kernel.provisioning.manifests import render

if TYPE_CHECKING:
    from catalyst_kernel.model.tenancy import Environment
    from catalyst_kernel.provisioning.committer import CommitInfo, Committer

__all__ = ["POLICY_PATH", "create_environment", "default_policy", "policy_file"]

POLICY_PATH = "policies/environment-policy.yaml"


def default_policy(environment: Environment) -> EnvironmentPolicy:
    """A new Environment's policy: applies to it, no rules (every change merges)."""
    return EnvironmentPolicy(
        metadata=PolicyMetadata(
            name=f"{environment.name}-policy", namespace=environment.organization
        ),
        spec=PolicySpec(applies_to=AppliesTo(environments=(environment.name,))),
    )


def policy_file(policy: EnvironmentPolicy, action: FileAction = FileAction.ADD) -> FileChange:
    return FileChange(POLICY_PATH, action, render(unstructure(policy)))


async def create_environment(
    committer: Committer,
    environment: Environment,
    *,
    sovereign: str,
    repository_url: str,
    actor: str,
) -> CommitInfo:
    """Create the Environment's repository with its first commit: ``flux-system/`` and
    ``policies/environment-policy.yaml``. An existing repository is a ``Conflict``."""
    files = (
        *bootstrap_files(sovereign, environment.name, repository_url),
        policy_file(default_policy(environment)),
    )
    request = CommitRequest(
        environment=environment.name,
        message=f"Create Environment {environment.name}\n\nFlux bootstrap and the default "
        "EnvironmentPolicy (no rules).",
        files=files,
        actor=actor,
        operation_id=str(uuid.uuid4()),
    )
    return await committer.create_repository(environment, request)
