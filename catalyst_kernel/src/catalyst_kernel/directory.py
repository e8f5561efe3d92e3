"""The Sovereign's directory: which Organizations and Environments exist.

Kept in the spine's directory bucket (:meth:`~catalyst_kernel.readside.spine.Spine.directory`),
so every replica of the API service sees one directory and a create is atomic
(:meth:`~catalyst_kernel.readside.spine.KeyValue.create`): two concurrent requests for the same
name get one ``201`` and one ``409``. An Environment's content still lives only in its repository;
the directory records that it exists, who created it and where its repository is
(docs/decisions/0006-directory.md).

Keys: ``organizations/<org>`` and ``environments/<env>``, values JSON in the API's wire format.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Final, TypeVar

from catalyst_kernel.errors import Conflict, NotFound
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import (
    check_environment_name,
    check_organization_name,
)
from catalyst_kernel.model.tenancy import (
    Environment,
    EnvironmentRecord,
    Organization,
    OrganizationRecord,
)
from catalyst_kernel.provisioning.environments import create_environment
from catalyst_kernel.provisioning.gitformat import ACTOR_TRAILER

if TYPE_CHECKING:
    from catalyst_kernel.provisioning.committer import CommitInfo, Committer
    from catalyst_kernel.readside.spine import KeyValue

__all__ = ["Directory", "EnvironmentRecord", "OrganizationRecord"]

_ORGANIZATIONS: Final = "organizations/"
_ENVIRONMENTS: Final = "environments/"
_ROOT_SEARCH: Final = 200

R = TypeVar("R")


def _encode(record: object) -> bytes:
    return json.dumps(unstructure(record), sort_keys=True, separators=(",", ":")).encode()


def _decode(value: bytes | None, cl: type[R], key: str) -> R:
    return structure(json.loads(value or b"null"), cl, what=f"directory entry {key}")


class Directory:
    """Organizations and Environments of one Sovereign, over the spine's directory bucket.

    :param kv: the bucket (``await spine.directory()``).
    """

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    # --- Organizations ---------------------------------------------------------------------------

    async def create_organization(
        self, organization: Organization, *, actor: str, policy_delegated: bool = False
    ) -> OrganizationRecord:
        """Record a new Organization.

        :raises Conflict: it exists already.
        """
        record = OrganizationRecord(
            organization.name,
            dict(organization.labels),
            created_by=actor,
            policy_delegated=policy_delegated,
        )
        try:
            await self._kv.create(f"{_ORGANIZATIONS}{organization.name}", _encode(record))
        except Conflict:
            raise Conflict(
                f"Organization {organization.name} already exists", field="name"
            ) from None
        return record

    async def organizations(self) -> list[OrganizationRecord]:
        """Every Organization, by name."""
        _, entries = await self._kv.snapshot(_ORGANIZATIONS)
        return [_decode(e.value, OrganizationRecord, e.key) for e in entries]

    async def find_organization(self, name: str) -> OrganizationRecord | None:
        entry = await self._kv.get(f"{_ORGANIZATIONS}{check_organization_name(name)}")
        return None if entry is None else _decode(entry.value, OrganizationRecord, entry.key)

    async def organization(self, name: str) -> OrganizationRecord:
        """:raises NotFound: no such Organization."""
        record = await self.find_organization(name)
        if record is None:
            raise NotFound(f"Organization {name} does not exist", field="org")
        return record

    # --- Environments ----------------------------------------------------------------------------

    async def environments(self, organization: str | None = None) -> list[EnvironmentRecord]:
        """Every Environment (of ``organization``), by name."""
        _, entries = await self._kv.snapshot(_ENVIRONMENTS)
        records = [_decode(e.value, EnvironmentRecord, e.key) for e in entries]
        if organization is None:
            return records
        return [r for r in records if r.organization == organization]

    async def find_environment(self, name: str) -> EnvironmentRecord | None:
        entry = await self._kv.get(f"{_ENVIRONMENTS}{check_environment_name(name)}")
        return None if entry is None else _decode(entry.value, EnvironmentRecord, entry.key)

    async def environment(self, name: str) -> EnvironmentRecord:
        """:raises NotFound: no such Environment."""
        record = await self.find_environment(name)
        if record is None:
            raise NotFound(f"Environment {name} does not exist", field="env")
        return record

    async def create_environment(
        self,
        environment: Environment,
        committer: Committer,
        *,
        sovereign: str,
        repository_url: str,
        actor: str,
    ) -> EnvironmentRecord:
        """Create the Environment's repository (Flux bootstrap, default policy) and record it.

        A repository left by an earlier attempt that failed before recording it is adopted, so a
        retried request completes instead of being stuck.

        :raises NotFound: the Organization does not exist.
        :raises Conflict: the Environment exists already.
        """
        await self.organization(environment.organization)
        name = environment.name
        if await self.find_environment(name) is not None:
            raise Conflict(f"Environment {name} already exists", field="envType")
        try:
            initial: CommitInfo | None = await create_environment(
                committer,
                environment,
                sovereign=sovereign,
                repository_url=repository_url,
                actor=actor,
            )
        except Conflict:
            # Created by a concurrent request (which records it too) or by an attempt that died
            # before recording it: the directory's create below decides who reports success,
            # and the record names whoever made the repository's first commit.
            initial = await _root_commit(committer, name)
        creator = actor if initial is None else initial.trailers.get(ACTOR_TRAILER, actor)
        record = EnvironmentRecord(
            name,
            environment.organization,
            environment.env_type,
            repository_url,
            created_by=creator,
            initial_commit=None if initial is None else initial.sha,
        )
        try:
            await self._kv.create(f"{_ENVIRONMENTS}{name}", _encode(record))
        except Conflict:
            raise Conflict(f"Environment {name} already exists", field="envType") from None
        return record


async def _root_commit(committer: Committer, environment: str) -> CommitInfo | None:
    """The first commit of ``environment``'s repository, if it is among its first few hundred
    (a repository being adopted has only its bootstrap commit)."""
    history = await committer.log(environment, limit=_ROOT_SEARCH)
    return next((commit for commit in history if not commit.parents), None)
