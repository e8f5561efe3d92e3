"""Conformance suites: one abstract pytest class per slot, subclassed by every implementation.

Subclass the suite in a module whose name pytest collects, name the subclass ``Test…``, and
override the ``provider`` fixture (plus any fixture the suite documents)::

    from catalyst_kernel.testing import EventSourceConformance

    class TestHeartbeat(EventSourceConformance):
        @pytest.fixture
        def provider(self):
            return HeartbeatSource(...)

Suites for slots whose embedded implementation has not landed yet hold the shape tests only; the
behavioural tests join them with the implementation, and every subclass inherits them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import pytest

from catalyst_kernel.api.extension import ApiExtension
from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.event import Event
from catalyst_kernel.model.plan import FileChange
from catalyst_kernel.plugins.lifecycle import LifecycleHandler
from catalyst_kernel.promotion.rules import RuleContext, RuleKind, RuleVerdict
from catalyst_kernel.provisioning.committer import Committer
from catalyst_kernel.provisioning.composer import CompositionRequest, ManifestComposer
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.sources import EventSource
from catalyst_kernel.readside.spine import KvOperation, Spine
from catalyst_kernel.secrets.backend import SecretBackend
from catalyst_kernel.testing.doubles import MemoryProjectionView, RecordingPublisher
from catalyst_kernel.testing.shape import assert_implements

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import PolicyRule

__all__ = [
    "ApiExtensionConformance",
    "CommitterConformance",
    "EventSourceConformance",
    "IdentityConformance",
    "LifecycleConformance",
    "ManifestComposerConformance",
    "ProjectionConformance",
    "RuleKindConformance",
    "SecretsConformance",
    "SlotConformance",
    "SpineConformance",
    "SpineFactory",
]


class SlotConformance:
    """Base of every suite: the object under test implements the slot's interface."""

    interface: ClassVar[type]

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def provider(self) -> Any:
        """The object under test; every subclass overrides this fixture."""
        raise NotImplementedError(f"{type(self).__name__} must override the 'provider' fixture")

    @pytest.mark.anyio
    async def test_implements_interface(self, provider: Any) -> None:
        assert isinstance(provider, self.interface)
        assert_implements(provider, self.interface)


SpineFactory = Callable[[], AbstractAsyncContextManager[Spine]]


def _event(n: int, *, subject: str = "catalyst.test", id: str | None = None) -> Event:
    return Event.create(
        source="/sovereigns/test/conformance",
        type="io.catalyst.test.event",
        subject=subject,
        data={"n": n},
        id=id or f"event-{n}",
    )


