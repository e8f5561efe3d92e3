"""The `dev` identity provider: the conformance suite, its key file and `catalyst token`."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from catalyst_kernel.errors import BackendUnavailable, InvalidInput, Unauthenticated
from catalyst_kernel.identity.dev import DevIdentityProvider, parse_ttl
from catalyst_kernel.identity.provider import IdentityProvider
from catalyst_kernel.model.principal import Role
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.settings import Settings
from catalyst_kernel.testing import IdentityConformance, IdentityFactory, KeyRotation, TokenMinter

ISSUER = "catalyst-dev://test"


class DevMinter(TokenMinter):
    algorithm: ClassVar[str] = "ES256"

    def __init__(self, provider: DevIdentityProvider) -> None:
        self.provider = provider

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
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {
            "iss": self.provider.issuer,
            "aud": self.provider.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime.total_seconds()),
            "jti": os.urandom(8).hex(),
            "roles": list(roles),
            "groups": list(groups),
            "environments": list(environments),
        }
        if organization is not None:
            claims["org"] = organization
        return claims

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        return self.provider.sign(claims, headers=headers)

    def public_key_pem(self) -> bytes:
        private_key = serialization.load_pem_private_key(
            self.provider.key_file.read_bytes(), password=None
        )
        return private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _provider(key_file: Path, **options: Any) -> DevIdentityProvider:
    return DevIdentityProvider(key_file, issuer=ISSUER, **options)


class TestDevIdentity(IdentityConformance):
    @pytest.fixture
    def key_file(self, tmp_path: Path) -> Path:
        return tmp_path / "data" / "identity" / "dev-signing-key.pem"

    @pytest.fixture
    def identity_factory(self, key_file: Path) -> IdentityFactory:
        @asynccontextmanager
        async def factory() -> AsyncIterator[IdentityProvider]:
            provider = _provider(key_file)
            await provider.start()
            try:
                yield provider
            finally:
                await provider.close()

        return factory

    @pytest.fixture
    def token_minter(self, provider: IdentityProvider) -> TokenMinter:
        assert isinstance(provider, DevIdentityProvider)
        return DevMinter(provider)

    @pytest.fixture
    def key_rotation(self) -> KeyRotation:
        async def rotate(provider: IdentityProvider) -> None:
            assert isinstance(provider, DevIdentityProvider)
            await provider.rotate()

        return rotate


# --- the key file ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_key_file_is_created_0600_and_reused_across_restarts(tmp_path: Path) -> None:
    key_file = tmp_path / "identity" / "dev-signing-key.pem"
    first = _provider(key_file)
    await first.start()
    token = first.mint("alice", organization="acme", role="org-admin")
    kid = first.kid
    await first.close()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    content = key_file.read_bytes()
    second = _provider(key_file)
    await second.start()
    assert second.kid == kid
    assert key_file.read_bytes() == content
    assert (await second.authenticate(token)).roles == frozenset({Role.ORG_ADMIN})


@pytest.mark.anyio
async def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-signing-key.pem"
    await _provider(key_file).start()
    key_file.chmod(0o644)
    with pytest.raises(BackendUnavailable, match="chmod 600"):
        await _provider(key_file).start()


@pytest.mark.anyio
async def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-signing-key.pem"
    await _provider(key_file, algorithm="EdDSA").start()
    with pytest.raises(BackendUnavailable, match="ES256"):
        await _provider(key_file).start()


@pytest.mark.anyio
async def test_eddsa_tokens_round_trip(tmp_path: Path) -> None:
    provider = _provider(tmp_path / "key.pem", algorithm="EdDSA")
    await provider.start()
    token = provider.mint("alice", organization="acme", role="org-viewer")
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert (await provider.authenticate(token)).subject == "alice"
    (jwk,) = (await provider.jwks())["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")


# --- rotation -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rotation_is_seen_by_another_process_sharing_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-signing-key.pem"
    server, cli = _provider(key_file), _provider(key_file)
    await server.start()
    await cli.start()
    old = server.kid
    new = await cli.rotate()
    assert new != old
    token = cli.mint("alice", organization="acme", role="org-admin")
    assert jwt.get_unverified_header(token)["kid"] == new
    assert (await server.authenticate(token)).subject == "alice"
    assert {k["kid"] for k in (await server.jwks())["keys"]} == {old, new}


@pytest.mark.anyio
async def test_retired_keys_are_kept_for_a_count_and_a_grace_period(tmp_path: Path) -> None:
    key_file = tmp_path / "dev-signing-key.pem"
    provider = _provider(key_file, rotation_keep=2)
    await provider.start()
    first = provider.mint("alice", organization="acme", role="org-admin")
    for _ in range(3):
        await provider.rotate()
    assert len((await provider.jwks())["keys"]) == 3  # current + 2 retired
    await _expect_refused(provider, first, "unknown key")

    no_grace = _provider(key_file, rotation_grace=timedelta(seconds=1))
    await no_grace.start()
    recent = no_grace.mint("alice", organization="acme", role="org-admin")
    await no_grace.rotate()
    previous = json.loads(no_grace.previous_file.read_text())
    for entry in previous["keys"]:
        entry["retired_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    no_grace.previous_file.write_text(json.dumps(previous))
    await no_grace.close()
    await no_grace.start()
    assert len((await no_grace.jwks())["keys"]) == 1
    await _expect_refused(no_grace, recent, "unknown key")


async def _expect_refused(provider: DevIdentityProvider, token: str, reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        await provider.authenticate(token)


# --- minting and claims ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_minted_claims(tmp_path: Path) -> None:
    provider = _provider(tmp_path / "key.pem", audience="catalyst-api")
    await provider.start()
    token = provider.mint(
        "alice",
        organization="acme",
        role=Role.ORG_DEVELOPER,
        groups=["team-web", "team-web"],
        environments=["acme-dev"],
        ttl=timedelta(minutes=2),
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "catalyst-api"
    assert (claims["sub"], claims["org"], claims["roles"]) == ("alice", "acme", ["org-developer"])
    assert claims["groups"] == ["team-web"]
    assert claims["environments"] == ["acme-dev"]
    assert claims["exp"] - claims["iat"] == 120
    assert claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) == 32
    assert jwt.get_unverified_header(token)["kid"] == provider.kid


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"organization": None, "role": "org-admin"}, "sovereign-admin"),
        ({"organization": "acme", "role": "god"}, "unknown role"),
        ({"organization": "Acme", "role": "org-admin"}, "Organization name"),
        ({"organization": "acme", "role": "org-admin", "environments": ["acme-staging"]}, "stg"),
        ({"organization": "acme", "role": "org-admin", "environments": ["globex-dev"]}, "belong"),
        ({"organization": "acme", "role": "org-admin", "ttl": timedelta(hours=25)}, "24h"),
        ({"organization": "acme", "role": "org-admin", "groups": [""]}, "group"),
    ],
)
async def test_mint_refuses_what_is_not_a_principal(
    tmp_path: Path, options: dict[str, Any], reason: str
) -> None:
    provider = _provider(tmp_path / "key.pem")
    await provider.start()
    with pytest.raises(InvalidInput, match=reason):
        provider.mint("alice", **options)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"org": None, "roles": ["org-admin"]}, "organization"),
        ({"roles": ["god"]}, "roles"),
        ({"roles": "org-admin"}, "list of strings"),
        ({"org": 7}, "'org'"),
        ({"environments": ["not an env"]}, "environments"),
        ({"sub": ""}, "'sub'"),
    ],
)
async def test_claims_that_are_not_a_principal_are_refused(
    tmp_path: Path, changes: dict[str, Any], reason: str
) -> None:
    provider = _provider(tmp_path / "key.pem")
    await provider.start()
    claims = DevMinter(provider).claims(subject="alice", organization="acme", roles=["org-admin"])
    claims.update(changes)
    if claims.get("org") is None:
        claims.pop("org")
    with pytest.raises(Unauthenticated, match=reason) as caught:
        await provider.authenticate(provider.sign(claims))
    assert "not an env" not in str(caught.value)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200)])
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0s", "25h", "15", "m", "-5m", "1d", "1.5h"])
def test_parse_ttl_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ttl(text)


@pytest.mark.anyio
async def test_use_before_start_is_backend_unavailable(tmp_path: Path) -> None:
    provider = _provider(tmp_path / "key.pem")
    assert not (await provider.check()).ready
    with pytest.raises(BackendUnavailable):
        provider.mint("alice", organization="acme", role="org-admin")


# --- the plugin and the CLI -----------------------------------------------------------------------


def test_dev_plugin_provides_identity_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        sovereign="omantel",
        plugins={"dev": {"audience": "api", "token_ttl": "5m", "algorithm": "EdDSA"}},
    )
    manager = PluginManager(settings).load()
    manager.check_settings()
    provider = manager.identity()
    assert isinstance(provider, DevIdentityProvider)
    assert provider.key_file == tmp_path / "identity" / "dev-signing-key.pem"
    assert provider.issuer == "catalyst-dev://omantel"
    assert (provider.audience, provider.algorithm) == ("api", "EdDSA")
    assert provider.default_ttl == timedelta(minutes=5)


RunCatalyst = Callable[..., Any]


@pytest.mark.anyio
async def test_catalyst_token_prints_a_token_the_server_accepts(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = {"CATALYST_DATA_DIR": str(data_dir), "CATALYST_SOVEREIGN": "omantel"}
    result = run_catalyst(
        "token",
        "--org", "acme",
        "--role", "org-developer",
        "--group", "team-web",
        "--env", "acme-dev",
        "--ttl", "2h",
        "--subject", "alice",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    manager = PluginManager(Settings(data_dir=data_dir, sovereign="omantel")).load()
    server = manager.identity()
    await server.start()
    try:
        principal = await server.authenticate(token)
    finally:
        await server.close()
    assert principal.subject == "alice"
    assert principal.organization == "acme"
    assert principal.roles == frozenset({Role.ORG_DEVELOPER})
    assert principal.groups == frozenset({"team-web"})
    assert principal.environments == frozenset({"acme-dev"})
    assert principal.issuer == "catalyst-dev://omantel"
    assert principal.expires_at is not None
    remaining = principal.expires_at - datetime.now(UTC)
    assert timedelta(minutes=119) < remaining <= timedelta(hours=2)


def test_catalyst_token_for_sovereign_admin_needs_no_org(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    result = run_catalyst(
        "token", "--role", "sovereign-admin", env={"CATALYST_DATA_DIR": str(tmp_path / "d")}
    )
    assert result.returncode == 0, result.stderr
    assert "org" not in jwt.decode(result.stdout.strip(), options={"verify_signature": False})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "org-admin"], "--org is required"),
        (["--role", "boss", "--org", "acme"], "unknown role 'boss'"),
        (["--role", "org-admin", "--org", "Acme"], "Organization name 'Acme'"),
        (["--role", "org-admin", "--org", "acme", "--env", "acme-staging"], "'stg'"),
        (["--role", "org-admin", "--org", "acme", "--ttl", "25h"], "at most|between"),
        (["--role", "org-admin", "--org", "acme", "--ttl", "soon"], "30s, 15m, 2h"),
    ],
)
def test_catalyst_token_errors_are_one_line(
    run_catalyst: RunCatalyst, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_catalyst("token", *args, env={"CATALYST_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("catalyst: error: ")
    assert re.search(message, line), line


def test_catalyst_token_refuses_another_identity_provider(
    run_catalyst: RunCatalyst, tmp_path: Path
) -> None:
    result = run_catalyst(
        "token",
        "--role",
        "sovereign-admin",
        env={"CATALYST_DATA_DIR": str(tmp_path / "d"), "CATALYST_PROVIDERS__IDENTITY": "keycloak"},
    )
    assert result.returncode == 1
    assert "dev identity provider only" in result.stderr
    assert "keycloak-per-organization" in result.stderr
