"""The domain model: attrs classes validated at construction, converted by one cattrs converter."""

from catalyst_kernel.model.application import Application
from catalyst_kernel.model.blueprint import (
    Blueprint,
    BlueprintMetadata,
    BlueprintSpec,
    Card,
    Dependency,
    Manifests,
    ManifestSource,
    Owner,
    ResourceNeed,
    SourceKind,
    SourceRef,
    Visibility,
)
from catalyst_kernel.model.convert import converter, structure, unstructure
from catalyst_kernel.model.event import Event
from catalyst_kernel.model.names import EnvType
from catalyst_kernel.model.plan import (
    FileAction,
    FileChange,
    InstallPlan,
    PlanAction,
    PlannedApplication,
    WhenDecision,
)
from catalyst_kernel.model.policy import EnvironmentPolicy, PolicyRule
from catalyst_kernel.model.principal import Principal, Role
from catalyst_kernel.model.tenancy import Environment, KeycloakTopology, Organization, Sovereign

__all__ = [
    "Application",
    "Blueprint",
    "BlueprintMetadata",
    "BlueprintSpec",
    "Card",
    "Dependency",
    "EnvType",
    "Environment",
    "EnvironmentPolicy",
    "Event",
    "FileAction",
    "FileChange",
    "InstallPlan",
    "KeycloakTopology",
    "ManifestSource",
    "Manifests",
    "Organization",
    "Owner",
    "PlanAction",
    "PlannedApplication",
    "PolicyRule",
    "Principal",
    "ResourceNeed",
    "Role",
    "SourceKind",
    "SourceRef",
    "Sovereign",
    "Visibility",
    "WhenDecision",
    "converter",
    "structure",
    "unstructure",
]
