"""The development identity provider: JWTs signed with a key kept in the data directory.

For laptops, CI and demos, never production: whoever can read the key file can mint a token for
any Organization and role, ``sovereign-admin`` included.

Keys
    ``<data_dir>/identity/dev-signing-key.pem`` (or ``key_file``) holds the current private key
    (PKCS #8 PEM, ES256 or EdDSA), created with mode 0600 on first start and refused when group
    or others may read it. Its ``kid`` is the RFC 7638 thumbprint of its public key, so it needs
    no metadata and is the same in every process that reads the file (``catalyst token`` and the
    server). :meth:`DevIdentityProvider.rotate` makes a new current key and moves the previous
    public key to ``<key_file>.previous.json``, where it still verifies tokens for
    ``rotation_grace`` (and while it is among the ``rotation_keep`` newest retired keys).

Tokens
    ``iss`` (default ``catalyst-dev://<sovereign>``), ``aud`` (default ``catalyst``), ``sub``,
    ``exp``, ``nbf``, ``iat``, ``jti``, ``org`` (absent for a ``sovereign-admin`` without one),
    ``roles``, ``groups`` and ``environments`` (lists of strings), with ``kid`` in the header.
    Only the configured algorithm is accepted, so ``alg: none`` and an HMAC signed with the public
    key are refused before any key is used.

Errors never contain the token, nor claim values: an API error or a log line must not become a
way to replay or reflect one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.to_thread
import jwt
from attrs import frozen
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from catalyst_kernel.errors import BackendUnavailable, InvalidInput, Unauthenticated
from catalyst_kernel.health import Readiness
from catalyst_kernel.model.names import check_environment_name, check_organization_name
from catalyst_kernel.model.principal import Principal, Role

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from catalyst_kernel.model.tenancy import Organization

__all__ = [
    "ALGORITHMS",
    "DEFAULT_AUDIENCE",
    "DEFAULT_TTL",
    "MAX_TTL",
    "Algorithm",
    "DevIdentityProvider",
    "default_issuer",
    "parse_ttl",
]

Algorithm = Literal["ES256", "EdDSA"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("ES256", "EdDSA")
DEFAULT_AUDIENCE: Final = "catalyst"
DEFAULT_TTL: Final = timedelta(minutes=15)
MAX_TTL: Final = timedelta(hours=24)
# A token is a few hundred bytes; refusing huge input keeps parsing cheap for anonymous callers.
_MAX_TOKEN_LENGTH: Final = 16 * 1024
_REQUIRED_CLAIMS: Final = ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "roles"]
_TTL: Final = re.compile(r"([1-9][0-9]*)([smh])")
_TTL_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours"}

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def default_issuer(sovereign: str) -> str:
    """The issuer the dev provider uses unless configured: ``catalyst-dev://<sovereign>``."""
    return f"catalyst-dev://{sovereign}"


def parse_ttl(text: str, *, maximum: timedelta = MAX_TTL) -> timedelta:
    """A token lifetime from ``30s``, ``15m`` or ``2h``; at least a second, at most ``maximum``."""
    match = _TTL.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            f"token lifetime {text!r} must be a positive number followed by s, m or h "
            "(30s, 15m, 2h)",
            field="ttl",
        )
    ttl = timedelta(**{_TTL_UNITS[match[2]]: int(match[1])})
    _check_ttl(ttl, maximum)
    return ttl


def _check_ttl(ttl: timedelta, maximum: timedelta) -> None:
    if not timedelta(seconds=1) <= ttl <= maximum:
        raise InvalidInput(
            f"token lifetime must be between 1s and {_format(maximum)}, got {_format(ttl)}",
            field="ttl",
        )


