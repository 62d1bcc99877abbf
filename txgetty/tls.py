"""
TLS for servers: loading the key, certificate, chain and client-CA files
with clear errors, the server context (optionally requiring client
certificates), and plain-words descriptions of failed handshakes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from .addresses import formatAddress
from .errors import ConfigError, TLSHandshakeError

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _readFile(path: str, option: str) -> bytes:
    """
    @param path: a file name.
    @param option: the setting that named it, for the message.
    @return: the file's bytes.
    @raise ConfigError: it cannot be read.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the {option} file {path!r}: {e.strerror}") from None


def loadCertificates(path: str, option: str) -> list[ssl.Certificate]:
    """
    Load every PEM certificate of a file.

    @param path: the file.
    @param option: the setting that named it, for the message.
    @return: the certificates, in file order.
    @raise ConfigError: the file cannot be read or holds no valid certificate.
    """
    blocks = _PEM_CERT.findall(_readFile(path, option))
    if not blocks:
        raise ConfigError(f"the {option} file {path!r} holds no PEM certificate")
    try:
        return [ssl.Certificate.loadPEM(b) for b in blocks]
    except Exception as e:
        raise ConfigError(f"the {option} file {path!r} holds a broken certificate: {e}") from None


def loadPrivateCertificate(keyPath: str, certPath: str) -> ssl.PrivateCertificate:
    """
    Load a private key and its certificate.

    @param keyPath: the PEM private key file (C{--tls-key}).
    @param certPath: the PEM certificate file (C{--tls-cert}); certificates
        after the first are ignored here (give them as the chain).
    @return: the key and certificate together.
    @raise ConfigError: a file is missing or broken, or the key does not
        belong to the certificate.
    """
    key = _readFile(keyPath, "--tls-key")
    cert = loadCertificates(certPath, "--tls-cert")[0]
    try:
        keyPair = ssl.KeyPair.load(key, crypto.FILETYPE_PEM)
    except crypto.Error:
        raise ConfigError(f"the --tls-key file {keyPath!r} holds no usable PEM private key") from None
    private = ssl.PrivateCertificate.fromCertificateAndKeyPair(cert, keyPair)
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.use_certificate(cert.original)
        context.use_privatekey(keyPair.original)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError(
            f"the private key in {keyPath!r} (--tls-key) does not match the certificate "
            f"in {certPath!r} (--tls-cert)"
        ) from None
    return private


@dataclass(frozen=True)
class TLSServerSettings:
    """
    The files of a TLS listener.

    @ivar key: PEM private key file.
    @ivar cert: PEM certificate file.
    @ivar chain: optional PEM file of intermediate certificates sent after
        the certificate.
    @ivar clientCA: optional PEM file of the CAs that sign client
        certificates; when given, every client must present a certificate
        signed by one of them (mutual TLS).
    """

    key: str
    cert: str
    chain: str | None = None
    clientCA: str | None = None

    def options(self) -> ssl.CertificateOptions:
        """
        Load the files and build the server's TLS options.

        @return: a L{CertificateOptions} ready for a TLS endpoint.
        @raise ConfigError: a file is missing, broken or mismatched.
        """
        private = loadPrivateCertificate(self.key, self.cert)
        kw: dict[str, Any] = {}
        if self.chain:
            kw["extraCertChain"] = [c.original for c in loadCertificates(self.chain, "--tls-chain")]
        if self.clientCA:
            cas = loadCertificates(self.clientCA, "--tls-client-ca")
            kw["trustRoot"] = ssl.trustRootFromCertificates(cas)
        options = ssl.CertificateOptions(
            privateKey=private.privateKey.original, certificate=private.original, **kw
        )
        options.getContext()
        return options


_REASONS = (
    ("peer did not return a certificate",
     "the client presented no certificate, but this server requires one (--tls-client-ca)"),
    ("certificate verify failed",
     "the peer's certificate is not signed by a trusted CA (for clients: --tls-client-ca)"),
    ("certificate unknown", "the peer rejected our certificate (it does not trust its CA)"),
    ("unknown ca", "the peer rejected our certificate: its CA is unknown to the peer"),
    ("wrong version number", "the peer does not speak TLS (plain TCP sent to a TLS port?)"),
    ("http request", "the peer sent plain HTTP to a TLS port"),
    ("unsupported protocol", "the peer offered no TLS version this side accepts"),
    ("no shared cipher", "the peer offered no cipher this side accepts"),
)


def _opensslReasons(error: BaseException) -> list[str]:
    """
    @param error: an exception from the TLS layer.
    @return: the OpenSSL reason strings it carries (may be empty).
    """
    if not isinstance(error, SSL.Error) or not error.args or not isinstance(error.args[0], list):
        return []
    return [str(entry[-1]) for entry in error.args[0] if entry]


def describeHandshakeFailure(reason: Failure, peer: Any) -> TLSHandshakeError:
    """
    Turn the failure that ended a TLS handshake into a plain-words error.

    @param reason: the failure given to C{connectionLost}.
    @param peer: the peer's address.
    @return: a L{TLSHandshakeError} whose message says what went wrong.
    """
    where = f"TLS handshake with {formatAddress(peer)} failed"
    if reason.check(ConnectionDone, ConnectionLost):
        return TLSHandshakeError(f"{where}: the peer closed the connection before it completed")
    reasons = _opensslReasons(reason.value)
    for needle, text in _REASONS:
        if any(needle in r for r in reasons):
            return TLSHandshakeError(f"{where}: {text} [{'; '.join(reasons)}]")
    detail = "; ".join(reasons) or reason.getErrorMessage()
    return TLSHandshakeError(f"{where}: {detail}")
