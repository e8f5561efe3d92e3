"""``GET /v1/environments/{env}/state`` and ``/events`` over a real uvicorn, with dev tokens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from attrs import frozen

from catalyst_kernel.api.auth import bearer_token
from catalyst_kernel.api.routes.readmodel import _messages, parse_last_event_id
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.errors import BackendUnavailable, InvalidInput, Unauthenticated
from catalyst_kernel.identity.dev import DevIdentityProvider
from catalyst_kernel.model.principal import Principal
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.readside.fanout import KEEPALIVE, EndReason, KeepAlive
from catalyst_kernel.readside.spine import KvEntry, KvOperation
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing.service import ApiService, assert_problem, running_service

pytestmark = pytest.mark.anyio

ENV = "acme-dev"
STATE = f"/v1/environments/{ENV}/state"
EVENTS = f"/v1/environments/{ENV}/events"


# -------------------------------------------------------------------------------------------------
# A running service
# -------------------------------------------------------------------------------------------------


@pytest.fixture
def settings(catalyst_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return catalyst_settings(data_dir=str(tmp_path))


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[ApiService]:
    async with running_service(settings, sse_keepalive=0.2) as service:
        await service.create_environment(ENV)
        yield service


def put(value: object) -> bytes:
    return json.dumps(value).encode()


# -------------------------------------------------------------------------------------------------
# Reading an event stream
# -------------------------------------------------------------------------------------------------


@frozen
class Message:
    id: str | None
    event: str | None
    data: str | None
    comments: tuple[str, ...]

    @property
    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class EventReader:
    """Parses ``text/event-stream`` blocks from an open streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, seconds: float = 5) -> Message | None:
        """The next block (a message or only comments), ``None`` when the stream ends."""
        fields: dict[str, list[str]] = {}
        comments: list[str] = []
        with anyio.fail_after(seconds):
            async for line in self._lines:
                if line == "":
                    if fields or comments:
                        return Message(
                            id=fields.get("id", [None])[-1],
                            event=fields.get("event", [None])[-1],
                            data="\n".join(fields["data"]) if "data" in fields else None,
                            comments=tuple(comments),
                        )
                    continue
                if line.startswith(":"):
                    comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
        return None

    async def entry(self, seconds: float = 5) -> Message:
        """The next message with data, skipping keep-alives."""
        while True:
            message = await self.next(seconds)
            assert message is not None, "the stream ended"
            if message.data is not None:
                return message


@asynccontextmanager
async def events(
    service: ApiService, headers: dict[str, str], path: str = EVENTS, **params: str
) -> AsyncIterator[EventReader]:
    async with service.client.stream("GET", path, headers=headers, params=params) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield EventReader(response)


