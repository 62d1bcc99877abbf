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
from service_identity import VerificationError
from twisted.internet import ssl
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.python.failure import Failure

from .addresses import formatAddress
from .errors import ConfigError, TLSHandshakeError

_log = Logger()
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


def loadPrivateCertificate(
    keyPath: str, certPath: str, keyOption: str = "--tls-key", certOption: str = "--tls-cert"
) -> ssl.PrivateCertificate:
    """
    Load a private key and its certificate.

    @param keyPath: the PEM private key file.
    @param certPath: the PEM certificate file; certificates after the first
        are ignored here (give them as the chain).
    @param keyOption: the setting that named the key file, for messages.
    @param certOption: the setting that named the certificate file.
    @return: the key and certificate together.
    @raise ConfigError: a file is missing or broken, or the key does not
        belong to the certificate.
    """
    key = _readFile(keyPath, keyOption)
    cert = loadCertificates(certPath, certOption)[0]
    try:
        keyPair = ssl.KeyPair.load(key, crypto.FILETYPE_PEM)
    except crypto.Error:
        raise ConfigError(f"the {keyOption} file {keyPath!r} holds no usable PEM private key") from None
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.use_certificate(cert.original)
        context.use_privatekey(keyPair.original)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError(
            f"the private key in {keyPath!r} ({keyOption}) does not match the certificate "
            f"in {certPath!r} ({certOption})"
        ) from None
    return ssl.PrivateCertificate.fromCertificateAndKeyPair(cert, keyPair)


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
    @ivar method: optional name of an C{OpenSSL.SSL} method constant (e.g.
        C{TLS_METHOD}), as Twisted's C{sslmethod=}.
    @ivar dhParameters: optional PEM file of Diffie-Hellman parameters, for
        the C{DHE} ciphers of TLS 1.2 (Twisted's C{dhParameters=}).
    """

    key: str
    cert: str
    chain: str | None = None
    clientCA: str | None = None
    method: str | None = None
    dhParameters: str | None = None

    def options(self) -> ssl.CertificateOptions:
        """
        Load the files and build the server's TLS options.

        @return: a L{CertificateOptions <twisted.internet.ssl.CertificateOptions>} ready for a TLS endpoint.
        @raise ConfigError: a file is missing, broken or mismatched.
        """
        private = loadPrivateCertificate(self.key, self.cert)
        kw: dict[str, Any] = {}
        if self.chain:
            kw["extraCertChain"] = [c.original for c in loadCertificates(self.chain, "--tls-chain")]
        if self.clientCA:
            cas = loadCertificates(self.clientCA, "--tls-client-ca")
            kw["trustRoot"] = ssl.trustRootFromCertificates(cas)
        if self.method:
            kw["method"] = _sslMethod(self.method)
        if self.dhParameters:
            _readFile(self.dhParameters, "dhParameters")
            kw["dhParameters"] = ssl.DiffieHellmanParameters.fromFile(FilePath(self.dhParameters))
        options = ssl.CertificateOptions(
            privateKey=private.privateKey.original, certificate=private.original, **kw
        )
        try:
            options.getContext()
        except SSL.Error as e:
            if not self.dhParameters:
                raise
            raise ConfigError(f"the dhParameters file {self.dhParameters!r} cannot be used: {e}") from None
        return options


def _sslMethod(name: str) -> int:
    """
    @param name: the name of an C{OpenSSL.SSL} method constant.
    @return: its value.
    @raise ConfigError: there is no such method.
    """
    methods = sorted(m for m in dir(SSL) if m.endswith("_METHOD"))
    if name not in methods:
        raise ConfigError(f"unknown sslmethod {name!r}; OpenSSL offers {', '.join(methods)}")
    value: int = getattr(SSL, name)
    return value


@dataclass(frozen=True)
class TLSClientSettings:
    """
    How a client checks the server and proves who it is.

    By default the server's certificate must chain to the platform's trusted
    CAs and name the host dialled (service_identity checks the hostname or IP
    address).  Turning verification off must be asked for by name.

    @ivar caFile: PEM file of the CAs to trust instead of the platform's.
    @ivar cert: PEM client certificate file, for servers that require one.
    @ivar key: PEM private key file of C{cert}.
    @ivar hostname: the name to verify instead of the host dialled.
    @ivar insecure: accept any server certificate (no verification at all);
        a warning is logged every time such a connection is set up.
    """

    caFile: str | None = None
    cert: str | None = None
    key: str | None = None
    hostname: str | None = None
    insecure: bool = False

    def creator(self, host: str) -> Any:
        """
        Build the TLS connection creator for one server.

        @param host: the host dialled; verified unless C{hostname} is given.
        @return: an C{IOpenSSLClientConnectionCreator}.
        @raise ConfigError: a file is missing, broken or mismatched, or only
            one of C{cert} and C{key} is given.
        """
        if bool(self.cert) != bool(self.key):
            raise ConfigError("a client certificate needs both cert and key (--cert and --key)")
        client = loadPrivateCertificate(self.key, self.cert, "--key", "--cert") if self.cert and self.key else None
        name = self.hostname or host
        if self.insecure:
            _log.warn(
                "txgetty: INSECURE TLS to {host}: the server certificate is not verified "
                "(insecure=True); anyone on the path can read and change this connection",
                host=name,
            )
            kw: dict[str, Any] = {}
            if client is not None:
                kw = {"privateKey": client.privateKey.original, "certificate": client.original}
            return ssl.CertificateOptions(verify=False, **kw)
        if self.caFile:
            trust: Any = ssl.trustRootFromCertificates(loadCertificates(self.caFile, "--ca-file"))
        else:
            trust = ssl.platformTrust()
        return ssl.optionsForClientTLS(name, trustRoot=trust, clientCertificate=client)


_REASONS = (
    ("peer did not return a certificate",
     "the client presented no certificate, but this server requires one (--tls-client-ca)"),
    ("certificate verify failed",
     "the peer's certificate is not signed by a trusted CA "
     "(servers trust --tls-client-ca, clients caFile/--ca-file or the platform's CAs)"),
    ("certificate required",
     "the server rejected our connection: it requires a client certificate (cert and key)"),
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


def isTLSFailure(reason: Failure) -> bool:
    """
    @param reason: why a connection ended.
    @return: whether the TLS layer ended it (an alert, a verification error).
    """
    # isinstance, not Failure.check: this runs for every lost connection,
    # and check() compares qualified names of the whole class hierarchy.
    return isinstance(reason.value, (SSL.Error, VerificationError))


def describeHandshakeFailure(reason: Failure, peer: Any, phase: str = "handshake") -> TLSHandshakeError:
    """
    Turn the failure that ended a TLS handshake into a plain-words error.

    @param reason: the failure given to C{connectionLost}.
    @param peer: the peer's address.
    @param phase: C{"handshake"}, or C{"connection"} for a failure after the
        local handshake completed (with TLS 1.3 a server checks the client's
        certificate only then).
    @return: a L{TLSHandshakeError} whose message says what went wrong.
    """
    where = f"TLS {phase} with {formatAddress(peer)} failed"
    if reason.check(ConnectionDone, ConnectionLost):
        return TLSHandshakeError(f"{where}: the peer closed the connection before it completed")
    if reason.check(VerificationError):
        return TLSHandshakeError(
            f"{where}: the server certificate does not match the name dialled "
            f"(hostname mismatch: {reason.getErrorMessage()})"
        )
    reasons = _opensslReasons(reason.value)
    for needle, text in _REASONS:
        if any(needle in r for r in reasons):
            return TLSHandshakeError(f"{where}: {text} [{'; '.join(reasons)}]")
    detail = "; ".join(reasons) or reason.getErrorMessage()
    return TLSHandshakeError(f"{where}: {detail}")
