"""The one exception hierarchy of Catalyst.

Every backend translates its own library's errors into these types; the API maps them to RFC 9457
problem details in one place and the CLI prints them as one line.  Each type carries a stable
``code`` (used as the problem ``type`` suffix) and, where it applies, the ``field`` that failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "BackendUnavailable",
    "BlockedVersionError",
    "CatalystError",
    "Conflict",
    "FieldProblem",
    "Forbidden",
    "InvalidInput",
    "InvalidName",
    "NotFound",
    "PluginError",
    "PolicyRefused",
    "SettingsError",
    "Unauthenticated",
]


class CatalystError(Exception):
    """Root of every error Catalyst raises on purpose.

    :param message: a human sentence saying what went wrong and, where possible, what to do.
    :param field: the input field (a dotted key or a JSON pointer) that caused it, if any.
    """

    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> Mapping[str, Any]:
        """Further members of the problem document this error becomes (RFC 9457 extensions)."""
        return {}

    def __str__(self) -> str:
        return self.message


class FieldProblem(NamedTuple):
    """One problem found in a document, located by a JSON pointer (RFC 6901)."""

    pointer: str
    message: str

    @classmethod
    def at(cls, parts: Iterable[str | int], message: str) -> FieldProblem:
        escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
        return cls("".join(f"/{part}" for part in escaped), message)

    @property
    def parts(self) -> tuple[str, ...]:
        if not self.pointer:
            return ()
        return tuple(
            part.replace("~1", "/").replace("~0", "~") for part in self.pointer[1:].split("/")
        )

    @property
    def dotted(self) -> str:
        """The location as a dotted key (``providers.spine``, ``catalog_paths.1``)."""
        return ".".join(self.parts)

    def describe(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class InvalidInput(CatalystError):
    """The caller sent something malformed or out of the rules; nothing was changed.

    :param problems: every problem found, when a whole document was checked.
    """

    code = "invalid-input"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: Iterable[FieldProblem] = (),
    ) -> None:
        super().__init__(message, field=field)
        self.problems = tuple(problems)


class InvalidName(InvalidInput):
    """A name broke one of the naming rules of SPEC §4.

    :param rule: the identifier of the rule that failed (for example ``organization.reserved``).
    """

    code = "invalid-name"

    def __init__(self, message: str, *, rule: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.rule = rule


class SettingsError(InvalidInput):
    """A settings key is unknown or its value is invalid; ``field`` names the key."""

    code = "invalid-settings"


class NotFound(CatalystError):
    """The object asked for does not exist (or is not visible to the caller)."""

    code = "not-found"


class Conflict(CatalystError):
    """The request conflicts with the current state (already exists, concurrent change, in use)."""

    code = "conflict"


class BlockedVersionError(Conflict):
    """A Blueprint version the Organization has blocked (install, update, promotion)."""

    code = "blocked-version"


class PolicyRefused(Conflict):
    """The EnvironmentPolicy does not let the change merge (yet); ``verdict`` explains why and
    when it can next pass."""

    code = "policy-refused"

    def __init__(self, message: str, *, verdict: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.verdict = verdict

    @property
    def extensions(self) -> Mapping[str, Any]:
        return {"verdict": self.verdict}


class Unauthenticated(CatalystError):
    """No credentials, or credentials that cannot be trusted (expired, forged, wrong issuer)."""

    code = "unauthenticated"


class Forbidden(CatalystError):
    """The caller is known but may not perform this operation."""

    code = "forbidden"


class BackendUnavailable(CatalystError):
    """A backend (spine, Git host, identity provider, secret store) cannot be reached right now."""

    code = "backend-unavailable"


class PluginError(CatalystError):
    """A plugin failed to load, register or start, or a slot names a plugin that is not there.

    :param plugin: the plugin's user-facing name (its entry-point name).
    """

    code = "plugin-error"

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
