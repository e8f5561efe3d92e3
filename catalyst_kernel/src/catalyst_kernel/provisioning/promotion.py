"""Promotion and rollback (SPEC §5.4): change requests on the destination Environment.

**Promotion** carries an Application (its Blueprint version, config, overlay and dependencies,
as recorded in the source Environment) into the destination as one change request. Its files
are rendered for the destination — the same directory, with the destination's context labels and
secret paths — and the values of the secrets it reads are copied inside the secret backend from
the source's paths to the destination's when the destination has none (values never leave the
backend). The dependency closure is walked in the source: dependencies missing in the destination
or older there are listed; with ``bundle`` they join the change, otherwise the change records them
(trailer ``Catalyst-Requires``) and the policy evaluation blocks it until they are there.
The destination's ``secretsRevision`` is its own: a new one when values are copied there,
otherwise the one it had.

**Rollback** opens a change that puts an Application's files back as they were at an earlier
commit of the same Environment. Secret values are not rolled back, so the record and the
``ExternalSecret`` keep the current ``secretsRevision``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final

import attrs
import yaml
from attrs import frozen
from semantic_version import Version

from catalyst_kernel.errors import InvalidInput, NotFound
from catalyst_kernel.model.names import (
    check_application_name,
    check_environment_name,
    split_environment_name,
)
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    CommitRequest,
)
from catalyst_kernel.provisioning.composers.secrets import set_secrets_revision
from catalyst_kernel.provisioning.manifests import render
from catalyst_kernel.provisioning.provisioner import (
    RECORD_FILE,
    new_secrets_revision,
    record_content,
)
from catalyst_kernel.secrets.backend import SecretPath

if TYPE_CHECKING:
    from catalyst_kernel.blueprints.catalog import CatalogView
    from catalyst_kernel.model.application import Application
    from catalyst_kernel.provisioning.provisioner import Provisioner

__all__ = [
    "PROMOTED_FROM_TRAILER",
    "REQUIRES_TRAILER",
    "ROLLBACK_TRAILER",
    "ChangeProposal",
    "Requirement",
    "parse_requirements",
    "plan_promotion",
    "plan_rollback",
]

PROMOTED_FROM_TRAILER: Final = "Catalyst-Promoted-From"
REQUIRES_TRAILER: Final = "Catalyst-Requires"
ROLLBACK_TRAILER: Final = "Catalyst-Rollback-To"
_SHA: Final = frozenset("0123456789abcdef")


@frozen
class Requirement:
    """A dependency the destination must have at ``version`` or later before the change merges."""

    application: str
    blueprint: str
    version: str
    found: str | None = None
    """The version the destination has (``None``: it has none)."""

    def __str__(self) -> str:
        return f"{self.application}>={self.version}"


@frozen
class ChangeProposal:
    """A change request to open: its commit, title, what it requires and the secret copies.

    ``secret_copies`` are (source path, destination path) pairs; values are copied inside the
    backend when the change is opened.
    """

    request: CommitRequest
    title: str
    requires: tuple[Requirement, ...] = ()
    secret_copies: tuple[tuple[SecretPath, SecretPath], ...] = ()
    rollback: bool = False


def parse_requirements(value: str | None) -> list[tuple[str, str]]:
    """``[(application, version)]`` of a ``Catalyst-Requires`` trailer (``a>=1.2.0, b>=2.0.0``)."""
    found = []
    for part in (value or "").split(","):
        name, _, version = part.strip().partition(">=")
        if name and version:
            found.append((name.strip(), version.strip()))
    return found


async def _record(provisioner: Provisioner, environment: str, name: str) -> Application:
    record = await provisioner.application(environment, name)
    if record is None:
        raise NotFound(f"Application {name} does not exist in {environment}", field="application")
    return record


async def plan_promotion(
    provisioner: Provisioner,
    catalog: CatalogView,
    *,
    application: str,
    source: str,
    destination: str,
    bundle: bool,
    actor: str,
) -> ChangeProposal:
    """The change request that promotes ``application`` from ``source`` to ``destination``.

    :raises NotFound: the Application is not in ``source``.
    :raises InvalidInput: source and destination are the same or in different Organizations.
    """
    check_application_name(application)
    check_environment_name(source)
    check_environment_name(destination)
    if source == destination:
        raise InvalidInput("a promotion goes to another Environment", field="to")
    if split_environment_name(source)[0] != split_environment_name(destination)[0]:
        raise InvalidInput("a promotion stays inside one Organization", field="to")
    root = await _record(provisioner, source, application)
    # The dependency closure, walked in the source, nearest first.
    carried: dict[str, Application] = {root.name: root}
    requires: list[Requirement] = []
    queue = list(root.dependencies.values())
    seen = {root.name}
    while queue:
        name = queue.pop(0)
        if name in seen:
            continue
        seen.add(name)
        wanted = await _record(provisioner, source, name)
        present = await provisioner.application(destination, name)
        if present is not None and Version(present.version) >= Version(wanted.version):
            continue
        if bundle:
            carried[name] = wanted
            queue.extend(wanted.dependencies.values())
        else:
            found = None if present is None else present.version
            requires.append(Requirement(name, wanted.blueprint, wanted.version, found))
    files: list[FileChange] = []
    changes: list[ApplicationChange] = []
    copies: list[tuple[SecretPath, SecretPath]] = []
    source_org, source_type = split_environment_name(source)
    _, destination_type = split_environment_name(destination)
    for name, record in carried.items():
        current = await provisioner.application(destination, name)
        copied = 0
        for secret in record.secrets:
            target = SecretPath(source_org, destination_type, name, secret)
            if not await provisioner.secret_backend.exists(target):
                copies.append((SecretPath(source_org, source_type, name, secret), target))
                copied += 1
        # The revision is the destination's own: new when values are copied there, else kept.
        if copied:
            revision: str | None = new_secrets_revision()
        else:
            revision = None if current is None else current.secrets_revision
        moved = attrs.evolve(record, environment=destination, secrets_revision=revision)
        rendered = await provisioner.render(destination, moved, catalog)
        files.extend(await provisioner.changes_to(destination, rendered, current))
        changes.append(
            ApplicationChange(name, ApplicationAction.PROMOTE, record.blueprint, record.version)
        )
    trailers = {PROMOTED_FROM_TRAILER: source}
    if requires:
        trailers[REQUIRES_TRAILER] = ", ".join(str(r) for r in requires)
    lines = [f"Promote {application} ({root.blueprint} {root.version}) from {source}", ""]
    lines += [
        f"- with {c.name} ({c.blueprint} {c.version})" for c in changes if c.name != application
    ]
    lines += [
        f"- needs {r.application} {r.version} in {destination} "
        f"({'missing' if r.found is None else f'has {r.found}'})"
        for r in requires
    ]
    request = CommitRequest(
        environment=destination,
        message="\n".join(lines).rstrip(),
        files=tuple(sorted(files, key=lambda change: change.path)),
        actor=actor,
        operation_id=str(uuid.uuid4()),
        trailers=trailers,
        applications=tuple(changes),
    )
    title = f"Promote {application} {root.version} from {source}"
    return ChangeProposal(request, title, tuple(requires), tuple(copies))


def _keep_secrets_revision(
    change: FileChange, earlier: Application, revision: str | None
) -> FileChange:
    """``change`` (a file as of the rollback's target) with the current secrets revision: a
    rollback restores files, not secret values, so the values' revision stays what it is."""
    folder = f"applications/{earlier.name}/"
    if change.path == folder + RECORD_FILE:
        kept = attrs.evolve(earlier, secrets_revision=revision)
        return FileChange(change.path, change.action, record_content(kept))
    if change.path == folder + "externalsecret.yaml" and change.content is not None:
        document = yaml.safe_load(change.content)
        if isinstance(document, dict) and isinstance(document.get("metadata"), dict):
            set_secrets_revision(document["metadata"], revision)
            return FileChange(change.path, change.action, render(document))
    return change


async def plan_rollback(
    provisioner: Provisioner, environment: str, application: str, to: str, *, actor: str
) -> ChangeProposal:
    """The change request that puts ``application``'s files back as they were at commit ``to``.

    :raises InvalidInput: ``to`` is not a full commit id.
    :raises NotFound: ``to`` is not a commit of the Environment, or the Application did not
        exist then.
    """
    check_environment_name(environment)
    check_application_name(application)
    if len(to) != 40 or not set(to) <= _SHA:
        raise InvalidInput("to must be a full commit id (40 hex digits)", field="to")
    history = {commit.sha for commit in await provisioner.committer.log(environment, limit=10_000)}
    if to not in history:
        raise NotFound(f"{to} is not a commit of {environment}", field="to")
    current = await provisioner.application(environment, application)
    earlier = await provisioner.application_at(environment, application, to)
    if earlier is None:
        raise NotFound(f"{application} did not exist in {environment} at {to[:12]}", field="to")
    wanted_paths = await provisioner.owned_paths(environment, earlier, to)
    wanted: list[FileChange] = []
    for path in sorted(wanted_paths):
        content = await provisioner.committer.read_file(environment, path, ref=to)
        if content is not None:
            wanted.append(FileChange(path, FileAction.ADD, content.decode()))
    if current is not None and current.secrets_revision != earlier.secrets_revision:
        wanted = [
            _keep_secrets_revision(change, earlier, current.secrets_revision) for change in wanted
        ]
    files = await provisioner.changes_to(environment, wanted, current)
    if not files:
        raise InvalidInput(
            f"{application} is already as it was at {to[:12]}: nothing to roll back", field="to"
        )
    change = ApplicationChange(
        application, ApplicationAction.ROLLBACK, earlier.blueprint, earlier.version
    )
    request = CommitRequest(
        environment=environment,
        message=f"Roll {application} back to {earlier.version} as of {to[:12]}",
        files=tuple(sorted(files, key=lambda c: c.path)),
        actor=actor,
        operation_id=str(uuid.uuid4()),
        trailers={ROLLBACK_TRAILER: to},
        applications=(change,),
    )
    title = f"Roll back {application} to {earlier.version} ({to[:12]})"
    return ChangeProposal(request, title, rollback=True)
