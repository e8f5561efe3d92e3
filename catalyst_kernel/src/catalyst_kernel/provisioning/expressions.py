"""The safe expression language of Blueprint ``when`` and ``values`` (SPEC §5.1).

A *template* is text with embedded ``{{ expression }}`` blocks::

    {{ .config.postgres.mode == 'embedded' }}
    {{ .application.name }}
    postgres://{{ .application.name }}-db:5432

Expressions read three context roots, ``.config`` (the Application's public config, password
fields removed), ``.application`` (``name``) and ``.environment`` (``name``, ``organization``,
``envType``), and combine them with literals, comparisons, ``and``/``or``/``not``, ``in`` and
four pure functions (``default``, ``length``, ``lower``, ``upper``). Nothing else exists: no
attribute access (paths only look keys up in mappings and indexes in lists), no arithmetic, no
calls into Python objects. Parsing and evaluation are bounded (:data:`MAX_TEMPLATE_LENGTH`,
:data:`MAX_DEPTH`, :data:`MAX_STEPS`). The grammar and semantics are in ``docs/expressions.md``.

A missing path (an absent key, an index past the end, a key looked up in a string) evaluates to
``null``. Every error is an :class:`ExpressionError` (an :class:`InvalidInput`) naming the template
and the position; messages never quote values from the context, only the template itself.

Templates are compiled once (cached by text) and evaluated many times.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import split_environment_name

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_STEPS",
    "MAX_TEMPLATE_LENGTH",
    "MAX_VALUES_DEPTH",
    "ROOTS",
    "ConditionOutcome",
    "ExpressionContext",
    "ExpressionError",
    "PathRead",
    "Template",
    "compile_template",
    "evaluate_condition",
    "render",
    "render_values",
]

MAX_TEMPLATE_LENGTH: Final = 4096
"""Longest template accepted, in characters."""
MAX_DEPTH: Final = 32
"""Deepest nesting of parentheses, lists, function arguments and ``not``."""
MAX_STEPS: Final = 10_000
"""Most evaluation steps one template may take (a path segment, an operator, a compared item)."""
MAX_VALUES_DEPTH: Final = 32
"""Deepest nesting of mappings and lists in a ``values`` document."""
ROOTS: Final = ("config", "application", "environment")
"""The context roots a path may start with."""

_MAX_NUMBER_LENGTH: Final = 32
_MAX_COMPARE_DEPTH: Final = 64
_EXCERPT: Final = 60


# --------------------------------------------------------------------------------------------
# errors


def _line_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


def _excerpt(text: str, position: int) -> str:
    if len(text) <= 2 * _EXCERPT:
        return json.dumps(text, ensure_ascii=False)
    start = max(0, position - _EXCERPT)
    end = min(len(text), position + _EXCERPT)
    body = json.dumps(text[start:end], ensure_ascii=False)[1:-1]
    return f'"{"…" if start else ""}{body}{"…" if end < len(text) else ""}"'


class ExpressionError(InvalidInput):
    """A template that cannot be parsed or evaluated.

    :param problem: what is wrong, without the location.
    :param expression: the whole template text.
    :param position: 0-based offset in ``expression`` where the problem is.
    :param location: where the template sits in its document (a JSON pointer), if known.
    """

    def __init__(
        self, problem: str, *, expression: str, position: int, location: str | None = None
    ) -> None:
        self.problem = problem
        self.expression = expression
        self.position = position
        self.line, self.column = _line_column(expression, position)
        where = f"column {self.column}"
        if "\n" in expression:
            where = f"line {self.line}, {where}"
        prefix = f"{location}: " if location else ""
        super().__init__(
            f"{prefix}expression {_excerpt(expression, position)}, {where}: {problem}",
            field=location,
        )

    def at(self, location: str) -> ExpressionError:
        """The same error, located at ``location`` in its document."""
        return ExpressionError(
            self.problem, expression=self.expression, position=self.position, location=location
        )


# --------------------------------------------------------------------------------------------
# context


@frozen
class ExpressionContext:
    """What a template can read: ``.config``, ``.application`` and ``.environment``."""

    config: Mapping[str, Any] = field(factory=dict)
    application: Mapping[str, Any] = field(factory=dict)
    environment: Mapping[str, Any] = field(factory=dict)

    @classmethod
    def for_application(
        cls, config: Mapping[str, Any], application: str, environment: str
    ) -> ExpressionContext:
        """The context of Application ``application`` in Environment ``environment``.

        ``config`` should be the public config: templates must not see secret values, because
        whatever they render may end up in Git.
        """
        organization, env_type = split_environment_name(environment)
        return cls(
            config=config,
            application={"name": application},
            environment={
                "name": environment,
                "organization": organization,
                "envType": env_type.value,
            },
        )

    def roots(self) -> Mapping[str, Any]:
        """The mapping paths start from, keyed by root name."""
        return {
            "config": self.config,
            "application": self.application,
            "environment": self.environment,
        }


@frozen
class PathRead:
    """A path a condition read, and the value it found (``None`` when missing)."""

    path: str
    value: Any


@frozen
class ConditionOutcome:
    """The result of a ``when`` condition and the paths it read, to explain the decision."""

    expression: str
    value: bool
    reads: tuple[PathRead, ...] = ()

    def explain(self, *, limit: int = 80) -> str:
        """``{{ … }} is false (.config.postgres.mode = "external")``: the value and its inputs."""
        verdict = f"{self.expression.strip()} is {'true' if self.value else 'false'}"
        if not self.reads:
            return verdict
        shown = []
        for read in self.reads:
            text = json.dumps(read.value, ensure_ascii=False, sort_keys=True, default=str)
            if len(text) > limit:
                text = text[: limit - 1] + "…"
            shown.append(f"{read.path} = {text}")
        return f"{verdict} ({', '.join(shown)})"


# --------------------------------------------------------------------------------------------
# values and their types


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "list"
    return "unsupported value"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _truthy(value: Any) -> bool:
    # Go-template/Jinja truthiness, spelled out: false, null, 0, "", [] and {} are false.
    if value is None or value is False:
        return False
    if value is True:
        return True
    if _is_number(value):
        return bool(value != 0)
    if isinstance(value, (str, list, tuple, Mapping)):
        return len(value) > 0
    return True


def _to_text(value: Any) -> str:
    """How a value is interpolated into surrounding text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------------------------
