"""What the simulated reconciler reads from an Environment repository at a commit: each
Application's Flux ``Kustomization`` (for ``dependsOn``) and its ``HelmRelease``, if any.

Files that are missing or malformed are not errors here: Flux would report them, the demo only
logs them and carries on with what it could read (no dependencies, no HelmRelease).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen

from catalyst_kernel.blueprints.yamlsafe import safe_load
from catalyst_kernel.demo.notifications import HelmChart
from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.provisioning.composers.flux import FLUX_NAMESPACE, flux_kustomization_path

if TYPE_CHECKING:
    from catalyst_kernel.provisioning.committer import Committer

__all__ = ["HELM_RELEASE_FILE", "Target", "read_target"]

log = logging.getLogger(__name__)

HELM_RELEASE_FILE: Final = "helmrelease.yaml"
"""Where ``HelmChartComposer`` puts an Application's HelmRelease: ``applications/<app>/…``."""


@frozen
class Target:
    """One Application as the repository describes it at one commit.

    :ivar kustomization: its Flux Kustomization file exists at that commit.
    :ivar depends_on: the Kustomization's ``spec.dependsOn`` names (in ``flux-system``).
    :ivar helm_release: its HelmRelease, if it has one.
    """

    name: str
    kustomization: bool
    depends_on: tuple[str, ...] = ()
    helm_release: HelmChart | None = None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _depends_on(document: Any) -> tuple[str, ...]:
    entries = _mapping(document).get("spec", {})
    entries = _mapping(entries).get("dependsOn")
    names = []
    for entry in entries if isinstance(entries, list) else ():
        name = _text(_mapping(entry).get("name"))
        namespace = _mapping(entry).get("namespace") or FLUX_NAMESPACE
        if name is not None and namespace == FLUX_NAMESPACE:
            names.append(name)
    return tuple(sorted(set(names)))


def _helm_chart(document: Any, application: str) -> HelmChart | None:
    metadata = _mapping(_mapping(document).get("metadata"))
    chart = _mapping(_mapping(_mapping(_mapping(document).get("spec")).get("chart")).get("spec"))
    name = _text(metadata.get("name"))
    chart_name, version = _text(chart.get("chart")), _text(chart.get("version"))
    if _mapping(document).get("kind") != "HelmRelease" or not (name and chart_name and version):
        return None
    return HelmChart(
        name=name,
        namespace=_text(metadata.get("namespace")) or application,
        chart=chart_name,
        version=version,
    )


async def _document(
    committer: Committer, environment: str, path: str, ref: str
) -> tuple[bool, Any]:
    """Whether ``path`` exists at ``ref``, and its YAML (``None`` when malformed)."""
    content = await committer.read_file(environment, path, ref)
    if content is None:
        return False, None
    try:
        return True, safe_load(content, source=f"{environment}@{ref[:12]}:{path}")
    except InvalidInput as exc:
        log.warning("demo: simulated reconciler: %s", exc)
        return True, None


async def read_target(committer: Committer, environment: str, application: str, ref: str) -> Target:
    """The Application ``application`` in ``environment``'s repository at commit ``ref``
    (two file reads: bound them with the caller's own deadline)."""
    exists, kustomization = await _document(
        committer, environment, flux_kustomization_path(application), ref
    )
    _, release = await _document(
        committer, environment, f"applications/{application}/{HELM_RELEASE_FILE}", ref
    )
    return Target(
        name=application,
        kustomization=exists,
        depends_on=_depends_on(kustomization),
        helm_release=None if release is None else _helm_chart(release, application),
    )
