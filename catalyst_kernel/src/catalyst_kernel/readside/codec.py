"""CloudEvents 1.0 structured JSON, through the CloudEvents SDK.

Every event on the spine is stored and transmitted as the bytes :func:`encode` returns; anything
:func:`decode` accepts is a valid CloudEvents 1.0 event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.event import CLOUDEVENTS_SPEC_VERSION, Event

__all__ = ["CONTENT_TYPE", "decode", "decode_stored", "encode"]

CONTENT_TYPE: Final = JSONFormat.CONTENT_TYPE
_FORMAT: Final = JSONFormat()
_ATTRIBUTES: Final = ("id", "source", "type", "subject", "time", "datacontenttype")


def encode(event: Event) -> bytes:
    """The event in CloudEvents structured JSON mode."""
    attributes: dict[str, Any] = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time,
        "datacontenttype": event.datacontenttype,
    }
    if event.subject is not None:
        attributes["subject"] = event.subject
    try:
        return _FORMAT.write(CloudEvent(attributes, event.data))
    except (BaseCloudEventException, TypeError, ValueError) as exc:
        raise InvalidInput(f"event {event.id!r} cannot be encoded: {exc}") from None


def decode(body: bytes | str) -> Event:
    """Parse CloudEvents structured JSON; anything else is :class:`InvalidInput`."""
    try:
        parsed = _FORMAT.read(None, body)
    except (BaseCloudEventException, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"not a CloudEvents 1.0 JSON event: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise InvalidInput(f"not a CloudEvents 1.0 JSON event: {exc}") from None
    attributes = parsed.get_attributes()
    if attributes.get("specversion") != CLOUDEVENTS_SPEC_VERSION:
        raise InvalidInput(f"only CloudEvents {CLOUDEVENTS_SPEC_VERSION} is accepted")
    time = attributes.get("time")
    if time is None:
        raise InvalidInput("Catalyst events need a 'time' attribute")
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    fields = {name: attributes[name] for name in _ATTRIBUTES if name in attributes}
    fields["time"] = time
    return Event(data=parsed.get_data(), **fields)


def decode_stored(body: bytes) -> Event:
    """Decode an event the spine stored after :func:`encode` validated it.

    The full SDK parse costs more than the rest of projecting an event; bytes the spine wrote
    itself need only JSON parsing. Anything from outside goes through :func:`decode`.
    """
    try:
        attributes = json.loads(body)
        time = datetime.fromisoformat(attributes["time"])
        return Event(
            id=attributes["id"],
            source=attributes["source"],
            type=attributes["type"],
            time=time if time.tzinfo else time.replace(tzinfo=UTC),
            subject=attributes.get("subject"),
            data=attributes.get("data"),
            datacontenttype=attributes.get("datacontenttype", "application/json"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"stored event is not valid CloudEvents JSON: {exc}") from None
