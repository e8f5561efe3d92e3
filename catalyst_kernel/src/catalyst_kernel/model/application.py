"""An Application: one installed instance of a Blueprint in an Environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import field, frozen

from catalyst_kernel.model.blueprint import SizingOverlay
from catalyst_kernel.model.names import (
    check_application_name,
    check_blueprint_name,
    check_environment_name,
    check_semver,
)
from catalyst_kernel.model.validators import name_rule

__all__ = ["Application"]


def _dependency_targets(
    _instance: Any, _attribute: attrs.Attribute[Any], value: Mapping[str, str]
) -> None:
    for target in value.values():
        check_application_name(target)


def _secret_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names)))


@frozen
class Application:
    """What the Environment repository holds for one Application.

    ``dependencies`` maps each dependency alias of the Blueprint to the Application that serves it.
    ``secrets`` names the secrets it reads from the secret backend (at
    ``org/<org>/env/<type>/<name>/<secret>``); their values are never here.
    ``secrets_revision`` (``secretsRevision`` in the record) is an opaque id (a random UUID, never
    derived from a value) that changes whenever Catalyst writes new values for those secrets, so
    a rotation is a visible commit; ``None`` while nothing was written.
    """

    name: str = field(validator=name_rule(check_application_name))
    environment: str = field(validator=name_rule(check_environment_name))
    blueprint: str = field(validator=name_rule(check_blueprint_name))
    version: str = field(validator=name_rule(check_semver))
    config: Mapping[str, Any] = field(factory=dict)
    overlay: SizingOverlay | None = None
    dependencies: Mapping[str, str] = field(factory=dict, validator=_dependency_targets)
    secrets: tuple[str, ...] = field(default=(), converter=_secret_names)
    secrets_revision: str | None = None
