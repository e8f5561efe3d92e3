"""Loading one Blueprint version: ``blueprint.yaml`` and the files beside it.

A Blueprint is checked in three passes, and every problem of every pass is reported, each with
the file and the JSON pointer it is about:

1. the YAML itself (:mod:`catalyst_kernel.blueprints.yamlsafe`: size, aliases, duplicate keys);
2. the document against ``schema/blueprint.schema.json`` and against the attrs model
   (:class:`~catalyst_kernel.model.blueprint.Blueprint`), whose findings are merged so that one
   mistake is reported once, at the deepest pointer, with the clearer message;
3. the folder: a Kustomize source's folders exist and hold parseable manifests, schemas only
   reference themselves, the owner agrees with where the Blueprint was found.

Files are keyed by safe relative POSIX paths; symlinks are followed only to files inside the
Blueprint's folder.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import jsonschema
from attrs import field, frozen
from jsonschema.exceptions import ValidationError, best_match

from catalyst_kernel.blueprints.yamlsafe import YamlDocument, YamlLimits, load_all, load_document
from catalyst_kernel.errors import FieldProblem, InvalidInput
from catalyst_kernel.model.blueprint import Blueprint, SourceKind, Visibility
from catalyst_kernel.model.convert import structure
from catalyst_kernel.model.names import check_organization_name
from catalyst_kernel.model.plan import check_repository_path

__all__ = [
    "BLUEPRINT_FILE",
    "BlueprintProblem",
    "FolderOrigin",
    "GitOrigin",
    "InvalidBlueprint",
    "LoadLimits",
    "LoadedBlueprint",
    "Origin",
    "blueprint_schema",
    "load_blueprint",
    "load_folder",
    "parse_blueprint",
    "read_folder",
]

BLUEPRINT_FILE: Final = "blueprint.yaml"
KUSTOMIZATION_FILES: Final = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MANIFEST_SUFFIXES: Final = (".yaml", ".yml")
_DOCUMENT_LIMITS: Final = YamlLimits(max_bytes=512 * 1024)
# Schema keywords whose failure the model explains better (it says which naming rule failed,
# or which of a source's alternative keys are needed).
_MODEL_EXPLAINS: Final = frozenset({"pattern", "not", "minLength", "maxLength", "anyOf", "oneOf"})


class BlueprintProblem(NamedTuple):
    """One problem in one file of a Blueprint.

    :ivar file: the file, as a path or ``repository@ref:path``.
    :ivar pointer: the JSON pointer inside the file (``""`` for the file as a whole).
    :ivar message: what is wrong.
    :ivar line: the line of ``pointer`` in the file, where known.
    """

    file: str
    pointer: str
    message: str
    line: int | None = None

    def describe(self) -> str:
        """``<file>:<json pointer>: <message>`` (the root pointer is written ``/``)."""
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.file}:{self.pointer or '/'}: {self.message}{where}"


@frozen
class FolderOrigin:
    """A Blueprint read from a folder on disk."""

    path: Path

    def file(self, relative: str) -> str:
        """How to name one of the Blueprint's files in messages."""
        return os.path.join(self.path, relative) if relative else str(self.path)

    def __str__(self) -> str:
        return str(self.path)


@frozen
class GitOrigin:
    """A Blueprint read from a Git repository's tree at ``ref`` (resolved to ``commit``)."""

    repository: Path
    ref: str
    commit: str
    path: str

    def file(self, relative: str) -> str:
        """How to name one of the Blueprint's files in messages."""
        return f"{self.repository}@{self.ref}:{posixpath.join(self.path, relative)}"

    def __str__(self) -> str:
        return f"{self.repository}@{self.ref}:{self.path or '.'}"


Origin = FolderOrigin | GitOrigin


@frozen
class LoadLimits:
    """How much one Blueprint may cost to load.

    :ivar yaml: limits for ``blueprint.yaml`` and each manifest file.
    :ivar max_file_bytes: the largest file accepted in the folder.
    :ivar max_total_bytes: the most bytes the folder may hold in all.
    :ivar max_files: the most files the folder may hold.
    """

    yaml: YamlLimits = _DOCUMENT_LIMITS
    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 32 * 1024 * 1024
    max_files: int = 1000


