"""The Application timeline: entries for commits, approvals, reconciles and health changes,
idempotent keys, retention, and ``KvTimelineReader`` over a real embedded spine.

The timeline is written by two projections: ``application-timeline`` (commits, approvals) and
``application-status`` (reconciles and health changes, which it derives anyway); the tests run
both, as the projector does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.model.event import Event
from catalyst_kernel.promotion.rules import TimelineEntry, TimelineReader
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.projections import (
    ApplicationStatusProjection,
    ApplicationTimelineProjection,
    KvTimelineReader,
)
from catalyst_kernel.readside.projections.timeline import ENTRY_KINDS, entry_key
from catalyst_kernel.readside.spine import KeyValue
from catalyst_kernel.readside.sqlite_spine import SqliteSpine
from catalyst_kernel.testing import MemoryProjectionView

ENV = "acme-dev"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def commit(sha: str, *applications: dict[str, Any], seconds: int = 0) -> Event:
    return Event(
        id=f"commit-{sha}",
        source="/sovereigns/demo/committer",
        type="io.catalyst.git.commit",
        time=at(seconds),
        subject=f"git.{sha}",
        data={
            "sha": sha,
            "parents": [],
            "message": f"catalyst: {sha}",
            "actor": "alice",
            "operation": "op",
            "applications": list(applications),
        },
    )


def kustomization(
    applied: str | None,
    *,
    ready: str = "True",
    reason: str = "ReconciliationSucceeded",
    rv: int,
    seconds: int,
    name: str = "web",
) -> Event:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m"}]
    }
    if applied is not None:
        status.update(lastAppliedRevision=applied, lastAttemptedRevision=applied)
    obj = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "resourceVersion": str(rv)},
        "spec": {},
        "status": status,
    }
    return Event(
        id=f"flux-{name}-{rv}",
        source="/sovereigns/demo/flux-webhook",
        type="io.catalyst.flux.object.changed",
        time=at(seconds),
        subject=f"flux.{name}",
        data={"object": obj},
    )


def change(action: str, *, seconds: int, **extra: Any) -> Event:
    return Event(
        id=f"change-42-{action}",
        source="/sovereigns/demo/committer",
        type=f"io.catalyst.change.{action}",
        time=at(seconds),
        subject="catalyst.change.42",
        data={"id": "42", "revision": 1, "author": "bob", "applications": ["web"], **extra},
    )


def install(version: str = "1.0.0") -> dict[str, Any]:
    return {"name": "web", "action": "install", "version": version, "blueprint": "bp-wordpress"}


def update(version: str) -> dict[str, Any]:
    return {"name": "web", "action": "update", "version": version}


HISTORY = [
    commit("c1", install("1.0.0"), seconds=0),
    kustomization(None, ready="Unknown", reason="Progressing", rv=1, seconds=10),
    kustomization("main@sha1:c1", rv=2, seconds=20),
    change("opened", seconds=25),
    change("approved", seconds=30, approver="carol", groups=["platform"]),
    change("merged", seconds=35, commit="c2"),
    commit("c2", update("1.1.0"), seconds=40),
    kustomization("main@sha1:c2", rv=3, seconds=50),
]


def writers() -> list[Projection]:
    """The projections that write the timeline, in the order the projector runs them."""
    return [ApplicationStatusProjection(), ApplicationTimelineProjection()]


async def project(
    *events: Event,
    view: MemoryProjectionView | None = None,
    projections: list[Projection] | None = None,
) -> dict[str, Any]:
    view = view or MemoryProjectionView()
    projections = writers() if projections is None else projections
    for event in events:
        for projection in projections:
            if projection.handles(event):
                await projection.apply(event, view)
    return view.state


def timeline(state: dict[str, Any], application: str = "web") -> list[dict[str, Any]]:
    """The Application's entries in the order the reader returns them (time, then kind)."""
    prefix = f"timeline/{application}/"
    entries = [(key, value) for key, value in state.items() if key.startswith(prefix)]
    entries.sort(key=lambda item: (item[1]["time"], ENTRY_KINDS.index(item[1]["kind"]), item[0]))
    return [value for _, value in entries]


def summary(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e["version"], e["status"]) for e in entries]


