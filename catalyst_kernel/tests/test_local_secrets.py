"""The embedded secret store passes the secrets conformance suite, plus what only it promises:
encryption at rest, a guarded key file, and a SecretStore block External Secrets accepts."""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from catalyst_kernel.errors import BackendUnavailable, InvalidInput
from catalyst_kernel.model.names import EnvType
from catalyst_kernel.secrets.backend import SecretPath
from catalyst_kernel.secrets.local_store import LocalSecretStore
from catalyst_kernel.testing.suites import PLANTED_SECRET, SecretsConformance, SecretsFactory

PATH = SecretPath("acme", "dev", "web", "db")


class TestLocalSecretStore(SecretsConformance):
    @pytest.fixture
    def secrets_factory(self, tmp_path: Path) -> SecretsFactory:
        @asynccontextmanager
        async def make() -> AsyncIterator[LocalSecretStore]:
            store = LocalSecretStore(tmp_path / "secrets")
            await store.start()
            try:
                yield store
            finally:
                await store.close()

        return make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalSecretStore]:
    store = LocalSecretStore(tmp_path / "secrets", history=3)
    await store.start()
    yield store
    await store.close()


def every_byte_under(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


@pytest.mark.anyio
async def test_values_are_encrypted_at_rest(tmp_path: Path, store: LocalSecretStore) -> None:
    await store.write(PATH, {"password": PLANTED_SECRET})
    await store.close()  # checkpoints the WAL into the database file
    data = every_byte_under(tmp_path / "secrets")
    assert PLANTED_SECRET.encode() not in data
    assert base64.b64encode(PLANTED_SECRET.encode()) not in data


@pytest.mark.anyio
async def test_the_key_file_is_private(tmp_path: Path, store: LocalSecretStore) -> None:
    key = tmp_path / "secrets" / "key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets").stat().st_mode & 0o077 == 0
    assert (tmp_path / "secrets" / "secrets.db").stat().st_mode & 0o077 == 0
    assert len(base64.b64decode(key.read_bytes().strip())) == 32


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
async def test_a_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    store = LocalSecretStore(tmp_path / "secrets")
    await store.start()
    await store.close()
    key = tmp_path / "secrets" / "key"
    key.chmod(mode)
    with pytest.raises(BackendUnavailable, match=rf"mode {mode:04o}.*chmod 600"):
        await LocalSecretStore(tmp_path / "secrets").start()


@pytest.mark.anyio
async def test_a_separate_key_file_is_created_where_configured(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "catalyst.key"
    store = LocalSecretStore(tmp_path / "secrets", key_file=key)
    await store.start()
    await store.write(PATH, {"password": "x"})
    await store.close()
    assert key.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "secrets" / "key").exists()


@pytest.mark.anyio
async def test_a_foreign_key_is_refused(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets")
    await store.start()
    await store.write(PATH, {"password": PLANTED_SECRET})
    await store.close()
    key = tmp_path / "secrets" / "key"
    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    with pytest.raises(BackendUnavailable, match="does not match") as caught:
        await LocalSecretStore(tmp_path / "secrets").start()
    assert PLANTED_SECRET not in str(caught.value)


@pytest.mark.anyio
async def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("not base64 at all!\n")
    key.chmod(0o600)
    with pytest.raises(BackendUnavailable, match="256-bit key"):
        await LocalSecretStore(tmp_path / "secrets", key_file=key).start()


@pytest.mark.anyio
async def test_moved_ciphertext_does_not_decrypt_and_leaks_nothing(
    tmp_path: Path, store: LocalSecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await store.write(PATH, {"password": PLANTED_SECRET})
    other = SecretPath("acme", "dev", "web", "other")
    await store.write(other, {"password": "harmless"})
    with sqlite3.connect(tmp_path / "secrets" / "secrets.db") as db:
        # Swap the ciphertexts: the associated data (path, version) no longer matches.
        rows = dict(db.execute("SELECT path, ciphertext FROM versions").fetchall())
        for path, sealed in rows.items():
            target = str(other) if path == str(PATH) else str(PATH)
            db.execute("UPDATE versions SET ciphertext = ? WHERE path = ?", (sealed, target))
        nonces = dict(db.execute("SELECT path, nonce FROM versions").fetchall())
        for path, nonce in nonces.items():
            target = str(other) if path == str(PATH) else str(PATH)
            db.execute("UPDATE versions SET nonce = ? WHERE path = ?", (nonce, target))
    with pytest.raises(BackendUnavailable, match="cannot be decrypted") as caught:
        await store.read(other)
    assert PLANTED_SECRET not in str(caught.value)
    assert PLANTED_SECRET not in repr(caught.value)
    assert PLANTED_SECRET not in caplog.text


@pytest.mark.anyio
async def test_versions_keep_counting_after_a_delete(store: LocalSecretStore) -> None:
    assert await store.write(PATH, {"password": "one"}) == 1
    assert await store.write(PATH, {"password": "two"}) == 2
    await store.delete(PATH)
    assert await store.write(PATH, {"password": "three"}) == 3


@pytest.mark.anyio
async def test_only_the_last_versions_are_kept(tmp_path: Path, store: LocalSecretStore) -> None:
    for n in range(6):
        await store.write(PATH, {"password": f"v{n}"})
    with sqlite3.connect(tmp_path / "secrets" / "secrets.db") as db:
        kept = [v for (v,) in db.execute("SELECT version FROM versions ORDER BY version")]
    assert kept == [4, 5, 6]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "values",
    [{"bad key": PLANTED_SECRET}, {"": PLANTED_SECRET}, {"k/../x": PLANTED_SECRET}, "text"],
)
async def test_bad_value_keys_are_invalid_input_without_the_value(
    store: LocalSecretStore, values: Any
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await store.write(PATH, values)
    assert PLANTED_SECRET not in str(caught.value)


@pytest.mark.anyio
async def test_store_reference_is_a_valid_external_secrets_provider(
    store: LocalSecretStore, upstream_schemas: Any
) -> None:
    provider = await store.store_reference("acme", EnvType.PROD)
    manifest = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": "catalyst", "namespace": "web"},
        "spec": {"provider": provider},
    }
    upstream_schemas.assert_valid(manifest)
    webhook = provider["webhook"]
    assert webhook["url"].startswith(
        "http://127.0.0.1:8000/v1/secret-store/org/acme/env/prod/{{ .remoteRef.key }}"
    )
    assert webhook["secrets"][0]["secretRef"] == {
        "name": "catalyst-secret-store-token",
        "key": "token",
    }


@pytest.mark.anyio
async def test_store_reference_checks_its_names(store: LocalSecretStore) -> None:
    with pytest.raises(InvalidInput):
        await store.store_reference("kube-system", EnvType.DEV)
    with pytest.raises(InvalidInput):
        await store.store_reference("acme", "staging")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_use_after_close_is_backend_unavailable(store: LocalSecretStore) -> None:
    await store.close()
    assert not (await store.check()).ready
    with pytest.raises(BackendUnavailable):
        await store.read(PATH)


@pytest.mark.anyio
async def test_paths_must_be_secret_paths(store: LocalSecretStore) -> None:
    with pytest.raises(InvalidInput):
        await store.read("org/acme/env/dev/web/db")  # type: ignore[arg-type]


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        LocalSecretStore(tmp_path, history=0)
    with pytest.raises(InvalidInput):
        LocalSecretStore(tmp_path, api_url="ftp://x")
