"""Install, update and uninstall: validate → resolve → plan → compose → commit (SPEC §5.2).

Each Application's directory holds ``catalyst.yaml``, Catalyst's own record of it (Blueprint,
version, public config, overlay, dependencies by alias). The record is how the next operation
knows what is installed without asking the cluster; it is not a Kubernetes manifest and is not
listed in the directory's ``kustomization.yaml``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
import yaml
from attrs import field, frozen
from semantic_version import NpmSpec, Version

from catalyst_kernel.errors import Conflict, InvalidInput, NotFound
from catalyst_kernel.model.application import Application
from catalyst_kernel.model.blueprint import SizingOverlay, parse_version_range
from catalyst_kernel.model.convert import structure, unstructure
from catalyst_kernel.model.names import (
    check_application_name,
    check_environment_name,
    split_environment_name,
)
from catalyst_kernel.model.plan import (
    FileAction,
    FileChange,
    InstallPlan,
    PlanAction,
    PlannedApplication,
)
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    CommitRequest,
)
from catalyst_kernel.provisioning.composer import CompositionRequest
from catalyst_kernel.provisioning.composers.flux import flux_kustomization_path
from catalyst_kernel.provisioning.composition import compose_application
from catalyst_kernel.provisioning.manifests import render
from catalyst_kernel.provisioning.resolution import InstallTarget, Resolver
from catalyst_kernel.secrets.backend import SecretPath

if TYPE_CHECKING:
    from catalyst_kernel.blueprints.catalog import CatalogView
    from catalyst_kernel.provisioning.committer import CommitInfo, Committer
    from catalyst_kernel.provisioning.composer import ManifestComposer
    from catalyst_kernel.provisioning.resolution import Resolution, ResolvedNode
    from catalyst_kernel.secrets.backend import SecretBackend

__all__ = [
    "RECORD_FILE",
    "DependencyChoice",
    "InstallRequest",
    "Operation",
    "Provisioner",
    "new_secrets_revision",
    "record_content",
]

RECORD_FILE: Final = "catalyst.yaml"
INDEX_DIR: Final = "catalyst"
RECORD_API_VERSION: Final = "catalyst.openova.io/v1alpha1"


@frozen
class DependencyChoice:
    """For one dependency alias: reuse the Application ``use``, or ``create`` a dedicated one."""

    use: str | None = None
    create: bool = False

    def __attrs_post_init__(self) -> None:
        if (self.use is None) == (not self.create):
            raise InvalidInput("a dependency choice is either {'use': <app>} or {'create': true}")
        if self.use is not None:
            check_application_name(self.use)


@frozen
class InstallRequest:
    """What a caller asks to install (the body of ``POST …/plans`` and ``…/applications``)."""

    name: str = field(validator=lambda _i, _a, v: check_application_name(v))
    blueprint: str
    config: Mapping[str, Any] = field(factory=dict)
    version: str | None = None
    overlay: SizingOverlay | None = None
    dependencies: Mapping[str, DependencyChoice] = field(factory=dict)


@frozen
class Operation:
    """A planned operation: the plan, the commit it would make, and the secrets to store.

    ``secrets`` holds values: it is never rendered, logged or returned by the API.
    """

    plan: InstallPlan
    request: CommitRequest
    secrets: tuple[tuple[SecretPath, Mapping[str, str]], ...] = field(repr=False, default=())
    removed_secrets: tuple[SecretPath, ...] = ()


def _highest(catalog: CatalogView, blueprint: str, wanted: str) -> str:
    """The highest visible version of ``blueprint`` in the range (or exact version) ``wanted``."""
    try:
        spec = parse_version_range(wanted)
    except InvalidInput:
        raise InvalidInput(
            f"version {wanted!r} is not a version or range", field="version"
        ) from None
    candidates = [Version(v) for v in catalog.versions(blueprint) if Version(v) in spec]
    if not candidates:
        raise NotFound(f"no version of {blueprint} matches {wanted}", field="version")
    return str(max(candidates))


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): mappings merge, ``null`` removes, the rest replaces."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base


def _blueprint_index(blueprint: str, application: str) -> str:
    return f"{INDEX_DIR}/blueprints/{blueprint}/{application}"


def _dependent_marker(dependency: str, dependent: str) -> str:
    return f"{INDEX_DIR}/dependents/{dependency}/{dependent}"


def _index_files(application: Application) -> list[FileChange]:
    """Catalyst's per-Application index entries: by Blueprint (holding the version) and as a
    dependent of each dependency. One file per fact, so concurrent operations never edit the
    same file and lookups read one folder instead of every Application's record."""
    files = [
        FileChange(
            _blueprint_index(application.blueprint, application.name),
            FileAction.ADD,
            application.version + "\n",
        )
    ]
    for alias, dependency in sorted(application.dependencies.items()):
        marker = _dependent_marker(dependency, application.name)
        files.append(FileChange(marker, FileAction.ADD, alias + "\n"))
    return files


