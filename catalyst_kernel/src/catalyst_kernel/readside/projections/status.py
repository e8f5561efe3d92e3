"""Application status: one ``application/<name>`` document per Application (SPEC §6).

The status is derived by a pure function, :func:`derive_status`, from :class:`StatusInputs`; the
table it implements, with its precedence, is ``docs/application-status.md``. The rest of this
module keeps those inputs up to date from events:

* :class:`ApplicationTracker` follows commits, Flux Kustomizations and HelmReleases, workloads
  (Deployments and StatefulSets labelled ``openova.io/application``) and change requests, and
  keeps one *record* per Application: its inputs plus the derived status. It reads and writes only
  keys of its own (under its ``index`` kind), so it does not depend on the order in which the
  projector runs projections.
* :class:`ApplicationStatusProjection` publishes the record of every Application that exists (it
  has a commit that installed it, or an open change request lists it) as ``application/<name>``,
  and writes the timeline's ``reconcile`` and ``health`` entries from the record transitions it
  computes anyway (see :mod:`~catalyst_kernel.readside.projections.timeline`), so the status is
  derived once per event.

Private keys of the status projection (``application-index/…``):

* ``application-index/commits``: how many distinct commits were seen (the counter);
* ``application-index/commit/<sha>``: that commit's position (1, 2, …) in arrival order;
* ``application-index/record/<name>``: the record of a name that is not an Application (yet, or
  any more): Flux objects or workloads seen without a commit, kept so the status is right the
  moment the commit arrives;
* ``application-index/workload/<kind>/<ns>/<name>``: a workload's readiness and the Application
  it belongs to (delete events carry no labels). Records keep only a summary (how many, which
  are not ready), so an event costs the same however many workloads an Application has;
* ``application-index/change/<id>``: the change request's state, to know which Applications it
  listed before.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.readside.projections.objects import (
    APPLICATION_LABEL,
    CHANGE_PREFIX,
    CLUSTER_SCOPED,
    COMMIT,
    FLUX_CHANGED,
    FLUX_DELETED,
    K8S_CHANGED,
    K8S_DELETED,
    OBSERVED_AT,
    is_mapping,
    is_newer,
    is_stale_delete,
    iso,
    kv_key,
    next_change_state,
)
from catalyst_kernel.readside.projections.timeline import write_transition_entries

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from catalyst_kernel.model.event import Event
    from catalyst_kernel.readside.projection import ProjectionView

__all__ = [
    "TERMINAL_REASONS",
    "WORKLOAD_KINDS",
    "ApplicationStatus",
    "ApplicationStatusProjection",
    "ApplicationTracker",
    "FluxInput",
    "StatusInputs",
    "StatusVerdict",
    "Transition",
    "WorkloadInput",
    "derive_status",
    "flux_state",
    "resolve_inputs",
    "revision_sha",
    "workload_state",
]

_log = logging.getLogger(__name__)


class ApplicationStatus(enum.StrEnum):
    """The status of an Application, in precedence order (the first that applies wins)."""

    PENDING_APPROVAL = "Pending approval"
    PAUSED = "Paused"
    FAILED = "Failed"
    INSTALLING = "Installing"
    UPDATING = "Updating"
    DEGRADED = "Degraded"
    RUNNING = "Running"


TERMINAL_REASONS: Final = frozenset(
    {
        # kustomize-controller
        "ArtifactFailed",
        "BuildFailed",
        "HealthCheckFailed",
        "PruneFailed",
        "ReconciliationFailed",
        # helm-controller
        "GetLastReleaseFailed",
        "InitFailed",
        "InstallFailed",
        "RollbackFailed",
        "TestFailed",
        "UninstallFailed",
        "UpgradeFailed",
    }
)
"""``Ready=False`` reasons that mean the attempt failed. Any other ``Ready=False`` reason
(``DependencyNotReady``, ``Progressing``, a reason a later Flux adds) means Flux is still on its
way, so the Application stays Installing/Updating rather than Failed."""

WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet"})
"""The Kubernetes kinds whose readiness counts towards an Application's health."""

