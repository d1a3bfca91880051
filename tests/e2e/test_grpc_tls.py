"""TLS and mutual TLS: certificates made here with `cryptography`, a real aio server.

Certificates carry a fixed validity window (2020-2100) so nothing depends on
the wall clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.adapters.principals_file import certificate_fingerprint, hash_token
from ledger.client.errors import decode_error
from ledger.grpc.auth import current_principal
from ledger.grpc.server import ServerConfig, ServerConfigError, build_server

T = TypeVar("T")
NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
TOKEN = "tls-bearer-token"


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _issue(cn: str, issuer: Issued | None, *, server: bool = False, ca: bool = False) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    ca: Issued
    server: Issued
    by_fingerprint: Issued  # client mapped by its DER fingerprint
    by_cn: Issued  # client mapped by its subject CN
    unmapped: Issued  # signed by the CA but not in the principals file
    rogue: Issued  # from another CA
    dir: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = _issue("sla-ledger test CA", None, ca=True)
    other_ca = _issue("other CA", None, ca=True)
    pki = Pki(
        ca=ca,
        server=_issue("localhost", ca, server=True),
        by_fingerprint=_issue("importer-client", ca),
        by_cn=_issue("auditor.example", ca),
        unmapped=_issue("stranger", ca),
        rogue=_issue("auditor.example", other_ca),
        dir=directory,
    )
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    (directory / "server.pem").write_bytes(pki.server.cert_pem)
    (directory / "server.key").write_bytes(pki.server.key_pem)
    (directory / "principals.yaml").write_text(
        "principals:\n"
        f"  - {{name: importer, org: operator, role: admin,"
        f" client_cert_sha256: {certificate_fingerprint(pki.by_fingerprint.der)}}}\n"
        "  - {name: watchdog, org: regulator, role: auditor,"
        " client_cert_subject_cn: auditor.example}\n"
        f"  - {{name: herts-noc, org: herts, role: provider, token_sha256: {hash_token(TOKEN)}}}\n"
    )
    return pki


async def _whoami(request: bytes, context: Any) -> bytes:
    principal = current_principal()
    return json.dumps([principal.name, principal.org, principal.role]).encode()


def _register(server: Any) -> list[str]:
    handler = grpc.method_handlers_generic_handler(
        "test.Who", {"Ami": grpc.unary_unary_rpc_method_handler(_whoami)}
    )
    server.add_generic_rpc_handlers([handler])
    return ["test.Who"]


def _config(pki: Pki, *, mutual: bool) -> ServerConfig:
    return ServerConfig(
        listen="127.0.0.1:0",
        principals=pki.dir / "principals.yaml",
        tls_cert=pki.dir / "server.pem",
        tls_key=pki.dir / "server.key",
        tls_client_ca=pki.dir / "ca.pem" if mutual else None,
    )


def _run(
    config: ServerConfig,
    client: Issued | None,
    pki: Pki,
    scenario: Callable[[grpc.aio.Channel], Awaitable[T]],
) -> T:
    async def main() -> T:
        running = await build_server(config, _register)
        assert running.tls
        credentials = grpc.ssl_channel_credentials(
            root_certificates=pki.ca.cert_pem,
            private_key=client.key_pem if client else None,
            certificate_chain=client.cert_pem if client else None,
        )
        try:
            target = f"127.0.0.1:{running.port}"
            async with grpc.aio.secure_channel(target, credentials) as channel:
                return await scenario(channel)
        finally:
            await running.stop(0)

    return asyncio.run(asyncio.wait_for(main(), 30))


async def _ami(channel: grpc.aio.Channel, metadata: Any = None) -> list[str]:
    reply = await channel.unary_unary("/test.Who/Ami")(b"", metadata=metadata, timeout=10)
    result: list[str] = json.loads(reply)
    return result


async def _refused(channel: grpc.aio.Channel, metadata: Any = None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/test.Who/Ami")(b"", metadata=metadata, timeout=10)
    return info.value


def test_tls_with_bearer_token(pki: Pki) -> None:
    bearer = (("authorization", f"Bearer {TOKEN}"),)
    assert _run(_config(pki, mutual=False), None, pki, lambda ch: _ami(ch, bearer)) == [
        "herts-noc",
        "herts",
        "provider",
    ]


def test_tls_without_credentials_is_unauthenticated(pki: Pki) -> None:
    error = _run(_config(pki, mutual=False), None, pki, _refused)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert decode_error(error)["reason"] == "MISSING_CREDENTIALS"


def test_mutual_tls_client_certificate_fingerprint_maps_to_principal(pki: Pki) -> None:
    who = _run(_config(pki, mutual=True), pki.by_fingerprint, pki, _ami)
    assert who == ["importer", "operator", "admin"]


def test_mutual_tls_subject_cn_maps_to_principal(pki: Pki) -> None:
    who = _run(_config(pki, mutual=True), pki.by_cn, pki, _ami)
    assert who == ["watchdog", "regulator", "auditor"]


def test_bearer_token_takes_precedence_over_certificate(pki: Pki) -> None:
    bearer = (("authorization", f"Bearer {TOKEN}"),)
    who = _run(_config(pki, mutual=True), pki.by_cn, pki, lambda ch: _ami(ch, bearer))
    assert who == ["herts-noc", "herts", "provider"]
    bad = (("authorization", "Bearer not-a-token"),)
    error = _run(_config(pki, mutual=True), pki.by_cn, pki, lambda ch: _refused(ch, bad))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


def test_mutual_tls_unmapped_certificate_is_unauthenticated(pki: Pki) -> None:
    error = _run(_config(pki, mutual=True), pki.unmapped, pki, _refused)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert decode_error(error)["reason"] == "UNKNOWN_CERTIFICATE"


@pytest.mark.parametrize("client", ["none", "rogue"])
def test_mutual_tls_refuses_handshake_without_a_trusted_certificate(pki: Pki, client: str) -> None:
    issued = None if client == "none" else pki.rogue
    error = _run(_config(pki, mutual=True), issued, pki, _refused)
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_cannot_talk_to_tls_server(pki: Pki) -> None:
    async def main() -> grpc.StatusCode:
        running = await build_server(_config(pki, mutual=False), _register)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                return (await _refused(channel)).code()
        finally:
            await running.stop(0)

    assert asyncio.run(asyncio.wait_for(main(), 30)) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"tls_key": None}, "must be given together"),
        ({"tls_cert": None, "tls_key": None}, "--tls-client-ca needs --tls-cert"),
        ({"tls_cert": "/nonexistent/cert.pem"}, "cannot read TLS certificate"),
        ({"tls_client_ca": "/nonexistent/ca.pem"}, "cannot read TLS client CA"),
    ],
)
def test_tls_configuration_errors(pki: Pki, overrides: dict[str, Any], words: str) -> None:
    base = _config(pki, mutual=True)
    fields = {
        "listen": base.listen,
        "principals": base.principals,
        "tls_cert": base.tls_cert,
        "tls_key": base.tls_key,
        "tls_client_ca": base.tls_client_ca,
        **overrides,
    }
    with pytest.raises(ServerConfigError, match=words):
        asyncio.run(build_server(ServerConfig(**fields), _register))
