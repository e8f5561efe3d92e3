"""The order in which the simulated reconciler makes Applications ready: ``dependsOn`` waves."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = ["reconcile_waves"]


def reconcile_waves(depends_on: Mapping[str, Collection[str]]) -> list[tuple[str, ...]]:
    """Group Applications so that each one comes after every dependency it has in the group.

    :param depends_on: each Application's ``dependsOn`` names; names outside the mapping are
        dependencies reconciled earlier (by an earlier commit) and are ignored.
    :returns: waves, each sorted by name; the first holds the Applications with no dependency
        in the group. A cycle (Flux would wait forever) ends up in one last wave, so the demo
        still finishes.
    """
    pending = {
        name: {d for d in deps if d in depends_on and d != name}
        for name, deps in depends_on.items()
    }
    waves: list[tuple[str, ...]] = []
    done: set[str] = set()
    while pending:
        wave = tuple(sorted(name for name, deps in pending.items() if deps <= done))
        if not wave:
            wave = tuple(sorted(pending))
        waves.append(wave)
        done.update(wave)
        for name in wave:
            del pending[name]
    return waves
