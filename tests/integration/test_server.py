"""
Integration tests of L{txgetty.server.Server} with real TCP and UNIX sockets
on 127.0.0.1 (port 0): echo, several listeners, refused sessions, graceful
stop, listen failures, and bad peers that must end only their own session.
"""

from __future__ import annotations

from inspect import iscoroutine
from typing import Any, Callable
import os

from twisted.internet import reactor, tcp
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.defer import gatherResults
from twisted.internet.error import CannotListenError, ConnectError, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import (
    CodecError,
    ConnectionClosedLocally,
    PacketTimeoutError,
    PacketTooLargeError,
    ReadIdleTimeoutError,
    SessionRefusedError,
    TruncatedPacketError,
)
from txgetty.server import Server
from txgetty.session import Session
from txgetty.transports.sockets import readTcpOptions, tcpOptionValues

from ..support.logs import assertLoggedOnce, captureEvents, routineEvents
from ..support.net import (
    EchoRecorder,
    FramedClient,
    ServerHarness,
    WAIT,
    bounded,
    connectClient,
    echoCheck,
    helloFrame,
    samplePayloads,
)


class MagicCodec:
    """
    A reader with only getty's one-packet C{read}: a frame is C{b"TX"}, a
    2-byte big-endian length, then the payload.  A frame with another magic
    raises L{CodecError}; with C{failHard}, it raises L{ValueError} instead
    (a reader bug, not a codec error).
    """

    def __init__(self, failHard: bool = False) -> None:
        """
        @param failHard: raise L{ValueError} rather than L{CodecError}.
        """
        self.failHard = failHard

    def read(self, session: Any, data: bytearray) -> tuple[Any, int]:
        """
        @param session: the session.
        @param data: unconsumed bytes.
        @return: getty's C{(None, 0)}, C{(None, total)} or C{(pkg, total)}.
        @raise CodecError: the magic is wrong.
        """
        if len(data) < 4:
            return None, 0
        if data[:2] != b"TX":
            if self.failHard:
                raise ValueError("reader bug")
            raise CodecError(f"bad frame magic {bytes(data[:2])!r}, expected b'TX'")
        total = 4 + int.from_bytes(data[2:4], "big")
        if len(data) < total:
            return None, total
        return bytes(data[4:total]), total

    def write(self, session: Any, pkg: bytes) -> bytes:
        """
        @param session: the session.
        @param pkg: the payload.
        @return: the frame.
        """
        return b"TX" + len(pkg).to_bytes(2, "big") + pkg


TCP = "tcp:0:interface=127.0.0.1"

#: Settings for servers with a UNIX listener.  With the default
#: C{tcpKeepAlive=True}, txgetty sets C{TCP_KEEPIDLE} on UNIX sockets too, the
#: kernel refuses (EOPNOTSUPP) and the session hangs before it opens (see
#: L{ServerEchoTests.test_unixWithDefaultConfig}); until that is fixed, UNIX
#: tests turn keepalive off.
UNIX_CONFIG = SessionConfig(tcpKeepAlive=False)


