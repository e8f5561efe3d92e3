"""The plugin's source is ``mypy --strict`` clean (the repository's quality test checks the
kernel only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]


def test_mypy_strict_passes_on_the_plugin() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mypy")), "--strict", str(PLUGIN / "src")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
