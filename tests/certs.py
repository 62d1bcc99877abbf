"""
Test certificates, generated at test time with C{cryptography}.

L{testCertificates} makes, once per process, in a temporary directory:

  - a trusted CA;
  - a server certificate for C{localhost} and C{127.0.0.1} signed by it;
  - a client certificate signed by it;
  - a second, untrusted CA and a client certificate signed by that one.

Keys are ECDSA P-256 (fast to make).  The directory is removed when the
process exits.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TestCertificates:
    """
    Paths of the generated PEM files.

    @ivar directory: the directory holding them.
    @ivar caCert: the trusted CA's certificate.
    @ivar caKey: the trusted CA's private key.
    @ivar serverCert: the server certificate (C{localhost}, C{127.0.0.1}),
        signed by the trusted CA.
    @ivar serverKey: its private key.
    @ivar clientCert: a client certificate signed by the trusted CA.
    @ivar clientKey: its private key.
    @ivar untrustedCaCert: a second CA's certificate, trusted by nobody.
    @ivar untrustedClientCert: a client certificate signed by the untrusted
        CA.
    @ivar untrustedClientKey: its private key.
    """

    directory: str
    caCert: str
    caKey: str
    serverCert: str
    serverKey: str
    clientCert: str
    clientKey: str
    untrustedCaCert: str
    untrustedClientCert: str
    untrustedClientKey: str

    def read(self, name: str) -> bytes:
        """
        @param name: the name of one of the path attributes, e.g.
            C{"clientKey"}.
        @return: the bytes of that file.
        """
        with open(getattr(self, name), "rb") as f:
            return f.read()


_cache: dict[str, TestCertificates] = {}


def _newKey() -> ec.EllipticCurvePrivateKey:
    """
    @return: a new P-256 private key.
    """
    return ec.generate_private_key(ec.SECP256R1())


def _name(commonName: str) -> x509.Name:
    """
    @param commonName: the CN.
    @return: a subject or issuer name.
    """
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "txgetty tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, commonName),
    ])


def _makeCA(commonName: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    @param commonName: the CA's CN.
    @return: a self-signed CA certificate and its key.
    """
    key = _newKey()
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name(commonName)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _makeLeaf(
    commonName: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """
    @param commonName: the certificate's CN.
    @param ca: the signing CA's certificate and key.
    @param server: C{True} for a server certificate (C{localhost} and
        C{127.0.0.1}, serverAuth), C{False} for a client one (clientAuth).
    @return: the certificate and its key.
    """
    caCert, caKey = ca
    key = _newKey()
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(commonName))
        .issuer_name(caCert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(caKey.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
    return builder.sign(caKey, hashes.SHA256()), key


def _writeCert(directory: str, fileName: str, cert: x509.Certificate) -> str:
    """
    @param directory: where to write.
    @param fileName: the file's name.
    @param cert: the certificate.
    @return: the path of the PEM file written.
    """
    path = os.path.join(directory, fileName)
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _writeKey(directory: str, fileName: str, key: ec.EllipticCurvePrivateKey) -> str:
    """
    @param directory: where to write.
    @param fileName: the file's name.
    @param key: the private key.
    @return: the path of the unencrypted PEM (PKCS#8) file written.
    """
    path = os.path.join(directory, fileName)
    with open(path, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    os.chmod(path, 0o600)
    return path


def testCertificates() -> TestCertificates:
    """
    Make the test PKI once per process and return its files.

    @return: the paths of every certificate and key.
    """
    cached = _cache.get("pki")
    if cached is not None:
        return cached
    directory = tempfile.mkdtemp(prefix="txgetty-certs-")
    atexit.register(shutil.rmtree, directory, True)
    ca = _makeCA("txgetty test CA")
    serverCert, serverKey = _makeLeaf("localhost", ca, server=True)
    clientCert, clientKey = _makeLeaf("txgetty test client", ca, server=False)
    untrustedCa = _makeCA("txgetty untrusted CA")
    badCert, badKey = _makeLeaf("txgetty untrusted client", untrustedCa, server=False)
    pki = TestCertificates(
        directory=directory,
        caCert=_writeCert(directory, "ca.pem", ca[0]),
        caKey=_writeKey(directory, "ca.key", ca[1]),
        serverCert=_writeCert(directory, "server.pem", serverCert),
        serverKey=_writeKey(directory, "server.key", serverKey),
        clientCert=_writeCert(directory, "client.pem", clientCert),
        clientKey=_writeKey(directory, "client.key", clientKey),
        untrustedCaCert=_writeCert(directory, "untrusted-ca.pem", untrustedCa[0]),
        untrustedClientCert=_writeCert(directory, "untrusted-client.pem", badCert),
        untrustedClientKey=_writeKey(directory, "untrusted-client.key", badKey),
    )
    _cache["pki"] = pki
    return pki

