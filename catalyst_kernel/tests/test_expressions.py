"""The expression language of ``when`` and ``values``: grammar, semantics, limits, safety."""

from __future__ import annotations

from typing import Any

import pytest

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.provisioning.expressions import (
    MAX_DEPTH,
    MAX_STEPS,
    MAX_TEMPLATE_LENGTH,
    MAX_VALUES_DEPTH,
    ExpressionContext,
    ExpressionError,
    compile_template,
    evaluate_condition,
    render,
    render_values,
)

CONFIG: dict[str, Any] = {
    "postgres": {"mode": "embedded", "size": 3},
    "hosts": ["a.example", "b.example"],
    "labels": {"team-name": "web", "tier": "front"},
    "enabled": True,
    "ratio": 0.5,
    "empty": "",
    "nothing": None,
}
CONTEXT = ExpressionContext.for_application(CONFIG, "marketing-site", "acme-prod")


def value(template: str, context: ExpressionContext = CONTEXT) -> Any:
    return render(template, context)


def error(template: str, context: ExpressionContext = CONTEXT) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        render(template, context)
    return caught.value


# --------------------------------------------------------------------------------------------
# values and types


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .config.postgres.mode == 'embedded' }}", True),
        ('{{ .config.postgres.mode == "external" }}', False),
        ("{{ .application.name }}", "marketing-site"),
        ("{{ .environment.name }}", "acme-prod"),
        ("{{ .environment.organization }}", "acme"),
        ("{{ .environment.envType }}", "prod"),
        ("{{ .config.postgres.size }}", 3),
        ("{{ .config.ratio }}", 0.5),
        ("{{ .config.hosts }}", ["a.example", "b.example"]),
        ("{{ .config.hosts[1] }}", "b.example"),
        ("{{ .config.labels['team-name'] }}", "web"),
        ('{{ .config.labels["tier"] }}', "front"),
        ("{{ 42 }}", 42),
        ("{{ -1.5e2 }}", -150.0),
        ("{{ true }}", True),
        ("{{ null }}", None),
        ("{{ 'it\\'s' }}", "it's"),
        ("{{ [1, 'two', [true]] }}", [1, "two", [True]]),
        ("{{ [] }}", []),
    ],
)
def test_a_single_block_yields_a_typed_value(template: str, expected: Any) -> None:
    result = value(template)
    assert result == expected
    assert type(result) is type(expected)


def test_whitespace_around_a_single_block_keeps_the_type() -> None:
    assert value("  {{ .config.postgres.size }}\n") == 3
    assert value("\n{{ true }}") is True


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("postgres://{{ .application.name }}-db:5432", "postgres://marketing-site-db:5432"),
        ("{{ .application.name }}-{{ .environment.envType }}", "marketing-site-prod"),
        ("n={{ .config.postgres.size }} r={{ .config.ratio }}", "n=3 r=0.5"),
        ("on={{ .config.enabled }}", "on=true"),
        ("missing=[{{ .config.nope }}]", "missing=[]"),
        ("hosts={{ .config.hosts }}", 'hosts=["a.example","b.example"]'),
        ("plain text, no blocks", "plain text, no blocks"),
        ("braces }} alone are text", "braces }} alone are text"),
        ("{{ '{{' }} literal", "{{ literal"),
    ],
)
def test_text_around_blocks_interpolates_as_a_string(template: str, expected: str) -> None:
    assert value(template) == expected


def test_a_missing_path_is_null() -> None:
    assert value("{{ .config.postgres.missing }}") is None
    assert value("{{ .config.nope.deeper.still }}") is None
    assert value("{{ .config.hosts[7] }}") is None
    assert value("{{ .config.postgres.mode.length }}") is None  # a key looked up in a string
    assert value("{{ .config.hosts.first }}") is None  # a key looked up in a list
    assert value("{{ .config.nope == null }}") is True


