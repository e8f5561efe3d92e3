"""Event: a CloudEvents 1.0 envelope, the unit of the spine (SPEC §6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final

import attrs
from attrs import field, frozen

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.validators import constant, non_empty

__all__ = ["CLOUDEVENTS_SPEC_VERSION", "Event"]

CLOUDEVENTS_SPEC_VERSION: Final = "1.0"


def _aware(_instance: Any, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(
            f"{attribute.name} must be a timezone-aware datetime", field=attribute.name
        )


@frozen
class Event:
    """A CloudEvents 1.0 event in structured JSON mode.

    ``id`` is unique per ``source``; publishing the same ``id`` twice is deduplicated by the spine.
    ``subject`` is the spine subject below ``ws.<env>`` (for example ``k8s.Deployment.web.api``).
    """

    id: str = field(validator=non_empty)
    source: str = field(validator=non_empty)
    type: str = field(validator=non_empty)
    time: datetime = field(validator=_aware)
    subject: str | None = None
    data: Any = None
    datacontenttype: str = "application/json"
    specversion: str = field(
        default=CLOUDEVENTS_SPEC_VERSION, validator=constant(CLOUDEVENTS_SPEC_VERSION)
    )

    @classmethod
    def create(
        cls,
        *,
        source: str,
        type: str,
        subject: str | None = None,
        data: Any = None,
        id: str | None = None,
        time: datetime | None = None,
    ) -> Event:
        """Build an event with a fresh UUID and the current UTC time unless given."""
        return cls(
            id=id or str(uuid.uuid4()),
            source=source,
            type=type,
            subject=subject,
            data=data,
            time=time or datetime.now(UTC),
        )
