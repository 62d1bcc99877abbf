"""
Integration tests of TLS listeners (C{tls:} endpoints of
L{txgetty.server.Server}) with real sockets on 127.0.0.1: echo with Twisted
and stdlib clients, mutual TLS, clients that fail the handshake, and the
errors of L{txgetty.transports.tls.TLSServerSettings}.
"""

from __future__ import annotations

from typing import Any, Sequence
import os
import socket
import ssl as stdlibSSL

from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from txgetty.config import SessionConfig
from txgetty.errors import ConfigError, ConnectGaveUpError, OpenTimeoutError, TLSHandshakeError
from txgetty.transports.tls import TLSClientSettings, TLSServerSettings
from txgetty.transports.addresses import formatAddress

from ..support.certs import TestCertificates, badCertificates, testCertificates
from ..support.logs import captureEvents
from ..support.net import (
    FramedClient,
    ServerHarness,
    WAIT,
    bounded,
    connectClient,
    echoCheck,
    helloFrame,
    samplePayloads,
)
from ..support.transports import ONCE, startTxClient


TLS = "tls:0:interface=127.0.0.1"


def serverSettings(pki: TestCertificates, mutual: bool = False) -> TLSServerSettings:
    """
    @param pki: the test certificates.
    @param mutual: require client certificates signed by the test CA.
    @return: the server's TLS settings.
    """
    return TLSServerSettings(
        key=pki.serverKey, cert=pki.serverCert, chain=None,
        clientCA=pki.caCert if mutual else None,
    )


def clientOptions(pki: TestCertificates, identity: str | None = None) -> Any:
    """
    @param pki: the test certificates.
    @param identity: C{None} (no client certificate), C{"good"} (signed by
        the trusted CA) or C{"untrusted"} (signed by the other CA).
    @return: Twisted client TLS options that trust the test CA and check
        the server's name C{localhost}.
    """
    kw: dict[str, Any] = {}
    if identity == "good":
        kw["clientCertificate"] = PrivateCertificate.loadPEM(
            pki.read("clientKey") + pki.read("clientCert")
        )
    elif identity == "untrusted":
        kw["clientCertificate"] = PrivateCertificate.loadPEM(
            pki.read("untrustedClientKey") + pki.read("untrustedClientCert")
        )
    return optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(pki.read("caCert")), **kw)


def stdlibEcho(
    port: int,
    payloads: Sequence[bytes],
    cafile: str,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> tuple[list[bytes], str | None]:
    """
    Echo packets through a blocking stdlib C{ssl} client (run it in a
    thread).

    @param port: the server's port on 127.0.0.1.
    @param payloads: the packets to send.
    @param cafile: the CA to trust.
    @param certfile: an optional client certificate.
    @param keyfile: its key.
    @return: the packets received and the TLS version used.
    """
    context = stdlibSSL.create_default_context(cafile=cafile)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"".join(helloFrame(p) for p in payloads))
            received: list[bytes] = []
            buf = b""
            while len(received) < len(payloads):
                chunk = tls.recv(65536)
                if not chunk:
                    raise AssertionError(f"EOF after {len(received)} of {len(payloads)} echoes")
                buf += chunk
                while len(buf) >= 4:
                    length = int.from_bytes(buf[:4], "little")
                    if len(buf) < 4 + length:
                        break
                    received.append(buf[4:4 + length])
                    buf = buf[4 + length:]
            return received, tls.version()


