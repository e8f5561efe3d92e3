"""The promotion journey over real HTTP (issue 6's acceptance), with the embedded committer.

The journey itself (install in acme-dev, promote to acme-stg, promote to acme-prod under
pr-required + soak + change-window, merge once every condition holds, prod then holds stg's
Application directory) is :func:`journeys.promotion_journey`, which ``test_journey_gitea.py`` walks
with the gitea committer.
"""

from __future__ import annotations

import pytest
from tests.journeys import CommitterChecks, promotion_journey

from catalyst_kernel.testing.service import ApiService

pytestmark = pytest.mark.anyio


async def test_the_promotion_journey(journey_service: ApiService) -> None:
    await promotion_journey(journey_service, CommitterChecks())
