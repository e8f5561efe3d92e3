"""``catalyst serve --demo``: a Sovereign with an Organization, three Environments, tokens, and a
*simulated* reconciler standing in for Flux (demo only). See ``docs/demo.md``.

* :func:`bootstrap_demo` (``demo.bootstrap``): the Organization ``acme``, the Environments
  ``acme-dev``, ``acme-stg``, ``acme-prod`` and the demo users' tokens, as a :class:`DemoSetup`.
* :class:`SimulatedReconciler` (``demo.reconciler``): an event source answering every commit
  with the Flux-shaped events a successful reconcile would bring, in ``dependsOn`` order.
"""

from catalyst_kernel.demo.bootstrap import (
    DEMO_ENVIRONMENTS,
    DEMO_ORGANIZATION,
    DEMO_SOVEREIGN,
    DEMO_TOKEN_TTL,
    DEMO_USERS,
    DemoSetup,
    DemoUser,
    bootstrap_demo,
)
from catalyst_kernel.demo.reconciler import DEFAULT_DELAY, SimulatedReconciler

__all__ = [
    "DEFAULT_DELAY",
    "DEMO_ENVIRONMENTS",
    "DEMO_ORGANIZATION",
    "DEMO_SOVEREIGN",
    "DEMO_TOKEN_TTL",
    "DEMO_USERS",
    "DemoSetup",
    "DemoUser",
    "SimulatedReconciler",
    "bootstrap_demo",
]
