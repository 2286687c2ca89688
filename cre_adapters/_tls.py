"""Mutual TLS between the coordinator and the nodes: pinned self-signed certificates.

Each identity (every node, and the DON owner's coordinator) has its own key
pair and a self-signed certificate made by ``vouch don init``. The DON config
carries every certificate (PEM), so a connection is trusted only when the
peer shows exactly the certificate the config pins for it: a node's server
certificate is the only trust anchor of the coordinator's connection to that
node (and it names the node's host, checked as usual), and a node accepts a
client only with the owner's certificate or another node's (cross-checks).
Nothing else, no public CA, is trusted. The certificates are no CA
(basicConstraints CA:FALSE, no keyCertSign): a pinned key cannot vouch for
any other certificate, so only the pinned certificates themselves verify.

Certificates are made with ``cryptography`` (only ``don init`` needs it);
the connections use the standard library's ``ssl``.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from pathlib import Path

from ._errors import ConfigError

CERT_DAYS = 3650


def make_identity(name: str, hosts: list[str], key_file: Path) -> str:
    """A new P-256 key written to ``key_file`` (0600) and its self-signed certificate (PEM).

    ``hosts`` (names or IP addresses) go into the certificate's subjectAltName
    with ``name``, so a client checking the host it dialled accepts it.

    Raises:
        ConfigError: ``key_file`` already exists.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if key_file.exists():
        raise ConfigError(f"TLS key {key_file} already exists; remove it or keep its certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"vouch {name}")])
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    for host in dict.fromkeys(hosts):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the certificate's DER bytes, hex: what a peer's certificate is compared by."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of DER certificate bytes, hex."""
    return hashlib.sha256(der).hexdigest()


def client_context(server_cert: str, own_cert: str | None, own_key: Path | None) -> ssl.SSLContext:
    """A client context that trusts exactly ``server_cert`` and shows our own certificate.

    Raises:
        ConfigError: the pinned certificate or our key cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_verify_locations(cadata=server_cert)
    except ssl.SSLError as exc:
        raise ConfigError(f"the pinned node certificate is not a PEM certificate: {exc}") from None
    if own_cert is not None and own_key is not None:
        _load_chain(context, own_cert, own_key)
    return context


def server_context(own_cert: str, own_key: Path, clients: list[str]) -> ssl.SSLContext:
    """A server context showing our certificate that admits only clients showing one of ``clients``.

    Raises:
        ConfigError: our key or a pinned certificate cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    _load_chain(context, own_cert, own_key)
    try:
        context.load_verify_locations(cadata="\n".join(clients))
    except ssl.SSLError as exc:
        raise ConfigError(f"a pinned client certificate is not a PEM certificate: {exc}") from None
    return context


def _load_chain(context: ssl.SSLContext, cert: str, key: Path) -> None:
    import tempfile

    # ssl loads a certificate chain from files only: the pinned PEM goes through a private temp file
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=True) as handle:
        handle.write(cert)
        handle.flush()
        try:
            context.load_cert_chain(handle.name, str(key))
        except FileNotFoundError:
            raise ConfigError(
                f"TLS key {key} not found: copy this host's bundle from `vouch don init --hosts`"
            ) from None
        except ssl.SSLError as exc:
            raise ConfigError(
                f"TLS key {key} does not match the certificate the DON config pins: {exc}"
            ) from None


__all__ = [
    "client_context",
    "der_fingerprint",
    "fingerprint",
    "make_identity",
    "server_context",
]
