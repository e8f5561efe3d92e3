"""The running providers of the service: started in slot order, closed in reverse, checked for
readiness with a deadline each. The runtime also owns what runs beside the API: the process's
SSE fan-out hub (created on first use), the plugins' lifecycle handlers and event sources, and
optionally the projector; and the write side's entry points over the started providers (the
directory, the publishing committer, the provisioner)."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Final, cast

import anyio
from attrs import frozen

from catalyst_kernel.api.snapshots import SnapshotCache
from catalyst_kernel.directory import Directory
from catalyst_kernel.errors import BackendUnavailable
from catalyst_kernel.health import Readiness, Service
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.promotion.changes import ChangeDesk, Clock, utc_now
from catalyst_kernel.promotion.evaluation import PolicyEvaluator
from catalyst_kernel.provisioning.provisioner import Provisioner
from catalyst_kernel.provisioning.publishing import PublishingCommitter
from catalyst_kernel.readside.fanout import FanoutHub
from catalyst_kernel.readside.projections.timeline import KvTimelineReader
from catalyst_kernel.readside.projector import Projector

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence
    from types import TracebackType

    from anyio.abc import TaskGroup, TaskStatus

    from catalyst_kernel.model.event import Event
    from catalyst_kernel.plugins.lifecycle import LifecycleHandler
    from catalyst_kernel.provisioning.committer import Committer
    from catalyst_kernel.provisioning.publishing import CommitKind
    from catalyst_kernel.readside.fanout import FanoutCounters
    from catalyst_kernel.readside.sources import EventSource
    from catalyst_kernel.readside.spine import Spine
    from catalyst_kernel.secrets.backend import SecretBackend
    from catalyst_kernel.settings import Settings

__all__ = [
    "DEFAULT_CHECK_TIMEOUT",
    "REQUIRED_SLOTS",
    "ProviderState",
    "Runtime",
]

logger = logging.getLogger(__name__)

DEFAULT_CHECK_TIMEOUT: Final = 5.0
# Identity is optional until the identity slot lands in the service (SPEC §7).
REQUIRED_SLOTS: Final = (Slot.SPINE, Slot.COMMITTER, Slot.SECRETS)
_START_ORDER: Final = (Slot.SPINE, Slot.COMMITTER, Slot.SECRETS, Slot.IDENTITY)
_UNAVAILABLE: Final = "unavailable: "


@frozen
class ProviderState:
    """One slot as the service sees it: ``active`` when its provider was started."""

    slot: Slot
    provider: str
    active: bool
    readiness: Readiness


def _unavailable(reason: str) -> Readiness:
    return Readiness.unavailable(
        reason if reason.startswith(_UNAVAILABLE) else _UNAVAILABLE + reason
    )


class _SpinePublisher:
    """The :class:`EventPublisher` event sources get: the spine, answering nothing."""

    def __init__(self, spine: Spine) -> None:
        self._spine = spine

    async def publish(self, environment: str, event: Event) -> None:
        await self._spine.publish(environment, event)


class Runtime:
    """Owns the started providers of one service process.

    ``async with Runtime(settings, manager):`` starts the spine, committer, secret backend and
    identity provider whose slots are available, and closes them in reverse order on exit. A
    required slot that is unavailable is a :class:`PluginError`; any other is recorded with its
    reason and reported (not ready, inactive) by :meth:`readiness`. Callables appended to
    ``commit_listeners`` are called with the Environment and
    :data:`~catalyst_kernel.provisioning.publishing.CommitKind` of every commit made through
    :attr:`committer`.

    :param settings: the Sovereign's settings.
    :param manager: a loaded plugin manager.
    :param required: slots without which the service must not start.
    :param check_timeout: seconds each provider's ``check()`` may take before it counts as
        unavailable.
    :param sse_keepalive: seconds of silence after which an SSE subscription of :meth:`hub`
        gets a keep-alive (default: settings key ``api.sse_keepalive``).
    :param sse_buffer_size: entries buffered per SSE subscriber before it is dropped as too
        slow (default: settings key ``api.sse_buffer_size``).
    :param projector: also run the projector over every Environment (``catalyst serve`` does;
        a deployment may run ``catalyst projector`` as its own process instead).
    :param sources: event sources to run besides the plugins' (the demo's reconciler).

    While the committer shows verdicts where changes live (Gitea's required status), every open
    change is evaluated again each ``policy.recheck_interval`` seconds, so a soak ending or a
    change window opening reaches it without any event.
    """

    def __init__(
        self,
        settings: Settings,
        manager: PluginManager,
        *,
        required: Collection[Slot] = REQUIRED_SLOTS,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT,
        sse_keepalive: float | None = None,
        sse_buffer_size: int | None = None,
        projector: bool = False,
        sources: Sequence[EventSource] = (),
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.required = frozenset(required)
        self.check_timeout = check_timeout
        self._started: dict[Slot, Service] = {}
        self._inactive: dict[Slot, str] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self.sse_keepalive = settings.api.sse_keepalive if sse_keepalive is None else sse_keepalive
        self.sse_buffer_size = (
            settings.api.sse_buffer_size if sse_buffer_size is None else sse_buffer_size
        )
        # Called with the Environment and kind of every commit made through ``committer`` (the
        # app's metrics register here); what one raises is logged.
        self.commit_listeners: list[Callable[[str, CommitKind], None]] = []
        # The hub's task group must be entered and left in one task: it lives in a task of the
        # runtime's own group (entered by ``__aenter__``), started on the first ``hub()`` call.
        self._tasks: TaskGroup | None = None
        self._hub: FanoutHub | None = None
        self._hub_lock = anyio.Lock()
        self._hub_stop = anyio.Event()
        self.run_projector = projector
        self.projector: Projector | None = None
        self.extra_sources = tuple(sources)
        self._background: anyio.CancelScope | None = None
        self._committer: PublishingCommitter | None = None
        self._directory: Directory | None = None
        self._provisioner: Provisioner | None = None
        self.clock: Clock = utc_now
        """The time policy rules see (tests set it; nothing else reads time for decisions)."""
        self._changes: ChangeDesk | None = None
        self.snapshots = SnapshotCache()
        """Encoded ``/state`` snapshots of this process, by Environment."""

    @property
    def started(self) -> Mapping[Slot, Service]:
        """The providers started, by slot, in start order."""
        return dict(self._started)

    @property
    def inactive(self) -> Mapping[Slot, str]:
        """The slots not started, with the reason."""
        return dict(self._inactive)

    def _provide(self, slot: Slot) -> Service:
        getters = {
            Slot.SPINE: self.manager.spine,
            Slot.COMMITTER: self.manager.committer,
            Slot.SECRETS: self.manager.secrets,
            Slot.IDENTITY: self.manager.identity,
        }
        provider: Service = getters[slot]()
        return provider

    async def __aenter__(self) -> Runtime:
        if self._stack is not None:
            raise RuntimeError("this Runtime is already running")
        self.manager.check_providers(self.required)
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            for slot in _START_ORDER:
                selection = self.manager.selection(slot)
                if not selection.available:
                    self._inactive[slot] = str(selection.reason)
                    logger.warning("%s slot is not active: %s", slot.value, selection.reason)
                    continue
                provider = self._provide(slot)
                await provider.start()
                stack.push_async_callback(self._close, slot, provider)
                self._started[slot] = provider
            await self._wire(stack)
            for handler in self.manager.lifecycle_handlers():
                await handler.startup()
                stack.push_async_callback(self._shutdown, handler)
            # Entered after the providers, so left before them: the hub stops watching the spine
            # before the spine closes. The callbacks (LIFO) stop the background work, then ask the
            # hub's task to finish.
            self._hub_stop = anyio.Event()
            self._tasks = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(self._stop_hub)
            await self._tasks.start(self._run_background)
            stack.callback(self._stop_background)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            self._inactive.clear()
            raise
        self._stack = stack
        return self

    async def _wire(self, stack: contextlib.AsyncExitStack) -> None:
        spine = self._started.get(Slot.SPINE)
        if spine is None:
            return
        directory = Directory(await cast("Spine", spine).directory())
        self._directory = directory
        committer = self._started.get(Slot.COMMITTER)
        if committer is not None:
            self._committer = PublishingCommitter(
                cast("Committer", committer),
                cast("Spine", spine),
                sovereign=self.settings.sovereign,
                on_commit=self._committed,
            )
        stack.callback(self._unwire)

    def _committed(self, environment: str, kind: CommitKind) -> None:
        for listener in self.commit_listeners:
            try:
                listener(environment, kind)
            except Exception:
                # The commit stands; one broken listener must not starve the others.
                logger.exception("commit listener %r failed", listener)

    def _unwire(self) -> None:
        self._changes = None
        self._directory = None
        self._committer = None
        self._provisioner = None
        self.projector = None

    @staticmethod
    async def _shutdown(handler: LifecycleHandler) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await handler.shutdown()
            except Exception:
                logger.exception("lifecycle handler %r failed to shut down", handler)

    def _slot(self, slot: Slot) -> Service:
        provider = self._started.get(slot)
        if provider is None:
            reason = self._inactive.get(slot, "the service is not running")
            raise BackendUnavailable(f"no {slot.value} is active: {reason}")
        return provider

    @property
    def spine(self) -> Spine:
        """The started spine. :raises BackendUnavailable: none is active."""
        return cast("Spine", self._slot(Slot.SPINE))

    @property
    def secrets(self) -> SecretBackend:
        """The started secret backend. :raises BackendUnavailable: none is active."""
        return cast("SecretBackend", self._slot(Slot.SECRETS))

    @property
    def committer(self) -> Committer:
        """The started committer, publishing what it does on the spine.

        :raises BackendUnavailable: no committer (or no spine) is active.
        """
        self._slot(Slot.COMMITTER)
        self._slot(Slot.SPINE)
        if self._committer is None:
            raise BackendUnavailable("the service is not running")
        return self._committer

    @property
    def directory(self) -> Directory:
        """The Sovereign's Organizations and Environments. :raises BackendUnavailable:"""
        self._slot(Slot.SPINE)
        if self._directory is None:
            raise BackendUnavailable("the service is not running")
        return self._directory

    @property
    def provisioner(self) -> Provisioner:
        """Install, update and uninstall over the started providers. :raises BackendUnavailable:"""
        if self._provisioner is None:
            self._provisioner = Provisioner(
                sovereign=self.settings.sovereign,
                committer=self.committer,
                secrets=self.secrets,
                composers=self.manager.manifest_composers(),
            )
        return self._provisioner

    @property
    def changes(self) -> ChangeDesk:
        """Change requests under the destination's policy. :raises BackendUnavailable:"""
        if self._changes is None:
            spine = self.spine
            self._changes = ChangeDesk(
                provisioner=self.provisioner,
                directory=self.directory,
                directory_kv=spine.directory,
                evaluator=PolicyEvaluator(self.manager.policy_rule_kinds()),
                timeline=KvTimelineReader(spine.key_value),
                clock=lambda: self.clock(),
                evaluation_timeout=self.settings.policy.evaluation_timeout,
            )
        return self._changes

    async def _run_background(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._background = scope
            async with anyio.create_task_group() as group:
                spine = self._started.get(Slot.SPINE)
                if self.run_projector and spine is not None:
                    self.projector = Projector(cast("Spine", spine), self.manager.projections())
                    group.start_soon(self._run_projector, self.projector)
                committer = self._committer
                if committer is not None and committer.publishes_verdicts:
                    group.start_soon(self._recheck_policies)
                if spine is not None:
                    publisher = _SpinePublisher(cast("Spine", spine))
                    for source in (*self.manager.event_sources(), *self.extra_sources):
                        group.start_soon(self._run_source, source, publisher)
                task_status.started()

    async def _recheck_policies(self) -> None:
        while True:
            await anyio.sleep(self.settings.policy.recheck_interval)
            try:
                await self.changes.recheck()
            except Exception:
                logger.exception("re-evaluating open changes failed")

    @staticmethod
    async def _run_projector(projector: Projector) -> None:
        try:
            await projector.run()
        except Exception:
            logger.exception("the projector stopped")

    @staticmethod
    async def _run_source(source: EventSource, publisher: _SpinePublisher) -> None:
        try:
            await source.run(publisher)
        except Exception:
            # One failing source must not take the API (or the other sources) down.
            logger.exception("event source %r stopped", getattr(source, "name", source))

    def _stop_background(self) -> None:
        if self._background is not None:
            self._background.cancel()
            self._background = None

    async def hub(self) -> FanoutHub:
        """The process's SSE fan-out hub over the started spine, created on first use.

        It is closed with the runtime (every subscription ends with ``EndReason.CLOSED``)
        before the providers are.

        :raises BackendUnavailable: the runtime is not running (or has no spine).
        """
        async with self._hub_lock:
            if self._hub is not None:
                return self._hub
            tasks = self._tasks
            spine = self._started.get(Slot.SPINE)
            if tasks is None or spine is None or self._hub_stop.is_set():
                raise BackendUnavailable("the service is not running: no event stream available")
            hub: FanoutHub = await tasks.start(self._host_hub, spine)
            self._hub = hub
            return hub

    async def _host_hub(
        self, spine: Spine, *, task_status: TaskStatus[FanoutHub] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        hub = FanoutHub(spine, buffer_size=self.sse_buffer_size, keepalive=self.sse_keepalive)
        try:
            async with hub:
                task_status.started(hub)
                await self._hub_stop.wait()
        except Exception:
            # A failing hub must not take the service down with it; the next hub() makes a new one.
            logger.exception("the SSE fan-out hub failed")
        finally:
            if self._hub is hub:
                self._hub = None

    def fanout_counters(self) -> Mapping[str, FanoutCounters]:
        """The SSE hub's counters by Environment; empty while no hub runs (none is started
        for this)."""
        hub = self._hub
        return hub.counters() if hub is not None else {}

    def _stop_hub(self) -> None:
        self._hub_stop.set()
        self._hub = None
        self._tasks = None

    async def _close(self, slot: Slot, provider: Service) -> None:
        self._started.pop(slot, None)
        with anyio.CancelScope(shield=True):
            await provider.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._inactive.clear()
        if stack is not None:
            await stack.aclose()

    async def _check(self, provider: Service) -> Readiness:
        try:
            with anyio.fail_after(self.check_timeout):
                readiness = await provider.check()
        except TimeoutError:
            return _unavailable(f"no answer to the readiness check within {self.check_timeout}s")
        except Exception as exc:
            # check() must not raise; one that does is reported, never propagated to /readyz.
            logger.exception("readiness check of %r raised", provider)
            return _unavailable(f"readiness check failed ({type(exc).__name__})")
        if readiness.ready:
            return readiness
        return _unavailable(readiness.reason or "not ready")

    async def readiness(self) -> dict[Slot, Readiness]:
        """Each started provider's readiness, checked concurrently, by slot."""
        results: dict[Slot, Readiness] = {}

        async def check(slot: Slot, provider: Service) -> None:
            results[slot] = await self._check(provider)

        async with anyio.create_task_group() as group:
            for slot, provider in self._started.items():
                group.start_soon(check, slot, provider)
        return {slot: results[slot] for slot in self._started}

    async def states(self) -> list[ProviderState]:
        """Every slot: the started ones with their readiness, the inactive ones with why."""
        readiness = await self.readiness()
        states = []
        for slot in _START_ORDER:
            name = self.manager.provider_name(slot)
            if slot in readiness:
                states.append(ProviderState(slot, name, True, readiness[slot]))
            elif slot in self._inactive:
                states.append(ProviderState(slot, name, False, _unavailable(self._inactive[slot])))
        return states
