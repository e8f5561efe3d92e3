"""Commit cost of the embedded committer: does it follow the change or the repository?

Figures, all on the same machine in the same run:

(a) commit latency (median of ``commit()`` calls through the async API, each changing
    one Application's ``values.yaml``) in an Environment repository holding 1,000 Application
    directories, divided by the same in one holding 10. Target <= 1.5: the committer edits only
    the trees on the changed path, so a bigger repository costs only the rewrite of the one
    wider ``applications/`` tree (Git's format has no way around that). The raw loop's own
    1,000 / 10 ratio is printed beside it: that is what the tree format alone costs.
(b) committer commits/s divided by a raw pygit2 loop making the same change on a repository of
    the same size, 1,000 Applications (read main, edit the three trees on the path, write
    blob/trees/commit, move the ref; no locks, no checks, no threads, no trailers).
    Target >= 0.3.

Figures are medians of per-commit times. The four series (committer and raw loop, 10 and 1,000
Applications) run interleaved, commit by commit, so machine noise hits them alike. Both sides use
the same libgit2 fsync setting (process-wide): on by default, as the committer runs by default;
``--no-fsync`` measures without. On a shared machine, disk latency swings from one directory
and one minute to the next; ``--dir /dev/shm`` takes the disk out and leaves the work the code
does, which is what the ratios are about.

Run: uv run python benchmarks/bench_commit.py [--commits N] [--no-fsync] [--dir PATH]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import pygit2

from catalyst_kernel.model import Environment, FileAction, FileChange
from catalyst_kernel.provisioning.committer import CommitRequest
from catalyst_kernel.provisioning.git_committer import GitCommitter

ENVIRONMENT = "bench-prod"
FILES_PER_APPLICATION = ("kustomization.yaml", "values.yaml", "helmrelease.yaml")


def application_files(count: int) -> tuple[FileChange, ...]:
    files = [FileChange("policies/environment-policy.yaml", FileAction.ADD, "rules: []\n")]
    for n in range(count):
        for name in FILES_PER_APPLICATION:
            content = f"# app-{n:04d} {name}\nreplicas: 2\nimage: registry/app-{n}:1.0.0\n"
            files.append(FileChange(f"applications/app-{n:04d}/{name}", FileAction.ADD, content))
    return tuple(files)


def change(applications: int, n: int) -> FileChange:
    app = f"app-{(n * 7919) % applications:04d}"  # spread over the repository
    content = f"# {app} values.yaml\nreplicas: {n % 5 + 1}\nrevision: {n}\n"
    return FileChange(f"applications/{app}/values.yaml", FileAction.MODIFY, content)


def request(files: tuple[FileChange, ...], n: int) -> CommitRequest:
    return CommitRequest(
        environment=ENVIRONMENT,
        message=f"Update application values ({n})",
        files=files,
        actor="bench",
        operation_id=f"op-{n}",
    )


async def make_committer(root: Path, fsync: bool, applications: int) -> GitCommitter:
    committer = GitCommitter(root, fsync=fsync)
    await committer.start()
    await committer.create_repository(
        Environment.parse(ENVIRONMENT), request(application_files(applications), 0)
    )
    return committer


class RawLoop:
    """The least work the same change needs, straight on pygit2, one commit per call."""

    def __init__(self, gitdir: Path) -> None:
        self.repo = pygit2.Repository(str(gitdir))
        self.signature = pygit2.Signature("bench", "bench@localhost")

    def commit(self, applications: int, n: int) -> None:
        repo, edit = self.repo, change(applications, n)
        head = repo.references["refs/heads/main"].target
        assert isinstance(head, pygit2.Oid)
        root = repo[head].peel(pygit2.Commit).tree
        folder, name = edit.path.rsplit("/", 1)
        app_tree = repo.TreeBuilder(root[folder])
        app_tree.insert(name, repo.create_blob((edit.content or "").encode()), 0o100644)
        apps = repo.TreeBuilder(root["applications"])
        apps.insert(folder.rsplit("/", 1)[1], app_tree.write(), pygit2.GIT_FILEMODE_TREE)
        top = repo.TreeBuilder(root)
        top.insert("applications", apps.write(), pygit2.GIT_FILEMODE_TREE)
        message = f"Update application values ({n})"
        commit = repo.create_commit(
            None, self.signature, self.signature, message, top.write(), [head]
        )
        repo.references.create("refs/heads/main", commit, force=True)


async def run(commits: int, fsync: bool, where: str | None) -> None:
    pygit2.settings.enable_fsync_gitdir(fsync)
    sizes = (10, 1000)
    with tempfile.TemporaryDirectory(dir=where) as folder:
        base = Path(folder)
        committers = {size: await make_committer(base / f"c{size}", fsync, size) for size in sizes}
        raws = {}
        for size in sizes:  # the raw loop gets its own copies, built the same way
            built = await make_committer(base / f"raw{size}", fsync, size)
            raws[size] = RawLoop(built.root / "bench" / f"{ENVIRONMENT}.git")
            await built.close()
        pygit2.settings.enable_fsync_gitdir(fsync)  # start() only ever turns it on

        # The four series are interleaved commit by commit, and their order rotates, so a busy
        # moment of the machine (disk writeback, other processes) hits all of them alike.
        series = [(kind, size) for size in sizes for kind in ("c", "r")]
        latency: dict[str, list[float]] = {f"{kind}{size}": [] for kind, size in series}
        for n in range(1, commits + 1):
            for kind, size in series[n % 4 :] + series[: n % 4]:
                started = time.perf_counter()
                if kind == "c":
                    await committers[size].commit(request((change(size, n),), n))
                else:
                    raws[size].commit(size, n)
                latency[f"{kind}{size}"].append(time.perf_counter() - started)
        for committer in committers.values():
            await committer.close()

    p50 = {name: statistics.median(values) for name, values in latency.items()}
    p90 = {name: statistics.quantiles(values, n=10)[-1] for name, values in latency.items()}
    place = where or tempfile.gettempdir()
    print(f"commits per series: {commits}, fsync: {'on' if fsync else 'off'}, in: {place}")
    for size in sizes:
        for kind, label in (("c", "committer"), ("r", "raw pygit2")):
            name = f"{kind}{size}"
            print(
                f"    {label:10} {size:5,} applications: p50 {p50[name] * 1000:6.2f} ms   "
                f"p90 {p90[name] * 1000:6.2f} ms   {1 / p50[name]:7.1f} commits/s"
            )
    ratio_a = p50["c1000"] / p50["c10"]
    ratio_raw = p50["r1000"] / p50["r10"]
    ratio_b = p50["r1000"] / p50["c1000"]
    print(f"(a) committer latency 1,000 / 10 applications (target <= 1.5):  {ratio_a:.2f}")
    print(f"    the raw loop's own 1,000 / 10 (what the wider tree costs):   {ratio_raw:.2f}")
    print(f"(b) committer / raw commits/s, 1,000 applications (target >= 0.3): {ratio_b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=400, help="commits per series")
    parser.add_argument("--no-fsync", action="store_true", help="measure without fsync")
    parser.add_argument("--dir", help="where the repositories go (default: the temp folder)")
    options = parser.parse_args()
    anyio.run(run, options.commits, not options.no_fsync, options.dir)


if __name__ == "__main__":
    main()
