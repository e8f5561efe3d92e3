"""``OPTIONS`` answers with every method of the path in ``Allow``.

Litestar builds the automatic ``OPTIONS`` handler of a path with the first route handler
registered there, so a path whose ``GET`` and ``POST`` are separate handlers would answer
``Allow: GET, OPTIONS``. :func:`complete_allow_header` (a ``before_send`` hook) lists the methods
of every handler of the path instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.datastructures import MutableScopeHeaders

if TYPE_CHECKING:
    from litestar.types import Message, Scope

__all__ = ["complete_allow_header"]


def complete_allow_header(message: Message, scope: Scope) -> None:
    """Rewrite ``Allow`` on the automatic ``OPTIONS`` answer to list every method of the path."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    handler: Any = scope.get("route_handler")
    app: Any = scope.get("app")
    if handler is None or app is None or not getattr(handler, "paths", None):
        return
    methods: set[str] = set()
    for path in handler.paths:
        methods.update(app.route_handler_method_map.get(path, {}))
    if not methods:
        return
    headers = MutableScopeHeaders.from_message(message)
    if "allow" in headers:
        headers["Allow"] = ", ".join(sorted(methods | {"OPTIONS"}))
