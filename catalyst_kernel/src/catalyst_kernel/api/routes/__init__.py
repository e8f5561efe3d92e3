"""The kernel's own API routes, one module per resource.

Every module in this package exposes ``ROUTES``: the Litestar route handlers (or controllers) it
contributes. :func:`kernel_routes` collects them in module-name order, so adding a resource is
adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from catalyst_kernel.api.openapi import document_problems

__all__ = ["kernel_routes"]


def kernel_routes() -> list[Any]:
    """Every kernel route handler, by module name."""
    handlers: list[Any] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        handlers.extend(getattr(module, "ROUTES", ()))
    document_problems(handlers)
    return handlers
