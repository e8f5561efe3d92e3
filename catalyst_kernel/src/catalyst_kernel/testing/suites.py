"""Conformance suites: one abstract pytest class per slot, subclassed by every implementation.

Subclass the suite in a module whose name pytest collects, name the subclass ``Test…``, and
override the ``provider`` fixture (plus any fixture the suite documents)::

    from catalyst_kernel.testing import EventSourceConformance

    class TestHeartbeat(EventSourceConformance):
        @pytest.fixture
        def provider(self):
            return HeartbeatSource(...)

Suites for slots whose embedded implementation has not landed yet hold the shape tests only; the
behavioural tests join them with the implementation, and every subclass inherits them.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from catalyst_kernel.api.extension import ApiExtension
from catalyst_kernel.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.event import Event
from catalyst_kernel.model.names import EnvType
from catalyst_kernel.model.plan import FileAction, FileChange
from catalyst_kernel.model.principal import Role
from catalyst_kernel.model.tenancy import Environment, Organization
from catalyst_kernel.plugins.lifecycle import LifecycleHandler
from catalyst_kernel.promotion.rules import RuleContext, RuleKind, RuleVerdict
from catalyst_kernel.provisioning.committer import (
    ApplicationAction,
    ApplicationChange,
    Approval,
    ChangeStatus,
    CommitInfo,
    CommitRequest,
    Committer,
)
from catalyst_kernel.provisioning.composer import CompositionRequest, ManifestComposer
from catalyst_kernel.readside.projection import Projection
from catalyst_kernel.readside.sources import EventSource
from catalyst_kernel.readside.spine import KvOperation, Spine
from catalyst_kernel.secrets.backend import SecretBackend, SecretPath
from catalyst_kernel.testing.doubles import MemoryProjectionView, RecordingPublisher
from catalyst_kernel.testing.shape import assert_implements

if TYPE_CHECKING:
    from catalyst_kernel.model.policy import PolicyRule

__all__ = [
    "PLANTED_SECRET",
    "ApiExtensionConformance",
    "CommitterConformance",
    "CommitterFactory",
    "EventSourceConformance",
    "IdentityConformance",
    "IdentityFactory",
    "KeyRotation",
    "LifecycleConformance",
    "ManifestComposerConformance",
    "ProjectionConformance",
    "RuleKindConformance",
    "SecretsConformance",
    "SecretsFactory",
    "SlotConformance",
    "SpineConformance",
    "SpineFactory",
    "TokenMinter",
]


class SlotConformance:
    """Base of every suite: the object under test implements the slot's interface."""

    interface: ClassVar[type]

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def provider(self) -> Any:
        """The object under test; every subclass overrides this fixture."""
        raise NotImplementedError(f"{type(self).__name__} must override the 'provider' fixture")

    @pytest.mark.anyio
    async def test_implements_interface(self, provider: Any) -> None:
        assert isinstance(provider, self.interface)
        assert_implements(provider, self.interface)


SpineFactory = Callable[[], AbstractAsyncContextManager[Spine]]
POLICY_PATH: Final = "policies/environment-policy.yaml"


def _event(n: int, *, subject: str = "catalyst.test", id: str | None = None) -> Event:
    return Event.create(
        source="/sovereigns/test/conformance",
        type="io.catalyst.test.event",
        subject=subject,
        data={"n": n},
        id=id or f"event-{n}",
    )


