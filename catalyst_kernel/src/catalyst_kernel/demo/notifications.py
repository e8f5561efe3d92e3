"""The Flux notifications the demo's simulated reconciler sends, as events on the spine.

Each one is a :class:`~catalyst_kernel.readside.flux_events.FluxNotification` shaped the way
Flux's notification-controller would send it, turned into an event by the same
:func:`~catalyst_kernel.readside.flux_events.notification_event` the Flux webhook receiver uses,
so the read model cannot tell the simulation from a cluster by its type, subject or data. Two
things tell them apart on purpose:

* the CloudEvents ``source`` is ``/sovereigns/<sovereign>/demo-reconciler`` (not
  ``…/flux-webhook``), ``reportingInstance`` is :data:`REPORTING_INSTANCE` and every message
  ends with :data:`DEMO_NOTE`;
* the event ``id`` is derived from the Environment, the commit, the object and the step
  (:func:`demo_event_id`), not from the notification's timestamp, so reconciling a commit again
  publishes the same ids and the spine drops them as duplicates.

Deletions (an uninstalled Application's Kustomization and HelmRelease are pruned) are
``io.catalyst.flux.object.deleted`` events with the object's ``apiVersion``, ``kind`` and
``metadata`` (docs/events.md).
"""

from __future__ import annotations

import enum
import hashlib
import json
from typing import TYPE_CHECKING, Final

import attrs

from catalyst_kernel.model.event import Event
from catalyst_kernel.provisioning.composers.flux import FLUX_NAMESPACE
from catalyst_kernel.readside.event_types import FLUX_DELETED
from catalyst_kernel.readside.flux_events import FluxNotification, notification_event
from catalyst_kernel.readside.subjects import escape

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

__all__ = [
    "BRANCH",
    "DEMO_NOTE",
    "HELM_RELEASE",
    "KUSTOMIZATION",
    "REPORTING_INSTANCE",
    "HelmChart",
    "Step",
    "deletion_event",
    "demo_event_id",
    "helm_release_event",
    "kustomization_event",
    "revision",
]

KUSTOMIZATION: Final = "Kustomization"
HELM_RELEASE: Final = "HelmRelease"
BRANCH: Final = "main"
"""The branch Flux follows (the ``GitRepository`` of ``bootstrap_files`` tracks ``main``)."""

REPORTING_INSTANCE: Final = "catalyst-demo-simulated-reconciler"
"""``reportingInstance`` of every simulated notification: no controller sent it."""

DEMO_NOTE: Final = "(demo: simulated reconciler, no cluster)"
"""Appended to every simulated message, so the timeline says where the fact came from."""

_API_VERSIONS: Final = {
    KUSTOMIZATION: "kustomize.toolkit.fluxcd.io/v1",
    HELM_RELEASE: "helm.toolkit.fluxcd.io/v2",
}
_CONTROLLERS: Final = {KUSTOMIZATION: "kustomize-controller", HELM_RELEASE: "helm-controller"}


class Step(enum.StrEnum):
    """One simulated moment of an object's reconcile (part of the event id)."""

    DEPENDENCY_NOT_READY = "dependency-not-ready"
    PROGRESSING = "progressing"
    READY = "ready"
    DELETED = "deleted"


@attrs.frozen
class HelmChart:
    """The HelmRelease of an Application, as its ``helmrelease.yaml`` declares it."""

    name: str
    namespace: str
    chart: str
    version: str


def revision(sha: str) -> str:
    """The Flux source revision of a commit: ``main@sha1:<sha>``."""
    return f"{BRANCH}@sha1:{sha}"


def demo_event_id(environment: str, sha: str, kind: str, name: str, step: Step) -> str:
    """``demo-<digest>``: the same for the same Environment, commit, object and step."""
    identity = [environment, sha, kind, name, step.value]
    digest = hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()
    return f"demo-{digest[:40]}"


