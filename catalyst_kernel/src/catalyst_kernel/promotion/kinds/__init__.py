"""The built-in EnvironmentPolicy rule kinds (SPEC §5.4), registered by the ``core`` plugin.

Each is a small class implementing :class:`~catalyst_kernel.promotion.rules.RuleKind`, exactly
as a third-party kind would; :mod:`catalyst_kernel.promotion.kinds.params` holds the parameter
reader they share (and plugin authors may use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalyst_kernel.promotion.kinds.change_window import ChangeWindow
from catalyst_kernel.promotion.kinds.freeze import Freeze
from catalyst_kernel.promotion.kinds.pr_required import PrRequired
from catalyst_kernel.promotion.kinds.soak import Soak

if TYPE_CHECKING:
    from catalyst_kernel.promotion.rules import RuleKind

__all__ = ["ChangeWindow", "Freeze", "PrRequired", "Soak", "builtin_rule_kinds"]


def builtin_rule_kinds() -> list[RuleKind]:
    """``pr-required``, ``soak``, ``change-window`` and ``freeze``."""
    return [PrRequired(), Soak(), ChangeWindow(), Freeze()]