class SpineConformance(SlotConformance):
    """The spine slot: event log (ordering, dedupe, durable consumers) and KV read model.

    Override ``spine_factory``: a callable returning an async context manager that yields a
    *started* spine over the same storage every time it is called (that is how the suite restarts
    the spine), and closes it on exit. Each test gets fresh storage.
    """

    interface = Spine
    timeout: ClassVar[float] = 30.0

    @pytest.fixture
    def spine_factory(self) -> SpineFactory:
        raise NotImplementedError(f"{type(self).__name__} must override 'spine_factory'")

    @pytest.fixture
    async def provider(self, spine_factory: SpineFactory) -> AsyncIterator[Spine]:
        async with spine_factory() as spine:
            yield spine

    # --- event log -------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_check_reports_ready(self, provider: Spine) -> None:
        assert (await provider.check()).ready

    @pytest.mark.anyio
    async def test_sequences_are_ordered_per_environment(self, provider: Spine) -> None:
        for n in range(1, 6):
            assert (await provider.publish("acme-dev", _event(n))).sequence == n
        assert (await provider.publish("acme-prod", _event(100))).sequence == 1
        deliveries = await provider.read("acme-dev")
        assert [d.event.data["n"] for d in deliveries] == [1, 2, 3, 4, 5]
        assert [d.sequence for d in deliveries] == [1, 2, 3, 4, 5]
        assert {"acme-dev", "acme-prod"} <= set(await provider.environments())

    @pytest.mark.anyio
    async def test_publishing_an_event_id_twice_is_deduplicated(self, provider: Spine) -> None:
        first = await provider.publish("acme-dev", _event(1, id="same"))
        again = await provider.publish("acme-dev", _event(2, id="same"))
        assert not first.duplicate
        assert again.duplicate
        assert again.sequence == first.sequence
        assert [d.event.data for d in await provider.read("acme-dev")] == [{"n": 1}]

    @pytest.mark.anyio
    async def test_events_round_trip_unchanged(self, provider: Spine) -> None:
        event = _event(7, subject="k8s.Deployment.web.api")
        await provider.publish("acme-dev", event)
        (delivery,) = await provider.read("acme-dev")
        assert delivery.event == event
        assert delivery.environment == "acme-dev"

    @pytest.mark.anyio
    async def test_consumer_delivers_in_order_and_ack_moves_the_cursor(
        self, provider: Spine
    ) -> None:
        for n in range(1, 11):
            await provider.publish("acme-dev", _event(n))
        consumer = await provider.consumer("acme-dev", "conformance")
        first = await consumer.fetch(4, 1.0)
        assert [d.sequence for d in first] == [1, 2, 3, 4]
        await consumer.ack(first[-1])
        rest = await consumer.fetch(100, 1.0)
        assert [d.sequence for d in rest] == list(range(5, 11))
        await consumer.ack(rest[-1])
        assert await consumer.fetch(10, 0.2) == []

    @pytest.mark.anyio
    async def test_fetch_waits_for_new_events(self, provider: Spine) -> None:
        consumer = await provider.consumer("acme-dev", "waiter")
        got: list[Any] = []
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:

                async def fetch() -> None:
                    got.extend(await consumer.fetch(10, self.timeout))

                tasks.start_soon(fetch)
                await anyio.sleep(0.05)
                await provider.publish("acme-dev", _event(1))
        assert [d.sequence for d in got] == [1]

    @pytest.mark.anyio
    async def test_unacknowledged_events_are_redelivered_after_restart(
        self, spine_factory: SpineFactory
    ) -> None:
        async with spine_factory() as spine:
            for n in range(1, 6):
                await spine.publish("acme-dev", _event(n))
            consumer = await spine.consumer("acme-dev", "durable")
            deliveries = await consumer.fetch(5, 1.0)
            await consumer.ack(deliveries[1])  # acknowledges 1 and 2
        async with spine_factory() as spine:
            consumer = await spine.consumer("acme-dev", "durable")
            again = await consumer.fetch(10, 1.0)
            assert [d.sequence for d in again] == [3, 4, 5]

    @pytest.mark.anyio
    async def test_events_and_kv_survive_a_restart(self, spine_factory: SpineFactory) -> None:
        async with spine_factory() as spine:
            await spine.publish("acme-dev", _event(1))
            kv = await spine.key_value("acme-dev")
            revision = await kv.put("app/web", b"running")
        async with spine_factory() as spine:
            assert [d.event.data for d in await spine.read("acme-dev")] == [{"n": 1}]
            assert (await spine.publish("acme-dev", _event(1))).duplicate
            kv = await spine.key_value("acme-dev")
            entry = await kv.get("app/web")
            assert entry is not None
            assert (entry.value, entry.revision) == (b"running", revision)

    @pytest.mark.anyio
    async def test_concurrent_publishers_lose_nothing(self, provider: Spine) -> None:
        publishers, each = 8, 25

        async def publish(worker: int) -> None:
            for n in range(each):
                await provider.publish("acme-dev", _event(worker * 1000 + n))

        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                for worker in range(publishers):
                    tasks.start_soon(publish, worker)
        deliveries = await provider.read("acme-dev", limit=publishers * each + 10)
        assert [d.sequence for d in deliveries] == list(range(1, publishers * each + 1))
        numbers = [d.event.data["n"] for d in deliveries]
        assert sorted(numbers) == sorted(
            w * 1000 + n for w in range(publishers) for n in range(each)
        )
        for worker in range(publishers):
            mine = [n for n in numbers if n // 1000 == worker]
            assert mine == sorted(mine), "each publisher's events keep their order"

    # --- KV --------------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_kv_revisions_increase_across_keys(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        first = await kv.put("a", b"1")
        second = await kv.put("b", b"2")
        third = await kv.put("a", b"3")
        assert first < second < third
        entry = await kv.get("a")
        assert entry is not None
        assert (entry.value, entry.revision, entry.operation) == (b"3", third, KvOperation.PUT)
        assert await kv.get("missing") is None

    @pytest.mark.anyio
    async def test_create_writes_only_a_missing_or_deleted_key(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        first = await kv.create("org/acme", b"1")
        with pytest.raises(Conflict):
            await kv.create("org/acme", b"2")
        entry = await kv.get("org/acme")
        assert entry is not None
        assert (entry.value, entry.revision) == (b"1", first)
        await kv.delete("org/acme")
        again = await kv.create("org/acme", b"3")
        assert again > first

    @pytest.mark.anyio
    async def test_concurrent_creates_of_one_key_have_one_winner(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        outcomes: list[str] = []

        async def create(n: int) -> None:
            try:
                await kv.create("contended", str(n).encode())
                outcomes.append("created")
            except Conflict:
                outcomes.append("conflict")

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(create, n)
        assert sorted(outcomes) == ["conflict"] * 7 + ["created"]

    @pytest.mark.anyio
    async def test_directory_is_a_bucket_of_no_environment(self, provider: Spine) -> None:
        directory = await provider.directory()
        await directory.put("organizations/acme", b"{}")
        again = await provider.directory()
        entry = await again.get("organizations/acme")
        assert entry is not None
        assert entry.value == b"{}"
        dev = await provider.key_value("acme-dev")
        assert await dev.get("organizations/acme") is None
        await provider.publish("acme-dev", _event(1))
        assert list(await provider.environments()) == ["acme-dev"]

    @pytest.mark.anyio
    async def test_delete_leaves_a_marker_in_history(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        await kv.put("app/web", b"1")
        await kv.put("app/web", b"2")
        deleted = await kv.delete("app/web")
        assert await kv.get("app/web") is None
        history = await kv.history("app/web")
        assert [e.operation for e in history] == [
            KvOperation.PUT,
            KvOperation.PUT,
            KvOperation.DELETE,
        ]
        assert [e.value for e in history] == [b"1", b"2", None]
        assert history[-1].revision == deleted

    @pytest.mark.anyio
    async def test_snapshot_holds_live_keys_under_a_prefix(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        await kv.put("app/a", b"1")
        await kv.put("app/b", b"2")
        await kv.put("other/c", b"3")
        last = await kv.delete("app/b")
        revision, entries = await kv.snapshot("app/")
        assert revision == last
        assert await kv.revision() == last
        assert [(e.key, e.value) for e in entries] == [("app/a", b"1")]
        _, everything = await kv.snapshot()
        assert [e.key for e in everything] == ["app/a", "other/c"]

    @pytest.mark.anyio
    async def test_put_many_applies_in_order(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        last = await kv.put_many([("x", b"1"), ("y", b"2"), ("x", None), ("z", b"3")])
        changes = await kv.changes(0, 10)
        assert [(e.key, e.operation) for e in changes] == [
            ("x", KvOperation.PUT),
            ("y", KvOperation.PUT),
            ("x", KvOperation.DELETE),
            ("z", KvOperation.PUT),
        ]
        assert changes[-1].revision == last

    @pytest.mark.anyio
    async def test_buckets_are_separate_per_environment(self, provider: Spine) -> None:
        dev = await provider.key_value("acme-dev")
        prod = await provider.key_value("acme-prod")
        await dev.put("app/web", b"dev")
        assert await prod.get("app/web") is None

    @pytest.mark.anyio
    async def test_watch_from_a_revision_then_live(self, provider: Spine) -> None:
        kv = await provider.key_value("acme-dev")
        first = await kv.put("a", b"1")
        await kv.put("b", b"2")
        seen: list[tuple[str, bytes | None]] = []
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    async for entry in kv.watch(first):
                        seen.append((entry.key, entry.value))
                        if len(seen) == 2:
                            tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                await anyio.sleep(0.05)
                await kv.delete("a")
        assert seen == [("b", b"2"), ("a", None)]

    # --- errors ----------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_invalid_names_and_keys_are_invalid_input(self, provider: Spine) -> None:
        with pytest.raises(InvalidInput):
            await provider.publish("acme-staging", _event(1))
        kv = await provider.key_value("acme-dev")
        for key in ("has space", "wild*card", "", ".leading", "a>b"):
            with pytest.raises(InvalidInput):
                await kv.put(key, b"x")

    @pytest.mark.anyio
    async def test_use_after_close_is_backend_unavailable(
        self, spine_factory: SpineFactory
    ) -> None:
        async with spine_factory() as spine:
            kv = await spine.key_value("acme-dev")
        with pytest.raises(BackendUnavailable):
            await spine.publish("acme-dev", _event(1))
        with pytest.raises(BackendUnavailable):
            await kv.put("a", b"1")
        assert not (await spine.check()).ready


CommitterFactory = Callable[[], AbstractAsyncContextManager[Committer]]


class CommitterConformance(SlotConformance):
    """The committer slot: Environment repositories, atomic commits, history, change requests.

    Override ``committer_factory``: a callable returning an async context manager that yields a
    *started* committer over the same storage every time it is called (that is how the suite
    restarts it), and closes it on exit. Each test gets fresh storage in which the Environment
    ``environment`` (default ``acme-dev``) has no repository yet, and ``other_environment``
    (default ``acme-prod``) never gets one.

    What the suite holds an implementation to, beyond the protocol's docstrings:
    ``CommitInfo.message`` is the message without its trailer block, and ``trailers`` hold
    ``Catalyst-Actor``, ``Catalyst-Operation``, ``Catalyst-Plan-Digest`` (when set) and the
    request's own; a failed operation moves nothing; change ids are decimal numbers that
    increase; approving a revision other than the current one is a ``Conflict``; a merge is one
    commit on top of the current head whose ``Catalyst-Actor`` is the merger.

    :cvar concurrent_commits: how many ``commit()`` calls the concurrency test runs at once.
    """

    interface = Committer
    timeout: ClassVar[float] = 120.0
    environment: ClassVar[str] = "acme-dev"
    other_environment: ClassVar[str] = "acme-prod"
    concurrent_commits: ClassVar[int] = 20

    @pytest.fixture
    def committer_factory(self) -> CommitterFactory:
        raise NotImplementedError(f"{type(self).__name__} must override 'committer_factory'")

    @pytest.fixture
    async def provider(self, committer_factory: CommitterFactory) -> AsyncIterator[Committer]:
        async with committer_factory() as committer:
            yield committer

    # --- helpers ---------------------------------------------------------------------------------

    def request(
        self,
        *files: FileChange,
        message: str = "Change the Environment",
        actor: str = "alice",
        **options: Any,
    ) -> CommitRequest:
        """A :class:`CommitRequest` on ``environment`` (``options`` are its other fields)."""
        options.setdefault("environment", self.environment)
        options.setdefault("operation_id", f"op-{uuid.uuid4().hex[:12]}")
        return CommitRequest(message=message, files=files, actor=actor, **options)

    @staticmethod
    def add(path: str, content: str = "x: 1\n") -> FileChange:
        """A file to add."""
        return FileChange(path, FileAction.ADD, content)

    @staticmethod
    def modify(path: str, content: str = "x: 2\n") -> FileChange:
        """A file to modify."""
        return FileChange(path, FileAction.MODIFY, content)

    @staticmethod
    def delete(path: str) -> FileChange:
        """A file to delete."""
        return FileChange(path, FileAction.DELETE)

    async def create(self, committer: Committer) -> CommitInfo:
        """Create ``environment``'s repository holding the default policy."""
        initial = self.request(
            self.add(POLICY_PATH, "rules: []\n"), message=f"Create {self.environment}"
        )
        return await committer.create_repository(Environment.parse(self.environment), initial)

    async def head(self, committer: Committer) -> str:
        """The sha of ``environment``'s newest commit."""
        (latest,) = await committer.log(self.environment, limit=1)
        return latest.sha

    def approval(self, approver: str, revision: int, *groups: str) -> Approval:
        """An approval of ``revision`` by ``approver``, a member of ``groups``, now."""
        return Approval(approver, revision, datetime.now(UTC), frozenset(groups))

    # --- repositories and commits ----------------------------------------------------------------

    @pytest.mark.anyio
    async def test_check_reports_ready(self, provider: Committer) -> None:
        assert (await provider.check()).ready

    @pytest.mark.anyio
    async def test_create_repository_then_commit(self, provider: Committer) -> None:
        assert not await provider.repository_exists(self.environment)
        initial = await self.create(provider)
        assert await provider.repository_exists(self.environment)
        assert not await provider.repository_exists(self.other_environment)
        assert initial.parents == ()
        assert await provider.read_file(self.environment, POLICY_PATH) == b"rules: []\n"

        commit = await provider.commit(
            self.request(self.add("applications/web/values.yaml", "replicas: 2\n"))
        )
        assert commit.parents == (initial.sha,)
        assert await provider.read_file(self.environment, "applications/web/values.yaml") == (
            b"replicas: 2\n"
        )
        assert list(await provider.list_files(self.environment)) == [
            "applications/web/values.yaml",
            POLICY_PATH,
        ]
        assert [c.sha for c in await provider.log(self.environment)] == [commit.sha, initial.sha]

    @pytest.mark.anyio
    async def test_creating_an_existing_repository_is_a_conflict(self, provider: Committer) -> None:
        first = await self.create(provider)
        with pytest.raises(Conflict):
            await self.create(provider)
        assert [c.sha for c in await provider.log(self.environment)] == [first.sha]

    @pytest.mark.anyio
    async def test_trailers_round_trip(self, provider: Committer) -> None:
        await self.create(provider)
        request = self.request(
            self.add("applications/web/values.yaml"),
            message="Install web from bp-wordpress 1.2.0\n\nRequested in the console.",
            actor="alice",
            operation_id="op-42",
            plan_digest="sha256:" + "ab" * 32,
            trailers={"Catalyst-Promoted-From": "acme-stg"},
        )
        commit = await provider.commit(request)
        expected = {
            "Catalyst-Actor": "alice",
            "Catalyst-Operation": "op-42",
            "Catalyst-Plan-Digest": "sha256:" + "ab" * 32,
            "Catalyst-Promoted-From": "acme-stg",
        }
        assert dict(commit.trailers) == expected
        assert commit.message.strip() == request.message
        assert commit.author == "alice"
        (logged, _) = await provider.log(self.environment)
        assert logged.sha == commit.sha
        assert dict(logged.trailers) == expected
        assert logged.message.strip() == request.message

    @pytest.mark.anyio
    async def test_add_modify_delete(self, provider: Committer) -> None:
        await self.create(provider)
        path = "applications/web/values.yaml"
        await provider.commit(self.request(self.add(path, "a: 1\n")))
        await provider.commit(self.request(self.modify(path, "a: 2\n")))
        assert await provider.read_file(self.environment, path) == b"a: 2\n"
        await provider.commit(self.request(self.delete(path)))
        assert await provider.read_file(self.environment, path) is None
        assert list(await provider.list_files(self.environment, "applications/")) == []

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "change",
        [
            FileChange("applications/web/values.yaml", FileAction.ADD, "again: true\n"),
            FileChange("applications/api/values.yaml", FileAction.MODIFY, "x: 1\n"),
            FileChange("applications/api/values.yaml", FileAction.DELETE),
        ],
        ids=["add-existing", "modify-missing", "delete-missing"],
    )
    async def test_file_conflicts_name_the_path(
        self, provider: Committer, change: FileChange
    ) -> None:
        await self.create(provider)
        await provider.commit(self.request(self.add("applications/web/values.yaml")))
        with pytest.raises(Conflict, match=re.escape(change.path)):
            await provider.commit(self.request(change))

    @pytest.mark.anyio
    async def test_a_failed_operation_changes_nothing(self, provider: Committer) -> None:
        await self.create(provider)
        before = await provider.commit(self.request(self.add("applications/web/values.yaml")))
        with pytest.raises(Conflict):
            await provider.commit(
                self.request(
                    self.add("applications/api/values.yaml"),
                    self.modify("applications/web/values.yaml"),
                    self.delete("applications/gone/values.yaml"),
                )
            )
        assert await self.head(provider) == before.sha
        assert await provider.read_file(self.environment, "applications/api/values.yaml") is None
        assert await provider.read_file(self.environment, "applications/web/values.yaml") == (
            b"x: 1\n"
        )

    @pytest.mark.anyio
    async def test_concurrent_commits_all_land_with_linear_history(
        self, provider: Committer
    ) -> None:
        initial = await self.create(provider)
        count = self.concurrent_commits

        async def install(n: int) -> None:
            await provider.commit(self.request(self.add(f"applications/app-{n}/values.yaml")))

        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                for n in range(count):
                    tasks.start_soon(install, n)
        history = list(await provider.log(self.environment, limit=count + 10))
        assert len(history) == count + 1
        assert history[-1].sha == initial.sha
        for newer, older in itertools.pairwise(history):
            assert newer.parents == (older.sha,), "history is one line"
        files = await provider.list_files(self.environment, "applications/")
        assert sorted(files) == sorted(f"applications/app-{n}/values.yaml" for n in range(count))

    @pytest.mark.anyio
    async def test_expected_head_guards_against_a_moved_head(self, provider: Committer) -> None:
        initial = await self.create(provider)
        first = await provider.commit(
            self.request(self.add("applications/web/values.yaml"), expected_head=initial.sha)
        )
        assert first.parents == (initial.sha,)
        with pytest.raises(Conflict):
            await provider.commit(
                self.request(self.add("applications/api/values.yaml"), expected_head=initial.sha)
            )
        assert await self.head(provider) == first.sha
        assert await provider.read_file(self.environment, "applications/api/values.yaml") is None

    @pytest.mark.anyio
    async def test_history_per_path_is_newest_first(self, provider: Committer) -> None:
        await self.create(provider)
        web, api = "applications/web/values.yaml", "applications/api/values.yaml"
        one = await provider.commit(self.request(self.add(web, "a: 1\n")))
        await provider.commit(self.request(self.add(api)))
        three = await provider.commit(self.request(self.modify(web, "a: 3\n")))
        assert [c.sha for c in await provider.log(self.environment, web)] == [three.sha, one.sha]
        assert [c.sha for c in await provider.log(self.environment, "applications/web")] == [
            three.sha,
            one.sha,
        ]
        assert [c.sha for c in await provider.log(self.environment, web, limit=1)] == [three.sha]
        assert len(await provider.log(self.environment)) == 4

    @pytest.mark.anyio
    async def test_reads_at_an_older_commit(self, provider: Committer) -> None:
        await self.create(provider)
        path = "applications/web/values.yaml"
        old = await provider.commit(self.request(self.add(path, "a: 1\n")))
        await provider.commit(self.request(self.modify(path, "a: 2\n")))
        assert await provider.read_file(self.environment, path, old.sha) == b"a: 1\n"
        assert await provider.read_file(self.environment, path) == b"a: 2\n"
        assert await provider.read_file(self.environment, "applications/web") is None
        assert await provider.read_file(self.environment, "applications/none.yaml") is None
        assert list(await provider.list_files(self.environment, "applications/web/", old.sha)) == [
            path
        ]

    # --- change requests -------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_open_change_proposes_without_touching_main(self, provider: Committer) -> None:
        await self.create(provider)
        base = await provider.commit(self.request(self.add("applications/web/values.yaml")))
        application = ApplicationChange("web", ApplicationAction.PROMOTE, "bp-wordpress", "1.2.0")
        change = await provider.open_change(
            self.request(
                self.modify("applications/web/values.yaml", "promoted: true\n"),
                message="Promote web",
                actor="alice",
                applications=(application,),
            ),
            "Promote web from acme-stg",
        )
        assert change.status is ChangeStatus.OPEN
        assert change.environment == self.environment
        assert (change.title, change.author, change.revision) == (
            "Promote web from acme-stg",
            "alice",
            1,
        )
        assert change.base == base.sha
        assert change.applications == (application,)
        assert change.approvals == ()
        assert await self.head(provider) == base.sha
        path = "applications/web/values.yaml"
        assert await provider.read_file(self.environment, path) == b"x: 1\n"
        assert await provider.read_file(self.environment, path, change.head) == b"promoted: true\n"
        assert await provider.get_change(self.environment, change.id) == change
        assert list(await provider.list_changes(self.environment)) == [change]
        assert list(await provider.list_changes(self.environment, ChangeStatus.OPEN)) == [change]
        assert list(await provider.list_changes(self.environment, ChangeStatus.MERGED)) == []

    @pytest.mark.anyio
    async def test_change_ids_increase_and_lists_are_newest_first(
        self, provider: Committer
    ) -> None:
        await self.create(provider)
        first = await provider.open_change(self.request(self.add("a/one.yaml")), "One")
        second = await provider.open_change(self.request(self.add("a/two.yaml")), "Two")
        assert int(second.id) > int(first.id)
        assert [c.id for c in await provider.list_changes(self.environment)] == [
            second.id,
            first.id,
        ]

    @pytest.mark.anyio
    async def test_update_makes_a_new_revision_and_dismisses_approvals(
        self, provider: Committer
    ) -> None:
        await self.create(provider)
        change = await provider.open_change(self.request(self.add("a/one.yaml", "v: 1\n")), "One")
        approved = await provider.approve_change(
            self.environment, change.id, self.approval("bob", 1, "ops")
        )
        assert [(a.approver, a.revision) for a in approved.approvals] == [("bob", 1)]
        updated = await provider.update_change(
            change.id, self.request(self.add("a/one.yaml", "v: 2\n"), message="Second try")
        )
        assert updated.id == change.id
        assert updated.revision == 2
        assert updated.head != change.head
        assert updated.author == "alice"
        assert not [a for a in updated.approvals if a.revision == updated.revision]
        assert await provider.read_file(self.environment, "a/one.yaml", updated.head) == b"v: 2\n"
        with pytest.raises(Conflict):
            await provider.approve_change(
                self.environment, change.id, self.approval("carol", 1, "ops")
            )
        again = await provider.approve_change(
            self.environment, change.id, self.approval("carol", 2, "ops")
        )
        assert [(a.approver, a.revision) for a in again.approvals if a.revision == 2] == [
            ("carol", 2)
        ]
        assert sorted(next(iter(again.approvals)).groups) == ["ops"]

    @pytest.mark.anyio
    async def test_break_glass_reason_and_expiry_round_trip(
        self, committer_factory: CommitterFactory
    ) -> None:
        async with committer_factory() as committer:
            await self.create(committer)
            change = await committer.open_change(self.request(self.add("a/one.yaml")), "One")
            now = datetime.now(UTC).replace(microsecond=0)
            glass = Approval(
                "bob",
                1,
                now,
                frozenset({"team-sre"}),
                reason="INC-42: checkout is down",
                expires=now + timedelta(hours=4),
            )
            await committer.approve_change(self.environment, change.id, glass)
            await committer.approve_change(
                self.environment, change.id, Approval("carol", 1, now, frozenset({"ops"}))
            )
        async with committer_factory() as committer:
            stored = await committer.get_change(self.environment, change.id)
            by_approver = {approval.approver: approval for approval in stored.approvals}
            assert by_approver["bob"].reason == "INC-42: checkout is down"
            assert by_approver["bob"].expires == now + timedelta(hours=4)
            assert by_approver["bob"].groups == frozenset({"team-sre"})
            assert (by_approver["carol"].reason, by_approver["carol"].expires) == (None, None)

    @pytest.mark.anyio
    async def test_merge_applies_the_change_as_one_commit(self, provider: Committer) -> None:
        await self.create(provider)
        change = await provider.open_change(
            self.request(
                self.add("applications/web/values.yaml", "a: 1\n"),
                self.add("applications/web/kustomization.yaml", "resources: []\n"),
                message="Install web",
            ),
            "Install web",
        )
        # main moves on after the change was opened: the merge applies on top of it.
        moved = await provider.commit(self.request(self.add("applications/api/values.yaml")))
        merged = await provider.merge_change(self.environment, change.id, "carol")
        assert merged.parents == (moved.sha,)
        assert merged.trailers["Catalyst-Actor"] == "carol"
        assert await self.head(provider) == merged.sha
        assert list(await provider.list_files(self.environment, "applications/")) == [
            "applications/api/values.yaml",
            "applications/web/kustomization.yaml",
            "applications/web/values.yaml",
        ]
        record = await provider.get_change(self.environment, change.id)
        assert record.status is ChangeStatus.MERGED
        assert record.merge_commit == merged.sha
        with pytest.raises(Conflict):
            await provider.merge_change(self.environment, change.id, "carol")
        with pytest.raises(Conflict):
            await provider.update_change(change.id, self.request(self.add("b.yaml")))
        assert await self.head(provider) == merged.sha

    @pytest.mark.anyio
    async def test_merge_of_an_evaluated_revision_refuses_a_newer_one(
        self, provider: Committer
    ) -> None:
        await self.create(provider)
        change = await provider.open_change(
            self.request(self.add("applications/web/values.yaml", "a: 1\n")), "Install web"
        )
        updated = await provider.update_change(
            change.id, self.request(self.add("applications/web/values.yaml", "a: 2\n"))
        )
        before = await self.head(provider)
        with pytest.raises(Conflict) as caught:
            await provider.merge_change(self.environment, change.id, "carol", revision=1)
        assert caught.value.field == "revision"
        assert await self.head(provider) == before
        assert (await provider.get_change(self.environment, change.id)).status is (
            ChangeStatus.OPEN
        )
        merged = await provider.merge_change(
            self.environment, change.id, "carol", revision=updated.revision
        )
        assert await self.head(provider) == merged.sha

    @pytest.mark.anyio
    async def test_merge_conflict_leaves_main_and_change_unchanged(
        self, provider: Committer
    ) -> None:
        await self.create(provider)
        change = await provider.open_change(
            self.request(self.add("applications/web/values.yaml", "mine: 1\n")), "Install web"
        )
        theirs = await provider.commit(
            self.request(self.add("applications/web/values.yaml", "theirs: 1\n"))
        )
        with pytest.raises(Conflict, match=re.escape("applications/web/values.yaml")):
            await provider.merge_change(self.environment, change.id, "carol")
        assert await self.head(provider) == theirs.sha
        assert await provider.read_file(self.environment, "applications/web/values.yaml") == (
            b"theirs: 1\n"
        )
        assert await provider.get_change(self.environment, change.id) == change

    @pytest.mark.anyio
    async def test_close_change(self, provider: Committer) -> None:
        initial = await self.create(provider)
        change = await provider.open_change(self.request(self.add("a/one.yaml")), "One")
        closed = await provider.close_change(self.environment, change.id, "alice")
        assert closed.status is ChangeStatus.CLOSED
        assert (await provider.get_change(self.environment, change.id)).status is (
            ChangeStatus.CLOSED
        )
        assert list(await provider.list_changes(self.environment, ChangeStatus.OPEN)) == []
        with pytest.raises(Conflict):
            await provider.merge_change(self.environment, change.id, "alice")
        with pytest.raises(Conflict):
            await provider.approve_change(self.environment, change.id, self.approval("bob", 1))
        assert await self.head(provider) == initial.sha

    # --- durability ------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_commits_and_changes_survive_a_restart(
        self, committer_factory: CommitterFactory
    ) -> None:
        async with committer_factory() as committer:
            await self.create(committer)
            commit = await committer.commit(self.request(self.add("applications/web/values.yaml")))
            change = await committer.open_change(self.request(self.add("a/one.yaml")), "One")
            change = await committer.approve_change(
                self.environment, change.id, self.approval("bob", 1, "ops")
            )
        async with committer_factory() as committer:
            assert await committer.repository_exists(self.environment)
            assert await self.head(committer) == commit.sha
            assert await committer.read_file(self.environment, "applications/web/values.yaml")
            assert await committer.get_change(self.environment, change.id) == change
            merged = await committer.merge_change(self.environment, change.id, "carol")
            assert merged.parents == (commit.sha,)

    # --- errors ----------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_invalid_environments_and_paths_are_invalid_input(
        self, provider: Committer
    ) -> None:
        await self.create(provider)
        for environment in ("acme-staging", "acme", "Acme-dev", "../acme-dev"):
            with pytest.raises(InvalidInput):
                await provider.repository_exists(environment)
            with pytest.raises(InvalidInput):
                await provider.read_file(environment, POLICY_PATH)
        for path in ("/etc/passwd", "../outside", "a//b", ".git/config", "a/./b"):
            with pytest.raises(InvalidInput):
                await provider.read_file(self.environment, path)
            with pytest.raises(InvalidInput):
                await provider.log(self.environment, path)
        with pytest.raises(InvalidInput):
            await provider.list_files(self.environment, "../")

    @pytest.mark.anyio
    async def test_unknown_repositories_and_changes_are_not_found(
        self, provider: Committer
    ) -> None:
        other = self.other_environment
        with pytest.raises(NotFound):
            await provider.read_file(other, POLICY_PATH)
        with pytest.raises(NotFound):
            await provider.log(other)
        with pytest.raises(NotFound):
            await provider.commit(self.request(self.add("a.yaml"), environment=other))
        with pytest.raises(NotFound):
            await provider.open_change(self.request(self.add("a.yaml"), environment=other), "A")
        await self.create(provider)
        with pytest.raises(NotFound):
            await provider.get_change(self.environment, "999")
        with pytest.raises(NotFound):
            await provider.merge_change(self.environment, "999", "alice")
        with pytest.raises(NotFound):
            await provider.close_change(self.environment, "999", "alice")
        with pytest.raises(NotFound):
            await provider.approve_change(self.environment, "999", self.approval("bob", 1))
        with pytest.raises(NotFound):
            await provider.update_change("999", self.request(self.add("a.yaml")))
        with pytest.raises(NotFound):
            await provider.read_file(self.environment, POLICY_PATH, "0" * 40)


IdentityFactory = Callable[[], AbstractAsyncContextManager[IdentityProvider]]
KeyRotation = Callable[[IdentityProvider], Awaitable[None]]
# JWK members that carry private or symmetric key material (RFC 7518 §6).
PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    def encode(part: Mapping[str, Any]) -> str:
        return _b64url(json.dumps(part, separators=(",", ":"), default=str).encode())

    return f"{encode(header)}.{encode(claims)}"


class TokenMinter(abc.ABC):
    """Makes the tokens :class:`IdentityConformance` presents to the provider under test.

    An implementation translates a Principal into its provider's claims (``claims``) and signs
    with the key the provider trusts (``sign``, ``public_key_pem``). The Keycloak plugins do it
    with their fake realm's keys. The rest (foreign keys, ``alg: none``, HMAC with the public key)
    is built here on top of those three.

    :cvar algorithm: the JWS algorithm the provider accepts (``ES256``, ``EdDSA``, ``RS256``).
    """

    algorithm: ClassVar[str]

    @abc.abstractmethod
    def claims(
        self,
        *,
        subject: str,
        organization: str | None,
        roles: Sequence[str],
        groups: Sequence[str] = (),
        environments: Sequence[str] = (),
        lifetime: timedelta = timedelta(minutes=5),
    ) -> dict[str, Any]:
        """A valid payload for this Principal, with ``iss``, ``aud``, ``sub``, ``exp``, ``nbf``,
        ``iat`` and ``jti`` as NumericDate integers / strings the tests may change."""

    @abc.abstractmethod
    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """``claims`` signed as they are by the provider's current trusted key (``kid`` set)."""

    @abc.abstractmethod
    def public_key_pem(self) -> bytes:
        """The PEM of the current trusted public key (for the HMAC key-confusion test)."""

    def mint(self, **principal: Any) -> str:
        """A valid token: :meth:`sign` over :meth:`claims`."""
        return self.sign(self.claims(**principal))

    def foreign_key(self) -> Any:
        """A fresh private key of :attr:`algorithm` that the provider has never seen."""
        if self.algorithm.startswith("ES"):
            return ec.generate_private_key(ec.SECP256R1())
        if self.algorithm == "EdDSA":
            return ed25519.Ed25519PrivateKey.generate()
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign_with(
        self,
        claims: Mapping[str, Any],
        key: Any,
        *,
        algorithm: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """``claims`` signed by any ``key`` with any PyJWT algorithm (for negative tests)."""
        return jwt.encode(
            dict(claims),
            key,
            algorithm=algorithm or self.algorithm,
            headers=dict(headers) if headers else None,
        )

    def unsigned(self, claims: Mapping[str, Any], *, kid: str | None) -> str:
        """An ``alg: none`` token (empty signature)."""
        header = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
        return _segments(header, claims) + "."

    def hmac_with_public_key(self, claims: Mapping[str, Any], *, kid: str | None) -> str:
        """HS256 keyed with the trusted public key's PEM: the classic algorithm confusion."""
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        signing_input = _segments(header, claims)
        mac = hmac.new(self.public_key_pem(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(mac)}"


class IdentityConformance(SlotConformance):
    """The identity slot: bearer tokens to Principals, and every bad token refused.

    Override ``identity_factory``: a callable returning an async context manager that yields a
    *started* provider over the same storage (keys, realm) every time it is called, and closes it
    on exit. Override ``token_minter``: a :class:`TokenMinter` for the provider it is given. And
    override ``key_rotation``: a coroutine function that rotates the provider's signing key (after
    it, ``token_minter`` signs with the new key).

    Every refusal is :class:`~catalyst_kernel.errors.Unauthenticated` and its message never
    contains the token.
    """

    interface = IdentityProvider
    organization: ClassVar[str] = "acme"

    @pytest.fixture
    def identity_factory(self) -> IdentityFactory:
        raise NotImplementedError(f"{type(self).__name__} must override 'identity_factory'")

    @pytest.fixture
    async def provider(self, identity_factory: IdentityFactory) -> AsyncIterator[IdentityProvider]:
        async with identity_factory() as identity:
            yield identity

    @pytest.fixture
    def token_minter(self, provider: IdentityProvider) -> TokenMinter:
        raise NotImplementedError(f"{type(self).__name__} must override 'token_minter'")

    @pytest.fixture
    def key_rotation(self) -> KeyRotation:
        raise NotImplementedError(f"{type(self).__name__} must override 'key_rotation'")

    # --- helpers ---------------------------------------------------------------------------------

    def developer_claims(self, minter: TokenMinter, **changes: Any) -> dict[str, Any]:
        claims = minter.claims(
            subject="alice",
            organization=self.organization,
            roles=["org-developer"],
            groups=["team-web"],
            environments=[f"{self.organization}-dev"],
        )
        claims.update(changes)
        return claims

    async def assert_refused(self, provider: IdentityProvider, token: str) -> None:
        with pytest.raises(Unauthenticated) as caught:
            await provider.authenticate(token)
        message = str(caught.value)
        assert message, "a refusal says why"
        for part in token.split("."):
            if len(part) >= 8:
                assert part not in message, "the refusal echoes the token"

    @staticmethod
    def kid(token: str) -> str | None:
        kid = jwt.get_unverified_header(token).get("kid")
        return kid if isinstance(kid, str) else None

    # --- accepted --------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_check_reports_ready(self, provider: IdentityProvider) -> None:
        assert (await provider.check()).ready

    @pytest.mark.anyio
    async def test_valid_token_yields_its_principal(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter)
        principal = await provider.authenticate(token_minter.sign(claims))
        assert principal.subject == "alice"
        assert principal.organization == self.organization
        assert principal.roles == frozenset({Role.ORG_DEVELOPER})
        assert principal.groups == frozenset({"team-web"})
        assert principal.environments == frozenset({f"{self.organization}-dev"})
        assert principal.issuer == claims["iss"]
        assert principal.expires_at is not None
        assert abs(principal.expires_at.timestamp() - claims["exp"]) < 1

    @pytest.mark.anyio
    async def test_sovereign_admin_needs_no_organization(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        token = token_minter.mint(subject="root", organization=None, roles=["sovereign-admin"])
        principal = await provider.authenticate(token)
        assert principal.is_sovereign_admin
        assert principal.organization is None

    @pytest.mark.anyio
    async def test_provisioning_an_organization_is_idempotent(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        organization = Organization(self.organization)
        await provider.provision_organization(organization)
        await provider.provision_organization(organization)
        principal = await provider.authenticate(
            token_minter.sign(self.developer_claims(token_minter))
        )
        assert principal.organization == self.organization

    @pytest.mark.anyio
    async def test_tokens_survive_a_restart(
        self,
        provider: IdentityProvider,
        token_minter: TokenMinter,
        identity_factory: IdentityFactory,
    ) -> None:
        token = token_minter.sign(self.developer_claims(token_minter))
        await provider.close()
        async with identity_factory() as again:
            assert (await again.authenticate(token)).subject == "alice"

    # --- refused ---------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_expired_token_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        now = int(time.time())
        claims = self.developer_claims(token_minter, iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        await self.assert_refused(provider, token_minter.sign(claims))

    @pytest.mark.anyio
    async def test_token_not_yet_valid_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        now = int(time.time())
        claims = self.developer_claims(token_minter, nbf=now + 3600, exp=now + 7200)
        await self.assert_refused(provider, token_minter.sign(claims))

    @pytest.mark.anyio
    @pytest.mark.parametrize("claim", ["exp", "sub", "iss", "aud"])
    async def test_token_without_a_required_claim_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter, claim: str
    ) -> None:
        claims = self.developer_claims(token_minter)
        del claims[claim]
        await self.assert_refused(provider, token_minter.sign(claims))

    @pytest.mark.anyio
    async def test_token_signed_by_another_key_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter)
        trusted_kid = self.kid(token_minter.sign(claims))
        key = token_minter.foreign_key()
        for headers in ({"kid": trusted_kid} if trusted_kid else {}, {"kid": "unknown-key"}):
            await self.assert_refused(
                provider, token_minter.sign_with(claims, key, headers=headers)
            )

    @pytest.mark.anyio
    async def test_token_from_another_issuer_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter, iss="https://evil.example/realms/acme")
        await self.assert_refused(provider, token_minter.sign(claims))

    @pytest.mark.anyio
    async def test_token_for_another_audience_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter, aud="someone-else")
        await self.assert_refused(provider, token_minter.sign(claims))

    @pytest.mark.anyio
    async def test_alg_none_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter)
        kid = self.kid(token_minter.sign(claims))
        await self.assert_refused(provider, token_minter.unsigned(claims, kid=kid))
        await self.assert_refused(provider, token_minter.unsigned(claims, kid=None))

    @pytest.mark.anyio
    async def test_hmac_signed_with_the_public_key_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        claims = self.developer_claims(token_minter)
        kid = self.kid(token_minter.sign(claims))
        await self.assert_refused(provider, token_minter.hmac_with_public_key(claims, kid=kid))

    @pytest.mark.anyio
    async def test_tampered_payload_is_refused(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        header, _payload, signature = token_minter.sign(self.developer_claims(token_minter)).split(
            "."
        )
        forged = self.developer_claims(token_minter, roles=["sovereign-admin"])
        forged_payload = _segments({}, forged).split(".")[1]
        await self.assert_refused(provider, f"{header}.{forged_payload}.{signature}")

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "garbage",
        ["", "garbage", "a.b.c", "Bearer x.y.z", "..", "eyJhbGciOiJFUzI1NiJ9..", "x" * 100_000],
    )
    async def test_garbage_is_refused(self, provider: IdentityProvider, garbage: str) -> None:
        await self.assert_refused(provider, garbage)

    # --- keys ------------------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_jwks_holds_public_keys_only(
        self, provider: IdentityProvider, token_minter: TokenMinter
    ) -> None:
        document = await provider.jwks()
        keys = document["keys"]
        for jwk in keys:
            assert not PRIVATE_JWK_MEMBERS & set(jwk), f"private material in {jwk['kid']}"
            assert jwk["use"] == "sig"
            assert jwk["alg"] == token_minter.algorithm
            assert jwk["kid"]
        if keys:
            kid = self.kid(
                token_minter.mint(subject="a", organization="acme", roles=["org-viewer"])
            )
            assert kid in {jwk["kid"] for jwk in keys}

    @pytest.mark.anyio
    async def test_tokens_of_the_previous_key_verify_after_rotation(
        self,
        provider: IdentityProvider,
        token_minter: TokenMinter,
        key_rotation: KeyRotation,
    ) -> None:
        before = token_minter.sign(self.developer_claims(token_minter))
        await key_rotation(provider)
        after = token_minter.sign(self.developer_claims(token_minter))
        assert self.kid(after) != self.kid(before), "new tokens are signed by the new key"
        assert (await provider.authenticate(before)).subject == "alice"
        assert (await provider.authenticate(after)).subject == "alice"
        kids = {jwk["kid"] for jwk in (await provider.jwks())["keys"]}
        if kids:
            assert {self.kid(before), self.kid(after)} <= kids


SecretsFactory = Callable[[], AbstractAsyncContextManager[SecretBackend]]

# A value no test writes anywhere except as a secret: finding it in an error, a log line or a
# repr means a secret leaked.
PLANTED_SECRET: Final = "planted-S3cr3t-value-7c1d94e2"


class SecretsConformance(SlotConformance):
    """The secrets slot: versioned values at ``org/{org}/env/{env_type}/{app}/{secret}``.

    Override ``secrets_factory``: a callable returning an async context manager that yields a
    *started* backend over the same storage every time it is called (that is how the suite
    restarts it), and closes it on exit. Each test gets fresh storage.

    Values map text to text and a secret has at least one (anything else is ``InvalidInput``);
    each write returns a version greater than the last; no value may reach an error, a log
    record or a ``repr`` (the suite plants :data:`PLANTED_SECRET` and looks for it).
    """

    interface = SecretBackend
    timeout: ClassVar[float] = 60.0

    @pytest.fixture
    def secrets_factory(self) -> SecretsFactory:
        raise NotImplementedError(f"{type(self).__name__} must override 'secrets_factory'")

    @pytest.fixture
    async def provider(self, secrets_factory: SecretsFactory) -> AsyncIterator[SecretBackend]:
        async with secrets_factory() as backend:
            yield backend

    @staticmethod
    def path(application: str = "web", secret: str = "db", env_type: str = "dev") -> SecretPath:
        """A secret path in the Organization ``acme``."""
        return SecretPath("acme", env_type, application, secret)

    @staticmethod
    def assert_no_secret(*texts: str) -> None:
        """Fail if any of ``texts`` holds :data:`PLANTED_SECRET`."""
        for text in texts:
            assert PLANTED_SECRET not in text, "a secret value leaked"

    @pytest.mark.anyio
    async def test_check_reports_ready(self, provider: SecretBackend) -> None:
        assert (await provider.check()).ready

    @pytest.mark.anyio
    async def test_write_then_read(self, provider: SecretBackend) -> None:
        path = self.path()
        assert not await provider.exists(path)
        version = await provider.write(path, {"username": "web", "password": PLANTED_SECRET})
        assert version >= 1
        assert await provider.exists(path)
        assert dict(await provider.read(path)) == {"username": "web", "password": PLANTED_SECRET}

    @pytest.mark.anyio
    async def test_rotation_overwrites_and_the_version_increases(
        self, provider: SecretBackend
    ) -> None:
        path = self.path()
        first = await provider.write(path, {"password": "one", "username": "web"})
        second = await provider.write(path, {"password": "two"})
        third = await provider.write(path, {"password": "three"})
        assert first < second < third
        assert dict(await provider.read(path)) == {"password": "three"}

    @pytest.mark.anyio
    async def test_paths_are_separate(self, provider: SecretBackend) -> None:
        await provider.write(self.path(), {"password": "dev"})
        await provider.write(self.path(env_type="prod"), {"password": "prod"})
        await provider.write(self.path(application="api"), {"password": "api"})
        assert dict(await provider.read(self.path())) == {"password": "dev"}
        assert dict(await provider.read(self.path(env_type="prod"))) == {"password": "prod"}
        assert not await provider.exists(self.path(secret="other"))

    @pytest.mark.anyio
    async def test_reading_a_missing_secret_is_not_found(self, provider: SecretBackend) -> None:
        with pytest.raises(NotFound):
            await provider.read(self.path())

    @pytest.mark.anyio
    async def test_delete_removes_every_version_and_is_idempotent(
        self, provider: SecretBackend
    ) -> None:
        path = self.path()
        await provider.write(path, {"password": "one"})
        await provider.write(path, {"password": "two"})
        await provider.delete(path)
        assert not await provider.exists(path)
        with pytest.raises(NotFound):
            await provider.read(path)
        await provider.delete(path)
        await provider.delete(self.path(secret="never-written"))
        await provider.write(path, {"password": "again"})
        assert dict(await provider.read(path)) == {"password": "again"}

    @pytest.mark.anyio
    async def test_values_must_be_text_and_never_appear_in_errors(
        self, provider: SecretBackend, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        await provider.write(self.path(), {"password": PLANTED_SECRET})
        bad_values: list[Any] = [
            {"password": PLANTED_SECRET, "port": 5432},
            {"password": PLANTED_SECRET, "extra": None},
            {},
        ]
        for values in bad_values:
            with pytest.raises(InvalidInput) as caught:
                await provider.write(self.path(secret="other"), values)
            self.assert_no_secret(str(caught.value), repr(caught.value))
        with pytest.raises(NotFound) as missing:
            await provider.read(self.path(secret="other"))
        self.assert_no_secret(str(missing.value), repr(missing.value))
        self.assert_no_secret(caplog.text, repr(provider), str(provider))
        assert dict(await provider.read(self.path())) == {"password": PLANTED_SECRET}

    @pytest.mark.anyio
    async def test_concurrent_writes_get_distinct_versions(self, provider: SecretBackend) -> None:
        path = self.path()
        written: dict[int, str] = {}

        async def write(n: int) -> None:
            written[await provider.write(path, {"password": f"value-{n}"})] = f"value-{n}"

        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                for n in range(20):
                    tasks.start_soon(write, n)
        assert len(written) == 20, "every write got its own version"
        assert dict(await provider.read(path)) == {"password": written[max(written)]}

    @pytest.mark.anyio
    async def test_secrets_survive_a_restart(self, secrets_factory: SecretsFactory) -> None:
        async with secrets_factory() as backend:
            first = await backend.write(self.path(), {"password": PLANTED_SECRET})
        async with secrets_factory() as backend:
            assert await backend.exists(self.path())
            assert dict(await backend.read(self.path())) == {"password": PLANTED_SECRET}
            assert await backend.write(self.path(), {"password": "next"}) > first

    @pytest.mark.anyio
    async def test_store_reference_is_one_external_secrets_provider(
        self, provider: SecretBackend
    ) -> None:
        await provider.write(self.path(), {"password": PLANTED_SECRET})
        reference = await provider.store_reference("acme", EnvType.DEV)
        assert len(reference) == 1, "spec.provider names exactly one provider"
        text = json.dumps(reference)
        self.assert_no_secret(text)


class EventSourceConformance(SlotConformance):
    """Event sources publish valid events and stop promptly when cancelled.

    :cvar expected_events: how many events the source must publish within ``timeout`` seconds.
    """

    interface = EventSource
    expected_events: ClassVar[int] = 1
    timeout: ClassVar[float] = 10.0

    def test_has_a_name(self, provider: EventSource) -> None:
        assert isinstance(provider.name, str)
        assert provider.name

    @pytest.mark.anyio
    async def test_run_publishes_valid_events_until_cancelled(self, provider: EventSource) -> None:
        publisher = RecordingPublisher()
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(provider.run, publisher)
                published = await publisher.wait_for(self.expected_events)
                tasks.cancel_scope.cancel()
        for _environment, event in published:
            assert event.subject, "events carry the subject below ws.<env>"
            assert event.type
            assert event.source

    @pytest.mark.anyio
    async def test_distinct_events_have_distinct_ids(self, provider: EventSource) -> None:
        publisher = RecordingPublisher()
        with anyio.fail_after(self.timeout):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(provider.run, publisher)
                published = await publisher.wait_for(max(2, self.expected_events))
                tasks.cancel_scope.cancel()
        ids = [event.id for _, event in published]
        assert len(ids) == len(set(ids))


class ProjectionConformance(SlotConformance):
    """Projections are deterministic and idempotent over a sample of events.

    Override the ``events`` fixture with events the projection handles.
    """

    interface = Projection

    @pytest.fixture
    def events(self) -> Sequence[Event]:
        raise NotImplementedError(f"{type(self).__name__} must override the 'events' fixture")

    async def _project(self, provider: Projection, events: Sequence[Event], times: int) -> Any:
        view = MemoryProjectionView()
        for event in events:
            if provider.handles(event):
                for _ in range(times):
                    await provider.apply(event, view)
        return view.state

    def test_handles_some_sample_event(self, provider: Projection, events: Sequence[Event]) -> None:
        assert any(provider.handles(event) for event in events)

    @pytest.mark.anyio
    async def test_applying_an_event_twice_changes_nothing(
        self, provider: Projection, events: Sequence[Event]
    ) -> None:
        assert await self._project(provider, events, 2) == await self._project(provider, events, 1)

    @pytest.mark.anyio
    async def test_state_is_json(self, provider: Projection, events: Sequence[Event]) -> None:
        state = await self._project(provider, events, 1)
        assert json.loads(json.dumps(state)) == state


class ManifestComposerConformance(SlotConformance):
    """Composers are deterministic and write only safe repository paths.

    Override the ``request`` fixture with a :class:`CompositionRequest` the composer handles.
    """

    interface = ManifestComposer

    @pytest.fixture
    def composition(self) -> CompositionRequest:
        raise NotImplementedError(f"{type(self).__name__} must override the 'composition' fixture")

    @pytest.mark.anyio
    async def test_composition_is_deterministic(
        self, provider: ManifestComposer, composition: CompositionRequest
    ) -> None:
        first = await provider.compose(composition)
        assert list(first) == list(await provider.compose(composition))
        assert all(isinstance(change, FileChange) for change in first)

    @pytest.mark.anyio
    async def test_files_stay_inside_the_application_directory(
        self, provider: ManifestComposer, composition: CompositionRequest
    ) -> None:
        for change in await provider.compose(composition):
            assert change.path.startswith(f"applications/{composition.application.name}/") or (
                change.path.startswith(("flux-system/", "policies/"))
            ), change.path


class RuleKindConformance(SlotConformance):
    """Rule kinds validate their parameters and answer with a verdict for their kind.

    Override ``rule`` (a valid rule of the kind), ``bad_rule`` (an invalid one) and ``context``.
    """

    interface = RuleKind

    @pytest.fixture
    def rule(self) -> PolicyRule:
        raise NotImplementedError(f"{type(self).__name__} must override the 'rule' fixture")

    @pytest.fixture
    def bad_rule(self) -> PolicyRule:
        raise NotImplementedError(f"{type(self).__name__} must override the 'bad_rule' fixture")

    @pytest.fixture
    def context(self) -> RuleContext:
        raise NotImplementedError(f"{type(self).__name__} must override the 'context' fixture")

    def test_valid_rule_is_accepted(self, provider: RuleKind, rule: PolicyRule) -> None:
        assert rule.kind == provider.kind
        provider.validate(rule)

    def test_invalid_rule_is_rejected_as_invalid_input(
        self, provider: RuleKind, bad_rule: PolicyRule
    ) -> None:
        with pytest.raises(InvalidInput):
            provider.validate(bad_rule)

    @pytest.mark.anyio
    async def test_verdict_names_the_kind_and_explains(
        self, provider: RuleKind, rule: PolicyRule, context: RuleContext
    ) -> None:
        verdict = await provider.evaluate(rule, context)
        assert isinstance(verdict, RuleVerdict)
        assert verdict.kind == provider.kind
        assert verdict.summary


class ApiExtensionConformance(SlotConformance):
    """API extensions have a name and at least one route handler."""

    interface = ApiExtension

    def test_has_route_handlers(self, provider: ApiExtension) -> None:
        assert provider.name
        assert list(provider.route_handlers())


class LifecycleConformance(SlotConformance):
    """Lifecycle handlers start and stop within a bounded time."""

    interface = LifecycleHandler
    timeout: ClassVar[float] = 10.0

    @pytest.mark.anyio
    async def test_starts_and_stops(self, provider: LifecycleHandler) -> None:
        with anyio.fail_after(self.timeout):
            await provider.startup()
            await provider.shutdown()