def _frozen_files(files: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(sorted(files.items())))


@frozen
class LoadedBlueprint:
    """A valid Blueprint version with where it came from and the files beside ``blueprint.yaml``.

    :ivar organization: the Organization whose ``shared-blueprints`` it was read from; ``None``
        for the Sovereign's public catalog.
    :ivar files: every other file of the folder, by relative POSIX path.
    """

    blueprint: Blueprint
    origin: Origin
    organization: str | None = None
    files: Mapping[str, bytes] = field(factory=dict, converter=_frozen_files)

    @property
    def name(self) -> str:
        return self.blueprint.name

    @property
    def version(self) -> str:
        return self.blueprint.version

    @property
    def owner(self) -> str | None:
        """The Organization a ``private`` Blueprint belongs to (where found, else as declared)."""
        return self.organization or self.blueprint.spec.owner.organization


class InvalidBlueprint(InvalidInput):
    """A Blueprint folder that cannot be loaded; ``located`` holds every problem with its file.

    ``problems`` (the :class:`InvalidInput` field) holds those about ``blueprint.yaml`` itself.
    """

    def __init__(self, origin: Origin, located: Sequence[BlueprintProblem]) -> None:
        self.origin = origin
        self.located = tuple(located)
        document = origin.file(BLUEPRINT_FILE)
        super().__init__(
            f"the Blueprint at {origin} is invalid: "
            + "; ".join(problem.describe() for problem in self.located),
            field=next((p.pointer for p in self.located if p.file == document), None),
            problems=[
                FieldProblem(p.pointer, p.message) for p in self.located if p.file == document
            ],
        )


# --------------------------------------------------------------------------- the document


