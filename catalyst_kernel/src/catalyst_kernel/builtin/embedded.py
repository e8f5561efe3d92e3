"""The ``embedded`` built-in plugin: server-less providers for single-node use and tests.

It is the default for ``providers.spine``, ``providers.committer`` and ``providers.secrets``, and
is configured by the ``[plugins.embedded]`` table. Providers that have not landed yet (the
committer and the secret store) are reported by ``catalyst plugins`` as selected but not
provided.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.plugins.markers import hookimpl
from catalyst_kernel.readside.sqlite_spine import SqliteSpine

if TYPE_CHECKING:
    from catalyst_kernel.plugins.context import HookContext


def _between(low: float, high: float) -> Any:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise InvalidInput(
                f"{attribute.name} must be between {low} and {high}, got {value}",
                field=attribute.name,
            )

    return validate


@frozen
class EmbeddedSettings:
    """``[plugins.embedded]``.

    :ivar spine_history: revisions kept per KV key (1-64, as JetStream).
    :ivar spine_poll_interval: seconds between looks for other processes' writes.
    :ivar spine_busy_timeout: seconds a write waits for another process's lock.
    """

    spine_history: int = field(default=64, validator=_between(1, 64))
    spine_poll_interval: float = field(default=0.2, validator=_between(0.001, 60))
    spine_busy_timeout: float = field(default=30.0, validator=_between(0.1, 600))


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    return EmbeddedSettings


@hookimpl
def catalyst_spine(ctx: HookContext) -> SqliteSpine:
    settings: EmbeddedSettings = ctx.plugin_settings
    return SqliteSpine(
        ctx.settings.data_dir / "spine" / "spine.db",
        history=settings.spine_history,
        poll_interval=settings.spine_poll_interval,
        busy_timeout=settings.spine_busy_timeout,
    )
