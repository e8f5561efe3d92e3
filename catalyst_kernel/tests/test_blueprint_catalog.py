"""The catalog: sources (folders, Git trees), visibility on every read, duplicates, problems."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalyst_kernel.blueprints.catalog import Catalog, FolderSource, GitSource
from catalyst_kernel.blueprints.loader import GitOrigin
from catalyst_kernel.blueprints.lookup import BlueprintLookup
from catalyst_kernel.errors import Conflict, InvalidInput, InvalidName, NotFound

CATALOG = Path(__file__).resolve().parents[2] / "catalog"


def _document(name: str, version: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "catalyst.openova.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": name, "version": version},
        "spec": {
            "card": {"title": name},
            "manifests": {
                "source": {
                    "kind": "HelmChart",
                    "ref": {"chart": name, "repository": "oci://charts", "version": "1.0.0"},
                }
            },
            **spec,
        },
    }


def _write(root: Path, name: str, version: str, folder: str | None = None, **spec: Any) -> Path:
    path = root / (folder or f"{name}/{version}")
    path.mkdir(parents=True)
    (path / "blueprint.yaml").write_text(yaml.safe_dump(_document(name, version, **spec)))
    return path


def _git(cwd: Path, *args: str) -> str:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=environment, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def _repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    return path


def _commit(repository: Path, message: str = "change") -> str:
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", message)
    return _git(repository, "rev-parse", "HEAD")


def _names(view: Any) -> list[str]:
    return [listed.name for listed in view.list()]


# --------------------------------------------------------------------------- the demo catalog


def test_the_demo_catalog_loads_without_problems() -> None:
    catalog = Catalog.load([FolderSource(CATALOG)], strict=True)
    assert catalog.problems == ()
    assert len(catalog.blueprints) == 10
    view = catalog.view(None)
    assert isinstance(view, BlueprintLookup)
    assert view.versions("bp-postgres") == ("1.4.0", "1.4.2", "1.5.0", "2.0.0")
    assert view.versions("bp-wordpress") == ("1.2.0", "1.3.0", "1.4.0")
    assert _names(view) == ["bp-postgres", "bp-redis", "bp-web-stack", "bp-wordpress"]
    wordpress = view.get("bp-wordpress", "1.4.0")
    assert wordpress.spec.depends[0].blueprint == "bp-postgres"
    stack = view.loaded("bp-web-stack", "1.0.0")
    assert stack.blueprint.spec.card.category == "composite"
    assert "manifests/kustomization.yaml" in stack.files


def test_versions_are_ordered_as_semver_not_as_text(tmp_path: Path) -> None:
    for version in ("1.10.0", "1.9.0", "1.2.0", "1.2.0-rc.1", "1.2.0-rc.10", "1.2.0-rc.2"):
        _write(tmp_path, "bp-app", version)
    view = Catalog.load([FolderSource(tmp_path)], strict=True).view(None)
    assert view.versions("bp-app") == (
        "1.2.0-rc.1",
        "1.2.0-rc.2",
        "1.2.0-rc.10",
        "1.2.0",
        "1.9.0",
        "1.10.0",
    )
    [listed] = view.list()
    assert listed.latest.version == "1.10.0"


# --------------------------------------------------------------------------- visibility


@pytest.fixture
def tenants(tmp_path: Path) -> Catalog:
    public, acme, globex = tmp_path / "catalog", tmp_path / "acme", tmp_path / "globex"
    _write(public, "bp-open", "1.0.0")
    _write(public, "bp-open", "2.0.0-beta.1", visibility="unlisted")
    _write(public, "bp-hidden", "1.0.0", visibility="unlisted")
    _write(public, "bp-acme-only", "1.0.0", visibility="private", owner={"organization": "acme"})
    _write(acme, "bp-tool", "1.0.0")
    _write(acme, "bp-tool", "1.1.0", visibility="unlisted")
    _write(acme, "bp-secret", "1.0.0", visibility="private")
    _write(globex, "bp-globex-tool", "3.0.0")
    return Catalog.load(
        [FolderSource(public), FolderSource(acme, "acme"), FolderSource(globex, "globex")],
        strict=True,
    )


def test_anonymous_viewers_see_listed_and_unlisted_public_blueprints_only(
    tenants: Catalog,
) -> None:
    view = tenants.view(None)
    assert _names(view) == ["bp-open"]
    assert view.list()[0].versions == ("1.0.0",)
    assert view.versions("bp-open") == ("1.0.0", "2.0.0-beta.1")
    assert view.get("bp-hidden", "1.0.0").name == "bp-hidden"
    for name in ("bp-acme-only", "bp-tool", "bp-secret", "bp-globex-tool"):
        assert view.versions(name) == ()


def test_a_private_blueprint_of_one_organization_is_invisible_to_another(
    tenants: Catalog,
) -> None:
    view = tenants.view("globex")
    assert _names(view) == ["bp-globex-tool", "bp-open"]
    for name, version in (("bp-acme-only", "1.0.0"), ("bp-tool", "1.0.0"), ("bp-secret", "1.0.0")):
        assert view.versions(name) == ()
        with pytest.raises(NotFound):
            view.get(name, version)
        with pytest.raises(NotFound):
            view.loaded(name, version)


def test_an_organization_sees_its_own_private_and_shared_blueprints(tenants: Catalog) -> None:
    view = tenants.view("acme")
    assert _names(view) == ["bp-acme-only", "bp-open", "bp-secret", "bp-tool"]
    tool = next(listed for listed in view.list() if listed.name == "bp-tool")
    assert tool.versions == ("1.0.0",)  # 1.1.0 is unlisted: gettable, not listed
    assert view.versions("bp-tool") == ("1.0.0", "1.1.0")
    assert view.loaded("bp-tool", "1.1.0").organization == "acme"
    assert view.get("bp-acme-only", "1.0.0").spec.owner.organization == "acme"
    assert view.versions("bp-globex-tool") == ()


def test_a_sovereign_admin_view_sees_everything(tenants: Catalog) -> None:
    view = tenants.view(None, sovereign_admin=True)
    assert _names(view) == [
        "bp-acme-only",
        "bp-globex-tool",
        "bp-open",
        "bp-secret",
        "bp-tool",
    ]
    assert view.get("bp-secret", "1.0.0").name == "bp-secret"
    assert tenants.view("globex", sovereign_admin=True).versions("bp-tool") == ("1.0.0", "1.1.0")


def test_a_hidden_blueprint_is_reported_exactly_like_a_missing_one(tenants: Catalog) -> None:
    view = tenants.view("globex")
    with pytest.raises(NotFound) as hidden:
        view.get("bp-secret", "1.0.0")
    with pytest.raises(NotFound) as missing:
        view.get("bp-nothing", "1.0.0")
    assert str(hidden.value) == "Blueprint bp-secret 1.0.0 is not in the catalog"
    assert str(missing.value) == "Blueprint bp-nothing 1.0.0 is not in the catalog"
    with pytest.raises(NotFound):
        view.get("bp-open", "9.9.9")


def test_names_and_versions_asked_for_are_validated(tenants: Catalog) -> None:
    view = tenants.view(None)
    with pytest.raises(InvalidName):
        view.versions("../bp-open")
    with pytest.raises(InvalidName):
        view.get("bp-open", "latest")
    with pytest.raises(InvalidName):
        tenants.view("Acme")
    with pytest.raises(InvalidName):
        FolderSource(Path("x"), organization="kube-system")


# --------------------------------------------------------------------------- duplicates & problems


def test_a_version_published_twice_in_one_source_names_both_origins(tmp_path: Path) -> None:
    first = _write(tmp_path, "bp-app", "1.0.0")
    second = _write(tmp_path, "bp-app", "1.0.0", folder="copy-of-bp-app")
    _write(tmp_path, "bp-app", "1.1.0")
    catalog = Catalog.load([FolderSource(tmp_path)])
    assert {p.file for p in catalog.problems} == {
        str(first / "blueprint.yaml"),
        str(second / "blueprint.yaml"),
    }
    assert all(p.pointer == "/metadata/version" for p in catalog.problems)
    assert all("bp-app 1.0.0 is published twice" in p.message for p in catalog.problems)
    view = catalog.view(None)
    assert view.versions("bp-app") == ("1.0.0", "1.1.0")
    assert view.get("bp-app", "1.1.0").version == "1.1.0"
    with pytest.raises(Conflict) as caught:
        view.get("bp-app", "1.0.0")
    assert str(first) in str(caught.value)
    assert str(second) in str(caught.value)
    with pytest.raises(InvalidInput, match="published twice"):
        Catalog.load([FolderSource(tmp_path)], strict=True)


def test_versions_differing_only_in_build_metadata_are_duplicates(tmp_path: Path) -> None:
    _write(tmp_path, "bp-app", "1.0.0+build.1")
    _write(tmp_path, "bp-app", "1.0.0+build.2")
    catalog = Catalog.load([FolderSource(tmp_path)])
    assert len(catalog.problems) == 2


def test_a_shared_blueprint_shadowing_a_public_one_is_a_duplicate_for_that_organization(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "public", "bp-app", "1.0.0")
    _write(tmp_path / "acme", "bp-app", "1.0.0")
    catalog = Catalog.load(
        [FolderSource(tmp_path / "public"), FolderSource(tmp_path / "acme", "acme")]
    )
    assert len(catalog.problems) == 2
    assert catalog.view("globex").get("bp-app", "1.0.0").name == "bp-app"
    with pytest.raises(Conflict):
        catalog.view("acme").get("bp-app", "1.0.0")


def test_two_organizations_may_each_have_their_own_blueprint_of_one_name(tmp_path: Path) -> None:
    _write(tmp_path / "acme", "bp-tool", "1.0.0", card={"title": "Acme's"})
    _write(tmp_path / "globex", "bp-tool", "1.0.0", card={"title": "Globex's"})
    catalog = Catalog.load(
        [FolderSource(tmp_path / "acme", "acme"), FolderSource(tmp_path / "globex", "globex")],
        strict=True,
    )
    assert catalog.view("acme").get("bp-tool", "1.0.0").spec.card.title == "Acme's"
    assert catalog.view("globex").get("bp-tool", "1.0.0").spec.card.title == "Globex's"
    # Only an all-seeing view meets both, and it is told rather than given either.
    with pytest.raises(Conflict):
        catalog.view(None, sovereign_admin=True).get("bp-tool", "1.0.0")


def test_a_broken_blueprint_does_not_hide_the_others(tmp_path: Path) -> None:
    _write(tmp_path, "bp-good", "1.0.0")
    broken = _write(tmp_path, "bp-bad", "1.0.0", colour="blue")
    (tmp_path / "bp-worse" / "1.0.0").mkdir(parents=True)
    (tmp_path / "bp-worse" / "1.0.0" / "blueprint.yaml").write_text("a: &a [*a]\n")
    catalog = Catalog.load([FolderSource(tmp_path)])
    assert [entry.name for entry in catalog.blueprints] == ["bp-good"]
    assert len(catalog.rejected) == 2
    described = sorted(problem.describe() for problem in catalog.problems)
    assert described[0].startswith(f"{broken / 'blueprint.yaml'}:/spec/colour: unknown key (line ")
    assert "aliases" in described[1]
    assert catalog.view(None).get("bp-good", "1.0.0").name == "bp-good"
    with pytest.raises(InvalidInput) as caught:
        Catalog.load([FolderSource(tmp_path)], strict=True)
    assert "/spec/colour: unknown key" in str(caught.value)


def test_an_unreadable_source_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    _write(tmp_path / "ok", "bp-good", "1.0.0")
    catalog = Catalog.load(
        [
            FolderSource(tmp_path / "missing"),
            GitSource(tmp_path / "ok"),  # a folder, but not a repository
            FolderSource(tmp_path / "ok"),
        ]
    )
    assert [entry.name for entry in catalog.blueprints] == ["bp-good"]
    messages = [problem.message for problem in catalog.problems]
    assert messages[0] == "is not a folder"
    assert messages[1].startswith("is not a Git repository")


def test_symlinked_folders_are_not_followed_when_looking_for_blueprints(tmp_path: Path) -> None:
    outside = _write(tmp_path / "outside", "bp-outside", "1.0.0")
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "linked").symlink_to(outside, target_is_directory=True)
    assert Catalog.load([FolderSource(tmp_path / "catalog")], strict=True).blueprints == ()


# --------------------------------------------------------------------------- Git sources


def test_a_git_source_reads_the_committed_tree_not_the_working_copy(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "catalog-repo")
    shutil.copytree(CATALOG / "bp-redis", repository / "bp-redis")
    commit = _commit(repository)
    # Uncommitted changes are not part of the catalog.
    shutil.rmtree(repository / "bp-redis" / "7.2.0")
    (repository / "bp-redis" / "7.4.1" / "blueprint.yaml").write_text("broken: [\n")
    catalog = Catalog.load([GitSource(repository)], strict=True)
    view = catalog.view(None)
    assert view.versions("bp-redis") == ("7.2.0", "7.4.1")
    loaded = view.loaded("bp-redis", "7.4.1")
    assert loaded.origin == GitOrigin(repository, "HEAD", commit, "bp-redis/7.4.1")
    assert str(loaded.origin) == f"{repository}@HEAD:bp-redis/7.4.1"
    expected = (CATALOG / "bp-redis" / "7.4.1" / "base" / "statefulset.yaml").read_bytes()
    assert loaded.files["base/statefulset.yaml"] == expected
    assert sorted(loaded.files) == sorted(
        str(path.relative_to(CATALOG / "bp-redis" / "7.4.1"))
        for path in (CATALOG / "bp-redis" / "7.4.1").rglob("*")
        if path.is_file() and path.name != "blueprint.yaml"
    )


def test_a_git_source_reads_any_ref_of_a_bare_repository(tmp_path: Path) -> None:
    work = _repository(tmp_path / "work")
    _write(work, "bp-app", "1.0.0")
    _commit(work, "1.0.0")
    _git(work, "checkout", "-q", "-b", "next")
    _write(work, "bp-app", "2.0.0")
    _commit(work, "2.0.0")
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "bare.git"))
    bare = tmp_path / "bare.git"
    assert Catalog.load([GitSource(bare, "main")]).view(None).versions("bp-app") == ("1.0.0",)
    next_view = Catalog.load([GitSource(bare, "next")]).view(None)
    assert next_view.versions("bp-app") == ("1.0.0", "2.0.0")
    only_two = Catalog.load([GitSource(bare, "next", path="bp-app/2.0.0")]).view(None)
    assert only_two.versions("bp-app") == ("2.0.0",)
    assert only_two.loaded("bp-app", "2.0.0").origin.file("blueprint.yaml") == (
        f"{bare}@next:bp-app/2.0.0/blueprint.yaml"
    )


def test_a_git_source_of_an_organization_is_private_to_it(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "acme-shared-blueprints")
    _write(repository, "bp-tool", "1.0.0")
    _commit(repository)
    catalog = Catalog.load([GitSource(repository, organization="acme")], strict=True)
    assert catalog.view("acme").versions("bp-tool") == ("1.0.0",)
    assert catalog.view("globex").versions("bp-tool") == ()
    assert catalog.view(None).list() == []


def test_a_bad_ref_or_path_is_a_problem_of_the_source(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    _write(repository, "bp-tool", "1.0.0")
    _commit(repository)
    catalog = Catalog.load(
        [GitSource(repository, "no-such-branch"), GitSource(repository, path="x")]
    )
    assert catalog.blueprints == ()
    messages = [problem.message for problem in catalog.problems]
    assert messages[0].startswith("the ref 'no-such-branch' does not name a commit")
    assert messages[1] == "the commit has no folder 'x'"


def test_symlinks_in_git_are_followed_only_to_files_inside_the_blueprint(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    folder = _write(repository, "bp-tool", "1.0.0")
    (repository / "secret.txt").write_text("hunter2")
    (folder / "README.md").write_text("# Tool\n")
    (folder / "docs.md").symlink_to("README.md")
    _commit(repository)
    loaded = (
        Catalog.load([GitSource(repository)], strict=True).view(None).loaded("bp-tool", "1.0.0")
    )
    assert loaded.files["docs.md"] == b"# Tool\n"
    (folder / "leak.txt").symlink_to("../../secret.txt")
    (folder / "abs.txt").symlink_to("/etc/passwd")
    _commit(repository)
    catalog = Catalog.load([GitSource(repository)])
    assert catalog.blueprints == ()
    problems = {Path(p.file).name: p.message for p in catalog.problems}
    assert problems == {
        "leak.txt": "is a symlink that points outside the Blueprint folder",
        "abs.txt": "is a symlink that points outside the Blueprint folder",
    }


def test_nested_blueprint_folders_in_git_are_separate_versions(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    outer = _write(repository, "bp-outer", "1.0.0", folder="outer")
    _write(repository, "bp-inner", "1.0.0", folder="outer/examples/inner")
    (outer / "notes.txt").write_text("outer notes")
    _commit(repository)
    view = Catalog.load([GitSource(repository)], strict=True).view(None)
    assert view.loaded("bp-outer", "1.0.0").files.keys() == {"notes.txt"}
    assert view.loaded("bp-inner", "1.0.0").files == {}
