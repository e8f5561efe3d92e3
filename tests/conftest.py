"""Fixtures of the journeys (the shared steps are in ``journeys.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.journeys import journey_settings

from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, running_service


@pytest.fixture
async def journey_service(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[ApiService]:
    """The journeys' service over real HTTP, with the built-in plugins (the embedded committer)
    and the projector."""
    settings = journey_settings(catalyst_settings, tmp_path)
    async with running_service(settings, projector=True, client_timeout=30) as service:
        yield service
