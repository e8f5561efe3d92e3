"""Per-Organization accounts: the rendered configuration, loaded by a real nats-server, keeps
each Organization to its own subjects and KV buckets, and the spine works in the system account.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from catalyst_kernel.errors import InvalidInput
from catalyst_kernel.model import Event
from catalyst_kernel.readside.codec import encode
from catalyst_kernel.testing import SpineConformance, SpineFactory
from catalyst_nats import nkeys
from catalyst_nats.accounts import (
    AccountsConfig,
    organization_account,
    password_variable,
    render_accounts,
)
from catalyst_nats.cli import main as cli_main
from catalyst_nats.names import kv_subject
from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer

from .conftest import settings_for

PASSWORDS = {
    "CATALYST_NATS_PASSWORD": "system-secret",
    password_variable("acme"): "acme-secret",
    password_variable("big-corp"): "big-corp-secret",
}
SILENCE = 0.5  # seconds to wait for something that must not arrive


def accounts_server(tmp_path: Path, accounts: str) -> NatsServer:
    (tmp_path / "accounts.conf").write_text(accounts)
    store = tmp_path / "jetstream"
    config = tmp_path / "server.conf"
    config.write_text(f'jetstream {{ store_dir: "{store}" }}\ninclude "accounts.conf"\n')
    return NatsServer(tmp_path / "nats", config=config, env=PASSWORDS)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with accounts_server(tmp_path, render_accounts(["acme", "big-corp"])) as server:
        yield server


def system_settings(server: NatsServer) -> NatsSettings:
    return settings_for(server, user="catalyst", password=PASSWORDS["CATALYST_NATS_PASSWORD"])


class TestSpineInTheSystemAccount(SpineConformance):
    """Everything the spine does works in the rendered system account."""

    @pytest.fixture
    def spine_factory(self, server: NatsServer) -> SpineFactory:
        @asynccontextmanager
        async def make() -> AsyncIterator[NatsSpine]:
            spine = NatsSpine(system_settings(server))
            await spine.start()
            try:
                yield spine
            finally:
                await spine.close()

        return make


class Tenant:
    """An Organization's user on a raw connection, recording what the server refuses."""

    def __init__(self, client: Client, errors: list[str]) -> None:
        self.client = client
        self.errors = errors

    async def request(self, subject: str, payload: bytes = b"", **kwargs: Any) -> Msg | None:
        """The answer, or ``None`` when nothing answers."""
        try:
            return await self.client.request(subject, payload, timeout=SILENCE, **kwargs)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return None

    async def kv_get(self, environment: str, key: str) -> bytes | None:
        """A KV read as the Organization's tools make it: a direct get of the key's subject."""
        bucket = f"ws-{environment}-state"
        request = json.dumps({"last_by_subj": kv_subject(bucket, key)}).encode()
        reply = await self.request(f"$JS.API.DIRECT.GET.KV_{bucket}", request)
        return None if reply is None or (reply.headers or {}).get("Status") else reply.data

    async def received(self, subject: str, publish: Any) -> list[bytes]:
        """What a subscription to ``subject`` gets while ``publish()`` runs."""
        got: list[bytes] = []

        async def collect(msg: Msg) -> None:
            got.append(msg.data)

        subscription = await self.client.subscribe(subject, cb=collect)
        await self.client.flush()
        await publish()
        await anyio.sleep(SILENCE)
        await subscription.unsubscribe()
        return got


@asynccontextmanager
async def tenant(server: NatsServer, **auth: Any) -> AsyncIterator[Tenant]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    client = await nats.connect(server.url, error_cb=on_error, allow_reconnect=False, **auth)
    try:
        yield Tenant(client, errors)
    finally:
        await client.close()


def _event(n: int) -> Event:
    return Event.create(source="/t", type="io.catalyst.test", subject="test.x", id=f"e-{n}")


