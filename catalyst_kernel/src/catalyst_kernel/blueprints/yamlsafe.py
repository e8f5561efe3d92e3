"""Safe YAML for files that come from outside: Blueprints, their manifests, pushed repositories.

``yaml.safe_load`` already refuses Python object tags, but it still expands aliases without limit
(a "billion laughs" document of a few hundred bytes becomes gigabytes once anything walks it),
keeps the last of two duplicate keys silently, and turns unquoted ``on``/``2024-01-01`` into a
boolean and a date. Here every document is:

- at most :attr:`YamlLimits.max_bytes` long, checked before parsing;
- free of aliases (``*name``) unless :attr:`YamlLimits.max_aliases` allows a few, and then at most
  :attr:`YamlLimits.max_nodes` nodes once aliases are expanded, counted on the composed graph so
  the check costs as much as the document is long, not as much as it expands to;
- at most :attr:`YamlLimits.max_depth` levels deep (the composer recurses);
- JSON-compatible: keys are text and unique, only the core tags (``str``, ``int``, ``float``,
  ``bool``, ``null``, sequences, mappings, merge keys) are accepted, and dates stay text.

Problems are :class:`~catalyst_kernel.errors.InvalidInput` whose message names the file and the
line, and whose ``problems`` locate each one by JSON pointer where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import yaml
from attrs import frozen

from catalyst_kernel.errors import FieldProblem, InvalidInput

__all__ = ["YamlDocument", "YamlLimits", "load_all", "load_document", "safe_load"]

_TAG: Final = "tag:yaml.org,2002:"
_MERGE: Final = _TAG + "merge"
_ALLOWED_TAGS: Final = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map", "merge")
)
_KEY_TYPES: Final = {
    _TAG + "int": "a number",
    _TAG + "float": "a number",
    _TAG + "bool": "a boolean",
    _TAG + "null": "null",
}


@frozen
class YamlLimits:
    """How much a document may cost to read.

    :ivar max_bytes: the largest document accepted, in bytes.
    :ivar max_aliases: how many aliases (``*name``) a document may use; 0 refuses them outright.
    :ivar max_depth: how deeply collections may nest.
    :ivar max_nodes: how many nodes the document may have once every alias is expanded.
    """

    max_bytes: int = 1024 * 1024
    max_aliases: int = 0
    max_depth: int = 64
    max_nodes: int = 100_000


@frozen
class YamlDocument:
    """A parsed document and the line (1-based) where each of its JSON pointers starts."""

    data: Any
    lines: Mapping[str, int]

    def line(self, pointer: str) -> int | None:
        """The line of ``pointer``, or of its nearest ancestor present in the document."""
        while True:
            if pointer in self.lines:
                return self.lines[pointer]
            if not pointer:
                return None
            pointer = pointer.rpartition("/")[0]


class _Refused(Exception):
    """Stop reading at once: the document is too costly or not plain data."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _without_timestamps() -> dict[Any, list[tuple[str, Any]]]:
    resolvers: dict[Any, list[tuple[str, Any]]] = yaml.SafeLoader.yaml_implicit_resolvers
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag != _TAG + "timestamp"]
        for first, entries in resolvers.items()
    }


