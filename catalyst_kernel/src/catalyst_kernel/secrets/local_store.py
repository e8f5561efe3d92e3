"""The embedded secret backend: values encrypted at rest in a SQLite file.

Storage
    ``<directory>/secrets.db`` (SQLite, WAL) holds one row per version of each secret, keyed by
    its SPEC §4 path ``org/{org}/env/{env_type}/{app}/{secret}``. The values of a version are
    JSON, encrypted with AES-256-GCM under a random 96-bit nonce; the path and version are the
    associated data, so a row copied to another path or version fails to decrypt. Paths and
    version numbers are not secret and are stored in clear.

The key
    ``<directory>/key`` (or ``key_file``) holds 32 random bytes, base64-encoded, created on first
    start with mode 0600. The store refuses to start when the key file is readable or writable
    by group or others, or owned by another user. Keeping the key on another volume than the
    database (``secrets_key_file``) is what makes the encryption worth having: a copy of the
    data directory alone reveals nothing. A canary encrypted at first start detects a key that
    does not belong to the store.

Versions
    Every write adds a version (1, 2, 3 … per path, never reused, not even after a delete) and
    keeps the last ``history`` versions; reads return the latest. A delete removes every
    version.

Secrets never leave through errors: messages name paths, keys and types, never values, and
nothing here logs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from catalyst_kernel.errors import BackendUnavailable, InvalidInput, NotFound
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import EnvType, check_env_type, check_organization_name
from catalyst_kernel.secrets.backend import SecretPath

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ["DEFAULT_TOKEN_SECRET", "LocalSecretStore"]

T = TypeVar("T")

DEFAULT_TOKEN_SECRET: Final = "catalyst-secret-store-token"
_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_CANARY: Final = b"catalyst embedded secret store"
# Kubernetes Secret data keys: an ExternalSecret copies each key into one.
_VALUE_KEY: Final = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    path TEXT PRIMARY KEY, version INTEGER NOT NULL, live INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (
    path TEXT NOT NULL, version INTEGER NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
    created TEXT NOT NULL, PRIMARY KEY (path, version)
) WITHOUT ROWID;
"""


def _associated_data(path: str, version: int) -> bytes:
    return f"{path}\x00{version}".encode()


def _check_values(path: SecretPath, values: object) -> bytes:
    # Every message here names the path, a key or a type, never a value.
    if not isinstance(values, Mapping):
        raise InvalidInput(f"the values of {path} must be a mapping", field="values")
    if not values:
        raise InvalidInput(f"a secret needs at least one value ({path})", field="values")
    for key, value in values.items():
        if not isinstance(key, str) or not _VALUE_KEY.fullmatch(key):
            shown = repr(key) if isinstance(key, str) else f"a {type(key).__name__}"
            raise InvalidInput(
                f"{path}: value key {shown} must be 1-253 letters, digits, '-', '.' or '_'",
                field="values",
            )
        if not isinstance(value, str):
            raise InvalidInput(
                f"{path}: the value of {key!r} must be text, not {type(value).__name__}",
                field=f"values.{key}",
            )
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":")).encode()


def _check_path(path: object) -> SecretPath:
    if not isinstance(path, SecretPath):
        raise InvalidInput(f"expected a SecretPath, got {type(path).__name__}", field="path")
    return path


