"""The ``core`` built-in plugin: the kernel's additive behaviour, registered through the same
hooks third parties use (projections first; composers, rule kinds and event sources follow).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.plugins.markers import hookimpl
from catalyst_kernel.promotion.kinds import builtin_rule_kinds
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.readside.projections import builtin_projections

if TYPE_CHECKING:
    from catalyst_kernel.plugins.context import HookContext
    from catalyst_kernel.promotion.rules import RuleKind
    from catalyst_kernel.provisioning.composer import ManifestComposer
    from catalyst_kernel.readside.projection import Projection


FLUX_WEBHOOK_SECRET_MIN_LENGTH: Final = 16
DEFAULT_FLUX_WEBHOOK_MAX_BODY: Final = 64 * 1024


def _webhook_secrets(
    _instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    # Messages name the Environment, never the secret.
    for environment, secret in value.items():
        check_environment_name(environment)
        if not isinstance(secret, str) or len(secret) < FLUX_WEBHOOK_SECRET_MIN_LENGTH:
            raise InvalidInput(
                f"{attribute.name}: the secret of Environment {environment!r} must be a string "
                f"of at least {FLUX_WEBHOOK_SECRET_MIN_LENGTH} characters",
                field=attribute.name,
            )


def _max_body(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1024 <= value <= 1024 * 1024:
        raise InvalidInput(
            f"{attribute.name} must be between 1024 and 1048576 bytes, got {value}",
            field=attribute.name,
        )


@frozen
class CoreSettings:
    """``[plugins.core]``.

    :ivar flux_webhook_secrets: Environment name → the HMAC secret of its Flux
        notification-controller ``generic-hmac`` Provider (the Provider secret's ``token``).
        ``POST /v1/webhooks/flux/{env}`` answers 404 for an Environment not listed here. Never
        shown in ``repr`` or logs.
    :ivar flux_webhook_max_body: the largest notification accepted, in bytes (larger: 413).
    """

    flux_webhook_secrets: Mapping[str, str] = field(
        factory=dict, validator=_webhook_secrets, repr=False
    )
    flux_webhook_max_body: int = field(default=DEFAULT_FLUX_WEBHOOK_MAX_BODY, validator=_max_body)


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    """``[plugins.core]``: the Flux event receiver's secrets and body limit."""
    return CoreSettings


@hookimpl
def catalyst_projections(ctx: HookContext) -> list[Projection]:
    """Object state, Application status and the Application timeline."""
    return builtin_projections()


@hookimpl
def catalyst_manifest_composers(ctx: HookContext) -> list[ManifestComposer]:
    """Namespace, values, Helm chart or Kustomize base, Flux Kustomization, secrets, claims."""
    return builtin_composers()


@hookimpl
def catalyst_policy_rule_kinds(ctx: HookContext) -> list[RuleKind]:
    """``pr-required``, ``soak``, ``change-window`` and ``freeze`` (see ``docs/policy.md``)."""
    return builtin_rule_kinds()
