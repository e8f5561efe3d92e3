"""The plugin manager: loading, isolation of broken plugins, slot selection and a typed façade.

Nothing outside this module touches pluggy's ``pm.hook``: the rest of the code asks the manager
for ``spine()``, ``committer()``, ``projections()`` and so on, and gets typed objects back.
"""

from __future__ import annotations

import enum
import importlib.metadata
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import attrs
import click
import pluggy
from attrs import frozen

from catalyst_kernel.api.extension import ApiExtension
from catalyst_kernel.errors import PluginError, SettingsError
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.names import check_plugin_name
from catalyst_kernel.plugins import hookspecs
from catalyst_kernel.plugins.context import HookContext
from catalyst_kernel.plugins.lifecycle import LifecycleHandler
from catalyst_kernel.plugins.markers import PROJECT
from catalyst_kernel.promotion.rules import RuleKind
from catalyst_kernel.provisioning.committer import Committer
from catalyst_kernel.provisioning.composer import ManifestComposer
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.sources import EventSource
from catalyst_kernel.readside.spine import Spine
from catalyst_kernel.secrets.backend import SecretBackend
from catalyst_kernel.settings import Settings, describe_problem_source, structure_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginManager",
    "PluginStatus",
    "Slot",
    "SlotSelection",
]

ENTRY_POINT_GROUP: Final = PROJECT
KERNEL_DISTRIBUTION: Final = "catalyst-kernel"

T = TypeVar("T")


class Slot(enum.StrEnum):
    """The single-provider slots; ``providers.<slot>`` names the plugin that fills each."""

    SPINE = "spine"
    COMMITTER = "committer"
    IDENTITY = "identity"
    SECRETS = "secrets"


class PluginStatus(enum.StrEnum):
    LOADED = "loaded"
    DISABLED = "disabled"
    FAILED = "failed"


_SLOT_HOOKS: Final[Mapping[Slot, tuple[str, type]]] = {
    Slot.SPINE: ("catalyst_spine", Spine),
    Slot.COMMITTER: ("catalyst_committer", Committer),
    Slot.IDENTITY: ("catalyst_identity", IdentityProvider),
    Slot.SECRETS: ("catalyst_secrets", SecretBackend),
}

# What each hook is called in `catalyst plugins` ("slots and hooks provided").
HOOK_CAPABILITIES: Final[Mapping[str, str]] = {
    "catalyst_plugin_settings": "settings",
    "catalyst_spine": "spine",
    "catalyst_committer": "committer",
    "catalyst_identity": "identity",
    "catalyst_secrets": "secrets",
    "catalyst_event_sources": "event-sources",
    "catalyst_projections": "projections",
    "catalyst_manifest_composers": "manifest-composers",
    "catalyst_policy_rule_kinds": "policy-rule-kinds",
    "catalyst_api_extensions": "api-extensions",
    "catalyst_cli_commands": "cli-commands",
    "catalyst_lifecycle": "lifecycle",
}

BUILTIN_PLUGINS: Final[Mapping[str, str]] = {
    "core": "catalyst_kernel.builtin.core",
    "embedded": "catalyst_kernel.builtin.embedded",
    "dev": "catalyst_kernel.builtin.dev",
}


@frozen
class PluginInfo:
    """What ``catalyst plugins`` and ``GET /v1/plugins`` show for one plugin."""

    name: str
    status: PluginStatus
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    module: str | None = None
    hooks: tuple[str, ...] = ()
    error: str | None = None

    @property
    def provides(self) -> tuple[str, ...]:
        """The slots and capabilities its hooks provide, in hook order."""
        return tuple(HOOK_CAPABILITIES[h] for h in HOOK_CAPABILITIES if h in self.hooks)


@frozen
class SlotSelection:
    """Which plugin fills a slot; ``reason`` says why it cannot when ``available`` is false."""

    slot: Slot
    provider: str
    available: bool
    reason: str | None = None


