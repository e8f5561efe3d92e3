"""Install, update and uninstall against the real embedded committer, secret store and the demo
catalog: the write side's acceptance journeys."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pygit2
import pytest
import yaml

from catalyst_kernel.blueprints.catalog import Catalog, CatalogView, FolderSource
from catalyst_kernel.errors import Conflict, InvalidInput, NotFound
from catalyst_kernel.model import Application, Environment, PlanAction
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.provisioning.environments import create_environment
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.provisioning.promotion import plan_promotion, plan_rollback
from catalyst_kernel.provisioning.provisioner import DependencyChoice, InstallRequest, Provisioner
from catalyst_kernel.secrets.backend import SecretPath
from catalyst_kernel.secrets.local_store import LocalSecretStore

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple-42"
ENVIRONMENT = "acme-prod"


@pytest.fixture(scope="module")
def catalog() -> CatalogView:
    return Catalog.load([FolderSource(ROOT / "catalog")], strict=True).view("acme")


@pytest.fixture
async def provisioner(tmp_path: Path) -> AsyncIterator[Provisioner]:
    committer = GitCommitter(tmp_path / "git", fsync=False)
    secrets = LocalSecretStore(tmp_path / "secrets")
    await committer.start()
    await secrets.start()
    await create_environment(
        committer,
        Environment.parse(ENVIRONMENT),
        sovereign="demo",
        repository_url="https://git.example/acme/acme-prod.git",
        actor="admin",
    )
    yield Provisioner(
        sovereign="demo", committer=committer, secrets=secrets, composers=builtin_composers()
    )
    await committer.close()
    await secrets.close()


def wordpress(name: str = "marketing-site", **config: Any) -> InstallRequest:
    base = {"siteTitle": "Acme", "adminEmail": "web@acme.example", "adminPassword": PASSWORD}
    return InstallRequest(name=name, blueprint="bp-wordpress", config={**base, **config})


def repository(tmp_path: Path) -> Path:
    return tmp_path / "git" / "acme" / f"{ENVIRONMENT}.git"


def all_blob_text(path: Path) -> str:
    repo = pygit2.Repository(str(path))
    texts = []
    for oid in repo.odb:
        obj = repo.get(oid)
        if isinstance(obj, pygit2.Blob):
            texts.append(obj.data.decode("utf-8", "replace"))
        elif isinstance(obj, pygit2.Commit):
            texts.append(obj.message)
    return "\n".join(texts)


@pytest.mark.anyio
async def test_embedded_postgres_creates_two_applications_with_a_depends_on_edge(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    plan, commit = await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    assert [(a.name, a.action) for a in plan.applications] == [
        ("marketing-site-postgres", PlanAction.CREATE),
        ("marketing-site", PlanAction.CREATE),
    ]
    (decision,) = plan.decisions
    assert decision.enabled
    apps = await provisioner.applications(ENVIRONMENT)
    assert apps["marketing-site"].dependencies == {"db": "marketing-site-postgres"}
    flux = yaml.safe_load(
        await provisioner.committer.read_file(
            ENVIRONMENT, "flux-system/applications/marketing-site.yaml"
        )
        or b""
    )
    assert flux["spec"]["dependsOn"] == [{"name": "marketing-site-postgres"}]
    assert commit.trailers["Catalyst-Plan-Digest"] == plan.digest
    assert commit.trailers["Catalyst-Actor"] == "alice"


@pytest.mark.anyio
async def test_secret_values_go_to_the_backend_never_to_git(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    assert PASSWORD not in all_blob_text(repository(tmp_path))
    external = yaml.safe_load(
        await provisioner.committer.read_file(
            ENVIRONMENT, "applications/marketing-site/externalsecret.yaml"
        )
        or b""
    )
    (item,) = external["spec"]["data"]
    _, organization, _, env_type, app, secret = item["remoteRef"]["key"].split("/")
    stored = await provisioner.secret_backend.read(SecretPath(organization, env_type, app, secret))
    assert stored == {"value": PASSWORD}


@pytest.mark.anyio
async def test_external_postgres_installs_one_application_referencing_it(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(
        ENVIRONMENT, InstallRequest(name="shared-db", blueprint="bp-postgres"), catalog, actor="a"
    )
    plan, _ = await provisioner.install(
        ENVIRONMENT,
        wordpress("blog", postgres={"mode": "external", "ref": "shared-db"}),
        catalog,
        actor="alice",
    )
    assert [a.name for a in plan.applications] == ["blog"]
    (decision,) = plan.decisions
    assert not decision.enabled
    apps = await provisioner.applications(ENVIRONMENT)
    assert apps["blog"].config["postgres"] == {"mode": "external", "ref": "shared-db"}
    assert apps["blog"].dependencies == {}


@pytest.mark.anyio
async def test_the_only_compatible_existing_application_is_reused(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(
        ENVIRONMENT,
        InstallRequest(name="shared-db", blueprint="bp-postgres", version="1.5.0"),
        catalog,
        actor="a",
    )
    plan, _ = await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    assert [(a.name, a.action) for a in plan.applications] == [
        ("shared-db", PlanAction.REUSE),
        ("marketing-site", PlanAction.CREATE),
    ]
    assert (await provisioner.applications(ENVIRONMENT))["marketing-site"].dependencies == {
        "db": "shared-db"
    }


@pytest.mark.anyio
async def test_the_caller_may_ask_for_a_dedicated_dependency(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(
        ENVIRONMENT,
        InstallRequest(name="shared-db", blueprint="bp-postgres", version="1.5.0"),
        catalog,
        actor="a",
    )
    request = wordpress()
    request = InstallRequest(
        name=request.name,
        blueprint=request.blueprint,
        config=request.config,
        dependencies={"db": DependencyChoice(create=True)},
    )
    plan, _ = await provisioner.install(ENVIRONMENT, request, catalog, actor="alice")
    assert "marketing-site-postgres" in {a.name for a in plan.applications}


@pytest.mark.anyio
async def test_a_plan_commits_nothing(provisioner: Provisioner, catalog: CatalogView) -> None:
    before = await provisioner.committer.log(ENVIRONMENT)
    operation = await provisioner.plan_install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    assert operation.plan.files
    assert await provisioner.committer.log(ENVIRONMENT) == before
    assert PASSWORD not in repr(operation)


@pytest.mark.anyio
async def test_bad_config_is_rejected_with_pointers_and_nothing_is_written(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    before = await provisioner.committer.log(ENVIRONMENT)
    with pytest.raises(InvalidInput) as caught:
        await provisioner.install(
            ENVIRONMENT, wordpress(adminEmail=3, colour="blue"), catalog, actor="alice"
        )
    assert caught.value.problems
    assert PASSWORD not in str(caught.value)
    assert await provisioner.committer.log(ENVIRONMENT) == before


@pytest.mark.anyio
async def test_installing_an_existing_name_is_a_conflict(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    with pytest.raises(Conflict, match="already exists"):
        await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")


@pytest.mark.anyio
async def test_uninstall_refuses_while_others_depend_unless_cascaded(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    with pytest.raises(Conflict, match="marketing-site depend on marketing-site-postgres"):
        await provisioner.uninstall(ENVIRONMENT, "marketing-site-postgres", actor="alice")
    await provisioner.uninstall(ENVIRONMENT, "marketing-site-postgres", cascade=True, actor="alice")
    assert await provisioner.applications(ENVIRONMENT) == {}
    assert await provisioner.committer.list_files(ENVIRONMENT, "applications/") == []
    assert await provisioner.committer.list_files(ENVIRONMENT, "catalyst/") == []
    assert await provisioner.committer.list_files(ENVIRONMENT, "flux-system/applications/") == []
    with pytest.raises(NotFound):
        await provisioner.uninstall(ENVIRONMENT, "marketing-site", actor="alice")


@pytest.mark.anyio
async def test_update_changes_config_and_honours_upgrade_blocks(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(
        ENVIRONMENT,
        InstallRequest(name="db", blueprint="bp-postgres", version="1.4.0"),
        catalog,
        actor="a",
    )
    with pytest.raises(Conflict):
        await provisioner.update(ENVIRONMENT, "db", catalog, version="2.0.0", actor="a")
    plan, _ = await provisioner.update(ENVIRONMENT, "db", catalog, version="1.5.0", actor="a")
    assert plan.applications[0].version == "1.5.0"
    assert (await provisioner.applications(ENVIRONMENT))["db"].version == "1.5.0"
    with pytest.raises(Conflict, match="downgrade"):
        await provisioner.update(ENVIRONMENT, "db", catalog, version="1.4.0", actor="a")


@pytest.mark.anyio
async def test_fifty_concurrent_installs_land_with_linear_history(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    async def install(n: int) -> None:
        await provisioner.install(
            ENVIRONMENT, InstallRequest(name=f"cache-{n}", blueprint="bp-redis"), catalog, actor="a"
        )

    with anyio.fail_after(300):
        async with anyio.create_task_group() as tasks:
            for n in range(50):
                tasks.start_soon(install, n)
    assert len(await provisioner.applications(ENVIRONMENT)) == 50
    path = repository(tmp_path)

    async def git(*args: str) -> subprocess.CompletedProcess[bytes]:
        return await anyio.run_process(["git", "--git-dir", str(path), *args], check=False)

    assert (await git("rev-list", "--merges", "--count", "main")).stdout.strip() == b"0"
    assert (await git("rev-list", "--count", "main")).stdout.strip() == b"51"
    fsck = await git("fsck", "--strict")
    assert fsck.returncode == 0, fsck.stderr


@pytest.mark.anyio
async def test_the_record_names_the_secrets_an_application_reads_without_their_values(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    record = (await provisioner.applications(ENVIRONMENT))["marketing-site"]
    assert record.secrets
    for name in record.secrets:
        path = SecretPath("acme", "prod", "marketing-site", name)
        assert await provisioner.secret_backend.exists(path)
    assert PASSWORD not in all_blob_text(repository(tmp_path))


# -------------------------------------------------------------------------------------------------
# Secret rotation: a secret-only update is a commit of a new secrets revision, never of a value
# -------------------------------------------------------------------------------------------------

NEW_PASSWORD = "rotated-horse-battery-staple-77"


async def external_secret(provisioner: Provisioner, app: str = "marketing-site") -> Any:
    content = await provisioner.committer.read_file(
        ENVIRONMENT, f"applications/{app}/externalsecret.yaml"
    )
    assert content is not None
    return yaml.safe_load(content)


async def record(provisioner: Provisioner, app: str = "marketing-site") -> Application:
    found = await provisioner.application(ENVIRONMENT, app)
    assert found is not None
    return found


@pytest.mark.anyio
async def test_an_install_with_secrets_gets_a_revision_the_external_secret_syncs_on(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    installed = await record(provisioner)
    assert installed.secrets_revision is not None
    assert re.fullmatch(r"[0-9a-f]{32}", installed.secrets_revision)
    external = await external_secret(provisioner)
    assert external["metadata"]["annotations"] == {"force-sync": installed.secrets_revision}
    # An Application without secrets has no revision, and its record no key for it.
    database = await record(provisioner, "marketing-site-postgres")
    if not database.secrets:
        assert database.secrets_revision is None
        text = await provisioner.committer.read_file(
            ENVIRONMENT, "applications/marketing-site-postgres/catalyst.yaml"
        )
        assert b"secretsRevision" not in (text or b"")


@pytest.mark.anyio
async def test_a_secret_only_update_rotates_the_value_in_the_backend_and_commits_a_revision(
    provisioner: Provisioner, catalog: CatalogView, tmp_path: Path
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    before = await record(provisioner)
    (secret,) = before.secrets
    annotation_before = (await external_secret(provisioner))["metadata"]["annotations"]

    plan, commit = await provisioner.update(
        ENVIRONMENT, "marketing-site", catalog, config={"adminPassword": NEW_PASSWORD}, actor="bob"
    )

    after = await record(provisioner)
    assert after.secrets_revision is not None
    assert after.secrets_revision != before.secrets_revision
    assert after.config == before.config
    assert after.secrets == before.secrets
    assert commit.message.splitlines()[0] == f"Update marketing-site: secrets {secret} rotated"
    assert {change.path for change in plan.files} == {
        "applications/marketing-site/catalyst.yaml",
        "applications/marketing-site/externalsecret.yaml",
    }
    annotations = (await external_secret(provisioner))["metadata"]["annotations"]
    assert annotations == {"force-sync": after.secrets_revision}
    assert annotations != annotation_before
    stored = await provisioner.secret_backend.read(
        SecretPath("acme", "prod", "marketing-site", secret)
    )
    assert stored == {"value": NEW_PASSWORD}
    git = all_blob_text(repository(tmp_path))
    assert NEW_PASSWORD not in git
    assert PASSWORD not in git


@pytest.mark.anyio
async def test_the_same_secret_value_again_changes_nothing(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    with pytest.raises(Conflict, match="nothing to change"):
        await provisioner.update(
            ENVIRONMENT, "marketing-site", catalog, config={"adminPassword": PASSWORD}, actor="a"
        )
    await provisioner.update(
        ENVIRONMENT, "marketing-site", catalog, config={"adminPassword": NEW_PASSWORD}, actor="a"
    )
    rotated = await record(provisioner)
    before = await provisioner.committer.log(ENVIRONMENT)
    with pytest.raises(Conflict, match="nothing to change"):
        await provisioner.update(
            ENVIRONMENT,
            "marketing-site",
            catalog,
            config={"adminPassword": NEW_PASSWORD},
            actor="a",
        )
    assert await provisioner.committer.log(ENVIRONMENT) == before
    assert (await record(provisioner)).secrets_revision == rotated.secrets_revision


@pytest.mark.anyio
async def test_a_config_only_update_keeps_the_secrets_revision(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    before = await record(provisioner)
    annotation_before = (await external_secret(provisioner))["metadata"]["annotations"]
    # The required password is given again (Git does not keep it), unchanged: no rotation.
    plan, commit = await provisioner.update(
        ENVIRONMENT,
        "marketing-site",
        catalog,
        config={"siteTitle": "Acme Blog", "adminPassword": PASSWORD},
        actor="a",
    )
    after = await record(provisioner)
    assert after.config["siteTitle"] == "Acme Blog"
    assert after.secrets_revision == before.secrets_revision
    assert (await external_secret(provisioner))["metadata"]["annotations"] == annotation_before
    assert "applications/marketing-site/externalsecret.yaml" not in {c.path for c in plan.files}
    assert commit.message.splitlines()[0] == "Update marketing-site: config"


@pytest.mark.anyio
async def test_a_rollback_keeps_the_current_secrets_revision(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    _, installed = await provisioner.install(ENVIRONMENT, wordpress(), catalog, actor="alice")
    await provisioner.update(
        ENVIRONMENT,
        "marketing-site",
        catalog,
        config={"siteTitle": "Acme Blog", "adminPassword": PASSWORD},
        actor="a",
    )
    await provisioner.update(
        ENVIRONMENT, "marketing-site", catalog, config={"adminPassword": NEW_PASSWORD}, actor="a"
    )
    rotated = await record(provisioner)
    proposal = await plan_rollback(
        provisioner, ENVIRONMENT, "marketing-site", installed.sha, actor="a"
    )
    files = {change.path: change.content for change in proposal.request.files}
    # The config goes back; the secret values do not, so neither does their revision.
    assert "applications/marketing-site/externalsecret.yaml" not in files
    restored = yaml.safe_load(files["applications/marketing-site/catalyst.yaml"] or "")
    assert restored["config"]["siteTitle"] == "Acme"
    assert restored["secretsRevision"] == rotated.secrets_revision


@pytest.mark.anyio
async def test_a_promotion_that_copies_secret_values_gives_the_destination_a_new_revision(
    provisioner: Provisioner, catalog: CatalogView
) -> None:
    await create_environment(
        provisioner.committer,
        Environment.parse("acme-stg"),
        sovereign="demo",
        repository_url="https://git.example/acme/acme-stg.git",
        actor="admin",
    )
    await provisioner.install("acme-stg", wordpress(), catalog, actor="alice")
    source = await provisioner.application("acme-stg", "marketing-site")
    assert source is not None
    assert source.secrets_revision is not None
    proposal = await plan_promotion(
        provisioner,
        catalog,
        application="marketing-site",
        source="acme-stg",
        destination=ENVIRONMENT,
        bundle=True,
        actor="a",
    )
    assert proposal.secret_copies
    files = {change.path: change.content for change in proposal.request.files}
    promoted = yaml.safe_load(files["applications/marketing-site/catalyst.yaml"] or "")
    revision = promoted["secretsRevision"]
    assert revision not in (None, source.secrets_revision)
    external = yaml.safe_load(files["applications/marketing-site/externalsecret.yaml"] or "")
    assert external["metadata"]["annotations"] == {"force-sync": revision}
