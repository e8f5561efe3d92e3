"""NKeys without the ``nkeys`` package: decode seeds, sign nonces, read ``.creds`` files.

nats-py signs the server's nonce with the optional ``nkeys`` distribution, which is not a
dependency here; Ed25519 comes from ``cryptography`` (already required by the kernel). An NKey
is base32 (no padding) of a prefix byte, the 32-byte key and a CRC-16/XMODEM checksum; a seed
packs two prefix bytes (``S`` and the key type) before the 32-byte private key.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from catalyst_kernel.errors import InvalidInput

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["KeyPair", "generate_user", "read_creds"]

_PREFIX_SEED: Final = 18 << 3  # 'S'
_PREFIX_USER: Final = 20 << 3  # 'U'
_PREFIXES: Final = {
    14 << 3: "operator",  # 'O'
    0: "account",  # 'A'
    _PREFIX_USER: "user",
}
_CREDS_BLOCK: Final = re.compile(
    r"-{3,}\s*BEGIN ([A-Z ]+?)\s*-{3,}\s*\n(.+?)\n\s*-{3,}\s*END \1\s*-{3,}", re.DOTALL
)


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    checksum = _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw + checksum).decode().rstrip("=")


def _decode(text: str) -> bytes:
    padded = text.strip() + "=" * (-len(text.strip()) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError):
        raise InvalidInput("not an NKey (base32)") from None
    if len(raw) < 4 or _crc16(raw[:-2]).to_bytes(2, "little") != raw[-2:]:
        raise InvalidInput("not an NKey (bad checksum)")
    return raw[:-2]


class KeyPair:
    """An NKey pair from its seed (``SU…`` for users)."""

    def __init__(self, seed: str) -> None:
        raw = _decode(seed)
        if len(raw) != 34 or raw[0] & 0xF8 != _PREFIX_SEED:
            raise InvalidInput("not an NKey seed (it should start with 'S')")
        self._type = ((raw[0] & 0x07) << 5) | ((raw[1] & 0xF8) >> 3)
        if self._type not in _PREFIXES:
            raise InvalidInput("not an NKey seed of an operator, account or user")
        self._private = Ed25519PrivateKey.from_private_bytes(raw[2:])

    @property
    def public_key(self) -> str:
        """The public NKey (``U…`` for a user): what the server configuration names."""
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return _encode(bytes([self._type]) + public)

    def sign(self, data: bytes) -> bytes:
        """The raw Ed25519 signature of ``data``."""
        return self._private.sign(data)

    def sign_nonce(self, nonce: str) -> bytes:
        """What the CONNECT ``sig`` field holds: the base64 signature of the server's nonce."""
        return base64.b64encode(self.sign(nonce.encode()))

    @classmethod
    def from_private_bytes(cls, private: bytes, key_type: int = _PREFIX_USER) -> KeyPair:
        """A pair from 32 raw private-key bytes (tests and key generation)."""
        first = _PREFIX_SEED | (key_type >> 5)
        second = (key_type & 0x1F) << 3
        return cls(_encode(bytes([first, second]) + private))

    @property
    def seed(self) -> str:
        """The seed (keep it secret)."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        private = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        first = _PREFIX_SEED | (self._type >> 5)
        second = (self._type & 0x1F) << 3
        return _encode(bytes([first, second]) + private)


def generate_user() -> KeyPair:
    """A new user NKey pair."""
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    private = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return KeyPair.from_private_bytes(private)


def read_creds(path: Path) -> tuple[str, KeyPair]:
    """The user JWT and NKey pair of a ``.creds`` file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read the credentials file {path}: {exc}") from None
    blocks = {name.strip(): body.strip() for name, body in _CREDS_BLOCK.findall(text)}
    jwt, seed = blocks.get("NATS USER JWT"), blocks.get("USER NKEY SEED")
    if not jwt or not seed:
        raise InvalidInput(f"{path} is not a NATS credentials file (no user JWT and seed)")
    return jwt, KeyPair(seed)


def read_seed(path: Path) -> KeyPair:
    """The NKey pair of a file holding a seed (blank lines and ``#`` comments allowed)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read the NKey seed file {path}: {exc}") from None
    seeds = [line.strip() for line in lines if line.strip().startswith("S")]
    if len(seeds) != 1:
        raise InvalidInput(f"{path} should hold exactly one NKey seed")
    return KeyPair(seeds[0])
