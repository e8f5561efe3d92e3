"""The plugin's settings: the ``[plugins.heartbeat]`` table of ``catalyst.toml``."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.model.validators import each


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise InvalidInput(f"{attribute.name} must be positive, got {value}", field=attribute.name)


@frozen
class HeartbeatSettings:
    """Every field has a default, so the plugin works with no settings table at all."""

    environments: tuple[str, ...] = field(default=(), validator=each(check_environment_name))
    interval_seconds: float = field(default=30.0, validator=_positive)
