"""
Tests of the WebSocket transport (L{txgetty.transports.websocket}) with real sockets on
127.0.0.1: an independent client (the C{websockets} library, blocking, run
in a thread) for echo, oversize and text messages and close codes; a raw
client that never answers pings; paths, origins and permessage-deflate; WSS
with host-name verification; a txgetty client pool that reconnects.
"""

from __future__ import annotations

import ssl
import os
import struct
from typing import Any

from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txgetty.config import SessionConfig
from txgetty.errors import (
    CodecError,
    ConnectGaveUpError,
    ConnectionClosedLocally,
    DeadPeerError,
    PacketTooLargeError,
    TLSHandshakeError,
    WebSocketClosedError,
)
from txgetty.transports.tls import TLSClientSettings, TLSServerSettings
from txgetty.transports.websocket import _ExactTimer

from .certs import testCertificates
from .netsupport import WAIT, EchoRecorder, ServerHarness, bounded, helloFrame
from .transportsupport import (
    ONCE,
    RawWebSocketClient,
    inThread,
    onFreePort,
    receiveUntilClosed,
    startTxClient,
    whenEvent,
    wsConnect,
)

WS = "ws://127.0.0.1:0/"

try:
    import websockets
except ImportError:  # pragma: no cover - depends on the environment
    websockets = None
#: Why the tests that use the independent client are skipped, if they are.
NO_WEBSOCKETS = None if websockets is not None else (
    "the websockets library (the independent WebSocket client of these tests) is not installed; "
    "it belongs in pyproject.toml's test extra"
)

async def startServer(testCase: TestCase, url: str = WS, **serverArgs: Any) -> tuple[ServerHarness, int]:
    """
    @param testCase: the test, for clean-up.
    @param url: the WebSocket listener.
    @param serverArgs: more L{Server} arguments.
    @return: a running echo server (L{ServerHarness}) and its port.
    """
    harness = ServerHarness(testCase, [url], **serverArgs)
    [address] = await harness.start()
    return harness, address.port


def rejectedStatus(url: str, **kw: Any) -> int | None:
    """
    Try to open a WebSocket that the server should refuse (in a thread).

    @param url: the URL.
    @param kw: more C{wsConnect} arguments.
    @return: the HTTP status of the refusal, or C{None} if it opened.
    """
    from websockets.exceptions import InvalidStatus

    try:
        with wsConnect(url, **kw):
            return None
    except InvalidStatus as e:
        return e.response.status_code


def echoMessages(url: str, messages: list[bytes], replies: int | None = None, **kw: Any) -> dict[str, Any]:
    """
    Send messages, read the replies, close with 1000 (in a thread).

    @param url: the URL.
    @param messages: binary messages to send.
    @param replies: how many messages to read (default: one per message).
    @param kw: more C{wsConnect} arguments.
    @return: C{replies} (the messages read) and C{extensions} (the
        C{Sec-WebSocket-Extensions} response header).
    """
    with wsConnect(url, **kw) as ws:
        for message in messages:
            ws.send(message)
        got = [ws.recv(timeout=WAIT) for _ in range(len(messages) if replies is None else replies)]
        return {"replies": got, "extensions": ws.response.headers.get("Sec-WebSocket-Extensions")}


def sendThenWaitClose(url: str, messages: list[Any], **kw: Any) -> tuple[list[Any], int | None, str | None]:
    """
    Send messages, then read until the server closes (in a thread).

    @param url: the URL.
    @param messages: messages to send (C{str} ones go as text messages).
    @param kw: more C{wsConnect} arguments.
    @return: as L{receiveUntilClosed}.
    """
    with wsConnect(url, **kw) as ws:
        for message in messages:
            ws.send(message)
        return receiveUntilClosed(ws)


def oversizeAfterEcho(url: str, fits: bytes, big: bytes) -> tuple[bytes, int | None]:
    """
    Echo a message, then send one the server must refuse (in a thread).

    @param url: the URL.
    @param fits: a message within the server's limit.
    @param big: a message above it.
    @return: the echo of C{fits} and the close code the server sent
        (C{None} if it sent no close frame).
    """
    with wsConnect(url) as ws:
        ws.send(fits)
        echo = ws.recv(timeout=WAIT)
        ws.send(big)
        return echo, receiveUntilClosed(ws)[1]


def closeWith(url: str, code: int, reason: str) -> bytes:
    """
    Echo one packet, then close with a given code (in a thread).

    @param url: the URL.
    @param code: the close code.
    @param reason: the close reason.
    @return: the echo.
    """
    with wsConnect(url) as ws:
        ws.send(helloFrame(b"hi"))
        echo = ws.recv(timeout=WAIT)
        ws.close(code, reason)
        return echo


