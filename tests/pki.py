"""A throwaway public key infrastructure for TLS tests, made with ``cryptography``.

:func:`make_pki` writes, into a directory, a CA, a certificate it signs for ``localhost``
(subject alternative names ``DNS:localhost``, ``IP:127.0.0.1`` and ``IP:::1``) and an
untrusted self-signed certificate for the same names (for failure cases), and two client
certificates for mutual TLS: one the CA signs, one self-signed. Tests trust the CA and
nothing else; they never turn verification off.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os
import ssl
from typing import List, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "make_pki"]

#: The names every leaf certificate is valid for.
LOCAL_NAMES: Tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class Pki:
    """Paths of the files :func:`make_pki` wrote, and contexts built from them.

    Attributes:
        ca_file: the CA certificate (PEM), the only thing clients trust.
        cert_file: the ``localhost`` certificate signed by the CA (PEM).
        key_file: its private key (PEM, unencrypted).
        chain_file: ``cert_file`` followed by ``key_file`` in one PEM file.
        untrusted_cert_file: a self-signed ``localhost`` certificate no client trusts.
        untrusted_key_file: its private key.
        client_cert_file: a client certificate (``clientAuth``) signed by the CA.
        client_key_file: its private key.
        untrusted_client_cert_file: a self-signed client certificate no server trusts.
        untrusted_client_key_file: its private key.
    """

    ca_file: str
    cert_file: str
    key_file: str
    chain_file: str
    untrusted_cert_file: str
    untrusted_key_file: str
    client_cert_file: str
    client_key_file: str
    untrusted_client_cert_file: str
    untrusted_client_key_file: str

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts the CA only."""
        return ssl.create_default_context(cafile=self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting the CA-signed ``localhost`` certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def untrusted_server_context(self) -> ssl.SSLContext:
        """A server context presenting the untrusted self-signed certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.untrusted_cert_file, self.untrusted_key_file)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wsclient tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names() -> x509.SubjectAlternativeName:
    entries: List[x509.GeneralName] = [x509.DNSName("localhost")]
    entries += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOCAL_NAMES[1:]]
    return x509.SubjectAlternativeName(entries)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _leaf(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
          signer: ec.EllipticCurvePrivateKey, *, client: bool = False) -> x509.Certificate:
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    return (
        _builder(subject, issuer, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_alt_names(), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(  # Python 3.13's default contexts (VERIFY_X509_STRICT) require it.
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
        .sign(signer, hashes.SHA256())
    )


def _ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = _name("wsclient test CA")
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )
    return (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _write(path: str, *blobs: bytes) -> str:
    with open(path, "wb") as file:
        for blob in blobs:
            file.write(blob)
    os.chmod(path, 0o644)  # a proxy that drops privileges (squid) must still read it
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: str) -> Pki:
    """Create the CA, the ``localhost`` certificate, the untrusted one and the client
    certificates in ``directory``.

    Args:
        directory: an existing directory (a test's temporary directory).

    Returns:
        The :class:`Pki` naming the files.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca(ca_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = _leaf(_name("localhost"), ca_cert.subject, leaf_key, ca_key)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue_cert = _leaf(_name("localhost"), _name("localhost"), rogue_key, rogue_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _leaf(_name("test client"), ca_cert.subject, client_key, ca_key, client=True)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger_cert = _leaf(_name("stranger"), _name("stranger"), stranger_key, stranger_key,
                          client=True)

    def path(name: str) -> str:
        return os.path.join(directory, name)

    return Pki(
        ca_file=_write(path("ca.pem"), _cert_pem(ca_cert)),
        cert_file=_write(path("localhost.pem"), _cert_pem(leaf_cert)),
        key_file=_write(path("localhost.key"), _key_pem(leaf_key)),
        chain_file=_write(path("localhost-chain.pem"), _cert_pem(leaf_cert), _key_pem(leaf_key)),
        untrusted_cert_file=_write(path("untrusted.pem"), _cert_pem(rogue_cert)),
        untrusted_key_file=_write(path("untrusted.key"), _key_pem(rogue_key)),
        client_cert_file=_write(path("client.pem"), _cert_pem(client_cert)),
        client_key_file=_write(path("client.key"), _key_pem(client_key)),
        untrusted_client_cert_file=_write(path("stranger.pem"), _cert_pem(stranger_cert)),
        untrusted_client_key_file=_write(path("stranger.key"), _key_pem(stranger_key)),
    )
