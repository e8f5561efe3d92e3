"""Object-state projections: the last-seen state of every object the Environment reports.

Each projection keeps one KV key per object (docs/events.md, "KV keys"):

========================================================  ==========================================
event type                                                key
========================================================  ==========================================
``io.catalyst.k8s.object.changed|deleted``                ``k8s/<kind>/<ns>/<name>`` (ns ``_`` when
                                                          cluster-scoped)
``io.catalyst.flux.object.changed|deleted``               ``flux/<kind>/<name>``
``io.catalyst.crossplane.resource.changed|deleted``       ``crossplane/<kind>/<name>``
``io.catalyst.git.commit``                                ``git/<sha>``
``io.catalyst.change.*``                                  ``change/<id>``
========================================================  ==========================================

An object's value is the object as last seen plus one top-level field, ``observedAt`` (the time of
the event that carried it), which the out-of-order check needs for objects that have no
``resourceVersion``. A ``changed`` event never replaces a newer object (:func:`is_newer`); a
``deleted`` event provably older than the stored object is ignored (:func:`is_stale_delete`).

A stale ``changed`` event that arrives *after* a delete recreates the key: the delete leaves no
tombstone, because tombstones of every deleted Pod would grow the bucket without bound. Sources
publish each object's events in watch order, so this needs two sources racing on one object.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.readside.event_types import (
    CHANGE_PREFIX,
    COMMIT,
    CROSSPLANE_CHANGED,
    CROSSPLANE_DELETED,
    FLUX_CHANGED,
    FLUX_DELETED,
    K8S_CHANGED,
    K8S_DELETED,
)
from catalyst_kernel.readside.subjects import kv_key as _kv_key

if TYPE_CHECKING:
    from catalyst_kernel.model.event import Event
    from catalyst_kernel.readside.projection import ProjectionView

__all__ = [
    "APPLICATION_LABEL",
    "CHANGE_PREFIX",
    "CLUSTER_SCOPED",
    "COMMIT",
    "CROSSPLANE_CHANGED",
    "CROSSPLANE_DELETED",
    "FLUX_CHANGED",
    "FLUX_DELETED",
    "K8S_CHANGED",
    "K8S_DELETED",
    "OBSERVED_AT",
    "ChangeRequestProjection",
    "CrossplaneResourceProjection",
    "FluxObjectProjection",
    "GitCommitProjection",
    "KubernetesObjectProjection",
    "is_mapping",
    "is_newer",
    "is_stale_delete",
    "iso",
    "kv_key",
    "next_change_state",
]

_log = logging.getLogger(__name__)


APPLICATION_LABEL: Final = "openova.io/application"
"""The label that attributes an object (a workload, a Crossplane claim) to an Application."""

OBSERVED_AT: Final = "observedAt"
"""The field added to stored objects: when the event that carried the object happened."""


@functools.lru_cache(maxsize=65536)
def kv_key(kind: str, *names: str) -> str:
    """:func:`catalyst_kernel.readside.subjects.kv_key`, memoised: escaping is byte by byte,
    and the projections build the same few keys for every event about an object."""
    return _kv_key(kind, *names)


CLUSTER_SCOPED: Final = "_"
"""The namespace segment of cluster-scoped objects' keys and subjects."""


