"""The built-in projections: object state (incl. out-of-order events and deletes), change
requests, registration by the ``core`` plugin, and the conformance suite for each projection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from catalyst_kernel.model.event import Event
from catalyst_kernel.plugins import PluginManager
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.projections import (
    ApplicationStatusProjection,
    ApplicationTimelineProjection,
    ChangeRequestProjection,
    CrossplaneResourceProjection,
    FluxObjectProjection,
    GitCommitProjection,
    KubernetesObjectProjection,
    builtin_projections,
)
from catalyst_kernel.readside.projections.objects import is_newer, next_change_state
from catalyst_kernel.testing import MemoryProjectionView, ProjectionConformance

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_counter = iter(range(1_000_000))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obj(
    kind: str,
    name: str,
    namespace: str | None = "web",
    *,
    rv: int | None = None,
    generation: int | None = None,
    labels: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if rv is not None:
        metadata["resourceVersion"] = str(rv)
    if generation is not None:
        metadata["generation"] = generation
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata, **extra}


def event(type_: str, data: Any, *, seconds: float = 0, subject: str = "x") -> Event:
    return Event(
        id=f"e{next(_counter)}",
        source="/sovereigns/demo/test",
        type=type_,
        time=at(seconds),
        subject=subject,
        data=data,
    )


def k8s(o: dict[str, Any], *, seconds: float = 0, deleted: bool = False) -> Event:
    what = "deleted" if deleted else "changed"
    return event(f"io.catalyst.k8s.object.{what}", {"object": o}, seconds=seconds)


def fluxe(o: dict[str, Any], *, seconds: float = 0, deleted: bool = False) -> Event:
    what = "deleted" if deleted else "changed"
    return event(f"io.catalyst.flux.object.{what}", {"object": o}, seconds=seconds)


def crossplane(o: dict[str, Any], *, seconds: float = 0, deleted: bool = False) -> Event:
    what = "deleted" if deleted else "changed"
    return event(f"io.catalyst.crossplane.resource.{what}", {"object": o}, seconds=seconds)


def commit(sha: str, *applications: dict[str, Any], seconds: float = 0) -> Event:
    data = {
        "sha": sha,
        "parents": [],
        "message": "catalyst: install web",
        "actor": "alice",
        "operation": "op-1",
        "applications": list(applications),
    }
    return event("io.catalyst.git.commit", data, seconds=seconds, subject=f"git.{sha}")


def change(action: str, revision: int = 1, *, seconds: float = 0, **data: Any) -> Event:
    payload = {"id": "42", "revision": revision, "author": "bob", "applications": ["web"], **data}
    return event(f"io.catalyst.change.{action}", payload, seconds=seconds)


async def project(projection: Projection, *events: Event) -> dict[str, Any]:
    view = MemoryProjectionView()
    for item in events:
        if projection.handles(item):
            await projection.apply(item, view)
    return view.state


def stored(state: dict[str, Any], key: str) -> dict[str, Any]:
    """The stored object without the ``observedAt`` the projection adds."""
    return {k: v for k, v in state[key].items() if k != "observedAt"}


# -------------------------------------------------------------------------------------------------
# Kubernetes objects
# -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_kubernetes_object_is_stored_under_kind_namespace_and_name() -> None:
    deployment = obj("Deployment", "api", rv=1, spec={"replicas": 2})
    state = await project(KubernetesObjectProjection(), k8s(deployment, seconds=5))
    assert stored(state, "k8s/Deployment/web/api") == deployment
    assert state["k8s/Deployment/web/api"]["observedAt"] == "2026-11-30T12:00:05.000000+00:00"


@pytest.mark.anyio
async def test_a_cluster_scoped_object_uses_the_underscore_namespace() -> None:
    state = await project(KubernetesObjectProjection(), k8s(obj("Namespace", "web", None, rv=1)))
    assert list(state) == ["k8s/Namespace/_/web"]


@pytest.mark.anyio
async def test_names_are_escaped_in_keys() -> None:
    state = await project(KubernetesObjectProjection(), k8s(obj("ConfigMap", "my.cfg", rv=1)))
    assert list(state) == ["k8s/ConfigMap/web/my=2Ecfg"]


@pytest.mark.anyio
async def test_an_older_resource_version_does_not_overwrite_a_newer_one() -> None:
    newer, older = obj("Deployment", "api", rv=12), obj("Deployment", "api", rv=11)
    state = await project(KubernetesObjectProjection(), k8s(newer), k8s(older, seconds=10))
    assert stored(state, "k8s/Deployment/web/api") == newer


@pytest.mark.anyio
async def test_resource_versions_compare_as_numbers_not_text() -> None:
    nine, ten = obj("Deployment", "api", rv=9), obj("Deployment", "api", rv=10)
    state = await project(KubernetesObjectProjection(), k8s(nine), k8s(ten))
    assert stored(state, "k8s/Deployment/web/api") == ten


@pytest.mark.anyio
async def test_generation_orders_objects_without_a_resource_version() -> None:
    newer, older = obj("Deployment", "api", generation=3), obj("Deployment", "api", generation=2)
    state = await project(KubernetesObjectProjection(), k8s(newer), k8s(older, seconds=10))
    assert stored(state, "k8s/Deployment/web/api") == newer


@pytest.mark.anyio
async def test_event_time_orders_objects_without_versions() -> None:
    first = obj("Deployment", "api", spec={"replicas": 1})
    second = obj("Deployment", "api", spec={"replicas": 2})
    late = await project(KubernetesObjectProjection(), k8s(second, seconds=2), k8s(first))
    assert stored(late, "k8s/Deployment/web/api") == second
    in_order = await project(KubernetesObjectProjection(), k8s(first), k8s(second, seconds=2))
    assert stored(in_order, "k8s/Deployment/web/api") == second


def test_a_tie_keeps_the_stored_object() -> None:
    stored_object = {**obj("Deployment", "api", rv=5), "observedAt": at(0).isoformat()}
    assert not is_newer(obj("Deployment", "api", rv=5), at(10), stored_object)
    timeless = {**obj("Deployment", "api"), "observedAt": at(0).isoformat()}
    assert not is_newer(obj("Deployment", "api"), at(0), timeless)


@pytest.mark.anyio
async def test_a_delete_removes_the_key() -> None:
    projection = KubernetesObjectProjection()
    state = await project(
        projection,
        k8s(obj("Deployment", "api", rv=1)),
        k8s(obj("Deployment", "api", rv=2), deleted=True, seconds=1),
    )
    assert state == {}


@pytest.mark.anyio
async def test_a_delete_older_than_the_stored_object_is_ignored() -> None:
    recreated = obj("Deployment", "api", rv=20)
    state = await project(
        KubernetesObjectProjection(),
        k8s(recreated, seconds=5),
        k8s(obj("Deployment", "api", rv=10), deleted=True, seconds=1),
    )
    assert stored(state, "k8s/Deployment/web/api") == recreated


@pytest.mark.anyio
async def test_a_delete_of_an_unknown_object_is_harmless() -> None:
    state = await project(
        KubernetesObjectProjection(), k8s(obj("Deployment", "api", rv=3), deleted=True)
    )
    assert state == {}


@pytest.mark.anyio
async def test_an_object_without_a_name_is_skipped() -> None:
    nameless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "web"}}
    state = await project(
        KubernetesObjectProjection(),
        k8s(nameless),
        event("io.catalyst.k8s.object.changed", {"nothing": True}),
    )
    assert state == {}


# -------------------------------------------------------------------------------------------------
# Flux, Crossplane, commits
# -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_flux_objects_are_stored_under_kind_and_name() -> None:
    kustomization = obj("Kustomization", "web", "flux-system", rv=3)
    release = obj("HelmRelease", "web", "flux-system", rv=4)
    state = await project(FluxObjectProjection(), fluxe(kustomization), fluxe(release))
    assert stored(state, "flux/Kustomization/web") == kustomization
    assert stored(state, "flux/HelmRelease/web") == release


@pytest.mark.anyio
async def test_flux_objects_are_ordered_and_deleted_like_kubernetes_objects() -> None:
    newer = obj("Kustomization", "web", "flux-system", rv=8)
    state = await project(
        FluxObjectProjection(), fluxe(newer), fluxe(obj("Kustomization", "web", "x", rv=7))
    )
    assert stored(state, "flux/Kustomization/web") == newer
    gone = await project(
        FluxObjectProjection(), fluxe(newer), fluxe(obj("Kustomization", "web", rv=9), deleted=True)
    )
    assert gone == {}


@pytest.mark.anyio
async def test_crossplane_resources_are_stored_and_deleted() -> None:
    claim = obj("PostgreSQLInstance", "web-db", rv=1)
    state = await project(CrossplaneResourceProjection(), crossplane(claim))
    assert stored(state, "crossplane/PostgreSQLInstance/web-db") == claim
    gone = await project(
        CrossplaneResourceProjection(),
        crossplane(claim),
        crossplane(obj("PostgreSQLInstance", "web-db", rv=2), deleted=True),
    )
    assert gone == {}


@pytest.mark.anyio
async def test_a_commit_is_stored_under_its_sha_with_its_time() -> None:
    item = commit("3f2a", {"name": "web", "action": "install"}, seconds=1)
    state = await project(GitCommitProjection(), item)
    assert state["git/3f2a"] == {**item.data, "time": "2026-11-30T12:00:01.000000+00:00"}


# -------------------------------------------------------------------------------------------------
# Change requests
# -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_change_request_moves_from_open_to_merged() -> None:
    state = await project(
        ChangeRequestProjection(),
        change("opened", applications=["web", "blog"]),
        change("approved", approver="carol", groups=["platform"], seconds=1),
        change("merged", seconds=2, commit="abc"),
    )
    cr = state["change/42"]
    assert (cr["state"], cr["revision"], cr["author"], cr["commit"]) == ("merged", 1, "bob", "abc")
    assert cr["applications"] == ["blog", "web"]
    assert cr["approvals"] == [{"approver": "carol", "revision": 1, "groups": ["platform"]}]


@pytest.mark.anyio
async def test_a_new_revision_dismisses_earlier_approvals() -> None:
    state = await project(
        ChangeRequestProjection(),
        change("opened"),
        change("approved", approver="carol", groups=["platform"]),
        change("updated", revision=2, seconds=1),
        change("approved", revision=2, approver="dave", groups=["sre"], seconds=2),
    )
    assert state["change/42"]["revision"] == 2
    assert state["change/42"]["approvals"] == [
        {"approver": "dave", "revision": 2, "groups": ["sre"]}
    ]


@pytest.mark.anyio
async def test_an_approval_of_an_earlier_revision_does_not_count() -> None:
    state = await project(
        ChangeRequestProjection(),
        change("opened"),
        change("updated", revision=2),
        change("approved", revision=1, approver="carol"),
    )
    assert state["change/42"]["approvals"] == []


@pytest.mark.anyio
async def test_an_approver_counts_once_per_revision() -> None:
    state = await project(
        ChangeRequestProjection(),
        change("opened"),
        change("approved", approver="carol"),
        change("approved", approver="carol", seconds=5),
    )
    assert len(state["change/42"]["approvals"]) == 1


@pytest.mark.anyio
async def test_a_merged_change_stays_merged() -> None:
    state = await project(
        ChangeRequestProjection(),
        change("opened"),
        change("merged", seconds=1),
        change("closed", seconds=2),
        change("updated", revision=3, seconds=3),
    )
    assert (state["change/42"]["state"], state["change/42"]["revision"]) == ("merged", 1)


@pytest.mark.anyio
async def test_a_closed_change_reopens_only_on_a_later_open() -> None:
    projection = ChangeRequestProjection()
    late_open = await project(projection, change("closed", seconds=5), change("opened", seconds=1))
    assert late_open["change/42"]["state"] == "closed"
    reopened = await project(projection, change("closed", seconds=5), change("opened", seconds=9))
    assert reopened["change/42"]["state"] == "open"
    assert "closedAt" not in reopened["change/42"]


def test_next_change_state_refuses_unusable_data() -> None:
    assert next_change_state(None, change("opened", revision="two")) is None


# -------------------------------------------------------------------------------------------------
# Registration by the core plugin
# -------------------------------------------------------------------------------------------------


def test_the_core_plugin_registers_every_builtin_projection(
    catalyst_plugin_manager: PluginManager,
) -> None:
    names = [p.name for p in catalyst_plugin_manager.projections()]
    assert names == sorted(p.name for p in builtin_projections())
    assert names == [
        "application-status",
        "application-timeline",
        "change-requests",
        "crossplane-resources",
        "flux-objects",
        "git-commits",
        "k8s-objects",
    ]


# -------------------------------------------------------------------------------------------------
# Conformance: every built-in projection passes the projection suite
# -------------------------------------------------------------------------------------------------


def _sample() -> list[Event]:
    """Events of every kind, including out-of-order and deletes, for every suite below."""
    deployment = obj(
        "Deployment",
        "api",
        rv=2,
        generation=1,
        labels={"openova.io/application": "web"},
        spec={"replicas": 1},
        status={"readyReplicas": 1, "observedGeneration": 1},
    )
    kustomization = obj(
        "Kustomization",
        "web",
        "flux-system",
        rv=5,
        status={
            "lastAppliedRevision": "main@sha1:c1",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}
            ],
        },
    )
    return [
        commit("c1", {"name": "web", "action": "install", "version": "1.0.0"}),
        change("opened", seconds=1),
        change("approved", approver="carol", seconds=2),
        change("merged", seconds=3),
        fluxe(kustomization, seconds=4),
        fluxe(obj("Kustomization", "web", "flux-system", rv=4), seconds=5),
        k8s(deployment, seconds=6),
        k8s(obj("Deployment", "api", rv=1), seconds=7),
        k8s(obj("ConfigMap", "cfg", rv=3), seconds=8),
        k8s(obj("ConfigMap", "cfg", rv=4), deleted=True, seconds=9),
        crossplane(obj("PostgreSQLInstance", "web-db", rv=1), seconds=10),
        commit("c2", {"name": "web", "action": "uninstall"}, seconds=11),
        event("io.catalyst.example.heartbeat", {"n": 1}),
    ]


class _BuiltinConformance(ProjectionConformance):
    @pytest.fixture
    def events(self) -> Sequence[Event]:
        return _sample()


class TestKubernetesObjectProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> KubernetesObjectProjection:
        return KubernetesObjectProjection()


class TestFluxObjectProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> FluxObjectProjection:
        return FluxObjectProjection()


class TestCrossplaneResourceProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> CrossplaneResourceProjection:
        return CrossplaneResourceProjection()


class TestGitCommitProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> GitCommitProjection:
        return GitCommitProjection()


class TestChangeRequestProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> ChangeRequestProjection:
        return ChangeRequestProjection()


class TestApplicationStatusProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> ApplicationStatusProjection:
        return ApplicationStatusProjection()


class TestApplicationTimelineProjection(_BuiltinConformance):
    @pytest.fixture
    def provider(self) -> ApplicationTimelineProjection:
        return ApplicationTimelineProjection()
