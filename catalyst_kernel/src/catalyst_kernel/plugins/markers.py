"""The pluggy markers of the ``catalyst`` project."""

from __future__ import annotations

from typing import Final

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT: Final = "catalyst"

hookspec: Final = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification in :mod:`catalyst_kernel.plugins.hookspecs`."""

hookimpl: Final = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's hook implementation: ``@hookimpl def catalyst_spine(ctx): ...``."""
