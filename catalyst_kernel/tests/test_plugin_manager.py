"""The plugin manager: one-at-a-time loading, isolation of broken plugins, selection, façade."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from attrs import frozen

from catalyst_kernel.api.extension import ApiExtension
from catalyst_kernel.errors import PluginError, SettingsError
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.plugins import HookContext, PluginManager, PluginStatus, Slot, hookimpl
from catalyst_kernel.plugins.lifecycle import LifecycleHandler
from catalyst_kernel.promotion.rules import RuleKind
from catalyst_kernel.provisioning.committer import Committer
from catalyst_kernel.provisioning.composer import ManifestComposer
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.sources import EventSource
from catalyst_kernel.readside.spine import Spine
from catalyst_kernel.secrets.backend import SecretBackend
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing import assert_implements, interface_members

MakeDistribution = Callable[..., list[Any]]
Register = Callable[..., Any]


def stub(interface: type, **attributes: Any) -> Any:
    """An object with every member of ``interface``; its methods are never called here."""
    namespace: dict[str, Any] = {}
    for name, declared in interface_members(interface).items():
        if declared is None:
            namespace[name] = attributes.get(name, name)
        elif inspect.iscoroutinefunction(declared):

            async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                raise NotImplementedError

            namespace[name] = method
        else:
            namespace[name] = lambda self, *args, **kwargs: None
    namespace.update({k: v for k, v in attributes.items() if k not in namespace})
    return type(f"Stub{interface.__name__}", (), namespace)()


class Plugin:
    """A plugin object made of hook functions: ``Plugin(catalyst_projections=...)``."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, function in hooks.items():
            setattr(self, name, hookimpl(function))


def _names(items: Sequence[Any]) -> list[str]:
    return [item.name for item in items]


def _test_only(items: Sequence[Any]) -> list[Any]:
    """Leave out what the kernel's own built-in plugins register (its projections …)."""
    return [item for item in items if type(item).__name__.startswith("Stub")]


# -------------------------------------------------------------------------------------------------
# Loading and isolation
# -------------------------------------------------------------------------------------------------


def test_builtins_are_listed_as_kernel_plugins(catalyst_plugin_manager: PluginManager) -> None:
    infos = {info.name: info for info in catalyst_plugin_manager.plugins()}
    assert set(infos) == {"core", "embedded", "dev"}
    assert all(info.builtin and info.distribution == "catalyst-kernel" for info in infos.values())
    assert all(info.version for info in infos.values())


