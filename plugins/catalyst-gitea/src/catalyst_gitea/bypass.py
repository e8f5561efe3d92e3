"""Pushes that bypassed Catalyst: the event that flags one, and its projection.

A push to an Environment's ``main`` that neither Catalyst's Gitea user made nor Gitea made by
merging a change request, while ``main`` is protected (Gitea protects it, or the policy before the
push asked for it), went around the policy: someone with the rights to lift the protection, or an
allow-list that names more than Catalyst. The webhook receiver publishes one
``io.catalyst.gitea.push.bypassed`` event per such push, besides the commits' ``git`` events.

The projection ``gitea-bypassed-pushes`` keeps it in the read model and the timeline:

* ``gitea-bypass/<sha>``: the push (``ref``, ``before``, ``after``, ``pusher``, ``commits``,
  ``applications``, ``protectedBy``, ``time``);
* ``timeline/<application>/…``: a ``bypass`` entry for each Application whose folder it changed
  (the same key scheme as the kernel's timeline, so ``GET …/history`` shows it in order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from catalyst_kernel.model.event import Event
from catalyst_kernel.readside.projections.objects import iso, kv_key
from catalyst_kernel.readside.projections.timeline import write_entries
from catalyst_kernel.readside.subjects import escape

if TYPE_CHECKING:
    from datetime import datetime

    from catalyst_kernel.readside.projection import ProjectionView

__all__ = ["BYPASS_EVENT", "BYPASS_KIND", "BypassProjection", "bypass_event"]

BYPASS_EVENT: Final = "io.catalyst.gitea.push.bypassed"
BYPASS_KIND: Final = "gitea-bypass"
"""The KV kind of the flags (``gitea-bypass/<sha>``) and the timeline entry kind (``bypass``)."""


def bypass_event(
    source: str,
    *,
    ref: str,
    before: str,
    after: str,
    pusher: str,
    commits: Sequence[str],
    applications: Sequence[str],
    protected_by: Sequence[str],
    time: datetime,
) -> Event:
    """The event flagging one push that bypassed Catalyst (its id derives from the push)."""
    return Event(
        id=f"gitea-bypass-{after}",
        source=source,
        type=BYPASS_EVENT,
        subject=f"catalyst.gitea.bypass.{escape(after)}",
        time=time,
        data={
            "ref": ref,
            "before": before,
            "after": after,
            "pusher": pusher,
            "commits": list(commits),
            "applications": sorted(set(applications)),
            "protectedBy": sorted(set(protected_by)),
        },
    )


class BypassProjection:
    """``gitea-bypass/<sha>`` and ``bypass`` timeline entries (see the module docstring)."""

    name = "gitea-bypassed-pushes"

    def handles(self, event: Event) -> bool:
        """Bypass flags."""
        return event.type == BYPASS_EVENT

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Record the flag and the affected Applications' timeline entries."""
        data = event.data
        if not isinstance(data, Mapping) or not isinstance(data.get("after"), str):
            return
        record: dict[str, Any] = {**data, "time": iso(event.time)}
        key = kv_key(BYPASS_KIND, data["after"])
        if await view.get(key) != record:
            await view.put(key, record)
        detail = {
            "after": data["after"],
            "before": data.get("before"),
            "pusher": data.get("pusher"),
            "ref": data.get("ref"),
            "commits": data.get("commits") or [],
            "protectedBy": data.get("protectedBy") or [],
        }
        applications = [a for a in data.get("applications") or () if isinstance(a, str) and a]
        await write_entries(
            view, event, [(app, {"kind": "bypass", "detail": detail}) for app in applications]
        )
