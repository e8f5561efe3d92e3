"""CloudEvents encoding and the reversible escaping of subject tokens and KV keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import Event
from catalyst_kernel.readside.codec import decode, decode_stored, encode
from catalyst_kernel.readside.subjects import (
    catalyst_subject,
    check_kv_key,
    crossplane_subject,
    environment_of,
    escape,
    flux_subject,
    git_subject,
    k8s_subject,
    kv_bucket,
    kv_key,
    split_kv_key,
    stream_filter,
    unescape,
)

EVENT = Event(
    id="e-1",
    source="/sovereigns/demo/committer",
    type="io.catalyst.git.commit",
    subject="git.abc123",
    time=datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC),
    data={"sha": "abc123", "applications": [{"name": "web"}]},
)


def test_events_encode_as_structured_cloudevents_json() -> None:
    wire = json.loads(encode(EVENT))
    assert wire["specversion"] == "1.0"
    assert wire["id"] == "e-1"
    assert wire["time"] == "2026-11-30T12:00:00.123456Z"
    assert wire["data"] == EVENT.data
    assert wire["datacontenttype"] == "application/json"


@pytest.mark.parametrize("decoder", [decode, decode_stored])
def test_decoding_round_trips(decoder: object) -> None:
    assert decoder(encode(EVENT)) == EVENT  # type: ignore[operator]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"specversion": "1.0", "id": "1", "source": "/s"}',
        b'{"specversion": "0.3", "id": "1", "source": "/s", "type": "t",'
        b' "time": "2026-01-01T00:00:00Z"}',
        b'{"specversion": "1.0", "id": "", "source": "/s", "type": "t"}',
        b"\xff\xfe",
    ],
)
def test_malformed_events_are_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode(body)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("web", "web"),
        ("my.app", "my=2Eapp"),
        ("a*b>c", "a=2Ab=3Ec"),
        ("with space", "with=20space"),
        ("eq=sign", "eq=3Dsign"),
        ("slash/ed", "slash=2Fed"),
        ("ünï", "=C3=BCn=C3=AF"),
    ],
)
def test_escaping_is_reversible_and_safe(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw
    check_kv_key(escape(raw))


@given(st.text(min_size=1))
def test_escape_round_trips_any_text(raw: str) -> None:
    token = escape(raw)
    assert unescape(token) == raw
    assert not set(token) & set(". *>\t\r\n/")


@pytest.mark.parametrize("bad", ["", "a.b", "=ZZ", "=4", "a b"])
def test_unescape_refuses_what_escape_never_makes(bad: str) -> None:
    with pytest.raises(InvalidInput):
        unescape(bad)


def test_subjects_follow_spec_section_4() -> None:
    assert k8s_subject("acme-prod", "Deployment", "shop", "web.v2") == (
        "ws.acme-prod.k8s.Deployment.shop.web=2Ev2"
    )
    assert k8s_subject("acme-prod", "Namespace", "", "shop") == "ws.acme-prod.k8s.Namespace._.shop"
    assert flux_subject("acme-prod", "marketing-site") == "ws.acme-prod.flux.marketing-site"
    assert git_subject("acme-prod", "3f2a") == "ws.acme-prod.git.3f2a"
    assert crossplane_subject("acme-prod", "db") == "ws.acme-prod.crossplane.db"
    assert catalyst_subject("acme-prod", "change", "7") == "ws.acme-prod.catalyst.change.7"
    assert stream_filter("acme-prod") == "ws.acme-prod.>"
    assert environment_of("ws.acme-prod.git.3f2a") == "acme-prod"
    assert kv_bucket("acme-prod") == "ws-acme-prod-state"


def test_wildcards_in_names_cannot_widen_a_subject() -> None:
    subject = k8s_subject("acme-prod", "Deployment", "*", ">")
    assert "*" not in subject
    assert ">" not in subject
    assert len(subject.split(".")) == 6


@pytest.mark.parametrize("environment", ["acme-staging", "ACME-prod", "acme"])
def test_subjects_refuse_invalid_environments(environment: str) -> None:
    with pytest.raises(InvalidInput):
        git_subject(environment, "abc")


def test_kv_keys_escape_each_segment() -> None:
    key = kv_key("k8s", "Deployment", "shop", "a/b.c")
    assert key == "k8s/Deployment/shop/a=2Fb=2Ec"
    assert split_kv_key(key) == ("k8s", "Deployment", "shop", "a/b.c")
    with pytest.raises(InvalidInput):
        kv_key("k8s")


@pytest.mark.parametrize("key", ["", ".a", "a.", "a b", "a*", "ä"])
def test_invalid_kv_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_kv_key(key)


def test_environment_of_refuses_foreign_subjects() -> None:
    with pytest.raises(InvalidInput):
        environment_of("other.acme-prod.git.x")
