"""The ``embedded`` built-in plugin: server-less providers for single-node use and tests.

It is the default for ``providers.spine``, ``providers.committer`` and ``providers.secrets``, and
is configured by the ``[plugins.embedded]`` table. Everything lives under ``data_dir``:
``spine/spine.db``, ``git/<org>/<environment>.git`` and ``secrets/`` (``secrets.db`` and, unless
``secrets_key_file`` puts it elsewhere, the key).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.plugins.markers import hookimpl
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.secrets.local_store import DEFAULT_TOKEN_SECRET, LocalSecretStore

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
    :ivar git_max_attempts: how often a commit is retried while other writers move the branch.
    :ivar git_lock_timeout: seconds a commit waits for another writer's lock; a Git ref lock
        older than this is taken for one left by a crash.
    :ivar git_fsync: fsync objects and refs (safe against power loss; process-wide in libgit2).
    :ivar git_committer_name: the Git committer of every commit (authors are the actors).
    :ivar git_committer_email: the committer's address; its domain also completes authors'.
    :ivar secrets_key_file: where the secret store's key lives (default
        ``<data_dir>/secrets/key``); put it on another volume than the data.
    :ivar secrets_history: versions the secret store keeps per secret.
    :ivar secrets_api_url: the Catalyst API URL in-cluster External Secrets Operators reach
        (default ``http://<host>:<port>``).
    :ivar secrets_token_secret: the Kubernetes Secret with their bearer token (key ``token``).
    """

    spine_history: int = field(default=64, validator=_between(1, 64))
    spine_poll_interval: float = field(default=0.2, validator=_between(0.001, 60))
    spine_busy_timeout: float = field(default=30.0, validator=_between(0.1, 600))
    git_max_attempts: int = field(default=10, validator=_between(1, 100))
    git_lock_timeout: float = field(default=10.0, validator=_between(0.1, 600))
    git_fsync: bool = True
    git_committer_name: str = "Catalyst"
    git_committer_email: str = "catalyst@localhost"
    secrets_key_file: Path | None = None
    secrets_history: int = field(default=10, validator=_between(1, 100))
    secrets_api_url: str | None = None
    secrets_token_secret: str = DEFAULT_TOKEN_SECRET


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


@hookimpl
def catalyst_committer(ctx: HookContext) -> GitCommitter:
    settings: EmbeddedSettings = ctx.plugin_settings
    return GitCommitter(
        ctx.settings.data_dir / "git",
        max_attempts=settings.git_max_attempts,
        lock_timeout=settings.git_lock_timeout,
        fsync=settings.git_fsync,
        committer_name=settings.git_committer_name,
        committer_email=settings.git_committer_email,
    )


@hookimpl
def catalyst_secrets(ctx: HookContext) -> LocalSecretStore:
    settings: EmbeddedSettings = ctx.plugin_settings
    api_url = settings.secrets_api_url or f"http://{ctx.settings.host}:{ctx.settings.port}"
    return LocalSecretStore(
        ctx.settings.data_dir / "secrets",
        key_file=settings.secrets_key_file,
        api_url=api_url,
        token_secret=settings.secrets_token_secret,
        history=settings.secrets_history,
    )
