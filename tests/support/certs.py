"""
Test certificates, generated at test time with C{cryptography}.

L{testCertificates} makes, once per process, in a temporary directory:

  - a trusted CA;
  - a server certificate for C{localhost} and C{127.0.0.1} signed by it;
  - a client certificate signed by it;
  - a second, untrusted CA and a client certificate signed by that one.

L{badCertificates} makes, once per process, server (and client)
certificates that peers must refuse, each for a reason of its own: expired,
not yet valid, self-signed, a 1024-bit RSA key, the wrong host name, an
expired client certificate.

Keys are ECDSA P-256 (fast to make) unless said otherwise.  The directory
is removed when the process exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import atexit
import datetime
import ipaddress
import os
import shutil
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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
    ca: tuple[x509.Certificate, Any] | None,
    *,
    server: bool,
    key: Any = None,
    validDays: tuple[float, float] = (-1, 30),
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> tuple[x509.Certificate, Any]:
    """
    @param commonName: the certificate's CN.
    @param ca: the signing CA's certificate and key; C{None} for a
        self-signed certificate.
    @param server: C{True} for a server certificate (C{names}, serverAuth),
        C{False} for a client one (clientAuth).
    @param key: its private key; a new P-256 key if C{None}.
    @param validDays: the start and end of its validity, in days from now.
    @param names: the DNS names and IP addresses of a server certificate.
    @return: the certificate and its key.
    """
    key = key or _newKey()
    caCert, caKey = ca if ca is not None else (None, key)
    issuer = caCert.subject if caCert is not None else _name(commonName)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(commonName))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=validDays[0]))
        .not_valid_after(now + datetime.timedelta(days=validDays[1]))
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
        builder = builder.add_extension(x509.SubjectAlternativeName([_generalName(n) for n in names]),
                                        critical=False)
    return builder.sign(caKey, hashes.SHA256()), key


def _generalName(name: str) -> x509.GeneralName:
    """
    @param name: a DNS name or an IP address.
    @return: it as a subject alternative name.
    """
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


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


def _writeKey(directory: str, fileName: str, key: Any) -> str:
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


@dataclass(frozen=True)
class BadCertificates:
    """
    Paths of certificates (with their keys) that a verifying peer refuses.
    The server ones name C{localhost} and C{127.0.0.1} unless said otherwise
    and, but for the self-signed one, are signed by the trusted CA of
    L{testCertificates}.

    @ivar expiredCert: a server certificate that expired a day ago.
    @ivar futureCert: a server certificate valid only from tomorrow.
    @ivar selfSignedCert: a self-signed server certificate.
    @ivar weakCert: a server certificate with a 1024-bit RSA key.
    @ivar wrongNameCert: a server certificate for C{other.example} only.
    @ivar expiredClientCert: a client certificate that expired a day ago.
    @ivar encryptedKey: the key of C{expiredCert}, passphrase-protected.
    """

    expiredCert: str
    expiredKey: str
    futureCert: str
    futureKey: str
    selfSignedCert: str
    selfSignedKey: str
    weakCert: str
    weakKey: str
    wrongNameCert: str
    wrongNameKey: str
    expiredClientCert: str
    expiredClientKey: str
    encryptedKey: str


def badCertificates() -> BadCertificates:
    """
    Make the refused certificates once per process (in the directory of
    L{testCertificates}, signed by its trusted CA).

    @return: their paths.
    """
    cached = _cache.get("bad")
    if cached is not None:
        return cached  # type: ignore[return-value]
    pki = testCertificates()
    with open(pki.caCert, "rb") as f:
        caCert = x509.load_pem_x509_certificate(f.read())
    with open(pki.caKey, "rb") as f:
        caKey = serialization.load_pem_private_key(f.read(), None)
    ca = (caCert, caKey)
    d = pki.directory
    made: dict[str, str] = {}
    cases: dict[str, tuple[Any, dict[str, Any]]] = {
        "expired": (ca, {"validDays": (-30, -1)}),
        "future": (ca, {"validDays": (1, 30)}),
        "selfSigned": (None, {}),
        "weak": (ca, {"key": rsa.generate_private_key(65537, 1024)}),
        "wrongName": (ca, {"names": ("other.example",)}),
    }
    for name, (signer, kw) in cases.items():
        cert, key = _makeLeaf(f"txgetty {name} server", signer, server=True, **kw)
        made[f"{name}Cert"] = _writeCert(d, f"{name}.pem", cert)
        made[f"{name}Key"] = _writeKey(d, f"{name}.key", key)
        if name == "expired":
            made["encryptedKey"] = os.path.join(d, "encrypted.key")
            with open(made["encryptedKey"], "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(b"secret")))
    cert, key = _makeLeaf("txgetty expired client", ca, server=False, validDays=(-30, -1))
    made["expiredClientCert"] = _writeCert(d, "expired-client.pem", cert)
    made["expiredClientKey"] = _writeKey(d, "expired-client.key", key)
    bad = BadCertificates(**made)
    _cache["bad"] = bad  # type: ignore[assignment]
    return bad
