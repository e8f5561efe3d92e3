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
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import pytest

from catalyst_kernel.api.extension import ApiExtension
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.plan import FileChange
from catalyst_kernel.plugins.lifecycle import LifecycleHandler
from catalyst_kernel.promotion.rules import RuleContext, RuleKind, RuleVerdict
from catalyst_kernel.provisioning.committer import Committer
from catalyst_kernel.provisioning.composer import CompositionRequest, ManifestComposer
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.sources import EventSource
from catalyst_kernel.readside.spine import Spine
from catalyst_kernel.secrets.backend import SecretBackend
from catalyst_kernel.testing.doubles import MemoryProjectionView, RecordingPublisher
from catalyst_kernel.testing.shape import assert_implements

if TYPE_CHECKING:
    from collections.abc import Sequence

    from catalyst_kernel.model.event import Event
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

    def test_implements_interface(self, provider: Any) -> None:
        assert isinstance(provider, self.interface)
        assert_implements(provider, self.interface)


class SpineConformance(SlotConformance):
    """The spine slot (event log + KV read model)."""

    interface = Spine


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
        from catalyst_kernel.errors import InvalidInput

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
