"""Catalyst: a GitOps control plane — the kernel.

Public entry points: :mod:`catalyst_kernel.plugins` (hooks and the manager),
:mod:`catalyst_kernel.model` (the domain model), :mod:`catalyst_kernel.settings`,
:mod:`catalyst_kernel.errors` and :mod:`catalyst_kernel.testing` (conformance suites).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("catalyst-kernel")
except PackageNotFoundError:  # pragma: no cover - running from an unpacked source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
