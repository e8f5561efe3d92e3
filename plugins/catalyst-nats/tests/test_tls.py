"""TLS: the spine verifies the server with a CA and presents a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from catalyst_nats.spine import NatsSpine
from catalyst_nats.testing import NatsServer

from .conftest import settings_for

pytestmark = pytest.mark.anyio


def _issue(
    folder: Path,
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate, key


@pytest.fixture
def tls_server(tmp_path: Path) -> NatsServer:
    ca = _issue(tmp_path, "ca")
    _issue(tmp_path, "server", ca)
    _issue(tmp_path, "client", ca)
    config = tmp_path / "server.conf"
    config.write_text(
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f'tls {{ cert_file: "{tmp_path / "server.pem"}", key_file: "{tmp_path / "server-key.pem"}"'
        f', ca_file: "{tmp_path / "ca.pem"}", verify: true, timeout: 5 }}\n'
    )
    return NatsServer(tmp_path / "nats", config=config)


async def test_tls_with_a_client_certificate(tls_server: NatsServer, tmp_path: Path) -> None:
    with tls_server:
        spine = NatsSpine(
            settings_for(
                tls_server,
                servers=(f"tls://127.0.0.1:{tls_server.port}",),
                tls_ca_file=tmp_path / "ca.pem",
                tls_cert_file=tmp_path / "client.pem",
                tls_key_file=tmp_path / "client-key.pem",
            )
        )
        await spine.start()
        try:
            assert (await spine.check()).ready
            kv = await spine.key_value("acme-dev")
            await kv.put("app/web", b"over tls")
            entry = await kv.get("app/web")
            assert entry is not None
            assert entry.value == b"over tls"
        finally:
            await spine.close()


async def test_without_the_client_certificate_it_is_unavailable(
    tls_server: NatsServer, tmp_path: Path
) -> None:
    with tls_server:
        spine = NatsSpine(settings_for(tls_server, tls_ca_file=tmp_path / "ca.pem"))
        await spine.start()
        try:
            readiness = await spine.check()
            assert not readiness.ready
            assert (readiness.reason or "").startswith("unavailable: nats: cannot connect")
        finally:
            await spine.close()