# evaluation


class _Evaluator:
    __slots__ = ("reads", "roots", "steps", "template")

    def __init__(self, template: Template, roots: Mapping[str, Any]) -> None:
        self.template = template
        self.roots = roots
        self.steps = 0
        self.reads: dict[str, Any] = {}

    def step(self, position: int, cost: int = 1) -> None:
        self.steps += cost
        if self.steps > MAX_STEPS:
            raise self.error(position, f"evaluation needs more than {MAX_STEPS} steps")

    def error(self, position: int, problem: str) -> ExpressionError:
        return ExpressionError(problem, expression=self.template.text, position=position)

    def equal(self, left: Any, right: Any, position: int, depth: int = 0) -> bool:
        """Strict equality: ``1 == true`` is false, ``1 == 1.0`` is true."""
        self.step(position)
        if depth > _MAX_COMPARE_DEPTH:
            # Context data is plain data, but a caller could hand over anything: stay bounded.
            raise self.error(position, f"values nest deeper than {_MAX_COMPARE_DEPTH} levels")
        if left is None or right is None:
            return left is right
        if isinstance(left, bool) or isinstance(right, bool):
            return isinstance(left, bool) and isinstance(right, bool) and left is right
        if _is_number(left) and _is_number(right):
            return bool(left == right)
        if isinstance(left, str) and isinstance(right, str):
            self.step(position, len(left) // 64)
            return left == right
        if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            return len(left) == len(right) and all(
                self.equal(a, b, position, depth + 1) for a, b in zip(left, right, strict=True)
            )
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            return left.keys() == right.keys() and all(
                self.equal(left[key], right[key], position, depth + 1) for key in left
            )
        return False


class _Node:
    __slots__ = ("position",)

    def __init__(self, position: int) -> None:
        self.position = position

    def evaluate(self, ev: _Evaluator) -> Any:
        raise NotImplementedError


class _Literal(_Node):
    __slots__ = ("value",)

    def __init__(self, position: int, value: Any) -> None:
        super().__init__(position)
        self.value = value

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        return self.value


class _Path(_Node):
    __slots__ = ("root", "segments", "text")

    def __init__(
        self, position: int, root: str, segments: tuple[str | int, ...], text: str
    ) -> None:
        super().__init__(position)
        self.root = root
        self.segments = segments
        self.text = text

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        value: Any = ev.roots.get(self.root)
        for segment in self.segments:
            ev.step(self.position)
            # Only mapping keys and list indexes: never getattr, so nothing but data is reachable.
            if isinstance(segment, str) and isinstance(value, Mapping):
                value = value.get(segment)
            elif isinstance(segment, int) and isinstance(value, (list, tuple)):
                value = value[segment] if segment < len(value) else None
            else:
                value = None
            if value is None:
                break
        ev.reads.setdefault(self.text, value)
        return value


class _List(_Node):
    __slots__ = ("items",)

    def __init__(self, position: int, items: tuple[_Node, ...]) -> None:
        super().__init__(position)
        self.items = items

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        return [item.evaluate(ev) for item in self.items]


class _Not(_Node):
    __slots__ = ("operand",)

    def __init__(self, position: int, operand: _Node) -> None:
        super().__init__(position)
        self.operand = operand

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        return not _truthy(self.operand.evaluate(ev))


class _BoolChain(_Node):
    """``a and b and c`` / ``a or b``: short-circuit, always a boolean."""

    __slots__ = ("is_and", "operands")

    def __init__(self, position: int, is_and: bool, operands: tuple[_Node, ...]) -> None:
        super().__init__(position)
        self.is_and = is_and
        self.operands = operands

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        for operand in self.operands:
            if _truthy(operand.evaluate(ev)) is not self.is_and:
                return not self.is_and
        return self.is_and


class _Compare(_Node):
    __slots__ = ("left", "operator", "right")

    def __init__(self, position: int, operator: str, left: _Node, right: _Node) -> None:
        super().__init__(position)
        self.operator = operator
        self.left = left
        self.right = right

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        left = self.left.evaluate(ev)
        right = self.right.evaluate(ev)
        op = self.operator
        if op == "==":
            return ev.equal(left, right, self.position)
        if op == "!=":
            return not ev.equal(left, right, self.position)
        if op in ("in", "not in"):
            return self._contains(ev, left, right) is (op == "in")
        if not (
            (_is_number(left) and _is_number(right))
            or (isinstance(left, str) and isinstance(right, str))
        ):
            raise ev.error(
                self.position,
                f"'{op}' compares two numbers or two strings, not "
                f"{_type_name(left)} and {_type_name(right)}",
            )
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)

    def _contains(self, ev: _Evaluator, item: Any, container: Any) -> bool:
        if isinstance(container, (list, tuple)):
            return any(ev.equal(item, member, self.position) for member in container)
        if isinstance(container, str) and isinstance(item, str):
            ev.step(self.position, len(container) // 64)
            return item in container
        if isinstance(container, Mapping) and isinstance(item, str):
            return item in container
        raise ev.error(
            self.position,
            f"'{self.operator}' needs a list, a string in a string or a key in a map, not "
            f"{_type_name(item)} in {_type_name(container)}",
        )


def _fn_default(ev: _Evaluator, node: _Node, args: list[Any]) -> Any:
    return args[1] if args[0] is None else args[0]


def _string_arg(ev: _Evaluator, node: _Node, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ev.error(node.position, f"{name}() takes a string, not {_type_name(value)}")
    ev.step(node.position, len(value) // 64)
    return value


def _fn_lower(ev: _Evaluator, node: _Node, args: list[Any]) -> Any:
    return _string_arg(ev, node, "lower", args[0]).lower()


def _fn_upper(ev: _Evaluator, node: _Node, args: list[Any]) -> Any:
    return _string_arg(ev, node, "upper", args[0]).upper()


def _fn_length(ev: _Evaluator, node: _Node, args: list[Any]) -> Any:
    value = args[0]
    if not isinstance(value, (str, list, tuple, Mapping)):
        raise ev.error(
            node.position, f"length() takes a string, a list or a map, not {_type_name(value)}"
        )
    return len(value)


_Function = Callable[[_Evaluator, _Node, list[Any]], Any]
_FUNCTIONS: Final[Mapping[str, tuple[int, _Function]]] = {
    "default": (2, _fn_default),
    "length": (1, _fn_length),
    "lower": (1, _fn_lower),
    "upper": (1, _fn_upper),
}
FUNCTIONS: Final = tuple(sorted(_FUNCTIONS))
"""The only functions a template may call."""


class _Call(_Node):
    __slots__ = ("args", "function", "name")

    def __init__(self, position: int, name: str, args: tuple[_Node, ...]) -> None:
        super().__init__(position)
        self.name = name
        self.function = _FUNCTIONS[name][1]
        self.args = args

    def evaluate(self, ev: _Evaluator) -> Any:
        ev.step(self.position)
        return self.function(ev, self, [arg.evaluate(ev) for arg in self.args])


# --------------------------------------------------------------------------------------------
# lexing and parsing

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<close>\}\})
    | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().\[\],])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES: Final = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_COMPARISONS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Token(NamedTuple):
    kind: str  # "number", "string", "name", "op", "close"
    text: str
    position: int


