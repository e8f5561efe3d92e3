"""InstallPlan: the inspectable result of planning an install, before anything is committed."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import (
    check_application_name,
    check_blueprint_name,
    check_environment_name,
    check_semver,
)
from catalyst_kernel.model.validators import each, name_rule

__all__ = [
    "FileAction",
    "FileChange",
    "InstallPlan",
    "PlanAction",
    "PlannedApplication",
    "WhenDecision",
    "check_repository_path",
]


def check_repository_path(value: object) -> str:
    """Return ``value`` if it is a safe relative POSIX path inside a repository.

    Absolute paths, ``..``, empty segments, backslashes and the ``.git`` folder are refused so no
    plan can write outside the Environment repository's tree.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"repository path must be a non-empty string, got {value!r}")
    path = PurePosixPath(value)
    parts = value.split("/")
    if (
        path.is_absolute()
        or "\\" in value
        or "\x00" in value
        or any(part in {"", ".", ".."} for part in parts)
        or parts[0] == ".git"
    ):
        raise InvalidInput(
            f"repository path {value!r} must be relative, without '.', '..', empty segments, "
            "backslashes or .git",
            field="path",
        )
    return value


class PlanAction(enum.StrEnum):
    CREATE = "create"
    REUSE = "reuse"
    UPDATE = "update"


class FileAction(enum.StrEnum):
    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"


@frozen
class PlannedApplication:
    """One Application the plan creates, reuses or updates; ``alias`` is set for dependencies."""

    name: str = field(validator=name_rule(check_application_name))
    blueprint: str = field(validator=name_rule(check_blueprint_name))
    version: str = field(validator=name_rule(check_semver))
    action: PlanAction
    config: Mapping[str, Any] = field(factory=dict)
    depends_on: tuple[str, ...] = field(default=(), validator=each(check_application_name))
    alias: str | None = None
    parent: str | None = None


@frozen
class WhenDecision:
    """Why a conditional dependency was on or off."""

    application: str
    alias: str
    expression: str | None
    enabled: bool
    reason: str


@frozen
class FileChange:
    """A file the plan writes or deletes; ``content`` is ``None`` for deletions."""

    path: str = field(validator=name_rule(check_repository_path))
    action: FileAction
    content: str | None = field(default=None)

    @content.validator
    def _content_matches_action(
        self, _attribute: attrs.Attribute[Any], content: str | None
    ) -> None:
        if (content is None) != (self.action is FileAction.DELETE):
            raise InvalidInput(
                f"{self.path}: a {self.action.value} needs "
                f"{'no content' if self.action is FileAction.DELETE else 'content'}",
                field="content",
            )


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


@frozen
class InstallPlan:
    """Everything an install would do; ``digest`` identifies the plan's content.

    Two plans with the same applications, decisions and files have the same digest, whatever
    their ``id``; the digest goes into the commit trailer so a commit can be traced to its plan.
    """

    id: str
    environment: str = field(validator=name_rule(check_environment_name))
    application: str = field(validator=name_rule(check_application_name))
    applications: tuple[PlannedApplication, ...]
    decisions: tuple[WhenDecision, ...] = ()
    files: tuple[FileChange, ...] = ()
    digest: str = field(init=False)

    @digest.default
    def _digest(self) -> str:
        # Imported lazily: the converter module imports every model module.
        from catalyst_kernel.model.convert import converter

        body = {
            "environment": self.environment,
            "application": self.application,
            "applications": converter.unstructure(self.applications),
            "decisions": converter.unstructure(self.decisions),
            "files": converter.unstructure(self.files),
        }
        return "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()