_KUSTOMIZATION: Final = "Kustomization"
_HELM_RELEASE: Final = "HelmRelease"
_FLUX_SLOTS: Final = {_KUSTOMIZATION: "kustomization", _HELM_RELEASE: "helmRelease"}


# -------------------------------------------------------------------------------------------------
# The derivation: pure, one branch per row of docs/application-status.md
# -------------------------------------------------------------------------------------------------


@frozen
class FluxInput:
    """What the derivation needs to know about one Flux object of the Application.

    :ivar kind: ``Kustomization`` or ``HelmRelease``.
    :ivar ready: the ``Ready`` condition's status (``"True"``, ``"False"``, ``"Unknown"``), or
        ``None`` when the object has no such condition yet.
    :ivar reason: the ``Ready`` condition's reason.
    :ivar message: the ``Ready`` condition's message.
    :ivar suspended: ``spec.suspend``.
    :ivar applied: the object has reconciled the Application's last commit: for the
        Kustomization, ``status.lastAppliedRevision`` is at or after it; for the HelmRelease,
        ``status.observedGeneration`` has caught up with ``metadata.generation``.
    :ivar attempted: the object's last attempt was at or after the last commit (the
        Kustomization's ``lastAttemptedRevision``; the HelmRelease's generation), so a failure it
        reports is about the current revision. ``True`` when the object does not say.
    :ivar test_failed: (HelmRelease) the release's tests failed while ``Ready`` stayed ``True``.
    """

    kind: str
    ready: str | None = None
    reason: str | None = None
    message: str | None = None
    suspended: bool = False
    applied: bool = False
    attempted: bool = True
    test_failed: bool = False


@frozen
class WorkloadInput:
    """One workload of the Application (``Deployment ns/name``) and whether it is ready."""

    name: str
    ready: bool
    replicas: int = 1
    ready_replicas: int = 0


@frozen
class StatusInputs:
    """Everything :func:`derive_status` looks at.

    :ivar commit: the sha of the Application's last commit, or ``None`` if none was seen.
    :ivar ever_running: the Application has been Running since it was (last) installed; it makes
        an unreconciled commit an update rather than an install.
    :ivar open_changes: ids of open change requests that list the Application.
    :ivar kustomization: its Flux Kustomization, if seen.
    :ivar helm_release: its Flux HelmRelease, if seen (Kustomize-only Blueprints have none).
    :ivar workloads: its Deployments and StatefulSets; ready ones may be left out when
        ``workload_count`` says how many there are.
    :ivar workload_count: how many workloads it has (default: ``len(workloads)``).
    """

    commit: str | None = None
    ever_running: bool = False
    open_changes: tuple[str, ...] = ()
    kustomization: FluxInput | None = None
    helm_release: FluxInput | None = None
    workloads: tuple[WorkloadInput, ...] = ()
    workload_count: int | None = None


@frozen
class StatusVerdict:
    """The derived status and a sentence saying why."""

    status: ApplicationStatus
    reason: str


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(none)"


def _condition(flux: FluxInput) -> str:
    text = f"{flux.kind} {flux.reason or 'Ready=' + str(flux.ready)}"
    return f"{text}: {flux.message}" if flux.message else text


def _failure(inputs: StatusInputs) -> FluxInput | None:
    kustomization, release = inputs.kustomization, inputs.helm_release
    if (
        kustomization is not None
        and kustomization.ready == "False"
        and kustomization.reason in TERMINAL_REASONS
        and kustomization.attempted
    ):
        return kustomization
    # The HelmRelease in the cluster is only the current one once the Kustomization has at least
    # attempted the current commit; before that its failure belongs to an older revision.
    if (
        release is not None
        and release.ready == "False"
        and release.reason in TERMINAL_REASONS
        and release.attempted
        and (kustomization is None or kustomization.attempted)
    ):
        return release
    return None


