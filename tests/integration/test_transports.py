"""
One listener test suite run over every transport: TCP, TLS (the client
verifies the test CA and the host name), UNIX, UDP, WebSocket and secure
WebSocket, with real sockets on 127.0.0.1.

The same listener (L{EchoRecorder}) and codec (L{HelloCodec}) serve on every
transport, unchanged; the tests are written once in L{ListenerSuite} and each
small subclass only says how to listen and how to dial.  A txgetty
L{Client <txgetty.client.Client>} is the peer.

What differs by nature is declared, not copied: a UDP peer never hears that
the other side closed (its server session ends after C{readIdleTimeout} of
silence instead, cleanly, with L{PeerIdleError}), and UDP echoes are sent in
small windows (loopback rarely drops a datagram, but a burst could overflow
the socket buffer).
"""

from __future__ import annotations

from typing import Any
import shutil
import tempfile

from twisted.internet.error import ConnectionDone
from twisted.trial.unittest import TestCase

from txgetty.config import SessionConfig
from txgetty.errors import ConnectionClosedLocally, PeerIdleError
from txgetty.session import Session
from txgetty.transports.tls import TLSClientSettings, TLSServerSettings

from ..support.certs import testCertificates
from ..support.net import EchoRecorder, ServerHarness, bounded, samplePayloads
from ..support.transports import realWait, startTxClient, whenEvent


#: Seconds between two onCron calls in these tests.
CRON = 0.1


