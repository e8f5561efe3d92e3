"""NKeys without the nkeys package: seeds, public keys, signatures, credentials files."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalyst_kernel.errors import InvalidInput
from catalyst_nats import nkeys

# From the NKeys specification's examples (github.com/nats-io/nkeys): a user seed and its key.
SEED = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
PUBLIC = "UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L"


def test_a_known_seed_gives_its_public_key() -> None:
    assert nkeys.KeyPair(SEED).public_key == PUBLIC


def test_signatures_verify_with_the_public_key() -> None:
    pair = nkeys.generate_user()
    assert pair.public_key.startswith("U")
    assert nkeys.KeyPair(pair.seed).public_key == pair.public_key
    raw = base64.b32decode(pair.public_key + "=" * (-len(pair.public_key) % 8))[1:33]
    signature = base64.b64decode(pair.sign_nonce("nonce-from-server"))
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, b"nonce-from-server")


@pytest.mark.parametrize("bad", ["", "not base32!", PUBLIC, SEED[:-1] + "A"])
def test_what_is_not_a_seed_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        nkeys.KeyPair(bad)


def test_credentials_files_hold_a_jwt_and_a_seed(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    creds.write_text(
        "-----BEGIN NATS USER JWT-----\neyJhbGciOi.payload.signature\n"
        "------END NATS USER JWT------\n"
        "\n************************* IMPORTANT *************************\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{SEED}\n------END USER NKEY SEED------\n"
    )
    jwt, pair = nkeys.read_creds(creds)
    assert jwt == "eyJhbGciOi.payload.signature"
    assert pair.public_key == PUBLIC
    (tmp_path / "empty.creds").write_text("nothing here")
    with pytest.raises(InvalidInput, match="not a NATS credentials file"):
        nkeys.read_creds(tmp_path / "empty.creds")
    with pytest.raises(InvalidInput, match="cannot read"):
        nkeys.read_seed(tmp_path / "missing.nk")
