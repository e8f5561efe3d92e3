"""The ``dev`` built-in plugin: the development identity provider (locally signed JWTs).

It is the default for ``providers.identity`` and is configured by the ``[plugins.dev]`` table.
The signing key lives in ``<data_dir>/identity/dev-signing-key.pem`` unless ``key_file`` puts it
elsewhere; ``catalyst token`` mints tokens with the same key. Not for production.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.identity.dev import (
    ALGORITHMS,
    DEFAULT_AUDIENCE,
    DevIdentityProvider,
    default_issuer,
    parse_ttl,
)
from catalyst_kernel.plugins.markers import hookimpl

if TYPE_CHECKING:
    from catalyst_kernel.plugins.context import HookContext


def _ttl(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    try:
        parse_ttl(value)
    except InvalidInput as exc:
        raise InvalidInput(str(exc), field=attribute.name) from None


def _non_empty(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not value.strip():
        raise InvalidInput(f"{attribute.name} must not be empty", field=attribute.name)


def _algorithm(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ALGORITHMS:
        raise InvalidInput(
            f"{attribute.name} must be one of {', '.join(ALGORITHMS)}, got {value!r}",
            field=attribute.name,
        )


def _at_least(low: float) -> Any:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if value < low:
            raise InvalidInput(f"{attribute.name} must be at least {low}", field=attribute.name)

    return validate


@frozen
class DevSettings:
    """``[plugins.dev]``.

    :ivar issuer: the ``iss`` of tokens (default ``catalyst-dev://<sovereign>``).
    :ivar audience: the ``aud`` of tokens.
    :ivar key_file: the private signing key (default ``<data_dir>/identity/dev-signing-key.pem``).
    :ivar algorithm: ``ES256`` or ``EdDSA``; tokens of any other algorithm are refused.
    :ivar token_ttl: the lifetime ``catalyst token`` gives unless ``--ttl`` says otherwise
        (``30s``, ``15m``, ``2h``; at most ``24h``).
    :ivar leeway: seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    :ivar rotation_grace: how long a retired key still verifies tokens (``24h`` by default, the
        longest token lifetime).
    :ivar rotation_keep: how many retired keys are kept at most.
    """

    issuer: str | None = field(default=None, validator=_non_empty)
    audience: str = field(default=DEFAULT_AUDIENCE, validator=_non_empty)
    key_file: Path | None = None
    algorithm: str = field(default="ES256", validator=_algorithm)
    token_ttl: str = field(default="15m", validator=_ttl)
    leeway: float = field(default=30.0, validator=_at_least(0))
    rotation_grace: str = field(default="24h", validator=_ttl)
    rotation_keep: int = field(default=3, validator=_at_least(1))


@hookimpl
def catalyst_plugin_settings(ctx: HookContext) -> type:
    return DevSettings


@hookimpl
def catalyst_identity(ctx: HookContext) -> DevIdentityProvider:
    settings: DevSettings = ctx.plugin_settings
    key_file = settings.key_file or ctx.settings.data_dir / "identity" / "dev-signing-key.pem"
    return DevIdentityProvider(
        key_file,
        issuer=settings.issuer or default_issuer(ctx.settings.sovereign),
        audience=settings.audience,
        algorithm="EdDSA" if settings.algorithm == "EdDSA" else "ES256",
        default_ttl=parse_ttl(settings.token_ttl),
        leeway=timedelta(seconds=settings.leeway),
        rotation_grace=parse_ttl(settings.rotation_grace),
        rotation_keep=settings.rotation_keep,
    )