class LocalSecretStore:
    """The ``embedded`` secret backend (see the module docstring).

    :param directory: holds ``secrets.db`` (and the key, unless ``key_file`` is given).
    :param key_file: where the key lives; created with mode 0600 if missing.
    :param api_url: the Catalyst API base URL that in-cluster External Secrets Operators reach
        (used only by :meth:`store_reference`).
    :param token_secret: the Kubernetes Secret (key ``token``) with the bearer token those
        operators send.
    :param history: versions kept per path.
    :param busy_timeout: seconds a write waits for another process's lock.
    """

    def __init__(
        self,
        directory: Path,
        *,
        key_file: Path | None = None,
        api_url: str = "http://127.0.0.1:8000",
        token_secret: str = DEFAULT_TOKEN_SECRET,
        history: int = 10,
        busy_timeout: float = 30.0,
    ) -> None:
        if history < 1:
            raise InvalidInput(f"history must be at least 1, got {history}")
        if not api_url.startswith(("http://", "https://")):
            raise InvalidInput(f"api_url must be an http(s) URL, got {api_url!r}")
        self.directory = directory
        self.key_file = key_file if key_file is not None else directory / "key"
        self.api_url = api_url.rstrip("/")
        self.token_secret = token_secret
        self.history = history
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._cipher: AESGCM | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalSecretStore({str(self.directory)!r})"

    # ---------------------------------------------------------------------------------------------
    # Service
    # ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._connection is not None:
            return
        try:
            self._connection, self._cipher = await anyio.to_thread.run_sync(self._open)
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"embedded secret store: cannot open {self.directory}: {exc}"
            ) from None

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        self._cipher = None
        if connection is not None:

            def close_connection() -> None:
                with self._lock:
                    connection.close()

            await anyio.to_thread.run_sync(close_connection)

    async def check(self) -> Readiness:
        try:
            await self._run(lambda db, _cipher: db.execute("SELECT 1").fetchone())
        except BackendUnavailable as exc:
            return Readiness.unavailable(str(exc))
        return Readiness.ok()

    def _open(self) -> tuple[sqlite3.Connection, AESGCM]:
        if not self.directory.exists():
            self.directory.mkdir(parents=True, mode=0o700)
        cipher = AESGCM(self._load_key())
        database = self.directory / "secrets.db"
        # Create the file 0600 before SQLite does (it would follow the umask).
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
        connection = sqlite3.connect(
            database, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            self._check_canary(connection, cipher)
        except BaseException:
            connection.close()
            raise
        return connection, cipher

    def _load_key(self) -> bytes:
        key_file = self.key_file
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            staging = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(staging, key_file)  # atomic, and never replaces a key another made
            except FileExistsError:
                pass
            finally:
                staging.unlink()
        status = key_file.stat()
        if stat.S_IMODE(status.st_mode) & 0o077:
            raise BackendUnavailable(
                f"embedded secret store: the key file {key_file} has mode "
                f"{stat.S_IMODE(status.st_mode):04o}; it must not be readable or writable by "
                f"group or others. Run: chmod 600 {key_file}"
            )
        if status.st_uid != os.getuid():
            raise BackendUnavailable(
                f"embedded secret store: the key file {key_file} belongs to another user "
                f"(uid {status.st_uid}); it must belong to the user running Catalyst"
            )
        try:
            key = base64.b64decode(key_file.read_bytes().strip(), validate=True)
        except ValueError:
            key = b""
        if len(key) != _KEY_BYTES:
            raise BackendUnavailable(
                f"embedded secret store: the key file {key_file} does not hold a base64 "
                f"{_KEY_BYTES * 8}-bit key"
            )
        return key

    @staticmethod
    def _check_canary(connection: sqlite3.Connection, cipher: AESGCM) -> None:
        nonce = os.urandom(_NONCE_BYTES)
        fresh = nonce + cipher.encrypt(nonce, _CANARY, b"canary")
        # The first process to start writes the canary; every start checks it.
        connection.execute(
            "INSERT INTO meta (name, value) VALUES ('canary', ?) ON CONFLICT (name) DO NOTHING",
            (fresh,),
        )
        (sealed,) = connection.execute("SELECT value FROM meta WHERE name = 'canary'").fetchone()
        try:
            cipher.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], b"canary")
        except InvalidTag:
            raise BackendUnavailable(
                "embedded secret store: the key file does not match the store (a different key "
                "encrypted it)"
            ) from None

    async def _run(self, work: Callable[[sqlite3.Connection, AESGCM], T]) -> T:
        connection, cipher = self._connection, self._cipher
        if connection is None or cipher is None:
            raise BackendUnavailable("embedded secret store is not started (or was closed)")

        def call() -> T:
            with self._lock:
                if self._connection is None:
                    raise BackendUnavailable("embedded secret store was closed")
                return work(connection, cipher)

        try:
            return await anyio.to_thread.run_sync(call)
        except sqlite3.Error as exc:
            # SQLite messages name tables and columns, never the bound values.
            raise BackendUnavailable(f"embedded secret store: {exc}") from None

    # ---------------------------------------------------------------------------------------------
    # SecretBackend
    # ---------------------------------------------------------------------------------------------

    async def write(self, path: SecretPath, values: Mapping[str, str]) -> int:
        location = str(_check_path(path))
        plaintext = _check_values(path, values)

        def write(db: sqlite3.Connection, cipher: AESGCM) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT version FROM heads WHERE path = ?", (location,)).fetchone()
                version = (row[0] if row else 0) + 1
                nonce = os.urandom(_NONCE_BYTES)
                sealed = cipher.encrypt(nonce, plaintext, _associated_data(location, version))
                db.execute(
                    "INSERT INTO versions (path, version, nonce, ciphertext, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (location, version, nonce, sealed, datetime.now(UTC).isoformat()),
                )
                db.execute(
                    "INSERT INTO heads (path, version, live) VALUES (?, ?, 1) ON CONFLICT (path) "
                    "DO UPDATE SET version = excluded.version, live = 1",
                    (location, version),
                )
                db.execute(
                    "DELETE FROM versions WHERE path = ? AND version <= ?",
                    (location, version - self.history),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return version

        return await self._run(write)

    async def read(self, path: SecretPath) -> Mapping[str, str]:
        location = str(_check_path(path))

        def read(db: sqlite3.Connection, cipher: AESGCM) -> dict[str, str]:
            row = db.execute(
                "SELECT v.version, v.nonce, v.ciphertext FROM heads h JOIN versions v "
                "ON v.path = h.path AND v.version = h.version WHERE h.path = ? AND h.live = 1",
                (location,),
            ).fetchone()
            if row is None:
                raise NotFound(f"no secret at {location}", field="path")
            version, nonce, sealed = row
            try:
                plaintext = cipher.decrypt(nonce, sealed, _associated_data(location, version))
            except InvalidTag:
                raise BackendUnavailable(
                    f"embedded secret store: version {version} of {location} cannot be "
                    "decrypted (the store was tampered with, or rows were moved)"
                ) from None
            values: dict[str, str] = json.loads(plaintext)
            return values

        return await self._run(read)

    async def exists(self, path: SecretPath) -> bool:
        location = str(_check_path(path))
        row = await self._run(
            lambda db, _cipher: db.execute(
                "SELECT 1 FROM heads WHERE path = ? AND live = 1", (location,)
            ).fetchone()
        )
        return row is not None

    async def delete(self, path: SecretPath) -> None:
        location = str(_check_path(path))

        def delete(db: sqlite3.Connection, _cipher: AESGCM) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM versions WHERE path = ?", (location,))
                # The head row stays (not live) so version numbers are never reused.
                db.execute("UPDATE heads SET live = 0 WHERE path = ?", (location,))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._run(delete)

    async def store_reference(self, organization: str, env_type: EnvType) -> Mapping[str, Any]:
        """An External Secrets Operator ``webhook`` provider that reads through Catalyst's API.

        The embedded store is a file on the Catalyst host, so nothing in a cluster can read it
        directly: the block points the operator at ``GET {api_url}/v1/secret-store/org/{org}/
        env/{env_type}/{key}?property={property}`` — an ExternalSecret's ``remoteRef.key`` is
        ``{app}/{secret}`` and ``remoteRef.property`` a value key — answering
        ``{"value": ...}`` (the value, or every value as an object when no property is given).
        The Catalyst API deliberately does not serve secret values (SPEC §8; see
        ``docs/decisions/0007-api-reads-and-secrets.md``), so an ExternalSecret using this
        store does not sync: the embedded store is for single-node evaluation, and clusters
        use a backend they can reach (``catalyst-openbao``). The operator authenticates with the
        bearer token in the Kubernetes Secret ``token_secret`` (key ``token``, labelled
        ``external-secrets.io/type: webhook``) of the SecretStore's namespace, and ``api_url``
        must be reachable from the cluster (the default, 127.0.0.1, is not).
        """
        check_organization_name(organization)
        kind = check_env_type(env_type)
        base = f"{self.api_url}/v1/secret-store/org/{organization}/env/{kind.value}"
        return {
            "webhook": {
                "url": f"{base}/{{{{ .remoteRef.key }}}}?property={{{{ .remoteRef.property }}}}",
                "method": "GET",
                "headers": {
                    "Accept": "application/json",
                    "Authorization": "Bearer {{ .auth.token }}",
                },
                "result": {"jsonPath": "$.value"},
                "secrets": [
                    {"name": "auth", "secretRef": {"name": self.token_secret, "key": "token"}}
                ],
            }
        }