def _unreconciled(inputs: StatusInputs) -> str | None:
    """Why the last commit is not reconciled yet, or ``None`` when it is."""
    kustomization, release = inputs.kustomization, inputs.helm_release
    if kustomization is None:
        return f"commit {_short(inputs.commit)}: waiting for the Kustomization to appear"
    if not kustomization.applied:
        text = f"commit {_short(inputs.commit)} not yet applied by the Kustomization"
        return f"{text} ({_condition(kustomization)})" if kustomization.ready == "False" else text
    if kustomization.ready == "False":
        return f"waiting: {_condition(kustomization)}"
    if release is not None:
        if not release.applied:
            return f"commit {_short(inputs.commit)}: the HelmRelease has not reconciled it yet"
        if release.ready == "False":
            return f"waiting: {_condition(release)}"
    return None


def derive_status(inputs: StatusInputs) -> StatusVerdict:
    """The Application's status from its inputs (docs/application-status.md).

    Precedence, first match wins: Pending approval > Paused > Failed > Installing/Updating >
    Degraded > Running.
    """
    if inputs.open_changes:
        plural = "s" if len(inputs.open_changes) > 1 else ""
        return StatusVerdict(
            ApplicationStatus.PENDING_APPROVAL,
            f"change request{plural} {', '.join(inputs.open_changes)} open",
        )
    flux = [f for f in (inputs.kustomization, inputs.helm_release) if f is not None]
    suspended = [f.kind for f in flux if f.suspended]
    if suspended:
        return StatusVerdict(ApplicationStatus.PAUSED, f"{' and '.join(suspended)} suspended")
    failure = _failure(inputs)
    if failure is not None:
        return StatusVerdict(ApplicationStatus.FAILED, _condition(failure))
    waiting = _unreconciled(inputs)
    if waiting is not None:
        status = ApplicationStatus.UPDATING if inputs.ever_running else ApplicationStatus.INSTALLING
        return StatusVerdict(status, waiting)
    not_ready = [w for w in inputs.workloads if not w.ready]
    if not_ready:
        detail = "; ".join(f"{w.name}: {w.ready_replicas}/{w.replicas} ready" for w in not_ready)
        return StatusVerdict(ApplicationStatus.DEGRADED, f"workloads not ready: {detail}")
    if inputs.helm_release is not None and inputs.helm_release.test_failed:
        return StatusVerdict(ApplicationStatus.DEGRADED, "HelmRelease tests failed")
    count = len(inputs.workloads) if inputs.workload_count is None else inputs.workload_count
    return StatusVerdict(
        ApplicationStatus.RUNNING,
        f"reconciled at {_short(inputs.commit)}; {count} workload{'s' * (count != 1)} ready",
    )


# -------------------------------------------------------------------------------------------------
# From objects and records to inputs (pure)
# -------------------------------------------------------------------------------------------------


def revision_sha(revision: str) -> str:
    """The commit sha of a Flux source revision: ``main@sha1:<sha>`` (Flux 2.x), ``main/<sha>``
    (older Flux) or a bare sha."""
    return revision.rsplit(":", 1)[-1].rsplit("/", 1)[-1].rsplit("@", 1)[-1]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if is_mapping(value) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _ready_condition(status: Mapping[str, Any], kind: str = "Ready") -> Mapping[str, Any]:
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def _tests_failed(status: Mapping[str, Any]) -> bool:
    if _ready_condition(status, "TestSuccess").get("status") == "False":
        return True
    history = status.get("history")
    if not isinstance(history, list) or not history or not isinstance(history[0], Mapping):
        return False
    hooks = _mapping(history[0].get("testHooks"))
    return any(_mapping(hook).get("phase") == "Failed" for hook in hooks.values())


