"""The demo's simulated reconciler: Flux-shaped events for every commit, without a cluster.

``catalyst serve --demo`` has no Kubernetes and no Flux, so nothing would ever report that a
commit was applied and every Application would stay ``Installing``. :class:`SimulatedReconciler`
stands in for Flux's notification-controller (and the controllers behind it): an event source
that follows every Environment's stream and answers each ``io.catalyst.git.commit`` with the
events the Flux webhook receiver would publish for a successful reconcile
(:mod:`catalyst_kernel.demo.notifications`), in ``dependsOn`` order. It is for the demo only:
its logs start with ``demo: simulated reconciler``, its events come from
``/sovereigns/<sovereign>/demo-reconciler`` and their messages say they are simulated. See
``docs/demo.md``.

For each commit, the Applications it installs, updates, promotes or rolls back are read from
the repository at that commit (their Flux Kustomization for ``dependsOn``, their HelmRelease if
any). Then, one ``delay`` apart:

1. every such Kustomization reports the new revision: ``Progressing``, or
   ``DependencyNotReady`` when it depends on another Application of the same commit;
2. wave by wave (:func:`~catalyst_kernel.demo.ordering.reconcile_waves`): the Kustomizations
   that were waiting report ``Progressing``, and after ``delay`` the wave's HelmReleases report
   ``InstallSucceeded``/``UpgradeSucceeded`` and its Kustomizations ``ReconciliationSucceeded``
   with ``lastAppliedRevision: main@sha1:<sha>``, so a dependency is Ready before its
   dependents start.

Applications the commit uninstalls get ``io.catalyst.flux.object.deleted`` for their
HelmRelease and Kustomization (as they were at the parent commit), dependents first.

Each Environment is read through a durable consumer of its own (``demo-reconciler``), acked
commit by commit, so a restart carries on where it stopped; event ids are deterministic, so a
commit reconciled twice (a crash before its ack) only republishes duplicates the spine drops.
An Environment whose backend fails is retried with backoff without stopping the others; a
commit that cannot be reconciled for another reason is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import anyio

from catalyst_kernel.demo.manifests import Target, read_target
from catalyst_kernel.demo.notifications import (
    HELM_RELEASE,
    KUSTOMIZATION,
    Step,
    deletion_event,
    helm_release_event,
    kustomization_event,
    revision,
)
from catalyst_kernel.demo.ordering import reconcile_waves
from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.provisioning.composers.flux import FLUX_NAMESPACE
from catalyst_kernel.readside.event_types import COMMIT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.model.event import Event
    from catalyst_kernel.plugins.manager import PluginManager
    from catalyst_kernel.provisioning.committer import Committer
    from catalyst_kernel.readside.sources import EventPublisher
    from catalyst_kernel.readside.spine import Delivery, Spine

__all__ = [
    "DEFAULT_DELAY",
    "DEFAULT_DURABLE",
    "SOURCE_NAME",
    "SimulatedReconciler",
]

log = logging.getLogger(__name__)

SOURCE_NAME: Final = "demo-reconciler"
"""The event source's name, and the last segment of its CloudEvents ``source``."""

DEFAULT_DURABLE: Final = "demo-reconciler"
"""The durable consumer each Environment is read with."""

DEFAULT_DELAY: Final = 0.5
"""Seconds between two steps of a reconcile: long enough to see Installing, then Running."""

_APPLY_ACTIONS: Final = frozenset({"install", "update", "promote", "rollback"})
_UNINSTALL: Final = "uninstall"
# Failures worth retrying: the backend may come back. Anything else would fail again.
_TRANSIENT: Final = (BackendUnavailable, TimeoutError, OSError)
_MIN_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 5.0
_PREFIX: Final = "demo: simulated reconciler"


def _positive(name: str, value: float, *, zero: bool = False) -> float:
    if value < 0 or (value == 0 and not zero):
        raise InvalidInput(f"{name} must be {'at least 0' if zero else 'positive'}", field=name)
    return value