def _event(
    notification: FluxNotification, *, source: str, environment: str, sha: str, step: Step
) -> Event:
    event = notification_event(notification, source=source)
    return attrs.evolve(
        event,
        id=demo_event_id(environment, sha, notification.kind, notification.name, step),
    )


def _notification(
    kind: str,
    name: str,
    namespace: str,
    *,
    reason: str,
    message: str,
    source_revision: str,
    time: datetime,
) -> FluxNotification:
    return FluxNotification(
        kind=kind,
        name=name,
        namespace=namespace,
        uid=None,
        api_version=_API_VERSIONS[kind],
        resource_version=None,
        severity="info",
        reason=reason,
        message=f"{message} {DEMO_NOTE}",
        timestamp=time,
        metadata={"revision": source_revision},
        reporting_controller=_CONTROLLERS[kind],
        reporting_instance=REPORTING_INSTANCE,
    )


def kustomization_event(
    *,
    source: str,
    environment: str,
    sha: str,
    name: str,
    step: Step,
    time: datetime,
    waiting_for: Sequence[str] = (),
) -> Event:
    """The Application's Kustomization at ``step`` of reconciling commit ``sha``.

    ``DEPENDENCY_NOT_READY`` (``Ready=Unknown``, reason ``DependencyNotReady``, naming
    ``waiting_for``) and ``PROGRESSING`` (``Ready=Unknown``, reason ``Progressing``) carry the
    revision as ``lastAttemptedRevision``; ``READY`` (``Ready=True``, reason
    ``ReconciliationSucceeded``) also as ``lastAppliedRevision``.
    """
    applied = revision(sha)
    if step is Step.DEPENDENCY_NOT_READY:
        pending = ", ".join(f"'{FLUX_NAMESPACE}/{other}'" for other in waiting_for)
        reason, message = "DependencyNotReady", f"dependency {pending} is not ready"
    elif step is Step.PROGRESSING:
        reason, message = "Progressing", f"Reconciliation in progress for revision {applied}"
    elif step is Step.READY:
        reason, message = "ReconciliationSucceeded", f"Applied revision: {applied}"
    else:
        raise ValueError(f"a Kustomization notification has no step {step.value!r}")
    notification = _notification(
        KUSTOMIZATION,
        name,
        FLUX_NAMESPACE,
        reason=reason,
        message=message,
        source_revision=applied,
        time=time,
    )
    return _event(notification, source=source, environment=environment, sha=sha, step=step)


def helm_release_event(
    *, source: str, environment: str, sha: str, chart: HelmChart, upgrade: bool, time: datetime
) -> Event:
    """The HelmRelease's successful install (``upgrade`` false) or upgrade: ``Ready=True``,
    reason ``InstallSucceeded``/``UpgradeSucceeded``, the chart version as its revision."""
    verb = "upgrade" if upgrade else "install"
    notification = _notification(
        HELM_RELEASE,
        chart.name,
        chart.namespace,
        reason="UpgradeSucceeded" if upgrade else "InstallSucceeded",
        message=(
            f"Helm {verb} succeeded for release {chart.namespace}/{chart.name} "
            f"with chart {chart.chart}@{chart.version}"
        ),
        source_revision=chart.version,
        time=time,
    )
    return _event(notification, source=source, environment=environment, sha=sha, step=Step.READY)


def deletion_event(
    *,
    source: str,
    environment: str,
    sha: str,
    kind: str,
    name: str,
    namespace: str,
    time: datetime,
) -> Event:
    """``io.catalyst.flux.object.deleted`` of a Kustomization or HelmRelease pruned by the
    commit ``sha`` that removed it."""
    return Event(
        id=demo_event_id(environment, sha, kind, name, Step.DELETED),
        source=source,
        type=FLUX_DELETED,
        subject=f"flux.{escape(name)}",
        time=time,
        data={
            "object": {
                "apiVersion": _API_VERSIONS[kind],
                "kind": kind,
                "metadata": {"name": name, "namespace": namespace},
            }
        },
    )
