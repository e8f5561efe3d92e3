"""Rendering manifests as YAML: deterministic, block style, one document per file unless asked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

__all__ = ["deep_merge", "label_value", "render", "render_all"]

_LABEL_VALUE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


# libyaml's emitter when PyYAML was built with it: the pure-Python one dominates an install.
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """Safe dumper that never emits anchors/aliases (shared objects are written out in full)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(document: Mapping[str, Any]) -> str:
    """One manifest as YAML, keys in the order given (Kubernetes order: apiVersion, kind …)."""
    return yaml.dump(
        dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )


def render_all(documents: Sequence[Mapping[str, Any]]) -> str:
    """Several manifests in one multi-document YAML file."""
    return "---\n".join(render(document) for document in documents)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge recursively, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def label_value(value: str) -> str:
    """``value`` made a valid Kubernetes label value (SemVer's ``+`` becomes ``_``; ≤ 63)."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "_", value)[:63].strip("-_.")
    return cleaned if _LABEL_VALUE.fullmatch(cleaned) else ""
