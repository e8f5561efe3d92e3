"""JetStream names of the spine: streams, buckets, subjects, and the reversible KV key mapping.

Stream granularity is **one stream per Environment** (``ws-<env>-events`` capturing ``ws.<env>``
and ``ws.<env>.>``): sequences, the projector's durable consumer, limits and the per-Organization
exports all follow the Environment, as on the embedded spine.

KV keys (``[-/_=.a-zA-Z0-9]+``) become subject tokens after the bucket's ``$KV.<bucket>.`` prefix:
``/`` is the token separator ``.``, so ``application/web`` is ``$KV.<bucket>.application.web``
and a key prefix ending in ``/`` is a subject filter (``application.>``) the server evaluates.
A ``.`` inside a segment becomes ``%2E`` and an empty segment (``a//b``, a leading ``/``) becomes
``%``; neither can come from a key, so the mapping reverses exactly and every subject is
well-formed (JetStream would drop ``a..b`` silently: no stream captures a subject with an empty
token).
"""

from __future__ import annotations

import re
from typing import Final

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.readside.subjects import SUBJECT_PREFIX, check_kv_key

__all__ = [
    "EVENT_STREAM_SUFFIX",
    "KV_STREAM_PREFIX",
    "environment_of_stream",
    "event_stream",
    "event_subject",
    "key_of_subject",
    "key_prefix_filter",
    "kv_prefix",
    "kv_stream",
    "kv_subject",
]

EVENT_STREAM_SUFFIX: Final = "-events"
KV_STREAM_PREFIX: Final = "KV_"
_EVENT_STREAM: Final = re.compile(rf"{SUBJECT_PREFIX}-(.+){EVENT_STREAM_SUFFIX}")
# What NATS gives meaning to inside a subject, or forbids in one.
_BAD_TOKEN: Final = re.compile(r"[\s*>]")


def event_stream(environment: str) -> str:
    """``ws-<env>-events``: the stream of one Environment's events."""
    check_environment_name(environment)
    return f"{SUBJECT_PREFIX}-{environment}{EVENT_STREAM_SUFFIX}"


def environment_of_stream(stream: str) -> str | None:
    """The Environment whose event stream ``stream`` is, or ``None`` for any other stream."""
    match = _EVENT_STREAM.fullmatch(stream)
    if match is None:
        return None
    try:
        return check_environment_name(match.group(1))
    except InvalidInput:
        return None


def event_subject(environment: str, subject: str | None) -> str:
    """``ws.<env>.<subject>`` (``ws.<env>`` without one), refusing what is not a subject."""
    check_environment_name(environment)
    base = f"{SUBJECT_PREFIX}.{environment}"
    if not subject:
        return base
    tokens = subject.split(".")
    if any(not token or _BAD_TOKEN.search(token) for token in tokens):
        raise InvalidInput(
            f"event subject {subject!r} is not a NATS subject below {base} (empty tokens, "
            "whitespace and wildcards must be escaped by the source)",
            field="subject",
        )
    return f"{base}.{subject}"


def kv_stream(bucket: str) -> str:
    """``KV_<bucket>``: the stream behind a KV bucket (the NATS KV convention)."""
    return f"{KV_STREAM_PREFIX}{bucket}"


def kv_prefix(bucket: str) -> str:
    """``$KV.<bucket>.``: what every key's subject starts with."""
    return f"$KV.{bucket}."


def _segment(segment: str) -> str:
    return segment.replace(".", "%2E") if segment else "%"


def _unsegment(token: str) -> str:
    return "" if token == "%" else token.replace("%2E", ".")


def kv_subject(bucket: str, key: str) -> str:
    """The subject of ``key`` in ``bucket``; :class:`InvalidInput` for an invalid key."""
    check_kv_key(key)
    return kv_prefix(bucket) + ".".join(_segment(part) for part in key.split("/"))


def key_of_subject(bucket: str, subject: str) -> str:
    """Reverse :func:`kv_subject`."""
    prefix = kv_prefix(bucket)
    if not subject.startswith(prefix):
        raise InvalidInput(f"{subject!r} is not a subject of bucket {bucket!r}")
    return "/".join(_unsegment(token) for token in subject[len(prefix) :].split("."))


def key_prefix_filter(bucket: str, prefix: str) -> str:
    """The narrowest subject filter holding every key that starts with ``prefix``.

    Whole segments become tokens (``app/`` → ``$KV.<bucket>.app.>``); a partial last segment
    cannot be expressed as a filter, so the caller still checks ``startswith``.
    """
    if "/" not in prefix:
        return kv_prefix(bucket) + ">"
    complete = prefix.rsplit("/", 1)[0]
    return kv_prefix(bucket) + ".".join(_segment(part) for part in complete.split("/")) + ".>"
