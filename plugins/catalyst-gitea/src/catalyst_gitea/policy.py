"""The EnvironmentPolicy on Gitea: a commit status that carries the verdict, and the default
branch's protection that makes it a required check.

Status
    ``catalyst/environment-policy`` (``status_context``) on a change's head commit: ``pending``
    when a revision is proposed (nothing evaluated yet), then whatever the last verdict said —
    ``success`` when every rule passes, ``pending`` while the failing rules only wait for time (a
    soak, a change window), ``failure`` when they need people or a change — and ``success`` just
    before Catalyst merges (the caller evaluated). A pull request Catalyst did not open gets
    ``failure``: it is not a change request.

Protection
    While the Environment's policy has a ``pr-required`` rule, ``main`` is protected: pushes only
    by Catalyst's Gitea user (its commits are the operations Catalyst itself checks), no force
    push, no admin override, and the status above is a required check, so a merge in Gitea's UI
    obeys the policy exactly as a merge through Catalyst does. Without the rule ``main`` is not
    protected. Catalyst owns the protection rule of ``main``: it is created, updated and deleted
    to follow the policy after every commit that changes the policy file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from catalyst_kernel.blueprints.yamlsafe import safe_load
from catalyst_kernel.errors import CatalystError, InvalidInput
from catalyst_kernel.model.convert import structure
from catalyst_kernel.model.policy import EnvironmentPolicy
from catalyst_kernel.promotion.policies import read_policy
from catalyst_kernel.provisioning.committer import ChangeRequest, ChangeStatus
from catalyst_kernel.provisioning.environments import POLICY_PATH
from catalyst_kernel.provisioning.gitformat import DEFAULT_BRANCH

if TYPE_CHECKING:
    from catalyst_gitea.committer import GiteaCommitter
    from catalyst_kernel.promotion.evaluation import Verdict

__all__ = ["PR_REQUIRED", "PolicyGate"]

log = logging.getLogger(__name__)

PR_REQUIRED: Final = "pr-required"
_MAX_DESCRIPTION: Final = 250


class PolicyGate:
    """Publishes policy statuses and keeps ``main``'s protection in line with the policy.

    :param committer: the committer whose Gitea (and mirror) it uses.
    """

    def __init__(self, committer: GiteaCommitter) -> None:
        self._committer = committer

    # --- statuses --------------------------------------------------------------------------------

    async def status(
        self, environment: str, sha: str, state: str, description: str, change_id: str | None
    ) -> None:
        """Set the policy status of commit ``sha``. :raises CatalystError: Gitea refused."""
        committer = self._committer
        settings = committer.settings
        body: dict[str, Any] = {
            "state": state,
            "context": settings.status_context,
            "description": description[:_MAX_DESCRIPTION],
        }
        if settings.status_url_template is not None and change_id is not None:
            body["target_url"] = settings.status_url_template.format(
                environment=environment, change=change_id
            )
        await committer.api.request(
            "POST",
            f"{committer.repository_path(environment)}/statuses/{sha}",
            what=f"set the policy status of {sha[:12]} in {environment}",
            json=body,
            ok=(201,),
        )

    async def pending(self, environment: str, sha: str, change_id: str, why: str) -> None:
        """A ``pending`` status; a failure is logged, not raised (the status is advisory until
        the next verdict, and a required check stays unmet meanwhile)."""
        try:
            await self.status(environment, sha, "pending", f"Catalyst: {why}", change_id)
        except CatalystError as exc:
            log.warning("%s: policy status of %s not set: %s", environment, sha[:12], exc)

    async def publish_verdict(self, change: ChangeRequest, verdict: Verdict) -> None:
        """Publish ``verdict`` as the policy status of ``change``'s head (see the module
        docstring); nothing for a change that is no longer open."""
        if change.status is not ChangeStatus.OPEN:
            return
        if verdict.passed:
            state, description = "success", "Catalyst: every policy rule passes"
        else:
            failing = [rule.summary for rule in verdict.rules if not rule.passed]
            state = "pending" if verdict.next_possible is not None else "failure"
            description = "Catalyst: " + "; ".join(failing)
        await self.status(change.environment, change.head, state, description, change.id)

    async def foreign(self, environment: str, sha: str) -> None:
        """Fail the policy status of a pull request Catalyst did not open."""
        await self.status(
            environment,
            sha,
            "failure",
            "Catalyst: not a Catalyst change request; propose the change through Catalyst",
            None,
        )

    # --- protection ------------------------------------------------------------------------------

    async def wanted(self, environment: str, ref: str | None = None) -> bool:
        """Whether the Environment's policy at ``ref`` (default: ``main``'s head) has a
        ``pr-required`` rule. :raises InvalidInput: the policy file is not a valid policy."""
        committer = self._committer
        if ref is None:
            policy = await read_policy(committer, environment)
        else:
            content = await committer.read_file(environment, POLICY_PATH, ref)
            if content is None:
                return False
            document = safe_load(content, source=POLICY_PATH)
            policy = structure(document, EnvironmentPolicy, what=POLICY_PATH)
        return any(rule.kind == PR_REQUIRED for rule in policy.spec.rules)

    async def protected(self, environment: str) -> bool:
        """Whether Gitea protects ``main`` now."""
        committer = self._committer
        found = await committer.api.request(
            "GET",
            f"{committer.repository_path(environment)}/branch_protections/{DEFAULT_BRANCH}",
            what=f"read the protection of {DEFAULT_BRANCH} in {environment}",
            ok=(200, 404),
        )
        return found.status_code == 200

    def _rule(self, login: str) -> dict[str, Any]:
        return {
            "enable_push": True,
            "enable_push_whitelist": True,
            "push_whitelist_usernames": [login],
            "push_whitelist_deploy_keys": False,
            "enable_force_push": False,
            "enable_status_check": True,
            "status_check_contexts": [self._committer.settings.status_context],
            "enable_merge_whitelist": False,
            "required_approvals": 0,
            "block_on_rejected_reviews": False,
            "block_admin_merge_override": True,
        }

    async def sync(self, environment: str) -> None:
        """Make ``main``'s protection follow the policy at its head (see the module docstring).
        A policy file that cannot be read leaves the protection as it is (logged)."""
        committer = self._committer
        if not committer.settings.protect_branches:
            return
        try:
            wanted = await self.wanted(environment)
        except InvalidInput as exc:
            log.warning("%s: branch protection left as it is: %s", environment, exc)
            return
        login = await committer.identity()
        api = committer.api
        path = f"{committer.repository_path(environment)}/branch_protections"
        what = f"protect {DEFAULT_BRANCH} of {environment}"
        current = await api.request("GET", f"{path}/{DEFAULT_BRANCH}", what=what, ok=(200, 404))
        if not wanted:
            if current.status_code == 200:
                await api.request(
                    "DELETE",
                    f"{path}/{DEFAULT_BRANCH}",
                    what=f"unprotect {DEFAULT_BRANCH} of {environment}",
                    ok=(204, 404),
                )
                log.info("%s: %s is no longer protected", environment, DEFAULT_BRANCH)
            return
        rule = self._rule(login)
        if current.status_code == 404:
            await api.request(
                "POST",
                path,
                what=what,
                json={"rule_name": DEFAULT_BRANCH, "branch_name": DEFAULT_BRANCH, **rule},
                ok=(201,),
            )
            log.info(
                "%s: %s is protected; %s is a required check",
                environment,
                DEFAULT_BRANCH,
                committer.settings.status_context,
            )
            return
        present = current.json()
        if not isinstance(present, dict) or any(present.get(k) != v for k, v in rule.items()):
            await api.request("PATCH", f"{path}/{DEFAULT_BRANCH}", what=what, json=rule, ok=(200,))
