"""Loading one Blueprint folder: safe YAML, every problem with its file and pointer, safe files."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalyst_kernel.blueprints.loader import (
    BlueprintProblem,
    FolderOrigin,
    InvalidBlueprint,
    LoadLimits,
    load_blueprint,
    load_folder,
)
from catalyst_kernel.blueprints.yamlsafe import YamlLimits, load_all, load_document, safe_load
from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import SourceKind, Visibility

CATALOG = Path(__file__).resolve().parents[2] / "catalog"

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name.replace("/", "-")
    shutil.copytree(CATALOG / name, target)
    return target


def _edit(folder: Path, change: Any) -> None:
    path = folder / "blueprint.yaml"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _problems(folder: Path, **kwargs: Any) -> list[BlueprintProblem]:
    with pytest.raises(InvalidBlueprint) as caught:
        load_folder(folder, **kwargs)
    return list(caught.value.located)


def _by_pointer(problems: list[BlueprintProblem]) -> dict[str, str]:
    return {problem.pointer: problem.message for problem in problems}


# --------------------------------------------------------------------------- safe YAML


def test_plain_yaml_loads_with_dates_kept_as_text() -> None:
    data = safe_load(b"a: 1\nb: [x, {when: 2024-01-01}]\nc: null\n", source="f.yaml")
    assert data == {"a": 1, "b": ["x", {"when": "2024-01-01"}], "c": None}


def test_a_billion_laughs_document_is_refused_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as caught:
        safe_load(BILLION_LAUGHS, source="bomb.yaml")
    assert "aliases" in str(caught.value)
    assert "bomb.yaml" in str(caught.value)
    assert "line 2" in str(caught.value)
    # Even where aliases are allowed, the expansion is measured, not performed.
    with pytest.raises(InvalidInput, match="expands to more than 100000 nodes"):
        safe_load(BILLION_LAUGHS, source="bomb.yaml", limits=YamlLimits(max_aliases=1000))
    assert time.perf_counter() - started < 1.0


def test_a_few_aliases_may_be_allowed_explicitly() -> None:
    document = b"base: &base {cpu: 1}\nsmall: *base\n"
    with pytest.raises(InvalidInput, match="aliases"):
        safe_load(document, source="f.yaml")
    data = safe_load(document, source="f.yaml", limits=YamlLimits(max_aliases=1))
    assert data == {"base": {"cpu": 1}, "small": {"cpu": 1}}
    with pytest.raises(InvalidInput, match="more than 1 YAML aliases"):
        safe_load(document + b"large: *base\n", source="f.yaml", limits=YamlLimits(max_aliases=1))


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(InvalidInput, match="refers to a collection that contains it"):
        safe_load(b"a: &a [*a]\n", source="f.yaml", limits=YamlLimits(max_aliases=5))


def test_duplicate_keys_are_refused_with_pointer_and_lines() -> None:
    with pytest.raises(InvalidInput) as caught:
        safe_load(b"a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\na: 4\n", source="dup.yaml")
    assert [(p.pointer, p.message) for p in caught.value.problems] == [
        ("/b/x", "duplicate key 'x' (line 5; first at line 3)"),
        ("/a", "duplicate key 'a' (line 6; first at line 1)"),
    ]
    assert str(caught.value).startswith("dup.yaml:/b/x: duplicate key 'x'")


def test_keys_that_yaml_reads_as_booleans_or_numbers_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        safe_load(b"spec:\n  on: true\n  1: x\n", source="f.yaml")
    messages = [p.message for p in caught.value.problems]
    assert messages == [
        "the key 'on' is read as a boolean (line 2); keys must be text: quote it",
        "the key '1' is read as a number (line 3); keys must be text: quote it",
    ]
    assert {p.pointer for p in caught.value.problems} == {"/spec"}


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (b"a: 1\n---\nb: 2\n", "a second YAML document starts here"),
        (b"", "holds no YAML document"),
        (b"# only a comment\n", "holds no YAML document"),
        (b"a: [1, 2\n", "line 2"),
        (b"a: b: c\n", "mapping values are not allowed here (line 1, column 5)"),
        (b"a: !!binary aGk=\n", "the YAML tag !!binary is not allowed"),
        (b"a: !!python/object:os.system x\n", "is not allowed"),
        (b"a: !Ref x\n", "the YAML tag !Ref is not allowed"),
        (b"a: !!timestamp 2024-01-01\n", "the YAML tag !!timestamp is not allowed"),
        (b"[" * 100 + b"]" * 100, "nest deeper than 64 levels"),
        (b"a: \x00\n", "not readable as YAML text"),
    ],
)
def test_malformed_or_unsafe_yaml_is_refused_naming_file_and_line(
    document: bytes, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        safe_load(document, source="x/blueprint.yaml")
    assert str(caught.value).startswith("x/blueprint.yaml:")
    assert fragment in str(caught.value)


def test_an_oversized_document_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidInput, match="the file is 2048 bytes long; at most 1024"):
        safe_load(b"#" * 2048, source="big.yaml", limits=YamlLimits(max_bytes=1024))


def test_documents_keep_the_line_of_each_pointer() -> None:
    document = load_document(b"a:\n  b:\n    - x\n    - y: 1\n", source="f.yaml")
    assert document.line("/a/b/1/y") == 4
    assert document.line("/a/b/0") == 3
    assert document.line("/a") == 1  # a key's line, not its value's
    assert document.line("/a/missing/deeper") == 1  # the nearest ancestor's line


def test_multi_document_manifests_locate_problems_by_document_index() -> None:
    assert load_all(b"a: 1\n---\nb: 2\n", source="m.yaml") == [{"a": 1}, {"b": 2}]
    with pytest.raises(InvalidInput) as caught:
        load_all(b"a: 1\n---\nb: 2\nb: 3\n", source="m.yaml")
    assert caught.value.problems[0].pointer == "/1/b"


# --------------------------------------------------------------------------- the folder


def test_a_kustomize_blueprint_loads_with_its_files(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    loaded = load_folder(folder)
    assert (loaded.name, loaded.version) == ("bp-redis", "7.4.1")
    assert loaded.blueprint.spec.manifests.source.kind is SourceKind.KUSTOMIZE
    assert loaded.origin == FolderOrigin(folder)
    assert loaded.organization is None
    assert "blueprint.yaml" not in loaded.files
    assert (
        loaded.files["base/kustomization.yaml"] == (folder / "base/kustomization.yaml").read_bytes()
    )
    assert "overlays/large/kustomization.yaml" in loaded.files
    with pytest.raises(TypeError):
        loaded.files["base/extra.yaml"] = b"x"  # type: ignore[index]


def test_a_folder_from_an_organization_records_it(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    _edit(folder, lambda d: d["spec"].update(visibility="private"))
    loaded = load_folder(folder, organization="acme")
    assert loaded.organization == "acme"
    assert loaded.owner == "acme"
    assert loaded.blueprint.spec.visibility is Visibility.PRIVATE


def test_every_problem_in_blueprint_yaml_is_reported_with_file_pointer_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "bp"
    folder.mkdir()
    (folder / "blueprint.yaml").write_text(
        "apiVersion: catalyst.openova.io/v1alpha1\n"
        "kind: Blueprint\n"
        "metadata:\n"
        "  name: bp-../etc\n"
        "  version: 1.0\n"
        "spec:\n"
        "  card: {title: X}\n"
        "  colour: blue\n"
        "  manifests:\n"
        "    source: {kind: Helm, ref: {}}\n"
        "  depends:\n"
        "    - {blueprint: bp-postgres, version: '^^1', alias: db}\n"
    )
    problems = _problems(folder)
    file = str(folder / "blueprint.yaml")
    assert {p.file for p in problems} == {file}
    lines = {p.pointer: p.line for p in problems}
    assert lines == {
        "/metadata/name": 4,
        "/metadata/version": 5,
        "/spec/colour": 8,
        "/spec/manifests/source/kind": 10,
        "/spec/depends/0/version": 12,
    }
    messages = _by_pointer(problems)
    assert "DNS label" in messages["/metadata/name"]
    assert "1.0 is not of type 'string'" in messages["/metadata/version"]
    assert messages["/spec/colour"] == "unknown key"
    assert "'Helm' is not one of" in messages["/spec/manifests/source/kind"]
    described = problems[0].describe()
    assert described.startswith(f"{file}:/metadata/name: 'bp-../etc' is not valid")
    assert described.endswith("(line 4)")


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "bp"
    folder.mkdir()
    (folder / "blueprint.yaml").write_text("metadata:\n  name: bp-x\n   version: 1.0.0\n")
    [problem] = _problems(folder)
    assert problem.file == str(folder / "blueprint.yaml")
    assert "line 3" in problem.message


def test_a_yaml_bomb_in_blueprint_yaml_is_refused_quickly(tmp_path: Path) -> None:
    folder = tmp_path / "bp"
    folder.mkdir()
    (folder / "blueprint.yaml").write_text(BILLION_LAUGHS)
    started = time.perf_counter()
    [problem] = _problems(folder)
    assert time.perf_counter() - started < 1.0
    assert "aliases" in problem.message


def test_duplicate_keys_in_blueprint_yaml_are_refused(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.4.0", tmp_path)
    text = (folder / "blueprint.yaml").read_text()
    (folder / "blueprint.yaml").write_text(
        text.replace("  visibility: listed\n", "  visibility: listed\n  visibility: private\n")
    )
    [problem] = _problems(folder)
    assert problem.pointer == "/spec/visibility"
    assert problem.message.startswith("duplicate key 'visibility'")


def test_a_folder_without_blueprint_yaml_is_refused(tmp_path: Path) -> None:
    [problem] = _problems(tmp_path)
    assert problem.message == "there is no blueprint.yaml"


def test_kustomize_folders_must_be_inside_the_blueprint_and_hold_a_kustomization(
    tmp_path: Path,
) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)

    def change(document: dict[str, Any]) -> None:
        document["spec"]["manifests"]["source"]["ref"]["path"] = "../base"
        overlays = document["spec"]["manifests"]["overlays"]
        overlays["small"]["path"] = "/etc"
        overlays["medium"]["path"] = "overlays/huge"
        overlays["large"]["path"] = "overlays"

    _edit(folder, change)
    problems = _by_pointer(_problems(folder))
    assert "without '..'" in problems["/spec/manifests/source/ref/path"]
    assert "without '..'" in problems["/spec/manifests/overlays/small/path"]
    assert "is not in the Blueprint" in problems["/spec/manifests/overlays/medium/path"]
    assert "has no kustomization.yaml" in problems["/spec/manifests/overlays/large/path"]


def test_kustomize_manifests_must_be_safe_yaml(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    service = folder / "base" / "service.yaml"
    service.write_text(service.read_text() + "metadata:\n  name: again\n")
    [problem] = _problems(folder)
    assert problem.file == str(service)
    assert problem.pointer == "/1/metadata"
    assert "duplicate key 'metadata'" in problem.message


def test_symlinks_leaving_the_folder_are_refused(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (folder / "base" / "leak.yaml").symlink_to(secret)
    (folder / "base" / "up").symlink_to("../../secret.txt")
    (folder / "base" / "dir").symlink_to(folder / "overlays")
    (folder / "base" / "dangling").symlink_to(folder / "nowhere")
    problems = {Path(p.file).name: p.message for p in _problems(folder)}
    assert problems == {
        "leak.yaml": "is a symlink that points outside the Blueprint folder",
        "up": "is a symlink that points outside the Blueprint folder",
        "dir": "is a symlink to a folder; only symlinks to files are read",
        "dangling": "is a broken symlink",
    }


def test_symlinks_to_files_inside_the_folder_are_read(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    (folder / "README.md").write_text("# Redis\n")
    (folder / "docs.md").symlink_to("README.md")
    loaded = load_folder(folder)
    assert loaded.files["docs.md"] == b"# Redis\n"


def test_nested_blueprints_and_dot_git_are_not_part_of_the_folder(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    shutil.copytree(CATALOG / "bp-postgres" / "1.5.0", folder / "examples" / "postgres")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    loaded = load_folder(folder)
    assert not any(name.startswith(("examples/", ".git/")) for name in loaded.files)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_are_not_read(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    os.mkfifo(folder / "pipe")
    [problem] = _problems(folder)
    assert problem.file.endswith("pipe")
    assert problem.message == "is not a regular file"


def test_folder_size_limits_are_enforced(tmp_path: Path) -> None:
    folder = _copy("bp-redis/7.4.1", tmp_path)
    (folder / "big.bin").write_bytes(b"x" * 8192)
    [problem] = _problems(folder, limits=LoadLimits(max_file_bytes=4096))
    assert problem.message == "the file is larger than 4096 bytes"
    problems = _problems(folder, limits=LoadLimits(max_files=3))
    assert any("more than 3 files" in p.message for p in problems)


def test_schemas_may_only_reference_themselves(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    _edit(
        folder,
        lambda d: d["spec"]["configSchema"]["properties"].update(
            remote={"$ref": "https://example.com/evil.json"}, local={"$ref": "#/$defs/x"}
        ),
    )
    [problem] = _problems(folder)
    assert problem.pointer == "/spec/configSchema/properties/remote/$ref"
    assert "not a local reference" in problem.message


def test_a_blueprint_cannot_depend_on_itself(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    _edit(
        folder,
        lambda d: d["spec"].update(
            depends=[{"blueprint": "bp-postgres", "version": "^1.4", "alias": "self"}]
        ),
    )
    [problem] = _problems(folder)
    assert problem.pointer == "/spec/depends/0/blueprint"


def test_a_shared_blueprint_must_not_claim_another_owner(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    _edit(folder, lambda d: d["spec"]["owner"].update(organization="globex"))
    [problem] = _problems(folder, organization="acme")
    assert problem.pointer == "/spec/owner/organization"
    assert "'acme'" in problem.message
    assert "'globex'" in problem.message


def test_a_private_public_blueprint_must_name_its_organization(tmp_path: Path) -> None:
    folder = _copy("bp-postgres/1.5.0", tmp_path)
    _edit(folder, lambda d: d["spec"].update(visibility="private"))
    [problem] = _problems(folder)
    assert problem.pointer == "/spec/visibility"
    assert "spec.owner.organization" in problem.message


def test_file_names_that_are_not_safe_paths_are_refused() -> None:
    raw = (CATALOG / "bp-postgres" / "1.5.0" / "blueprint.yaml").read_bytes()
    for bad in ("../escape.yaml", "/etc/passwd", "a//b", "a\\b"):
        with pytest.raises(InvalidBlueprint):
            load_blueprint(
                {"blueprint.yaml": raw, bad: b"x"},
                origin=FolderOrigin(Path("x")),
                read_problems=[BlueprintProblem(bad, "", "unsafe")],
            )
    loaded = load_blueprint({"blueprint.yaml": raw}, origin=FolderOrigin(Path("x")))
    assert loaded.version == "1.5.0"
