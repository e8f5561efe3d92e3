"""Settings: one typed object from ``catalyst.toml`` and ``CATALYST_*`` environment variables.

Precedence, lowest first: defaults, the TOML file, the environment, explicit overrides (CLI
flags). Environment variables are ``CATALYST_`` plus the key upper-cased, with ``__`` between
nesting levels (``CATALYST_PROVIDERS__SPINE=nats``, ``CATALYST_PLUGINS__NATS__SERVERS=...``).
Lists in the environment are comma-separated. ``CATALYST_CONFIG`` names the TOML file. Unknown
keys and bad values raise :class:`~catalyst_kernel.errors.SettingsError` naming the key and where
it came from.
"""

from __future__ import annotations

import enum
import os
import string
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
import platformdirs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput, SettingsError
from catalyst_kernel.model.convert import EnvText, structure
from catalyst_kernel.model.names import check_dns_label, check_plugin_name
from catalyst_kernel.model.tenancy import KeycloakTopology
from catalyst_kernel.model.validators import each, name_rule, non_empty
from catalyst_kernel.readside.fanout import DEFAULT_BUFFER_SIZE, DEFAULT_KEEPALIVE

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_MAX_BODY_SIZE",
    "ENV_PREFIX",
    "ApiSettings",
    "LogFormat",
    "LogLevel",
    "ObservabilitySettings",
    "PolicySettings",
    "ProviderSettings",
    "Settings",
    "load_settings",
]

ENV_PREFIX: Final = "CATALYST_"
CONFIG_ENV: Final = "CATALYST_CONFIG"
DEFAULT_CONFIG_FILE: Final = "catalyst.toml"
# Large enough for any Application settings document, small enough to refuse abuse cheaply.
DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
_MIN_BODY_SIZE: Final = 1024


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/catalyst`` (``~/.local/share/catalyst``) on Linux."""
    return platformdirs.user_data_path("catalyst")


def _sovereign_name(value: object) -> str:
    return check_dns_label(value, what="Sovereign", rule="sovereign")


def _port(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= 65535:
        raise InvalidInput(f"port must be 0..65535, got {value}", field=attribute.name)


def _plugin_sections(
    _instance: Any, attribute: attrs.Attribute[Any], value: Mapping[str, Any]
) -> None:
    for name, section in value.items():
        check_plugin_name(name)
        if not isinstance(section, Mapping):
            raise InvalidInput(
                f"[plugins.{name}] must be a table, got {section!r}", field=attribute.name
            )


def _url_template(_instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    unknown = fields - {"sovereign", "organization", "environment"}
    if unknown:
        raise InvalidInput(
            f"{attribute.name} may use {{sovereign}}, {{organization}} and {{environment}} only, "
            f"not {', '.join(sorted(unknown))}",
            field=attribute.name,
        )


def _at_least(minimum: int) -> Callable[[Any, attrs.Attribute[Any], float], None]:
    def validate(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not value >= minimum:
            raise InvalidInput(f"must be at least {minimum}, got {value}", field=attribute.name)

    return validate


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise InvalidInput(f"must be positive, got {value}", field=attribute.name)


def _http_url(_instance: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"expected an http:// or https:// URL, got {value!r}", field=attribute.name
        )


class LogFormat(enum.StrEnum):
    """How ``catalyst serve`` writes log records."""

    JSON = "json"
    """One JSON object per line (``timestamp``, ``level``, ``logger``, ``message``, extras)."""

    TEXT = "text"
    """One human-readable line per record."""


class LogLevel(enum.StrEnum):
    """The lowest level logged; written in any case (``INFO`` is ``info``)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @classmethod
    def _missing_(cls, value: object) -> LogLevel | None:
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None


@frozen
class ApiSettings:
    """The API service's limits (``[api]``)."""

    max_body_size: int = field(default=DEFAULT_MAX_BODY_SIZE, validator=_at_least(_MIN_BODY_SIZE))
    """Largest request body accepted, in bytes; larger ones get ``413``."""

    sse_keepalive: float = field(default=DEFAULT_KEEPALIVE, validator=_positive)
    """Seconds of silence on an event stream before a ``: keep-alive`` comment."""

    sse_buffer_size: int = field(default=DEFAULT_BUFFER_SIZE, validator=_at_least(1))
    """Entries buffered per event-stream subscriber before it is dropped as too slow."""

    graphql_max_depth: int = field(default=8, validator=_at_least(4))
    """Deepest nesting of selections a GraphQL operation may have (the schema's own deepest
    path is 4)."""

    graphql_max_aliases: int = field(default=16, validator=_at_least(0))
    """Most aliases per GraphQL operation: each alias of a list field is another read."""

    graphql_max_tokens: int = field(default=2000, validator=_at_least(200))
    """Most lexical tokens per GraphQL document (the standard introspection query has under
    200)."""


