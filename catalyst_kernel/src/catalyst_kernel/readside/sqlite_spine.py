"""The embedded spine: the event log and KV buckets in one SQLite database (WAL mode).

Durable across restarts and safe with several processes writing at once (SQLite's write lock
serialises them; ``busy_timeout`` bounds the wait). Within a process, writers and watchers are
woken directly; other processes' writes are seen by polling every ``poll_interval`` seconds.

Differences from JetStream, by design: deduplication by event id is permanent, not windowed; and
``put_many`` is atomic.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.lowlevel

from catalyst_kernel.errors import BackendUnavailable, Conflict, InvalidInput
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.readside.codec import decode_stored, encode
from catalyst_kernel.readside.spine import Delivery, KvEntry, KvOperation, Published
from catalyst_kernel.readside.subjects import SUBJECT_PREFIX, check_kv_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    from catalyst_kernel.model.event import Event

__all__ = ["DIRECTORY_BUCKET", "SqliteSpine"]

DIRECTORY_BUCKET: Final = "catalyst-directory"
"""The directory's bucket: ``catalyst`` is a reserved Organization name, so no Environment is
ever called this."""

T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS streams (env TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    env TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, subject TEXT NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (env, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (env, id);
CREATE TABLE IF NOT EXISTS consumers (
    env TEXT NOT NULL, name TEXT NOT NULL, acked INTEGER NOT NULL, PRIMARY KEY (env, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (env TEXT PRIMARY KEY, last_revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (
    env TEXT NOT NULL, revision INTEGER NOT NULL, key TEXT NOT NULL, op TEXT NOT NULL,
    value BLOB, created TEXT NOT NULL, PRIMARY KEY (env, revision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_key ON kv (env, key, revision);
CREATE TABLE IF NOT EXISTS kv_head (
    env TEXT NOT NULL, key TEXT NOT NULL, revision INTEGER NOT NULL, op TEXT NOT NULL,
    PRIMARY KEY (env, key)
) WITHOUT ROWID;
"""


_FAST_BUSY_MS: Final = 20
_PUT: Final = KvOperation.PUT.value
_DELETE: Final = KvOperation.DELETE.value


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _entry(key: str, revision: int, op: str, value: bytes | None, created: str) -> KvEntry:
    return KvEntry(key, revision, KvOperation(op), value, datetime.fromisoformat(created))