class ListenerSuite:
    """
    The listener tests, written once; a subclass per transport (also a
    L{TestCase}) says how to listen and dial.

    @cvar sessionName: the name of this transport's sessions, both sides.
    @cvar datagrams: UDP: the peer does not hear of a close, and echoes go
        in windows.
    @cvar peerGoneReason: the close reason of a server session whose client
        closed.
    @ivar harness: the server under test.
    @ivar client: the txgetty client.
    @ivar clientListener: the listener shared by the client's sessions.
    @ivar pairs: C{(client session, server session, server listener)} for
        every session opened by L{openSessions}.
    """

    timeout = 60
    sessionName = ""
    datagrams = False
    peerGoneReason: type = ConnectionDone

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        """
        @return: the listener description and more L{Server} arguments.
        """
        raise NotImplementedError()

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        """
        @param address: the server's bound address.
        @return: the client address and more L{Client} arguments.
        """
        raise NotImplementedError()

    def serverConfig(self) -> SessionConfig:
        """
        @return: the server's session settings.
        """
        return SessionConfig(cronPeriod=CRON)

    async def openSessions(self, count: int = 1) -> list[Session]:
        """
        Start a server and a client of C{count} sessions; each client session
        sends one hello packet and waits for its echo (a UDP server session
        starts with its peer's first datagram).

        @param count: the client's pool size.
        @return: the client's sessions.
        """
        endpoint, serverArgs = self.listenOn()
        self.harness = ServerHarness(self, [endpoint], config=self.serverConfig(), **serverArgs)
        [address] = await self.harness.start()
        dial, clientArgs = self.dialTo(address)
        self.client, self.clientListener = startTxClient(
            self, dial, connections=count, config=SessionConfig(cronPeriod=CRON), **clientArgs
        )
        sessions = await bounded(self.client.whenAllConnected(), f"{count} client sessions")
        for i, session in enumerate(sessions):
            session.writePkg(b"hello %d" % i)
        await whenEvent(self.clientListener, "message", count)
        self.pairs = []
        for i, session in enumerate(sessions):
            [index] = [n for n, listener in enumerate(self.harness.listeners)
                       if listener.messages[:1] == [b"hello %d" % i]]
            self.pairs.append((session, self.harness.sessions[index], self.harness.listeners[index]))
        return sessions

    def assertOnlyClosed(self, listener: EchoRecorder) -> None:
        """
        @param listener: a session's listener: opened once, closed once at
            the end, no error.
        """
        names = listener.names()
        self.assertEqual((names[0], names.count("open"), names[-1], names.count("close")), ("open", 1, "close", 1))
        self.assertNotIn("error", names)

    async def test_openOnce(self) -> None:
        """
        Every connection (UDP: every peer, on its first datagram) gives
        exactly one onOpen on the server, before anything else, and one on the
        client; the server counts each as accepted and opened.
        """
        sessions = await self.openSessions(3)
        await realWait(2 * CRON)
        for session, serverSession, listener in self.pairs:
            names = listener.names()
            self.assertEqual((names[0], names.count("open")), ("open", 1))
            self.assertFalse(serverSession.isClosed)
            self.assertEqual(serverSession.state, "OPEN")
        server = self.harness.server
        self.assertEqual((server.accepted, server.opened, len(server.sessions())), (3, 3, 3))
        self.assertEqual(self.clientListener.names().count("open"), 3)
        self.assertEqual({e[1] for e in self.clientListener.events if e[0] == "open"}, set(sessions))

    async def test_echoInOrder(self) -> None:
        """
        200 packets of varied sizes (one empty) come back in order; the
        server's onMessage ran once per packet, in order, and both sides'
        packet counters agree.
        """
        [session] = await self.openSessions()
        _, serverSession, serverListener = self.pairs[0]
        payloads = samplePayloads(200, b"echo")
        window = 20 if self.datagrams else len(payloads)
        for start in range(0, len(payloads), window):
            for payload in payloads[start:start + window]:
                session.writePkg(payload)
            await whenEvent(self.clientListener, "message", 1 + min(start + window, len(payloads)))
        self.assertEqual(self.clientListener.messages[1:], payloads)
        self.assertEqual(serverListener.messages[1:], payloads)
        self.assertEqual(serverListener.names().count("message"), 201)
        self.assertEqual((serverSession.packetsRead, serverSession.packetsWritten), (201, 201))
        self.assertEqual((session.packetsRead, session.packetsWritten), (201, 201))
        self.assertEqual(serverSession.bytesRead, session.bytesWritten)
        self.assertEqual(session.bytesRead, serverSession.bytesWritten)

    async def test_cron(self) -> None:
        """
        onCron runs every cronPeriod on both sides while the session is open.
        """
        await self.openSessions()
        _, _, serverListener = self.pairs[0]
        await whenEvent(serverListener, "cron", 3)
        await whenEvent(self.clientListener, "cron", 3)
        self.assertNotIn("error", serverListener.names() + self.clientListener.names())

    async def test_clientCloses(self) -> None:
        """
        A session closed by the client ends its server session with onClose
        alone (UDP: after readIdleTimeout of silence); no onCron after it.
        """
        [session] = await self.openSessions()
        _, serverSession, serverListener = self.pairs[0]
        await bounded(session.close(), "the client session to close")
        self.assertTrue(self.clientListener.names().count("close") >= 1)
        self.assertTrue(session.closeReason.check(ConnectionClosedLocally))
        await whenEvent(serverListener, "close")
        self.assertOnlyClosed(serverListener)
        self.assertTrue(serverSession.closeReason.check(self.peerGoneReason), serverSession.closeReason)
        self.assertNotIn(serverSession, self.harness.server.sessions())
        await realWait(3 * CRON)
        self.assertEqual(serverListener.names()[-1], "close")

    async def test_stat(self) -> None:
        """
        session.stat() on both sides names the transport's session, says it
        is open and counts the one packet each way.
        """
        [session] = await self.openSessions()
        _, serverSession, _ = self.pairs[0]
        size = 4 + len(b"hello 0")
        for s in (session, serverSession):
            text = s.stat()
            self.assertTrue(text.startswith(f"{self.sessionName}#{s.id} OPEN "), text)
            self.assertIn(f"read 1 pkgs/{size} B, wrote 1 pkgs/{size} B", text)
            self.assertIsNotNone(s.localAddress)
            self.assertIsNotNone(s.remoteAddress)

    async def test_writePkgs(self) -> None:
        """
        writePkgs sends several packets at once, in order, both ways (on a
        message transport each is its own message or datagram).
        """
        [session] = await self.openSessions()
        _, serverSession, serverListener = self.pairs[0]
        serverSession.writePkgs([b"one", b"", b"three"])
        await whenEvent(self.clientListener, "message", 4)
        self.assertEqual(self.clientListener.messages[1:], [b"one", b"", b"three"])
        self.assertEqual(serverSession.packetsWritten, 4)
        session.writePkgs([b"a", b"bb"])
        await whenEvent(self.clientListener, "message", 6)
        self.assertEqual(serverListener.messages[1:], [b"a", b"bb"])
        self.assertEqual(self.clientListener.messages[4:], [b"a", b"bb"])
        self.assertEqual(session.packetsWritten, 3)

    async def test_serverStopClosesAll(self) -> None:
        """
        stopService closes every server session cleanly (onClose alone,
        closeReason "the server is stopping") and stops listening; stream
        and WebSocket clients see a clean close (UDP peers cannot hear it).
        """
        await self.openSessions(3)
        server = self.harness.server
        await bounded(server.stopService(), "the server to stop")
        for _, serverSession, listener in self.pairs:
            self.assertOnlyClosed(listener)
            self.assertTrue(serverSession.closeReason.check(ConnectionClosedLocally))
            self.assertEqual(serverSession.closeReason.getErrorMessage(), "the server is stopping")
        self.assertEqual((server.sessions(), server.addresses, server.closed), ([], [], 3))
        if self.datagrams:
            self.assertEqual([s.isClosed for s, _, _ in self.pairs], [False] * 3)
            return
        await whenEvent(self.clientListener, "close", 3)
        for session, _, _ in self.pairs:
            self.assertTrue(session.closeReason.check(ConnectionDone), session.closeReason)
        self.assertEqual(self.clientListener.errors, [])