class _Loader(yaml.SafeLoader):
    # The pure-Python loader (not CSafeLoader): its composer is the hook where aliases and
    # depth are counted before anything is built.
    yaml_implicit_resolvers = _without_timestamps()

    def __init__(self, stream: bytes, limits: YamlLimits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.aliases = 0
        self.depth = 0

    def upcoming(self) -> Any:
        return self.peek_event()  # type: ignore[no-untyped-call]

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.upcoming()
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                if self.limits.max_aliases == 0:
                    raise _Refused(event.start_mark, "YAML aliases (*name) are not allowed")
                raise _Refused(
                    event.start_mark, f"more than {self.limits.max_aliases} YAML aliases (*name)"
                )
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise _Refused(
                    event.start_mark, f"collections nest deeper than {self.limits.max_depth} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _where(mark: Any) -> str:
    return "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"


class _Checker:
    """Walks the composed graph once per node: tags, keys, expanded size and pointer → line."""

    def __init__(self, limits: YamlLimits, prefix: tuple[str | int, ...]) -> None:
        self.limits = limits
        self.prefix = prefix
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()
        self.problems: list[FieldProblem] = []
        self.lines: dict[str, int] = {}

    def size(self, node: yaml.Node, parts: tuple[str | int, ...]) -> int:
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.active:
            raise _Refused(node.start_mark, "a YAML alias refers to a collection that contains it")
        pointer = FieldProblem.at((*self.prefix, *parts), "").pointer
        self.lines.setdefault(pointer, node.start_mark.line + 1)
        if node.tag not in _ALLOWED_TAGS:
            tag = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
            raise _Refused(
                node.start_mark,
                f"the YAML tag {tag} is not allowed (plain data only: text, numbers, "
                "booleans, null, lists and mappings)",
            )
        self.active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += self._mapping(node, parts)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                total += self.size(item, (*parts, index))
                self._budget(total, item)
        self.active.discard(key)
        self.sizes[key] = total
        self._budget(total, node)
        return total

    def _mapping(self, node: yaml.MappingNode, parts: tuple[str | int, ...]) -> int:
        total = 0
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                # ``<<: {…}`` merges a mapping in; its keys may be overridden, so no duplicates.
                total += self.size(value_node, parts)
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "…"
                kind = _KEY_TYPES.get(key_node.tag, "not text")
                self._problem(
                    parts,
                    f"the key {shown!r} is read as {kind} (line {line}); keys must be text: "
                    "quote it",
                )
                total += self.size(value_node, (*parts, str(shown)))
                continue
            name = key_node.value
            # A key's pointer starts on the key's line (its value may start on the next one).
            self.lines.setdefault(FieldProblem.at((*self.prefix, *parts, name), "").pointer, line)
            if name in first:
                self._problem(
                    (*parts, name),
                    f"duplicate key {name!r} (line {line}; first at line {first[name]})",
                )
            else:
                first[name] = line
            total += 1 + self.size(value_node, (*parts, name))
            self._budget(total, value_node)
        return total

    def _budget(self, total: int, node: yaml.Node) -> None:
        if total > self.limits.max_nodes:
            raise _Refused(
                node.start_mark,
                f"the document expands to more than {self.limits.max_nodes} nodes",
            )

    def _problem(self, parts: tuple[str | int, ...], message: str) -> None:
        self.problems.append(FieldProblem.at((*self.prefix, *parts), message))


def _refuse(source: str, problems: list[FieldProblem]) -> InvalidInput:
    summary = "; ".join(f"{source}:{p.pointer or '/'}: {p.message}" for p in problems)
    return InvalidInput(summary, field=problems[0].pointer or None, problems=problems)


def _read(
    data: bytes | str, *, source: str, limits: YamlLimits, single: bool
) -> tuple[list[Any], dict[str, int]]:
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > limits.max_bytes:
        raise _refuse(
            source,
            [FieldProblem("", f"the file is {len(raw)} bytes long; at most {limits.max_bytes}")],
        )
    documents: list[Any] = []
    lines: dict[str, int] = {}
    loader: _Loader | None = None
    try:
        # The reader checks the encoding and printable characters as soon as it is built.
        loader = _Loader(raw, limits)
        loader.get_event()  # type: ignore[no-untyped-call]  # StreamStart
        if single and loader.check_event(yaml.StreamEndEvent):
            raise _Refused(None, "the file holds no YAML document")
        while not loader.check_event(yaml.StreamEndEvent):
            if single and documents:
                raise _Refused(
                    loader.upcoming().start_mark,
                    "a second YAML document starts here; the file must hold exactly one",
                )
            node = loader.compose_document()
            if node is None:  # pragma: no cover - only at stream end, excluded by the loop
                break
            prefix: tuple[str | int, ...] = () if single else (len(documents),)
            checker = _Checker(limits, prefix)
            checker.size(node, ())
            if checker.problems:
                raise _refuse(source, checker.problems)
            lines.update(checker.lines)
            documents.append(loader.construct_document(node))
    except _Refused as refused:
        message = refused.message + _where(refused.mark)
        raise _refuse(source, [FieldProblem("", message)]) from None
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "not valid YAML"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        message = f"{problem}{_where(exc.problem_mark or exc.context_mark)}"
        raise _refuse(source, [FieldProblem("", message)]) from None
    except yaml.YAMLError as exc:
        # ReaderError: bytes that are not UTF-8/16 or hold control characters.
        reason = " ".join(str(exc).split())
        raise _refuse(source, [FieldProblem("", f"not readable as YAML text: {reason}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents, lines


def load_document(
    data: bytes | str, *, source: str, limits: YamlLimits = YamlLimits()
) -> YamlDocument:
    """Parse exactly one YAML document under ``limits``, keeping the line of each JSON pointer.

    :param data: the file's content.
    :param source: how to name the file in errors (a path, or ``repo@ref:path``).
    :raises InvalidInput: naming ``source`` and the line, for anything :mod:`yamlsafe` refuses.
    """
    documents, lines = _read(data, source=source, limits=limits, single=True)
    return YamlDocument(documents[0], lines)


def safe_load(data: bytes | str, *, source: str, limits: YamlLimits = YamlLimits()) -> Any:
    """Like ``yaml.safe_load`` of exactly one document, under ``limits`` (see the module)."""
    return load_document(data, source=source, limits=limits).data


def load_all(data: bytes | str, *, source: str, limits: YamlLimits = YamlLimits()) -> list[Any]:
    """Every document of a multi-document stream (Kubernetes manifests), under ``limits``.

    Problems are located as if the stream were a list of documents (``/1/metadata/name``).
    ``limits`` apply to each document; the byte limit applies to the whole stream.
    """
    documents, _lines = _read(data, source=source, limits=limits, single=False)
    return documents