class TLSEchoTests(TestCase):
    """
    A TLS listener serving the hello echo, with and without client
    certificates, and clients it must refuse.
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Make (or reuse) the test certificates.
        """
        self.pki = testCertificates()

    async def startServer(self, mutual: bool = False) -> tuple[ServerHarness, Any]:
        """
        @param mutual: require client certificates.
        @return: the running harness and its bound address.
        """
        harness = ServerHarness(self, [TLS], tls=serverSettings(self.pki, mutual))
        [address] = await harness.start()
        return harness, address

    async def test_echoWithTwistedClient(self) -> None:
        """
        A Twisted TLS client that trusts the test CA and checks the name
        "localhost" gets its pipelined packets echoed; the session opens only
        after the handshake, is named "tls-session" and sees no client
        certificate.
        """
        harness, address = await self.startServer()
        client = await connectClient(self, address, tlsOptions=clientOptions(self.pki))
        await echoCheck(self, client, samplePayloads(300))
        self.assertTrue(client.handshakeDone)
        [session] = harness.sessions
        self.assertEqual(session.name, "tls-session")
        self.assertEqual(session.state, "OPEN")
        self.assertIsNone(session.transport.getPeerCertificate())
        self.assertEqual(harness.listeners[0].names(), ["open"] + ["message"] * 300)

    async def test_echoWithStdlibClient(self) -> None:
        """
        A blocking client built on Python's ssl module (in a thread) also
        verifies the server certificate and gets correct echoes.
        """
        harness, address = await self.startServer()
        payloads = samplePayloads(100, b"stdlib")
        echoes, version = await bounded(
            deferToThread(stdlibEcho, address.port, payloads, self.pki.caCert), "the stdlib client"
        )
        self.assertEqual(echoes, payloads)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    async def test_mutualTLSGoodClient(self) -> None:
        """
        With clientCA set, a Twisted client and a stdlib client presenting
        certificates signed by that CA are served, and the session sees the
        client's certificate.
        """
        harness, address = await self.startServer(mutual=True)
        client = await connectClient(self, address, tlsOptions=clientOptions(self.pki, "good"))
        await echoCheck(self, client, samplePayloads(50))
        cert = harness.sessions[0].transport.getPeerCertificate()
        self.assertEqual(cert.get_subject().CN, "txgetty test client")
        payloads = samplePayloads(20, b"stdlib")
        echoes, _ = await bounded(
            deferToThread(
                stdlibEcho, address.port, payloads, self.pki.caCert,
                self.pki.clientCert, self.pki.clientKey,
            ),
            "the stdlib client",
        )
        self.assertEqual(echoes, payloads)

    async def assertRefused(
        self,
        harness: ServerHarness,
        address: Any,
        badOptions: Any,
        badClient: FramedClient | None = None,
    ) -> FramedClient:
        """
        With a good client connected and served, connect a client that must
        fail the handshake; check it gets nothing, that its session only got
        onError (never onOpen or onClose), and that the good client is still
        served.

        @param harness: the running mutual-TLS server.
        @param address: its address.
        @param badOptions: the refused client's TLS options, or C{None} for
            a plain TCP client.
        @param badClient: the refused client's protocol; a hello client if
            C{None}.
        @return: the refused client.
        """
        good = await connectClient(self, address, tlsOptions=clientOptions(self.pki, "good"))
        await echoCheck(self, good, [b"before"])
        bad = await connectClient(self, address, badClient, tlsOptions=badOptions)
        if badClient is None:
            bad.sendPackets([b"let me in"])
        listener = await harness.whenSession(1)
        await bounded(listener.whenEvent("error"), "the handshake failure")
        await bounded(bad.whenLost(), "the refused client to be dropped")
        self.assertEqual(bad.received, [])
        self.assertEqual(listener.names(), ["error"])
        self.assertEqual(harness.sessions[1].state, "DEAD")
        await echoCheck(self, good, [b"after", b"", b"x" * 70000])
        self.assertEqual(harness.listeners[0].errors, [])
        self.assertEqual(harness.server.opened, 1)
        self.assertEqual(harness.server.sessions(), [harness.sessions[0]])
        return bad

    def handshakeError(self, harness: ServerHarness, peer: Any) -> str:
        """
        @param harness: the server.
        @param peer: the refused client, for its address.
        @return: the message of the refused session's only error, checked to
            be a L{TLSHandshakeError} naming that client's address.
        """
        [failure] = harness.listeners[1].errors
        self.assertTrue(failure.check(TLSHandshakeError), failure)
        message = failure.getErrorMessage()
        port = peer.localAddress.port
        self.assertIn(f"TLS handshake with tcp:127.0.0.1:{port} failed", message)
        self.assertIs(harness.sessions[1].closeReason, failure)
        return message

    async def test_mutualTLSRefusesClientWithoutCertificate(self) -> None:
        """
        With clientCA set, a client presenting no certificate is refused; the
        error says the client presented no certificate and names
        --tls-client-ca; another client keeps being served.
        """
        harness, address = await self.startServer(mutual=True)
        bad = await self.assertRefused(harness, address, clientOptions(self.pki))
        message = self.handshakeError(harness, bad)
        self.assertIn("the client presented no certificate", message)
        self.assertIn("--tls-client-ca", message)

    async def test_mutualTLSRefusesUntrustedClientCertificate(self) -> None:
        """
        With clientCA set, a client whose certificate is signed by another CA
        is refused; the error names the client's certificate, its
        untrusted CA and --tls-client-ca; another client keeps being served.
        """
        harness, address = await self.startServer(mutual=True)
        bad = await self.assertRefused(harness, address, clientOptions(self.pki, "untrusted"))
        message = self.handshakeError(harness, bad)
        self.assertIn("the client's certificate 'txgetty untrusted client' is signed by a CA "
                      "(txgetty untrusted CA) that is not trusted here: trust that CA with --tls-client-ca", message)
        self.assertIn("certificate verify failed", message)

    async def test_plainTCPGarbageToTLSPort(self) -> None:
        """
        A plain TCP client sending non-TLS bytes to the TLS port gets
        disconnected; its session reports a TLSHandshakeError saying the peer
        does not speak TLS; the server keeps serving TLS clients.
        """
        harness, address = await self.startServer(mutual=True)

        class Garbage(FramedClient):
            def connectionMade(self) -> None:
                """
                Send bytes that are not a TLS ClientHello.
                """
                super().connectionMade()
                self.transport.write(b"this is not TLS at all\r\n" * 4)

        bad = await self.assertRefused(harness, address, None, Garbage())
        message = self.handshakeError(harness, bad)
        self.assertIn("does not speak TLS", message)

    async def test_plainHTTPToTLSPort(self) -> None:
        """
        Plain HTTP sent to the TLS port is reported as such.
        """
        harness, address = await self.startServer()

        class HTTP(FramedClient):
            def connectionMade(self) -> None:
                """
                Send an HTTP request.
                """
                super().connectionMade()
                self.transport.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")

        bad = await connectClient(self, address, HTTP())
        listener = await harness.whenSession(0)
        await bounded(listener.whenEvent("error"), "the handshake failure")
        await bounded(bad.whenLost(), "the plain client to be dropped")
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError))
        self.assertIn("plain HTTP", failure.getErrorMessage())
        self.assertEqual(listener.names(), ["error"])

    async def test_peerClosesBeforeHandshake(self) -> None:
        """
        A peer that connects and closes without a handshake is reported as
        a TLSHandshakeError saying the peer closed before it completed; the
        session never opens.
        """
        harness, address = await self.startServer()
        bad = await connectClient(self, address)
        bad.transport.loseConnection()
        listener = await harness.whenSession(0)
        await bounded(listener.whenEvent("error"), "the handshake failure")
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError))
        self.assertIn("closed the connection before it completed", failure.getErrorMessage())
        self.assertEqual(listener.names(), ["error"])
        self.assertEqual((harness.server.opened, harness.server.closed), (0, 1))

    async def test_cleanCloseByClientGivesOnCloseOnly(self) -> None:
        """
        A TLS client that closes cleanly (close_notify, then FIN) ends its
        session with onClose alone and a ConnectionDone reason.
        """
        harness, address = await self.startServer()
        client = await connectClient(self, address, tlsOptions=clientOptions(self.pki))
        await echoCheck(self, client, [b"bye"])
        client.transport.loseConnection()
        listener = harness.listeners[0]
        await bounded(listener.whenEvent("close"), "the session to close")
        self.assertEqual(listener.names(), ["open", "message", "close"])
        self.assertTrue(harness.sessions[0].closeReason.check(ConnectionDone))
        await bounded(client.whenLost(), "the client connection to end")
        self.assertTrue(client.lostReason.check(ConnectionDone), client.lostReason)

    async def test_stopServiceClosesTLSSessions(self) -> None:
        """
        stopService() shuts open TLS sessions down cleanly (the client sees
        ConnectionDone after its echoes, onClose runs once, no onError) and
        drops a peer still in the handshake without any listener event.
        """
        harness, address = await self.startServer()
        client = await connectClient(self, address, tlsOptions=clientOptions(self.pki))
        await echoCheck(self, client, [b"a", b"b"])
        silent = await connectClient(self, address)
        silentListener = await harness.whenSession(1)
        await bounded(harness.stop(), "the server to stop")
        await bounded(client.whenLost(), "the TLS client to be closed")
        await bounded(silent.whenLost(), "the silent peer to be dropped")
        self.assertTrue(client.lostReason.check(ConnectionDone), client.lostReason)
        self.assertEqual(harness.listeners[0].names(), ["open", "message", "message", "close"])
        self.assertIn("the server is stopping", harness.sessions[0].closeReason.getErrorMessage())
        self.assertEqual(silentListener.events, [])
        self.assertEqual(harness.sessions[1].state, "DEAD")
        self.assertEqual(harness.server.sessions(), [])

    async def test_handshakeIsBoundedByTimeouts(self) -> None:
        """
        A peer that connects to the TLS port and never finishes the
        handshake (a partial ClientHello) is dropped once the session's
        openTimeout (0.5 s) has passed, with onError saying so.
        """
        config = SessionConfig(openTimeout=0.5)
        harness = ServerHarness(self, [TLS], tls=serverSettings(self.pki), config=config)
        [address] = await harness.start()
        stalled = await connectClient(self, address)
        stalled.transport.write(b"\x16\x03\x01")
        await bounded(stalled.whenLost(), "the stalled peer to be dropped", 5)
        self.assertEqual(harness.listeners[0].names(), ["error"])
        failure = harness.listeners[0].errors[0]
        self.assertTrue(failure.check(OpenTimeoutError))
        self.assertIn("TLS handshake", failure.getErrorMessage())


