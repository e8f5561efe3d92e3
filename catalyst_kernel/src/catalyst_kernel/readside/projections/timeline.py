"""The Application timeline: one audit trail of commits, approvals, reconciles and health changes.

The timeline is one KV entry per fact, appended at ``timeline/<application>/<time>-<hash>``,
where ``<time>`` is the event's UTC time as ``YYYYMMDDTHHMMSSffffffZ`` (so keys sort by time) and
``<hash>`` is a short hash of the event id and the entry kind: the same event always writes the
same key, so applying it again changes nothing, and one event can write several kinds of entry for
one Application (a commit and the health change it causes).

=============  ==============================================================================
kind           written for
=============  ==============================================================================
``commit``     each Application listed in an ``io.catalyst.git.commit`` (sha, action, actor …)
``approval``   each Application listed in an ``io.catalyst.change.approved``
``reconcile``  a Flux Kustomization or HelmRelease of an existing Application reaching a new
               definite ``Ready`` state (``True``/``False``, reason, revision); the ``Unknown``
               Flux shows while it works is not a transition
``health``     the Application's status changed (status ``null``: it no longer exists)
=============  ==============================================================================

Who writes what: ``commit`` and ``approval`` entries say only what their event says, and
:class:`ApplicationTimelineProjection` writes them. ``reconcile`` and ``health`` entries follow
from how an event changed an Application's record, which the ``application-status`` projection
works out anyway; it writes them itself (:func:`write_transition_entries`, from the same
:class:`~catalyst_kernel.readside.projections.status.Transition` values), so the status is derived
once per event, not once per projection. The two projections write disjoint keys (the kind is part
of the hash) and neither reads a key the other writes, so the order they run in does not matter.

**Retention**: entries are never deleted, not even when the Application is uninstalled. The
``soak`` rule needs an Application's health history over its whole soak window, and auditors need
the trail to outlive the Application.

:class:`KvTimelineReader` reads the entries back as
:class:`~catalyst_kernel.promotion.rules.TimelineEntry` values, oldest first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from catalyst_kernel.promotion.rules import TimelineEntry
from catalyst_kernel.readside.projections.objects import CHANGE_PREFIX, COMMIT, iso, kv_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from catalyst_kernel.model.event import Event
    from catalyst_kernel.readside.projection import ProjectionView
    from catalyst_kernel.readside.projections.status import Transition
    from catalyst_kernel.readside.spine import KeyValue

__all__ = [
    "ENTRY_KINDS",
    "ApplicationTimelineProjection",
    "KvTimelineReader",
    "entry_key",
    "fact_entries",
    "transition_entries",
    "write_entries",
    "write_transition_entries",
]

_log = logging.getLogger(__name__)

ENTRY_KINDS: Final = ("commit", "approval", "reconcile", "health")
"""Entry kinds, in the order entries of one instant are read back (a cause before its effect)."""

_APPROVED: Final = CHANGE_PREFIX + "approved"
_HASH_LENGTH: Final = 12


def entry_key(application: str, time: datetime, event_id: str, kind: str) -> str:
    """The KV key of the ``kind`` entry that the event ``event_id`` (at ``time``) writes."""
    stamp = time.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    digest = hashlib.sha256(f"{event_id}\n{kind}".encode()).hexdigest()[:_HASH_LENGTH]
    return kv_key("timeline", application, f"{stamp}-{digest}")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flux(record: Mapping[str, Any] | None, slot: str) -> Mapping[str, Any]:
    return _mapping(_mapping(_mapping(record).get("inputs")).get(slot))


async def write_entries(
    view: ProjectionView, event: Event, entries: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """Write ``event``'s timeline ``entries`` (application, entry), skipping unchanged ones."""
    for application, entry in entries:
        key = entry_key(application, event.time, event.id, entry["kind"])
        value = {
            "time": iso(event.time),
            "application": application,
            "event": event.id,
            "version": None,
            "status": None,
            **entry,
        }
        if await view.get(key) != value:
            await view.put(key, value)


