"""The kernel's manifest composers (registered by the ``core`` built-in plugin).

Each composer contributes the files it understands for one Application; the kernel then writes
the Application's ``kustomization.yaml`` listing them (see ``provisioning.composition``).
"""

from catalyst_kernel.provisioning.composer import ManifestComposer
from catalyst_kernel.provisioning.composers.application import (
    HelmChartComposer,
    KustomizeComposer,
    NamespaceComposer,
    ValuesComposer,
)
from catalyst_kernel.provisioning.composers.crossplane import ClaimsComposer
from catalyst_kernel.provisioning.composers.flux import FluxKustomizationComposer
from catalyst_kernel.provisioning.composers.labels import context_labels
from catalyst_kernel.provisioning.composers.secrets import ExternalSecretComposer

__all__ = [
    "ClaimsComposer",
    "ExternalSecretComposer",
    "FluxKustomizationComposer",
    "HelmChartComposer",
    "KustomizeComposer",
    "NamespaceComposer",
    "ValuesComposer",
    "builtin_composers",
    "context_labels",
]


def builtin_composers() -> list[ManifestComposer]:
    return [
        ClaimsComposer(),
        ExternalSecretComposer(),
        FluxKustomizationComposer(),
        HelmChartComposer(),
        KustomizeComposer(),
        NamespaceComposer(),
        ValuesComposer(),
    ]