@functools.cache
def blueprint_schema() -> Mapping[str, Any]:
    """The JSON Schema of ``blueprint.yaml`` (draft 2020-12), as shipped with the kernel."""
    text = resources.files("catalyst_kernel.blueprints").joinpath("schema/blueprint.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return MappingProxyType(schema)


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = dict(blueprint_schema())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _missing(error: ValidationError) -> list[str]:
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    required = error.validator_value if isinstance(error.validator_value, list) else []
    return [str(key) for key in required if key not in instance]


def _schema_problems(error: ValidationError) -> Iterator[tuple[FieldProblem, str]]:
    """Translate one jsonschema error to problems at the same pointers the model uses."""
    parts = tuple(error.absolute_path)
    keyword = str(error.validator)
    if keyword == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        for key in sorted(str(k) for k in error.instance if k not in known):
            yield FieldProblem.at((*parts, key), "unknown key"), keyword
    elif keyword == "required":
        for key in _missing(error):
            yield FieldProblem.at((*parts, key), "required key is missing"), keyword
    elif keyword in ("anyOf", "oneOf") and error.context:
        if all(inner.validator == "required" for inner in error.context):
            alternatives = sorted({key for inner in error.context for key in _missing(inner)})
            yield FieldProblem.at(parts, f"needs {' or '.join(alternatives)}"), keyword
        else:
            # ``anyOf: [name, null]``: the branch whose type matched says what is wrong.
            typed = [inner for inner in error.context if inner.validator != "type"]
            yield from _schema_problems(best_match(typed or error.context))
    elif keyword in ("pattern", "not") and _description(error):
        # The raw regular expression helps nobody; the rule's description says it in words.
        message = f"{error.instance!r} is not valid: {_description(error)}"
        yield FieldProblem.at(parts, message), keyword
    else:
        yield FieldProblem.at(parts, error.message), keyword


def _description(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    description = schema.get("description")
    return description if isinstance(description, str) else ""


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _merge(
    schema: Sequence[tuple[FieldProblem, str]], model: Sequence[FieldProblem]
) -> list[FieldProblem]:
    """One report from both checkers.

    The schema decides where problems are (it sees the whole document even when a part fails);
    at those pointers the model's message wins for naming rules. Model problems at unrelated
    pointers (rules JSON Schema cannot say, such as unique aliases) are added; model problems
    above or below a schema problem are the same mistake seen from elsewhere and are dropped.
    """
    by_pointer = {problem.pointer: problem for problem in model}
    merged: list[FieldProblem] = []
    for problem, keyword in schema:
        if keyword in _MODEL_EXPLAINS and problem.pointer in by_pointer:
            problem = by_pointer[problem.pointer]
        if problem not in merged:
            merged.append(problem)
    merged.extend(
        problem
        for problem in model
        if not any(_related(problem.pointer, found.pointer) for found, _keyword in schema)
    )
    return merged


def _check(data: Any) -> tuple[Blueprint | None, list[FieldProblem]]:
    schema = [
        found for error in _validator().iter_errors(data) for found in _schema_problems(error)
    ]
    try:
        blueprint: Blueprint | None = structure(data, Blueprint, what="Blueprint")
        model: tuple[FieldProblem, ...] = ()
    except InvalidInput as exc:
        blueprint, model = None, exc.problems or (FieldProblem("", exc.message),)
    problems = _merge(schema, model)
    return (blueprint if not problems else None), problems


def parse_blueprint(data: Any) -> Blueprint:
    """Validate plain data (a parsed ``blueprint.yaml``) against the schema and the model.

    :raises InvalidInput: listing every problem with its JSON pointer.
    """
    blueprint, problems = _check(data)
    if blueprint is None:
        summary = "; ".join(problem.describe() for problem in problems)
        raise InvalidInput(
            f"invalid Blueprint: {summary}",
            field=problems[0].pointer if problems else None,
            problems=problems,
        )
    return blueprint


# --------------------------------------------------------------------------- the folder


def _folder(value: str) -> str | None:
    """A relative folder inside the Blueprint (``""`` for its root), or None if unsafe."""
    if value.startswith("/"):
        return None
    text = value.removeprefix("./").rstrip("/")
    if text in ("", "."):
        return ""
    try:
        return check_repository_path(text)
    except InvalidInput:
        return None


def _files_under(files: Mapping[str, bytes], folder: str) -> list[str]:
    prefix = f"{folder}/" if folder else ""
    return [name for name in files if name.startswith(prefix)]


def _kustomize_folder(
    files: Mapping[str, bytes], value: object, pointer: str, checked: set[str]
) -> Iterator[tuple[str, str, str]]:
    """Problems with a Kustomize folder reference, as (file, pointer, message)."""
    if not isinstance(value, str):
        yield BLUEPRINT_FILE, pointer, "must be a folder inside the Blueprint"
        return
    folder = _folder(value)
    if folder is None:
        yield (
            BLUEPRINT_FILE,
            pointer,
            f"{value!r} must be a relative folder inside the Blueprint, without '..'",
        )
        return
    inside = _files_under(files, folder)
    if not inside:
        yield BLUEPRINT_FILE, pointer, f"the folder {value!r} is not in the Blueprint"
        return
    if not any(posixpath.join(folder, name) in files for name in KUSTOMIZATION_FILES):
        yield BLUEPRINT_FILE, pointer, f"the folder {value!r} has no kustomization.yaml"
    checked.update(name for name in inside if name.endswith(_MANIFEST_SUFFIXES))


def _remote_references(value: Any, parts: tuple[str | int, ...]) -> Iterator[FieldProblem]:
    # Config is validated on the API's hot path: a remote $ref would make it fetch from the
    # network (and a Blueprint author could point it anywhere).
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (
                key in ("$ref", "$dynamicRef")
                and isinstance(item, str)
                and not item.startswith("#")
            ):
                yield FieldProblem.at(
                    (*parts, key),
                    f"{item!r} is not a local reference; only '#…' references are allowed "
                    "(schemas are never fetched)",
                )
            else:
                yield from _remote_references(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _remote_references(item, (*parts, index))


def _folder_problems(
    blueprint: Blueprint,
    files: Mapping[str, bytes],
    organization: str | None,
    limits: LoadLimits,
) -> Iterator[tuple[str, str, str]]:
    spec = blueprint.spec
    manifests: set[str] = set()
    if spec.manifests.source.kind is SourceKind.KUSTOMIZE and spec.manifests.source.ref.path:
        yield from _kustomize_folder(
            files, spec.manifests.source.ref.path, "/spec/manifests/source/ref/path", manifests
        )
    if spec.manifests.source.kind is SourceKind.KUSTOMIZE:
        for size, overlay in spec.manifests.overlays.items():
            if "path" in overlay:
                pointer = f"/spec/manifests/overlays/{size.value}/path"
                yield from _kustomize_folder(files, overlay["path"], pointer, manifests)
    for name in sorted(manifests):
        try:
            load_all(files[name], source=name, limits=limits.yaml)
        except InvalidInput as exc:
            for problem in exc.problems:
                yield name, problem.pointer, problem.message
    for key in ("configSchema", "placementSchema"):
        value = spec.config_schema if key == "configSchema" else spec.placement_schema
        for problem in _remote_references(value, ("spec", key)):
            yield BLUEPRINT_FILE, problem.pointer, problem.message
    for index, dependency in enumerate(spec.depends):
        if dependency.blueprint == blueprint.name:
            yield (
                BLUEPRINT_FILE,
                f"/spec/depends/{index}/blueprint",
                "a Blueprint cannot depend on itself",
            )
    declared = spec.owner.organization
    if organization is not None and declared is not None and declared != organization:
        yield (
            BLUEPRINT_FILE,
            "/spec/owner/organization",
            f"the Blueprint is in the shared-blueprints of {organization!r} but names "
            f"{declared!r} as its owner",
        )
    if organization is None and spec.visibility is Visibility.PRIVATE and declared is None:
        yield (
            BLUEPRINT_FILE,
            "/spec/visibility",
            "a private Blueprint of the Sovereign's catalog must name its Organization in "
            "spec.owner.organization (nobody could see it otherwise)",
        )


def load_blueprint(
    files: Mapping[str, bytes],
    *,
    origin: Origin,
    organization: str | None = None,
    limits: LoadLimits = LoadLimits(),
    read_problems: Iterable[BlueprintProblem] = (),
) -> LoadedBlueprint:
    """Check and load one Blueprint from its files (``blueprint.yaml`` and the rest).

    :param files: every file of the folder by relative POSIX path, ``blueprint.yaml`` included.
    :param origin: where the files were read, for messages and for :class:`LoadedBlueprint`.
    :param organization: the Organization whose ``shared-blueprints`` they come from, if any.
    :param read_problems: problems found while reading the folder (reported with the others).
    :raises InvalidBlueprint: with every problem found, each with its file and pointer.
    """
    if organization is not None:
        check_organization_name(organization)
    problems = list(read_problems)
    document_file = origin.file(BLUEPRINT_FILE)
    raw = files.get(BLUEPRINT_FILE)
    blueprint: Blueprint | None = None
    document: YamlDocument | None = None
    if raw is None:
        problems.append(BlueprintProblem(document_file, "", f"there is no {BLUEPRINT_FILE}"))
    else:
        try:
            document = load_document(raw, source=document_file, limits=limits.yaml)
        except InvalidInput as exc:
            problems.extend(
                BlueprintProblem(document_file, p.pointer, p.message) for p in exc.problems
            )
        else:
            blueprint, found = _check(document.data)
            problems.extend(_located(document_file, found, document))
    others = {name: data for name, data in files.items() if name != BLUEPRINT_FILE}
    if blueprint is not None and document is not None:
        for file, pointer, message in _folder_problems(blueprint, others, organization, limits):
            if file == BLUEPRINT_FILE:
                line = document.line(pointer)
                problems.append(BlueprintProblem(document_file, pointer, message, line))
            else:
                problems.append(BlueprintProblem(origin.file(file), pointer, message))
    if problems or blueprint is None:
        raise InvalidBlueprint(origin, problems)
    return LoadedBlueprint(blueprint, origin, organization, others)


def _located(
    file: str, problems: Iterable[FieldProblem], document: YamlDocument
) -> Iterator[BlueprintProblem]:
    for problem in problems:
        yield BlueprintProblem(
            file, problem.pointer, problem.message, document.line(problem.pointer)
        )


class _FolderReader:
    """Reads a Blueprint folder into relative path → bytes, under limits, never leaving it."""

    def __init__(self, path: Path, limits: LoadLimits) -> None:
        self.origin = FolderOrigin(path)
        self.root = Path(os.path.realpath(path))
        self.limits = limits
        self.files: dict[str, bytes] = {}
        self.problems: list[BlueprintProblem] = []
        self.total = 0
        self.full = False

    def problem(self, relative: str, message: str) -> None:
        self.problems.append(BlueprintProblem(self.origin.file(relative), "", message))

    def visit(self, directory: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            self.problem("/".join(parts), f"cannot be read: {exc.strerror}")
            return
        for entry in entries:
            if self.full:
                return
            relative = "/".join((*parts, entry.name))
            if entry.is_dir(follow_symlinks=False):
                # .git is the repository's, and a folder with its own blueprint.yaml is another
                # Blueprint version: neither belongs to this one.
                if entry.name != ".git" and not os.path.lexists(
                    os.path.join(entry.path, BLUEPRINT_FILE)
                ):
                    self.visit(Path(entry.path), (*parts, entry.name))
                continue
            self.read(Path(entry.path), relative, entry.is_symlink())

    def read(self, path: Path, relative: str, symlink: bool) -> None:
        try:
            relative.encode("utf-8")
            check_repository_path(relative)
        except (UnicodeError, InvalidInput):
            self.problem(relative, "the file name is not a safe relative UTF-8 path")
            return
        if symlink:
            target = Path(os.path.realpath(path))
            if not target.is_relative_to(self.root):
                self.problem(relative, "is a symlink that points outside the Blueprint folder")
                return
            if target.is_dir():
                self.problem(relative, "is a symlink to a folder; only symlinks to files are read")
                return
            path = target
        if len(self.files) >= self.limits.max_files:
            self.problem(relative, f"the folder holds more than {self.limits.max_files} files")
            self.full = True
            return
        data = self._content(path, relative)
        if data is None:
            return
        self.total += len(data)
        if self.total > self.limits.max_total_bytes:
            self.problem(
                relative, f"the folder holds more than {self.limits.max_total_bytes} bytes"
            )
            self.full = True
            return
        self.files[relative] = data

    def _content(self, path: Path, relative: str) -> bytes | None:
        # O_NOFOLLOW: a file swapped for a symlink after the checks above is refused, not read.
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            reason = (
                "is a broken symlink"
                if exc.errno == errno.ENOENT
                else f"cannot be read: {exc.strerror}"
            )
            self.problem(relative, reason)
            return None
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                self.problem(relative, "is not a regular file")
                return None
            data = stream.read(self.limits.max_file_bytes + 1)
        if len(data) > self.limits.max_file_bytes:
            self.problem(relative, f"the file is larger than {self.limits.max_file_bytes} bytes")
            return None
        return data


def read_folder(
    path: Path, *, limits: LoadLimits = LoadLimits()
) -> tuple[dict[str, bytes], list[BlueprintProblem]]:
    """Every file of the Blueprint folder ``path`` by relative POSIX path, and the problems met.

    Subfolders holding their own ``blueprint.yaml`` and ``.git`` are skipped; symlinks are read
    only when they lead to a file inside ``path``.
    """
    reader = _FolderReader(path, limits)
    if not reader.root.is_dir():
        reader.problem("", "is not a folder")
    else:
        reader.visit(reader.root, ())
    return reader.files, reader.problems


def load_folder(
    path: Path, *, organization: str | None = None, limits: LoadLimits = LoadLimits()
) -> LoadedBlueprint:
    """Load the Blueprint whose ``blueprint.yaml`` is in the folder ``path``.

    :raises InvalidBlueprint: with every problem found, each with its file and pointer.
    """
    files, problems = read_folder(path, limits=limits)
    return load_blueprint(
        files,
        origin=FolderOrigin(path),
        organization=organization,
        limits=limits,
        read_problems=problems,
    )
