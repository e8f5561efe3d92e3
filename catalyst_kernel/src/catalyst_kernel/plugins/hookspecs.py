"""Hook specifications: every extension point of Catalyst, in one module.

Hooks are synchronous and only *register* objects; the objects carry the behaviour and their I/O
methods are ``async``. Every hook takes one argument, ``ctx`` (a
:class:`~catalyst_kernel.plugins.context.HookContext`), so fields can be added without breaking
plugins; an implementation may also omit it.

Single-provider slots (spine, committer, identity, secrets) are called only on the plugin the
settings select for that slot. Additive hooks are called on every plugin, one at a time, and their
results are ordered by plugin name — never by pluggy's call order. A plugin whose hook raises is
reported by name and unregistered (strict mode makes that fatal).

Implement a hook with :data:`catalyst_kernel.plugins.hookimpl`::

    from catalyst_kernel.plugins import hookimpl

    @hookimpl
    def catalyst_event_sources(ctx):
        return [MySource(ctx.plugin_settings)]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.plugins.markers import hookspec

if TYPE_CHECKING:
    from collections.abc import Iterable

    import click

    from catalyst_kernel.api.extension import ApiExtension
    from catalyst_kernel.identity.provider import IdentityProvider
    from catalyst_kernel.plugins.context import HookContext
    from catalyst_kernel.plugins.lifecycle import LifecycleHandler
    from catalyst_kernel.promotion.rules import RuleKind
    from catalyst_kernel.provisioning.committer import Committer
    from catalyst_kernel.provisioning.composer import ManifestComposer
    from catalyst_kernel.readside.projection import Projection
    from catalyst_kernel.readside.sources import EventSource
    from catalyst_kernel.readside.spine import Spine
    from catalyst_kernel.secrets.backend import SecretBackend


# -------------------------------------------------------------------------------------------------
# Configuration
# -------------------------------------------------------------------------------------------------


@hookspec
def catalyst_plugin_settings(ctx: HookContext) -> type | None:
    """Declare the attrs class of the plugin's ``[plugins.<name>]`` settings table.

    Called once per plugin right after it is registered; ``ctx.plugin_settings`` is ``None``
    here. The kernel structures the table (or ``CATALYST_PLUGINS__<NAME>__<KEY>`` variables) into
    the class, rejecting unknown keys and bad values with an error that names
    ``plugins.<name>.<key>``, and passes the instance to every later hook as
    ``ctx.plugin_settings``.

    :param ctx: the hook context.
    :return: an attrs class whose every field has a default, or ``None`` for a plugin without
        settings (a settings table for it is then an error).
    """


# -------------------------------------------------------------------------------------------------
# Single-provider slots: called only on the plugin selected by ``providers.<slot>``
# -------------------------------------------------------------------------------------------------


@hookspec
def catalyst_spine(ctx: HookContext) -> Spine | None:
    """Provide the spine: the event log and the per-Environment KV read model.

    Called on the plugin named by ``providers.spine`` (default ``embedded``) when the spine is
    first needed. The host calls the object's ``start()`` before use and ``close()`` at shutdown.

    :param ctx: the hook context.
    :return: a :class:`~catalyst_kernel.readside.spine.Spine`, or ``None`` if this plugin has none
        (selecting it is then a startup error).
    """


@hookspec
def catalyst_committer(ctx: HookContext) -> Committer | None:
    """Provide the committer: Environment repositories, commits and change requests.

    Called on the plugin named by ``providers.committer`` (default ``embedded``).

    :param ctx: the hook context.
    :return: a :class:`~catalyst_kernel.provisioning.committer.Committer`, or ``None``.
    """


@hookspec
def catalyst_identity(ctx: HookContext) -> IdentityProvider | None:
    """Provide the identity provider that turns bearer tokens into Principals.

    Called on the plugin named by ``providers.identity`` (default ``dev``). The value
    ``keycloak`` selects ``keycloak-<keycloak_topology>``, so the Keycloak topology is plugin
    selection and nothing else branches on it.

    :param ctx: the hook context.
    :return: an :class:`~catalyst_kernel.identity.provider.IdentityProvider`, or ``None``.
    """


@hookspec
def catalyst_secrets(ctx: HookContext) -> SecretBackend | None:
    """Provide the secret backend where secret values live (never Git).

    Called on the plugin named by ``providers.secrets`` (default ``embedded``).

    :param ctx: the hook context.
    :return: a :class:`~catalyst_kernel.secrets.backend.SecretBackend`, or ``None``.
    """


# -------------------------------------------------------------------------------------------------
# Additive slots: called on every plugin, results ordered by plugin name
# -------------------------------------------------------------------------------------------------


@hookspec
def catalyst_event_sources(ctx: HookContext) -> Iterable[EventSource] | None:
    """Register event sources: long-running producers of CloudEvents (informers, watchers).

    The host runs each source's ``run(publisher)`` in its own task and cancels it at shutdown.

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.readside.sources.EventSource` objects.
    """


@hookspec
def catalyst_projections(ctx: HookContext) -> Iterable[Projection] | None:
    """Register projections that derive KV state from events.

    The projector applies them in the order of (projection name, plugin name).

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.readside.projection.Projection` objects.
    """


@hookspec
def catalyst_manifest_composers(ctx: HookContext) -> Iterable[ManifestComposer] | None:
    """Register manifest composers: what an installed Blueprint becomes in the repository.

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.provisioning.composer.ManifestComposer` objects.
    """


@hookspec
def catalyst_policy_rule_kinds(ctx: HookContext) -> Iterable[RuleKind] | None:
    """Register EnvironmentPolicy rule kinds (``pr-required``, ``soak``, your own).

    Two plugins registering the same ``kind`` is a plugin error for the later one (by name).

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.promotion.rules.RuleKind` objects.
    """


@hookspec
def catalyst_api_extensions(ctx: HookContext) -> Iterable[ApiExtension] | None:
    """Register routes the API service mounts (webhook receivers and the like).

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.api.extension.ApiExtension` objects.
    """


@hookspec
def catalyst_cli_commands(ctx: HookContext) -> Iterable[click.Command] | None:
    """Register ``catalyst`` subcommands (``catalyst nats accounts`` and the like).

    The commands are click commands or groups, added under their own names; a name that a
    kernel command or an earlier plugin already uses fails the later plugin.

    :param ctx: the hook context.
    :return: the plugin's :class:`click.Command` objects.
    """


# -------------------------------------------------------------------------------------------------
# Lifecycle
# -------------------------------------------------------------------------------------------------


@hookspec
def catalyst_lifecycle(ctx: HookContext) -> Iterable[LifecycleHandler] | None:
    """Register code to run at service startup and shutdown.

    Handlers start in plugin-name order after the providers have started and stop in reverse
    order. A handler whose ``startup()`` raises marks its plugin as failed.

    :param ctx: the hook context.
    :return: the plugin's :class:`~catalyst_kernel.plugins.lifecycle.LifecycleHandler` objects.
    """