class SpineConformance(SlotConformance):
    """The spine slot: event log (ordering, dedupe, durable consumers) and KV read model.

    Override ``spine_factory``: a callable returning an async context manager that yields a
    *started* spine over the same storage every time it is called (that is how the suite restarts
    the spine), and closes it on exit. Each test gets fresh storage.
    """

    interface = Spine
    timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def spine_factory(self) -> SpineFactory:
        raise NotImplementedError(f"{type(self).__name__} must override 'spine_factory'")

    @pytest.fixture
    async def provider(self, spine_factory: SpineFactory) -> AsyncIterator[Spine]:
        async with spine_factory() as spine:
            yield spine

    # --- event log -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_check_reports_ready(self, provider: Spine) -> None:
        assert (await provider.check()).ready

    @pytest.mark.anyio
    async def test_sequences_are_ordered_per_environment(self, provider: Spine) -> None:
        for n in range(1, 6):
            assert (await provider.publish("acme-dev", _event(n))).sequence == n
        assert (await provider.publish("acme-prod", _event(100))).sequence == 1
        deliveries = await provider.read("acme-dev")
        assert [d.event.data["n"] for d in deliveries] == [1, 2, 3, 4, 5]
        assert [d.sequence for d in deliveries] == [1, 2, 3, 4, 5]
        assert {"acme-dev", "acme-prod"} <= set(await provider.environments())

    @pytest.mark.anyio
    async def test_publishing_an_event_id_twice_is_deduplicated(self, provider: Spine) -> None:
        first = await provider.publish("acme-dev", _event(1, id="same"))
        again = await provider.publish("acme-dev", _event(2, id="same"))
        assert not first.duplicate
        assert again.duplicate
        assert again.sequence == first.sequence
        assert [d.event.data for d in await provider.read("acme-dev")] == [{"n": 1}]

    @pytest.mark.anyio
    async def test_events_round_trip_unchanged(self, provider: Spine) -> None:
        event = _event(7, subject="k8s.Deployment.web.api")
        await provider.publish("acme-dev", event)
        (delivery,) = await provider.read("acme-dev")
        assert delivery.event == event
        assert delivery.environment == "acme-dev"

    @pytest.mark.anyio
    async def test_consumer_delivers_in_order_and_ack_moves_the_cursor(
        self, provider: Spine
    ) -> None:
        for n in range(1, 11):
            await provider.publish("acme-dev", _event(n))
        consumer = await provider.consumer("acme-dev", "conformance")
        first = await consumer.fetch(4, 1.0)
        assert [d.sequence for d in first] == [1, 2, 3, 4]
        await consumer.ack(first[-1])
        rest = await consumer.fetch(100, 1.0)
        assert [d.sequence for d in rest] == list(range(5, 11))
        await consumer.ack(rest[-1])
        assert await consumer.fetch(10, 0.2) == []

    @pytest.mark.anyio
    async def test_fetch_waits_for_new_events(self, provider: Spine) -> None:
        consumer = await provider.consumer("acme-dev", "waiter")
        got: list[Any] = []
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:

                async def fetch() -> None:
                    got.extend(await consumer.fetch(10, self.timeout))

                tasks.start_soon(fetch)
                await anyio.sleep(0.05)
                await provider.publish("acme-dev", _event(1))
        assert [d.sequence for d in got] == [1]

    @pytest.mark.anyio
    async def test_unacknowledged_events_are_redelivered_after_restart(
        self, spine_factory: SpineFactory
    ) -> None:
        async with spine_factory() as spine:
            for n in range(1, 6):
                await spine.publish("acme-dev", _event(n))
            consumer = await spine.consumer("acme-dev", "durable")
            deliveries = await consumer.fetch(5, 1.0)
            await consumer.ack(deliveries[1])  # acknowledges 1 and 2
        async with spine_factory() as spine:
            consumer = await spine.consumer("acme-dev", "durable")
            again = await consumer.fetch(10, 1.0)
            assert [d.sequence for d in again] == [3, 4, 5]

    @pytest.mark.anyio
    async def test_events_and_kv_survive_a_restart(self, spine_factory: SpineFactory) -> None:
        async with spine_factory() as spine:
            await spine.publish("acme-dev", _event(1))
            kv = await spine.key_value("acme-dev")
            revision = await kv.put("app/web", b"running")
        async with spine_factory() as spine:
            assert [d.event.data for d in await spine.read("acme-dev")] == [{"n": 1}]
            assert (await spine.publish("acme-dev", _event(1))).duplicate
            kv = await spine.key_value("acme-dev")
            entry = await kv.get("app/web")
            assert entry is not None
            assert (entry.value, entry.revision) == (b"running", revision)

    @pytest.mark.anyio
    async def test_concurrent_publishers_lose_nothing(self, provider: Spine) -> None:
        publishers, each = 8, 25

        async def publish(worker: int) -> None:
            for n in range(each):
                await provider.publish("acme-dev", _event(worker * 1000 + n))

        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                for worker in range(publishers):
                    tasks.start_soon(publish, worker)
        deliveries = await provider.read("acme-dev", limit=publishers * each + 10)
        assert [d.sequence for d in deliveries] == list(range(1, publishers * each + 1))
        numbers = [d.event.data["n"] for d in deliveries]
        assert sorted(numbers) == sorted(
            w * 1000 + n for w in range(publishers) for n in range(each)
        )
        for worker in range(publishers):
            mine = [n for n in numbers if n // 1000 == worker]
            assert mine == sorted(mine), "each publisher's events keep their order"

    # --- KV --------------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_kv_revisions_increase_across_keys(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        first = await kv.put("a", b"1")
        second = await kv.put("b", b"2")
        third = await kv.put("a", b"3")
        assert first < second < third
        entry = await kv.get("a")
        assert entry is not None
        assert (entry.value, entry.revision, entry.operation) == (b"3", third, KvOperation.PUT)
        assert await kv.get("missing") is None

    @pytest.mark.anyio
    async def test_delete_leaves_a_marker_in_history(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        await kv.put("app/web", b"1")
        await kv.put("app/web", b"2")
        deleted = await kv.delete("app/web")
        assert await kv.get("app/web") is None
        history = await kv.history("app/web")
        assert [e.operation for e in history] == [
            KvOperation.PUT,
            KvOperation.PUT,
            KvOperation.DELETE,
        ]
        assert [e.value for e in history] == [b"1", b"2", None]
        assert history[-1].revision == deleted

    @pytest.mark.anyio
    async def test_snapshot_holds_live_keys_under_a_prefix(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        await kv.put("app/a", b"1")
        await kv.put("app/b", b"2")
        await kv.put("other/c", b"3")
        last = await kv.delete("app/b")
        revision, entries = await kv.snapshot("app/")
        assert revision == last
        assert await kv.revision() == last
        assert [(e.key, e.value) for e in entries] == [("app/a", b"1")]
        _, everything = await kv.snapshot()
        assert [e.key for e in everything] == ["app/a", "other/c"]

    @pytest.mark.anyio
    async def test_put_many_applies_in_order(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        last = await kv.put_many([("x", b"1"), ("y", b"2"), ("x", None), ("z", b"3")])
        changes = await kv.changes(0, 10)
        assert [(e.key, e.operation) for e in changes] == [
            ("x", KvOperation.PUT),
            ("y", KvOperation.PUT),
            ("x", KvOperation.DELETE),
            ("z", KvOperation.PUT),
        ]
        assert changes[-1].revision == last

    @pytest.mark.anyio
    async def test_buckets_are_separate_per_environment(self, provider: Spine) -> None:
        dev = await provider.key_value("acme-dev")
        prod = await provider.key_value("acme-prod")
        await dev.put("app/web", b"dev")
        assert await prod.get("app/web") is None

    @pytest.mark.anyio
    async def test_watch_from_a_revision_then_live(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        first = await kv.put("a", b"1")
        await kv.put("b", b"2")
        seen: list[tuple[str, bytes | None]] = []
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    async for entry in kv.watch(first):
                        seen.append((entry.key, entry.value))
                        if len(seen) == 2:
                            tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                await anyio.sleep(0.05)
                await kv.delete("a")
        assert seen == [("b", b"2"), ("a", None)]

    # --- errors ----------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_invalid_names_and_keys_are_invalid_input(self, provider: Spine) -> None:
        with pytest.raises(InvalidInput):
            await provider.publish("acme-staging", _event(1))
        kv = await provider.key_value("acme-dev")
        for key in ("has space", "wild*card", "", ".leading", "a>b"):
            with pytest.raises(InvalidInput):
                await kv.put(key, b"x")

    @pytest.mark.anyio
    async def test_use_after_close_is_backend_unavailable(
        self, spine_factory: SpineFactory
    ) -> None:
        async with spine_factory() as spine:
            kv = await spine.key_value("acme-dev")
        with pytest.raises(BackendUnavailable):
            await spine.publish("acme-dev", _event(1))
        with pytest.raises(BackendUnavailable):
            await kv.put("a", b"1")
        assert not (await spine.check()).ready


class CommitterConformance(SlotConformance):
    """The committer slot (Environment repositories and change requests)."""

    interface = Committer


class IdentityConformance(SlotConformance):
    """The identity slot (bearer tokens to Principals)."""

    interface = IdentityProvider


class SecretsConformance(SlotConformance):
    """The secrets slot (secret values outside Git)."""

    interface = SecretBackend


class EventSourceConformance(SlotConformance):
    """Event sources publish valid events and stop promptly when cancelled.

    :cvar expected_events: how many events the source must publish within ``timeout`` seconds.
    """

    interface = EventSource
    expected_events: ClassVar[int] = 1
    timeout: ClassVar[float] = 10.0

    def test_has_a_name(self, provider: EventSource) -> None:
        assert isinstance(provider.name, str)
        assert provider.name

    @pytest.mark.anyio
    async def test_run_publishes_valid_events_until_cancelled(self, provider: EventSource) -> None:
        publisher = RecordingPublisher()
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(provider.run, publisher)
                published = await publisher.wait_for(self.expected_events)
                tasks.cancel_scope.cancel()
        for _environment, event in published:
            assert event.subject, "events carry the subject below ws.<env>"
            assert event.type
            assert event.source

    @pytest.mark.anyio
    async def test_distinct_events_have_distinct_ids(self, provider: EventSource) -> None:
        publisher = RecordingPublisher()
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(provider.run, publisher)
                published = await publisher.wait_for(max(2, self.expected_events))
                tasks.cancel_scope.cancel()
        ids = [event.id for _, event in published]
        assert len(ids) == len(set(ids))


class ProjectionConformance(SlotConformance):
    """Projections are deterministic and idempotent over a sample of events.

    Override the ``events`` fixture with events the projection handles.
    """

    interface = Projection

    @pytest.fixture
    def events(self) -> Sequence[Event]:
        raise NotImplementedError(f"{type(self).__name__} must override the 'events' fixture")

    async def _project(self, provider: Projection, events: Sequence[Event], times: int) -> Any:
        view = MemoryProjectionView()
        for event in events:
            if provider.handles(event):
                for _ in range(times):
                    await provider.apply(event, view)
        return view.state

    def test_handles_some_sample_event(self, provider: Projection, events: Sequence[Event]) -> None:
        assert any(provider.handles(event) for event in events)

    @pytest.mark.anyio
    async def test_applying_an_event_twice_changes_nothing(
        self, provider: Projection, events: Sequence[Event]
    ) -> None:
        assert await self._project(provider, events, 2) == await self._project(provider, events, 1)

    @pytest.mark.anyio
    async def test_state_is_json(self, provider: Projection, events: Sequence[Event]) -> None:
        state = await self._project(provider, events, 1)
        assert json.loads(json.dumps(state)) == state


class ManifestComposerConformance(SlotConformance):
    """Composers are deterministic and write only safe repository paths.

    Override the ``request`` fixture with a :class:`CompositionRequest` the composer handles.
    """

    interface = ManifestComposer

    @pytest.fixture
    def composition(self) -> CompositionRequest:
        raise NotImplementedError(f"{type(self).__name__} must override the 'composition' fixture")

    @pytest.mark.anyio
    async def test_composition_is_deterministic(
        self, provider: ManifestComposer, composition: CompositionRequest
    ) -> None:
        first = await provider.compose(composition)
        assert list(first) == list(await provider.compose(composition))
        assert all(isinstance(change, FileChange) for change in first)

    @pytest.mark.anyio
    async def test_files_stay_inside_the_application_directory(
        self, provider: ManifestComposer, composition: CompositionRequest
    ) -> None:
        for change in await provider.compose(composition):
            assert change.path.startswith(f"applications/{composition.application.name}/") or (
                change.path.startswith(("flux-system/", "policies/"))
            ), change.path


class RuleKindConformance(SlotConformance):
    """Rule kinds validate their parameters and answer with a verdict for their kind.

    Override ``rule`` (a valid rule of the kind), ``bad_rule`` (an invalid one) and ``context``.
    """

    interface = RuleKind

    @pytest.fixture
    def rule(self) -> PolicyRule:
        raise NotImplementedError(f"{type(self).__name__} must override the 'rule' fixture")

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        raise NotImplementedError(f"{type(self).__name__} must override the 'bad_rule' fixture")

    @pytest.fixture
    def context(self) -> RuleContext:
        raise NotImplementedError(f"{type(self).__name__} must override the 'context' fixture")

    def test_valid_rule_is_accepted(self, provider: RuleKind, rule: PolicyRule) -> None:
        assert rule.kind == provider.kind
        provider.validate(rule)

    def test_invalid_rule_is_rejected_as_invalid_input(
        self, provider: RuleKind, bad_rule: PolicyRule
    ) -> None:
        with pytest.raises(InvalidInput):
            provider.validate(bad_rule)

    @pytest.mark.anyio
    async def test_verdict_names_the_kind_and_explains(
        self, provider: RuleKind, rule: PolicyRule, context: RuleContext
    ) -> None:
        verdict = await provider.evaluate(rule, context)
        assert isinstance(verdict, RuleVerdict)
        assert verdict.kind == provider.kind
        assert verdict.summary


class ApiExtensionConformance(SlotConformance):
    """API extensions have a name and at least one route handler."""

    interface = ApiExtension

    def test_has_route_handlers(self, provider: ApiExtension) -> None:
        assert provider.name
        assert list(provider.route_handlers())


class LifecycleConformance(SlotConformance):
    """Lifecycle handlers start and stop within a bounded time."""

    interface = LifecycleHandler
    timeout: ClassVar[float] = 10.0

    @pytest.mark.anyio
    async def test_starts_and_stops(self, provider: LifecycleHandler) -> None:
        with anyio.fail_after(self.timeout):
            await provider.startup()
            await provider.shutdown()