EXPECTED = [
    ("commit", "1.0.0", None),
    ("health", "1.0.0", "Installing"),
    ("reconcile", "1.0.0", None),
    ("health", "1.0.0", "Running"),
    ("health", "1.0.0", "Pending approval"),
    ("approval", None, None),
    ("health", "1.0.0", "Running"),
    ("commit", "1.1.0", None),
    ("health", "1.1.0", "Updating"),
    ("reconcile", "1.1.0", None),
    ("health", "1.1.0", "Running"),
]


@pytest.mark.anyio
async def test_commits_reconciles_approvals_and_health_changes_are_recorded() -> None:
    state = await project(*HISTORY)
    assert summary(timeline(state)) == EXPECTED
    assert all(key.startswith("timeline/web/2026") for key in state if key.startswith("timeline/"))


@pytest.mark.anyio
async def test_entries_carry_their_details() -> None:
    entries = timeline(await project(*HISTORY))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_kind.setdefault(entry["kind"], []).append(entry)
    first_commit = min(by_kind["commit"], key=lambda e: e["time"])
    assert first_commit["detail"] == {
        "sha": "c1",
        "actor": "alice",
        "message": "catalyst: c1",
        "action": "install",
        "blueprint": "bp-wordpress",
    }
    (approval,) = by_kind["approval"]
    assert approval["detail"] == {
        "change": "42",
        "approver": "carol",
        "revision": 1,
        "groups": ["platform"],
    }
    reconciles = sorted(by_kind["reconcile"], key=lambda e: e["time"])
    assert [r["detail"]["revision"] for r in reconciles] == ["main@sha1:c1", "main@sha1:c2"]
    assert reconciles[0]["detail"]["object"] == "Kustomization"
    assert reconciles[0]["detail"]["ready"] == "True"
    health = sorted(by_kind["health"], key=lambda e: e["time"])
    assert [(h["detail"]["previous"], h["status"]) for h in health] == [
        (None, "Installing"),
        ("Installing", "Running"),
        ("Running", "Pending approval"),
        ("Pending approval", "Running"),
        ("Running", "Updating"),
        ("Updating", "Running"),
    ]


@pytest.mark.anyio
async def test_flux_progressing_is_not_a_reconcile_transition() -> None:
    state = await project(
        commit("c1", install()),
        kustomization("main@sha1:c1", rv=1, seconds=1),
        kustomization("main@sha1:c1", ready="Unknown", reason="Progressing", rv=2, seconds=2),
        kustomization("main@sha1:c1", rv=3, seconds=3),
    )
    assert [e["kind"] for e in timeline(state)].count("reconcile") == 1


@pytest.mark.anyio
async def test_a_failed_reconcile_is_recorded_with_its_reason() -> None:
    state = await project(
        commit("c1", install()),
        kustomization("main@sha1:c1", ready="False", reason="BuildFailed", rv=1, seconds=1),
    )
    (reconcile,) = [e for e in timeline(state) if e["kind"] == "reconcile"]
    assert (reconcile["detail"]["ready"], reconcile["detail"]["reason"]) == ("False", "BuildFailed")
    assert [e["status"] for e in timeline(state) if e["kind"] == "health"][-1] == "Failed"


@pytest.mark.anyio
async def test_applying_an_event_again_writes_the_same_key_and_nothing_else() -> None:
    once = await project(*HISTORY)
    twice = await project(*(event for event in HISTORY for _ in range(2)))
    assert twice == once


def test_the_same_event_always_has_the_same_key() -> None:
    first = entry_key("web", at(1), "event-1", "commit")
    assert first == entry_key("web", at(1), "event-1", "commit")
    assert first.startswith("timeline/web/20261130T120001000000Z-")
    assert first != entry_key("web", at(1), "event-1", "health")
    assert first != entry_key("web", at(1), "event-2", "commit")


@pytest.mark.anyio
async def test_entries_are_kept_after_uninstall() -> None:
    uninstall = commit("c3", {"name": "web", "action": "uninstall"}, seconds=60)
    before = timeline(await project(*HISTORY))
    after = timeline(await project(*HISTORY, uninstall))
    assert all(entry in after for entry in before)
    assert len(after) == len(before) + 2
    last_health = max((e for e in after if e["kind"] == "health"), key=lambda e: e["time"])
    assert last_health["status"] is None
    assert last_health["detail"] == {"previous": "Running", "reason": "uninstalled"}


