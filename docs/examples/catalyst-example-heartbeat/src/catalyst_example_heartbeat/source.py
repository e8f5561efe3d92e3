"""The event source: one heartbeat event per Environment per interval."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import anyio

from catalyst_kernel.model.event import Event

if TYPE_CHECKING:
    from catalyst_example_heartbeat.settings import HeartbeatSettings
    from catalyst_kernel.readside.sources import EventPublisher

EVENT_TYPE = "io.catalyst.example.heartbeat"


class HeartbeatSource:
    """Publishes ``io.catalyst.example.heartbeat`` on ``ws.<env>.catalyst.heartbeat``."""

    name = "heartbeat"

    def __init__(self, settings: HeartbeatSettings, sovereign: str) -> None:
        self._settings = settings
        self._source = f"/sovereigns/{sovereign}/plugins/heartbeat"

    async def run(self, publisher: EventPublisher) -> None:
        for beat in itertools.count(1):
            for environment in self._settings.environments:
                event = Event.create(
                    source=self._source,
                    type=EVENT_TYPE,
                    subject="catalyst.heartbeat",
                    data={"beat": beat},
                )
                await publisher.publish(environment, event)
            await anyio.sleep(self._settings.interval_seconds)
