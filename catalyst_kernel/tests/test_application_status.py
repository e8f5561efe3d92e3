"""Application status (docs/application-status.md): one test per table row, then transitions
driven by events through the projection."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.model.event import Event
from catalyst_kernel.readside.projections import (
    ApplicationStatus,
    ApplicationStatusProjection,
    FluxInput,
    StatusInputs,
    WorkloadInput,
    derive_status,
)
from catalyst_kernel.readside.projections.status import (
    TERMINAL_REASONS,
    flux_state,
    resolve_inputs,
    revision_sha,
)
from catalyst_kernel.testing import MemoryProjectionView

DOCS = Path(__file__).resolve().parents[2] / "docs" / "application-status.md"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

RECONCILED_K = FluxInput(
    "Kustomization", ready="True", reason="ReconciliationSucceeded", applied=True
)
RECONCILED_HR = FluxInput("HelmRelease", ready="True", reason="UpgradeSucceeded", applied=True)
READY = WorkloadInput("Deployment web/web", ready=True, replicas=2, ready_replicas=2)
NOT_READY = WorkloadInput("Deployment web/web", ready=False, replicas=2, ready_replicas=1)


def inputs(**overrides: Any) -> StatusInputs:
    """A reconciled, healthy, previously Running Application, changed by ``overrides``."""
    base: dict[str, Any] = {
        "commit": "c2",
        "ever_running": True,
        "kustomization": RECONCILED_K,
        "helm_release": RECONCILED_HR,
        "workloads": (READY,),
    }
    return StatusInputs(**{**base, **overrides})


def status(**overrides: Any) -> ApplicationStatus:
    return derive_status(inputs(**overrides)).status


# -------------------------------------------------------------------------------------------------
# The table, row by row (pure derivation)
# -------------------------------------------------------------------------------------------------


def test_status_is_pending_approval_while_a_change_is_open() -> None:
    verdict = derive_status(inputs(open_changes=("42",)))
    assert verdict.status is ApplicationStatus.PENDING_APPROVAL
    assert "42" in verdict.reason


def test_status_is_paused_while_the_kustomization_is_suspended() -> None:
    suspended = FluxInput("Kustomization", ready="True", applied=True, suspended=True)
    verdict = derive_status(inputs(kustomization=suspended))
    assert verdict.status is ApplicationStatus.PAUSED
    assert "Kustomization suspended" in verdict.reason


def test_status_is_paused_while_the_helm_release_is_suspended() -> None:
    suspended = FluxInput("HelmRelease", ready="True", applied=True, suspended=True)
    assert status(helm_release=suspended) is ApplicationStatus.PAUSED


def test_status_is_failed_when_the_kustomization_fails_at_the_current_revision() -> None:
    failed = FluxInput(
        "Kustomization",
        ready="False",
        reason="BuildFailed",
        message="kustomize build failed",
        applied=False,
        attempted=True,
    )
    verdict = derive_status(inputs(kustomization=failed))
    assert verdict.status is ApplicationStatus.FAILED
    assert verdict.reason == "Kustomization BuildFailed: kustomize build failed"


def test_status_is_failed_when_the_helm_release_fails_at_the_current_revision() -> None:
    failed = FluxInput("HelmRelease", ready="False", reason="UpgradeFailed", attempted=True)
    verdict = derive_status(inputs(helm_release=failed))
    assert verdict.status is ApplicationStatus.FAILED
    assert verdict.reason.startswith("HelmRelease UpgradeFailed")


def test_status_is_installing_while_a_never_running_application_is_not_reconciled() -> None:
    pending = FluxInput("Kustomization", ready="Unknown", reason="Progressing", applied=False)
    verdict = derive_status(inputs(ever_running=False, kustomization=pending))
    assert verdict.status is ApplicationStatus.INSTALLING
    assert "not yet applied" in verdict.reason


def test_status_is_installing_before_the_kustomization_appears() -> None:
    assert status(ever_running=False, kustomization=None, helm_release=None) is (
        ApplicationStatus.INSTALLING
    )


def test_status_is_updating_while_a_previously_running_application_is_not_reconciled() -> None:
    behind = FluxInput("Kustomization", ready="True", applied=False)
    assert status(kustomization=behind) is ApplicationStatus.UPDATING


def test_status_is_updating_while_the_helm_release_has_not_observed_its_new_spec() -> None:
    behind = FluxInput("HelmRelease", ready="True", applied=False)
    assert status(helm_release=behind) is ApplicationStatus.UPDATING


def test_status_stays_updating_when_a_dependency_is_not_ready() -> None:
    waiting = FluxInput("Kustomization", ready="False", reason="DependencyNotReady", applied=True)
    assert "DependencyNotReady" not in TERMINAL_REASONS
    verdict = derive_status(inputs(kustomization=waiting))
    assert verdict.status is ApplicationStatus.UPDATING
    assert "DependencyNotReady" in verdict.reason


def test_status_is_updating_not_failed_when_the_failure_is_for_an_older_revision() -> None:
    old_failure = FluxInput(
        "Kustomization",
        ready="False",
        reason="ReconciliationFailed",
        applied=False,
        attempted=False,
    )
    assert status(kustomization=old_failure) is ApplicationStatus.UPDATING


def test_status_is_degraded_when_a_workload_is_not_ready() -> None:
    verdict = derive_status(inputs(workloads=(READY, NOT_READY)))
    assert verdict.status is ApplicationStatus.DEGRADED
    assert "Deployment web/web: 1/2 ready" in verdict.reason


def test_status_is_degraded_when_helm_tests_fail_while_ready() -> None:
    tested = FluxInput("HelmRelease", ready="True", applied=True, test_failed=True)
    assert status(helm_release=tested) is ApplicationStatus.DEGRADED


def test_status_is_running_when_reconciled_and_every_workload_is_ready() -> None:
    verdict = derive_status(inputs())
    assert verdict.status is ApplicationStatus.RUNNING
    assert verdict.reason == "reconciled at c2; 1 workload ready"


# -------------------------------------------------------------------------------------------------
# Precedence and edges of the derivation
# -------------------------------------------------------------------------------------------------


def test_pending_approval_outranks_paused_and_failed() -> None:
    suspended = FluxInput("Kustomization", suspended=True, ready="False", reason="BuildFailed")
    assert status(open_changes=("7",), kustomization=suspended) is (
        ApplicationStatus.PENDING_APPROVAL
    )


def test_paused_outranks_failed() -> None:
    suspended = FluxInput("Kustomization", suspended=True, ready="False", reason="BuildFailed")
    assert status(kustomization=suspended) is ApplicationStatus.PAUSED


def test_failed_outranks_updating() -> None:
    failed = FluxInput("Kustomization", ready="False", reason="HealthCheckFailed", applied=False)
    assert status(kustomization=failed) is ApplicationStatus.FAILED


def test_updating_outranks_degraded() -> None:
    behind = FluxInput("Kustomization", ready="True", applied=False)
    assert status(kustomization=behind, workloads=(NOT_READY,)) is ApplicationStatus.UPDATING


def test_a_helm_failure_waits_until_the_kustomization_attempted_the_commit() -> None:
    behind = FluxInput("Kustomization", ready="True", applied=False, attempted=False)
    failed = FluxInput("HelmRelease", ready="False", reason="InstallFailed", attempted=True)
    assert status(kustomization=behind, helm_release=failed) is ApplicationStatus.UPDATING


def test_ready_unknown_at_the_current_revision_stays_running() -> None:
    # Flux shows Ready=Unknown during every periodic reconcile; it must not flap the status.
    busy = FluxInput("Kustomization", ready="Unknown", reason="Progressing", applied=True)
    assert status(kustomization=busy) is ApplicationStatus.RUNNING


def test_a_kustomize_only_application_needs_no_helm_release() -> None:
    assert status(helm_release=None) is ApplicationStatus.RUNNING


@pytest.mark.parametrize(
    ("revision", "sha"),
    [("main@sha1:abc123", "abc123"), ("main/abc123", "abc123"), ("abc123", "abc123")],
)
def test_revision_sha_reads_every_flux_revision_format(revision: str, sha: str) -> None:
    assert revision_sha(revision) == sha


def test_resolve_inputs_counts_an_unseen_commit_as_newer() -> None:
    record = {
        "lastCommit": {"sha": "c2", "position": 2},
        "inputs": {
            "kustomization": flux_state(kustomization("web", "main@sha1:c9"), T0),
            "helmRelease": None,
            "workloads": {},
            "changeRequests": [],
        },
    }
    unseen = resolve_inputs(record, {}).kustomization
    behind = resolve_inputs(record, {"c9": 1}).kustomization
    assert unseen is not None
    assert behind is not None
    assert (unseen.applied, unseen.ready, unseen.reason) == (
        True,
        "True",
        "ReconciliationSucceeded",
    )
    assert not behind.applied


def test_the_documented_table_lists_every_status() -> None:
    text = DOCS.read_text()
    rows = re.findall(r"^\| \*\*([A-Za-z ]+)\*\* \|", text, re.MULTILINE)
    assert set(rows) == {s.value for s in ApplicationStatus}


# -------------------------------------------------------------------------------------------------
# Transitions, driven by events through the projection
# -------------------------------------------------------------------------------------------------


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
            "message": "catalyst: change",
            "actor": "alice",
            "operation": "op-1",
            "applications": list(applications),
        },
    )


def install(name: str = "web", version: str = "1.0.0") -> dict[str, Any]:
    return {"name": name, "action": "install", "version": version, "blueprint": "bp-wordpress"}


def update(name: str = "web", version: str = "1.1.0") -> dict[str, Any]:
    return {"name": name, "action": "update", "version": version}


def uninstall(name: str = "web") -> dict[str, Any]:
    return {"name": name, "action": "uninstall"}


def kustomization(
    name: str,
    applied: str | None,
    *,
    ready: str = "True",
    reason: str = "ReconciliationSucceeded",
    attempted: str | None = None,
    suspend: bool = False,
    rv: int = 1,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": reason}]
    }
    if applied is not None:
        status["lastAppliedRevision"] = applied
    if attempted or applied:
        status["lastAttemptedRevision"] = attempted or applied
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "resourceVersion": str(rv)},
        "spec": {"suspend": suspend},
        "status": status,
    }


def helm_release(
    name: str,
    *,
    ready: str = "True",
    reason: str = "InstallSucceeded",
    generation: int = 1,
    observed: int = 1,
    test_phase: str | None = None,
    rv: int = 1,
) -> dict[str, Any]:
    history: list[dict[str, Any]] = [{"chartVersion": "1.0.0", "status": "deployed"}]
    if test_phase:
        history[0]["testHooks"] = {"web-test": {"phase": test_phase}}
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "namespace": "flux-system",
            "generation": generation,
            "resourceVersion": str(rv),
        },
        "spec": {},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready, "reason": reason}],
            "history": history,
        },
    }


def deployment(
    name: str, application: str | None, *, replicas: int = 2, ready: int = 2, rv: int = 1
) -> dict[str, Any]:
    labels = {"openova.io/application": application} if application else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "web",
            "labels": labels,
            "generation": 1,
            "resourceVersion": str(rv),
        },
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 1, "readyReplicas": ready},
    }


def flux(obj: dict[str, Any], *, seconds: int = 0, deleted: bool = False) -> Event:
    what = "deleted" if deleted else "changed"
    return Event(
        id=f"flux-{obj['kind']}-{obj['metadata']['resourceVersion']}-{what}",
        source="/sovereigns/demo/flux-webhook",
        type=f"io.catalyst.flux.object.{what}",
        time=at(seconds),
        subject=f"flux.{obj['metadata']['name']}",
        data={"object": obj},
    )


def k8s(obj: dict[str, Any], *, seconds: int = 0, deleted: bool = False) -> Event:
    what = "deleted" if deleted else "changed"
    return Event(
        id=f"k8s-{obj['metadata']['name']}-{obj['metadata']['resourceVersion']}-{what}",
        source="/sovereigns/demo/clusters/c1/informer",
        type=f"io.catalyst.k8s.object.{what}",
        time=at(seconds),
        subject=f"k8s.{obj['kind']}.{obj['metadata']['namespace']}.{obj['metadata']['name']}",
        data={"object": obj},
    )


def change(
    action: str, change_id: str, applications: list[str], *, revision: int = 1, seconds: int = 0
) -> Event:
    return Event(
        id=f"change-{change_id}-{action}-{revision}",
        source="/sovereigns/demo/committer",
        type=f"io.catalyst.change.{action}",
        time=at(seconds),
        subject=f"catalyst.change.{change_id}",
        data={
            "id": change_id,
            "revision": revision,
            "author": "bob",
            "applications": applications,
        },
    )


class Harness:
    """The status projection over an in-memory view."""

    def __init__(self) -> None:
        self.projection = ApplicationStatusProjection()
        self.view = MemoryProjectionView()

    async def feed(self, *events: Event) -> None:
        for event in events:
            if self.projection.handles(event):
                await self.projection.apply(event, self.view)

    def document(self, name: str = "web") -> dict[str, Any] | None:
        return self.view.state.get(f"application/{name}")

    def status(self, name: str = "web") -> str | None:
        document = self.document(name)
        return document["status"] if document else None


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.mark.anyio
async def test_installing_becomes_running_when_flux_applies_the_commit(harness: Harness) -> None:
    await harness.feed(commit("c1", install(), seconds=0))
    assert harness.status() == "Installing"
    await harness.feed(flux(kustomization("web", None, ready="Unknown", reason="Progressing")))
    assert harness.status() == "Installing"
    await harness.feed(flux(kustomization("web", "main@sha1:c1", rv=2), seconds=30))
    await harness.feed(k8s(deployment("web", "web"), seconds=31))
    document = harness.document()
    assert document is not None
    assert document["status"] == "Running"
    assert document["since"] == at(30).isoformat(timespec="microseconds")
    assert document["version"] == "1.0.0"
    assert document["blueprint"] == "bp-wordpress"
    assert document["lastCommit"]["sha"] == "c1"
    assert document["reason"] == "reconciled at c1; 1 workload ready"


@pytest.mark.anyio
async def test_running_becomes_updating_then_running_again(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    assert harness.status() == "Running"
    await harness.feed(commit("c2", update(version="1.1.0"), seconds=60))
    document = harness.document()
    assert document is not None
    assert (document["status"], document["version"]) == ("Updating", "1.1.0")
    assert document["since"] == at(60).isoformat(timespec="microseconds")
    await harness.feed(flux(kustomization("web", "main@sha1:c2", rv=2), seconds=90))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_a_commit_for_another_application_does_not_make_this_one_updating(
    harness: Harness,
) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(commit("c2", install("blog"), seconds=10))
    assert harness.status() == "Running"
    # Flux applies the newer commit to every Kustomization; still at or after web's commit.
    await harness.feed(flux(kustomization("web", "main@sha1:c2", rv=2), seconds=20))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_running_becomes_degraded_then_running_with_workload_readiness(
    harness: Harness,
) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(k8s(deployment("web", "web", ready=2, rv=1), seconds=1))
    assert harness.status() == "Running"
    await harness.feed(k8s(deployment("web", "web", ready=1, rv=2), seconds=2))
    document = harness.document()
    assert document is not None
    assert document["status"] == "Degraded"
    assert "Deployment web/web: 1/2 ready" in document["reason"]
    await harness.feed(k8s(deployment("web", "web", ready=2, rv=3), seconds=3))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_a_not_ready_workload_whose_counts_change_updates_the_reason(
    harness: Harness,
) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(k8s(deployment("web", "web", replicas=3, ready=1, rv=1), seconds=1))
    await harness.feed(k8s(deployment("web", "web", replicas=3, ready=2, rv=2), seconds=2))
    document = harness.document()
    assert document is not None
    assert document["status"] == "Degraded"
    assert document["reason"] == "workloads not ready: Deployment web/web: 2/3 ready"
    assert document["inputs"]["workloads"] == {
        "total": 1,
        "notReady": {"Deployment/web/web": {"replicas": 3, "readyReplicas": 2}},
    }


@pytest.mark.anyio
async def test_a_workload_update_that_changes_no_readiness_leaves_the_document_alone(
    harness: Harness,
) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(k8s(deployment("web", "web", rv=1), seconds=1))
    document = harness.document()
    for rv in range(2, 6):
        await harness.feed(k8s(deployment("web", "web", rv=rv), seconds=rv))
    assert harness.document() == document
    workload = harness.view.state["application-index/workload/Deployment/web/web"]
    assert workload["metadata"]["resourceVersion"] == "5", "the workload's own state moves on"
    await harness.feed(k8s(deployment("web", "web", rv=4), seconds=10))
    assert harness.view.state["application-index/workload/Deployment/web/web"] == workload


@pytest.mark.anyio
async def test_helm_test_failure_degrades_a_running_application(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(flux(helm_release("web", test_phase="Failed", rv=5)))
    assert harness.status() == "Degraded"


@pytest.mark.anyio
async def test_a_failed_reconcile_at_the_current_revision_is_failed(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(commit("c2", update()))
    failing = kustomization(
        "web", "main@sha1:c1", ready="False", reason="HealthCheckFailed", attempted="main@sha1:c2"
    )
    await harness.feed(
        flux({**failing, "metadata": {**failing["metadata"], "resourceVersion": "2"}})
    )
    document = harness.document()
    assert document is not None
    assert document["status"] == "Failed"
    assert document["reason"].startswith("Kustomization HealthCheckFailed")


@pytest.mark.anyio
async def test_a_failed_helm_install_is_failed(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(flux(helm_release("web", ready="False", reason="InstallFailed")))
    assert harness.status() == "Failed"


@pytest.mark.anyio
async def test_suspending_the_kustomization_pauses_and_resuming_restores(
    harness: Harness,
) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(flux(kustomization("web", "main@sha1:c1", suspend=True, rv=2)))
    assert harness.status() == "Paused"
    await harness.feed(flux(kustomization("web", "main@sha1:c1", rv=3)))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_an_uninstall_commit_removes_the_document(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    assert harness.document() is not None
    await harness.feed(commit("c2", uninstall(), seconds=10))
    assert harness.document() is None
    # Flux pruning the Kustomization leaves no private leftovers either.
    await harness.feed(flux(kustomization("web", "main@sha1:c2", rv=9), deleted=True))
    assert not [key for key in harness.view.state if key.endswith("/web")]


@pytest.mark.anyio
async def test_a_reinstall_after_uninstall_is_installing_again(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(commit("c2", uninstall()), commit("c3", install()))
    assert harness.status() == "Installing"


@pytest.mark.anyio
async def test_an_open_change_request_is_pending_approval_until_merged(harness: Harness) -> None:
    await harness.feed(change("opened", "42", ["web"], seconds=1))
    assert harness.status() == "Pending approval"
    await harness.feed(change("merged", "42", ["web"], seconds=2))
    assert harness.document() is None, "a merged change alone installs nothing"
    await harness.feed(commit("c1", install(), seconds=3))
    assert harness.status() == "Installing"


@pytest.mark.anyio
async def test_a_change_that_drops_an_application_releases_it(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(change("opened", "42", ["web", "blog"], seconds=1))
    assert harness.status() == "Pending approval"
    await harness.feed(change("updated", "42", ["blog"], revision=2, seconds=2))
    assert harness.status() == "Running"
    assert harness.status("blog") == "Pending approval"
    await harness.feed(change("closed", "42", ["blog"], revision=2, seconds=3))
    assert harness.document("blog") is None


@pytest.mark.anyio
async def test_a_late_update_of_a_merged_change_does_not_reopen_it(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(change("opened", "42", ["web"]), change("merged", "42", ["web"]))
    await harness.feed(change("updated", "42", ["web"], revision=2))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_since_is_unchanged_while_the_status_is_unchanged(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    document = harness.document()
    assert document is not None
    since = document["since"]
    await harness.feed(k8s(deployment("web", "web"), seconds=100))
    document = harness.document()
    assert document is not None
    assert document["since"] == since
    assert document["reason"] == "reconciled at c1; 1 workload ready"


@pytest.mark.anyio
async def test_an_older_flux_object_does_not_overwrite_a_newer_one(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), commit("c2", update()))
    await harness.feed(flux(kustomization("web", "main@sha1:c2", rv=5)))
    await harness.feed(flux(kustomization("web", "main@sha1:c1", rv=4)))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_flux_objects_seen_before_the_commit_count_when_it_arrives(
    harness: Harness,
) -> None:
    await harness.feed(flux(kustomization("web", "main@sha1:c1")))
    assert harness.document() is None, "a Kustomization alone is not an Application"
    await harness.feed(commit("c1", install()))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_a_revision_the_projection_never_saw_counts_as_newer(harness: Harness) -> None:
    await harness.feed(commit("c1", install()))
    await harness.feed(flux(kustomization("web", "main@sha1:unseen")))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_the_flux_system_kustomization_is_not_an_application(harness: Harness) -> None:
    await harness.feed(flux(kustomization("flux-system", "main@sha1:c1")))
    assert not [key for key in harness.view.state if key.startswith("application/")]


@pytest.mark.anyio
async def test_a_deleted_workload_stops_counting(harness: Harness) -> None:
    await harness.feed(commit("c1", install()), flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(k8s(deployment("web", "web", ready=0, rv=1)))
    assert harness.status() == "Degraded"
    deleted = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web", "resourceVersion": "2"},
    }
    await harness.feed(k8s(deleted, deleted=True))
    assert harness.status() == "Running"


@pytest.mark.anyio
async def test_a_relabelled_workload_moves_to_its_new_application(harness: Harness) -> None:
    await harness.feed(commit("c1", install("web"), install("blog")))
    await harness.feed(flux(kustomization("web", "main@sha1:c1")))
    await harness.feed(flux(kustomization("blog", "main@sha1:c1")))
    await harness.feed(k8s(deployment("api", "web", ready=0, rv=1)))
    assert (harness.status("web"), harness.status("blog")) == ("Degraded", "Running")
    await harness.feed(k8s(deployment("api", "blog", ready=0, rv=2)))
    assert (harness.status("web"), harness.status("blog")) == ("Running", "Degraded")


@pytest.mark.anyio
async def test_the_projection_ignores_events_it_cannot_read(harness: Harness) -> None:
    broken = Event(id="x", source="/s", type="io.catalyst.git.commit", time=T0, data={"no": "sha"})
    await harness.feed(broken)
    assert harness.view.state == {}


def test_status_projection_ignores_pods() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "web", "resourceVersion": "1"}}
    assert not ApplicationStatusProjection().handles(k8s(pod))
