"""KV keys map to subjects reversibly, with whole key segments as subject tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalyst_kernel.errors import InvalidInput
from catalyst_nats.names import (
    environment_of_stream,
    event_stream,
    event_subject,
    key_of_subject,
    key_prefix_filter,
    kv_subject,
)

BUCKET = "ws-acme-dev-state"
keys = st.from_regex(r"[-/_=.a-zA-Z0-9]+", fullmatch=True).filter(
    lambda key: key[0] != "." and key[-1] != "."
)


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` one or more trailing tokens."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


@given(keys)
def test_keys_round_trip_through_well_formed_subjects(key: str) -> None:
    subject = kv_subject(BUCKET, key)
    assert key_of_subject(BUCKET, subject) == key
    assert all(subject.split(".")), "no empty token: JetStream would drop the message"
    assert not any(c in subject for c in " \t*>")


@given(keys, keys)
def test_a_prefix_filter_holds_every_key_under_the_prefix(key: str, prefix: str) -> None:
    pattern = key_prefix_filter(BUCKET, prefix)
    if key.startswith(prefix):
        assert matches(pattern, kv_subject(BUCKET, key))
    if matches(pattern, kv_subject(BUCKET, key)) and prefix.endswith("/"):
        assert key.startswith(prefix), "whole segments filter exactly"


def test_segments_are_tokens_and_dots_are_escaped() -> None:
    assert kv_subject(BUCKET, "application/web") == "$KV.ws-acme-dev-state.application.web"
    assert kv_subject(BUCKET, "a.b//c") == "$KV.ws-acme-dev-state.a%2Eb.%.c"
    assert key_prefix_filter(BUCKET, "timeline/web/") == "$KV.ws-acme-dev-state.timeline.web.>"
    with pytest.raises(InvalidInput):
        kv_subject(BUCKET, "has space")


def test_event_subjects_and_streams() -> None:
    assert (
        event_subject("acme-dev", "k8s.Deployment.shop.web")
        == "ws.acme-dev.k8s.Deployment.shop.web"
    )
    assert event_subject("acme-dev", None) == "ws.acme-dev"
    for bad in ("a..b", "wild.*", "tail.>", "has space", ".lead"):
        with pytest.raises(InvalidInput, match="not a NATS subject"):
            event_subject("acme-dev", bad)
    assert event_stream("acme-dev") == "ws-acme-dev-events"
    assert environment_of_stream("ws-acme-dev-events") == "acme-dev"
    assert environment_of_stream("KV_ws-acme-dev-state") is None
    assert environment_of_stream("ws-nonsense-events") is None