class _PluggyManager(pluggy.PluginManager):
    """pluggy's manager, refusing hook implementations Catalyst cannot honour."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None:
            return None
        function = getattr(plugin, name)
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            raise pluggy.PluginValidationError(
                plugin,
                f"hook implementation {name} is 'async def': Catalyst hooks are synchronous and "
                "only register objects; return an object whose methods are async instead",
            )
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise pluggy.PluginValidationError(
                plugin,
                f"hook implementation {name} is a wrapper: Catalyst calls each plugin's hooks "
                "on their own, so wrappers are not supported",
            )
        return opts


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = entry_point.dist
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _kernel_version() -> str | None:
    try:
        return importlib.metadata.version(KERNEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class PluginManager:
    """Loads plugins one at a time and answers for them with typed objects.

    :param settings: the Sovereign's settings (slot selection, allow/deny lists, plugin sections).
    :param strict: make any plugin failure fatal; default ``settings.strict_plugins``.
    :param sources: where each settings key came from, for error messages.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        strict: bool | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.strict = settings.strict_plugins if strict is None else strict
        self._sources = dict(sources or {})
        self._pm = _PluggyManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._known_hooks = frozenset(HOOK_CAPABILITIES)
        self._infos: dict[str, PluginInfo] = {}
        self._plugin_settings: dict[str, Any] = {}
        self._providers: dict[Slot, Any] = {}
        self._collected: dict[str, list[tuple[str, Any]]] = {}

    # ---------------------------------------------------------------------------------------------
    # Loading
    # ---------------------------------------------------------------------------------------------

    def load(
        self,
        *,
        builtins: bool = True,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    ) -> PluginManager:
        """Register the built-ins, then every ``catalyst`` entry point, one at a time.

        :param entry_points: the entry points to load (default: those installed).
        """
        if builtins:
            for name, module_name in BUILTIN_PLUGINS.items():
                module = importlib.import_module(module_name)
                self.register(
                    module,
                    name,
                    distribution=KERNEL_DISTRIBUTION,
                    version=_kernel_version(),
                    builtin=True,
                )
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in sorted(entry_points, key=lambda ep: ep.name):
            self._load_entry_point(entry_point)
        return self

    def _load_entry_point(self, entry_point: importlib.metadata.EntryPoint) -> None:
        name = entry_point.name
        distribution, version = _distribution_of(entry_point)
        known = self._infos.get(name)
        if known is not None:
            if known.distribution == distribution and known.module == entry_point.value:
                return  # the same distribution found twice on sys.path: load it once
            self._fail(
                PluginInfo(
                    name, PluginStatus.FAILED, distribution, version, module=entry_point.value
                ),
                f"plugin name {name!r} is already taken by "
                f"{known.distribution or 'an unnamed distribution'}",
                record=False,
            )
            return
        info = PluginInfo(
            name, PluginStatus.LOADED, distribution, version, module=entry_point.value
        )
        disabled = self._disabled_reason(name)
        if disabled:
            self._infos[name] = attrs.evolve(info, status=PluginStatus.DISABLED, error=disabled)
            return
        try:
            check_plugin_name(name)
            plugin = entry_point.load()
        except Exception as exc:
            self._fail(info, f"cannot be imported: {_describe(exc)}")
            return
        self._register(plugin, info)

    def _disabled_reason(self, name: str) -> str | None:
        if name in self.settings.plugin_deny:
            return "disabled by plugin_deny"
        if self.settings.plugin_allow and name not in self.settings.plugin_allow:
            return "disabled: not in plugin_allow"
        return None

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        builtin: bool = False,
    ) -> PluginInfo:
        """Register ``plugin`` (a module or object with hook implementations) under ``name``.

        Used for built-ins, entry points and tests. A plugin that fails is recorded and fully
        unregistered (or, in strict mode, :class:`PluginError` is raised).
        """
        if name in self._infos and self._infos[name].status is PluginStatus.LOADED:
            raise PluginError(f"plugin name {name!r} is already registered", plugin=name)
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__qualname__
        info = PluginInfo(
            name, PluginStatus.LOADED, distribution, version, builtin=builtin, module=module
        )
        self._register(plugin, info)
        return self._infos[name]

    def _register(self, plugin: object, info: PluginInfo) -> None:
        name = info.name
        try:
            self._pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._pm.unregister(name=name)
            message = exc.args[0] if exc.args else str(exc)
            self._fail(info, f"invalid hook implementation: {message}")
            return
        hooks = sorted(caller.name for caller in self._pm.get_hookcallers(plugin) or ())
        unknown = [hook for hook in hooks if hook not in self._known_hooks]
        if unknown:
            self._pm.unregister(name=name)
            self._fail(
                info,
                f"implements unknown hook(s) {', '.join(unknown)}; known hooks are "
                f"{', '.join(sorted(self._known_hooks))}",
            )
            return
        self._infos[name] = attrs.evolve(info, hooks=tuple(hooks))
        try:
            self._configure(name)
        except SettingsError:
            self._pm.unregister(name=name)
            del self._infos[name]
            raise
        except Exception as exc:
            self._pm.unregister(name=name)
            self._fail(info, f"failing registration: {_describe(exc)}")

    def _configure(self, name: str) -> None:
        section = self.settings.plugin_section(name)
        settings_class = self._call(name, "catalyst_plugin_settings")
        if settings_class is None:
            if section:
                raise SettingsError(
                    f"settings key plugins.{name}"
                    f"{describe_problem_source(f'plugins.{name}', self._sources)}: "
                    f"plugin {name!r} takes no settings",
                    field=f"plugins.{name}",
                )
            return
        if not (isinstance(settings_class, type) and attrs.has(settings_class)):
            raise PluginError(
                f"catalyst_plugin_settings returned {settings_class!r}, not an attrs class",
                plugin=name,
            )
        self._plugin_settings[name] = structure_settings(
            section or {}, settings_class, prefix=f"plugins.{name}", sources=self._sources
        )

    def check_settings(self) -> None:
        """Raise :class:`SettingsError` for a ``[plugins.<name>]`` table no plugin claims.

        Hosts call it once every plugin is registered (``load()`` and any explicit ones).
        """
        for name in sorted(self.settings.plugins):
            if name not in self._infos:
                raise SettingsError(
                    f"settings key plugins.{name}"
                    f"{describe_problem_source(f'plugins.{name}', self._sources)}: "
                    f"no plugin named {name!r} is installed",
                    field=f"plugins.{name}",
                )

    def _fail(self, info: PluginInfo, reason: str, *, record: bool = True) -> None:
        failed = attrs.evolve(info, status=PluginStatus.FAILED, error=reason, hooks=())
        if record:
            self._infos[info.name] = failed
        else:
            self._infos.setdefault(f"{info.name} ({info.distribution})", failed)
        self._plugin_settings.pop(info.name, None)
        if self.strict:
            raise PluginError(f"plugin {info.name!r} failed: {reason}", plugin=info.name)

    def unregister(self, name: str) -> None:
        """Remove a plugin and everything it registered."""
        self._pm.unregister(name=name)
        self._infos.pop(name, None)
        self._plugin_settings.pop(name, None)
        for slot in [s for s, provider in self._providers.items() if provider[0] == name]:
            del self._providers[slot]

    # ---------------------------------------------------------------------------------------------
    # Introspection
    # ---------------------------------------------------------------------------------------------

    def plugins(self) -> tuple[PluginInfo, ...]:
        """Every plugin seen, loaded or not, by name."""
        return tuple(self._infos[name] for name in sorted(self._infos))

    def errors(self) -> tuple[PluginInfo, ...]:
        """The plugins that failed, with their causes."""
        return tuple(info for info in self.plugins() if info.status is PluginStatus.FAILED)

    def loaded(self) -> tuple[str, ...]:
        """Names of the plugins currently registered, sorted."""
        return tuple(info.name for info in self.plugins() if info.status is PluginStatus.LOADED)

    def plugin_settings(self, name: str) -> Any:
        """The structured ``[plugins.<name>]`` settings of a loaded plugin, or ``None``."""
        return self._plugin_settings.get(name)

    def hook_context(self, name: str) -> HookContext:
        """The context a hook of plugin ``name`` receives."""
        return HookContext(self.settings, name, self._plugin_settings.get(name))

    # ---------------------------------------------------------------------------------------------
    # Slot selection
    # ---------------------------------------------------------------------------------------------

    def provider_name(self, slot: Slot) -> str:
        """The plugin the settings select for ``slot`` (``keycloak`` resolved by topology)."""
        name: str = getattr(self.settings.providers, slot.value)
        if slot is Slot.IDENTITY and name == "keycloak":
            return f"keycloak-{self.settings.keycloak_topology.value}"
        return name

    def selection(self, slot: Slot) -> SlotSelection:
        """Which plugin fills ``slot`` and whether it can."""
        name = self.provider_name(slot)
        hook, _interface = _SLOT_HOOKS[slot]
        key = f"providers.{slot.value}"
        info = self._infos.get(name)
        if info is None:
            installed = ", ".join(self.loaded()) or "none"
            return SlotSelection(
                slot,
                name,
                False,
                f"{key} selects plugin {name!r}, which is not installed "
                f"(installed: {installed}); install its distribution or choose another provider",
            )
        if info.status is not PluginStatus.LOADED:
            return SlotSelection(
                slot,
                name,
                False,
                f"{key} selects plugin {name!r}, which is {info.status.value}: {info.error}",
            )
        if hook not in info.hooks:
            return SlotSelection(
                slot,
                name,
                False,
                f"{key} selects plugin {name!r}, which does not provide the {slot.value} slot "
                f"(it has no {hook} hook)",
            )
        return SlotSelection(slot, name, True)

    def selections(self) -> tuple[SlotSelection, ...]:
        return tuple(self.selection(slot) for slot in Slot)

    def check_providers(self, slots: Iterable[Slot] = tuple(Slot)) -> None:
        """Raise :class:`PluginError` naming every selected provider that is missing (startup)."""
        problems = [s for s in (self.selection(slot) for slot in slots) if not s.available]
        if problems:
            raise PluginError(
                "; ".join(str(s.reason) for s in problems), plugin=problems[0].provider
            )

    def _provider(self, slot: Slot, interface: type[T]) -> T:
        cached = self._providers.get(slot)
        if cached is not None:
            return cast(T, cached[1])
        selection = self.selection(slot)
        if not selection.available:
            raise PluginError(str(selection.reason), plugin=selection.provider)
        hook, _ = _SLOT_HOOKS[slot]
        try:
            provider = self._call(selection.provider, hook)
        except Exception as exc:
            raise PluginError(
                f"plugin {selection.provider!r} failed to provide the {slot.value} slot: "
                f"{_describe(exc)}",
                plugin=selection.provider,
            ) from exc
        if not isinstance(provider, interface):
            raise PluginError(
                f"plugin {selection.provider!r}: {hook} returned {provider!r}, "
                f"which is not a {interface.__name__}",
                plugin=selection.provider,
            )
        self._providers[slot] = (selection.provider, provider)
        return provider

    def spine(self) -> Spine:
        """The active spine."""
        return self._provider(Slot.SPINE, Spine)

    def committer(self) -> Committer:
        """The active committer."""
        return self._provider(Slot.COMMITTER, Committer)

    def identity(self) -> IdentityProvider:
        """The active identity provider."""
        return self._provider(Slot.IDENTITY, IdentityProvider)

    def secrets(self) -> SecretBackend:
        """The active secret backend."""
        return self._provider(Slot.SECRETS, SecretBackend)

    # ---------------------------------------------------------------------------------------------
    # Additive hooks
    # ---------------------------------------------------------------------------------------------

    def _call(self, name: str, hook: str) -> Any:
        caller = getattr(self._pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == name:
                kwargs = {"ctx": self.hook_context(name)} if "ctx" in impl.argnames else {}
                return impl.function(**kwargs)
        return None

    def _collect(self, hook: str, interface: type[T], key: Callable[[T], str]) -> list[T]:
        if hook not in self._collected:
            collected: list[tuple[str, Any]] = []
            for name in self.loaded():
                try:
                    items = list(self._call(name, hook) or ())
                    for item in items:
                        if not isinstance(item, interface):
                            raise TypeError(f"{item!r} is not a {interface.__name__}")
                except Exception as exc:
                    self._pm.unregister(name=name)
                    self._fail(self._infos[name], f"{hook} raised {_describe(exc)}")
                    continue
                collected.extend((name, item) for item in items)
            self._collected[hook] = collected
        active = set(self.loaded())
        ordered = sorted(
            ((name, item) for name, item in self._collected[hook] if name in active),
            key=lambda pair: (key(pair[1]), pair[0]),
        )
        return [item for _, item in ordered]

    def event_sources(self) -> list[EventSource]:
        """Every registered event source, by (plugin name, source name)."""
        return self._collect("catalyst_event_sources", EventSource, lambda s: "")

    def projections(self) -> list[Projection]:
        """Every registered projection, by (projection name, plugin name)."""
        return self._collect("catalyst_projections", Projection, lambda p: p.name)

    def manifest_composers(self) -> list[ManifestComposer]:
        """Every registered manifest composer, by (composer name, plugin name)."""
        return self._collect("catalyst_manifest_composers", ManifestComposer, lambda c: c.name)

    def policy_rule_kinds(self) -> dict[str, RuleKind]:
        """Registered rule kinds by ``kind``; a duplicate kind fails the later plugin by name."""
        hook = "catalyst_policy_rule_kinds"
        self._collect(hook, RuleKind, lambda r: r.kind)
        owners: dict[str, tuple[str, RuleKind]] = {}
        for name, rule_kind in sorted(self._collected[hook], key=lambda pair: pair[0]):
            if name not in self.loaded():
                continue
            owner = owners.get(rule_kind.kind)
            if owner is not None and owner[0] != name:
                self._pm.unregister(name=name)
                self._fail(
                    self._infos[name],
                    f"rule kind {rule_kind.kind!r} is already registered by plugin {owner[0]!r}",
                )
                continue
            owners[rule_kind.kind] = (name, rule_kind)
        active = set(self.loaded())
        return {kind: pair[1] for kind, pair in sorted(owners.items()) if pair[0] in active}

    def api_extensions(self) -> list[ApiExtension]:
        """Every registered API extension, by (extension name, plugin name)."""
        return self._collect("catalyst_api_extensions", ApiExtension, lambda e: e.name)

    def cli_commands(self) -> dict[str, click.Command]:
        """Registered ``catalyst`` subcommands by name; a name used twice (or a kernel
        command's, in ``reserved``) fails the later plugin by name."""
        return self.cli_commands_except(frozenset())

    def cli_commands_except(self, reserved: frozenset[str]) -> dict[str, click.Command]:
        """As :meth:`cli_commands`, refusing the names in ``reserved`` (the kernel's own)."""
        hook = "catalyst_cli_commands"
        self._collect(hook, click.Command, lambda c: c.name or "")
        owners: dict[str, tuple[str, click.Command]] = {}
        for name, command in sorted(self._collected[hook], key=lambda pair: pair[0]):
            if name not in self.loaded():
                continue
            command_name = command.name or ""
            owner = owners.get(command_name)
            if command_name in reserved:
                taken = "the kernel"
            elif owner is not None and owner[0] != name:
                taken = f"plugin {owner[0]!r}"
            else:
                owners[command_name] = (name, command)
                continue
            self._pm.unregister(name=name)
            self._fail(
                self._infos[name], f"command {command_name!r} is already provided by {taken}"
            )
        active = set(self.loaded())
        return {cmd: pair[1] for cmd, pair in sorted(owners.items()) if pair[0] in active}

    def lifecycle_handlers(self) -> list[LifecycleHandler]:
        """Every registered lifecycle handler, in plugin-name order."""
        return self._collect("catalyst_lifecycle", LifecycleHandler, lambda h: "")