def _format(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(public_key: PublicKey) -> dict[str, Any]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return dict(ECAlgorithm.to_jwk(public_key, as_dict=True))
    return dict(OKPAlgorithm.to_jwk(public_key, as_dict=True))


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, without whitespace."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("crv", "kty", "x")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _key_algorithm(key: PrivateKey | PublicKey) -> Algorithm | None:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ES256" if isinstance(key.curve, ec.SECP256R1) else None
    return "EdDSA"


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def _private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _write_exclusive(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh 0600 sibling of ``path`` and return it (to link or rename)."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return staging


@frozen
class _VerificationKey:
    kid: str
    public_key: PublicKey
    retired_at: datetime | None = None

    def jwk(self, algorithm: Algorithm) -> dict[str, Any]:
        return {**_public_jwk(self.public_key), "kid": self.kid, "alg": algorithm, "use": "sig"}


def _verification_key(
    public_key: PublicKey, retired_at: datetime | None = None
) -> _VerificationKey:
    return _VerificationKey(_thumbprint(_public_jwk(public_key)), public_key, retired_at)


def _principal(**fields: Any) -> Principal:
    # Principal's converters take any iterable; mypy cannot solve their generic signatures.
    return Principal(**fields)


# ---------------------------------------------------------------------------------------------
# The provider
# ---------------------------------------------------------------------------------------------


class DevIdentityProvider:
    """The ``dev`` identity provider (see the module docstring).

    :param key_file: the private signing key (PEM); created 0600 on first start.
    :param issuer: the ``iss`` of minted tokens and the only one accepted.
    :param audience: the ``aud`` of minted tokens and the only one accepted.
    :param algorithm: ``ES256`` (P-256) or ``EdDSA`` (Ed25519); the only one accepted.
    :param default_ttl: the lifetime :meth:`mint` gives a token unless told otherwise.
    :param max_ttl: the longest lifetime :meth:`mint` gives.
    :param leeway: clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    :param rotation_grace: how long a retired key still verifies tokens (at least ``max_ttl``
        keeps every token minted before a rotation valid until it expires).
    :param rotation_keep: how many retired keys are kept at most.
    """

    def __init__(
        self,
        key_file: Path,
        *,
        issuer: str,
        audience: str = DEFAULT_AUDIENCE,
        algorithm: Algorithm = "ES256",
        default_ttl: timedelta = DEFAULT_TTL,
        max_ttl: timedelta = MAX_TTL,
        leeway: timedelta = timedelta(seconds=30),
        rotation_grace: timedelta = MAX_TTL,
        rotation_keep: int = 3,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidInput(
                f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}",
                field="algorithm",
            )
        if not issuer:
            raise InvalidInput("issuer must not be empty", field="issuer")
        if not audience:
            raise InvalidInput("audience must not be empty", field="audience")
        if rotation_keep < 1:
            raise InvalidInput("rotation_keep must be at least 1", field="rotation_keep")
        _check_ttl(default_ttl, max_ttl)
        self.key_file = key_file
        self.previous_file = key_file.with_name(f"{key_file.name}.previous.json")
        self.issuer = issuer
        self.audience = audience
        self.algorithm: Algorithm = algorithm
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.leeway = leeway
        self.rotation_grace = rotation_grace
        self.rotation_keep = rotation_keep
        self._signing: tuple[str, PrivateKey] | None = None
        self._keys: dict[str, _VerificationKey] = {}
        self._stamp: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"DevIdentityProvider({str(self.key_file)!r}, issuer={self.issuer!r})"

    # --- Service ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._signing is not None:
            return
        await anyio.to_thread.run_sync(self._load, True)

    async def close(self) -> None:
        self._signing = None
        self._keys = {}
        self._stamp = None

    async def check(self) -> Readiness:
        if self._signing is None:
            return Readiness.unavailable("unavailable: dev identity provider is not started")
        return Readiness.ok()

    # --- keys ------------------------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The ``kid`` of the current signing key."""
        return self._require_signing()[0]

    def _require_signing(self) -> tuple[str, PrivateKey]:
        if self._signing is None:
            raise BackendUnavailable("dev identity provider is not started (or was closed)")
        return self._signing

    def _file_stamp(self) -> tuple[int, int]:
        def mtime(path: Path) -> int:
            try:
                return path.stat().st_mtime_ns
            except FileNotFoundError:
                return 0

        return mtime(self.key_file), mtime(self.previous_file)

    def _load(self, create: bool = False) -> None:
        try:
            if create and not self.key_file.exists():
                self.key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                staging = _write_exclusive(self.key_file, _private_pem(_generate(self.algorithm)))
                try:
                    os.link(staging, self.key_file)  # atomic; never replaces another's key
                except FileExistsError:
                    pass
                finally:
                    staging.unlink()
            stamp = self._file_stamp()
            private_key = self._read_private_key()
            previous = self._read_previous()
        except OSError as exc:
            raise BackendUnavailable(
                f"dev identity provider: cannot read or create {self.key_file}: "
                f"{exc.strerror or exc}"
            ) from None
        current = _verification_key(private_key.public_key())
        keys = {current.kid: current}
        for key in previous:
            keys.setdefault(key.kid, key)
        self._signing = (current.kid, private_key)
        self._keys = keys
        self._stamp = stamp

    def _read_private_key(self) -> PrivateKey:
        status = self.key_file.stat()
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            raise BackendUnavailable(
                f"dev identity provider: the key file {self.key_file} has mode {mode:04o}; it "
                f"must not be readable or writable by group or others. Run: chmod 600 "
                f"{self.key_file}"
            )
        if status.st_uid != os.getuid():
            raise BackendUnavailable(
                f"dev identity provider: the key file {self.key_file} belongs to another user "
                f"(uid {status.st_uid})"
            )
        try:
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) or (
            _key_algorithm(key) != self.algorithm
        ):
            raise BackendUnavailable(
                f"dev identity provider: the key file {self.key_file} does not hold an "
                f"unencrypted {self.algorithm} private key; delete it to make a new one"
            )
        return key

    def _read_previous(self) -> list[_VerificationKey]:
        try:
            document = json.loads(self.previous_file.read_text())
        except FileNotFoundError:
            return []
        except ValueError:
            raise BackendUnavailable(
                f"dev identity provider: {self.previous_file} is not valid JSON"
            ) from None
        now = datetime.now(UTC)
        keys: list[_VerificationKey] = []
        try:
            for entry in document["keys"]:
                public_key = serialization.load_pem_public_key(entry["public_key"].encode())
                retired_at = datetime.fromisoformat(entry["retired_at"])
                if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
                    raise TypeError(type(public_key).__name__)
                if _key_algorithm(public_key) != self.algorithm:
                    continue
                keys.append(_verification_key(public_key, retired_at))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BackendUnavailable(
                f"dev identity provider: {self.previous_file} does not hold retired public keys"
            ) from None
        return self._within_grace(keys, now)

    def _within_grace(
        self, keys: Iterable[_VerificationKey], now: datetime
    ) -> list[_VerificationKey]:
        fresh = [
            key
            for key in keys
            if key.retired_at is not None and now - key.retired_at <= self.rotation_grace
        ]
        fresh.sort(key=lambda key: key.retired_at or now, reverse=True)
        return fresh[: self.rotation_keep]

    async def rotate(self) -> str:
        """Make a new signing key; the previous one keeps verifying for ``rotation_grace``.

        Returns the new key's ``kid``. Other processes sharing the key file pick the new key up
        when they first see a token signed with it (or when they restart).
        """
        self._require_signing()
        await anyio.to_thread.run_sync(self._rotate)
        return self.kid

    def _rotate(self) -> None:
        self._refresh()
        now = datetime.now(UTC)
        assert self._signing is not None
        retired = [
            _verification_key(key.public_key, key.retired_at or now) for key in self._keys.values()
        ]
        document = {
            "keys": [
                {
                    "kid": key.kid,
                    "retired_at": (key.retired_at or now).isoformat(),
                    "public_key": _public_pem(key.public_key),
                }
                for key in self._within_grace(retired, now)
            ]
        }
        try:
            # Retire first: a process that reads between the two steps still verifies both keys.
            staging = _write_exclusive(self.previous_file, json.dumps(document, indent=2).encode())
            os.replace(staging, self.previous_file)
            staging = _write_exclusive(self.key_file, _private_pem(_generate(self.algorithm)))
            os.replace(staging, self.key_file)
        except OSError as exc:
            raise BackendUnavailable(
                f"dev identity provider: cannot rotate {self.key_file}: {exc.strerror or exc}"
            ) from None
        self._load()

    def _refresh(self) -> None:
        """Reload the keys when another process rotated them."""
        if self._file_stamp() != self._stamp:
            self._load()

    # --- minting ---------------------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """Sign ``claims`` as they are with the current key (``kid`` set); no checks.

        For tests that need tokens :meth:`mint` refuses to make; use :meth:`mint` otherwise.
        """
        kid, private_key = self._require_signing()
        return jwt.encode(
            dict(claims),
            private_key,
            algorithm=self.algorithm,
            headers={"typ": "JWT", **(headers or {}), "kid": kid},
        )

    def mint(
        self,
        subject: str,
        *,
        organization: str | None,
        role: Role | str,
        groups: Iterable[str] = (),
        environments: Iterable[str] = (),
        ttl: timedelta | None = None,
    ) -> str:
        """A token for a Principal; :class:`InvalidInput` if it would not be one.

        ``environments`` must belong to ``organization``; empty means all of them. ``ttl``
        defaults to ``default_ttl`` and may not exceed ``max_ttl``.
        """
        lifetime = self.default_ttl if ttl is None else ttl
        _check_ttl(lifetime, self.max_ttl)
        try:
            chosen = Role(role)
        except ValueError:
            raise InvalidInput(
                f"unknown role {role!r}; roles are {', '.join(r.value for r in Role)}",
                field="role",
            ) from None
        if organization is not None:
            check_organization_name(organization)
        groups = tuple(groups)
        for group in groups:
            if not isinstance(group, str) or not group.strip():
                raise InvalidInput("group names must be non-empty strings", field="groups")
        environments = tuple(environments)
        for environment in environments:
            check_environment_name(environment)
            if organization is not None and environment.rpartition("-")[0] != organization:
                raise InvalidInput(
                    f"Environment {environment!r} does not belong to Organization {organization!r}",
                    field="environments",
                )
        # The Principal's own rules (an Organization unless sovereign-admin) apply to tokens too.
        _principal(
            subject=subject,
            roles=[chosen],
            organization=organization,
            groups=groups,
            environments=environments,
        )
        now = datetime.now(UTC).replace(microsecond=0)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "roles": [chosen.value],
            "groups": sorted(set(groups)),
            "environments": sorted(set(environments)),
        }
        if organization is not None:
            claims["org"] = organization
        return self.sign(claims)

    # --- IdentityProvider ------------------------------------------------------------------------

    async def jwks(self) -> Mapping[str, Any]:
        self._require_signing()
        await anyio.to_thread.run_sync(self._refresh)
        return {"keys": [key.jwk(self.algorithm) for key in self._keys.values()]}

    async def provision_organization(self, organization: Organization) -> None:
        """Nothing to prepare: the Organization is a claim in the token."""

    async def authenticate(self, token: str) -> Principal:
        self._require_signing()
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
            raise Unauthenticated("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("malformed token") from None
        if header.get("alg") != self.algorithm:
            raise Unauthenticated(f"token algorithm not accepted (only {self.algorithm})")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("token has no key id (kid)")
        key = self._keys.get(kid)
        if key is None:
            await anyio.to_thread.run_sync(self._refresh)
            key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        claims = self._decode(token, key.public_key)
        return self._principal(claims)

    def _decode(self, token: str, public_key: PublicKey) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                public_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token not yet valid") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token from another issuer") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token for another audience") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature does not verify") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise Unauthenticated("invalid token") from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        organization = claims.get("org")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("token claim 'sub' must be a non-empty string")
        if organization is not None and not isinstance(organization, str):
            raise Unauthenticated("token claim 'org' must be a string")
        lists: dict[str, list[str]] = {}
        for name in ("roles", "groups", "environments"):
            value = claims.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Unauthenticated(f"token claim {name!r} must be a list of strings")
            lists[name] = value
        try:
            return _principal(
                subject=subject,
                organization=organization,
                **lists,
                issuer=self.issuer,
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except InvalidInput as exc:
            raise Unauthenticated(
                f"token claims are not a valid principal ({exc.field or 'claims'})"
            ) from None