# -------------------------------------------------------------------------------------------------
# Ordering of object versions
# -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def iso(time: datetime) -> str:
    """``time`` as the RFC 3339 text stored in the read model: UTC, always with microseconds, so
    stored times compare correctly as text too. Memoised: every projection an event reaches
    asks for its time, and a datetime hashes faster than it converts."""
    return time.astimezone(UTC).isoformat(timespec="microseconds")


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, with the common case (a plain ``dict``, as JSON decodes)
    first: an ABC instance check costs several times a type comparison."""
    return type(value) is dict or isinstance(value, Mapping)


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if is_mapping(metadata) else {}


def _integer(value: Any) -> int | None:
    # resourceVersion is a string in the API; generation an integer. Kubernetes calls
    # resourceVersion opaque, but every real apiserver serves etcd revisions, which are ordered.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _resource_version(obj: Mapping[str, Any]) -> int | None:
    return _integer(_metadata(obj).get("resourceVersion"))


def _generation(obj: Mapping[str, Any]) -> int | None:
    return _integer(_metadata(obj).get("generation"))


def _observed_at(stored: Mapping[str, Any]) -> datetime | None:
    value = stored.get(OBSERVED_AT)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def is_newer(incoming: Mapping[str, Any], time: datetime, stored: Mapping[str, Any]) -> bool:
    """Whether ``incoming`` (carried by an event at ``time``) should replace ``stored``.

    Compared by ``metadata.resourceVersion`` when both have one, else by ``metadata.generation``
    when both have one and they differ, else by event time (``stored[observedAt]``). A tie keeps
    the stored object, so applying the same event again changes nothing.
    """
    incoming_rv, stored_rv = _resource_version(incoming), _resource_version(stored)
    if incoming_rv is not None and stored_rv is not None:
        return incoming_rv > stored_rv
    incoming_gen, stored_gen = _generation(incoming), _generation(stored)
    if incoming_gen is not None and stored_gen is not None and incoming_gen != stored_gen:
        return incoming_gen > stored_gen
    stored_time = _observed_at(stored)
    return stored_time is None or time > stored_time


def is_stale_delete(deleted: Mapping[str, Any], time: datetime, stored: Mapping[str, Any]) -> bool:
    """Whether a delete of ``deleted`` (at ``time``) is provably older than ``stored``.

    Only a strictly older delete is ignored: a delete at the same version or time as the stored
    object deletes it (the object's last state and its deletion share a version).
    """
    deleted_rv, stored_rv = _resource_version(deleted), _resource_version(stored)
    if deleted_rv is not None and stored_rv is not None:
        return deleted_rv < stored_rv
    stored_time = _observed_at(stored)
    return stored_time is not None and time < stored_time


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} is missing")
    return value


def _object_of(event: Event) -> Mapping[str, Any] | None:
    data = event.data
    if not is_mapping(data):
        return None
    obj = data.get("object")
    return obj if is_mapping(obj) else None


def _skip(event: Event, why: str) -> None:
    # A malformed event must not stop the projector (it would be redelivered forever); it is
    # reported and skipped, and the source that sent it is the thing to fix.
    _log.warning("projection skipped event %s (%s): %s", event.id, event.type, why)


# -------------------------------------------------------------------------------------------------
# Last-seen objects: Kubernetes, Flux, Crossplane
# -------------------------------------------------------------------------------------------------


class _LastSeenObjects:
    """Shared behaviour of the three object projections; subclasses say which key an object has."""

    name: str
    changed: str
    deleted: str

    def handles(self, event: Event) -> bool:
        """Whether ``event`` is a changed or deleted event of this projection's domain."""
        return event.type in (self.changed, self.deleted)

    def _key(self, obj: Mapping[str, Any]) -> str:
        raise NotImplementedError

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Store the object (unless the stored one is newer) or delete its key."""
        obj = _object_of(event)
        if obj is None:
            _skip(event, "data.object is missing")
            return
        try:
            key = self._key(obj)
        except InvalidInput as exc:
            _skip(event, f"the object has no usable kind/name: {exc}")
            return
        stored = await view.get(key)
        if event.type == self.deleted:
            if stored is None or not is_stale_delete(obj, event.time, stored):
                await view.delete(key)
            return
        if stored is None or is_newer(obj, event.time, stored):
            await view.put(key, {**obj, OBSERVED_AT: iso(event.time)})


class KubernetesObjectProjection(_LastSeenObjects):
    """``k8s/<kind>/<ns>/<name>``: every Kubernetes object as last seen."""

    name = "k8s-objects"
    changed = K8S_CHANGED
    deleted = K8S_DELETED

    def _key(self, obj: Mapping[str, Any]) -> str:
        metadata = _metadata(obj)
        namespace = metadata.get("namespace") or CLUSTER_SCOPED
        return kv_key(
            "k8s",
            _text(obj.get("kind"), "kind"),
            _text(namespace, "metadata.namespace"),
            _text(metadata.get("name"), "metadata.name"),
        )


class FluxObjectProjection(_LastSeenObjects):
    """``flux/<kind>/<name>``: Flux Kustomizations and HelmReleases as last seen."""

    name = "flux-objects"
    changed = FLUX_CHANGED
    deleted = FLUX_DELETED

    def _key(self, obj: Mapping[str, Any]) -> str:
        name = _text(_metadata(obj).get("name"), "metadata.name")
        return kv_key("flux", _text(obj.get("kind"), "kind"), name)


class CrossplaneResourceProjection(_LastSeenObjects):
    """``crossplane/<kind>/<name>``: Crossplane claims and managed resources as last seen."""

    name = "crossplane-resources"
    changed = CROSSPLANE_CHANGED
    deleted = CROSSPLANE_DELETED

    def _key(self, obj: Mapping[str, Any]) -> str:
        name = _text(_metadata(obj).get("name"), "metadata.name")
        return kv_key("crossplane", _text(obj.get("kind"), "kind"), name)


# -------------------------------------------------------------------------------------------------
# Commits
# -------------------------------------------------------------------------------------------------


class GitCommitProjection:
    """``git/<sha>``: the commit event's data, plus ``time`` (when the commit happened).

    Projections do not see the stream sequence, so a commit's position among the Environment's
    commits is not recorded here; the Application status projection keeps its own order.
    """

    name = "git-commits"

    def handles(self, event: Event) -> bool:
        """Whether ``event`` is a commit."""
        return event.type == COMMIT

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Store the commit under its sha."""
        data = event.data
        if not isinstance(data, Mapping) or not isinstance(data.get("sha"), str) or not data["sha"]:
            _skip(event, "data.sha is missing")
            return
        await view.put(kv_key("git", data["sha"]), {**data, "time": iso(event.time)})


# -------------------------------------------------------------------------------------------------
# Change requests
# -------------------------------------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return sorted({item for item in value if isinstance(item, str) and item})


def _approve(state: dict[str, Any], data: Mapping[str, Any], revision: int) -> None:
    approver = data.get("approver")
    if not isinstance(approver, str) or not approver:
        return
    if any(a["approver"] == approver and a["revision"] == revision for a in state["approvals"]):
        return
    groups = _names(data.get("groups"))
    state["approvals"].append({"approver": approver, "revision": revision, "groups": groups})
    state["approvals"].sort(key=lambda a: (a["revision"], a["approver"]))


def next_change_state(previous: Mapping[str, Any] | None, event: Event) -> dict[str, Any] | None:
    """The state of a change request after ``event`` (an ``io.catalyst.change.*`` event).

    A pure function, shared by every projection that follows change requests. The state is::

        {"id", "state": "open"|"merged"|"closed", "revision", "author", "applications": [...],
         "approvals": [{"approver", "revision", "groups": [...]}], "commit"?, "openedAt",
         "updatedAt", "mergedAt"?, "closedAt"?}

    Rules: a higher ``revision`` dismisses approvals of earlier revisions, and an event for an
    earlier revision than the stored one changes neither content nor approvals (it is stale);
    ``merged`` is final; ``closed`` is final except that an ``opened`` event no earlier than the
    close reopens the change (a reopened pull request); an approver approves a revision once.
    Returns ``None`` when the event's data is unusable.
    """
    data = event.data
    if not isinstance(data, Mapping):
        return None
    change_id, revision = data.get("id"), _integer(data.get("revision"))
    if not isinstance(change_id, str) or not change_id or revision is None:
        return None
    action = event.type.removeprefix(CHANGE_PREFIX)
    time = iso(event.time)
    state: dict[str, Any]
    if previous is None:
        state = {
            "id": change_id,
            "state": "open",
            "revision": revision,
            "author": data.get("author"),
            "applications": [],
            "approvals": [],
            "openedAt": time,
            "updatedAt": time,
        }
    else:
        state = {**previous, "approvals": list(previous.get("approvals", []))}
    if state["state"] == "merged":
        return state
    if state["state"] == "closed":
        if action != "opened" or time < state.get("closedAt", time):
            return state
        state["state"] = "open"
        state.pop("closedAt", None)
    # A stale event (an earlier revision) can still merge or close the change, which is not
    # revision-specific, but says nothing current about its content or approvals.
    if revision >= (_integer(state.get("revision")) or 0):
        if revision > (_integer(state.get("revision")) or 0):
            state["revision"] = revision
            state["approvals"] = [a for a in state["approvals"] if a["revision"] >= revision]
        if action in ("opened", "updated") or not state["applications"]:
            state["applications"] = _names(data.get("applications"))
        if isinstance(data.get("author"), str):
            state["author"] = data["author"]
        if action == "approved":
            _approve(state, data, revision)
    if action == "merged":
        state["state"] = "merged"
        state["mergedAt"] = time
        if isinstance(data.get("commit"), str):
            state["commit"] = data["commit"]
    elif action == "closed":
        state["state"] = "closed"
        state["closedAt"] = time
    state["updatedAt"] = max(state.get("updatedAt", time), time)
    return state


class ChangeRequestProjection:
    """``change/<id>``: a change request's state (see :func:`next_change_state`)."""

    name = "change-requests"

    def handles(self, event: Event) -> bool:
        """Whether ``event`` is about a change request."""
        return event.type.startswith(CHANGE_PREFIX)

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Advance the change request's state."""
        data = event.data
        change_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(change_id, str) or not change_id:
            _skip(event, "data.id is missing")
            return
        key = kv_key("change", change_id)
        previous = await view.get(key)
        state = next_change_state(previous, event)
        if state is None:
            _skip(event, "data.revision is missing or not an integer")
        elif state != previous:
            await view.put(key, state)