@frozen
class PolicySettings:
    """Evaluation of EnvironmentPolicy verdicts (``[policy]``)."""

    recheck_interval: float = field(default=60.0, validator=_positive)
    """Seconds between re-evaluations of every open change while verdicts are published (as
    Gitea's required check): a soak or change window that opens while nobody looks is seen
    within this."""

    evaluation_timeout: float = field(default=30.0, validator=_positive)
    """Seconds one change's background re-evaluation may take before it is abandoned (logged;
    the next round tries again)."""


@frozen
class ObservabilitySettings:
    """Logs and traces (``[observability]``); metrics need no settings."""

    log_format: LogFormat = LogFormat.JSON
    log_level: LogLevel = LogLevel.INFO
    otlp_endpoint: str | None = field(default=None, validator=_http_url)
    """Base URL of an OTLP/HTTP collector (traces go to ``<otlp_endpoint>/v1/traces``); unset,
    the standard ``OTEL_EXPORTER_OTLP_*ENDPOINT`` variables apply, and without them no traces."""

    service_name: str = field(default="catalyst", validator=non_empty)
    """The ``service.name`` resource attribute of every span."""


@frozen
class ProviderSettings:
    """The plugin that provides each single-provider slot.

    ``identity = "keycloak"`` means the Keycloak plugin of the configured ``keycloak_topology``.
    """

    spine: str = field(default="embedded", validator=name_rule(check_plugin_name))
    committer: str = field(default="embedded", validator=name_rule(check_plugin_name))
    identity: str = field(default="dev", validator=name_rule(check_plugin_name))
    secrets: str = field(default="embedded", validator=name_rule(check_plugin_name))


@frozen
class Settings:
    """Everything an operator configures. Key names are documented in ``docs/operator-guide.md``."""

    data_dir: Path = field(factory=default_data_dir)
    sovereign: str = field(default="local", validator=name_rule(_sovereign_name))
    host: str = "127.0.0.1"
    port: int = field(default=8000, validator=_port)
    keycloak_topology: KeycloakTopology = KeycloakTopology.PER_ORGANIZATION
    catalog_paths: tuple[Path, ...] = ()
    repository_url_template: str = field(
        default="https://git.{sovereign}.example/{organization}/{environment}.git",
        validator=_url_template,
    )
    providers: ProviderSettings = field(default=ProviderSettings())
    api: ApiSettings = field(default=ApiSettings())
    policy: PolicySettings = field(default=PolicySettings())
    observability: ObservabilitySettings = field(default=ObservabilitySettings())
    plugins: Mapping[str, Mapping[str, Any]] = field(factory=dict, validator=_plugin_sections)
    plugin_allow: tuple[str, ...] = field(default=(), validator=each(check_plugin_name))
    plugin_deny: tuple[str, ...] = field(default=(), validator=each(check_plugin_name))
    strict_plugins: bool = False

    @providers.validator
    def _topology_agrees(self, _attribute: attrs.Attribute[Any], value: ProviderSettings) -> None:
        # Topology is chosen by keycloak_topology alone; a contradicting plugin name is a mistake.
        chosen = f"keycloak-{self.keycloak_topology.value}"
        if value.identity.startswith("keycloak-") and value.identity != chosen:
            raise InvalidInput(
                f"providers.identity = {value.identity!r} contradicts keycloak_topology = "
                f"{self.keycloak_topology.value!r}; set providers.identity = 'keycloak' and choose "
                "the topology with keycloak_topology",
                field="providers",
            )

    def repository_url(self, organization: str, environment: str) -> str:
        """The URL Flux clones an Environment's repository from."""
        return self.repository_url_template.format(
            sovereign=self.sovereign, organization=organization, environment=environment
        )

    def plugin_section(self, name: str) -> Mapping[str, Any] | None:
        """The raw ``[plugins.<name>]`` table, if any."""
        return self.plugins.get(name)


