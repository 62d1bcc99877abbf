"""
TLS for servers: loading the key, certificate, chain and client-CA files
with clear errors, the server context (optionally requiring client
certificates), and plain-words descriptions of failed handshakes.
"""

from __future__ import annotations

import datetime
import re
from ssl import get_default_verify_paths
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from cryptography import x509
from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet import ssl
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.python.failure import Failure
from zope.interface import implementer

from .addresses import formatAddress
from ..errors import ConfigError, TLSHandshakeError

_log = Logger()
#: The smallest RSA/DSA key OpenSSL's default security level (2) accepts.
_MIN_RSA_BITS = 2048
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
    keyFile, certFile = f"the {keyOption} file {keyPath!r}", f"the {certOption} file {certPath!r}"
    if b"ENCRYPTED" in key.split(b"-----END", 1)[0]:
        raise ConfigError(
            f"{keyFile} holds a passphrase-protected private key; txgetty needs it unencrypted "
            f"(openssl pkey -in {keyPath} -out PLAIN.key), readable only by the server's user"
        )
    try:
        keyPair = ssl.KeyPair.load(key, crypto.FILETYPE_PEM)
    except crypto.Error:
        raise ConfigError(
            f"{keyFile} holds no usable PEM private key (expected a '-----BEGIN PRIVATE KEY-----' block; "
            f"is it the certificate, or DER?)"
        ) from None
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.use_certificate(cert.original)
    except SSL.Error as e:
        raise ConfigError(f"{certFile}: {_refusedCertificate(e, cert)}") from None
    try:
        context.use_privatekey(keyPair.original)
        context.check_privatekey()
    except SSL.Error as e:
        if any("key too small" in r for r in _opensslReasons(e)):
            raise ConfigError(f"{keyFile}: {_refusedCertificate(e, cert)}") from None
        raise ConfigError(
            f"the private key in {keyPath!r} ({keyOption}) is not the key of the certificate in "
            f"{certPath!r} ({certOption}): give the key the certificate was made for "
            f"[{'; '.join(_opensslReasons(e))}]"
        ) from None
    _warnIfNotValidNow(cert, certFile)
    return ssl.PrivateCertificate.fromCertificateAndKeyPair(cert, keyPair)


def _keyDescription(cert: ssl.Certificate) -> str:
    """
    @param cert: a certificate.
    @return: its public key's size and type, e.g. C{"1024-bit RSA"}.
    """
    key = cert.original.get_pubkey()
    kind = {crypto.TYPE_RSA: "RSA", crypto.TYPE_DSA: "DSA"}.get(key.type(), "EC")
    return f"{key.bits()}-bit {kind}"


def _refusedCertificate(error: SSL.Error, cert: ssl.Certificate) -> str:
    """
    @param error: why OpenSSL refused to use a certificate or its key.
    @param cert: the certificate.
    @return: the reason in plain words, with what to change.
    """
    reasons = _opensslReasons(error)
    if any("key too small" in r for r in reasons):
        return (
            f"the certificate's {_keyDescription(cert)} key is too small for OpenSSL's security level "
            f"(RSA and DSA need 2048 bits or more): make a new key (RSA 2048+ or EC P-256) and a "
            f"certificate for it [{'; '.join(reasons)}]"
        )
    if any("md too weak" in r for r in reasons):
        return (
            "the certificate is signed with a digest OpenSSL's security level refuses (MD5 or SHA-1): "
            f"have it re-issued with SHA-256 [{'; '.join(reasons)}]"
        )
    return f"OpenSSL refuses the certificate: {'; '.join(reasons) or error}"