class TLSReasonTests(TestCase):
    """
    Each reason a certificate is refused is reported as that reason, in one
    line, on the side that refused it: the client checking the server
    (expired, not yet valid, self-signed, unknown CA, wrong host name, key
    too small), the server checking a client certificate (expired, unknown
    CA), and the server loading its own files (key too small, wrong key,
    passphrase, unreadable).  Every certificate is made by the test
    (L{tests.certs.badCertificates}).
    """

    timeout = 60

    def setUp(self) -> None:
        """
        Make (or reuse) the test certificates.
        """
        self.pki = testCertificates()
        self.bad = badCertificates()

    async def clientError(self, port: int, tls: TLSClientSettings | None = None) -> str:
        """
        Connect a txgetty client (one attempt) and return why it gave up.

        @param port: the TLS server's port on 127.0.0.1.
        @param tls: the client's settings; trusting the test CA by default.
        @return: the message of the session's only error, a
            L{TLSHandshakeError}; the gave-up error names it too.
        """
        client, listener = startTxClient(
            self, f"tls:127.0.0.1:{port}", tls=tls or TLSClientSettings(caFile=self.pki.caCert), reconnect=ONCE,
        )
        gaveUp = await self.assertFailure(bounded(client.whenConnected(), "the client to give up"),
                                          ConnectGaveUpError)
        [failure] = listener.errors
        self.assertTrue(failure.check(TLSHandshakeError), repr(failure.value))
        message = failure.getErrorMessage()
        self.assertNotIn("\n", message)
        self.assertIn(message.split(": ", 1)[1][:40], str(gaveUp))
        return message

    async def serverWith(self, cert: str, key: str) -> int:
        """
        @param cert: the server's certificate file.
        @param key: its key.
        @return: the port of a running TLS echo server using them.
        """
        self.harness = ServerHarness(self, [TLS], tls=TLSServerSettings(key=key, cert=cert))
        [address] = await self.harness.start()
        return address.port

    async def test_expiredServerCertificate(self) -> None:
        """
        An expired server certificate is reported as expired, with the
        date, not as an untrusted CA.
        """
        message = await self.clientError(await self.serverWith(self.bad.expiredCert, self.bad.expiredKey))
        self.assertIn("the server's certificate 'txgetty expired server' has expired (on 20", message)
        self.assertIn("renew it", message)
        self.assertIn("OpenSSL verify error 10", message)
        self.assertNotIn("trusted", message)
        serverSide = await self.harness.whenSession(0)
        await bounded(serverSide.whenEvent("error"), "the server's handshake failure")
        self.assertIn("the peer rejected our certificate: it has expired (renew it)",
                      serverSide.errors[0].getErrorMessage())

    async def test_notYetValidServerCertificate(self) -> None:
        """
        A server certificate valid only from tomorrow is reported as not
        valid yet.
        """
        message = await self.clientError(await self.serverWith(self.bad.futureCert, self.bad.futureKey))
        self.assertIn("'txgetty future server' is not valid yet (not before 20", message)
        self.assertIn("check the clocks", message)

    async def test_selfSignedServerCertificate(self) -> None:
        """
        A self-signed server certificate is reported as self-signed, naming
        caFile/--ca-file.
        """
        message = await self.clientError(await self.serverWith(self.bad.selfSignedCert, self.bad.selfSignedKey))
        self.assertIn("'txgetty selfSigned server' is self-signed, and not trusted here", message)
        self.assertIn("caFile=/--ca-file", message)

    async def test_unknownCA(self) -> None:
        """
        A server certificate from a CA the client does not trust names that
        CA.
        """
        port = await self.serverWith(self.pki.serverCert, self.pki.serverKey)
        message = await self.clientError(port, TLSClientSettings(caFile=self.pki.untrustedCaCert))
        self.assertIn("is signed by a CA (txgetty test CA) that is not trusted here", message)

    async def test_wrongHostname(self) -> None:
        """
        A certificate for another name says which names it holds and which
        was dialled, and how to change it.
        """
        message = await self.clientError(await self.serverWith(self.bad.wrongNameCert, self.bad.wrongNameKey))
        self.assertIn("hostname mismatch: the server's certificate is for other.example, not for 127.0.0.1", message)
        self.assertIn("--hostname", message)

    async def test_weakServerKey(self) -> None:
        """
        A server (not txgetty: it refuses such a key) with a 1024-bit RSA
        key is refused by the client for its key size.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
        context.use_certificate_file(self.bad.weakCert)
        context.use_privatekey_file(self.bad.weakKey)

        class Options:
            def getContext(self) -> SSL.Context:
                return context

        port = reactor.listenSSL(0, Factory.forProtocol(Protocol), Options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        message = await self.clientError(port.getHost().port)
        self.assertIn("1024-bit", message)
        self.assertIn("too small for OpenSSL's security level", message)

    async def test_expiredClientCertificate(self) -> None:
        """
        A mutual-TLS server refusing an expired client certificate says so
        (on the server's side), naming the certificate, in one warning.
        """
        events = captureEvents(self)
        harness = ServerHarness(self, [TLS], tls=serverSettings(self.pki, mutual=True))
        [address] = await harness.start()
        tls = TLSClientSettings(caFile=self.pki.caCert, cert=self.bad.expiredClientCert, key=self.bad.expiredClientKey)
        startTxClient(self, f"tls:127.0.0.1:{address.port}", tls=tls, reconnect=ONCE)
        listener = await harness.whenSession(0)
        await bounded(listener.whenEvent("error"), "the server's handshake failure")
        [failure] = listener.errors
        self.assertIn("the client's certificate 'txgetty expired client' has expired (on 20",
                      failure.getErrorMessage())
        logged = [e for e in events if e.get("session") is harness.sessions[0]]
        self.assertEqual([(e["log_level"], e.get("error")) for e in logged], [(LogLevel.warn, "TLSHandshakeError")])
        self.assertEqual(formatEvent(logged[0]), f"txgetty: {failure.getErrorMessage()}")
        # The fields of docs/observability.md ("Logs").
        self.assertEqual(logged[0]["reason"], f"TLSHandshakeError: {failure.getErrorMessage()}")
        self.assertEqual(logged[0]["peer"], formatAddress(harness.sessions[0].remoteAddress))
        self.assertTrue(logged[0]["peer"].startswith("tcp:127.0.0.1:"), logged[0]["peer"])

    def loadError(self, key: str, cert: str) -> str:
        """
        @return: the L{ConfigError} message of loading these files.
        """
        return str(self.assertRaises(ConfigError, TLSServerSettings(key=key, cert=cert).options))

    def test_weakKeyRefusedAtLoad(self) -> None:
        """
        A 1024-bit RSA server key is refused at load for its size (not as a
        key that does not match), naming the file and what to do.
        """
        message = self.loadError(self.bad.weakKey, self.bad.weakCert)
        self.assertIn(f"the --tls-cert file {self.bad.weakCert!r}", message)
        self.assertIn("1024-bit RSA key is too small for OpenSSL's security level", message)
        self.assertIn("2048", message)
        self.assertNotIn("not the key", message)

    def test_wrongKeyAtLoad(self) -> None:
        """
        A key that is not the certificate's is named as such.
        """
        message = self.loadError(self.pki.clientKey, self.pki.serverCert)
        self.assertIn("is not the key of the certificate", message)
        self.assertIn("--tls-key", message)

    def test_encryptedKey(self) -> None:
        """
        A passphrase-protected key is refused without prompting, saying how
        to decrypt it.
        """
        message = self.loadError(self.bad.encryptedKey, self.bad.expiredCert)
        self.assertIn("passphrase-protected", message)
        self.assertIn("openssl pkey", message)

    def test_unreadableFiles(self) -> None:
        """
        A directory or a missing file is named with the system's reason.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        self.assertIn("Is a directory", self.loadError(directory, self.pki.serverCert))
        self.assertIn("No such file", self.loadError(self.pki.serverKey, directory + "/none.pem"))

    def test_expiredCertificateWarnsAtLoad(self) -> None:
        """
        An expired server certificate loads (peers decide), with one warning
        naming the file and the date, once however often it is loaded.
        """
        import shutil

        events = captureEvents(self)
        cert = self.mktemp()
        shutil.copy(self.bad.expiredCert, cert)
        for _ in range(2):
            TLSServerSettings(key=self.bad.expiredKey, cert=cert).options()
        warnings = [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(cert, warnings[0])
        self.assertIn("expired on 20", warnings[0])
