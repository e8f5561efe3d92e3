"""The gitea committer passes the kernel's committer conformance suite against the stand-in."""

from __future__ import annotations

import pytest

from catalyst_kernel.testing import CommitterConformance, CommitterFactory

from .conftest import CommitterMaker


class TestGiteaCommitter(CommitterConformance):
    @pytest.fixture
    def committer_factory(self, make_committer: CommitterMaker) -> CommitterFactory:
        return make_committer