@pytest.mark.anyio
async def test_the_order_the_two_writers_run_in_does_not_matter() -> None:
    forward = await project(*HISTORY)
    backward = await project(*HISTORY, projections=writers()[::-1])
    assert backward == forward


@pytest.mark.anyio
async def test_the_timeline_projection_writes_commits_and_approvals_and_nothing_else() -> None:
    alone = await project(*HISTORY, projections=[ApplicationTimelineProjection()])
    assert all(key.startswith("timeline/web/") for key in alone)
    assert summary(timeline(alone)) == [entry for entry in EXPECTED if entry[0] in ENTRY_KINDS[:2]]
    status_only = await project(*HISTORY, projections=[ApplicationStatusProjection()])
    written = {key for key in status_only if key.startswith("timeline/")}
    assert not written & set(alone), "the two writers share no key"
    assert {status_only[key]["kind"] for key in written} == {"reconcile", "health"}
    assert timeline({**status_only, **alone}) == timeline(await project(*HISTORY))


@pytest.mark.anyio
async def test_flux_objects_that_are_not_applications_get_no_timeline() -> None:
    state = await project(kustomization("main@sha1:c1", rv=1, seconds=1, name="flux-system"))
    assert not [key for key in state if key.startswith("timeline/")]


# -------------------------------------------------------------------------------------------------
# KvTimelineReader over the embedded spine
# -------------------------------------------------------------------------------------------------


class BucketView:
    """A ProjectionView over a spine KV bucket (JSON values as bytes), as the projector gives."""

    def __init__(self, bucket: KeyValue) -> None:
        self.bucket = bucket

    async def get(self, key: str) -> Any | None:
        entry = await self.bucket.get(key)
        return None if entry is None or entry.value is None else json.loads(entry.value)

    async def put(self, key: str, value: Any) -> None:
        await self.bucket.put(key, json.dumps(value).encode())

    async def delete(self, key: str) -> None:
        await self.bucket.delete(key)


@pytest.fixture
async def spine(tmp_path: Path) -> AsyncIterator[SqliteSpine]:
    spine = SqliteSpine(tmp_path / "spine.db")
    await spine.start()
    yield spine
    await spine.close()


async def fill(spine: SqliteSpine, *events: Event) -> None:
    view = BucketView(await spine.key_value(ENV))
    projections = writers()
    for event in events:
        for projection in projections:
            if projection.handles(event):
                await projection.apply(event, view)


@pytest.mark.anyio
async def test_the_reader_returns_entries_oldest_first(spine: SqliteSpine) -> None:
    await fill(spine, *HISTORY)
    reader = KvTimelineReader(spine.key_value)
    assert isinstance(reader, TimelineReader)
    entries = await reader.application_timeline(ENV, "web")
    assert all(isinstance(entry, TimelineEntry) for entry in entries)
    assert [(e.kind, e.version, e.status) for e in entries] == EXPECTED
    assert [e.time for e in entries] == sorted(e.time for e in entries)
    assert entries[0].time == at(0)
    assert entries[0].application == "web"
    assert entries[0].detail["sha"] == "c1"


@pytest.mark.anyio
async def test_the_reader_keeps_applications_apart(spine: SqliteSpine) -> None:
    other = {"name": "web-api", "action": "install", "version": "2.0.0"}
    await fill(spine, commit("c1", install()), commit("c2", other, seconds=1))
    reader = KvTimelineReader(spine.key_value)
    web = await reader.application_timeline(ENV, "web")
    web_api = await reader.application_timeline(ENV, "web-api")
    assert {e.application for e in web} == {"web"}
    assert {e.application for e in web_api} == {"web-api"}
    assert [e.version for e in web_api if e.kind == "commit"] == ["2.0.0"]


@pytest.mark.anyio
async def test_the_reader_of_an_unknown_application_is_empty(spine: SqliteSpine) -> None:
    assert await KvTimelineReader(spine.key_value).application_timeline(ENV, "nobody") == []


@pytest.mark.anyio
async def test_redelivering_the_history_writes_nothing(
    spine: SqliteSpine,
) -> None:
    await fill(spine, *HISTORY)
    bucket = await spine.key_value(ENV)
    revision, first = await bucket.snapshot("timeline/")
    await fill(spine, *HISTORY)
    again_revision, second = await bucket.snapshot("timeline/")
    assert [entry.key for entry in second] == [entry.key for entry in first]
    assert again_revision == revision, "a redelivered event writes nothing"
