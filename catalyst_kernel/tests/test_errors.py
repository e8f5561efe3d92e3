"""One exception hierarchy: every kind is a CatalystError with a stable code."""

from __future__ import annotations

import pytest

from catalyst_kernel import errors


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (errors.NotFound, "not-found"),
        (errors.Conflict, "conflict"),
        (errors.InvalidInput, "invalid-input"),
        (errors.InvalidName, "invalid-name"),
        (errors.SettingsError, "invalid-settings"),
        (errors.Forbidden, "forbidden"),
        (errors.Unauthenticated, "unauthenticated"),
        (errors.BackendUnavailable, "backend-unavailable"),
        (errors.PluginError, "plugin-error"),
    ],
)
def test_every_error_is_a_catalyst_error_with_a_stable_code(
    kind: type[errors.CatalystError], code: str
) -> None:
    assert issubclass(kind, errors.CatalystError)
    assert kind.code == code


def test_names_and_settings_are_invalid_input() -> None:
    assert issubclass(errors.InvalidName, errors.InvalidInput)
    assert issubclass(errors.SettingsError, errors.InvalidInput)


def test_field_problems_are_json_pointers() -> None:
    problem = errors.FieldProblem.at(("spec", "depends", 0, "a/b~c"), "bad")
    assert problem.pointer == "/spec/depends/0/a~1b~0c"
    assert problem.parts == ("spec", "depends", "0", "a/b~c")
    assert problem.dotted == "spec.depends.0.a/b~c"
    assert problem.describe() == "/spec/depends/0/a~1b~0c: bad"
    assert errors.FieldProblem.at((), "root").describe() == "/: root"


def test_errors_carry_their_message_and_field() -> None:
    error = errors.InvalidInput("port must be 0..65535", field="port")
    assert str(error) == "port must be 0..65535"
    assert error.field == "port"
    assert errors.PluginError("x", plugin="nats").plugin == "nats"