def test_equality_is_strict_about_types() -> None:
    context = ExpressionContext(config={"one": 1, "flag": True, "text": "1", "float": 1.0})
    assert value("{{ .config.one == .config.flag }}", context) is False
    assert value("{{ .config.one == .config.text }}", context) is False
    assert value("{{ .config.one == .config.float }}", context) is True
    assert value("{{ .config.one != .config.text }}", context) is True
    assert value("{{ [1, [2]] == [1, [2]] }}") is True
    assert value("{{ .config.labels == .config.labels }}") is True


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .config.postgres.size > 2 }}", True),
        ("{{ .config.postgres.size >= 3 }}", True),
        ("{{ .config.postgres.size < 3 }}", False),
        ("{{ .config.ratio <= 0.5 }}", True),
        ("{{ 'abc' < 'abd' }}", True),
        ("{{ true and false }}", False),
        ("{{ true && true }}", True),
        ("{{ false or true }}", True),
        ("{{ false || false }}", False),
        ("{{ not .config.enabled }}", False),
        ("{{ !.config.enabled }}", False),
        ("{{ not .config.empty }}", True),
        ("{{ not .config.hosts }}", False),
        ("{{ not 0 }}", True),
        ("{{ .config.nothing or 'fallback' }}", True),
        ("{{ not (.config.postgres.size > 2 and .config.enabled) }}", False),
        ("{{ true or false and false }}", True),  # and binds tighter than or
        ("{{ not .config.postgres.mode == 'embedded' }}", False),  # not applies to the comparison
        ("{{ 'a.example' in .config.hosts }}", True),
        ("{{ 'c.example' not in .config.hosts }}", True),
        ("{{ 'bed' in .config.postgres.mode }}", True),
        ("{{ 'tier' in .config.labels }}", True),
        ("{{ .config.postgres.mode in ['embedded', 'external'] }}", True),
        ("{{ 1 in [true] }}", False),
    ],
)
def test_operators(template: str, expected: bool) -> None:
    assert value(template) is expected


def test_boolean_operators_short_circuit() -> None:
    # The right-hand side would be an error if it were evaluated.
    assert value("{{ false and .config.postgres.size < 'x' }}") is False
    assert value("{{ true or .config.postgres.size < 'x' }}") is True


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ default(.config.nope, 'd') }}", "d"),
        ("{{ default(.config.postgres.mode, 'd') }}", "embedded"),
        ("{{ default(.config.empty, 'd') }}", ""),  # only null is replaced
        ("{{ lower('AbC') }}", "abc"),
        ("{{ upper(.environment.organization) }}", "ACME"),
        ("{{ length(.config.hosts) }}", 2),
        ("{{ length(.config.labels) }}", 2),
        ("{{ length('four') }}", 4),
    ],
)
def test_the_allowed_functions(template: str, expected: Any) -> None:
    assert value(template) == expected


def test_render_values_renders_every_string_recursively() -> None:
    values = {
        "databases": ["{{ .application.name }}"],
        "owner": {
            "team": "{{ .config.labels['team-name'] }}",
            "size": "{{ .config.postgres.size }}",
        },
        "literal": 5,
        "flag": "{{ .config.enabled }}",
        "{{ .application.name }}": "keys are not templates",
    }
    assert render_values(values, CONTEXT) == {
        "databases": ["marketing-site"],
        "owner": {"team": "web", "size": 3},
        "literal": 5,
        "flag": True,
        "{{ .application.name }}": "keys are not templates",
    }


def test_rendered_containers_are_copies_of_the_context() -> None:
    rendered = render_values({"hosts": "{{ .config.hosts }}"}, CONTEXT)
    rendered["hosts"].append("evil.example")
    assert CONFIG["hosts"] == ["a.example", "b.example"]


def test_conditions_explain_what_they_read() -> None:
    outcome = evaluate_condition("{{ .config.postgres.mode == 'external' }}", CONTEXT)
    assert outcome.value is False
    assert [(read.path, read.value) for read in outcome.reads] == [
        (".config.postgres.mode", "embedded")
    ]
    assert outcome.explain() == (
        "{{ .config.postgres.mode == 'external' }} is false (.config.postgres.mode = \"embedded\")"
    )


@pytest.mark.parametrize("template", ["{{ .config.postgres.mode }}", "{{ 1 }}", "yes"])
def test_a_condition_must_be_a_boolean(template: str) -> None:
    with pytest.raises(ExpressionError, match="must be true or false"):
        evaluate_condition(template, CONTEXT)


