"""Where the demo catalog is: inside an installed wheel, or in a source checkout.

The repository's ``catalog/`` (bp-wordpress, bp-postgres, bp-redis, bp-web-stack) is the one
source; the wheel carries a copy at ``catalyst_kernel/demo/demo-catalog`` (``force-include`` in the
kernel's ``pyproject.toml``), and an editable install reads the checkout's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from catalyst_kernel.errors import SettingsError

__all__ = ["demo_catalog"]

_PACKAGED: Final = Path(__file__).with_name("demo-catalog")
# src/catalyst_kernel/demo/catalog.py -> the repository root is four levels up.
_CHECKOUT: Final = Path(__file__).resolve().parents[4] / "catalog"


def demo_catalog() -> Path:
    """The demo catalog's directory.

    :raises SettingsError: neither the packaged copy nor a checkout's ``catalog/`` exists.
    """
    for candidate in (_PACKAGED, _CHECKOUT):
        if candidate.is_dir():
            return candidate
    raise SettingsError(
        "the demo catalog is missing from this installation; pass --catalog DIR instead"
    )