def _env_layer(environ: Mapping[str, str], sources: dict[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable == CONFIG_ENV:
            continue
        parts = variable[len(ENV_PREFIX) :].lower().split("__")
        if not all(parts):
            raise SettingsError(
                f"environment variable {variable} has an empty key segment", field=variable
            )
        if parts[0] == "plugins" and len(parts) > 1:
            # Plugin names use '-' (keycloak-per-organization); variables cannot.
            parts[1] = parts[1].replace("_", "-")
        node = layer
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingsError(
                    f"environment variable {variable} nests under a key that has a value",
                    field=".".join(parts),
                )
            node = child
        node[parts[-1]] = EnvText(environ[variable], variable)
        sources[".".join(parts)] = f"environment variable {variable}"
    return layer


def _file_layer(path: Path, sources: dict[str, str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist", field=CONFIG_ENV) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"settings file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in node.items():
            sources[".".join((*prefix, key))] = str(path)
            if isinstance(value, Mapping):
                walk(value, (*prefix, key))

    walk(data, ())
    return data


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _sequence_fields(cl: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cl)
    found: dict[str, Any] = {}
    for attribute in attrs.fields(cl):
        hint = hints[attribute.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        origin = typing.get_origin(hint)
        if origin in (types.UnionType, typing.Union) and len(args) == 1:
            hint, origin = args[0], typing.get_origin(args[0])
        found[attribute.name] = (
            hint
            if origin in (tuple, list, frozenset, set)
            or (isinstance(hint, type) and attrs.has(hint))
            else None
        )
    return found


def split_env_lists(data: Mapping[str, Any], cl: type) -> dict[str, Any]:
    """Turn comma-separated environment values into lists where ``cl`` expects a sequence."""
    result = dict(data)
    for name, hint in _sequence_fields(cl).items():
        value = result.get(name)
        if hint is None or value is None:
            continue
        if isinstance(hint, type) and attrs.has(hint):
            if isinstance(value, Mapping):
                result[name] = split_env_lists(value, hint)
        elif isinstance(value, EnvText):
            result[name] = [
                EnvText(item.strip(), value.variable) for item in value.split(",") if item.strip()
            ]
    return result


def describe_problem_source(key: str, sources: Mapping[str, str]) -> str:
    """``' (from …)'`` for the most specific known source of ``key``, or ``''``."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        source = sources.get(".".join(parts[:end]))
        if source:
            return f" (from {source})"
    return ""


def structure_settings(
    data: Mapping[str, Any], cl: type[Any], *, prefix: str, sources: Mapping[str, str]
) -> Any:
    """Build the settings class ``cl`` from layered data; errors name the dotted key."""
    try:
        return structure(split_env_lists(data, cl), cl, what="settings")
    except InvalidInput as exc:
        problems = exc.problems
        if not problems:
            raise SettingsError(f"settings {prefix}: {exc.message}", field=prefix or None) from None
        lines = []
        for problem in problems:
            key = ".".join(filter(None, (prefix, problem.dotted)))
            lines.append(
                f"settings key {key}{describe_problem_source(key, sources)}: {problem.message}"
            )
        first = ".".join(filter(None, (prefix, problems[0].dotted)))
        raise SettingsError("; ".join(lines), field=first) from None


@frozen
class LoadedSettings:
    """Settings plus where each key came from (for error messages about plugin sections)."""

    settings: Settings
    sources: Mapping[str, str]


def load_settings_with_sources(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Like :func:`load_settings`, also returning the source of every key."""
    environ = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    if config_file is None and environ.get(CONFIG_ENV):
        config_file = Path(environ[CONFIG_ENV])
    if config_file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        config_file = Path(DEFAULT_CONFIG_FILE)
    if config_file is not None:
        data = _merge(data, _file_layer(config_file, sources))
    data = _merge(data, _env_layer(environ, sources))
    if overrides:
        for key in overrides:
            sources[key] = "command line"
        data = _merge(data, overrides)
    settings = structure_settings(data, Settings, prefix="", sources=sources)
    return LoadedSettings(settings, sources)


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from ``config_file`` (or ``$CATALYST_CONFIG``, or ``./catalyst.toml`` if it
    exists), then ``CATALYST_*`` variables of ``environ`` (default ``os.environ``), then
    ``overrides``."""
    return load_settings_with_sources(config_file, environ=environ, overrides=overrides).settings