def test_a_null_condition_suggests_default() -> None:
    with pytest.raises(ExpressionError, match=r"default\(\.path, false\)"):
        evaluate_condition("{{ .config.monitoring.enabled }}", CONTEXT)
    assert evaluate_condition(
        "{{ default(.config.monitoring.enabled, false) }}", CONTEXT
    ).value is (False)


def test_templates_are_compiled_once() -> None:
    assert compile_template("{{ .config.x }}") is compile_template("{{ .config.x }}")


# --------------------------------------------------------------------------------------------
# errors name the expression and the position


@pytest.mark.parametrize(
    ("template", "column", "fragment"),
    [
        ("{{ .config.x == }}", 17, "expected a value"),
        ("{{ .config.x ==== 1 }}", 16, "expected a value"),
        ("{{ 1 == 1 == 1 }}", 11, "cannot be chained"),
        ("{{ foo }}", 4, "unknown name 'foo'"),
        ("{{ .cfg.x }}", 5, "a path starts with .config, .application, .environment"),
        ("{{ .config.x", 13, "not closed by '}}'"),
        ("{{ 'abc }}", 4, "the string is not closed"),
        ("{{ }}", 4, "empty expression"),
        ("{{ .config.a + 1 }}", 14, "unexpected character '+'"),
        ("{{ (1 }}", 7, "expected ')'"),
        ("{{ lower() }}", 4, "takes 1 argument, got 0"),
        ("{{ 'a\\q' }}", 6, "unknown escape"),
        ("{{ .config.x[-1] }}", 14, "quoted key or a list index"),
        ("{{ .config .x }}", 12, "expected '}}'"),
        ("text {{ and }}", 9, "expected a value, found 'and'"),
    ],
)
def test_syntax_errors_name_the_expression_and_column(
    template: str, column: int, fragment: str
) -> None:
    caught = error(template)
    assert isinstance(caught, InvalidInput)
    assert caught.column == column
    assert fragment in caught.problem
    assert caught.expression == template
    assert f"column {column}" in str(caught)


def test_errors_in_multi_line_templates_give_the_line() -> None:
    caught = error("first line\n{{ .config.a == }}")
    assert (caught.line, caught.column) == (2, 17)
    assert "line 2, column 17" in str(caught)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ .config.postgres.size < 'x' }}", "compares two numbers or two strings"),
        ("{{ .config.nope > 1 }}", "not null and number"),
        ("{{ 1 in 'abc' }}", "needs a list"),
        ("{{ 'x' in .config.postgres.size }}", "needs a list"),
        ("{{ lower(.config.hosts) }}", "lower() takes a string, not list"),
        ("{{ length(1) }}", "length() takes a string, a list or a map"),
    ],
)
def test_evaluation_errors_name_the_position(template: str, fragment: str) -> None:
    caught = error(template)
    assert fragment in caught.problem
    assert template in str(caught)


def test_evaluation_errors_never_quote_context_values() -> None:
    context = ExpressionContext(config={"token": "PLANTED-VALUE-123", "n": 1})
    for template in (
        "{{ .config.token < 1 }}",
        "{{ .config.n in .config.token }}",
        "{{ length(.config.n) }}",
        "{{ lower(.config.n) }}",
    ):
        assert "PLANTED" not in str(error(template, context))
    with pytest.raises(ExpressionError) as caught:
        evaluate_condition("{{ .config.token }}", context)
    assert "PLANTED" not in str(caught.value)


def test_values_errors_name_the_pointer_inside_values() -> None:
    with pytest.raises(ExpressionError) as caught:
        render_values({"spec": {"databases": ["ok", "{{ .config.x == }}"]}}, CONTEXT)
    assert caught.value.field == "/spec/databases/1"
    assert str(caught.value).startswith("/spec/databases/1: expression")


# --------------------------------------------------------------------------------------------
# limits


def test_template_length_is_bounded() -> None:
    padding = "x" * (MAX_TEMPLATE_LENGTH - len("{{ true }}"))
    assert value(padding + "{{ true }}") == padding + "true"
    caught = error(padding + "x{{ true }}")
    assert f"at most {MAX_TEMPLATE_LENGTH}" in caught.problem