def _record_path(application: str) -> str:
    return f"applications/{application}/{RECORD_FILE}"


def _record(application: Application) -> str:
    body = {"apiVersion": RECORD_API_VERSION, "kind": "Application", **unstructure(application)}
    if body.get("secretsRevision") is None:
        # Records of Applications whose secrets Catalyst never wrote stay as they always were.
        body.pop("secretsRevision", None)
    return render(body)


def new_secrets_revision() -> str:
    """A fresh :attr:`Application.secrets_revision`: random, so nothing about a value shows."""
    return uuid.uuid4().hex


def record_content(application: Application) -> str:
    """The text of ``application``'s record (``applications/<app>/catalyst.yaml``)."""
    return _record(application)


def _parse_record(content: bytes, path: str) -> Application:
    document = yaml.safe_load(content)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path} is not an Application record")
    document.pop("apiVersion", None)
    document.pop("kind", None)
    return structure(document, Application, what=path)


class Provisioner:
    """The write side's operations on Environment repositories.

    :param sovereign: the Sovereign's name (labels).
    :param committer: the active committer (wrapped so commits publish their events).
    :param secrets: the active secret backend.
    :param composers: the registered manifest composers.
    """

    def __init__(
        self,
        *,
        sovereign: str,
        committer: Committer,
        secrets: SecretBackend,
        composers: Sequence[ManifestComposer],
    ) -> None:
        self.sovereign = sovereign
        self.committer = committer
        self.secret_backend = secrets
        self.composers = list(composers)

    # ---------------------------------------------------------------------------------------------
    # Reading the Environment
    # ---------------------------------------------------------------------------------------------

    async def applications(self, environment: str) -> dict[str, Application]:
        """Every Application installed in ``environment``, by name."""
        check_environment_name(environment)
        if not await self.committer.repository_exists(environment):
            raise NotFound(f"Environment {environment} has no repository")
        found: dict[str, Application] = {}
        for path in await self.committer.list_files(environment, "applications/"):
            if path.endswith(f"/{RECORD_FILE}") and path.count("/") == 2:
                content = await self.committer.read_file(environment, path)
                if content is not None:
                    application = _parse_record(content, path)
                    found[application.name] = application
        return found

    async def application(self, environment: str, name: str) -> Application | None:
        """One Application's record, or ``None``."""
        return await self.application_at(environment, name, None)

    async def application_at(
        self, environment: str, name: str, ref: str | None
    ) -> Application | None:
        """One Application's record at commit ``ref`` (default: head), or ``None``."""
        content = await self.committer.read_file(environment, _record_path(name), ref=ref)
        return None if content is None else _parse_record(content, _record_path(name))

    async def _of_blueprint(self, environment: str, blueprint: str) -> dict[str, Application]:
        prefix = f"{INDEX_DIR}/blueprints/{blueprint}/"
        found: dict[str, Application] = {}
        for path in await self.committer.list_files(environment, prefix):
            application = await self.application(environment, path[len(prefix) :])
            if application is not None:
                found[application.name] = application
        return found

    async def _dependents(self, environment: str, name: str) -> list[str]:
        prefix = f"{INDEX_DIR}/dependents/{name}/"
        return [
            path[len(prefix) :] for path in await self.committer.list_files(environment, prefix)
        ]

    # ---------------------------------------------------------------------------------------------
    # Install
    # ---------------------------------------------------------------------------------------------

    def _pins(
        self,
        request: InstallRequest,
        resolution: Resolution,
        existing: Mapping[str, Application],
    ) -> dict[str, str]:
        """Blueprint → existing Application reused for it: the caller's ``use`` choices, else
        the only compatible existing Application (unless the caller asked to ``create``)."""
        root = resolution.root_node
        chosen: dict[str, str] = {}
        created: set[str] = set()
        aliases = {d.alias for d in root.blueprint.spec.depends} if root.blueprint else set()
        for alias, choice in request.dependencies.items():
            if alias not in aliases:
                raise InvalidInput(
                    f"{request.blueprint} has no dependency alias {alias!r}", field="dependencies"
                )
            target = root.dependencies.get(alias)
            if target is None:
                continue  # the dependency is off (its `when` is false)
            if choice.use is not None:
                used = existing.get(choice.use)
                if used is None:
                    raise NotFound(
                        f"dependency {alias}: Application {choice.use!r} does not exist",
                        field=f"dependencies.{alias}.use",
                    )
                if used.blueprint != target:
                    raise InvalidInput(
                        f"dependency {alias} needs {target}, but {choice.use} is {used.blueprint}",
                        field=f"dependencies.{alias}.use",
                    )
                chosen[target] = used.name
            else:
                created.add(target)
        for node in resolution.nodes:
            if node.name == resolution.root or node.name in chosen or node.name in created:
                continue
            compatible = [
                application
                for application in existing.values()
                if application.blueprint == node.name
                and all(
                    Version(application.version) in NpmSpec(requirement.range)
                    for requirement in node.requirements
                )
            ]
            if len(compatible) == 1:
                chosen[node.name] = compatible[0].name
        return chosen

    async def plan_install(
        self, environment: str, request: InstallRequest, catalog: CatalogView, *, actor: str
    ) -> Operation:
        """The InstallPlan of ``request`` and the commit it would make; nothing is written."""
        check_environment_name(environment)
        if not await self.committer.repository_exists(environment):
            raise NotFound(f"Environment {environment} has no repository")
        if await self.application(environment, request.name) is not None:
            raise Conflict(
                f"Application {request.name} already exists in {environment}", field="name"
            )
        resolver = Resolver(catalog)
        target = InstallTarget(request.name, environment)
        first = resolver.resolve(request.blueprint, request.version, request.config, target)
        # Only what reuse can touch is read: Applications of the dependencies' Blueprints and
        # the ones the caller names; the cost follows the install, not the Environment.
        existing: dict[str, Application] = {}
        for node in first.nodes:
            if node.name != first.root:
                existing.update(await self._of_blueprint(environment, node.name))
        for choice in request.dependencies.values():
            if choice.use is not None and choice.use not in existing:
                used = await self.application(environment, choice.use)
                if used is not None:
                    existing[used.name] = used
        chosen = self._pins(request, first, existing)
        pinned = {blueprint: existing[name].version for blueprint, name in chosen.items()}
        resolution = (
            resolver.resolve(
                request.blueprint, request.version, request.config, target, pinned=pinned
            )
            if pinned
            else first
        )
        names = {
            node.name: (chosen[node.name] if node.pinned else str(node.application))
            for node in resolution.nodes
        }
        for node in resolution.nodes:
            taken = names[node.name] in existing or (
                await self.application(environment, names[node.name]) is not None
            )
            if not node.pinned and taken:
                raise Conflict(
                    f"{names[node.name]} already exists in {environment}; reuse it with "
                    f"dependencies: {{<alias>: {{use: {names[node.name]}}}}} or remove it",
                    field="name",
                )
        return await self._install_operation(
            environment, request, resolution, names, catalog, actor=actor
        )

    async def _compose(
        self,
        environment: str,
        node: ResolvedNode,
        application: Application,
        depends_on: tuple[str, ...],
        catalog: CatalogView,
        *,
        current: Application | None = None,
    ) -> tuple[list[FileChange], list[tuple[SecretPath, Mapping[str, str]]], list[str]]:
        """The files of ``application``, the secret values to store and the names of the
        secrets whose values change (all of them for an install). ``current`` is the
        Application being updated: the secrets it reads are kept, and so is its
        ``secrets_revision`` unless a value changes."""
        organization, env_type = split_environment_name(environment)
        secrets: list[tuple[SecretPath, Mapping[str, str]]] = []
        references: dict[str, str] = {}
        rotated: list[str] = []
        for secret in node.secrets.values():
            path = SecretPath(organization, env_type, application.name, secret.name)
            values = {"value": str(secret.value)}
            secrets.append((path, values))
            references[secret.name] = str(path)
            if current is None or not await self._holds(path, values):
                rotated.append(secret.name)
        # Secrets the Application already reads and this operation does not set again keep
        # their stored values (an update need not re-send a password).
        for name in () if current is None else current.secrets:
            if name not in references:
                path = SecretPath(organization, env_type, application.name, name)
                references[name] = str(path)
        if rotated:
            revision: str | None = new_secrets_revision()
        else:
            revision = None if current is None else current.secrets_revision
        application = attrs.evolve(
            application, secrets=tuple(references), secrets_revision=revision
        )
        files = await self.render(environment, application, catalog, depends_on=depends_on)
        return files, secrets, sorted(rotated)

    async def _holds(self, path: SecretPath, values: Mapping[str, str]) -> bool:
        """Whether the backend holds exactly ``values`` at ``path`` now."""
        backend = self.secret_backend
        return await backend.exists(path) and dict(await backend.read(path)) == dict(values)

    async def render(
        self,
        environment: str,
        application: Application,
        catalog: CatalogView,
        *,
        depends_on: Sequence[str] | None = None,
    ) -> list[FileChange]:
        """Every file of ``application`` in ``environment``: the composers' manifests, its
        record and its index entries, with secret references (``application.secrets``) at the
        Environment's paths. Nothing is read from or written to the repository.

        :param depends_on: its Flux ``dependsOn`` (default: the Applications of its
            ``dependencies``).
        """
        organization, env_type = split_environment_name(environment)
        references = {
            name: str(SecretPath(organization, env_type, application.name, name))
            for name in application.secrets
        }
        store = (
            await self.secret_backend.store_reference(organization, env_type)
            if references
            else None
        )
        if depends_on is None:
            depends_on = sorted(set(application.dependencies.values()))
        loaded = catalog.loaded(application.blueprint, application.version)
        composition = CompositionRequest(
            sovereign=self.sovereign,
            application=application,
            blueprint=loaded.blueprint,
            depends_on=tuple(depends_on),
            files=loaded.files,
            secrets=references,
            secret_store=store,
        )
        files = await compose_application(self.composers, composition)
        files.append(
            FileChange(_record_path(application.name), FileAction.ADD, _record(application))
        )
        files.extend(_index_files(application))
        return files

    async def owned_paths(
        self, environment: str, application: Application, ref: str | None = None
    ) -> set[str]:
        """The repository paths that belong to ``application`` at ``ref`` (default: head)."""
        paths = set(
            await self.committer.list_files(environment, f"applications/{application.name}/", ref)
        )
        paths.add(flux_kustomization_path(application.name))
        paths.update(change.path for change in _index_files(application))
        return paths

    async def changes_to(
        self,
        environment: str,
        wanted: Sequence[FileChange],
        current: Application | None,
    ) -> list[FileChange]:
        """The file changes that turn ``current``'s files in ``environment`` into ``wanted``
        (adds, modifications of changed content, deletions of paths no longer wanted)."""
        old_paths = set() if current is None else await self.owned_paths(environment, current)
        files: list[FileChange] = []
        for change in wanted:
            old = await self.committer.read_file(environment, change.path)
            if old is not None:
                if old.decode() == change.content:
                    continue
                files.append(FileChange(change.path, FileAction.MODIFY, change.content))
            else:
                files.append(FileChange(change.path, FileAction.ADD, change.content))
        new_paths = {change.path for change in wanted}
        files.extend(FileChange(path, FileAction.DELETE) for path in sorted(old_paths - new_paths))
        return files

    async def _install_operation(
        self,
        environment: str,
        request: InstallRequest,
        resolution: Resolution,
        names: Mapping[str, str],
        catalog: CatalogView,
        *,
        actor: str,
    ) -> Operation:
        planned: list[PlannedApplication] = []
        files: list[FileChange] = []
        secrets: list[tuple[SecretPath, Mapping[str, str]]] = []
        changes: list[ApplicationChange] = []
        for node in resolution.nodes:
            name = names[node.name]
            dependencies = {alias: names[target] for alias, target in node.dependencies.items()}
            depends_on = tuple(sorted(set(dependencies.values())))
            is_root = node.name == resolution.root
            parent = None if is_root else request.name
            alias = (
                None
                if is_root
                else next((r.alias for r in node.requirements if r.alias is not None), None)
            )
            if node.pinned:
                planned.append(
                    PlannedApplication(
                        name, node.name, node.version, PlanAction.REUSE, alias=alias, parent=parent
                    )
                )
                continue
            application = Application(
                name=name,
                environment=environment,
                blueprint=node.name,
                version=node.version,
                config=dict(node.config),
                overlay=request.overlay if is_root else None,
                dependencies=dependencies,
            )
            node_files, node_secrets, _ = await self._compose(
                environment, node, application, depends_on, catalog
            )
            files.extend(node_files)
            secrets.extend(node_secrets)
            planned.append(
                PlannedApplication(
                    name,
                    node.name,
                    node.version,
                    PlanAction.CREATE,
                    config=dict(node.config),
                    depends_on=depends_on,
                    alias=alias,
                    parent=parent,
                )
            )
            changes.append(
                ApplicationChange(name, ApplicationAction.INSTALL, node.name, node.version)
            )
        operation_id = str(uuid.uuid4())
        plan = InstallPlan(
            id=operation_id,
            environment=environment,
            application=request.name,
            applications=tuple(planned),
            decisions=resolution.decisions,
            files=tuple(sorted(files, key=lambda change: change.path)),
        )
        root = resolution.root_node
        lines = [f"Install {request.name} ({root.name} {root.version})", ""]
        for item in planned:
            if item.name != request.name:
                verb = "reuse" if item.action is PlanAction.REUSE else "create"
                lines.append(
                    f"- {verb} {item.name} ({item.blueprint} {item.version}) for {item.alias}"
                )
        for decision in plan.decisions:
            state = "on" if decision.enabled else "off"
            lines.append(f"- dependency {decision.alias} is {state}: {decision.reason}")
        commit = CommitRequest(
            environment=environment,
            message="\n".join(lines).rstrip(),
            files=plan.files,
            actor=actor,
            operation_id=operation_id,
            plan_digest=plan.digest,
            applications=tuple(changes),
        )
        return Operation(plan, commit, tuple(secrets))

    async def apply(self, operation: Operation) -> CommitInfo:
        """Store the operation's secrets, then commit; a failed commit puts back the values it
        replaced (and removes the ones it added), leaving nothing changed."""
        backend = self.secret_backend
        written: list[tuple[SecretPath, Mapping[str, str] | None]] = []
        try:
            for path, values in operation.secrets:
                previous = await backend.read(path) if await backend.exists(path) else None
                await backend.write(path, values)
                written.append((path, previous))
            commit = await self.committer.commit(operation.request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                # Put back what was there: a running Application keeps its secret.
                for path, previous in reversed(written):
                    if previous is None:
                        await backend.delete(path)
                    else:
                        await backend.write(path, previous)
            raise
        for path in operation.removed_secrets:
            await self.secret_backend.delete(path)
        return commit

    async def install(
        self, environment: str, request: InstallRequest, catalog: CatalogView, *, actor: str
    ) -> tuple[InstallPlan, CommitInfo]:
        """Plan and commit an install."""
        operation = await self.plan_install(environment, request, catalog, actor=actor)
        return operation.plan, await self.apply(operation)

    # ---------------------------------------------------------------------------------------------
    # Update
    # ---------------------------------------------------------------------------------------------

    async def plan_update(
        self,
        environment: str,
        name: str,
        catalog: CatalogView,
        *,
        config: Mapping[str, Any] | None = None,
        version: str | None = None,
        actor: str,
    ) -> Operation:
        """Change an Application's config (merged onto the current one) and/or version.

        A version change honours the target version's ``upgrades``: ``from`` must admit the
        current version and no ``blocks`` entry may match it; downgrades go through rollback.
        Secret values are not kept in Git, so a config that marks a field as a secret must
        be given again when it is required. A secret given with a value other than the one the
        backend holds is rotated: the Application gets a new ``secrets_revision`` (so a
        secret-only update is a commit); given with the same value, it changes nothing.
        """
        check_application_name(name)
        current = await self.application(environment, name)
        if current is None:
            raise NotFound(f"Application {name} does not exist in {environment}")
        existing = {name: current}
        for dependency in current.dependencies.values():
            record = await self.application(environment, dependency)
            if record is not None:
                existing[dependency] = record
        if config is None and version is None:
            raise InvalidInput("an update needs a config, a version or both")
        resolver = Resolver(catalog)
        target_version = current.version
        if version is not None:
            target_version = _highest(catalog, current.blueprint, version)
            self._check_upgrade(catalog, current, target_version)
        merged = _merge(dict(current.config), dict(config or {}))
        pinned = {
            existing[app].blueprint: existing[app].version
            for app in current.dependencies.values()
            if app in existing
        }
        resolution = resolver.resolve(
            current.blueprint,
            target_version,
            merged,
            InstallTarget(name, environment),
            pinned=pinned,
        )
        root = resolution.root_node
        names = {
            existing[app].blueprint: app for app in current.dependencies.values() if app in existing
        }
        for node in resolution.nodes:
            if node.name != resolution.root and not node.pinned:
                raise Conflict(
                    f"{name} {target_version} needs {node.name}, which it does not have yet; "
                    "install it first and retry"
                )
        dependencies = {alias: names[target] for alias, target in root.dependencies.items()}
        application = Application(
            name=name,
            environment=environment,
            blueprint=current.blueprint,
            version=root.version,
            config=dict(root.config),
            overlay=current.overlay,
            dependencies=dependencies,
        )
        new_files, secrets, rotated = await self._compose(
            environment,
            root,
            application,
            tuple(sorted(set(dependencies.values()))),
            catalog,
            current=current,
        )
        files = await self.changes_to(environment, new_files, current)
        if not files:
            raise Conflict(f"{name} already has this config and version: nothing to change")
        operation_id = str(uuid.uuid4())
        plan = InstallPlan(
            id=operation_id,
            environment=environment,
            application=name,
            applications=(
                PlannedApplication(
                    name,
                    current.blueprint,
                    root.version,
                    PlanAction.UPDATE,
                    config=dict(root.config),
                    depends_on=tuple(sorted(set(dependencies.values()))),
                ),
            ),
            decisions=resolution.decisions,
            files=tuple(sorted(files, key=lambda change: change.path)),
        )
        what = []
        if root.version != current.version:
            what.append(f"version {current.version} → {root.version}")
        if config is not None and dict(root.config) != dict(current.config):
            what.append("config")
        if rotated:
            # Names only: a rotation is visible in Git, its values never are.
            what.append(f"secrets {', '.join(rotated)} rotated")
        if not what:
            what.append("config")
        request = CommitRequest(
            environment=environment,
            message=f"Update {name}: {' and '.join(what)}",
            files=plan.files,
            actor=actor,
            operation_id=operation_id,
            plan_digest=plan.digest,
            applications=(
                ApplicationChange(name, ApplicationAction.UPDATE, current.blueprint, root.version),
            ),
        )
        return Operation(plan, request, tuple(secrets))

    def _check_upgrade(self, catalog: CatalogView, current: Application, target: str) -> None:
        if Version(target) < Version(current.version):
            raise Conflict(
                f"{current.name} is at {current.version}; {target} is a downgrade — use rollback"
            )
        if target == current.version:
            return
        upgrades = catalog.get(current.blueprint, target).spec.upgrades
        if upgrades.from_ is not None and Version(current.version) not in NpmSpec(upgrades.from_):
            raise Conflict(
                f"{current.blueprint} {target} upgrades only from {upgrades.from_}; "
                f"{current.name} is at {current.version}"
            )
        for block in upgrades.blocks:
            if Version(current.version) in NpmSpec(block.from_):
                raise Conflict(
                    f"{current.blueprint} {target} cannot be reached from {current.version}: "
                    f"{block.reason}"
                )

    async def update(
        self,
        environment: str,
        name: str,
        catalog: CatalogView,
        *,
        config: Mapping[str, Any] | None = None,
        version: str | None = None,
        actor: str,
    ) -> tuple[InstallPlan, CommitInfo]:
        operation = await self.plan_update(
            environment, name, catalog, config=config, version=version, actor=actor
        )
        return operation.plan, await self.apply(operation)

    # ---------------------------------------------------------------------------------------------
    # Uninstall
    # ---------------------------------------------------------------------------------------------

    async def plan_uninstall(
        self, environment: str, name: str, *, cascade: bool, actor: str
    ) -> Operation:
        """Remove ``name`` (and, with ``cascade``, every Application depending on it)."""
        check_application_name(name)
        target = await self.application(environment, name)
        if target is None:
            raise NotFound(f"Application {name} does not exist in {environment}")
        existing = {name: target}
        doomed = [name]
        for current in doomed:
            dependents = sorted(
                dependent
                for dependent in await self._dependents(environment, current)
                if dependent not in doomed
            )
            if dependents and not cascade:
                raise Conflict(
                    f"{', '.join(dependents)} depend on {current}; uninstall them first or "
                    "pass cascade=true"
                )
            doomed.extend(dependents)
            for dependent in dependents:
                record = await self.application(environment, dependent)
                if record is not None:
                    existing[dependent] = record
        organization, env_type = split_environment_name(environment)
        files: list[FileChange] = []
        removed: list[SecretPath] = []
        for app in doomed:
            for path in await self.committer.list_files(environment, f"applications/{app}/"):
                files.append(FileChange(path, FileAction.DELETE))
            files.append(FileChange(flux_kustomization_path(app), FileAction.DELETE))
            files.extend(
                FileChange(change.path, FileAction.DELETE) for change in _index_files(existing[app])
            )
            for path in await self.committer.list_files(environment, f"applications/{app}/"):
                if path.endswith("/externalsecret.yaml"):
                    content = await self.committer.read_file(environment, path) or b""
                    for item in (yaml.safe_load(content) or {}).get("spec", {}).get("data", []):
                        secret = str(item["remoteRef"]["key"]).rsplit("/", 1)[-1]
                        removed.append(SecretPath(organization, env_type, app, secret))
        operation_id = str(uuid.uuid4())
        plan = InstallPlan(
            id=operation_id,
            environment=environment,
            application=name,
            applications=tuple(
                PlannedApplication(
                    app, existing[app].blueprint, existing[app].version, PlanAction.UPDATE
                )
                for app in doomed
            ),
            files=tuple(sorted(files, key=lambda change: change.path)),
        )
        also = f"\n\nCascade: also {', '.join(doomed[1:])}" if len(doomed) > 1 else ""
        request = CommitRequest(
            environment=environment,
            message=f"Uninstall {name}{also}",
            files=plan.files,
            actor=actor,
            operation_id=operation_id,
            plan_digest=plan.digest,
            applications=tuple(
                ApplicationChange(
                    app, ApplicationAction.UNINSTALL, existing[app].blueprint, existing[app].version
                )
                for app in doomed
            ),
        )
        return Operation(plan, request, removed_secrets=tuple(removed))

    async def uninstall(
        self, environment: str, name: str, *, cascade: bool = False, actor: str
    ) -> CommitInfo:
        operation = await self.plan_uninstall(environment, name, cascade=cascade, actor=actor)
        return await self.apply(operation)
