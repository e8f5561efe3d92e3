"""The naming rules of SPEC §4: each rejection names the rule that failed."""

from __future__ import annotations

import pytest

from catalyst_kernel.errors import InvalidInput, InvalidName
from catalyst_kernel.model import Application, Environment, Organization
from catalyst_kernel.model.names import (
    check_application_name,
    check_blueprint_name,
    check_semver,
    dependency_application_name,
    split_environment_name,
)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Acme", "organization.pattern"),
        ("ac", "organization.length"),
        ("a--b", "organization.pattern"),
        ("-acme", "organization.pattern"),
        ("system", "organization.reserved"),
        ("acme-", "organization.pattern"),
        ("a" * 33, "organization.length"),
        ("kube-public", "organization.reserved"),
        ("flux-system", "organization.reserved"),
        ("prod", "organization.reserved"),
        ("catalog-sovereign", "organization.reserved"),
        ("acme_shop", "organization.pattern"),
        ("1acme", "organization.pattern"),
    ],
)
def test_organization_rejections_name_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidName) as caught:
        Organization(name)
    assert caught.value.rule == rule
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["acme", "acme-shop", "bank1", "a1b", "x" * 32])
def test_valid_organizations_are_accepted(name: str) -> None:
    assert Organization(name).name == name


def test_environment_with_long_env_type_is_rejected() -> None:
    with pytest.raises(InvalidName) as caught:
        Environment.parse("acme-staging")
    assert caught.value.rule == "environment.env-type"
    assert "'stg'" in str(caught.value)


def test_environment_is_split_on_the_last_hyphen() -> None:
    environment = Environment.parse("acme-shop-prod")
    assert (environment.organization, environment.env_type.value) == ("acme-shop", "prod")
    assert environment.name == "acme-shop-prod"
    assert Environment("acme", "prod").name == "acme-prod"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("acme", "environment.format"),
        ("Acme-prod", "environment.organization.pattern"),
        ("system-prod", "environment.organization.reserved"),
        ("ac-dev", "environment.organization.length"),
    ],
)
def test_environment_rejections_name_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidName) as caught:
        split_environment_name(name)
    assert caught.value.rule == rule


def test_application_name_of_54_characters_is_rejected() -> None:
    name = "a" * 54
    with pytest.raises(InvalidName) as caught:
        check_application_name(name)
    assert caught.value.rule == "application.length"
    assert "at most 53" in str(caught.value)


def test_application_name_of_53_characters_is_accepted() -> None:
    assert check_application_name("a" * 53) == "a" * 53


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Marketing", "application.pattern"),
        ("site-", "application.pattern"),
        ("../etc", "application.pattern"),
        ("a/b", "application.pattern"),
        ("flux-system", "application.reserved"),
        ("shared-blueprints", "application.reserved"),
        ("runbooks", "application.reserved"),
    ],
)
def test_application_rejections_name_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidName) as caught:
        check_application_name(name)
    assert caught.value.rule == rule


def test_accepted_names_from_the_acceptance_list() -> None:
    application = Application(
        name="marketing-site", environment="acme-prod", blueprint="bp-wordpress", version="1.4.0"
    )
    assert Organization("acme").name == "acme"
    assert Environment.parse("acme-prod").name == "acme-prod"
    assert application.name == "marketing-site"


def test_application_model_rejects_a_bad_environment() -> None:
    with pytest.raises(InvalidName) as caught:
        Application(
            name="marketing-site", environment="acme-staging", blueprint="bp-x", version="1.0.0"
        )
    assert caught.value.field == "environment"


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("wordpress", "blueprint.prefix"),
        ("bp-", "blueprint.pattern"),
        ("bp-Word", "blueprint.pattern"),
    ],
)
def test_blueprint_rejections_name_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidName) as caught:
        check_blueprint_name(name)
    assert caught.value.rule == rule


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0.0", ""])
def test_versions_must_be_semver(version: str) -> None:
    with pytest.raises(InvalidName, match="SemVer"):
        check_semver(version)


@pytest.mark.parametrize("version", ["1.0.0", "2.1.3-rc.1", "1.0.0+build.5"])
def test_semver_versions_are_accepted(version: str) -> None:
    assert check_semver(version) == version


def test_dependency_application_name() -> None:
    assert dependency_application_name("marketing-site", "bp-postgres") == "marketing-site-postgres"
    with pytest.raises(InvalidName, match="at most 53"):
        dependency_application_name("a" * 50, "bp-postgres")


def test_invalid_name_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        Organization("Acme")


@pytest.mark.parametrize("value", [None, 42, b"acme"])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidName, match="must be a string"):
        Organization(value)  # type: ignore[arg-type]