def test_nesting_depth_is_bounded() -> None:
    def parens(depth: int) -> str:
        # The whole expression counts as one level.
        return "{{ " + "(" * (depth - 1) + "1" + ")" * (depth - 1) + " }}"

    assert value(parens(MAX_DEPTH)) == 1
    assert f"deeper than {MAX_DEPTH}" in error(parens(MAX_DEPTH + 1)).problem
    assert f"deeper than {MAX_DEPTH}" in error("{{ " + "not " * (MAX_DEPTH + 1) + "true }}").problem
    assert (
        f"deeper than {MAX_DEPTH}"
        in error("{{ " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + " }}").problem
    )
    assert value("{{ " + "not " * (MAX_DEPTH - 1) + "true }}") is False


def test_a_deeply_nested_template_is_refused_not_a_recursion_error() -> None:
    template = "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}"
    assert "deeper than" in error(template).problem


def test_evaluation_steps_are_bounded() -> None:
    context = ExpressionContext(config={"big": list(range(MAX_STEPS * 2))})
    assert value("{{ 0 in .config.big }}", context) is True  # found at once
    caught = error("{{ -1 in .config.big }}", context)
    assert f"more than {MAX_STEPS} steps" in caught.problem


def test_steps_are_counted_across_a_whole_template() -> None:
    context = ExpressionContext(config={"items": list(range(MAX_STEPS // 4))})
    block = "{{ -1 in .config.items }}"
    assert value(block * 2, context) == "falsefalse"
    assert "steps" in error(block * 8, context).problem


def test_large_equal_strings_cost_steps() -> None:
    context = ExpressionContext(config={"a": "x" * 1_000_000, "b": "x" * 1_000_000})
    assert "steps" in error("{{ .config.a == .config.b }}", context).problem


def test_comparing_absurdly_deep_data_is_refused_not_a_recursion_error() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    context = ExpressionContext(config={"a": deep, "b": deep})
    assert "deeper than" in error("{{ .config.a == .config.b }}", context).problem


def test_huge_number_literals_are_refused() -> None:
    assert "at most" in error("{{ " + "9" * 5000 + " }}").problem
    assert "out of range" in error("{{ 1e999 }}").problem


def test_values_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(MAX_VALUES_DEPTH + 1):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidInput, match=f"deeper than {MAX_VALUES_DEPTH}"):
        render_values(deep, CONTEXT)


# --------------------------------------------------------------------------------------------
# nothing that looks like code


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{{ __import__('os') }}", "unknown function '__import__'"),
        ("{{ eval('1') }}", "unknown function 'eval'"),
        ("{{ open('/etc/passwd') }}", "unknown function 'open'"),
        ("{{ getattr(.config, 'x') }}", "unknown function 'getattr'"),
        ("{{ .config.__class__ }}", "names starting with '__' are refused"),
        ("{{ .config['__globals__'] }}", "names starting with '__' are refused"),
        ("{{ .config.postgres.mode.upper() }}", "expected '}}'"),
        ("{{ .config.hosts.pop() }}", "expected '}}'"),
        ("{{ lambda: 1 }}", "unexpected character ':'"),
        ("{{ [x for x in .config.hosts] }}", "unknown name 'x'"),
        ("{{ {} }}", "unexpected character '{'"),
        ("{{ 1 + 1 }}", "unexpected character '+'"),
        ("{{ 'a' * 1000000 }}", "unexpected character '*'"),
        ("{{ .config.x if true else 1 }}", "expected '}}'"),
        ("{{ . }}", "a path starts with"),
        ("{{ .__class__ }}", "a path starts with"),
        ("{{ len(.config.hosts) }}", "unknown function 'len'"),
        ("{{ .config.a; import os }}", "unexpected character ';'"),
    ],
)
def test_anything_that_looks_like_code_is_refused(template: str, fragment: str) -> None:
    assert fragment in error(template).problem


def test_paths_never_reach_python_attributes() -> None:
    class Secretive:
        token = "PLANTED-ATTRIBUTE"

        def __getitem__(self, key: str) -> str:
            raise AssertionError("a path must not call into Python objects")

    context = ExpressionContext(config={"object": Secretive()})
    assert value("{{ .config.object.token }}", context) is None
    assert value("{{ .config.object['token'] }}", context) is None
