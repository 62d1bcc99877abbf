"""
Tests of the WebSocket transport (L{txgetty.transports.websocket}) with real sockets on
127.0.0.1: an independent client (the C{websockets} library, blocking, run
in a thread) for echo, oversize and text messages and close codes; a raw
client that never answers pings; paths, origins and permessage-deflate; WSS
with host-name verification; a txgetty client pool that reconnects.
"""

from __future__ import annotations

from typing import Any
import os
import ssl
import struct

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txgetty.config import SessionConfig
from txgetty.errors import (
    ConnectGaveUpError,
    ConnectionClosedLocally,
    DeadPeerError,
    PacketTooLargeError,
    TLSHandshakeError,
    WebSocketClosedError,
)
from txgetty.transports.tls import TLSClientSettings, TLSServerSettings
from txgetty.transports.websocket import _ExactTimer

from ..support.certs import testCertificates
from ..support.net import EchoRecorder, ServerHarness, bounded, helloFrame
from ..support.transports import ONCE, RawWebSocketClient, inThread, onFreePort, startTxClient, whenEvent
from ..support.ws import (
    NO_WEBSOCKETS,
    closeWith,
    echoMessages,
    rejectedStatus,
    sendThenWaitClose,
    startServer,
)


class CloseCodeTests(TestCase):
    """
    Close codes as both sides see them.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    async def serverEnds(self, end: Any) -> tuple[int | None, str | None, EchoRecorder, Any]:
        """
        Connect a C{websockets} client, echo one packet, then end the server
        session from the test.

        @param end: called with the harness and the server session; returns
            a L{Deferred} firing once the server closed.
        @return: the close code and reason the client got, the server
            session's listener and the server session.
        """
        harness, port = await startServer(self)
        job = inThread(sendThenWaitClose, f"ws://127.0.0.1:{port}/", [helloFrame(b"hi")], what="the close")
        listener = await harness.whenSession(0)
        await whenEvent(listener, "message")
        await bounded(end(harness, harness.sessions[0]), "the server to close")
        replies, code, reason = await job
        self.assertEqual(replies, [helloFrame(b"hi")])
        return code, reason, listener, harness.sessions[0]

    async def test_serverClose(self) -> None:
        """
        session.close() on the server: the client sees code 1000; the server
        gets onClose alone.
        """
        code, reason, listener, session = await self.serverEnds(lambda harness, s: s.close())
        self.assertEqual((code, reason), (1000, "closed by this side"))
        self.assertEqual(listener.names(), ["open", "message", "close"])
        self.assertTrue(session.closeReason.check(ConnectionClosedLocally))

    async def test_serverStop(self) -> None:
        """
        Server stopService: the client sees code 1001 (going away).
        """
        code, reason, listener, _ = await self.serverEnds(lambda harness, s: harness.server.stopService())
        self.assertEqual((code, reason), (1001, "the server is stopping"))
        self.assertEqual(listener.names(), ["open", "message", "close"])

    async def test_clientCloseNormal(self) -> None:
        """
        The client closes with 1000: the server gets onClose alone, with
        closeReason L{ConnectionDone}.
        """
        harness, port = await startServer(self)
        await inThread(closeWith, f"ws://127.0.0.1:{port}/", 1000, "done", what="a 1000 close")
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "message", "close"])
        self.assertTrue(harness.sessions[0].closeReason.check(ConnectionDone))

    async def test_clientCloseWithoutCode(self) -> None:
        """
        A close frame without a status code (1005, what a browser's plain
        C{ws.close()} sends) is a normal close too: the server answers 1000
        and gets onClose alone, with closeReason L{ConnectionDone}.
        """
        harness, port = await startServer(self)
        raw = RawWebSocketClient()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw), "a TCP connection")
        self.addCleanup(lambda: raw.transport.abortConnection() if raw.lostReason is None else None)
        await raw.whenUpgraded()
        listener = await harness.whenSession(0)
        raw.transport.write(b"\x88\x80" + os.urandom(4))
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "close"])
        self.assertTrue(harness.sessions[0].closeReason.check(ConnectionDone))
        await raw.whenLost()
        [close] = [payload for opcode, payload in raw.frames() if opcode == 0x8]
        self.assertEqual(struct.unpack("!H", close[:2])[0], 1000)

    async def test_clientCloseWithErrorCodes(self) -> None:
        """
        The client closes with 4000 (application) or 1008 (policy): the
        server's onError gets a L{WebSocketClosedError} carrying that code
        and reason, then onClose.
        """
        harness, port = await startServer(self)
        for index, (code, reason) in enumerate([(4000, "app says bye"), (1008, "policy")]):
            await inThread(closeWith, f"ws://127.0.0.1:{port}/", code, reason, what=f"a {code} close")
            listener = await harness.whenSession(index)
            await whenEvent(listener, "close")
            self.assertEqual(listener.names(), ["open", "message", "error", "close"])
            [failure] = listener.errors
            self.assertTrue(failure.check(WebSocketClosedError))
            self.assertEqual((failure.value.code, failure.value.reason), (code, reason))
            self.assertIn(str(code), failure.getErrorMessage())


class DeadPeerTests(TestCase):
    """
    A peer that never answers pings is dropped.
    """

    timeout = 60

    async def test_noPong(self) -> None:
        """
        With cronPeriod 0.2 s the server pings every tick; a client that did
        the upgrade and then ignores everything gets a ping, then a close
        frame with code 1008; the server's onError gets a L{DeadPeerError},
        then onClose, and the TCP connection is dropped.
        """
        harness, port = await startServer(self, config=SessionConfig(cronPeriod=0.2, waitTime=0.5))
        raw = RawWebSocketClient()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw), "a TCP connection")
        self.addCleanup(lambda: raw.transport.abortConnection() if raw.lostReason is None else None)
        status = await raw.whenUpgraded()
        self.assertIn(b" 101 ", status)
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual([n for n in listener.names() if n != "cron"], ["open", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(DeadPeerError))
        self.assertIs(harness.sessions[0].closeReason, failure)
        await raw.whenLost()
        opcodes = [opcode for opcode, _ in raw.frames()]
        self.assertIn(0x9, opcodes)
        [close] = [payload for opcode, payload in raw.frames() if opcode == 0x8]
        self.assertEqual(struct.unpack("!H", close[:2])[0], 1008)


class ExactTimerTests(TestCase):
    """
    autobahn's timers (handshake, drop) run exactly on txgetty's WebSocket
    factories, not rounded down to a whole second.
    """

    timeout = 60

    def test_exactTimer(self) -> None:
        """
        A call scheduled 0.5 s ahead on the clock runs at 0.5 s, not before;
        cancelling it twice, or after it ran, is harmless.
        """
        clock = Clock()
        clock.advance(10.7)
        calls: list[int] = []
        timer = _ExactTimer(clock)
        timer.call_later(0.5, calls.append, 1)
        pending = timer.call_later(0.5, calls.append, 2)
        pending.cancel()
        pending.cancel()
        clock.advance(0.49)
        self.assertEqual(calls, [])
        clock.advance(0.01)
        self.assertEqual(calls, [1])
        done = timer.call_later(0.1, calls.append, 3)
        clock.advance(0.1)
        done.cancel()
        self.assertEqual(calls, [1, 3])

    async def test_closeHandshakeWaitsWaitTime(self) -> None:
        """
        A server session closed by the application sends its close frame and
        waits waitTime (0.6 s) for the peer's answer before dropping a peer
        that never answers: the drop comes 0.6 s after the close, neither at
        once nor at the next whole second.
        """
        harness, port = await startServer(self, config=SessionConfig(waitTime=0.6))
        raw = RawWebSocketClient()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), raw), "a TCP connection")
        self.addCleanup(lambda: raw.transport.abortConnection() if raw.lostReason is None else None)
        await raw.whenUpgraded()
        await harness.whenSession(0)
        self.assertIsInstance(harness.sessions[0].transport.protocol.factory._batched_timer, _ExactTimer)
        started = reactor.seconds()
        harness.sessions[0].close("the test is done")
        await raw.whenLost()
        elapsed = reactor.seconds() - started
        self.assertTrue(0.55 <= elapsed < 1.5, f"dropped {elapsed:.3f} s after the close")
        self.assertEqual([opcode for opcode, _ in raw.frames()], [0x8])


class PathAndPolicyTests(TestCase):
    """
    Several paths on one port, unknown paths, the origin policy and
    permessage-deflate.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    async def test_severalPaths(self) -> None:
        """
        Two WebSocket URLs on one port make one listener; each session knows
        the path it came by (ws.path); another path gets HTTP 404.
        """
        holder: list[ServerHarness] = []

        def start(port: int) -> Any:
            holder[:] = [ServerHarness(self, [f"ws://127.0.0.1:{port}/a", f"ws://127.0.0.1:{port}/b/c"])]
            return holder[0].start()

        port = await onFreePort(start)
        harness = holder[0]
        self.assertEqual(len(harness.server.addresses), 1)
        for path in ("/a", "/b/c"):
            result = await inThread(echoMessages, f"ws://127.0.0.1:{port}{path}", [helloFrame(path.encode())])
            self.assertEqual(result["replies"], [helloFrame(path.encode())])
        self.assertEqual([s.getAttribute("ws.path") for s in harness.sessions], ["/a", "/b/c"])
        self.assertEqual(await inThread(rejectedStatus, f"ws://127.0.0.1:{port}/zzz"), 404)
        self.assertEqual(harness.server.accepted, 2)

    async def test_unknownPath(self) -> None:
        """
        A WebSocket upgrade for a path not served gets HTTP 404 and makes no
        session; a txgetty client counts it as a failed attempt.
        """
        harness, port = await startServer(self, "ws://127.0.0.1:0/only")
        self.assertEqual(await inThread(rejectedStatus, f"ws://127.0.0.1:{port}/other"), 404)
        self.assertEqual(await inThread(rejectedStatus, f"ws://127.0.0.1:{port}/"), 404)
        self.assertEqual((harness.server.accepted, harness.sessions), (0, []))
        client, listener = startTxClient(self, f"ws://127.0.0.1:{port}/other", reconnect=ONCE)
        error = await self.assertFailure(bounded(client.whenConnected(), "giving up"), ConnectGaveUpError)
        self.assertIn("404", str(error))
        self.assertEqual((client.opened, client.failures, listener.names()), (0, 1, []))

    async def test_allowedOrigins(self) -> None:
        """
        With allowedOrigins (patterns of C{scheme://host:port}, as
        docs/transports.md says), an upgrade from another Origin is refused
        with HTTP 400 and makes no session; the allowed origins (a browser
        omits the default port) and a client sending no Origin get one.
        """
        harness, port = await startServer(
            self, "ws://127.0.0.1:0/?allowedOrigins=http://good.example:80,https://*.example.org:443"
        )
        url = f"ws://127.0.0.1:{port}/"
        self.assertEqual(await inThread(rejectedStatus, url, origin="http://evil.example"), 400)
        self.assertEqual(await inThread(rejectedStatus, url, origin="http://good.example:8080"), 400)
        self.assertEqual(harness.server.accepted, 0)
        for origin in ("http://good.example", "https://www.example.org", None):
            result = await inThread(echoMessages, url, [helloFrame(b"ok")], origin=origin)
            self.assertEqual(result["replies"], [helloFrame(b"ok")], origin)
        self.assertEqual(harness.server.accepted, 3)

    async def test_nullOriginRefused(self) -> None:
        """
        Without allowedOrigins every origin is accepted, except C{null} (a
        page opened from a file), which is refused with HTTP 400.
        """
        harness, port = await startServer(self)
        url = f"ws://127.0.0.1:{port}/"
        self.assertEqual(await inThread(rejectedStatus, url, origin="null"), 400)
        result = await inThread(echoMessages, url, [helloFrame(b"ok")], origin="http://anywhere.example")
        self.assertEqual(result["replies"], [helloFrame(b"ok")])
        self.assertEqual(harness.server.accepted, 1)

    async def test_deflate(self) -> None:
        """
        With deflate=yes a client offering permessage-deflate gets it, and
        compressed messages are echoed; without the option it is not
        negotiated.
        """
        payload = helloFrame(b"compress me " * 500)
        for option, expected in (("?deflate=yes", True), ("", False)):
            harness, port = await startServer(self, f"ws://127.0.0.1:0/{option}")
            result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", [payload], compression="deflate")
            self.assertEqual(result["replies"], [payload])
            self.assertEqual("permessage-deflate" in (result["extensions"] or ""), expected, option)
            self.assertEqual(harness.listeners[0].messages, [b"compress me " * 500])

    async def test_txgettyClientDeflate(self) -> None:
        """
        A txgetty client to C{ws://...?deflate=yes} offers permessage-deflate
        and the server accepts it; packets are echoed.
        """
        harness, port = await startServer(self, "ws://127.0.0.1:0/?deflate=yes")
        client, listener = startTxClient(self, f"ws://127.0.0.1:{port}/?deflate=yes")
        session = await bounded(client.whenConnected(), "a WebSocket session")
        session.writePkg(b"z" * 5000)
        await whenEvent(listener, "message")
        self.assertEqual(listener.messages, [b"z" * 5000])
        inUse = harness.sessions[0].transport.protocol.websocket_extensions_in_use
        self.assertEqual([e.EXTENSION_NAME for e in inUse], ["permessage-deflate"])


