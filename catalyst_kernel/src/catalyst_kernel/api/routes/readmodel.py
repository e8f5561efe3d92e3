"""An Environment's read model over HTTP: the state snapshot and its SSE change stream (SPEC §6).

``GET /v1/environments/{env}/state``
    ``{"revision", "items": [{"key", "value", "revision"}]}``: the Environment's KV bucket at one
    revision, sorted by key, values decoded from JSON.
``GET /v1/environments/{env}/events``
    ``text/event-stream`` of the bucket's changes after the ``Last-Event-ID`` header (or the
    ``lastEventId`` query parameter), as :func:`~catalyst_kernel.readside.fanout.format_sse`
    writes them, with keep-alives.

Both answer in the same order: the name is checked (422 ``invalid-name``), the caller is
authenticated (401) and authorized (403) for the Environment, and only then is the Environment
looked up (404), so a caller of another Organization cannot tell which Environments exist.

The keys under :data:`INTERNAL_PREFIXES` are the projector's bookkeeping; neither route shows
them, so a client that rebuilds the state from the stream gets exactly ``/state``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from litestar import MediaType, Response, get
from litestar.di import NamedDependency  # noqa: TC002 (Litestar reads annotations)
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK

from catalyst_kernel.api.auth import AUTHENTICATED
from catalyst_kernel.api.lookup import (
    EnvironmentPath,
    authorized_environment,
    environment_name,
)
from catalyst_kernel.api.runtime import Runtime  # noqa: TC001 (Litestar reads annotations)
from catalyst_kernel.errors import (
    CatalystError,
    InvalidInput,
)
from catalyst_kernel.identity.permissions import Operation
from catalyst_kernel.model.principal import Principal  # noqa: TC001 (Litestar reads annotations)
from catalyst_kernel.readside.fanout import EndReason, Subscription, format_sse, sse_comment

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from catalyst_kernel.readside.spine import KvEntry

__all__ = [
    "INTERNAL_PREFIXES",
    "ROUTES",
    "StateItem",
    "StateSnapshot",
    "environment_events",
    "environment_state",
    "parse_last_event_id",
]

logger = logging.getLogger(__name__)

INTERNAL_PREFIXES: Final = ("projector/", "application-index/")
"""Keys no client sees: the projector's cursor and the status projection's private inputs."""

_ENVIRONMENT_PATH: Final = "/v1/environments/{env:str}"
_REVISION: Final = re.compile(r"[0-9]{1,19}")
_MAX_REVISION: Final = 2**63 - 1
_TAGS: Final = ["read model"]


class StateItem(msgspec.Struct, frozen=True):
    """One live key of the read model: its JSON value and the revision that wrote it."""

    key: str
    value: Any
    revision: int


class StateSnapshot(msgspec.Struct, frozen=True):
    """An Environment's read model at ``revision``; resume its event stream from there."""

    revision: int
    items: list[StateItem]


def _visible(entry: KvEntry) -> bool:
    return not entry.key.startswith(INTERNAL_PREFIXES)


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """The revision to resume after: the ``Last-Event-ID`` header, else ``lastEventId``.

    The header wins: a browser's ``EventSource`` sends it on every reconnection, with the last id
    it received, while the query parameter keeps the value the stream was first opened with.
    An empty header means "no id" (as the SSE specification resets it).

    :raises InvalidInput: the value is not a decimal revision.
    """
    for field, value in (("Last-Event-ID", header), ("lastEventId", query)):
        if value is None or (field == "Last-Event-ID" and not value.strip()):
            continue
        text = value.strip()
        if not _REVISION.fullmatch(text) or int(text) > _MAX_REVISION:
            raise InvalidInput(
                f"{field} must be a KV revision (a non-negative integer) as sent in an event's "
                f"id, got {value[:40]!r}",
                field=field,
            )
        return int(text)
    return None


@get(
    f"{_ENVIRONMENT_PATH}/state",
    dependencies=AUTHENTICATED,
    media_type=MediaType.JSON,
    tags=_TAGS,
    responses={
        HTTP_200_OK: ResponseSpec(
            data_container=StateSnapshot,
            description="The read model at one revision",
            generate_examples=False,
        )
    },
)
async def environment_state(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
) -> Response[bytes]:
    """The Environment's read model (its KV bucket), sorted by key, at one revision.

    Open ``/events`` with ``Last-Event-ID: <revision>`` to follow the changes after it.
    """
    environment = environment_name(env)
    await authorized_environment(runtime, principal, Operation.STATE_READ, environment)
    kv = await runtime.spine.key_value(environment)
    body = await runtime.snapshots.state(environment, kv, _visible)
    return Response(body, media_type=MediaType.JSON)


def _expired(principal: Principal) -> bool:
    return principal.expires_at is not None and datetime.now(UTC) >= principal.expires_at


async def _messages(subscription: Subscription, principal: Principal) -> AsyncIterator[bytes]:
    """The stream's body; owns ``subscription`` (entered by the handler) and leaves it."""
    try:
        async for item in subscription:
            # A stream outlives nothing its token would not: the client reconnects with a fresh
            # token and its Last-Event-ID. Keep-alives make this checked at least that often.
            if _expired(principal):
                yield sse_comment("the token has expired; reconnect with a new one")
                return
            yield format_sse(item)
        if subscription.reason is EndReason.TOO_SLOW:
            yield sse_comment("too slow: reconnect with the Last-Event-ID you last received")
        elif subscription.reason is EndReason.CLOSED:
            yield sse_comment("the service is shutting down")
    except CatalystError as exc:
        # The status line is gone: say it as a comment and end, so the client reconnects.
        logger.warning("event stream of %s ended: %s", subscription.environment, exc)
        yield sse_comment("the event stream is unavailable; reconnect later")
    finally:
        await subscription.__aexit__(None, None, None)


@get(
    f"{_ENVIRONMENT_PATH}/events",
    dependencies=AUTHENTICATED,
    media_type="text/event-stream",
    tags=_TAGS,
)
async def environment_events(
    env: EnvironmentPath,
    principal: NamedDependency[Principal],
    runtime: NamedDependency[Runtime],
    last_event_id: Annotated[
        str | None,
        HeaderParameter(
            name="Last-Event-ID",
            required=False,
            description="resume after this revision (the id of the last event received)",
        ),
    ] = None,
    last_event_id_query: Annotated[
        str | None,
        QueryParameter(
            name="lastEventId",
            required=False,
            description="as Last-Event-ID, for clients that cannot set headers; the header wins",
        ),
    ] = None,
) -> Stream:
    """Server-sent events of the Environment's read-model changes.

    Each change is ``id: <revision>``, ``event: put|delete`` and ``data: {"key", "revision",
    "operation", "value"}``; ``: keep-alive`` comments follow silences. Without an id the stream
    starts at the current revision (read ``/state`` first); with one it first sends the retained
    changes after it. A revision beyond the current one is a 422: reload ``/state``.
    """
    environment = environment_name(env)
    after = parse_last_event_id(last_event_id, last_event_id_query)
    await authorized_environment(runtime, principal, Operation.EVENTS_READ, environment)
    hub = await runtime.hub()
    subscription = hub.subscribe(environment, after, _visible)
    # Attached before the status line, so a bad Last-Event-ID or an unreachable spine is a
    # problem response, and every change after this point reaches the client.
    await subscription.__aenter__()
    try:
        return Stream(
            _messages(subscription, principal),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    except BaseException:
        await subscription.__aexit__(None, None, None)
        raise


ROUTES: Final = [environment_state, environment_events]
