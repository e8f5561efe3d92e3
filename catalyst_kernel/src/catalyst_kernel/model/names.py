"""The naming rules of SPEC §4, enforced wherever a name enters the system.

Every check raises :class:`~catalyst_kernel.errors.InvalidName` whose ``rule`` is a stable
identifier (``organization.pattern``, ``application.length`` …) and whose message quotes the rule
in words, so a user reading one line knows what to change.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from semantic_version import Version

from catalyst_kernel.errors import InvalidName

__all__ = [
    "APPLICATION_MAX_LENGTH",
    "EnvType",
    "check_application_name",
    "check_blueprint_name",
    "check_dns_label",
    "check_env_type",
    "check_environment_name",
    "check_organization_name",
    "check_plugin_name",
    "check_semver",
    "dependency_application_name",
    "split_environment_name",
]


class EnvType(enum.StrEnum):
    """The Environment types; only the short codes are valid (``staging`` is not)."""

    PROD = "prod"
    STG = "stg"
    UAT = "uat"
    DEV = "dev"
    POC = "poc"


ORGANIZATION_PATTERN: Final = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
ORGANIZATION_MIN_LENGTH: Final = 3
ORGANIZATION_MAX_LENGTH: Final = 32
ORGANIZATION_RESERVED: Final = frozenset(
    {
        "system",
        "flux",
        "flux-system",
        "crossplane",
        "catalyst",
        "gitea",
        "catalog",
        "catalog-sovereign",
        *(t.value for t in EnvType),
    }
)
ORGANIZATION_RESERVED_PREFIXES: Final = ("kube-",)

DNS_LABEL_PATTERN: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS_LABEL_MAX_LENGTH: Final = 63
APPLICATION_MAX_LENGTH: Final = 53
APPLICATION_RESERVED: Final = frozenset({"flux-system", "shared-blueprints", "runbooks"})
BLUEPRINT_PREFIX: Final = "bp-"
PLUGIN_PATTERN: Final = re.compile(r"[a-z][a-z0-9]*([-_][a-z0-9]+)*")


def _describe(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} (not a string)"


def _require_str(value: object, what: str, rule: str) -> str:
    if not isinstance(value, str):
        raise InvalidName(f"{what} name must be a string, got {_describe(value)}", rule=rule)
    return value


def check_organization_name(value: object) -> str:
    """Return ``value`` if it is a valid Organization name, else raise :class:`InvalidName`."""
    name = _require_str(value, "Organization", "organization.type")
    if not ORGANIZATION_MIN_LENGTH <= len(name) <= ORGANIZATION_MAX_LENGTH:
        raise InvalidName(
            f"Organization name {name!r} is {len(name)} characters long; it must be "
            f"{ORGANIZATION_MIN_LENGTH} to {ORGANIZATION_MAX_LENGTH} characters",
            rule="organization.length",
        )
    if not ORGANIZATION_PATTERN.fullmatch(name):
        raise InvalidName(
            f"Organization name {name!r} must be lower-case letters and digits in words joined by "
            "single hyphens, starting with a letter (pattern ^[a-z][a-z0-9]*(-[a-z0-9]+)*$)",
            rule="organization.pattern",
        )
    if name in ORGANIZATION_RESERVED or name.startswith(ORGANIZATION_RESERVED_PREFIXES):
        raise InvalidName(
            f"Organization name {name!r} is reserved (reserved: "
            f"{', '.join(sorted(ORGANIZATION_RESERVED))}, kube-*)",
            rule="organization.reserved",
        )
    return name


def check_env_type(value: object) -> EnvType:
    """Return the :class:`EnvType` for ``value`` (``prod``, ``stg``, ``uat``, ``dev``, ``poc``)."""
    for env_type in EnvType:
        if value == env_type.value:
            return env_type
    raise InvalidName(
        f"env_type {value!r} is not one of {', '.join(t.value for t in EnvType)} "
        "(short forms only: 'staging' is 'stg')",
        rule="environment.env-type",
    )


def split_environment_name(value: object) -> tuple[str, EnvType]:
    """Split an Environment name ``{org}-{env_type}`` on its last hyphen and check both parts."""
    name = _require_str(value, "Environment", "environment.type")
    org, sep, env_type = name.rpartition("-")
    if not sep:
        raise InvalidName(
            f"Environment name {name!r} must be '{{organization}}-{{env_type}}', e.g. 'acme-prod'",
            rule="environment.format",
        )
    try:
        kind = check_env_type(env_type)
    except InvalidName as exc:
        raise InvalidName(f"Environment name {name!r}: {exc.message}", rule=exc.rule) from None
    try:
        check_organization_name(org)
    except InvalidName as exc:
        raise InvalidName(
            f"Environment name {name!r}: {exc.message}", rule=f"environment.{exc.rule}"
        ) from None
    return org, kind


def check_environment_name(value: object) -> str:
    """Return ``value`` if it is a valid Environment name (``acme-prod``), else raise."""
    split_environment_name(value)
    return str(value)


def check_dns_label(value: object, *, what: str = "Name", rule: str = "dns-label") -> str:
    """Return ``value`` if it is an RFC 1123 DNS label of at most 63 characters."""
    name = _require_str(value, what, f"{rule}.type")
    if not DNS_LABEL_PATTERN.fullmatch(name):
        raise InvalidName(
            f"{what} name {name!r} must be a DNS label: lower-case letters, digits and hyphens, "
            "starting with a letter and ending with a letter or digit "
            "(pattern ^[a-z]([-a-z0-9]*[a-z0-9])?$)",
            rule=f"{rule}.pattern",
        )
    if len(name) > DNS_LABEL_MAX_LENGTH:
        raise InvalidName(
            f"{what} name {name!r} is {len(name)} characters long; "
            f"a DNS label has at most {DNS_LABEL_MAX_LENGTH}",
            rule=f"{rule}.length",
        )
    return name


def check_application_name(value: object) -> str:
    """Return ``value`` if it is a valid Application name, else raise :class:`InvalidName`."""
    name = _require_str(value, "Application", "application.type")
    if len(name) > APPLICATION_MAX_LENGTH:
        raise InvalidName(
            f"Application name {name!r} is {len(name)} characters long; "
            f"it must be at most {APPLICATION_MAX_LENGTH}",
            rule="application.length",
        )
    check_dns_label(name, what="Application", rule="application")
    if name in APPLICATION_RESERVED:
        raise InvalidName(
            f"Application name {name!r} is reserved "
            f"(reserved: {', '.join(sorted(APPLICATION_RESERVED))})",
            rule="application.reserved",
        )
    return name


def check_blueprint_name(value: object) -> str:
    """Return ``value`` if it is ``bp-<dns label>``, else raise :class:`InvalidName`."""
    name = _require_str(value, "Blueprint", "blueprint.type")
    if not name.startswith(BLUEPRINT_PREFIX):
        raise InvalidName(
            f"Blueprint name {name!r} must start with {BLUEPRINT_PREFIX!r}, e.g. 'bp-wordpress'",
            rule="blueprint.prefix",
        )
    check_dns_label(name[len(BLUEPRINT_PREFIX) :], what="Blueprint", rule="blueprint")
    return name


def dependency_application_name(application: str, blueprint: str) -> str:
    """Name of the Application auto-created for a dependency: ``{app}-{blueprint without bp-}``."""
    return check_application_name(f"{application}-{blueprint.removeprefix(BLUEPRINT_PREFIX)}")


def check_semver(value: object, *, what: str = "version") -> str:
    """Return ``value`` if it is a SemVer 2.0 version (``1.4.0``, ``2.0.0-rc.1+build.5``)."""
    text = _require_str(value, what.capitalize(), "semver.type")
    try:
        if not text.isascii() or text != text.strip():
            raise ValueError(text)
        Version(text)
    except ValueError:
        raise InvalidName(
            f"{what} {text!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])",
            rule="semver",
        ) from None
    return text


def check_plugin_name(value: object) -> str:
    """Return ``value`` if it can name a plugin (``nats``, ``keycloak-shared-sovereign``)."""
    name = _require_str(value, "Plugin", "plugin.type")
    if not PLUGIN_PATTERN.fullmatch(name):
        raise InvalidName(
            f"plugin name {name!r} must be lower-case letters and digits joined by '-' or '_'",
            rule="plugin.pattern",
        )
    return name
