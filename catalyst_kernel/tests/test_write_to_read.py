"""An install committed through the (publishing) committer shows in the read model at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalyst_kernel.blueprints.catalog import Catalog, FolderSource
from catalyst_kernel.model import Environment
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.provisioning.environments import create_environment
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.provisioning.provisioner import InstallRequest, Provisioner
from catalyst_kernel.provisioning.publishing import PublishingCommitter
from catalyst_kernel.readside.projections import builtin_projections
from catalyst_kernel.readside.projector import Projector
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.readside.subjects import kv_key
from catalyst_kernel.secrets.local_store import LocalSecretStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.anyio
async def test_an_install_is_installing_in_the_read_model_once_committed(tmp_path: Path) -> None:
    spine = SqliteSpine(tmp_path / "spine.db")
    git = GitCommitter(tmp_path / "git", fsync=False)
    secrets = LocalSecretStore(tmp_path / "secrets")
    for service in (spine, git, secrets):
        await service.start()
    committer = PublishingCommitter(git, spine, sovereign="demo")
    await create_environment(
        committer,
        Environment.parse("acme-dev"),
        sovereign="demo",
        repository_url="https://git.example/acme/acme-dev.git",
        actor="admin",
    )
    catalog = Catalog.load([FolderSource(ROOT / "catalog")], strict=True).view("acme")
    provisioner = Provisioner(
        sovereign="demo", committer=committer, secrets=secrets, composers=builtin_composers()
    )
    _, commit = await provisioner.install(
        "acme-dev", InstallRequest(name="cache", blueprint="bp-redis"), catalog, actor="alice"
    )

    await Projector(spine, builtin_projections(), max_wait=0.05).catch_up("acme-dev")
    kv = await spine.key_value("acme-dev")
    entry = await kv.get(kv_key("application", "cache"))
    assert entry is not None
    assert entry.value is not None
    document = json.loads(entry.value)
    assert document["status"] == "Installing"
    assert document["version"] == "7.4.1"
    assert (await kv.get(kv_key("git", commit.sha))) is not None
    for service in (spine, git, secrets):
        await service.close()