class ServerEchoTests(TestCase):
    """
    Echo over TCP and UNIX sockets, several listeners, refused sessions,
    graceful stop and listen failures.
    """

    timeout = 60

    async def test_pipelinedEchoOverSeveralConnections(self) -> None:
        """
        Four TCP clients each pipeline 400 packets (sizes 0 to ~500 bytes) in
        one write; every client gets exactly its own packets back, in order,
        and the server's sessions count them.
        """
        harness = ServerHarness(self, [TCP])
        [address] = await harness.start()
        clients = [await connectClient(self, address) for _ in range(4)]
        sent = [samplePayloads(400, b"c%d-" % i) for i in range(4)]
        for client, payloads in zip(clients, sent):
            client.sendPackets(payloads)
        got = await bounded(gatherResults([c.whenReceived(400) for c in clients]), "all echoes")
        for payloads, echoes in zip(sent, got):
            self.assertEqual(echoes, payloads)
        self.assertEqual(sorted(s.packetsRead for s in harness.sessions), [400] * 4)
        self.assertEqual(sorted(s.packetsWritten for s in harness.sessions), [400] * 4)
        self.assertEqual((harness.server.accepted, harness.server.opened), (4, 4))
        for listener in harness.listeners:
            self.assertEqual(listener.errors, [])

    async def test_tcpAndUnixListenersOnOneServer(self) -> None:
        """
        One server listens on TCP port 0 and on a UNIX path; whenListening()
        reports the real TCP port and the path, in endpoint order, and both
        serve echoes.
        """
        path = self.mktemp()
        harness = ServerHarness(self, [TCP, f"unix:{path}"], config=UNIX_CONFIG)
        addresses = await harness.start()
        self.assertEqual(len(addresses), 2)
        tcp, unix = addresses
        self.assertIsInstance(tcp, IPv4Address)
        self.assertEqual(tcp.host, "127.0.0.1")
        self.assertNotEqual(tcp.port, 0)
        self.assertIsInstance(unix, UNIXAddress)
        self.assertEqual(os.fsdecode(unix.name), path)
        self.assertEqual(harness.server.addresses, addresses)
        tcpClient = await connectClient(self, tcp)
        unixClient = await connectClient(self, unix)
        await echoCheck(self, tcpClient, samplePayloads(50, b"tcp"))
        await echoCheck(self, unixClient, samplePayloads(50, b"unix"))
        kinds = sorted(type(s.localAddress).__name__ for s in harness.sessions)
        self.assertEqual(kinds, ["IPv4Address", "UNIXAddress"])

    async def test_unixWithDefaultConfig(self) -> None:
        """
        A server listening on a UNIX path with the default settings
        (tcpKeepAlive=True) serves echoes: TCP-only socket options are not
        applied to UNIX sockets.
        """
        harness = ServerHarness(self, [f"unix:{self.mktemp()}"])
        [address] = await harness.start()
        client = await connectClient(self, address)
        await echoCheck(self, client, samplePayloads(20))
        self.assertEqual(harness.listeners[0].names()[0], "open")


    async def test_newSessionCallbackRefuses(self) -> None:
        """
        A new-session callback that raises, or returns False, refuses the
        connection: the client is disconnected without a reply, the listener
        gets no event at all (no onOpen), server.refused counts both, and the
        other clients are served before and after.
        """

        def raises(session: Session) -> None:
            raise SessionRefusedError("not you")

        harness = ServerHarness(self, [TCP], perSession=[None, raises, lambda s: False, None])
        [address] = await harness.start()
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"before"])
        for index in (1, 2):
            refused = await connectClient(self, address)
            refused.sendPackets([b"let me in"])
            await bounded(refused.whenLost(), "the refused client to be dropped")
            self.assertEqual(refused.rawReceived, b"")
            await harness.whenSession(index)
            self.assertEqual(harness.listeners[index].events, [])
        self.assertIn("not you", harness.sessions[1].closeReason.getErrorMessage())
        self.assertIn("returned False", harness.sessions[2].closeReason.getErrorMessage())
        self.assertEqual(harness.server.refused, 2)
        later = await connectClient(self, address)
        await echoCheck(self, later, [b"later"])
        await echoCheck(self, good, [b"after"])
        self.assertEqual(harness.server.opened, 2)
        self.assertEqual(harness.listeners[0].names()[0], "open")

    async def test_callbackWithoutListenerOrCodecRefuses(self) -> None:
        """
        A new-session callback that sets no listener, or no codec, refuses
        the connection with a reason saying what was not set; the server
        still serves correctly configured sessions.
        """
        listeners = [EchoRecorder() for _ in range(3)]
        sessions: list[Session] = []

        def newSession(session: Session) -> None:
            index = len(sessions)
            sessions.append(session)
            if index != 0:
                session.listener = listeners[index]
            if index != 1:
                session.codec = HelloCodec()

        server = Server([TCP], newSession, reactor=reactor)
        server.startService()
        self.addCleanup(server.stopService)
        [address] = await bounded(server.whenListening(), "the server to listen")
        for _ in range(2):
            client = await connectClient(self, address)
            await bounded(client.whenLost(), "the connection to be dropped")
            self.assertEqual(client.rawReceived, b"")
        self.assertIn("did not set session.listener", sessions[0].closeReason.getErrorMessage())
        self.assertIn("did not set session.codec", sessions[1].closeReason.getErrorMessage())
        self.assertEqual(listeners[1].events, [])
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"fine"])
        self.assertEqual((server.accepted, server.opened), (3, 1))

    async def test_stopServiceIsGraceful(self) -> None:
        """
        stopService() closes every session gracefully: clients that have not
        read their (large) echoes yet still get all of them, then a clean
        EOF; each listener gets onClose exactly once and no onError; the
        ports stop listening, so new connections are refused.
        """
        path = self.mktemp()
        # The server must read everything although the clients do not read
        # their echoes: no backpressure, and room for 8 MB per session.
        config = SessionConfig(
            waitTime=WAIT, tcpKeepAlive=False, pauseReadingWhenUnwritable=False,
            maxPendingBytes=64 * 1024 * 1024,
        )
        harness = ServerHarness(self, [TCP, f"unix:{path}"], config=config)
        tcp, unix = await harness.start()
        clients = []
        payloads = [bytes([i]) * (256 * 1024) for i in range(32)]
        for index, address in enumerate([tcp, tcp, unix]):
            client = await connectClient(self, address)
            client.transport.pauseProducing()
            client.sendPackets(payloads)
            clients.append(client)
            listener = await harness.whenSession(index)
            await bounded(listener.whenEvent("message", len(payloads)), "the server to read")
        stopped = harness.server.stopService()
        self.assertFalse(harness.server.running)
        for client in clients:
            self.assertIsNone(client.lostReason)
            client.transport.resumeProducing()
        for client in clients:
            self.assertEqual(await bounded(client.whenReceived(len(payloads)), "echoes"), payloads)
            await bounded(client.whenLost(), "EOF")
            self.assertTrue(client.lostReason.check(ConnectionDone), client.lostReason)
        await bounded(stopped, "stopService")
        for listener, session in zip(harness.listeners, harness.sessions):
            self.assertEqual(listener.names(), ["open"] + ["message"] * len(payloads) + ["close"])
            self.assertTrue(session.closeReason.check(ConnectionClosedLocally))
            self.assertIn("the server is stopping", session.closeReason.getErrorMessage())
            self.assertEqual(session.state, "CLOSED")
        self.assertEqual(harness.server.sessions(), [])
        self.assertEqual(harness.server.closed, 3)
        self.assertEqual(harness.server.addresses, [])
        for address in (tcp, unix):
            with self.assertRaises(ConnectError):
                await connectClient(self, address)

    async def test_listenFailureFailsWhenListening(self) -> None:
        """
        When one endpoint's port is already in use, whenListening() fails
        with the CannotListenError while the other endpoint listens; stopping
        the server releases that one.
        """
        busy = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(busy.stopListening)
        port = busy.getHost().port
        harness = ServerHarness(self, [TCP, f"tcp:{port}:interface=127.0.0.1"])
        harness.server.startService()
        self.addCleanup(harness.stop)
        with self.assertRaises(CannotListenError) as raised:
            await bounded(harness.server.whenListening(), "the listen failure")
        self.assertEqual(raised.exception.port, port)
        self.assertEqual(len(harness.server.addresses), 1)
        await harness.stop()
        self.assertEqual(harness.server.addresses, [])

    def test_listenFailureRaisesSynchronously(self) -> None:
        """
        With raiseSynchronously=True, startService() itself raises the
        CannotListenError of a port already in use (as twistd wants).
        """
        busy = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        self.addCleanup(busy.stopListening)
        server = Server(
            [f"tcp:{busy.getHost().port}:interface=127.0.0.1"],
            lambda s: None, reactor=reactor, raiseSynchronously=True,
        )
        self.addCleanup(lambda: server.stopService() if server.running else None)
        self.assertRaises(CannotListenError, server.startService)


