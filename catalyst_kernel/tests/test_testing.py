"""The conformance-suite framework itself: suites pass good implementations and catch bad ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import Application, Blueprint, Event, FileAction, FileChange, structure
from catalyst_kernel.model.policy import PolicyRule
from catalyst_kernel.promotion.rules import RuleContext, RuleVerdict, TimelineEntry
from catalyst_kernel.provisioning.committer import ChangeRequest, ChangeStatus
from catalyst_kernel.provisioning.composer import CompositionRequest
from catalyst_kernel.readside.projection import ProjectionView
from catalyst_kernel.readside.spine import Spine
from catalyst_kernel.testing import (
    ApiExtensionConformance,
    LifecycleConformance,
    ManifestComposerConformance,
    ProjectionConformance,
    RuleKindConformance,
    assert_implements,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class ObjectStateProjection:
    name = "object-state"

    def handles(self, event: Event) -> bool:
        return event.type == "io.catalyst.k8s.object"

    async def apply(self, event: Event, view: ProjectionView) -> None:
        await view.put(f"k8s/{event.subject}", event.data)


class TestObjectStateProjection(ProjectionConformance):
    @pytest.fixture
    def provider(self) -> ObjectStateProjection:
        return ObjectStateProjection()

    @pytest.fixture
    def events(self) -> Sequence[Event]:
        return [
            Event.create(source="/t", type="io.catalyst.k8s.object", subject="web", data={"r": 1}),
            Event.create(source="/t", type="io.catalyst.k8s.object", subject="web", data={"r": 2}),
            Event.create(source="/t", type="io.catalyst.other", subject="x"),
        ]


class KustomizationComposer:
    name = "kustomization"

    async def compose(self, request: CompositionRequest) -> Sequence[FileChange]:
        path = f"applications/{request.application.name}/kustomization.yaml"
        return [FileChange(path, FileAction.ADD, "resources: []\n")]


BLUEPRINT = {
    "metadata": {"name": "bp-demo", "version": "1.0.0"},
    "spec": {
        "card": {"title": "Demo"},
        "manifests": {"source": {"kind": "Kustomize", "ref": {"path": "manifests"}}},
    },
}


class TestKustomizationComposer(ManifestComposerConformance):
    @pytest.fixture
    def provider(self) -> KustomizationComposer:
        return KustomizationComposer()

    @pytest.fixture
    def composition(self) -> CompositionRequest:
        application = Application("demo", "acme-dev", "bp-demo", "1.0.0")
        return CompositionRequest("local", application, structure(BLUEPRINT, Blueprint))


class ReasonRequired:
    kind = "reason-required"

    def validate(self, rule: PolicyRule) -> None:
        if not isinstance(rule.params.get("reason"), str):
            raise InvalidInput("reason-required needs a 'reason' string", field="reason")

    async def evaluate(self, rule: PolicyRule, context: RuleContext) -> RuleVerdict:
        passed = bool(context.change.description)
        return RuleVerdict(
            self.kind, passed, "the change has a description" if passed else "add a description"
        )


class EmptyTimeline:
    async def application_timeline(
        self, environment: str, application: str
    ) -> Sequence[TimelineEntry]:
        return []


class TestReasonRequired(RuleKindConformance):
    @pytest.fixture
    def provider(self) -> ReasonRequired:
        return ReasonRequired()

    @pytest.fixture
    def rule(self) -> PolicyRule:
        return PolicyRule("reason-required", {"reason": "audit"})

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        return PolicyRule("reason-required", {"reason": 3})

    @pytest.fixture
    def context(self) -> RuleContext:
        change = ChangeRequest(
            id="1",
            environment="acme-prod",
            title="t",
            author="u",
            status=ChangeStatus.OPEN,
            revision=1,
            head="h",
            base="b",
            created=NOW,
            updated=NOW,
        )
        return RuleContext("acme-prod", change, NOW, EmptyTimeline())


class Webhooks:
    name = "webhooks"

    def route_handlers(self) -> Sequence[Any]:
        return [object()]


class TestWebhooks(ApiExtensionConformance):
    @pytest.fixture
    def provider(self) -> Webhooks:
        return Webhooks()


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def startup(self) -> None:
        self.calls.append("startup")

    async def shutdown(self) -> None:
        self.calls.append("shutdown")


class TestRecorder(LifecycleConformance):
    @pytest.fixture
    def provider(self) -> Recorder:
        return Recorder()


def test_assert_implements_lists_every_mismatch() -> None:
    class HalfSpine:
        async def start(self) -> None: ...
        def close(self) -> None: ...

        async def environments(self) -> list[str]:
            return []

        async def watch(self) -> None: ...

    with pytest.raises(AssertionError) as caught:
        assert_implements(HalfSpine(), Spine)
    message = str(caught.value)
    assert "missing 'publish'" in message
    assert "'close' must be 'async def'" in message
    assert "'start'" not in message


def test_a_non_idempotent_projection_fails_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from catalyst_kernel.model import Event
        from catalyst_kernel.testing import ProjectionConformance

        class Counter:
            name = "counter"

            def handles(self, event):
                return True

            async def apply(self, event, view):
                await view.put("count", (await view.get("count") or 0) + 1)

        class TestCounter(ProjectionConformance):
            @pytest.fixture
            def provider(self):
                return Counter()

            @pytest.fixture
            def events(self):
                return [Event.create(source="/t", type="t", subject="s")]
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_applying_an_event_twice_changes_nothing*"])


def test_a_suite_without_a_provider_says_what_to_override(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from catalyst_kernel.testing import SpineConformance

        class TestForgot(SpineConformance):
            pass
        """
    )
    result = pytester.runpytest()
    outcomes = result.parseoutcomes()
    assert outcomes["errors"] >= 1
    assert "passed" not in outcomes
    result.stdout.fnmatch_lines(["*TestForgot must override 'spine_factory'*"])