@pytest.mark.anyio
async def test_an_organization_uses_its_own_environments(server: NatsServer) -> None:
    spine = NatsSpine(system_settings(server))
    await spine.start()
    try:
        await spine.publish("acme-dev", _event(1))  # the streams exist before the tenant writes
        kv = await spine.key_value("acme-dev")
        await kv.put("application/web", b'{"status":"Running"}')
        async with tenant(server, user="acme", password="acme-secret") as acme:
            event = _event(2)
            ack = await acme.request(
                "ws.acme-dev.test.x", encode(event), headers={"Nats-Msg-Id": event.id}
            )
            assert ack is not None
            assert json.loads(ack.data)["seq"] == 2  # stored by JetStream in the system account
            assert [d.event.id for d in await spine.read("acme-dev")] == ["e-1", "e-2"]
            assert await acme.kv_get("acme-dev", "application/web") == b'{"status":"Running"}'

            async def write_own() -> None:
                await spine.publish("acme-dev", _event(3))
                await kv.put("application/web", b'{"status":"Degraded"}')

            events = await acme.received("ws.acme-dev.>", write_own)
            assert len(events) == 1
            changes = await acme.received("$KV.ws-acme-dev-state.>", write_own)
            assert changes == [b'{"status":"Degraded"}']
            assert acme.errors == []
    finally:
        await spine.close()


@pytest.mark.anyio
async def test_an_organization_cannot_reach_another(server: NatsServer) -> None:
    spine = NatsSpine(system_settings(server))
    await spine.start()
    try:
        await spine.publish("big-corp-prod", _event(1))
        theirs = await spine.key_value("big-corp-prod")
        await theirs.put("application/payroll", b"secret")
        async with tenant(server, user="acme", password="acme-secret") as acme:
            # Publish: nothing stores it.
            assert await acme.request("ws.big-corp-prod.test.x", b"forged") is None
            assert [d.event.id for d in await spine.read("big-corp-prod")] == ["e-1"]

            # Subscribe: nothing arrives.
            async def write_theirs() -> None:
                await spine.publish("big-corp-prod", _event(2))
                await theirs.put("application/payroll", b"more secret")

            assert await acme.received("ws.big-corp-prod.>", write_theirs) == []
            assert await acme.received("$KV.ws-big-corp-prod-state.>", write_theirs) == []

            # Read the KV: nothing answers, by either form of direct get, nor the JS API.
            assert await acme.kv_get("big-corp-prod", "application/payroll") is None
            by_subject = "$JS.API.DIRECT.GET.KV_ws-big-corp-prod-state." + kv_subject(
                "ws-big-corp-prod-state", "application/payroll"
            )
            assert await acme.request(by_subject) is None
            assert await acme.request("$JS.API.STREAM.INFO.KV_ws-big-corp-prod-state") is None
            assert await acme.request("$JS.API.STREAM.NAMES") is None

            await anyio.sleep(0.1)
            assert any("ws.big-corp-prod" in error for error in acme.errors)
            assert any("kv_ws-big-corp-prod-state" in error.lower() for error in acme.errors)
        # The other way round, too.
        async with tenant(server, user="big-corp", password="big-corp-secret") as big:
            assert await big.request("ws.acme-dev.test.x", b"forged") is None
            assert await big.kv_get("acme-dev", "application/web") is None
    finally:
        await spine.close()


@pytest.mark.anyio
async def test_a_wrong_password_is_refused(server: NatsServer) -> None:
    with pytest.raises(nats.errors.Error, match=r"[Aa]uthorization"):
        await nats.connect(server.url, user="acme", password="guess", allow_reconnect=False)