class IndependentClientTests(TestCase):
    """
    A txgetty WebSocket server with the C{websockets} library as client.
    """

    timeout = 60
    skip = NO_WEBSOCKETS

    async def test_echo(self) -> None:
        """
        50 binary messages of one hello frame each come back in order, one
        message per packet; a message holding three frames gives three
        onMessage calls and three reply messages; the session is a
        ws-session and knows its path.
        """
        harness, port = await startServer(self)
        messages = [helloFrame(b"m%d" % i) for i in range(50)]
        both = helloFrame(b"a") + helloFrame(b"") + helloFrame(b"ccc")
        result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", messages + [both], 53, what="echoes")
        self.assertEqual(result["replies"], messages + [helloFrame(b"a"), helloFrame(b""), helloFrame(b"ccc")])
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.messages, [b"m%d" % i for i in range(50)] + [b"a", b"", b"ccc"])
        [session] = harness.sessions
        self.assertEqual((session.name, session.getAttribute("ws.path")), ("ws-session", "/"))
        self.assertIsNone(result["extensions"])

    async def test_frameLengths(self) -> None:
        """
        The frames the server writes itself carry every length encoding of
        RFC 6455 right: messages of 4, 125, 126, 127, 65535, 65536 and
        100000 bytes (7-bit, 16-bit and 64-bit lengths at their edges) come
        back whole and in order to an independent client.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=200_000))
        sizes = [4, 125, 126, 127, 65535, 65536, 100_000]
        messages = [helloFrame(bytes([i]) * (n - 4)) for i, n in enumerate(sizes)]
        result = await inThread(echoMessages, f"ws://127.0.0.1:{port}/", messages, what="echoes")
        self.assertEqual([len(m) for m in result["replies"]], sizes)
        self.assertEqual(result["replies"], messages)

    async def test_oversizeRefused(self) -> None:
        """
        With maxMsgLen 1000 a message of exactly 1000 bytes is echoed; a
        larger one is never delivered: the server's onError runs, then
        onClose, and the client's connection ends.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=1000))
        fits = helloFrame(b"x" * 996)
        echo, _ = await inThread(oversizeAfterEcho, f"ws://127.0.0.1:{port}/", fits, helloFrame(b"y" * 2000))
        self.assertEqual(echo, fits)
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "message", "error", "close"])
        self.assertEqual(listener.messages, [b"x" * 996])

    async def test_oversizeCloseCode(self) -> None:
        """
        The oversize message closes the WebSocket with code 1009, and the
        server's onError gets a L{PacketTooLargeError} naming the limit.
        """
        harness, port = await startServer(self, config=SessionConfig(maxMsgLen=1000))
        fits = helloFrame(b"x" * 996)
        _, code = await inThread(oversizeAfterEcho, f"ws://127.0.0.1:{port}/", fits, helloFrame(b"y" * 2000))
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        [failure] = listener.errors
        self.assertTrue(failure.check(PacketTooLargeError), failure)
        self.assertEqual(failure.value.limit, 1000)
        self.assertIs(harness.sessions[0].closeReason, failure)
        self.assertEqual(code, 1009)


    async def test_textMessage(self) -> None:
        """
        A text message closes the WebSocket with code 1003 (unsupported
        data); the server's onError gets a L{CodecError} saying so.
        """
        harness, port = await startServer(self)
        replies, code, reason = await inThread(
            sendThenWaitClose, f"ws://127.0.0.1:{port}/", ["hello"], what="a 1003 close"
        )
        self.assertEqual((replies, code), ([], 1003))
        self.assertIn("text message", reason)
        listener = await harness.whenSession(0)
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(CodecError))
        self.assertIn("text message", failure.getErrorMessage())


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
        A txgetty client to wss://localhost trusting the test CA echoes, and
        so does the C{websockets} client; the sessions are wss-sessions.
        """
        harness, port = await self.startSecure()
        client, listener = startTxClient(
            self, f"wss://localhost:{port}/", tls=TLSClientSettings(caFile=self.pki.caCert)
        )
        session = await bounded(client.whenConnected(), "a WSS session")
        session.writePkg(b"secure")
        await whenEvent(listener, "message")
        self.assertEqual((listener.messages, session.name), ([b"secure"], "wss-session"))
        context = ssl.create_default_context(cafile=self.pki.caCert)
        result = await inThread(echoMessages, f"wss://localhost:{port}/", [helloFrame(b"x")], ssl=context)
        self.assertEqual(result["replies"], [helloFrame(b"x")])
        self.assertEqual([s.name for s in harness.sessions], ["wss-session", "wss-session"])

    async def refused(self, tls: TLSClientSettings) -> tuple[Any, EchoRecorder, ConnectGaveUpError, ServerHarness]:
        """
        Connect to the WSS server with settings that must refuse it.

        @param tls: the client's TLS settings.
        @return: the client, its listener, the give-up error and the server.
        """
        harness, port = await self.startSecure()
        client, listener = startTxClient(self, f"wss://localhost:{port}/", tls=tls, reconnect=ONCE)
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