def _utc(stamp: bytes | None) -> datetime.datetime | None:
    """
    @param stamp: an ASN.1 time as pyOpenSSL gives it (C{b"20260101000000Z"}).
    @return: the time, or C{None}.
    """
    if not stamp:
        return None
    return datetime.datetime.strptime(stamp.decode("ascii"), "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def _when(moment: datetime.datetime | None) -> str:
    """
    @param moment: a UTC time.
    @return: it as C{2026-01-01 00:00 UTC}.
    """
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


_warnedValidity: set[tuple[str, Any, Any]] = set()


def _warnIfNotValidNow(cert: ssl.Certificate, what: str) -> None:
    """
    Warn (once per file and process) about a certificate that peers will
    refuse because of its dates.

    @param cert: the certificate.
    @param what: which file it came from, for the message.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    notBefore, notAfter = _utc(cert.original.get_notBefore()), _utc(cert.original.get_notAfter())
    key = (what, notBefore, notAfter)
    if key in _warnedValidity:
        return  # the same file is loaded at option parsing and at start
    _warnedValidity.add(key)
    if notAfter is not None and notAfter < now:
        _log.warn("txgetty: the certificate in {certificate} expired on {date}: peers that verify it will refuse "
                  "the connection; renew it", certificate=what, date=_when(notAfter))
    elif notBefore is not None and notBefore > now:
        _log.warn("txgetty: the certificate in {certificate} is not valid before {date}: peers that verify it will "
                  "refuse the connection until then (or check this host's clock)", certificate=what,
                  date=_when(notBefore))


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
            context = options.getContext()
        except SSL.Error as e:
            reasons = "; ".join(_opensslReasons(e)) or str(e)
            if self.dhParameters and "dh" in reasons.lower():
                raise ConfigError(f"the dhParameters file {self.dhParameters!r} cannot be used: {reasons}") from None
            raise ConfigError(
                f"OpenSSL refuses the TLS files {self.cert!r}, {self.chain!r}, {self.clientCA!r} "
                f"(--tls-cert, --tls-chain, --tls-client-ca): {reasons}"
            ) from None
        # Keep why a client certificate was refused, for the handshake error.
        context.set_verify(context.get_verify_mode(), _recordClientVerifyError)
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
        trusted = loadCertificates(self.caFile, "--ca-file") if self.caFile else None
        trust: Any = ssl.trustRootFromCertificates(trusted) if trusted else ssl.platformTrust()
        creator = ssl.optionsForClientTLS(name, trustRoot=trust, clientCertificate=client)
        return _DiagnosingCreator(creator, trusted)


@implementer(IOpenSSLClientConnectionCreator)
class _DiagnosingCreator:
    """
    A client connection creator that remembers, for each connection, how to
    find out why the server's certificate failed verification (expired,
    self-signed, unknown CA ...), so that a failed handshake says why, not
    just "certificate verify failed".  Verification itself is Twisted's,
    unchanged (chain and host name).
    """

    def __init__(self, creator: Any, trusted: list[ssl.Certificate] | None) -> None:
        """
        @param creator: Twisted's creator (L{ssl.optionsForClientTLS}).
        @param trusted: the CAs it trusts, or C{None} for the platform's.
        """
        self._creator = creator
        self._trusted = trusted

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """
        @param tlsProtocol: the TLS protocol.
        @return: the connection of Twisted's creator.
        """
        connection = self._creator.clientConnectionForTLS(tlsProtocol)
        _diagnosers[connection] = self
        return connection

    def _store(self) -> crypto.X509Store:
        """
        @return: a certificate store holding the CAs this creator trusts.
        """
        store = crypto.X509Store()
        if self._trusted is None:
            paths = get_default_verify_paths()
            store.load_locations(paths.cafile, paths.capath)
        else:
            for cert in self._trusted:
                store.add_cert(cert.original)
        return store

    def diagnose(self, connection: SSL.Connection) -> tuple[int, int, Any, str] | None:
        """
        Verify the chain the server sent again, against the same CAs, to
        learn OpenSSL's verification error.

        @param connection: a connection whose handshake failed.
        @return: the OpenSSL verify error code, the depth in the chain, the
            certificate concerned and C{"server"}; or C{None} if there is no
            chain or it verifies.
        """
        chain = connection.get_peer_cert_chain() or []
        if not chain:
            return None
        try:
            store = self._store()
            crypto.X509StoreContext(store, chain[0], chain[1:]).verify_certificate()
        except crypto.X509StoreContextError as e:
            return e.errors[0], e.errors[1], e.certificate, "server"
        except Exception:
            # Only a diagnosis: never let it hide the handshake's failure.
            return None
        # The chain verifies without the connection's security level: what
        # that level refuses is a key too small (X509_V_ERR_EE_KEY_TOO_SMALL).
        key = chain[0].get_pubkey()
        if key.type() in (crypto.TYPE_RSA, crypto.TYPE_DSA) and key.bits() < _MIN_RSA_BITS:
            return 66, 0, chain[0], "server"
        return None


#: The first certificate-verification error of each TLS connection of a
#: server (the OpenSSL code, the depth in the chain, the certificate, whose
#: it is).
_verifyErrors: WeakKeyDictionary[SSL.Connection, tuple[int, int, Any, str]] = WeakKeyDictionary()

#: The client creators of client connections, to diagnose failures.
_diagnosers: WeakKeyDictionary[SSL.Connection, _DiagnosingCreator] = WeakKeyDictionary()


def _recordClientVerifyError(connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
    """
    A server's OpenSSL verification callback for client certificates: it
    changes nothing (it returns OpenSSL's verdict) but keeps the first
    error.

    @return: C{ok}.
    """
    if not ok and connection not in _verifyErrors:
        _verifyErrors[connection] = (errno, depth, cert, "client")
    return bool(ok)


_REASONS = (
    ("peer did not return a certificate",
     "the client presented no certificate, but this server requires one (--tls-client-ca)"),
    ("certificate verify failed",
     "the peer's certificate could not be verified "
     "(servers trust --tls-client-ca, clients caFile/--ca-file or the platform's CAs)"),
    ("certificate required",
     "the server rejected our connection: it requires a client certificate (cert and key)"),
    ("certificate expired", "the peer rejected our certificate: it has expired (renew it)"),
    ("bad certificate", "the peer rejected our certificate (bad certificate: wrong name or purpose?)"),
    ("unsupported certificate", "the peer rejected our certificate: it is not for this use (extended key usage)"),
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


def tlsConnectionOf(transport: Any) -> SSL.Connection | None:
    """
    @param transport: a transport (TLS or not).
    @return: its OpenSSL connection, or C{None} if it is not a TLS
        transport.
    """
    getHandle = getattr(transport, "getHandle", None)
    handle = getHandle() if getHandle is not None else None
    return handle if isinstance(handle, SSL.Connection) else None


def isTLSFailure(reason: Failure) -> bool:
    """
    @param reason: why a connection ended.
    @return: whether the TLS layer ended it (an alert, a verification error).
    """
    # isinstance, not Failure.check: this runs for every lost connection,
    # and check() compares qualified names of the whole class hierarchy.
    return isinstance(reason.value, (SSL.Error, VerificationError))


#: OpenSSL's X509_V_ERR codes, in plain words (the certificate's name and
#: dates are added), and what to change.
_VERIFY_CODES: dict[int, str] = {
    2: "is signed by a CA ({issuer}) that is not trusted here: trust that CA with {trust}{chain}",
    7: "has an invalid signature (corrupted, or not issued by {issuer})",
    9: "is not valid yet (not before {notBefore}): wait, or check the clocks of both hosts",
    10: "has expired (on {notAfter}): renew it",
    18: "is self-signed, and not trusted here: trust it with {trust}, or use a certificate "
        "signed by a trusted CA",
    19: "chains to a self-signed CA ({issuer}) that is not trusted here: trust that CA with {trust}",
    20: "is signed by a CA ({issuer}) that is not trusted here: trust that CA with {trust}{chain}",
    21: "is signed by a CA ({issuer}) that is not trusted here: trust that CA with {trust}",
    23: "has been revoked",
    24: "is signed by a certificate that is not a CA ({issuer})",
    26: "is not meant for this use (its extended key usage: server certificates need serverAuth, "
        "client certificates clientAuth)",
    66: "has a key too small for OpenSSL's security level ({key}; RSA needs 2048 bits or more): "
        "make a new key and certificate",
    67: "is signed by a CA whose key is too small for OpenSSL's security level ({issuer})",
    68: "is signed with a digest OpenSSL's security level refuses (MD5 or SHA-1): have it re-issued",
}


def _commonName(name: Any) -> str:
    """
    @param name: an C{X509Name}.
    @return: its CN (or the whole name).
    """
    return name.CN or str(name)


def _describeVerifyError(connection: SSL.Connection) -> str | None:
    """
    @param connection: a TLS connection whose handshake failed.
    @return: why this side refused the peer's certificate, in plain words,
        or C{None} if nothing was recorded.
    """
    recorded = _verifyErrors.get(connection)
    diagnoser = _diagnosers.get(connection)
    if recorded is None and diagnoser is not None:
        recorded = diagnoser.diagnose(connection)
    if recorded is None:
        return None
    errno, depth, cert, whose = recorded
    trust = "--tls-client-ca" if whose == "client" else "caFile=/--ca-file"
    subject = _commonName(cert.get_subject())
    template = _VERIFY_CODES.get(errno, "failed verification")
    key = cert.get_pubkey()
    text = template.format(
        issuer=_commonName(cert.get_issuer()), trust=trust,
        chain=", or have the server send its intermediate certificates (--tls-chain)" if whose == "server" else "",
        notBefore=_when(_utc(cert.get_notBefore())), notAfter=_when(_utc(cert.get_notAfter())),
        key=f"{key.bits()}-bit {'RSA' if key.type() == crypto.TYPE_RSA else 'key'}",
    )
    what = f"the {whose}'s certificate {subject!r}" if depth == 0 else (
        f"the {whose}'s certificate chain: CA certificate {subject!r} (depth {depth})")
    return f"{what} {text} [certificate verify failed: OpenSSL verify error {errno}]"


def _describeHostnameMismatch(connection: SSL.Connection | None, reason: Failure) -> str:
    """
    @param connection: the connection, for the server's certificate.
    @param reason: the C{service_identity.VerificationError}.
    @return: which names the certificate holds and what to change.
    """
    names: list[str] = []
    cert = None
    if connection is not None:
        chain = connection.get_peer_cert_chain() or []
        cert = connection.get_peer_certificate() or (chain[0] if chain else None)
    if cert is not None:
        try:
            san = cert.to_cryptography().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
            names += [str(a) for a in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            names = [_commonName(cert.get_subject())]
    dialled = ", ".join(_mismatchedName(e) for e in getattr(reason.value, "errors", ())) or "?"
    held = ", ".join(names) or "no names"
    return (
        f"hostname mismatch: the server's certificate is for {held}, not for {dialled}: dial one of "
        f"those names, or verify another name with hostname=NAME (--hostname)"
    )


def _mismatchedName(error: Any) -> str:
    """
    @param error: one of service_identity's mismatch errors.
    @return: the name or address that was dialled.
    """
    identity = error.mismatched_id
    value = getattr(identity, "hostname", None) or getattr(identity, "ip", None) or identity
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def describeHandshakeFailure(
    reason: Failure, peer: Any, phase: str = "handshake", connection: SSL.Connection | None = None
) -> TLSHandshakeError:
    """
    Turn the failure that ended a TLS handshake into a plain-words error.

    @param reason: the failure given to C{connectionLost}.
    @param peer: the peer's address.
    @param phase: C{"handshake"}, or C{"connection"} for a failure after the
        local handshake completed (with TLS 1.3 a server checks the client's
        certificate only then).
    @param connection: the OpenSSL connection (the transport's
        C{getHandle()}), to say why the peer's certificate failed
        verification; without it the message is less precise.
    @return: a L{TLSHandshakeError} whose message says what went wrong.
    """
    where = f"TLS {phase} with {formatAddress(peer)} failed"
    if reason.check(ConnectionDone, ConnectionLost):
        return TLSHandshakeError(f"{where}: the peer closed the connection before it completed")
    if reason.check(VerificationError):
        return TLSHandshakeError(f"{where}: {_describeHostnameMismatch(connection, reason)}")
    reasons = _opensslReasons(reason.value)
    if connection is not None and any("certificate verify failed" in r for r in reasons):
        verified = _describeVerifyError(connection)
        if verified is not None:
            return TLSHandshakeError(f"{where}: {verified}")
    for needle, text in _REASONS:
        if any(needle in r for r in reasons):
            return TLSHandshakeError(f"{where}: {text} [{'; '.join(reasons)}]")
    detail = "; ".join(reasons) or reason.getErrorMessage()
    return TLSHandshakeError(f"{where}: {detail}")