def transition_entries(transitions: Sequence[Transition]) -> list[tuple[str, dict[str, Any]]]:
    """Entries derived from how an event changed each Application: reconciles and health."""
    entries: list[tuple[str, dict[str, Any]]] = []
    for change in transitions:
        after = _mapping(change.after)
        exists = change.status_after is not None
        for slot in ("kustomization", "helmRelease"):
            settled = _flux(change.after, slot).get("settled")
            if exists and settled and settled != _flux(change.before, slot).get("settled"):
                flux = _flux(change.after, slot)
                entries.append(
                    (
                        change.application,
                        {
                            "kind": "reconcile",
                            "version": after.get("version"),
                            "detail": {
                                "object": flux.get("kind"),
                                **settled,
                                "message": flux.get("message"),
                            },
                        },
                    )
                )
        if change.status_before != change.status_after:
            before = _mapping(change.before)
            entries.append(
                (
                    change.application,
                    {
                        "kind": "health",
                        "version": after.get("version") or before.get("version"),
                        "status": change.status_after,
                        "detail": {
                            "previous": change.status_before,
                            "reason": after.get("reason") if exists else "uninstalled",
                        },
                    },
                )
            )
    return entries


async def write_transition_entries(
    view: ProjectionView, event: Event, transitions: Sequence[Transition]
) -> None:
    """Write the ``reconcile`` and ``health`` entries ``transitions`` (caused by ``event``) imply.

    Called by the ``application-status`` projection, which computes the transitions anyway.
    """
    if transitions:
        await write_entries(view, event, transition_entries(transitions))


def fact_entries(event: Event) -> list[tuple[str, dict[str, Any]]]:
    """Entries the event states directly: commits and approvals."""
    data = _mapping(event.data)
    applications = data.get("applications")
    if not isinstance(applications, list):
        return []
    facts: list[tuple[str, dict[str, Any]]] = []
    if event.type == COMMIT:
        for item in applications:
            entry = _mapping(item)
            if isinstance(entry.get("name"), str) and entry["name"]:
                detail = {field: data.get(field) for field in ("sha", "actor", "message")}
                detail.update({"action": entry.get("action"), "blueprint": entry.get("blueprint")})
                facts.append(
                    (
                        entry["name"],
                        {"kind": "commit", "version": entry.get("version"), "detail": detail},
                    )
                )
    elif event.type == _APPROVED:
        detail = {
            "change": data.get("id"),
            "approver": data.get("approver"),
            "revision": data.get("revision"),
            "groups": sorted(g for g in data.get("groups") or () if isinstance(g, str)),
        }
        if isinstance(data.get("reason"), str):
            # A break-glass approval (freeze): why, and until when.
            detail["breakGlass"] = {"reason": data["reason"], "expires": data.get("expires")}
        facts.extend(
            (name, {"kind": "approval", "detail": detail})
            for name in sorted({a for a in applications if isinstance(a, str) and a})
        )
    return facts


class ApplicationTimelineProjection:
    """``timeline/<application>/<time>-<hash>``: the Application's audit trail (append-only).

    This projection writes the ``commit`` and ``approval`` entries; the ``application-status``
    projection writes the ``reconcile`` and ``health`` entries (see the module docstring).
    """

    name = "application-timeline"

    def handles(self, event: Event) -> bool:
        """Commits and change approvals."""
        return event.type in (COMMIT, _APPROVED)

    async def apply(self, event: Event, view: ProjectionView) -> None:
        """Append the entries ``event`` states."""
        await write_entries(view, event, fact_entries(event))


class KvTimelineReader:
    """A :class:`~catalyst_kernel.promotion.rules.TimelineReader` over the spine's KV buckets.

    :param key_value: returns an Environment's bucket, e.g. ``spine.key_value``.
    """

    def __init__(self, key_value: Callable[[str], Awaitable[KeyValue]]) -> None:
        self._key_value = key_value

    async def application_timeline(
        self, environment: str, application: str
    ) -> Sequence[TimelineEntry]:
        """The Application's timeline in ``environment``, oldest first."""
        bucket = await self._key_value(environment)
        # The trailing "/" keeps "web" from matching "web-api"'s entries.
        _, stored = await bucket.snapshot(kv_key("timeline", application) + "/")
        rank = {kind: index for index, kind in enumerate(ENTRY_KINDS)}
        ordered: list[tuple[datetime, int, str, TimelineEntry]] = []
        for item in stored:
            try:
                value = json.loads(item.value or b"null")
                entry = TimelineEntry(
                    time=datetime.fromisoformat(value["time"]),
                    kind=value["kind"],
                    application=value["application"],
                    version=value.get("version"),
                    status=value.get("status"),
                    detail=value.get("detail") or {},
                )
            except (ValueError, KeyError, TypeError) as exc:
                _log.warning("timeline entry %s is unreadable, skipped: %s", item.key, exc)
                continue
            ordered.append((entry.time, rank.get(entry.kind, len(rank)), item.key, entry))
        ordered.sort(key=lambda row: row[:3])
        return [row[3] for row in ordered]