class BadPeerTests(TestCase):
    """
    A misbehaving peer ends only its own session, with a clear onError
    reason, while a well-behaved client on the same server keeps getting
    correct echoes before and after.
    """

    timeout = 60

    async def misbehave(
        self,
        misbehaviour: Callable[[FramedClient], Any],
        *,
        codec: Callable[[], Any] = HelloCodec,
        tweak: Callable[[Session], Any] | None = None,
        makeClient: Callable[[], FramedClient] = FramedClient,
        expectError: bool = True,
    ) -> tuple[EchoRecorder, Session, FramedClient]:
        """
        Serve a good client, let a second client misbehave, wait until its
        session ends, then check the good client is still served.

        @param misbehaviour: does the bad thing with the connected bad
            client (a coroutine function is awaited).
        @param codec: makes each session's codec.
        @param tweak: changes the bad client's session (its limits).
        @param makeClient: makes both clients.
        @param expectError: whether the bad session must get onError.
        @return: the bad session's listener, the session and the client.
        """
        harness = ServerHarness(self, [TCP], codec=codec, perSession=[None, tweak])
        [address] = await harness.start()
        good = await connectClient(self, address, makeClient())
        await echoCheck(self, good, [b"before-1", b"before-2"])
        bad = await connectClient(self, address, makeClient())
        listener = await harness.whenSession(1)
        await bounded(listener.whenEvent("open"), "the bad session to open")
        result = misbehaviour(bad)
        if iscoroutine(result):
            await result
        await bounded(listener.whenEvent("close"), "the bad session to close")
        await bounded(bad.whenLost(), "the bad client to be disconnected")
        if expectError:
            self.assertEqual(listener.names()[0], "open")
            self.assertEqual(listener.names()[-2:], ["error", "close"])
            self.assertEqual(len(listener.errors), 1)
        else:
            self.assertEqual(listener.names()[-1], "close")
            self.assertNotIn("error", listener.names())
        await echoCheck(self, good, [b"after-1", b"", b"after-2" * 1000])
        goodListener = harness.listeners[0]
        self.assertEqual(goodListener.errors, [])
        self.assertEqual(goodListener.names().count("close"), 0)
        self.assertEqual(harness.server.sessions(), [harness.sessions[0]])
        return listener, harness.sessions[1], bad

    async def test_customReaderCodecError(self) -> None:
        """
        A custom reader (getty's one-packet read only) that raises CodecError
        on a broken frame ends that session with that CodecError.
        """
        codecClient = lambda: FramedClient(b"TX", ">H")  # noqa: E731
        listener, session, bad = await self.misbehave(
            lambda c: c.transport.write(c.frame(b"fine") + b"XX\x00\x01!"),
            codec=MagicCodec, makeClient=codecClient,
        )
        self.assertEqual(listener.messages, [b"fine"])
        self.assertEqual(bad.received, [b"fine"])
        [failure] = listener.errors
        self.assertIs(failure.type, CodecError)
        self.assertIn("bad frame magic b'XX'", failure.getErrorMessage())
        self.assertIs(session.closeReason, failure)

    async def test_readerBugBecomesCodecError(self) -> None:
        """
        A reader that raises something other than CodecError (a bug) is
        reported as a CodecError that names the reader and the exception;
        the reader's own exception is logged once, with its traceback.
        """
        events = captureEvents(self)
        codecClient = lambda: FramedClient(b"TX", ">H")  # noqa: E731
        listener, session, bad = await self.misbehave(
            lambda c: c.transport.write(b"??\x00\x01!"),
            codec=lambda: MagicCodec(failHard=True), makeClient=codecClient,
        )
        [failure] = listener.errors
        self.assertTrue(failure.check(CodecError))
        self.assertIn("MagicCodec", failure.getErrorMessage())
        self.assertIn("reader bug", failure.getErrorMessage())
        assertLoggedOnce(self, events, ValueError, callback="reader", session=session)
        self.assertFalse(routineEvents(events, "CodecError"), "the wrapped CodecError was logged again")

    async def test_oversizeDeclaredLength(self) -> None:
        """
        A declared length of 0xFFFFFFFF is refused with PacketTooLargeError
        as soon as the 4 header bytes are there (no body is ever sent); the
        message gives the length, the limit and names maxMsgLen.
        """
        listener, session, bad = await self.misbehave(
            lambda c: c.transport.write(b"\xff\xff\xff\xff"),
            tweak=lambda s: setattr(s, "maxMsgLen", 1000),
        )
        [failure] = listener.errors
        self.assertTrue(failure.check(PacketTooLargeError))
        self.assertEqual((failure.value.length, failure.value.limit), (0xFFFFFFFF, 1000))
        message = failure.getErrorMessage()
        self.assertIn("4294967295", message)
        self.assertIn("1000", message)
        self.assertIn("maxMsgLen", message)
        self.assertEqual(session.bytesRead, 4)
        self.assertEqual(listener.messages, [])

    async def test_garbageBytes(self) -> None:
        """
        Garbage (plain HTTP, whose "GET " reads as a length of ~540 MB) sent
        after two good packets in the same write ends that session with a
        CodecError at once; the two packets before it are still delivered
        and their echoes flushed before the connection closes.
        """
        garbage = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
        listener, session, bad = await self.misbehave(
            lambda c: c.transport.write(helloFrame(b"one") + helloFrame(b"two") + garbage),
        )
        [failure] = listener.errors
        self.assertTrue(failure.check(CodecError))
        self.assertIn("maxMsgLen", failure.getErrorMessage())
        self.assertEqual(listener.messages, [b"one", b"two"])
        self.assertEqual(bad.received, [b"one", b"two"])

    async def test_cleanCloseMidPacket(self) -> None:
        """
        A peer that sends half a packet then closes cleanly (FIN) ends
        abnormally: a truncated stream.  onError gets a
        L{TruncatedPacketError} saying how much of the packet came, then
        onClose; the half packet is never delivered.
        """

        def halfThenFin(client: FramedClient) -> None:
            client.transport.write(helloFrame(b"x" * 100)[:50])
            client.transport.loseConnection()

        listener, session, bad = await self.misbehave(halfThenFin)
        self.assertEqual(listener.names(), ["open", "error", "close"])
        self.assertTrue(session.closeReason.check(TruncatedPacketError))
        self.assertIn("50 of 104 bytes", session.closeReason.getErrorMessage())
        self.assertEqual(session.bytesRead, 50)

    async def test_resetMidPacket(self) -> None:
        """
        A peer that sends half a packet then resets the connection (RST)
        gives onError (ConnectionLost) first, then onClose.
        """

        async def halfThenReset(client: FramedClient) -> None:
            client.transport.write(helloFrame(b"whole") + helloFrame(b"x" * 100)[:50])
            # Once "whole" is echoed the server has read (nearly surely) the
            # half packet sent with it; then reset the connection.
            await bounded(client.whenReceived(1), "the echo of the whole packet")
            client.transport.abortConnection()

        listener, session, bad = await self.misbehave(halfThenReset)
        self.assertEqual(listener.names(), ["open", "message", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(ConnectionLost), failure)
        self.assertIs(session.closeReason, failure)

    async def test_slowPeerPacketTimeout(self) -> None:
        """
        A peer trickling a packet one byte at a time is cut off with
        PacketTimeoutError once the packet took longer than its session's
        packetTimeout (0.5 s here), naming packetTimeout.
        """
        data = helloFrame(b"s" * 100)
        trickle: list[LoopingCall] = []

        def oneByteAtATime(client: FramedClient) -> None:
            remaining = iter(data)

            def sendOne() -> None:
                byte = next(remaining, None)
                if byte is not None and client.lostReason is None:
                    client.transport.write(bytes([byte]))

            call = LoopingCall(sendOne)
            trickle.append(call)
            call.start(0.02)

        self.addCleanup(lambda: trickle and trickle[0].running and trickle[0].stop())
        listener, session, bad = await self.misbehave(
            oneByteAtATime, tweak=lambda s: setattr(s, "packetTimeout", 0.5)
        )
        trickle[0].stop()
        [failure] = listener.errors
        self.assertTrue(failure.check(PacketTimeoutError))
        self.assertIn("packetTimeout is 0.5 s", failure.getErrorMessage())
        self.assertIn("of 104 bytes", failure.getErrorMessage())
        self.assertEqual(listener.messages, [])
        self.assertLess(session.bytesRead, len(data))

    async def test_readIdleTimeout(self) -> None:
        """
        A peer that goes silent after one packet is cut off with
        ReadIdleTimeoutError after its session's readIdleTimeout (0.5 s),
        naming readIdleTimeout; the good client (no idle timeout) stays.
        """

        def oneThenSilence(client: FramedClient) -> None:
            client.sendPackets([b"only one"])

        listener, session, bad = await self.misbehave(
            oneThenSilence, tweak=lambda s: setattr(s, "readIdleTimeout", 0.5)
        )
        self.assertEqual(bad.received, [b"only one"])
        [failure] = listener.errors
        self.assertTrue(failure.check(ReadIdleTimeoutError))
        self.assertIn("readIdleTimeout is 0.5 s", failure.getErrorMessage())


class WriteThroughTests(TestCase):
    """
    Writes on a TCP socket go straight to the kernel while nothing waits in
    Twisted's buffer (L{txgetty.transports.sockets.writeThrough}).
    """

    async def test_writeThroughKeepsOrder(self) -> None:
        """
        A reply larger than the kernel takes at once is sent in part and the
        rest buffered; later replies go behind it, never ahead: the client
        reads them all, in order.
        """
        big = b"B" * (8 * 1024 * 1024)

        class Burst(EchoRecorder):
            def onMessage(self, session: Any, pkg: Any) -> None:
                if pkg == b"go":
                    reactor.callLater(0, self.burst, session)

            def burst(self, session: Any) -> None:
                session.writePkg(big)  # outside a batch: written through
                for i in range(20):
                    session.writePkg(b"%d" % i)

        config = SessionConfig(maxMsgLen=16 * 1024 * 1024, maxPendingBytes=64 * 1024 * 1024,
                               writeHighMark=16 * 1024 * 1024)
        harness = ServerHarness(self, [TCP], config=config,
                                perSession=[lambda s: setattr(s, "listener", Burst())])
        [address] = await harness.start()
        client = await connectClient(self, address)
        client.sendPackets([b"go"])
        received = await bounded(client.whenReceived(21), "the burst")
        self.assertEqual(len(received[0]), len(big))
        self.assertEqual(received[1:], [b"%d" % i for i in range(20)])


class ListenerSocketOptionsTests(TestCase):
    """
    The server's TCP options are set once on the listening socket, which
    its accepted sockets inherit: a session with the server's settings
    makes no C{setsockopt} of its own; one whose new-session callback
    changes them still gets them on its own socket.
    """

    timeout = 60

    async def test_inheritedAndPerSession(self) -> None:
        """
        Two clients: the first session keeps the server's settings, the
        second turns no-delay off and sets another keepalive period.  Both
        sockets have their session's options; only the second called
        C{setTcpNoDelay}; both sessions know their local address (the
        listener's) and peer.
        """
        calls: list[bool] = []
        original = tcp.Connection.setTcpNoDelay

        def spy(transport: Any, enabled: bool) -> None:
            calls.append(enabled)
            original(transport, enabled)

        self.patch(tcp.Connection, "setTcpNoDelay", spy)

        def changes(session: Session) -> None:
            session.tcpNoDelay = False
            session.keepAlivePeriod = 30

        harness = ServerHarness(self, [TCP], perSession=[None, changes],
                                config=SessionConfig(keepAlivePeriod=90))
        [address] = await harness.start()
        for _ in range(2):
            await echoCheck(self, await connectClient(self, address), samplePayloads(3))
        first, second = harness.sessions
        self.assertEqual(readTcpOptions(first.transport.getHandle(), tcpOptionValues(True, True, 90)),
                         tcpOptionValues(True, True, 90))
        self.assertEqual(readTcpOptions(second.transport.getHandle(), tcpOptionValues(False, True, 30)),
                         tcpOptionValues(False, True, 30))
        # The second session's, once per setting it changed; none of the first.
        self.assertEqual(calls, [False, False])
        for session in (first, second):
            self.assertEqual(session.localAddress, address)
            self.assertEqual(session.remoteAddress, session.transport.getPeer())
            self.assertEqual(session.name, "tcp-session")

    async def test_wildcardListener(self) -> None:
        """
        On a listener bound to every interface, a session's local address
        is its own connection's (127.0.0.1 and the port), not the
        listener's 0.0.0.0.
        """
        harness = ServerHarness(self, ["tcp:0"])
        [address] = await harness.start()
        await echoCheck(self, await connectClient(self, IPv4Address("TCP", "127.0.0.1", address.port)),
                        samplePayloads(2))
        [session] = harness.sessions
        self.assertEqual(session.localAddress, IPv4Address("TCP", "127.0.0.1", address.port))
