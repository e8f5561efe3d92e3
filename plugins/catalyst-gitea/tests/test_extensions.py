"""The plugin's additive registrations pass the kernel's suites: the webhook receiver as an API
extension, the bypass flags as a projection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from catalyst_gitea.bypass import BypassProjection, bypass_event
from catalyst_gitea.settings import GiteaSettings
from catalyst_gitea.webhooks import WEBHOOK_PATH, GiteaWebhooks
from catalyst_kernel.model.event import Event
from catalyst_kernel.testing import ApiExtensionConformance, ProjectionConformance


class TestGiteaWebhooks(ApiExtensionConformance):
    @pytest.fixture
    def provider(self) -> GiteaWebhooks:
        return GiteaWebhooks(GiteaSettings(webhook_secret="s" * 16))

    def test_the_route_lives_under_v1(self, provider: GiteaWebhooks) -> None:
        (handler,) = provider.route_handlers()
        assert handler.paths == {WEBHOOK_PATH}


class TestBypassProjection(ProjectionConformance):
    @pytest.fixture
    def provider(self) -> BypassProjection:
        return BypassProjection()

    @pytest.fixture
    def events(self) -> Sequence[Event]:
        return [
            bypass_event(
                "/sovereigns/test/gitea-webhook",
                ref="refs/heads/main",
                before="a" * 40,
                after="b" * 40,
                pusher="dana",
                commits=["b" * 40],
                applications=["web", "api"],
                protected_by=["policy"],
                time=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            )
        ]