class _Signal:
    """Wakes every waiter when something was written in this process."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self, at_most: float) -> None:
        with anyio.move_on_after(at_most):
            await self._event.wait()


class SqliteSpine:
    """The ``embedded`` spine provider.

    :param path: the database file (created with its folder).
    :param history: revisions kept per KV key, delete markers included (JetStream allows 1-64).
    :param poll_interval: how often waiters look for other processes' writes, in seconds.
    :param busy_timeout: how long a write waits for another process's lock, in seconds.
    """

    def __init__(
        self,
        path: Path,
        *,
        history: int = 64,
        poll_interval: float = 0.2,
        busy_timeout: float = 30.0,
    ) -> None:
        if not 1 <= history <= 64:
            raise InvalidInput(f"history must be 1..64, got {history}")
        self.path = path
        self.history = history
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._thread_lock = threading.Lock()
        self._signal = _Signal()
        self._buckets: dict[str, _KeyValue] = {}

    # ---------------------------------------------------------------------------------------------
    # Service
    # ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._connection is not None:
            return

        def open_database() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Opening runs in a worker thread, so it may wait the full busy timeout for
            # another process; afterwards statements run on the event loop (see _run).
            connection = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            connection.execute(f"PRAGMA busy_timeout = {_FAST_BUSY_MS}")
            return connection

        try:
            self._connection = await anyio.to_thread.run_sync(open_database)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(f"embedded spine: cannot open {self.path}: {exc}") from None

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # A worker thread may hold the lock while it waits on another process: wait for it
            # in a thread too, never on the event loop.
            def close_connection() -> None:
                with self._thread_lock:
                    connection.close()

            await anyio.to_thread.run_sync(close_connection)
        self._signal.notify()

    async def check(self) -> Readiness:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
        except BackendUnavailable as exc:
            return Readiness.unavailable(str(exc))
        return Readiness.ok()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        # Fast path: run on the event loop with a short busy timeout. SQLite statements here take
        # microseconds, far less than a hop to a worker thread. Only when another process holds
        # the write lock does the work move to a thread and wait up to busy_timeout there.
        connection = self._connection
        if connection is None:
            raise BackendUnavailable("embedded spine is not started (or was closed)")
        if self._thread_lock.acquire(blocking=False):
            try:
                result = work(connection)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise BackendUnavailable(f"embedded spine: {exc}") from None
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"embedded spine: {exc}") from None
            else:
                return result
            finally:
                self._thread_lock.release()

        def call() -> T:
            with self._thread_lock:
                if self._connection is None:
                    raise BackendUnavailable("embedded spine was closed")
                connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                try:
                    return work(connection)
                finally:
                    connection.execute(f"PRAGMA busy_timeout = {_FAST_BUSY_MS}")

        try:
            return await anyio.to_thread.run_sync(call)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"embedded spine: {exc}") from None

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        result = await self._run(transaction)
        self._signal.notify()
        # Inline statements never yield; a write is a fair point to let other tasks run.
        await anyio.lowlevel.checkpoint()
        return result

    # ---------------------------------------------------------------------------------------------
    # Event log
    # ---------------------------------------------------------------------------------------------

    async def publish(self, environment: str, event: Event) -> Published:
        check_environment_name(environment)
        body = encode(event)
        subject = f"{SUBJECT_PREFIX}.{environment}.{event.subject or ''}".rstrip(".")

        def append(db: sqlite3.Connection) -> Published:
            existing = db.execute(
                "SELECT seq FROM events WHERE env = ? AND id = ?", (environment, event.id)
            ).fetchone()
            if existing is not None:
                return Published(existing[0], duplicate=True)
            row = db.execute(
                "INSERT INTO streams (env, last_seq) VALUES (?, 1) ON CONFLICT (env) "
                "DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                (environment,),
            ).fetchone()
            db.execute(
                "INSERT INTO events (env, seq, id, subject, body) VALUES (?, ?, ?, ?, ?)",
                (environment, row[0], event.id, subject, body),
            )
            return Published(row[0])

        return await self._write(append)

    async def read(self, environment: str, after: int = 0, limit: int = 1000) -> Sequence[Delivery]:
        check_environment_name(environment)
        rows = await self._run(
            lambda db: db.execute(
                "SELECT seq, body FROM events WHERE env = ? AND seq > ? ORDER BY seq LIMIT ?",
                (environment, after, limit),
            ).fetchall()
        )
        return [Delivery(environment, seq, decode_stored(body)) for seq, body in rows]

    async def consumer(self, environment: str, durable: str) -> _Consumer:
        check_environment_name(environment)
        if not durable or not durable.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"consumer name {durable!r} must be letters, digits, '-' or '_'")
        acked = await self._write(
            lambda db: db.execute(
                "INSERT INTO consumers (env, name, acked) VALUES (?, ?, 0) "
                "ON CONFLICT (env, name) DO UPDATE SET acked = acked RETURNING acked",
                (environment, durable),
            ).fetchone()[0]
        )
        return _Consumer(self, environment, durable, acked)

    async def environments(self) -> Sequence[str]:
        rows = await self._run(
            lambda db: db.execute("SELECT env FROM streams ORDER BY env").fetchall()
        )
        return [row[0] for row in rows]

    # ---------------------------------------------------------------------------------------------
    # KV
    # ---------------------------------------------------------------------------------------------

    async def key_value(self, environment: str) -> _KeyValue:
        check_environment_name(environment)
        return await self._bucket(environment)

    async def directory(self) -> _KeyValue:
        return await self._bucket(DIRECTORY_BUCKET)

    async def _bucket(self, environment: str) -> _KeyValue:
        bucket = self._buckets.get(environment)
        if bucket is None:
            await self._write(
                lambda db: db.execute(
                    "INSERT INTO buckets (env, last_revision) VALUES (?, 0) "
                    "ON CONFLICT (env) DO NOTHING",
                    (environment,),
                )
            )
            bucket = self._buckets.setdefault(environment, _KeyValue(self, environment))
        return bucket


class _Consumer:
    def __init__(self, spine: SqliteSpine, environment: str, name: str, acked: int) -> None:
        self._spine = spine
        self._environment = environment
        self._name = name
        self._delivered = acked

    async def fetch(self, batch: int, max_wait: float) -> Sequence[Delivery]:
        if batch < 1:
            raise InvalidInput(f"batch must be positive, got {batch}")
        with anyio.move_on_after(max_wait):
            while True:
                deliveries = await self._spine.read(self._environment, self._delivered, batch)
                if deliveries:
                    self._delivered = deliveries[-1].sequence
                    return deliveries
                await self._spine._signal.wait(self._spine.poll_interval)
        return []

    async def ack(self, delivery: Delivery) -> None:
        if delivery.environment != self._environment:
            raise InvalidInput(
                f"delivery of {delivery.environment} acknowledged on {self._environment}"
            )
        await self._spine._write(
            lambda db: db.execute(
                "UPDATE consumers SET acked = max(acked, ?) WHERE env = ? AND name = ?",
                (delivery.sequence, self._environment, self._name),
            )
        )


class _KeyValue:
    def __init__(self, spine: SqliteSpine, environment: str) -> None:
        self._spine = spine
        self._environment = environment

    def _apply(self, db: sqlite3.Connection, items: Sequence[tuple[str, bytes | None]]) -> int:
        """Write ``items`` in order inside the caller's transaction; return the last revision.

        One statement of each kind for the whole batch (``executemany``), not four per key:
        the revisions are consecutive, so the bucket's counter moves once. A key written twice
        ends with its last write in ``kv_head`` (rows apply in order), and pruning each key once
        after all inserts keeps the same newest ``history`` revisions as pruning after each.
        """
        env = self._environment
        last: int = db.execute(
            "UPDATE buckets SET last_revision = last_revision + ? WHERE env = ? "
            "RETURNING last_revision",
            (len(items), env),
        ).fetchone()[0]
        first = last - len(items) + 1
        created = _now()
        rows = [
            (env, first + index, key, _PUT if value is not None else _DELETE, value, created)
            for index, (key, value) in enumerate(items)
        ]
        db.executemany(
            "INSERT INTO kv (env, revision, key, op, value, created) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany(
            "INSERT INTO kv_head (env, key, revision, op) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (env, key) DO UPDATE SET revision = excluded.revision, op = excluded.op",
            [(env, key, revision, op) for env, revision, key, op, _, _ in rows],
        )
        history = self._spine.history
        db.executemany(
            "DELETE FROM kv WHERE env = ?1 AND key = ?2 AND revision <= ("
            "  SELECT revision FROM kv WHERE env = ?1 AND key = ?2"
            "  ORDER BY revision DESC LIMIT 1 OFFSET ?3)",
            [(env, key, history) for key in dict.fromkeys(key for key, _ in items)],
        )
        return last

    async def get(self, key: str) -> KvEntry | None:
        check_kv_key(key)
        row = await self._spine._run(
            lambda db: db.execute(
                "SELECT kv.revision, kv.op, kv.value, kv.created FROM kv_head "
                "JOIN kv ON kv.env = kv_head.env AND kv.revision = kv_head.revision "
                "WHERE kv_head.env = ? AND kv_head.key = ?",
                (self._environment, key),
            ).fetchone()
        )
        if row is None or row[1] == KvOperation.DELETE.value:
            return None
        return _entry(key, *row)

    async def put(self, key: str, value: bytes) -> int:
        return await self.put_many([(key, value)])

    async def create(self, key: str, value: bytes) -> int:
        check_kv_key(key)
        if not isinstance(value, bytes):
            raise InvalidInput(f"KV values are bytes, got {type(value).__name__} for {key!r}")

        def create(db: sqlite3.Connection) -> int:
            head = db.execute(
                "SELECT op FROM kv_head WHERE env = ? AND key = ?", (self._environment, key)
            ).fetchone()
            if head is not None and head[0] == _PUT:
                raise Conflict(f"{key!r} already exists")
            return self._apply(db, [(key, value)])

        return await self._spine._write(create)

    async def delete(self, key: str) -> int:
        return await self.put_many([(key, None)])

    async def put_many(self, items: Sequence[tuple[str, bytes | None]]) -> int:
        for key, value in items:
            check_kv_key(key)
            if value is not None and not isinstance(value, bytes):
                raise InvalidInput(f"KV values are bytes, got {type(value).__name__} for {key!r}")
        if not items:
            raise InvalidInput("put_many needs at least one item")

        return await self._spine._write(lambda db: self._apply(db, items))

    async def revision(self) -> int:
        row = await self._spine._run(
            lambda db: db.execute(
                "SELECT last_revision FROM buckets WHERE env = ?", (self._environment,)
            ).fetchone()
        )
        return int(row[0]) if row else 0

    async def history(self, key: str) -> Sequence[KvEntry]:
        check_kv_key(key)
        rows = await self._spine._run(
            lambda db: db.execute(
                "SELECT revision, op, value, created FROM kv WHERE env = ? AND key = ? "
                "ORDER BY revision",
                (self._environment, key),
            ).fetchall()
        )
        return [_entry(key, *row) for row in rows]

    async def snapshot(self, prefix: str = "") -> tuple[int, Sequence[KvEntry]]:
        def read(db: sqlite3.Connection) -> tuple[int, list[Any]]:
            db.execute("BEGIN")
            try:
                revision = db.execute(
                    "SELECT last_revision FROM buckets WHERE env = ?", (self._environment,)
                ).fetchone()
                rows = db.execute(
                    "SELECT kv.key, kv.revision, kv.op, kv.value, kv.created FROM kv_head "
                    "JOIN kv ON kv.env = kv_head.env AND kv.revision = kv_head.revision "
                    "WHERE kv_head.env = ? AND kv_head.op = 'put' "
                    "AND kv_head.key >= ? AND kv_head.key < ? ORDER BY kv_head.key",
                    (self._environment, prefix, prefix + "\U0010ffff"),
                ).fetchall()
            finally:
                db.execute("COMMIT")
            return (revision[0] if revision else 0), rows

        revision, rows = await self._spine._run(read)
        return revision, [_entry(*row) for row in rows]

    async def changes(self, after: int, limit: int) -> Sequence[KvEntry]:
        rows = await self._spine._run(
            lambda db: db.execute(
                "SELECT key, revision, op, value, created FROM kv WHERE env = ? AND revision > ? "
                "ORDER BY revision LIMIT ?",
                (self._environment, after, limit),
            ).fetchall()
        )
        return [_entry(*row) for row in rows]

    async def watch(self, from_revision: int = 0) -> AsyncIterator[KvEntry]:
        revision = from_revision
        while True:
            entries = await self.changes(revision, 512)
            for entry in entries:
                yield entry
            if entries:
                revision = entries[-1].revision
            else:
                await self._spine._signal.wait(self._spine.poll_interval)