# -------------------------------------------------------------------------------------------------
# Authentication
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [STATE, EVENTS])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer a b", "Bearer not-a-jwt-token"],
)
async def test_a_request_without_a_valid_bearer_token_is_401(
    service: ApiService, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await service.client.get(path, headers=headers)
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "not-a-jwt-token" not in response.text
    assert "YWxpY2U6c2VjcmV0" not in response.text
    assert "Bearer" in body["detail"] or "token" in body["detail"]


async def test_a_token_of_another_signing_key_is_401_and_not_echoed(
    service: ApiService, tmp_path: Path
) -> None:
    stranger = DevIdentityProvider(tmp_path / "other" / "key.pem", issuer=service.identity.issuer)
    await stranger.start()
    token = stranger.mint("mallory", organization="acme", role="org-admin")
    await stranger.close()
    for path in (STATE, EVENTS):
        response = await service.client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        assert token not in response.text


async def test_without_an_identity_provider_every_request_is_503(
    catalyst_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = catalyst_settings(data_dir=str(tmp_path), providers={"identity": "nobody"})
    async with running_service(settings) as service:
        for path in (STATE, EVENTS):
            response = await service.client.get(path, headers={"Authorization": "Bearer x"})
            body = assert_problem(response, 503, "backend-unavailable")
            assert "no identity provider is active" in body["detail"]


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer   abc ") == "abc"
    for bad in (None, "", "  ", "Bearer", "Token abc", "Bearer a b"):
        with pytest.raises(Unauthenticated) as caught:
            bearer_token(bad)
        assert "abc" not in str(caught.value)


# -------------------------------------------------------------------------------------------------
# Authorization and existence
# -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [STATE, EVENTS])
@pytest.mark.parametrize(
    ("role", "org", "scope"),
    [
        ("org-admin", "globex", ()),  # another Organization
        ("org-viewer", "globex", ()),
        ("billing-admin", "acme", ()),  # a role without state:read / events:read
        ("org-viewer", "acme", ("acme-stg",)),  # scoped to another Environment
    ],
)
async def test_a_principal_not_allowed_to_read_the_environment_is_403(
    service: ApiService, path: str, role: str, org: str, scope: tuple[str, ...]
) -> None:
    headers = service.auth(role, org, environments=scope)
    response = await service.client.get(path, headers=headers)
    body = assert_problem(response, 403, "forbidden")
    assert ENV in body["detail"]


@pytest.mark.parametrize("path", [STATE, EVENTS])
async def test_another_organization_cannot_probe_which_environments_exist(
    service: ApiService, path: str
) -> None:
    headers = service.auth("org-admin", "globex")
    existing = await service.client.get(path, headers=headers)
    missing = await service.client.get(path.replace(ENV, "acme-prod"), headers=headers)
    assert_problem(existing, 403, "forbidden")
    assert_problem(missing, 403, "forbidden")


@pytest.mark.parametrize("path", [STATE, EVENTS])
async def test_a_missing_environment_is_404_for_an_authorized_caller(
    service: ApiService, path: str
) -> None:
    response = await service.client.get(path.replace(ENV, "acme-prod"), headers=service.auth())
    body = assert_problem(response, 404, "not-found")
    assert "acme-prod" in body["detail"]
    assert body["field"] == "env"


@pytest.mark.parametrize("path", [STATE, EVENTS])
@pytest.mark.parametrize(
    ("name", "rule_words"),
    [("acme-staging", "short forms only"), ("acme", "must be '{organization}-{env_type}'")],
)
async def test_a_bad_environment_name_is_422_naming_the_rule(
    service: ApiService, path: str, name: str, rule_words: str
) -> None:
    response = await service.client.get(path.replace(ENV, name), headers=service.auth())
    body = assert_problem(response, 422, "invalid-name")
    assert rule_words in body["detail"]
    assert body["field"] == "env"


async def test_a_sovereign_admin_reads_any_organization(service: ApiService) -> None:
    await (await service.kv(ENV)).put("application/web", put({"status": "Running"}))
    headers = service.auth("sovereign-admin", None)
    response = await service.client.get(STATE, headers=headers)
    assert response.status_code == 200, response.text
    assert [item["key"] for item in response.json()["items"]] == ["application/web"]
    async with events(service, headers, lastEventId="0") as reader:
        message = await reader.entry()
    assert message.json["key"] == "application/web"


# -------------------------------------------------------------------------------------------------
# State
# -------------------------------------------------------------------------------------------------


async def test_state_is_the_snapshot_with_decoded_values(service: ApiService) -> None:
    kv = await service.kv(ENV)
    empty = await service.client.get(STATE, headers=service.auth())
    assert empty.status_code == 200, empty.text
    assert empty.headers["content-type"].startswith("application/json")
    assert empty.json() == {"revision": 0, "items": []}

    web = await kv.put("application/web", put({"status": "Installing"}))
    deployment = await kv.put("k8s/Deployment/acme/web", put({"ready": 1, "name": "wéb"}))
    await kv.put("application/old", put({"status": "Running"}))
    await kv.delete("application/old")
    web = await kv.put("application/web", put({"status": "Running"}))
    await kv.put("projector/cursor", put(7))
    await kv.put("application-index/web", put({"private": True}))
    count = await kv.put("counter", put(3))

    response = await service.client.get(STATE, headers=service.auth())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "revision": await kv.revision(),
        "items": [
            {"key": "application/web", "value": {"status": "Running"}, "revision": web},
            {"key": "counter", "value": 3, "revision": count},
            {
                "key": "k8s/Deployment/acme/web",
                "value": {"ready": 1, "name": "wéb"},
                "revision": deployment,
            },
        ],
    }


async def test_state_follows_every_write_and_shows_non_json_as_null(service: ApiService) -> None:
    kv = await service.kv(ENV)
    first = await kv.put("k8s/ConfigMap/acme/a", put({"n": 1}))
    before = await service.client.get(STATE, headers=service.auth())
    again = await service.client.get(STATE, headers=service.auth())
    assert before.content == again.content
    broken = await kv.put("k8s/ConfigMap/acme/b", b"{not json")
    after = (await service.client.get(STATE, headers=service.auth())).json()
    assert after == {
        "revision": broken,
        "items": [
            {"key": "k8s/ConfigMap/acme/a", "value": {"n": 1}, "revision": first},
            {"key": "k8s/ConfigMap/acme/b", "value": None, "revision": broken},
        ],
    }
    await kv.delete("k8s/ConfigMap/acme/a")
    final = (await service.client.get(STATE, headers=service.auth())).json()
    assert [item["key"] for item in final["items"]] == ["k8s/ConfigMap/acme/b"]


async def test_state_is_in_the_openapi_document(service: ApiService) -> None:
    document = (await service.client.get("/schema/openapi.json")).json()
    assert "get" in document["paths"]["/v1/environments/{env}/state"]
    assert "get" in document["paths"]["/v1/environments/{env}/events"]


# -------------------------------------------------------------------------------------------------
# Events
# -------------------------------------------------------------------------------------------------


async def test_changes_arrive_as_sse_messages(service: ApiService) -> None:
    kv = await service.kv(ENV)
    await kv.put("application/before", put({"status": "Running"}))
    async with events(service, service.auth()) as reader:
        first = await kv.put("application/web", put({"status": "Installing"}))
        await kv.put("projector/cursor", put(1))  # internal: never sent
        gone = await kv.delete("application/web")
        message = await reader.entry()
        assert message.id == str(first)
        assert message.event == "put"
        assert message.json == {
            "key": "application/web",
            "revision": first,
            "operation": "put",
            "value": {"status": "Installing"},
        }
        message = await reader.entry()
        assert (message.id, message.event) == (str(gone), "delete")
        assert message.json == {
            "key": "application/web",
            "revision": gone,
            "operation": "delete",
            "value": None,
        }


async def test_last_event_id_resumes_with_exactly_the_later_changes(service: ApiService) -> None:
    kv = await service.kv(ENV)
    history = [await kv.put(f"application/app-{i}", put({"n": i})) for i in range(5)]
    resume_after = history[1]
    for headers, params in (
        ({"Last-Event-ID": str(resume_after)}, {}),
        ({}, {"lastEventId": str(resume_after)}),
        # The header (what a reconnecting EventSource sends) wins over the query parameter.
        ({"Last-Event-ID": str(resume_after)}, {"lastEventId": "0"}),
    ):
        expected = [str(r) for r in history if r > resume_after]
        async with events(service, {**service.auth(), **headers}, **params) as reader:
            received = [(await reader.entry()).id for _ in expected]
            assert received == expected
            # Nothing else is owed: the next message is the next change.
            history.append(await kv.put("application/sentinel", put({})))
            assert (await reader.entry()).id == str(history[-1])


async def test_without_an_id_the_stream_starts_at_the_current_revision(
    service: ApiService,
) -> None:
    kv = await service.kv(ENV)
    await kv.put("application/old", put({}))
    async with events(service, service.auth()) as reader:
        new = await kv.put("application/new", put({}))
        assert (await reader.entry()).id == str(new)


@pytest.mark.parametrize(
    ("headers", "params", "field"),
    [
        ({"Last-Event-ID": "abc"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "-1"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "1.5"}, {}, "Last-Event-ID"),
        ({}, {"lastEventId": "x"}, "lastEventId"),
        ({}, {"lastEventId": "99999999999999999999999"}, "lastEventId"),
    ],
)
async def test_a_malformed_last_event_id_is_422(
    service: ApiService, headers: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = await service.client.get(
        EVENTS, headers={**service.auth(), **headers}, params=params
    )
    body = assert_problem(response, 422, "invalid-input")
    assert body["field"] == field


async def test_a_last_event_id_beyond_the_current_revision_is_422(service: ApiService) -> None:
    await (await service.kv(ENV)).put("application/web", put({}))
    response = await service.client.get(EVENTS, headers={**service.auth(), "Last-Event-ID": "50"})
    body = assert_problem(response, 422, "invalid-input")
    assert "reload the snapshot" in body["detail"]


def test_parse_last_event_id() -> None:
    assert parse_last_event_id(None, None) is None
    assert parse_last_event_id("", "4") == 4  # an empty header resets the id
    assert parse_last_event_id(" 12 ", None) == 12
    assert parse_last_event_id("3", "9") == 3
    with pytest.raises(InvalidInput):
        parse_last_event_id(None, "")


async def test_keep_alives_are_sent_while_nothing_changes(service: ApiService) -> None:
    async with events(service, service.auth()) as reader:
        message = await reader.next(seconds=3)
    assert message is not None
    assert message.data is None
    assert message.comments == ("keep-alive",)


async def test_the_stream_ends_when_the_token_expires(service: ApiService) -> None:
    headers = service.auth(ttl=timedelta(seconds=1))
    async with events(service, headers) as reader:
        with anyio.fail_after(5):
            while (message := await reader.next()) is not None:
                last = message
        assert last.comments == ("the token has expired; reconnect with a new one",)


async def test_a_client_that_leaves_is_unsubscribed(service: ApiService) -> None:
    async with events(service, service.auth()) as reader:
        hub = await service.runtime.hub()
        assert hub.counters()[ENV].subscribers == 1
        await (await service.kv(ENV)).put("application/web", put({}))
        await reader.entry()
    for _ in range(250):  # the server notices the disconnection on its own schedule
        if not hub.counters()[ENV].subscribers:
            break
        await anyio.sleep(0.02)
    assert hub.counters()[ENV].subscribers == 0
    assert not hub.counters()[ENV].watching


class EndingSubscription:
    """Stands in for a hub subscription that ends (dropped as too slow) or fails."""

    environment = ENV

    def __init__(self, items: list[Any], reason: EndReason | None, error: Exception | None):
        self.items = items
        self.reason = reason
        self.error = error
        self.exited = False

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        for item in self.items:
            yield item
        if self.error is not None:
            raise self.error

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited = True


@pytest.mark.parametrize(
    ("reason", "error", "comment"),
    [
        (EndReason.TOO_SLOW, None, b": too slow: reconnect with the Last-Event-ID"),
        (EndReason.CLOSED, None, b": the service is shutting down"),
        (EndReason.UNAVAILABLE, BackendUnavailable("watch failed"), b": the event stream is"),
    ],
)
async def test_a_stream_the_hub_ends_says_why_and_leaves_its_subscription(
    reason: EndReason, error: Exception | None, comment: bytes
) -> None:
    entry = KvEntry("application/web", 3, KvOperation.PUT, b"{}", datetime.now(UTC))
    subscription = EndingSubscription([entry, KEEPALIVE], reason, error)
    principal = Principal(subject="alice", roles=["org-viewer"], organization="acme")
    chunks = [chunk async for chunk in _messages(subscription, principal)]  # type: ignore[arg-type]
    assert chunks[0].startswith(b"id: 3\nevent: put\ndata: ")
    assert chunks[1] == b": keep-alive\n\n"
    assert chunks[2].startswith(comment)
    assert len(chunks) == 3
    assert subscription.exited


# -------------------------------------------------------------------------------------------------
# The runtime's hub
# -------------------------------------------------------------------------------------------------


async def test_the_runtime_owns_one_hub_and_closes_it(settings: Settings) -> None:
    runtime = Runtime(settings, PluginManager(settings).load(entry_points=()))
    with pytest.raises(BackendUnavailable):
        await runtime.hub()
    async with runtime:
        hub = await runtime.hub()
        assert await runtime.hub() is hub
        spine: Any = runtime.started[Slot.SPINE]
        subscription = hub.subscribe(ENV)
        await subscription.__aenter__()
        revision = await (await spine.key_value(ENV)).put("a", b"1")
        with anyio.fail_after(5):
            entry = await subscription.__anext__()
        assert not isinstance(entry, KeepAlive)
        assert (entry.key, entry.revision) == ("a", revision)
    # Leaving the runtime closed the hub (before the spine): the subscription has ended.
    assert [item async for item in subscription] == []
    assert subscription.reason is EndReason.CLOSED
    await subscription.__aexit__(None, None, None)
    with pytest.raises(BackendUnavailable):
        await runtime.hub()
