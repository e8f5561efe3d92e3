"""Flux notifications into Catalyst events: the pure half of the Flux event receiver.

Flux's notification-controller, with a ``generic-hmac`` Provider, POSTs each Flux ``Event`` as JSON:
``involvedObject {kind, namespace, name, uid, apiVersion, resourceVersion}``, ``severity``
(``info``/``error``), ``timestamp``, ``message``, ``reason``, ``metadata`` (``revision``, …),
``reportingController``, ``reportingInstance``. :func:`parse_notification` checks that document
and :func:`notification_event` turns it into the ``io.catalyst.flux.object.changed`` event the
read side consumes (docs/events.md), with a Flux-object-shaped ``data.object`` the Application
status projection understands.

A notification is not the object: it says what the controller just did, not the object's whole
status. What is inferred, and what cannot be (see also docs/api.md):

* ``Ready``: ``True`` for an ``info`` notification whose reason is a success reason
  (:data:`READY_REASONS`), ``False`` for every ``error`` notification (reason and message kept,
  so ``BuildFailed``, ``UpgradeFailed``… make the Application Failed), ``Unknown`` for any other
  ``info`` notification (``Progressing``, ``DependencyNotReady``…: Flux is on its way).
* Kustomization revisions: ``metadata.revision`` is ``status.lastAttemptedRevision`` of every
  notification and also ``status.lastAppliedRevision`` of a ``Ready=True`` one; other
  notifications leave ``lastAppliedRevision`` out (the object's previous one is not known).
* HelmRelease: ``metadata.revision`` (the chart version) is ``status.lastAttemptedRevision`` and,
  when ``Ready=True``, ``status.history[0].chartVersion``. Generations are not in a notification:
  ``metadata.generation`` is left out, and a ``Ready=True`` notification sets
  ``status.observedGeneration`` to ``0`` meaning "caught up with the current spec"
  (the projection counts a HelmRelease without ``metadata.generation`` as reconciled once it has
  an ``observedGeneration``).
* Not inferable: ``spec.suspend`` (a webhook never makes an Application Paused), the object's
  generation, its other conditions, workloads and Helm test hooks.
* Ordering: ``metadata.resourceVersion`` is left out of the object (two notifications of one
  reconcile may share it, and the projection would keep the first); the object is ordered by the
  event ``time`` instead (the notification's timestamp, see :func:`event_time`). The involved
  object's ``resourceVersion`` is kept in ``data.notification``.

Only Kustomizations and HelmReleases become events (:data:`FLUX_KINDS`); notifications about
sources (``GitRepository``…) are accepted and ignored by the receiver.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from attrs import frozen

from catalyst_kernel.errors import FieldProblem, InvalidInput
from catalyst_kernel.model.event import Event
from catalyst_kernel.readside.event_types import FLUX_CHANGED
from catalyst_kernel.readside.subjects import escape

__all__ = [
    "FLUX_CHANGED",
    "FLUX_KINDS",
    "READY_REASONS",
    "SEVERITIES",
    "FluxNotification",
    "event_id",
    "event_time",
    "flux_object",
    "notification_event",
    "parse_notification",
]


FLUX_KINDS: Final = frozenset({"Kustomization", "HelmRelease"})
"""The kinds published on ``flux.<name>``; notifications about other kinds are ignored."""

SEVERITIES: Final = frozenset({"info", "error", "trace"})
"""Flux event severities (``trace`` is not forwarded by notification-controller, but is valid)."""

READY_REASONS: Final = frozenset(
    {
        # kustomize-controller
        "ReconciliationSucceeded",
        # helm-controller
        "InstallSucceeded",
        "UpgradeSucceeded",
        "TestSucceeded",
    }
)
"""Reasons of ``info`` notifications that mean the object is ``Ready=True``."""

_API_VERSIONS: Final = {
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
}
_OUTCOME_OFFSET: Final = timedelta(microseconds=1)
_TEXT_LIMIT: Final = 253  # a Kubernetes name's maximum length; kinds and reasons are shorter


@frozen
class FluxNotification:
    """One Flux ``Event`` as notification-controller sends it (checked, normalised)."""

    kind: str
    name: str
    namespace: str | None
    uid: str | None
    api_version: str | None
    resource_version: str | None
    severity: str
    reason: str
    message: str
    timestamp: datetime
    metadata: dict[str, str]
    reporting_controller: str | None = None
    reporting_instance: str | None = None

    @property
    def revision(self) -> str | None:
        """``metadata.revision``: the source revision (Kustomization) or chart version."""
        return self.metadata.get("revision") or None

    @property
    def ready(self) -> str:
        """The ``Ready`` condition status the notification implies (module docstring)."""
        if self.severity == "error":
            return "False"
        return "True" if self.reason in READY_REASONS else "Unknown"


# -------------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------------


def _timestamp(value: str) -> datetime:
    # RFC 3339 as Go's metav1.Time writes it ("2024-05-01T10:00:00Z"); fromisoformat reads it.
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.astimezone(UTC)


def parse_notification(document: Any) -> FluxNotification:
    """Check a decoded notification body and return it.

    :raises InvalidInput: a field is missing or has the wrong type (every problem listed, with
        its JSON pointer).
    """
    if not isinstance(document, dict):
        raise InvalidInput("the notification must be a JSON object")
    problems: list[FieldProblem] = []

    def text(
        container: dict[str, Any], key: str, path: list[str], *, required: bool, empty: bool = False
    ) -> str | None:
        value = container.get(key)
        if value is None:
            if required:
                problems.append(FieldProblem.at([*path, key], "is required"))
            return None
        if not isinstance(value, str) or (not value and not empty):
            problems.append(FieldProblem.at([*path, key], "must be a non-empty string"))
            return None
        if key != "message" and len(value) > _TEXT_LIMIT:
            problems.append(FieldProblem.at([*path, key], f"is longer than {_TEXT_LIMIT}"))
            return None
        return value if value else None

    involved = document.get("involvedObject")
    if not isinstance(involved, dict):
        problems.append(FieldProblem.at(["involvedObject"], "must be an object"))
        involved = {}
    where = ["involvedObject"]
    kind = text(involved, "kind", where, required=True)
    name = text(involved, "name", where, required=True)
    namespace = text(involved, "namespace", where, required=False)
    uid = text(involved, "uid", where, required=False)
    api_version = text(involved, "apiVersion", where, required=False)
    resource_version = text(involved, "resourceVersion", where, required=False)
    severity = text(document, "severity", [], required=True)
    if severity is not None and severity not in SEVERITIES:
        problems.append(FieldProblem.at(["severity"], "must be info, error or trace"))
    reason = text(document, "reason", [], required=True)
    message = text(document, "message", [], required=True, empty=True)
    stamp = text(document, "timestamp", [], required=True)
    timestamp: datetime | None = None
    if stamp is not None:
        try:
            timestamp = _timestamp(stamp)
        except ValueError:
            problems.append(FieldProblem.at(["timestamp"], "must be an RFC 3339 time"))
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        problems.append(FieldProblem.at(["metadata"], "must map names to strings"))
        metadata = {}
    controller = text(document, "reportingController", [], required=False)
    instance = text(document, "reportingInstance", [], required=False)
    if problems or not (kind and name and severity and reason and timestamp):
        raise InvalidInput("the Flux notification is malformed", problems=problems)
    return FluxNotification(
        kind=kind,
        name=name,
        namespace=namespace,
        uid=uid,
        api_version=api_version,
        resource_version=resource_version,
        severity=severity,
        reason=reason,
        message=message or "",
        timestamp=timestamp,
        metadata=dict(metadata),
        reporting_controller=controller,
        reporting_instance=instance,
    )


# -------------------------------------------------------------------------------------------------
# Translation
# -------------------------------------------------------------------------------------------------


def event_id(notification: FluxNotification) -> str:
    """A deterministic id: the same notification delivered again has the same id, so the spine
    deduplicates it; two different notifications (another uid, resourceVersion, revision,
    reason, severity, time or message) have different ids."""
    identity = [
        notification.kind,
        notification.namespace,
        notification.name,
        notification.uid,
        notification.resource_version,
        notification.revision,
        notification.severity,
        notification.reason,
        notification.timestamp.isoformat(),
        notification.message,
    ]
    digest = hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()
    return f"flux-{digest[:40]}"


def event_time(notification: FluxNotification) -> datetime:
    """The event's ``time``: the notification's timestamp, with outcomes after progress.

    Flux timestamps have one-second precision, and the projection keeps the first of two
    versions of an object with the same time, while one reconcile often reports progress
    (``Progressing``: ``Ready=Unknown``) and its outcome (``Ready=True``/``False``) within one
    second. So an outcome with a whole-second timestamp is placed one microsecond later. The
    time depends on the notification only (not on when it arrived or on either clock), so a
    delivery retried late stays as old as it is and replays give the same event.
    """
    stamp = notification.timestamp
    if stamp.microsecond or notification.ready == "Unknown":
        return stamp
    return stamp + _OUTCOME_OFFSET


def _conditions(notification: FluxNotification) -> list[dict[str, Any]]:
    return [
        {
            "type": "Ready",
            "status": notification.ready,
            "reason": notification.reason,
            "message": notification.message,
            "lastTransitionTime": notification.timestamp.isoformat().replace("+00:00", "Z"),
        }
    ]


def flux_object(notification: FluxNotification) -> dict[str, Any]:
    """The Kustomization or HelmRelease a notification describes, as far as it can be inferred
    (module docstring); only for :data:`FLUX_KINDS`."""
    if notification.kind not in FLUX_KINDS:
        raise InvalidInput(f"{notification.kind} is not a Kustomization or HelmRelease")
    metadata: dict[str, Any] = {"name": notification.name}
    if notification.namespace:
        metadata["namespace"] = notification.namespace
    if notification.uid:
        metadata["uid"] = notification.uid
    status: dict[str, Any] = {"conditions": _conditions(notification)}
    revision, ready = notification.revision, notification.ready == "True"
    if revision is not None:
        status["lastAttemptedRevision"] = revision
    if notification.kind == "Kustomization":
        if ready and revision is not None:
            status["lastAppliedRevision"] = revision
    elif ready:
        status["observedGeneration"] = 0
        if revision is not None:
            status["history"] = [{"chartVersion": revision, "status": "deployed"}]
    return {
        "apiVersion": notification.api_version or _API_VERSIONS[notification.kind],
        "kind": notification.kind,
        "metadata": metadata,
        "status": status,
    }


def _notification_data(notification: FluxNotification) -> dict[str, Any]:
    involved = {
        "kind": notification.kind,
        "namespace": notification.namespace,
        "name": notification.name,
        "uid": notification.uid,
        "apiVersion": notification.api_version,
        "resourceVersion": notification.resource_version,
    }
    return {
        "involvedObject": {k: v for k, v in involved.items() if v is not None},
        "severity": notification.severity,
        "reason": notification.reason,
        "message": notification.message,
        "timestamp": notification.timestamp.isoformat().replace("+00:00", "Z"),
        "metadata": dict(notification.metadata),
        "reportingController": notification.reporting_controller,
        "reportingInstance": notification.reporting_instance,
    }


def notification_event(notification: FluxNotification, *, source: str) -> Event:
    """The ``io.catalyst.flux.object.changed`` event of a Kustomization or HelmRelease
    notification: subject ``flux.<name>``, ``data.object`` the inferred object and
    ``data.notification`` what Flux sent (for the timeline and audits).

    :param source: the CloudEvents source (``/sovereigns/<sovereign>/flux-webhook``).
    :raises InvalidInput: the notification is about another kind (see :data:`FLUX_KINDS`).
    """
    return Event(
        id=event_id(notification),
        source=source,
        type=FLUX_CHANGED,
        subject=f"flux.{escape(notification.name)}",
        time=event_time(notification),
        data={
            "object": flux_object(notification),
            "notification": _notification_data(notification),
        },
    )
