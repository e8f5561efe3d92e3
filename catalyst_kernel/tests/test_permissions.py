"""The permission matrix: one test per cell, cross-Organization denial, Environment scoping."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalyst_kernel.errors import Forbidden
from catalyst_kernel.identity.permissions import (
    MATRIX,
    Operation,
    allowed,
    authorize,
    render_matrix,
)
from catalyst_kernel.model import Principal, Role

ROOT = Path(__file__).resolve().parents[2]


def principal(role: Role, organization: str | None = "acme", **extra: object) -> Principal:
    if role is Role.SOVEREIGN_ADMIN:
        organization = None
    return Principal(subject=f"{role.value}-user", roles={role}, organization=organization, **extra)  # type: ignore[arg-type]


CELLS = [(role, operation) for role in Role for operation in Operation]


@pytest.mark.parametrize(
    ("role", "operation"), CELLS, ids=[f"{r.value}-{o.value}" for r, o in CELLS]
)
def test_matrix_cell_in_own_environment(role: Role, operation: Operation) -> None:
    expected = operation in MATRIX[role]
    assert allowed(principal(role), operation, environment="acme-prod") is expected
    if not expected:
        with pytest.raises(Forbidden):
            authorize(principal(role), operation, environment="acme-prod")


@pytest.mark.parametrize(
    ("role", "operation"), CELLS, ids=[f"{r.value}-{o.value}" for r, o in CELLS]
)
def test_matrix_cell_in_another_organization(role: Role, operation: Operation) -> None:
    expected = role is Role.SOVEREIGN_ADMIN
    assert allowed(principal(role), operation, environment="globex-prod") is expected
    assert allowed(principal(role), operation, organization="globex") is expected


def test_environment_scoped_tokens_act_only_in_their_environments() -> None:
    developer = principal(Role.ORG_DEVELOPER, environments={"acme-dev"})
    assert allowed(developer, Operation.APPLICATIONS_INSTALL, environment="acme-dev")
    assert not allowed(developer, Operation.APPLICATIONS_INSTALL, environment="acme-prod")


def test_organization_and_environment_must_agree() -> None:
    admin = principal(Role.ORG_ADMIN)
    assert not allowed(
        admin, Operation.APPLICATIONS_READ, organization="acme", environment="globex-prod"
    )


def test_only_sovereign_admins_act_sovereign_wide() -> None:
    assert allowed(principal(Role.SOVEREIGN_ADMIN), Operation.ORGANIZATIONS_CREATE)
    assert not allowed(principal(Role.ORG_ADMIN), Operation.ORGANIZATIONS_CREATE)
    assert allowed(principal(Role.ORG_VIEWER), Operation.PLUGINS_READ)


def test_forbidden_messages_do_not_reveal_more_than_the_request() -> None:
    with pytest.raises(Forbidden) as caught:
        authorize(
            principal(Role.ORG_VIEWER), Operation.APPLICATIONS_INSTALL, environment="acme-prod"
        )
    assert str(caught.value) == "org-viewer-user may not applications:install in acme-prod"


def test_the_published_matrix_is_the_enforced_one() -> None:
    document = (ROOT / "docs" / "permissions.md").read_text()
    published = document.split("<!-- matrix:start -->\n", 1)[1].split("<!-- matrix:end -->", 1)[0]
    assert published.strip() == render_matrix().strip()