class SimulatedReconciler:
    """An :class:`~catalyst_kernel.readside.sources.EventSource` answering commits with
    Flux-shaped events (module docstring). Demo only: it claims reconciles nobody made.

    Give it to the runtime as an extra source, built from the same plugin manager (whose
    providers the runtime starts before it runs any source)::

        reconciler = SimulatedReconciler.from_manager(manager)
        runtime = Runtime(settings, manager, projector=True, sources=[reconciler])

    :param spine: the spine the runtime starts (read for Environments and commits).
    :param committer: the committer the runtime starts (read for the Kustomization and
        HelmRelease files at each commit).
    :param sovereign: the Sovereign's name (the events' ``source``).
    :param delay: seconds between two steps of a reconcile (0 for no pause).
    :param durable: the durable consumer name on every Environment.
    :param discover_interval: seconds between looks for new Environments.
    :param fetch_wait: seconds one fetch waits for new events.
    :param batch: deliveries fetched at once.
    :param timeout: seconds any other backend call (read, publish, ack) may take.
    """

    name = SOURCE_NAME

    def __init__(
        self,
        spine: Spine,
        committer: Committer,
        *,
        sovereign: str,
        delay: float = DEFAULT_DELAY,
        durable: str = DEFAULT_DURABLE,
        discover_interval: float = 1.0,
        fetch_wait: float = 1.0,
        batch: int = 64,
        timeout: float = 10.0,
    ) -> None:
        self.spine = spine
        self.committer = committer
        self.source = f"/sovereigns/{sovereign}/{SOURCE_NAME}"
        self.delay = _positive("delay", delay, zero=True)
        self.durable = durable
        self.discover_interval = _positive("discover_interval", discover_interval)
        self.fetch_wait = _positive("fetch_wait", fetch_wait)
        self.batch = int(_positive("batch", batch))
        self.timeout = _positive("timeout", timeout)
        self.reconciled: dict[str, int] = {}
        """The last stream sequence handled (and acked), by Environment."""
        self._last_time: datetime | None = None

    @classmethod
    def from_manager(
        cls, manager: PluginManager, *, delay: float = DEFAULT_DELAY
    ) -> SimulatedReconciler:
        """A reconciler over ``manager``'s spine and committer and its Sovereign's name.

        The manager hands out one provider per slot, so these are the instances a
        :class:`~catalyst_kernel.api.runtime.Runtime` over the same manager starts.
        """
        return cls(
            manager.spine(), manager.committer(), sovereign=manager.settings.sovereign, delay=delay
        )

    def __repr__(self) -> str:
        return f"SimulatedReconciler(source={self.source!r}, delay={self.delay})"

    # --- the event source ------------------------------------------------------------------------

    async def run(self, publisher: EventPublisher) -> None:
        """Follow every Environment (new ones within ``discover_interval``) until cancelled."""
        log.info(
            "%s started: no Kubernetes, no Flux; every commit is answered with Flux-shaped "
            "events (%.2fs per step). Demo only.",
            _PREFIX,
            self.delay,
        )
        followed: set[str] = set()
        try:
            async with anyio.create_task_group() as tasks:
                while True:
                    for environment in await self._environments():
                        if environment not in followed:
                            followed.add(environment)
                            tasks.start_soon(self._follow, environment, publisher)
                    await anyio.sleep(self.discover_interval)
        finally:
            log.info("%s stopped", _PREFIX)

    async def _environments(self) -> Sequence[str]:
        try:
            with anyio.fail_after(self.timeout):
                return await self.spine.environments()
        except Exception as exc:
            log.warning("%s: cannot list Environments: %s", _PREFIX, exc)
            return []

    async def _follow(self, environment: str, publisher: EventPublisher) -> None:
        backoff = _MIN_BACKOFF
        while True:
            try:
                with anyio.fail_after(self.timeout):
                    consumer = await self.spine.consumer(environment, self.durable)
                while True:
                    with anyio.fail_after(self.fetch_wait + self.timeout):
                        deliveries = await consumer.fetch(self.batch, self.fetch_wait)
                    for delivery in deliveries:
                        await self._handle(environment, delivery, publisher)
                        with anyio.fail_after(self.timeout):
                            await consumer.ack(delivery)
                        self.reconciled[environment] = delivery.sequence
                    backoff = _MIN_BACKOFF
            except _TRANSIENT as exc:
                log.warning(
                    "%s: %s unavailable, retrying in %.1fs: %s",
                    _PREFIX,
                    environment,
                    backoff,
                    str(exc) or type(exc).__name__,
                )
            except Exception:
                log.exception("%s: %s failed, retrying in %.1fs", _PREFIX, environment, backoff)
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _handle(
        self, environment: str, delivery: Delivery, publisher: EventPublisher
    ) -> None:
        event = delivery.event
        if event.type != COMMIT:
            return
        try:
            await self._reconcile(environment, event, publisher)
        except _TRANSIENT:
            raise
        except Exception:
            # Reconciling it again would fail the same way and hold up every later commit.
            log.exception(
                "%s: %s: commit event %s (sequence %d) skipped",
                _PREFIX,
                environment,
                event.id,
                delivery.sequence,
            )

    # --- one commit ------------------------------------------------------------------------------

    async def _reconcile(self, environment: str, event: Event, publisher: EventPublisher) -> None:
        data: Mapping[str, Any] = event.data if isinstance(event.data, Mapping) else {}
        sha = data.get("sha")
        if not isinstance(sha, str) or not sha:
            log.warning("%s: %s: commit event %s has no sha", _PREFIX, environment, event.id)
            return
        parents = data.get("parents")
        parent = parents[0] if isinstance(parents, list) and parents else None
        applied: dict[str, str] = {}
        removed: list[str] = []
        entries = data.get("applications")
        for entry in entries if isinstance(entries, list) else ():
            name = entry.get("name") if isinstance(entry, Mapping) else None
            action = entry.get("action") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not name:
                continue
            if action in _APPLY_ACTIONS:
                applied[name] = str(action)
            elif action == _UNINSTALL:
                removed.append(name)
        if not applied and not removed:
            return
        touched = [f"{action} {name}" for name, action in sorted(applied.items())]
        touched += [f"uninstall {name}" for name in sorted(removed)]
        log.info(
            "%s: %s: reconciling commit %s (%s)", _PREFIX, environment, sha[:12], ", ".join(touched)
        )
        if removed:
            await self._prune(environment, sha, parent, removed, publisher)
        if applied:
            await self._apply(environment, sha, applied, publisher)

    async def _apply(
        self,
        environment: str,
        sha: str,
        actions: Mapping[str, str],
        publisher: EventPublisher,
    ) -> None:
        targets: dict[str, Target] = {}
        for name in sorted(actions):
            with anyio.fail_after(self.timeout):
                target = await read_target(self.committer, environment, name, sha)
            if not target.kustomization:
                log.warning(
                    "%s: %s: %s has no Flux Kustomization at %s; reconciling it without "
                    "dependencies",
                    _PREFIX,
                    environment,
                    name,
                    sha[:12],
                )
            targets[name] = target

        async def kustomization(name: str, step: Step, waiting_for: Sequence[str] = ()) -> None:
            await self._publish(
                publisher,
                environment,
                kustomization_event(
                    source=self.source,
                    environment=environment,
                    sha=sha,
                    name=name,
                    step=step,
                    time=self._now(),
                    waiting_for=waiting_for,
                ),
            )

        waiting = {
            name: [other for other in target.depends_on if other in targets]
            for name, target in targets.items()
        }
        for name in sorted(targets):
            if waiting[name]:
                await kustomization(name, Step.DEPENDENCY_NOT_READY, waiting[name])
            else:
                await kustomization(name, Step.PROGRESSING)
        waves = reconcile_waves({name: target.depends_on for name, target in targets.items()})
        for wave in waves:
            for name in wave:
                if waiting[name]:  # its dependencies are Ready now (or in a cycle with it)
                    await kustomization(name, Step.PROGRESSING)
            await anyio.sleep(self.delay)
            for name in wave:
                chart = targets[name].helm_release
                if chart is not None:
                    release = helm_release_event(
                        source=self.source,
                        environment=environment,
                        sha=sha,
                        chart=chart,
                        upgrade=actions[name] != "install",
                        time=self._now(),
                    )
                    await self._publish(publisher, environment, release)
                await kustomization(name, Step.READY)
                log.info("%s: %s: %s is Ready at %s", _PREFIX, environment, name, revision(sha))

    async def _prune(
        self,
        environment: str,
        sha: str,
        parent: str | None,
        names: Sequence[str],
        publisher: EventPublisher,
    ) -> None:
        targets: dict[str, Target] = {}
        for name in sorted(names):
            if parent is None:
                targets[name] = Target(name, kustomization=False)
                continue
            with anyio.fail_after(self.timeout):
                targets[name] = await read_target(self.committer, environment, name, parent)
        waves = reconcile_waves({name: target.depends_on for name, target in targets.items()})
        for wave in reversed(waves):  # dependents go before what they depend on
            for name in wave:
                chart = targets[name].helm_release
                deletions = [(KUSTOMIZATION, name, FLUX_NAMESPACE)]
                if chart is not None:
                    deletions.insert(0, (HELM_RELEASE, chart.name, chart.namespace))
                for kind, object_name, namespace in deletions:
                    deleted = deletion_event(
                        source=self.source,
                        environment=environment,
                        sha=sha,
                        kind=kind,
                        name=object_name,
                        namespace=namespace,
                        time=self._now(),
                    )
                    await self._publish(publisher, environment, deleted)
                log.info("%s: %s: %s pruned at %s", _PREFIX, environment, name, revision(sha))

    # --- helpers ---------------------------------------------------------------------------------

    async def _publish(self, publisher: EventPublisher, environment: str, event: Event) -> None:
        with anyio.fail_after(self.timeout):
            await publisher.publish(environment, event)

    def _now(self) -> datetime:
        # Strictly increasing: the projection orders versions of a Flux object by event time
        # and keeps the first of two with the same time.
        now = datetime.now(UTC)
        if self._last_time is not None and now <= self._last_time:
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now