@pytest.mark.anyio
async def test_nkey_users_authenticate_with_their_seed(tmp_path: Path) -> None:
    system, acme = nkeys.generate_user(), nkeys.generate_user()
    accounts = render_accounts(
        ["acme"],
        AccountsConfig(system_nkey=system.public_key, organization_nkeys={"acme": acme.public_key}),
    )
    assert system.public_key in accounts
    assert "password" not in accounts
    seed_file = tmp_path / "catalyst.nk"
    seed_file.write_text(f"# the system user's seed\n{system.seed}\n")
    with accounts_server(tmp_path, accounts) as server:
        spine = NatsSpine(settings_for(server, nkey_seed_file=seed_file))
        await spine.start()
        try:
            assert (await spine.check()).ready
            assert (await spine.publish("acme-dev", _event(1))).sequence == 1
        finally:
            await spine.close()
        wrong = tmp_path / "wrong.nk"
        wrong.write_text(nkeys.generate_user().seed)
        intruder = NatsSpine(settings_for(server, nkey_seed_file=wrong))
        await intruder.start()
        try:
            readiness = await intruder.check()
            assert not readiness.ready
            assert "uthorization" in (readiness.reason or "")
        finally:
            await intruder.close()


def test_organization_accounts_are_named_after_the_organization() -> None:
    assert organization_account("big-corp") == "ORG_BIG_CORP"
    assert password_variable("big-corp") == "NATS_PASSWORD_BIG_CORP"
    with pytest.raises(InvalidInput):
        render_accounts(["catalyst"])  # reserved
    with pytest.raises(InvalidInput, match="unknown Organizations"):
        render_accounts(["acme"], AccountsConfig(organization_nkeys={"beta": "U" * 56}))


def test_the_command_renders_the_same_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["accounts", "-o", "big-corp", "-o", "acme"]) == 0
    assert capsys.readouterr().out == render_accounts(["acme", "big-corp"])
    output = tmp_path / "accounts.conf"
    assert cli_main(["accounts", "-o", "acme", "--output", str(output)]) == 0
    assert output.read_text() == render_accounts(["acme"])
    assert cli_main(["accounts", "-o", "Not An Org"]) == 1
    assert "catalyst-nats: error:" in capsys.readouterr().err


@pytest.mark.anyio
async def test_the_command_reads_the_organizations_from_the_directory(
    nats_server: NatsServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in [v for v in os.environ if v.startswith("CATALYST_")]:
        monkeypatch.delenv(variable)
    spine = NatsSpine(settings_for(nats_server))
    await spine.start()
    directory = await spine.directory()
    for name in ("zeta", "acme"):
        await directory.create(f"organizations/{name}", b"{}")
    await spine.close()
    config = tmp_path / "catalyst.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[plugins.nats]\nservers = ["{nats_server.url}"]\n'
    )
    assert await anyio.to_thread.run_sync(cli_main, ["accounts", "--config", str(config)]) == 0
    assert capsys.readouterr().out == render_accounts(["acme", "zeta"])


@pytest.mark.anyio
async def test_the_account_boundary_isolates_without_permissions(tmp_path: Path) -> None:
    rendered = render_accounts(["acme", "big-corp"])
    # Strip big-corp's user permissions: its account's imports alone must keep it out of acme's.
    lines = [
        line.split(", permissions:")[0] + "}" if '"big-corp"' in line and "user:" in line else line
        for line in rendered.splitlines()
    ]
    assert "permissions" in rendered
    unrestricted = "\n".join(lines) + "\n"
    assert unrestricted.count("permissions") == 1
    with accounts_server(tmp_path, unrestricted) as server:
        spine = NatsSpine(system_settings(server))
        await spine.start()
        try:
            await spine.publish("acme-dev", _event(1))
            await (await spine.key_value("acme-dev")).put("application/web", b"acme only")
            async with tenant(server, user="big-corp", password="big-corp-secret") as big:

                async def write_acme() -> None:
                    await spine.publish("acme-dev", _event(2))

                assert await big.received(">", write_acme) == []
                assert await big.request("ws.acme-dev.test.x", b"forged") is None
                assert await big.kv_get("acme-dev", "application/web") is None
                names = await big.request("$JS.API.STREAM.NAMES")
                assert names is not None
                assert b"JetStream not enabled for account" in names.data  # its own, empty
                assert big.errors == []  # nothing was refused: there was nothing to reach
            assert [d.event.id for d in await spine.read("acme-dev")] == ["e-1", "e-2"]
        finally:
            await spine.close()
