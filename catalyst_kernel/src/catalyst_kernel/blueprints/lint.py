"""``catalyst blueprint lint``: check Blueprint folders before they are published.

Lint loads the paths exactly as the catalog would (every check of
:mod:`catalyst_kernel.blueprints.loader`, duplicates across the paths), and adds what only makes
sense when checking a set of Blueprints together: a dependency on a Blueprint that is among them
must be satisfiable by one of its versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import frozen
from semantic_version import NpmSpec, Version

from catalyst_kernel.blueprints.catalog import Catalog, FolderSource
from catalyst_kernel.blueprints.loader import (
    BLUEPRINT_FILE,
    BlueprintProblem,
    FolderOrigin,
    LoadedBlueprint,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = ["LintReport", "lint"]


@frozen
class LintReport:
    """What lint found.

    :ivar checked: how many Blueprint versions were found (valid or not).
    :ivar blueprints: those that loaded.
    :ivar problems: every problem, each with its file and JSON pointer.
    """

    checked: int
    blueprints: tuple[LoadedBlueprint, ...]
    problems: tuple[BlueprintProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _unsatisfied(blueprints: Sequence[LoadedBlueprint]) -> Iterator[BlueprintProblem]:
    published: dict[str, list[Version]] = {}
    for entry in blueprints:
        published.setdefault(entry.name, []).append(Version(entry.version))
    for entry in blueprints:
        for index, dependency in enumerate(entry.blueprint.spec.depends):
            versions = published.get(dependency.blueprint)
            if versions is None:
                continue  # not among the linted paths: the catalog will tell at install time
            if NpmSpec(dependency.version).select(versions) is None:
                have = ", ".join(str(v) for v in sorted(versions))
                yield BlueprintProblem(
                    entry.origin.file(BLUEPRINT_FILE),
                    f"/spec/depends/{index}/version",
                    f"no version of {dependency.blueprint} satisfies {dependency.version!r} "
                    f"(found {have})",
                )


def lint(paths: Sequence[Path], *, organization: str | None = None) -> LintReport:
    """Check every Blueprint under ``paths``.

    :param paths: Blueprint folders, folders of them, or ``blueprint.yaml`` files.
    :param organization: check them as the ``shared-blueprints`` of this Organization.
    """
    sources = [
        FolderSource(path.parent if path.is_file() else path, organization) for path in paths
    ]
    catalog = Catalog.load(sources)
    problems = list(catalog.problems)
    checked = len(catalog.blueprints) + len(catalog.rejected)
    found = [
        origin.path
        for origin in (*(entry.origin for entry in catalog.blueprints), *catalog.rejected)
        if isinstance(origin, FolderOrigin)
    ]
    problems.extend(
        BlueprintProblem(str(source), "", f"no {BLUEPRINT_FILE} was found in this folder")
        for source in sources
        if source.path.is_dir()
        and not any(folder == source.path or source.path in folder.parents for folder in found)
    )
    problems.extend(_unsatisfied(catalog.blueprints))
    return LintReport(checked, catalog.blueprints, tuple(problems))
