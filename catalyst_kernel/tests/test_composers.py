"""The kernel's composers: what an installed Blueprint becomes in the Environment repository.

Every generated manifest is validated against the upstream CRD / Kubernetes schemas vendored in
tests/upstream-schemas, and carries the openova.io/* context labels.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest
import yaml

from catalyst_kernel.errors import InvalidInput, PluginError
from catalyst_kernel.model import Application, Blueprint, FileAction, FileChange, structure
from catalyst_kernel.provisioning.composer import CompositionRequest
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.provisioning.composers.flux import bootstrap_files
from catalyst_kernel.provisioning.composition import compose_application
from catalyst_kernel.testing import ManifestComposerConformance

HELM_BLUEPRINT: dict[str, Any] = {
    "metadata": {"name": "bp-wordpress", "version": "1.3.0+build.7"},
    "spec": {
        "card": {"title": "WordPress"},
        "manifests": {
            "source": {
                "kind": "HelmChart",
                "ref": {
                    "chart": "wordpress",
                    "repository": "oci://registry/charts",
                    "version": "24.1.0",
                },
            },
            "overlays": {"small": {"replicaCount": 1, "resources": {"cpu": "100m"}}},
        },
        "resources": [
            {
                "name": "media",
                "apiVersion": "storage.openova.io/v1alpha1",
                "kind": "BucketClaim",
                "spec": {"size": "10Gi"},
            }
        ],
    },
}
KUSTOMIZE_BLUEPRINT: dict[str, Any] = {
    "metadata": {"name": "bp-redis", "version": "7.2.0"},
    "spec": {
        "card": {"title": "Redis"},
        "manifests": {"source": {"kind": "Kustomize", "ref": {"path": "manifests"}}},
    },
}
REDIS_FILES = {
    "manifests/deployment.yaml": (
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: redis\n"
    ),
    "manifests/kustomization.yaml": b"resources:\n- deployment.yaml\n",
    "README.md": b"not copied",
}
STORE = {
    "vault": {
        "server": "https://openbao:8200",
        "path": "secret",
        "version": "v2",
        "auth": {"tokenSecretRef": {"name": "t", "key": "token"}},
    }
}


def helm_request(**changes: Any) -> CompositionRequest:
    application = Application(
        name="marketing-site",
        environment="acme-prod",
        blueprint="bp-wordpress",
        version="1.3.0+build.7",
        config={"replicaCount": 2, "title": "Acme"},
        overlay="small",
    )
    fields: dict[str, Any] = {
        "sovereign": "demo",
        "application": application,
        "blueprint": structure(HELM_BLUEPRINT, Blueprint),
        "depends_on": ("marketing-site-postgres",),
        "secrets": {"adminPassword": "org/acme/env/prod/marketing-site/admin-password"},
        "secret_store": STORE,
    }
    fields.update(changes)
    return CompositionRequest(**fields)


def redis_request() -> CompositionRequest:
    application = Application(
        name="cache", environment="acme-dev", blueprint="bp-redis", version="7.2.0"
    )
    return CompositionRequest(
        "demo", application, structure(KUSTOMIZE_BLUEPRINT, Blueprint), files=REDIS_FILES
    )


def documents(changes: list[FileChange]) -> dict[str, list[dict[str, Any]]]:
    return {
        change.path: [doc for doc in yaml.safe_load_all(change.content or "") if doc is not None]
        for change in changes
    }


class TestBuiltinComposers(ManifestComposerConformance):
    @pytest.fixture(params=[c.name for c in builtin_composers()])
    def provider(self, request: pytest.FixtureRequest) -> Any:
        return next(c for c in builtin_composers() if c.name == request.param)

    @pytest.fixture
    def composition(self) -> CompositionRequest:
        return helm_request()


@pytest.mark.anyio
async def test_a_helm_blueprint_becomes_a_complete_application_directory(
    upstream_schemas: Any,
) -> None:
    changes = await compose_application(builtin_composers(), helm_request())
    files = documents(changes)
    assert sorted(files) == [
        "applications/marketing-site/claims.yaml",
        "applications/marketing-site/externalsecret.yaml",
        "applications/marketing-site/helmrelease.yaml",
        "applications/marketing-site/helmrepository.yaml",
        "applications/marketing-site/kustomization.yaml",
        "applications/marketing-site/namespace.yaml",
        "applications/marketing-site/secretstore.yaml",
        "applications/marketing-site/values.yaml",
        "flux-system/applications/marketing-site.yaml",
    ]
    assert all(change.action is FileAction.ADD for change in changes)
    for path, docs in files.items():
        if path.endswith(("kustomization.yaml", "values.yaml", "claims.yaml")):
            continue
        for doc in docs:
            upstream_schemas.assert_valid(doc)
            labels = doc["metadata"]["labels"]
            assert labels["openova.io/sovereign"] == "demo"
            assert labels["openova.io/organization"] == "acme"
            assert labels["openova.io/environment"] == "acme-prod"
            assert labels["openova.io/application"] == "marketing-site"
            assert labels["openova.io/blueprint"] == "bp-wordpress"
            assert labels["openova.io/blueprint-version"] == "1.3.0_build.7"


@pytest.mark.anyio
async def test_values_apply_the_sizing_overlay_under_the_config() -> None:
    files = documents(await compose_application(builtin_composers(), helm_request()))
    (values,) = files["applications/marketing-site/values.yaml"]
    assert values == {"replicaCount": 2, "resources": {"cpu": "100m"}, "title": "Acme"}


@pytest.mark.anyio
async def test_the_flux_kustomization_depends_on_the_dependencies() -> None:
    files = documents(await compose_application(builtin_composers(), helm_request()))
    (flux,) = files["flux-system/applications/marketing-site.yaml"]
    assert flux["spec"]["dependsOn"] == [{"name": "marketing-site-postgres"}]
    assert flux["spec"]["path"] == "./applications/marketing-site"
    assert flux["spec"]["targetNamespace"] == "marketing-site"


@pytest.mark.anyio
async def test_the_kustomization_lists_every_manifest_and_feeds_values_to_helm() -> None:
    files = documents(await compose_application(builtin_composers(), helm_request()))
    (index,) = files["applications/marketing-site/kustomization.yaml"]
    assert index["resources"] == [
        "claims.yaml",
        "externalsecret.yaml",
        "helmrelease.yaml",
        "helmrepository.yaml",
        "namespace.yaml",
        "secretstore.yaml",
    ]
    assert index["configMapGenerator"] == [
        {"name": "marketing-site-values", "files": ["values.yaml"]}
    ]
    (release,) = files["applications/marketing-site/helmrelease.yaml"]
    assert release["spec"]["valuesFrom"][0]["name"] == "marketing-site-values"
    (repository,) = files["applications/marketing-site/helmrepository.yaml"]
    assert repository["spec"]["type"] == "oci"


@pytest.mark.anyio
async def test_secrets_are_references_only() -> None:
    files = documents(await compose_application(builtin_composers(), helm_request()))
    (external,) = files["applications/marketing-site/externalsecret.yaml"]
    assert external["spec"]["data"] == [
        {
            "secretKey": "adminPassword",
            "remoteRef": {
                "key": "org/acme/env/prod/marketing-site/admin-password",
                "property": "value",
            },
        }
    ]


@pytest.mark.anyio
async def test_a_secrets_revision_becomes_the_external_secrets_force_sync_annotation(
    upstream_schemas: Any,
) -> None:
    plain = documents(await compose_application(builtin_composers(), helm_request()))
    (external,) = plain["applications/marketing-site/externalsecret.yaml"]
    assert "annotations" not in external["metadata"]
    application = attrs.evolve(helm_request().application, secrets_revision="0123abcd" * 4)
    request = helm_request(application=application)
    files = documents(await compose_application(builtin_composers(), request))
    (external,) = files["applications/marketing-site/externalsecret.yaml"]
    assert external["metadata"]["annotations"] == {"force-sync": "0123abcd" * 4}
    upstream_schemas.assert_valid(external)
    (store,) = files["applications/marketing-site/secretstore.yaml"]
    assert "annotations" not in store["metadata"]


@pytest.mark.anyio
async def test_claims_come_from_the_blueprints_resources() -> None:
    files = documents(await compose_application(builtin_composers(), helm_request()))
    (claim,) = files["applications/marketing-site/claims.yaml"]
    assert claim["kind"] == "BucketClaim"
    assert claim["metadata"]["name"] == "marketing-site-media"
    assert claim["metadata"]["namespace"] == "marketing-site"
    assert claim["spec"] == {"size": "10Gi"}


@pytest.mark.anyio
async def test_a_kustomize_blueprint_copies_its_base(upstream_schemas: Any) -> None:
    changes = await compose_application(builtin_composers(), redis_request())
    files = documents(changes)
    assert "applications/cache/base/deployment.yaml" in files
    assert "applications/cache/base/kustomization.yaml" in files
    assert not any(path.endswith("README.md") for path in files)
    (index,) = files["applications/cache/kustomization.yaml"]
    assert index["resources"] == ["base", "namespace.yaml"]
    (flux,) = files["flux-system/applications/cache.yaml"]
    assert "dependsOn" not in flux["spec"]
    upstream_schemas.assert_valid(flux)


@pytest.mark.anyio
async def test_a_kustomize_source_without_files_is_an_error() -> None:
    request = redis_request()
    empty = CompositionRequest(request.sovereign, request.application, request.blueprint)
    with pytest.raises(InvalidInput, match="holds no files"):
        await compose_application(builtin_composers(), empty)


@pytest.mark.anyio
async def test_base_files_with_path_tricks_are_refused() -> None:
    request = redis_request()
    tricky = CompositionRequest(
        request.sovereign,
        request.application,
        request.blueprint,
        files={"manifests/../../x.yaml": b"a: 1"},
    )
    with pytest.raises(InvalidInput):
        await compose_application(builtin_composers(), tricky)


@pytest.mark.anyio
async def test_secrets_without_a_store_are_an_error() -> None:
    with pytest.raises(InvalidInput, match="SecretStore"):
        await compose_application(builtin_composers(), helm_request(secret_store=None))


@pytest.mark.anyio
async def test_two_composers_writing_one_path_is_a_plugin_error() -> None:
    composers = [*builtin_composers()]

    class Clash:
        name = "clash"

        async def compose(self, request: CompositionRequest) -> list[FileChange]:
            return [FileChange("applications/marketing-site/values.yaml", FileAction.ADD, "x: 1\n")]

    with pytest.raises(PluginError, match="'values' and 'clash' both write"):
        await compose_application([*composers, Clash()], helm_request())


def test_bootstrap_files_validate(upstream_schemas: Any) -> None:
    (change,) = bootstrap_files("demo", "acme-prod", "https://git.example/acme/acme-prod.git")
    assert change.path == "flux-system/gotk-sync.yaml"
    source, root = yaml.safe_load_all(change.content or "")
    upstream_schemas.assert_valid(source)
    upstream_schemas.assert_valid(root)
    assert root["spec"]["path"] == "./flux-system"
    assert source["spec"]["url"] == "https://git.example/acme/acme-prod.git"


@pytest.mark.anyio
async def test_composition_is_deterministic_and_copy_safe() -> None:
    request = helm_request()
    before = copy.deepcopy(dict(request.application.config))
    first = await compose_application(builtin_composers(), request)
    assert first == await compose_application(builtin_composers(), request)
    assert dict(request.application.config) == before