def tlsServer() -> dict[str, Any]:
    """
    @return: L{Server} arguments for the test server certificate.
    """
    pki = testCertificates()
    return {"tls": TLSServerSettings(key=pki.serverKey, cert=pki.serverCert)}


def tlsClient() -> dict[str, Any]:
    """
    @return: L{Client} arguments that trust the test CA and check the name
        C{localhost} (the tests dial 127.0.0.1, where the server listens:
        C{localhost} may resolve to ::1 first, where another process may hold
        the same port number).
    """
    return {"tls": TLSClientSettings(caFile=testCertificates().caCert, hostname="localhost")}


class TCPTests(ListenerSuite, TestCase):
    """
    The listener suite over TCP.
    """

    sessionName = "tcp-session"

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        return "tcp:0:interface=127.0.0.1", {}

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        return f"tcp:127.0.0.1:{address.port}", {}


class TLSTests(ListenerSuite, TestCase):
    """
    The listener suite over TLS; the client verifies the CA and the name
    C{localhost}.
    """

    sessionName = "tls-session"

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        return "tls:0:interface=127.0.0.1", tlsServer()

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        return f"tls:127.0.0.1:{address.port}", tlsClient()


class UNIXTests(ListenerSuite, TestCase):
    """
    The listener suite over a UNIX socket.
    """

    sessionName = "unix-session"

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        directory = tempfile.mkdtemp(prefix="txgetty-")
        self.addCleanup(shutil.rmtree, directory, True)
        return f"unix:{directory}/s.sock", {}

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        name = address.name.decode() if isinstance(address.name, bytes) else address.name
        return f"unix:{name}", {}


class UDPTests(ListenerSuite, TestCase):
    """
    The listener suite over UDP: a server session per client socket, ended
    by readIdleTimeout (2 s here) when its client goes silent.
    """

    sessionName = "udp-session"
    datagrams = True
    peerGoneReason = PeerIdleError

    def serverConfig(self) -> SessionConfig:
        return SessionConfig(cronPeriod=CRON, readIdleTimeout=2.0)

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        return "udp:0:interface=127.0.0.1", {}

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        return f"udp:127.0.0.1:{address.port}", {}


class WebSocketTests(ListenerSuite, TestCase):
    """
    The listener suite over WebSocket (one packet per binary message).
    """

    sessionName = "ws-session"

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        return "ws://127.0.0.1:0/echo", {}

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        return f"ws://127.0.0.1:{address.port}/echo", {}


class SecureWebSocketTests(ListenerSuite, TestCase):
    """
    The listener suite over secure WebSocket; the client verifies the CA
    and the name C{localhost}.
    """

    sessionName = "wss-session"

    def listenOn(self) -> tuple[str, dict[str, Any]]:
        return "wss://127.0.0.1:0/echo", tlsServer()

    def dialTo(self, address: Any) -> tuple[str, dict[str, Any]]:
        return f"wss://127.0.0.1:{address.port}/echo", tlsClient()