class SecureTests(TestCase):
    """
    WSS with the test certificates: the client verifies the CA and the host
    name.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    def setUp(self) -> None:
        """
        Make (once per process) the test certificates.
        """
        self.pki = testCertificates()

    async def startSecure(self) -> tuple[ServerHarness, int]:
        """
        @return: a WSS echo server with the test server certificate.
        """
        tls = TLSServerSettings(key=self.pki.serverKey, cert=self.pki.serverCert)
        return await startServer(self, "wss://127.0.0.1:0/", tls=tls)

    async def test_verified(self) -> None:
        """
        A txgetty client to the server's 127.0.0.1 verifying the name
        localhost with the test CA echoes, and so does the C{websockets}
        client; the sessions are wss-sessions. (Dialling localhost itself may
        reach ::1, where another process may hold the same port number.)
        """
        harness, port = await self.startSecure()
        client, listener = startTxClient(
            self, f"wss://127.0.0.1:{port}/", tls=TLSClientSettings(caFile=self.pki.caCert, hostname="localhost")
        )
        session = await bounded(client.whenConnected(), "a WSS session")
        session.writePkg(b"secure")
        await whenEvent(listener, "message")
        self.assertEqual((listener.messages, session.name), ([b"secure"], "wss-session"))
        context = ssl.create_default_context(cafile=self.pki.caCert)
        result = await inThread(echoMessages, f"wss://127.0.0.1:{port}/", [helloFrame(b"x")], ssl=context,
                                server_hostname="localhost")
        self.assertEqual(result["replies"], [helloFrame(b"x")])
        self.assertEqual([s.name for s in harness.sessions], ["wss-session", "wss-session"])

    async def refused(self, tls: TLSClientSettings) -> tuple[Any, EchoRecorder, ConnectGaveUpError, ServerHarness]:
        """
        Connect to the WSS server with settings that must refuse it.

        @param tls: the client's TLS settings.
        @return: the client, its listener, the give-up error and the server.
        """
        harness, port = await self.startSecure()
        client, listener = startTxClient(self, f"wss://127.0.0.1:{port}/", tls=tls, reconnect=ONCE)
        error = await self.assertFailure(bounded(client.whenConnected(), "giving up"), ConnectGaveUpError)
        self.assertEqual((client.opened, client.failures), (0, 1))
        self.assertNotIn("open", listener.names())
        self.assertEqual((harness.server.accepted, harness.server.opened), (0, 0))
        return client, listener, error, harness

    async def test_hostnameMismatchRefused(self) -> None:
        """
        A certificate that does not name the host (hostname=wrong.example)
        is refused: no session opens on either side.
        """
        await self.refused(TLSClientSettings(caFile=self.pki.caCert, hostname="wrong.example"))

    async def test_untrustedRefused(self) -> None:
        """
        A certificate that does not chain to the trusted CA is refused; the
        failure carries the TLS layer's words.
        """
        _, _, error, _ = await self.refused(TLSClientSettings(caFile=self.pki.untrustedCaCert))
        self.assertIn("certificate verify failed", str(error))

    async def test_hostnameMismatchReported(self) -> None:
        """
        The refusal says why: the slot's last failure is a
        L{TLSHandshakeError} about the host name mismatch, as for C{tls:}.
        """
        tls = TLSClientSettings(caFile=self.pki.caCert, hostname="wrong.example")
        client, _, error, _ = await self.refused(tls)
        self.assertTrue(client._slots[0].lastFailure.check(TLSHandshakeError), client._slots[0].lastFailure)
        self.assertIn("hostname mismatch", str(error))
        self.assertIn("wrong.example", str(error))


class ClientPoolTests(TestCase):
    """
    A txgetty WebSocket client pool against a server that restarts.
    """

    timeout = 60

    async def test_reconnectAfterRestart(self) -> None:
        """
        When the server stops, both client sessions close cleanly (1001: no
        onError); once a server listens on the port again, both come back
        and echo.
        """
        harnesses: list[ServerHarness] = []

        def start(port: int) -> Any:
            harnesses.append(ServerHarness(self, [f"ws://127.0.0.1:{port}/"]))
            return harnesses[-1].start()

        port = await onFreePort(start)
        first = harnesses[-1]
        client, listener = startTxClient(self, f"ws://127.0.0.1:{port}/", connections=2)
        await self.echoOnEach(client, listener, b"before", 2)
        await bounded(first.server.stopService(), "the first server to stop")
        await whenEvent(listener, "close", 2)
        self.assertEqual(listener.errors, [])
        await start(port)
        await self.echoOnEach(client, listener, b"after", 4)
        self.assertEqual(sorted(listener.messages), [b"after0", b"after1", b"before0", b"before1"])
        self.assertEqual(len(harnesses[-1].sessions), 2)
        self.assertEqual(listener.errors, [])

    async def echoOnEach(self, client: Any, listener: EchoRecorder, tag: bytes, opens: int) -> None:
        """
        Wait for the pool to be full, then echo one packet on each session.

        @param client: the client.
        @param listener: its listener.
        @param tag: makes the packets unique.
        @param opens: how many onOpen calls the listener must have seen.
        """
        await whenEvent(listener, "open", opens)
        sessions = await bounded(client.whenAllConnected(), "2 WebSocket sessions")
        before = len(listener.messages)
        for i, session in enumerate(sessions):
            session.writePkg(tag + b"%d" % i)
        await whenEvent(listener, "message", before + len(sessions))

    async def clientOversize(self) -> tuple[EchoRecorder, EchoRecorder]:
        """
        A txgetty client with maxMsgLen 1000 gets a 2000-byte message.

        @return: the client's and the server session's listeners, once both
            sessions closed.
        """
        harness, port = await startServer(self)
        client, listener = startTxClient(
            self, f"ws://127.0.0.1:{port}/", config=SessionConfig(maxMsgLen=1000), reconnect=ONCE
        )
        await bounded(client.whenConnected(), "a WebSocket session")
        serverListener = await harness.whenSession(0)
        harness.sessions[0].writePkg(b"w" * 2000)
        await whenEvent(listener, "close")
        await whenEvent(serverListener, "close")
        return listener, serverListener

    async def test_clientOversizeRefused(self) -> None:
        """
        The client's maxMsgLen is its largest message too: a bigger message
        from the server is not delivered; the client session gets onError,
        then onClose.
        """
        listener, serverListener = await self.clientOversize()
        self.assertEqual(listener.names(), ["open", "error", "close"])
        self.assertEqual(serverListener.names(), ["open", "error", "close"])

    async def test_clientOversizeCloseCode(self) -> None:
        """
        The client reports the oversize message as L{PacketTooLargeError}
        and closes with 1009, which the server sees in its
        L{WebSocketClosedError}.
        """
        listener, serverListener = await self.clientOversize()
        self.assertTrue(listener.errors[0].check(PacketTooLargeError), listener.errors[0])
        [failure] = serverListener.errors
        self.assertTrue(failure.check(WebSocketClosedError))
        self.assertEqual(failure.value.code, 1009)
