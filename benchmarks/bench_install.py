"""Install latency and throughput through the whole write side (resolve, compose, commit).

Figures:
1. install latency in an Environment of 1,000 Applications ÷ in one of 10 (target ≤ 1.5:
   cost follows the change, not the repository);
2. installs/s ÷ a raw pygit2 loop committing the same files into the same kind of repository,
   in this run (target ≥ 0.3).

Run: uv run python benchmarks/bench_install.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import pygit2

from catalyst_kernel.blueprints.catalog import Catalog, CatalogView, FolderSource
from catalyst_kernel.model import Environment, FileChange
from catalyst_kernel.provisioning.committer import CommitRequest
from catalyst_kernel.provisioning.composers import builtin_composers
from catalyst_kernel.provisioning.environments import create_environment
from catalyst_kernel.provisioning.git_committer import GitCommitter
from catalyst_kernel.provisioning.provisioner import InstallRequest, Provisioner
from catalyst_kernel.secrets.local_store import LocalSecretStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 20


async def environment_with(folder: Path, catalog: CatalogView, size: int) -> Provisioner:
    committer = GitCommitter(folder / "git", fsync=False)
    secrets = LocalSecretStore(folder / "secrets")
    await committer.start()
    await secrets.start()
    await create_environment(
        committer,
        Environment.parse("bench-prod"),
        sovereign="bench",
        repository_url="https://git.example/bench/bench-prod.git",
        actor="bench",
    )
    provisioner = Provisioner(
        sovereign="bench", committer=committer, secrets=secrets, composers=builtin_composers()
    )
    # Fill the repository in one commit: the same files an install writes, `size` times.
    template = await provisioner.plan_install(
        "bench-prod", InstallRequest(name="seed", blueprint="bp-redis"), catalog, actor="bench"
    )
    files: list[FileChange] = []
    for n in range(size):
        for change in template.plan.files:
            path = change.path.replace("seed", f"app-{n:04d}")
            content = (change.content or "").replace("seed", f"app-{n:04d}")
            files.append(FileChange(path, change.action, content))
    await committer.commit(
        CommitRequest(
            environment="bench-prod",
            message=f"seed {size} applications",
            files=tuple(files),
            actor="bench",
            operation_id=str(uuid.uuid4()),
        )
    )
    return provisioner


async def install_latencies(provisioner: Provisioner, catalog: CatalogView) -> list[float]:
    latencies = []
    for n in range(SAMPLES):
        start = time.perf_counter()
        await provisioner.install(
            "bench-prod",
            InstallRequest(name=f"new-{n}", blueprint="bp-redis"),
            catalog,
            actor="bench",
        )
        latencies.append(time.perf_counter() - start)
    return latencies


def raw_commit_rate(folder: Path, files: list[tuple[str, bytes]], count: int) -> float:
    repo = pygit2.init_repository(str(folder / "raw.git"), bare=True)
    signature = pygit2.Signature("bench", "bench@localhost")
    parent: list[pygit2.Oid] = []
    start = time.perf_counter()
    for n in range(count):
        index = pygit2.Index()
        if parent:
            index.read_tree(repo.get(parent[0]).tree)  # type: ignore[union-attr]
        for path, content in files:
            blob = repo.create_blob(content)
            index.add(
                pygit2.IndexEntry(path.replace("seed", f"app-{n}"), blob, pygit2.GIT_FILEMODE_BLOB)
            )
        tree = index.write_tree(repo)
        commit = repo.create_commit(
            "refs/heads/main", signature, signature, f"raw {n}", tree, parent
        )
        parent = [commit]
    return count / (time.perf_counter() - start)


async def main() -> None:
    catalog = Catalog.load([FolderSource(ROOT / "catalog")], strict=True).view("bench")
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as large_dir:
        small = await environment_with(Path(small_dir), catalog, 10)
        large = await environment_with(Path(large_dir), catalog, 1000)
        small_latency = statistics.median(await install_latencies(small, catalog))
        large_latency = statistics.median(await install_latencies(large, catalog))
        template = await small.plan_install(
            "bench-prod", InstallRequest(name="seed", blueprint="bp-redis"), catalog, actor="b"
        )
        files = [(c.path, (c.content or "").encode()) for c in template.plan.files]
        raw = raw_commit_rate(Path(small_dir), files, SAMPLES * 2)
    print(
        f"install latency, 10 Applications:    {small_latency * 1000:8.1f} ms (median of {SAMPLES})"
    )
    print(f"install latency, 1,000 Applications: {large_latency * 1000:8.1f} ms")
    print(
        f"ratio 1,000 / 10:                    {large_latency / small_latency:8.2f} (target <= 1.5)"
    )
    installs_per_second = 1 / small_latency
    print(f"installs/s:                          {installs_per_second:8.1f}")
    print(f"raw pygit2 commits/s (same files):   {raw:8.1f} (physical limit)")
    print(f"ratio installs / raw commits:        {installs_per_second / raw:8.2f} (target >= 0.3)")


if __name__ == "__main__":
    anyio.run(main)
    sys.exit(0)