def _describe(token: _Token) -> str:
    return "the end of the expression '}}'" if token.kind == "close" else repr(token.text)


class _Parser:
    """Recursive descent over one ``{{ … }}`` block; ``depth`` bounds the recursion."""

    def __init__(self, template: str, start: int) -> None:
        self.template = template
        self.tokens = self._lex(start)
        self.index = 0
        self.depth = 0

    def error(self, position: int, problem: str) -> ExpressionError:
        return ExpressionError(problem, expression=self.template, position=position)

    def _lex(self, position: int) -> list[_Token]:
        text = self.template
        tokens: list[_Token] = []
        while True:
            if position >= len(text):
                raise self.error(position, "'{{' is not closed by '}}'")
            match = _TOKEN.match(text, position)
            if match is None:
                char = text[position]
                if char in "'\"":
                    raise self.error(position, "the string is not closed")
                raise self.error(position, f"unexpected character {char!r}")
            kind = match.lastgroup or ""
            if kind != "space":
                tokens.append(_Token(kind, match.group(), position))
            position = match.end()
            if kind == "close":
                return tokens

    @property
    def end(self) -> int:
        """Offset just after the closing ``}}``."""
        last = self.tokens[-1]
        return last.position + len(last.text)

    def peek(self, offset: int = 0) -> _Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def accept(self, *texts: str) -> _Token | None:
        token = self.peek()
        if token.kind in ("op", "name") and token.text in texts:
            self.index += 1
            return token
        return None

    def expect(self, text: str) -> _Token:
        token = self.peek()
        if token.kind in ("op", "name") and token.text == text:
            self.index += 1
            return token
        raise self.error(token.position, f"expected {text!r}, found {_describe(token)}")

    def parse(self) -> _Node:
        if self.peek().kind == "close":
            raise self.error(self.peek().position, "empty expression")
        node = self.expression()
        token = self.peek()
        if token.kind != "close":
            raise self.error(token.position, f"expected '}}}}', found {_describe(token)}")
        return node

    def nested(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(position, f"expression nests deeper than {MAX_DEPTH} levels")

    def expression(self) -> _Node:
        self.nested(self.peek().position)
        node = self.or_()
        self.depth -= 1
        return node

    def or_(self) -> _Node:
        first = self.and_()
        operands = [first]
        while self.accept("or", "||"):
            operands.append(self.and_())
        return first if len(operands) == 1 else _BoolChain(first.position, False, tuple(operands))

    def and_(self) -> _Node:
        first = self.not_()
        operands = [first]
        while self.accept("and", "&&"):
            operands.append(self.not_())
        return first if len(operands) == 1 else _BoolChain(first.position, True, tuple(operands))

    def not_(self) -> _Node:
        token = self.accept("not", "!")
        if token is None:
            return self.comparison()
        self.nested(token.position)
        operand = self.not_()
        self.depth -= 1
        return _Not(token.position, operand)

    def comparison_operator(self) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.index += 1
            return token.text
        if token.kind == "name" and token.text == "in":
            self.index += 1
            return "in"
        following = self.peek(1)
        if token.text == "not" and following.kind == "name" and following.text == "in":
            self.index += 2
            return "not in"
        return None

    def comparison(self) -> _Node:
        left = self.operand()
        position = self.peek().position
        operator = self.comparison_operator()
        if operator is None:
            return left
        right = self.operand()
        if self.comparison_operator() is not None:
            raise self.error(
                self.tokens[self.index - 1].position,
                "comparisons cannot be chained; combine them with 'and'",
            )
        return _Compare(position, operator, left, right)

    def operand(self) -> _Node:
        token = self.take()
        if token.kind == "number":
            return _Literal(token.position, self.number(token))
        if token.kind == "string":
            return _Literal(token.position, self.string(token))
        if token.kind == "op" and token.text == ".":
            return self.path(token)
        if token.kind == "op" and token.text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if token.kind == "op" and token.text == "[":
            return _List(token.position, self.arguments(token, "]"))
        if token.kind == "name":
            if token.text in ("true", "false", "null"):
                return _Literal(token.position, {"true": True, "false": False}.get(token.text))
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(token)
            if token.text in _KEYWORDS:
                raise self.error(token.position, f"expected a value, found {token.text!r}")
            raise self.error(
                token.position,
                f"unknown name {token.text!r}: paths start with '.', e.g. .config.{token.text}",
            )
        raise self.error(token.position, f"expected a value, found {_describe(token)}")

    def arguments(self, opening: _Token, closing: str) -> tuple[_Node, ...]:
        self.nested(opening.position)
        items: list[_Node] = []
        if not self.accept(closing):
            items.append(self.expression())
            while self.accept(","):
                items.append(self.expression())
            self.expect(closing)
        self.depth -= 1
        return tuple(items)

    def call(self, name: _Token) -> _Node:
        if name.text not in _FUNCTIONS:
            raise self.error(
                name.position,
                f"unknown function {name.text!r} (allowed: {', '.join(FUNCTIONS)})",
            )
        args = self.arguments(self.take(), ")")
        arity = _FUNCTIONS[name.text][0]
        if len(args) != arity:
            raise self.error(
                name.position,
                f"{name.text}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}",
            )
        return _Call(name.position, name.text, args)

    def path(self, dot: _Token) -> _Node:
        root = self.take()
        if root.kind != "name" or root.text not in ROOTS or root.position != dot.position + 1:
            raise self.error(
                root.position if root.kind == "name" else dot.position,
                f"a path starts with {', '.join('.' + r for r in ROOTS)}; found {_describe(root)}",
            )
        segments: list[str | int] = []
        end = root.position + len(root.text)
        while True:
            token = self.peek()
            if token.position != end or token.kind != "op" or token.text not in (".", "["):
                break  # a path is written without spaces: ".config.a" but not ".config .a"
            self.index += 1
            if token.text == ".":
                name = self.take()
                if name.kind != "name" or name.position != token.position + 1:
                    raise self.error(token.position, "expected a key name after '.'")
                segments.append(self.key(name, name.text))
                end = name.position + len(name.text)
            else:
                key = self.take()
                if key.kind == "string":
                    segments.append(self.key(key, self.string(key)))
                elif key.kind == "number" and key.text.isdigit():
                    segments.append(int(key.text))
                else:
                    raise self.error(
                        key.position, "expected a quoted key or a list index after '['"
                    )
                end = self.expect("]").position + 1
        return _Path(dot.position, root.text, tuple(segments), self.template[dot.position : end])

    def key(self, token: _Token, key: str) -> str:
        # Lookups only ever read mappings, but refusing dunders makes intent unmistakable.
        if key.startswith("__"):
            raise self.error(token.position, f"key {key!r}: names starting with '__' are refused")
        return key

    def number(self, token: _Token) -> int | float:
        if len(token.text) > _MAX_NUMBER_LENGTH:
            raise self.error(
                token.position, f"number literals have at most {_MAX_NUMBER_LENGTH} characters"
            )
        if any(mark in token.text for mark in ".eE"):
            value = float(token.text)
            if not math.isfinite(value):
                raise self.error(token.position, "number literal is out of range")
            return value
        return int(token.text)

    def string(self, token: _Token) -> str:
        body = token.text[1:-1]
        if "\\" not in body:
            return body
        out: list[str] = []
        chars = iter(enumerate(body))
        for offset, char in chars:
            if char != "\\":
                out.append(char)
                continue
            _, escaped = next(chars)
            if escaped not in _ESCAPES:
                raise self.error(
                    token.position + 1 + offset, f"unknown escape sequence '\\{escaped}'"
                )
            out.append(_ESCAPES[escaped])
        return "".join(out)


# --------------------------------------------------------------------------------------------
# templates


class Template:
    """A compiled template: literal text and ``{{ expression }}`` blocks.

    A template that is exactly one block (surrounding whitespace aside) evaluates to the typed
    value of its expression; any other template evaluates to a string, each block's value
    interpolated (strings as they are, ``null`` as nothing, booleans as ``true``/``false``,
    numbers in decimal, lists and maps as compact JSON).
    """

    __slots__ = ("_parts", "text")

    def __init__(self, text: str, parts: Sequence[str | _Node]) -> None:
        self.text = text
        self._parts = tuple(parts)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    @property
    def is_single(self) -> bool:
        """Whether the template is one ``{{ expression }}`` and so yields a typed value."""
        return len(self._parts) == 1 and isinstance(self._parts[0], _Node)

    @property
    def is_literal(self) -> bool:
        """Whether the template has no ``{{ }}`` block at all."""
        return all(isinstance(part, str) for part in self._parts)

    def _run(self, context: ExpressionContext) -> tuple[Any, _Evaluator]:
        ev = _Evaluator(self, context.roots())
        if self.is_single:
            node = self._parts[0]
            assert isinstance(node, _Node)
            return node.evaluate(ev), ev
        chunks: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                chunks.append(part)
            else:
                text = _to_text(part.evaluate(ev))
                ev.step(part.position, len(text) // 64)
                chunks.append(text)
        return "".join(chunks), ev

    def evaluate(self, context: ExpressionContext) -> Any:
        """The template's value in ``context``; containers are copies, never context objects."""
        value, _ = self._run(context)
        return copy.deepcopy(value) if isinstance(value, (list, tuple, Mapping)) else value

    def condition(self, context: ExpressionContext) -> ConditionOutcome:
        """Evaluate as a ``when`` condition: the value must be ``true`` or ``false``."""
        value, ev = self._run(context)
        if not isinstance(value, bool):
            first = self._parts[0] if self._parts else None
            position = first.position if isinstance(first, _Node) else 0
            hint = " (a missing path is null; use default(.path, false))" if value is None else ""
            raise ExpressionError(
                f"a condition must be true or false, this one is {_type_name(value)}{hint}",
                expression=self.text,
                position=position,
            )
        reads = tuple(PathRead(path, value) for path, value in ev.reads.items())
        return ConditionOutcome(self.text, value, reads)


def _split(text: str) -> Iterator[str | _Node]:
    position = 0
    while True:
        start = text.find("{{", position)
        if start < 0:
            if position < len(text):
                yield text[position:]
            return
        if start > position:
            yield text[position:start]
        parser = _Parser(text, start + 2)
        yield parser.parse()
        position = parser.end


def compile_template(text: str) -> Template:
    """Parse ``text`` once (results are cached by text); raise :class:`ExpressionError`."""
    if not isinstance(text, str):
        raise InvalidInput(f"a template must be a string, got {_type_name(text)}")
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise ExpressionError(
            f"the template is {len(text)} characters long; at most {MAX_TEMPLATE_LENGTH} "
            "are allowed",
            expression=text,
            position=MAX_TEMPLATE_LENGTH,
        )
    return _compile(text)


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> Template:
    parts: Sequence[str | _Node] = list(_split(text))
    blocks = [part for part in parts if isinstance(part, _Node)]
    if len(blocks) == 1 and all(isinstance(p, _Node) or not p.strip() for p in parts):
        # "  {{ x }}\n": whitespace around a single block (YAML leaves it) keeps the type.
        parts = blocks
    return Template(text, parts)


def render(text: str, context: ExpressionContext) -> Any:
    """Compile and evaluate one template."""
    return compile_template(text).evaluate(context)


def evaluate_condition(text: str, context: ExpressionContext) -> ConditionOutcome:
    """Evaluate a ``when`` condition; its ``value`` says whether the dependency is on."""
    return compile_template(text).condition(context)


def render_values(values: Mapping[str, Any], context: ExpressionContext) -> dict[str, Any]:
    """Render every string in a ``values`` document (mappings and lists, recursively).

    Keys are not templates. An error names the JSON pointer of the failing string inside
    ``values`` (``/databases/0``).
    """
    rendered = _render_value(values, context, (), 0)
    assert isinstance(rendered, dict)
    return rendered


def _pointer(parts: tuple[str | int, ...]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _render_value(
    value: Any, context: ExpressionContext, parts: tuple[str | int, ...], depth: int
) -> Any:
    if depth > MAX_VALUES_DEPTH:
        raise InvalidInput(
            f"{_pointer(parts)}: values nest deeper than {MAX_VALUES_DEPTH} levels",
            field=_pointer(parts),
        )
    if isinstance(value, str):
        try:
            return render(value, context)
        except ExpressionError as exc:
            raise exc.at(_pointer(parts)) from None
    if isinstance(value, Mapping):
        return {
            key: _render_value(item, context, (*parts, key), depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [
            _render_value(item, context, (*parts, index), depth + 1)
            for index, item in enumerate(value)
        ]
    return value