def _ordering(metadata: Mapping[str, Any], time: datetime) -> dict[str, Any]:
    # What is_newer needs to compare the next version of the object with this one.
    return {
        "metadata": {
            "resourceVersion": metadata.get("resourceVersion"),
            "generation": metadata.get("generation"),
        },
        OBSERVED_AT: iso(time),
    }


def flux_state(
    obj: Mapping[str, Any], time: datetime, previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The part of a Kustomization or HelmRelease an Application record keeps (JSON).

    ``settled`` is the last definite ``Ready`` state (``True``/``False``) with its reason and
    revision; it survives the ``Unknown`` that Flux shows while it reconciles, so the timeline
    can record real transitions only.
    """
    metadata, spec, status = (_mapping(obj.get(part)) for part in ("metadata", "spec", "status"))
    ready = _ready_condition(status)
    history = status.get("history")
    latest = _mapping(history[0]) if isinstance(history, list) and history else {}
    revision = _str(status.get("lastAppliedRevision")) or _str(status.get("lastAttemptedRevision"))
    if obj.get("kind") == _HELM_RELEASE:
        revision = _str(latest.get("chartVersion")) or _str(status.get("lastAttemptedRevision"))
    state: dict[str, Any] = {
        "kind": obj.get("kind"),
        "ready": _str(ready.get("status")),
        "reason": _str(ready.get("reason")),
        "message": _str(ready.get("message")),
        "suspended": spec.get("suspend") is True,
        "lastAppliedRevision": _str(status.get("lastAppliedRevision")),
        "lastAttemptedRevision": _str(status.get("lastAttemptedRevision")),
        "generation": _int(metadata.get("generation")),
        "observedGeneration": _int(status.get("observedGeneration")),
        "lastAttemptedGeneration": _int(status.get("lastAttemptedGeneration")),
        "testFailed": _tests_failed(status),
        **_ordering(metadata, time),
    }
    if state["ready"] in ("True", "False"):
        state["settled"] = {
            "ready": state["ready"],
            "reason": state["reason"],
            "revision": revision,
        }
    elif previous is not None and previous.get("settled") is not None:
        state["settled"] = previous["settled"]
    else:
        state["settled"] = None
    return state


def workload_state(obj: Mapping[str, Any], time: datetime) -> dict[str, Any]:
    """The part of a Deployment or StatefulSet an Application record keeps (JSON).

    Ready when ``status.readyReplicas >= spec.replicas`` (default 1) and
    ``status.observedGeneration >= metadata.generation``.
    """
    metadata = _mapping(obj.get("metadata"))
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    replicas = _int(spec.get("replicas"))
    replicas = 1 if replicas is None else replicas
    ready_replicas = _int(status.get("readyReplicas")) or 0
    generation, observed = _int(metadata.get("generation")), _int(status.get("observedGeneration"))
    current = generation is None or (observed is not None and observed >= generation)
    return {
        "kind": obj.get("kind"),
        "namespace": metadata.get("namespace") or CLUSTER_SCOPED,
        "name": metadata.get("name"),
        "replicas": replicas,
        "readyReplicas": ready_replicas,
        "ready": ready_replicas >= replicas and current,
        **_ordering(metadata, time),
    }


def _at_or_after(
    revision: str | None, commit_position: int | None, positions: Mapping[str, int]
) -> bool:
    if revision is None:
        return False
    if commit_position is None:
        return True
    position = positions.get(revision_sha(revision))
    # A commit the tracker has never seen counts as newer: its event may still be on its way,
    # and any commit seen later gets a later position than the Application's last one.
    return position is None or position >= commit_position


def _flux_input(
    state: Mapping[str, Any] | None, commit_position: int | None, positions: Mapping[str, int]
) -> FluxInput | None:
    if state is None:
        return None
    kind = str(state.get("kind"))
    if kind == _HELM_RELEASE:
        generation, observed = state.get("generation"), state.get("observedGeneration")
        attempted_generation = max(
            (g for g in (observed, state.get("lastAttemptedGeneration")) if isinstance(g, int)),
            default=None,
        )
        applied = observed is not None and (generation is None or observed >= generation)
        attempted = (
            generation is None or attempted_generation is None or attempted_generation >= generation
        )
    else:
        applied = _at_or_after(state.get("lastAppliedRevision"), commit_position, positions)
        last_attempt = state.get("lastAttemptedRevision") or state.get("lastAppliedRevision")
        attempted = last_attempt is None or _at_or_after(last_attempt, commit_position, positions)
    return FluxInput(
        kind=kind,
        ready=state.get("ready"),
        reason=state.get("reason"),
        message=state.get("message"),
        suspended=bool(state.get("suspended")),
        applied=applied,
        attempted=attempted,
        test_failed=bool(state.get("testFailed")),
    )


def resolve_inputs(record: Mapping[str, Any], positions: Mapping[str, int]) -> StatusInputs:
    """The :class:`StatusInputs` of an Application record.

    :param record: the record (the ``application/<name>`` document's shape).
    :param positions: commit positions by sha, for the shas the Kustomization reports; a sha
        missing here has not been seen and counts as newer than the last commit.
    """
    last = record.get("lastCommit")
    commit_position = last.get("position") if isinstance(last, Mapping) else None
    inputs = _mapping(record.get("inputs"))
    workloads = _mapping(inputs.get("workloads"))
    not_ready = _mapping(workloads.get("notReady"))
    return StatusInputs(
        commit=last.get("sha") if isinstance(last, Mapping) else None,
        ever_running=bool(record.get("everRunning")),
        open_changes=tuple(sorted(inputs.get("changeRequests") or ())),
        kustomization=_flux_input(inputs.get("kustomization"), commit_position, positions),
        helm_release=_flux_input(inputs.get("helmRelease"), commit_position, positions),
        workloads=tuple(
            WorkloadInput(
                name=" ".join(workload.split("/", 1)),
                ready=False,
                replicas=_mapping(counts).get("replicas", 1),
                ready_replicas=_mapping(counts).get("readyReplicas", 0),
            )
            for workload, counts in sorted(not_ready.items())
        ),
        workload_count=_int(workloads.get("total")) or 0,
    )


# -------------------------------------------------------------------------------------------------
# The tracker: records kept up to date from events
# -------------------------------------------------------------------------------------------------


def _summary_entry(state: Mapping[str, Any] | None) -> tuple[Any, Any] | None:
    """What a workload state contributes to its Application's ``notReady`` (``None``: ready)."""
    if state is None or state.get("ready") is True:
        return None
    return (state.get("replicas"), state.get("readyReplicas"))


def _new_record(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "status": None,
        "reason": None,
        "since": None,
        "version": None,
        "blueprint": None,
        "lastCommit": None,
        "everRunning": False,
        "inputs": {
            "kustomization": None,
            "helmRelease": None,
            "workloads": {"total": 0, "notReady": {}},
            "changeRequests": [],
        },
    }


def _exists(record: Mapping[str, Any]) -> bool:
    """An Application exists once a commit installed it, or while a change request lists it."""
    return record.get("lastCommit") is not None or bool(record["inputs"]["changeRequests"])


def _is_empty(record: Mapping[str, Any]) -> bool:
    inputs = record["inputs"]
    return not _exists(record) and not (
        inputs["kustomization"] or inputs["helmRelease"] or inputs["workloads"]["total"]
    )


@frozen
class Transition:
    """How one event changed one Application's record (``None``: no record before/after)."""

    application: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    @property
    def status_before(self) -> str | None:
        """The status before the event (``None`` if the Application did not exist)."""
        return self.before.get("status") if self.before is not None else None

    @property
    def status_after(self) -> str | None:
        """The status after the event (``None`` if the Application does not exist)."""
        return self.after.get("status") if self.after is not None else None


def _copy_record(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a record that the tracker may change without touching ``stored``.

    The tracker changes a record in place only at its top level, in ``inputs``, in
    ``inputs.workloads`` (and its ``notReady``) and in ``inputs.changeRequests``; everything
    deeper (``lastCommit``, the Flux states) it replaces, never mutates. So copying those
    containers is a deep copy as far as the tracker can tell, at a fraction of a JSON round trip.
    """
    inputs = stored["inputs"]
    workloads = inputs["workloads"]
    return {
        **stored,
        "inputs": {
            **inputs,
            "workloads": {**workloads, "notReady": dict(workloads["notReady"])},
            "changeRequests": list(inputs["changeRequests"]),
        },
    }


class _Records:
    """The records one event touches, loaded once and written back once."""

    def __init__(self, load: Callable[[str], Awaitable[dict[str, Any] | None]]) -> None:
        self._load = load
        self.before: dict[str, dict[str, Any] | None] = {}
        self.after: dict[str, dict[str, Any]] = {}

    async def __call__(self, name: str) -> dict[str, Any]:
        if name not in self.after:
            stored = await self._load(name)
            self.before[name] = stored
            self.after[name] = _copy_record(stored) if stored is not None else _new_record(name)
        return self.after[name]


class ApplicationTracker:
    """Keeps one record per Application name from events, using only keys under ``index``.

    :param index: the KV kind of its private keys (``application-index``).
    :param documents: the KV kind under which the records of existing Applications are kept
        (``application``), or ``None`` to keep every record privately.
    """

    def __init__(self, index: str, documents: str | None = None) -> None:
        self.index = index
        self.documents = documents

    # Keys ------------------------------------------------------------------------------------

    @property
    def counter_key(self) -> str:
        """The key of the number of distinct commits seen."""
        return kv_key(self.index, "commits")

    def _commit_key(self, sha: str) -> str:
        return kv_key(self.index, "commit", sha)

    def _record_key(self, name: str) -> str:
        return kv_key(self.index, "record", name)

    def _location(self, record: Mapping[str, Any] | None, name: str) -> str | None:
        if record is None or _is_empty(record):
            return None
        if self.documents is not None and _exists(record):
            return kv_key(self.documents, name)
        return self._record_key(name)

    # Events ------------------------------------------------------------------------------------

    def handles(self, event: Event) -> bool:
        """Whether ``event`` can change a record (cheap: type and, for k8s, object kind)."""
        if event.type in (COMMIT, FLUX_CHANGED, FLUX_DELETED) or event.type.startswith(
            CHANGE_PREFIX
        ):
            return True
        if event.type in (K8S_CHANGED, K8S_DELETED):
            obj = _mapping(_mapping(event.data).get("object"))
            return obj.get("kind") in WORKLOAD_KINDS
        return False

    async def apply(self, event: Event, view: ProjectionView) -> list[Transition]:
        """Update the records ``event`` touches; return how each one changed."""

        async def load(name: str) -> dict[str, Any] | None:
            # The view hands out values of our own (JSON decoded); they are kept unchanged as
            # the "before" of a transition and copied (_copy_record) to be worked on.
            if self.documents is not None:
                document: dict[str, Any] | None = await view.get(kv_key(self.documents, name))
                if document is not None:
                    return document
            record: dict[str, Any] | None = await view.get(self._record_key(name))
            return record

        records = _Records(load)
        try:
            if event.type == COMMIT:
                await self._commit(event, view, records)
            elif event.type.startswith(CHANGE_PREFIX):
                await self._change(event, view, records)
            elif event.type in (FLUX_CHANGED, FLUX_DELETED):
                await self._flux(event, records)
            elif event.type in (K8S_CHANGED, K8S_DELETED):
                await self._workload(event, view, records)
        except InvalidInput as exc:
            # A malformed event must not wedge the projector; see objects._skip.
            _log.warning("status tracker skipped event %s (%s): %s", event.id, event.type, exc)
            return []
        transitions = []
        for name, record in sorted(records.after.items()):
            before = records.before[name]
            await self._derive(view, record, event)
            if record == before or (before is None and _is_empty(record)):
                continue
            old, new = self._location(before, name), self._location(record, name)
            if old is not None and old != new:
                await view.delete(old)
            if new is not None:
                await view.put(new, record)
            transitions.append(Transition(name, before, record if new is not None else None))
        return transitions

    async def _position(self, view: ProjectionView, sha: str) -> int | None:
        position = await view.get(self._commit_key(sha))
        return position if isinstance(position, int) else None

    async def _commit(self, event: Event, view: ProjectionView, records: _Records) -> None:
        data = _mapping(event.data)
        sha = data.get("sha")
        if not isinstance(sha, str) or not sha:
            raise InvalidInput("data.sha is missing")
        position = await self._position(view, sha)
        if position is None:
            position = (_int(await view.get(self.counter_key)) or 0) + 1
            await view.put(self.counter_key, position)
            await view.put(self._commit_key(sha), position)
        applications = data.get("applications")
        for entry in applications if isinstance(applications, list) else ():
            name = _mapping(entry).get("name")
            if not isinstance(name, str) or not name:
                continue
            record = await records(name)
            last = record["lastCommit"]
            if last is not None and last["position"] > position:
                continue  # an earlier commit delivered again: the record is already past it
            if entry.get("action") == "uninstall":
                fresh = _new_record(name)
                record.update({k: v for k, v in fresh.items() if k != "inputs"})
                continue
            record["lastCommit"] = {
                "sha": sha,
                "position": position,
                "action": entry.get("action"),
                "time": iso(event.time),
            }
            for field in ("version", "blueprint"):
                if isinstance(entry.get(field), str):
                    record[field] = entry[field]

    async def _change(self, event: Event, view: ProjectionView, records: _Records) -> None:
        change_id = _mapping(event.data).get("id")
        if not isinstance(change_id, str) or not change_id:
            raise InvalidInput("data.id is missing")
        key = kv_key(self.index, "change", change_id)
        previous = await view.get(key)
        state = next_change_state(previous, event)
        if state is None:
            raise InvalidInput("data.revision is missing or not an integer")
        if state != previous:
            await view.put(key, state)

        def listing(change: Mapping[str, Any] | None) -> set[str]:
            if change is None or change.get("state") != "open":
                return set()
            return set(change.get("applications") or ())

        before, after = listing(previous), listing(state)
        for name in sorted(before - after):
            requests = (await records(name))["inputs"]["changeRequests"]
            if change_id in requests:
                requests.remove(change_id)
        for name in sorted(after):
            requests = (await records(name))["inputs"]["changeRequests"]
            if change_id not in requests:
                requests.append(change_id)
                requests.sort()

    async def _flux(self, event: Event, records: _Records) -> None:
        obj = _mapping(_mapping(event.data).get("object"))
        slot = _FLUX_SLOTS.get(str(obj.get("kind")))
        name = _mapping(obj.get("metadata")).get("name")
        if slot is None or not isinstance(name, str) or not name:
            return
        inputs = (await records(name))["inputs"]
        stored = inputs[slot]
        if event.type == FLUX_DELETED:
            if stored is not None and not is_stale_delete(obj, event.time, stored):
                inputs[slot] = None
        elif stored is None or is_newer(obj, event.time, stored):
            inputs[slot] = flux_state(obj, event.time, stored)

    async def _workload(self, event: Event, view: ProjectionView, records: _Records) -> None:
        obj = _mapping(_mapping(event.data).get("object"))
        metadata = _mapping(obj.get("metadata"))
        kind, name = _str(obj.get("kind")), _str(metadata.get("name"))
        namespace = _str(metadata.get("namespace") or CLUSTER_SCOPED)
        if not kind or not name or not namespace:
            raise InvalidInput("the workload has no usable kind, namespace or name")
        workload = f"{kind}/{namespace}/{name}"
        key = kv_key(self.index, "workload", kind, namespace, name)
        stored = await view.get(key)
        owner = stored.get("application") if is_mapping(stored) else None

        async def summary(application: str) -> dict[str, Any]:
            workloads: dict[str, Any] = (await records(application))["inputs"]["workloads"]
            return workloads

        if event.type == K8S_DELETED:
            if stored is not None and not is_stale_delete(obj, event.time, stored):
                if isinstance(owner, str):
                    detached = await summary(owner)
                    detached["total"] = max(0, detached["total"] - 1)
                    detached["notReady"].pop(workload, None)
                await view.delete(key)
            return
        if stored is not None and not is_newer(obj, event.time, stored):
            return
        application = _mapping(metadata.get("labels")).get(APPLICATION_LABEL)
        if not isinstance(application, str) or not application:
            application = None
        if isinstance(owner, str) and owner != application:
            detached = await summary(owner)
            detached["total"] = max(0, detached["total"] - 1)
            detached["notReady"].pop(workload, None)
        if application is None:
            # Unlabelled workloads are nobody's: no key, so the bucket does not hold every
            # Deployment of the cluster.
            if stored is not None:
                await view.delete(key)
            return
        state = workload_state(obj, event.time)
        if owner == application and _summary_entry(stored) == _summary_entry(state):
            # Same Application, same readiness and counts: its summary (total, notReady) stays
            # as it is, so its record would not change (re-deriving an unchanged record yields
            # it again: the commit positions it depends on never change once assigned, and a sha
            # seen for the first time is numbered after every last commit, as an unseen one
            # counts). Skip loading it; only the workload's own state moves on.
            await view.put(key, {"application": application, **state})
            return
        attached = await summary(application)
        if owner != application:
            attached["total"] += 1
        if state["ready"]:
            attached["notReady"].pop(workload, None)
        else:
            attached["notReady"][workload] = {
                "replicas": state["replicas"],
                "readyReplicas": state["readyReplicas"],
            }
        await view.put(key, {"application": application, **state})

    async def _derive(self, view: ProjectionView, record: dict[str, Any], event: Event) -> None:
        if not _exists(record):
            record.update(status=None, reason=None, since=None)
            return
        kustomization = record["inputs"]["kustomization"] or {}
        positions: dict[str, int] = {}
        for field in ("lastAppliedRevision", "lastAttemptedRevision"):
            revision = kustomization.get(field)
            if isinstance(revision, str):
                position = await self._position(view, revision_sha(revision))
                if position is not None:
                    positions[revision_sha(revision)] = position
        verdict = derive_status(resolve_inputs(record, positions))
        if record["status"] != verdict.status.value:
            record["status"] = verdict.status.value
            record["since"] = iso(event.time)
        record["reason"] = verdict.reason
        if verdict.status is ApplicationStatus.RUNNING:
            record["everRunning"] = True


class ApplicationStatusProjection:
    """``application/<name>``: each Application's inputs and derived status.

    The document (docs/application-status.md)::

        {"name", "status", "reason", "since", "version", "blueprint",
         "lastCommit": {"sha", "position", "action", "time"}, "everRunning",
         "inputs": {"kustomization", "helmRelease", "workloads", "changeRequests"}}

    An uninstall commit removes the document.

    It also writes the Application timeline's ``reconcile`` and ``health`` entries
    (``timeline/<name>/…``, see :mod:`~catalyst_kernel.readside.projections.timeline`): it knows
    each record before and after the event, so the timeline need not derive the status again.
    """

    name = "application-status"

    def __init__(self) -> None:
        self._tracker = ApplicationTracker("application-index", documents="application")

    def handles(self, event: Event) -> bool:
        """Commits, change requests, Flux objects and workloads."""
        return self._tracker.handles(event)

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Update the records the event touches, publish the ones of existing Applications and
        append the timeline's ``reconcile`` and ``health`` entries the changes imply."""
        await write_transition_entries(view, event, await self._tracker.apply(event, view))