def test_import_error_is_recorded_by_name_and_skipped(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    broken = make_distribution(
        "catalyst-broken", {"broken": "broken_mod"}, {"broken_mod": "import does_not_exist\n"}
    )
    good = make_distribution(
        "catalyst-good",
        {"good": "good_mod"},
        {
            "good_mod": """
            from catalyst_kernel.plugins import hookimpl

            @hookimpl
            def catalyst_plugin_settings(ctx):
                return None
            """
        },
    )
    manager = PluginManager(catalyst_settings()).load(entry_points=broken + good)
    (error,) = manager.errors()
    assert error.name == "broken"
    assert error.distribution == "catalyst-broken"
    assert error.version == "1.0.0"
    assert "cannot be imported: ModuleNotFoundError" in str(error.error)
    assert "does_not_exist" in str(error.error)
    assert "good" in manager.loaded()
    assert "broken" not in manager.loaded()


def test_strict_mode_makes_a_broken_plugin_fatal(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    broken = make_distribution(
        "catalyst-broken", {"broken": "broken_mod"}, {"broken_mod": "raise RuntimeError('boom')\n"}
    )
    with pytest.raises(
        PluginError, match=r"plugin 'broken' failed: .*RuntimeError: boom"
    ) as caught:
        PluginManager(catalyst_settings(), strict=True).load(entry_points=broken)
    assert caught.value.plugin == "broken"
    with pytest.raises(PluginError, match="broken"):
        PluginManager(catalyst_settings(strict_plugins=True)).load(entry_points=broken)


def test_unknown_hook_fails_the_plugin_and_unregisters_all_of_it(
    catalyst_plugin_manager: PluginManager,
) -> None:
    plugin = Plugin(
        catalyst_event_sources=lambda ctx: [stub(EventSource, name="s")],
        catalyst_spien=lambda ctx: None,
    )
    info = catalyst_plugin_manager.register(plugin, "typo")
    assert info.status is PluginStatus.FAILED
    assert "unknown hook(s) catalyst_spien" in str(info.error)
    assert catalyst_plugin_manager.event_sources() == []


def test_async_hookimpl_is_rejected_with_the_reason(
    catalyst_plugin_manager: PluginManager,
) -> None:
    class AsyncPlugin:
        @hookimpl
        async def catalyst_projections(self, ctx: HookContext) -> list[Any]:
            return []

    info = catalyst_plugin_manager.register(AsyncPlugin(), "eager")
    assert info.status is PluginStatus.FAILED
    assert "is 'async def'" in str(info.error)
    assert "return an object whose methods are async" in str(info.error)
    assert "eager" not in catalyst_plugin_manager.loaded()


def test_hookimpl_asking_for_an_unknown_argument_is_rejected(
    catalyst_plugin_manager: PluginManager,
) -> None:
    plugin = Plugin(catalyst_projections=lambda ctx, config: [])
    info = catalyst_plugin_manager.register(plugin, "greedy")
    assert info.status is PluginStatus.FAILED
    assert "config" in str(info.error)


def test_wrapper_hookimpl_is_rejected(catalyst_plugin_manager: PluginManager) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def catalyst_projections(self, ctx: HookContext) -> Any:
            return (yield)

    info = catalyst_plugin_manager.register(Wrapper(), "wrapper")
    assert info.status is PluginStatus.FAILED
    assert "wrappers are not supported" in str(info.error)


def test_failing_registration_unregisters_the_plugin(
    catalyst_plugin_manager: PluginManager,
) -> None:
    def explode(ctx: HookContext) -> type:
        raise ValueError("no settings today")

    plugin = Plugin(
        catalyst_plugin_settings=explode,
        catalyst_projections=lambda ctx: [stub(Projection, name="p")],
    )
    info = catalyst_plugin_manager.register(plugin, "exploding")
    assert info.status is PluginStatus.FAILED
    assert "failing registration: ValueError: no settings today" in str(info.error)
    assert _test_only(catalyst_plugin_manager.projections()) == []


def test_allow_and_deny_lists_disable_plugins_by_name(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    source = {"mod_{0}": "from catalyst_kernel.plugins import hookimpl\n"}
    eps = []
    for name in ("alpha", "beta", "gamma"):
        eps += make_distribution(
            f"catalyst-{name}",
            {name: f"mod_{name}"},
            {k.format(name): v for k, v in source.items()},
        )
    denied = PluginManager(catalyst_settings(plugin_deny=["beta"])).load(entry_points=eps)
    assert set(denied.loaded()) == {"alpha", "gamma", "core", "embedded", "dev"}
    statuses = {info.name: (info.status, info.error) for info in denied.plugins()}
    assert statuses["beta"] == (PluginStatus.DISABLED, "disabled by plugin_deny")

    allowed = PluginManager(catalyst_settings(plugin_allow=["alpha"])).load(entry_points=eps)
    assert set(allowed.loaded()) == {"alpha", "core", "embedded", "dev"}
    assert {i.name for i in allowed.plugins() if i.status is PluginStatus.DISABLED} == {
        "beta",
        "gamma",
    }


def test_a_distribution_listed_twice_loads_once(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    eps = make_distribution(
        "catalyst-twice",
        {"twice": "twice_mod"},
        {
            "twice_mod": """
            from catalyst_kernel.plugins import hookimpl
            LOADS = []
            LOADS.append(1)

            @hookimpl
            def catalyst_projections(ctx):
                return []
            """
        },
    )
    manager = PluginManager(catalyst_settings()).load(entry_points=eps + eps)
    assert [info.name for info in manager.plugins()].count("twice") == 1
    assert manager.errors() == ()
    import twice_mod  # type: ignore[import-not-found]

    assert twice_mod.LOADS == [1]


def test_one_name_from_two_distributions_is_a_conflict(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    first = make_distribution("catalyst-one", {"same": "one_mod"}, {"one_mod": ""})
    second = make_distribution("catalyst-two", {"same": "two_mod"}, {"two_mod": ""})
    manager = PluginManager(catalyst_settings()).load(entry_points=first + second)
    (error,) = manager.errors()
    assert error.distribution == "catalyst-two"
    assert "already taken by catalyst-one" in str(error.error)
    loaded = {i.name: i for i in manager.plugins() if i.status is PluginStatus.LOADED}
    assert loaded["same"].distribution == "catalyst-one"


def test_a_third_party_cannot_take_a_built_in_name(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    eps = make_distribution("catalyst-impostor", {"embedded": "impostor_mod"}, {"impostor_mod": ""})
    manager = PluginManager(catalyst_settings()).load(entry_points=eps)
    (error,) = manager.errors()
    assert "already taken by catalyst-kernel" in str(error.error)


def test_invalid_entry_point_names_are_refused(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    eps = make_distribution("catalyst-shouty", {"Shouty": "shouty_mod"}, {"shouty_mod": ""})
    (error,) = PluginManager(catalyst_settings()).load(entry_points=eps).errors()
    assert "plugin name 'Shouty'" in str(error.error)


# -------------------------------------------------------------------------------------------------
# Plugin settings
# -------------------------------------------------------------------------------------------------


@frozen
class ExampleSettings:
    url: str = "http://localhost"
    retries: int = 3


def test_plugin_settings_are_structured_and_passed_in_the_context(
    catalyst_settings: Callable[..., Settings],
) -> None:
    seen: list[HookContext] = []

    def projections(ctx: HookContext) -> list[Any]:
        seen.append(ctx)
        return []

    manager = PluginManager(
        catalyst_settings(plugins={"configured": {"url": "http://idp", "retries": 5}})
    ).load(entry_points=())
    manager.register(
        Plugin(
            catalyst_plugin_settings=lambda ctx: ExampleSettings, catalyst_projections=projections
        ),
        "configured",
    )
    manager.projections()
    (ctx,) = seen
    assert ctx.plugin_name == "configured"
    assert ctx.plugin_settings == ExampleSettings("http://idp", 5)
    assert ctx.data_dir == manager.settings.data_dir / "plugins" / "configured"


def test_bad_plugin_settings_name_the_key(catalyst_settings: Callable[..., Settings]) -> None:
    manager = PluginManager(
        catalyst_settings(plugins={"configured": {"retries": "x", "colour": 1}})
    )
    manager.load(entry_points=())
    with pytest.raises(SettingsError) as caught:
        manager.register(Plugin(catalyst_plugin_settings=lambda ctx: ExampleSettings), "configured")
    message = str(caught.value)
    assert "settings key plugins.configured.colour" in message
    assert "settings key plugins.configured.retries" in message
    assert "configured" not in manager.loaded()


def test_a_settings_table_for_a_plugin_without_settings_is_an_error(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(plugins={"plain": {"x": 1}})).load(entry_points=())
    with pytest.raises(SettingsError, match="plugin 'plain' takes no settings"):
        manager.register(Plugin(catalyst_projections=lambda ctx: []), "plain")


def test_a_settings_table_for_an_absent_plugin_is_an_error(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(plugins={"ghost": {}})).load(entry_points=())
    with pytest.raises(SettingsError, match="no plugin named 'ghost' is installed") as caught:
        manager.check_settings()
    assert caught.value.field == "plugins.ghost"


# -------------------------------------------------------------------------------------------------
# Slot selection
# -------------------------------------------------------------------------------------------------


def test_selecting_a_plugin_that_is_not_installed_is_a_clear_startup_error(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(providers={"spine": "nats"})).load(entry_points=())
    selection = manager.selection(Slot.SPINE)
    assert not selection.available
    with pytest.raises(PluginError) as caught:
        manager.check_providers([Slot.SPINE])
    message = str(caught.value)
    assert "providers.spine selects plugin 'nats', which is not installed" in message
    assert "installed: core, dev, embedded" in message
    with pytest.raises(PluginError, match="not installed"):
        manager.spine()


def test_a_selected_plugin_without_the_slot_is_reported(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(providers={"committer": "plain"})).load(
        entry_points=()
    )
    manager.register(Plugin(catalyst_projections=lambda ctx: []), "plain")
    with pytest.raises(PluginError, match="does not provide the committer slot"):
        manager.committer()


def test_a_disabled_selected_plugin_says_so(
    catalyst_settings: Callable[..., Settings], make_distribution: MakeDistribution
) -> None:
    eps = make_distribution("catalyst-nats-x", {"natsx": "natsx_mod"}, {"natsx_mod": ""})
    settings = catalyst_settings(providers={"spine": "natsx"}, plugin_deny=["natsx"])
    manager = PluginManager(settings).load(entry_points=eps)
    assert "which is disabled: disabled by plugin_deny" in str(manager.selection(Slot.SPINE).reason)


def test_keycloak_topology_selects_the_identity_plugin(
    catalyst_settings: Callable[..., Settings],
) -> None:
    per_org = stub(IdentityProvider)
    shared = stub(IdentityProvider)
    for topology, expected in (("per-organization", per_org), ("shared-sovereign", shared)):
        settings = catalyst_settings(keycloak_topology=topology, providers={"identity": "keycloak"})
        manager = PluginManager(settings).load(entry_points=())
        manager.register(Plugin(catalyst_identity=lambda ctx: per_org), "keycloak-per-organization")
        manager.register(Plugin(catalyst_identity=lambda ctx: shared), "keycloak-shared-sovereign")
        assert manager.provider_name(Slot.IDENTITY) == f"keycloak-{topology}"
        assert manager.identity() is expected


def test_a_provider_of_the_wrong_type_is_a_plugin_error(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(providers={"spine": "liar"})).load(entry_points=())
    manager.register(Plugin(catalyst_spine=lambda ctx: object()), "liar")
    with pytest.raises(PluginError, match="which is not a Spine"):
        manager.spine()


def test_a_provider_factory_that_raises_is_a_plugin_error(
    catalyst_settings: Callable[..., Settings],
) -> None:
    def fail(ctx: HookContext) -> Any:
        raise ConnectionError("server down")

    manager = PluginManager(catalyst_settings(providers={"spine": "flaky"})).load(entry_points=())
    manager.register(Plugin(catalyst_spine=fail), "flaky")
    with pytest.raises(PluginError, match="failed to provide the spine slot: ConnectionError"):
        manager.spine()


# -------------------------------------------------------------------------------------------------
# Additive hooks
# -------------------------------------------------------------------------------------------------


def test_additive_results_follow_plugin_names_not_registration_order(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    for plugin_name in ("zulu", "alpha", "mike"):
        catalyst_register(
            Plugin(
                catalyst_manifest_composers=lambda ctx: [
                    stub(ManifestComposer, name=f"composer-{ctx.plugin_name}"),
                    stub(ManifestComposer, name="shared"),
                ]
            ),
            plugin_name,
        )
    assert _names(_test_only(catalyst_plugin_manager.manifest_composers())) == [
        "composer-alpha",
        "composer-mike",
        "composer-zulu",
        "shared",
        "shared",
        "shared",
    ]


def test_a_failing_additive_hook_removes_everything_the_plugin_registered(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    def fail(ctx: HookContext) -> Any:
        raise RuntimeError("cannot start")

    catalyst_register(
        Plugin(
            catalyst_projections=lambda ctx: [stub(Projection, name="p")],
            catalyst_event_sources=fail,
        ),
        "flaky",
    )
    catalyst_register(Plugin(catalyst_projections=lambda ctx: [stub(Projection, name="q")]), "ok")
    assert _names(_test_only(catalyst_plugin_manager.projections())) == ["p", "q"]
    assert catalyst_plugin_manager.event_sources() == []
    assert _names(_test_only(catalyst_plugin_manager.projections())) == ["q"]
    (error,) = catalyst_plugin_manager.errors()
    assert error.name == "flaky"
    assert "catalyst_event_sources raised RuntimeError: cannot start" in str(error.error)


def test_a_failing_additive_hook_is_fatal_in_strict_mode(
    catalyst_settings: Callable[..., Settings],
) -> None:
    manager = PluginManager(catalyst_settings(), strict=True).load(entry_points=())
    manager.register(Plugin(catalyst_projections=lambda ctx: [object()]), "junk")
    with pytest.raises(PluginError, match="is not a Projection"):
        manager.projections()


def test_a_duplicate_rule_kind_fails_the_later_plugin(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    catalyst_register(
        Plugin(catalyst_policy_rule_kinds=lambda ctx: [stub(RuleKind, kind="business-hours")]),
        "first",
    )
    catalyst_register(
        Plugin(
            catalyst_policy_rule_kinds=lambda ctx: [
                stub(RuleKind, kind="extra"),
                stub(RuleKind, kind="business-hours"),
            ]
        ),
        "second",
    )
    kinds = catalyst_plugin_manager.policy_rule_kinds()
    assert "business-hours" in kinds
    assert "extra" not in kinds
    (error,) = catalyst_plugin_manager.errors()
    assert error.name == "second"
    assert "rule kind 'business-hours' is already registered by plugin 'first'" in str(error.error)


# -------------------------------------------------------------------------------------------------
# One test per hookspec (tests/test_meta.py checks that each exists)
# -------------------------------------------------------------------------------------------------


def _single_provider(
    catalyst_settings: Callable[..., Settings], slot: Slot, hook: str, interface: type
) -> tuple[Any, PluginManager]:
    provider = stub(interface)
    manager = PluginManager(catalyst_settings(providers={slot.value: "custom"})).load(
        entry_points=()
    )
    manager.register(Plugin(**{hook: lambda ctx: provider}), "custom")
    assert manager.selection(slot).available
    assert_implements(provider, interface)
    return provider, manager


def test_hook_catalyst_plugin_settings(catalyst_settings: Callable[..., Settings]) -> None:
    manager = PluginManager(catalyst_settings(plugins={"configured": {"retries": 1}}))
    manager.load(entry_points=())
    manager.register(Plugin(catalyst_plugin_settings=lambda ctx: ExampleSettings), "configured")
    assert manager.plugin_settings("configured") == ExampleSettings(retries=1)
    assert "settings" in {i.name: i for i in manager.plugins()}["configured"].provides


def test_hook_catalyst_spine(catalyst_settings: Callable[..., Settings]) -> None:
    provider, manager = _single_provider(catalyst_settings, Slot.SPINE, "catalyst_spine", Spine)
    assert manager.spine() is provider
    assert manager.spine() is provider  # created once


def test_hook_catalyst_committer(catalyst_settings: Callable[..., Settings]) -> None:
    provider, manager = _single_provider(
        catalyst_settings, Slot.COMMITTER, "catalyst_committer", Committer
    )
    assert manager.committer() is provider


def test_hook_catalyst_identity(catalyst_settings: Callable[..., Settings]) -> None:
    provider, manager = _single_provider(
        catalyst_settings, Slot.IDENTITY, "catalyst_identity", IdentityProvider
    )
    assert manager.identity() is provider


def test_hook_catalyst_secrets(catalyst_settings: Callable[..., Settings]) -> None:
    provider, manager = _single_provider(
        catalyst_settings, Slot.SECRETS, "catalyst_secrets", SecretBackend
    )
    assert manager.secrets() is provider


def test_hook_catalyst_event_sources(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    source = stub(EventSource, name="informer")
    catalyst_register(Plugin(catalyst_event_sources=lambda ctx: [source]), "k8s")
    assert catalyst_plugin_manager.event_sources() == [source]


def test_hook_catalyst_projections(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    catalyst_register(
        Plugin(
            catalyst_projections=lambda ctx: [
                stub(Projection, name="b"),
                stub(Projection, name="a"),
            ]
        ),
        "proj",
    )
    assert _names(_test_only(catalyst_plugin_manager.projections())) == ["a", "b"]


def test_hook_catalyst_manifest_composers(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    composer = stub(ManifestComposer, name="helm")
    catalyst_register(Plugin(catalyst_manifest_composers=lambda ctx: (composer,)), "helm")
    assert _test_only(catalyst_plugin_manager.manifest_composers()) == [composer]


def test_hook_catalyst_policy_rule_kinds(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    rule_kind = stub(RuleKind, kind="business-hours")
    catalyst_register(Plugin(catalyst_policy_rule_kinds=lambda ctx: [rule_kind]), "hours")
    kinds = catalyst_plugin_manager.policy_rule_kinds()
    assert kinds["business-hours"] is rule_kind
    assert {"pr-required", "soak", "change-window", "freeze"} <= set(kinds)


def test_hook_catalyst_api_extensions(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    extension = stub(ApiExtension, name="webhooks")
    catalyst_register(Plugin(catalyst_api_extensions=lambda ctx: [extension]), "hooks")
    assert catalyst_plugin_manager.api_extensions() == [extension]


def test_hook_catalyst_lifecycle(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    handlers = [stub(LifecycleHandler), stub(LifecycleHandler)]
    catalyst_register(Plugin(catalyst_lifecycle=lambda ctx: handlers[1:]), "zz")
    catalyst_register(Plugin(catalyst_lifecycle=lambda ctx: handlers[:1]), "aa")
    assert catalyst_plugin_manager.lifecycle_handlers() == handlers


def test_hook_catalyst_cli_commands(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    import click

    @click.command(name="hello")
    def hello() -> None:
        click.echo("hi")

    @click.command(name="plugins")
    def shadow() -> None:
        """Would hide the kernel's command."""

    catalyst_register(Plugin(catalyst_cli_commands=lambda ctx: [hello]), "greeter")
    catalyst_register(Plugin(catalyst_cli_commands=lambda ctx: [shadow]), "shadow")
    commands = catalyst_plugin_manager.cli_commands_except(frozenset({"plugins"}))
    assert commands == {"hello": hello}
    (error,) = catalyst_plugin_manager.errors()
    assert error.name == "shadow"
    assert "command 'plugins' is already provided by the kernel" in str(error.error)


def test_hooks_may_omit_the_context(
    catalyst_register: Register, catalyst_plugin_manager: PluginManager
) -> None:
    source = stub(EventSource, name="bare")
    catalyst_register(Plugin(catalyst_event_sources=lambda: [source]), "bare")
    assert catalyst_plugin_manager.event_sources() == [source]


def test_register_fixture_unregisters_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from catalyst_kernel.plugins import hookimpl

        class P:
            @hookimpl
            def catalyst_projections(self, ctx):
                return []

        MANAGERS = []

        def test_register(catalyst_register, catalyst_plugin_manager):
            catalyst_register(P(), "temp")
            assert "temp" in catalyst_plugin_manager.loaded()
            MANAGERS.append(catalyst_plugin_manager)

        def test_after():
            (manager,) = MANAGERS
            assert "temp" not in manager.loaded()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_nothing_is_shared_between_managers(catalyst_settings: Callable[..., Settings]) -> None:
    first = PluginManager(catalyst_settings()).load(entry_points=())
    first.register(Plugin(catalyst_projections=lambda ctx: []), "only-first")
    second = PluginManager(catalyst_settings()).load(entry_points=())
    assert "only-first" not in second.loaded()
