"""The NATS spine passes the kernel's spine conformance suite against a real nats-server."""

from __future__ import annotations

import pytest

from catalyst_kernel.testing import SpineConformance, SpineFactory

from .conftest import SpineMaker


class TestNatsSpine(SpineConformance):
    @pytest.fixture
    def spine_factory(self, make_spine: SpineMaker) -> SpineFactory:
        return make_spine
