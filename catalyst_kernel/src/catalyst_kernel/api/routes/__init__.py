"""The kernel's own API routes, one module per resource.

Every module in this package exposes ``ROUTES``, the Litestar route handlers (or controllers) it
contributes, or ``routes(settings)`` returning them when they depend on the settings.
:func:`kernel_routes` collects them in module-name order, so adding a resource is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any

from catalyst_kernel.api.openapi import document_problems

if TYPE_CHECKING:
    from catalyst_kernel.settings import Settings

__all__ = ["kernel_routes"]


def kernel_routes(settings: Settings) -> list[Any]:
    """Every kernel route handler, by module name."""
    handlers: list[Any] = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        if hasattr(module, "routes"):
            handlers.extend(module.routes(settings))
        else:
            handlers.extend(getattr(module, "ROUTES", ()))
    document_problems(handlers)
    return handlers
