"""Public testing API: conformance suites, shape checks, in-memory doubles and pytest fixtures.

Every provider in this repository runs its slot's suite, and a third-party plugin proves itself
with a few lines (see ``docs/plugin-author-guide.md``).
"""

from catalyst_kernel.testing.doubles import MemoryProjectionView, RecordingPublisher
from catalyst_kernel.testing.shape import assert_implements, interface_members
from catalyst_kernel.testing.suites import (
    PLANTED_SECRET,
    ApiExtensionConformance,
    CommitterConformance,
    CommitterFactory,
    EventSourceConformance,
    IdentityConformance,
    IdentityFactory,
    KeyRotation,
    LifecycleConformance,
    ManifestComposerConformance,
    ProjectionConformance,
    RuleKindConformance,
    SecretsConformance,
    SecretsFactory,
    SlotConformance,
    SpineConformance,
    SpineFactory,
    TokenMinter,
)

__all__ = [
    "PLANTED_SECRET",
    "ApiExtensionConformance",
    "CommitterConformance",
    "CommitterFactory",
    "EventSourceConformance",
    "IdentityConformance",
    "IdentityFactory",
    "KeyRotation",
    "LifecycleConformance",
    "ManifestComposerConformance",
    "MemoryProjectionView",
    "ProjectionConformance",
    "RecordingPublisher",
    "RuleKindConformance",
    "SecretsConformance",
    "SecretsFactory",
    "SlotConformance",
    "SpineConformance",
    "SpineFactory",
    "TokenMinter",
    "assert_implements",
    "interface_members",
]
