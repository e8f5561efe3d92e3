"""Structural checks that an object implements a slot interface the way the kernel calls it."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

__all__ = ["assert_implements", "interface_members"]

_SKIP_BASES = (object, Protocol)


def interface_members(interface: type) -> dict[str, Any]:
    """Every public member a Protocol declares (methods and data attributes), through its bases."""
    members: dict[str, Any] = {}
    for base in reversed(interface.__mro__):
        if base in _SKIP_BASES or not getattr(base, "_is_protocol", False):
            continue
        for name in getattr(base, "__annotations__", {}):
            if not name.startswith("_"):
                members[name] = None
        for name, value in vars(base).items():
            if not name.startswith("_") and callable(value):
                members[name] = value
    return members


def assert_implements(obj: object, interface: type) -> None:
    """Fail with every mismatch between ``obj`` and ``interface``.

    A method declared ``async def`` must be a coroutine function; a plain ``def`` must not be one
    (an async generator function may stand for a ``def`` returning an async iterator).
    """
    problems: list[str] = []
    for name, declared in sorted(interface_members(interface).items()):
        if not hasattr(obj, name):
            problems.append(f"missing {name!r}")
            continue
        if declared is None:
            continue
        actual = getattr(obj, name)
        if not callable(actual):
            problems.append(f"{name!r} is not callable")
        elif inspect.iscoroutinefunction(declared) and not inspect.iscoroutinefunction(actual):
            problems.append(f"{name!r} must be 'async def'")
        elif not inspect.iscoroutinefunction(declared) and inspect.iscoroutinefunction(actual):
            problems.append(f"{name!r} must not be 'async def' (the kernel calls it synchronously)")
    if problems:
        raise AssertionError(
            f"{type(obj).__qualname__} does not implement {interface.__name__}: "
            + "; ".join(problems)
        )
