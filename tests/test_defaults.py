"""
Unit tests of the safe defaults for a public port (issue 12, points 10-14),
with fake clocks and memory reactors: the role-dependent defaults, the
first-packet and write timeouts, the per-turn delivery bound, the
per-listener session cap with its refusals and their log lines, the listen
backlog, the WebSocket HTTP stage, getty's C{maxMsgLen} rule, and the twistd
options of all of them.
"""

from __future__ import annotations

import struct
from dataclasses import fields
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.server import ports as L
from txgetty.client import Client
from txgetty.codec import HelloCodec, LengthPrefixedCodec, codecFromString
from txgetty.config import (
    DEFAULT_FIRST_PACKET_TIMEOUT,
    DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_PACKETS_PER_TURN,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_READ_IDLE_TIMEOUT,
    DEFAULT_WRITE_TIMEOUT,
    ROLE_DEFAULTS,
    SessionConfig,
)
from txgetty.transports.udp import DEFAULT_PEER_IDLE
from txgetty.errors import (
    ConfigError,
    FirstPacketTimeoutError,
    PacketTooLargeError,
    ReadIdleTimeoutError,
    WriteTimeoutError,
)
from txgetty.handlers import EchoListener
from txgetty.server import Server
from txgetty.session import Session
from txgetty.tools.tap import Options, makeService
from txgetty.testing import RecordingListener, _Configure, connectedSessions, sessionOnStringTransport
from txgetty.wheel import TimerWheel
from txgetty.tally import Tally

from .transportsupport import FakeUDPReactor, captureLogs


def hello(payload: bytes) -> bytes:
    """
    @param payload: a packet.
    @return: it in hello framing.
    """
    return struct.pack("<I", len(payload)) + payload


def echoSession(session: Any) -> None:
    """
    A new-session callback: hello framing, echo.

    @param session: the new session.
    """
    session.codec = HelloCodec()
    session.listener = EchoListener()


def serverOn(reactor: Any, endpoints: list[str], newSession: Any = echoSession, **kw: Any) -> Server:
    """
    @param reactor: a memory reactor.
    @param endpoints: the listeners.
    @param newSession: the callback.
    @param kw: other L{Server} arguments.
    @return: a started server.
    """
    server = Server(endpoints, newSession, reactor=reactor, **kw)
    server.startService()
    return server


class HalfClosingTransport(StringTransport):
    """
    A string transport that can close its write side, as TCP's can.

    @ivar writeClosed: whether C{loseWriteConnection} was called.
    """

    writeClosed = False

    def loseWriteConnection(self) -> None:
        """
        Close the write side.
        """
        self.writeClosed = True


def accept(reactor: MemoryReactorClock, index: int = 0, port: int = 40000) -> tuple[Any, HalfClosingTransport]:
    """
    Let the memory reactor's listener C{index} accept one connection.

    @return: the protocol it built (a session or a refusal) and its
        transport.
    """
    factory = reactor.tcpServers[index][1]
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
    transport = HalfClosingTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
    protocol.makeConnection(transport)
    return protocol, transport


class RoleDefaultTests(SynchronousTestCase):
    """
    readIdleTimeout and firstPacketTimeout default to None in a config: a
    server's sessions get 300 s and 60 s, a client's get 0 (off); values
    given apply to both.
    """

    def test_configLeavesThemToTheRole(self) -> None:
        """
        A default config holds None for exactly the settings of
        ROLE_DEFAULTS, and forRole fills them in.
        """
        config = SessionConfig()
        self.assertEqual({f.name for f in fields(config) if getattr(config, f.name) is None}, set(ROLE_DEFAULTS))
        server = config.forRole("server")
        client = config.forRole("client")
        self.assertEqual((server.readIdleTimeout, server.firstPacketTimeout),
                         (DEFAULT_READ_IDLE_TIMEOUT, DEFAULT_FIRST_PACKET_TIMEOUT))
        self.assertEqual((client.readIdleTimeout, client.firstPacketTimeout), (0.0, 0.0))
        self.assertEqual((DEFAULT_READ_IDLE_TIMEOUT, DEFAULT_FIRST_PACKET_TIMEOUT), (300.0, 60.0))
        given = SessionConfig(readIdleTimeout=5, firstPacketTimeout=0)
        self.assertEqual(given.forRole("client"), given.forRole("server"))
        self.assertRaises(ConfigError, config.forRole, "proxy")

    def test_otherDefaults(self) -> None:
        """
        writeTimeout is 60 s and maxPacketsPerTurn 256 for every role; bad
        values of the new settings raise ConfigError naming them.
        """
        config = SessionConfig()
        self.assertEqual((config.writeTimeout, config.maxPacketsPerTurn), (DEFAULT_WRITE_TIMEOUT, 256))
        self.assertEqual((DEFAULT_WRITE_TIMEOUT, DEFAULT_MAX_PACKETS_PER_TURN), (60.0, 256))
        for name, bad in [("firstPacketTimeout", -1), ("writeTimeout", "soon"), ("maxPacketsPerTurn", -1),
                          ("maxPacketsPerTurn", 1.5), ("writeTimeout", True), ("firstPacketTimeout", float("nan"))]:
            e = self.assertRaises(ConfigError, SessionConfig, **{name: bad})
            self.assertIn(name, str(e))
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
        self.assertRaises(ConfigError, setattr, session, "readIdleTimeout", None)
        self.assertRaises(ConfigError, setattr, session, "firstPacketTimeout", -2)

    def test_serverAndClientSessions(self) -> None:
        """
        A Server's sessions get the server defaults, a Client's the client
        ones, also when the config passed sets other settings.
        """
        reactor = MemoryReactorClock()
        seen: list[Any] = []

        def newSession(session: Any) -> None:
            echoSession(session)
            seen.append((session.readIdleTimeout, session.firstPacketTimeout, session.writeTimeout))

        serverOn(reactor, ["tcp:0"], newSession, config=SessionConfig(maxMsgLen=100))
        accept(reactor)
        client = Client("tcp:127.0.0.1:1", newSession, reactor=reactor, config=SessionConfig(maxMsgLen=100))
        session = Session(clock=reactor, wheel=client.wheel, config=client.config, owner=client._slots[0])
        session.makeConnection(StringTransport())
        self.assertEqual(seen, [(300.0, 60.0, 60.0), (0.0, 0.0, 60.0)])

    def test_udpPeersKeepTheirSixtySeconds(self) -> None:
        """
        A UDP peer's session gets 60 s when the server's config leaves
        readIdleTimeout unset (or 0), the config's value when it sets one.
        """
        for config, expected in [(SessionConfig(), DEFAULT_PEER_IDLE), (SessionConfig(readIdleTimeout=0), 60.0),
                                 (SessionConfig(readIdleTimeout=7), 7.0)]:
            reactor = FakeUDPReactor()
            server = serverOn(reactor, ["udp:0"], config=config)
            port = reactor.udpPorts[0]
            port.protocol.datagramReceived(hello(b"x"), ("127.0.0.1", 5000))
            (session,) = server.sessions()
            self.assertEqual((session.readIdleTimeout, session.firstPacketTimeout), (expected, 60.0))
            server.stopService()


class FirstPacketTimeoutTests(SynchronousTestCase):
    """
    A stream session without a complete packet firstPacketTimeout seconds
    after its connection was accepted is closed with
    FirstPacketTimeoutError.
    """

    def session(self, clock: Clock, **config: Any) -> tuple[Session, StringTransport, RecordingListener]:
        """
        @return: a server-role session on a string transport.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(**config), clock=clock, role="server"
        )
        return session, transport, listener

    def test_silentConnectionClosed(self) -> None:
        """
        Nothing, or only part of a packet, within 60 s: closed, onError saw
        a FirstPacketTimeoutError naming the setting and the twistd option.
        """
        for first in (b"", b"\x05\x00"):
            clock = Clock()
            session, transport, listener = self.session(clock, packetTimeout=0)
            session.dataReceived(first)
            clock.advance(59.9)
            self.assertEqual(session.state, "OPEN")
            clock.advance(0.2)
            self.assertTrue(session.isClosed)
            self.assertTrue(transport.disconnecting)
            (error,) = listener.errors
            self.assertTrue(error.check(FirstPacketTimeoutError))
            message = error.getErrorMessage()
            self.assertIn("firstPacketTimeout is 60 s", message)
            self.assertIn("--first-packet-timeout", message)
            self.assertIn(f"({len(first)} bytes received)", message)

    def test_packetInTime(self) -> None:
        """
        One complete packet before the deadline and the timer does nothing;
        the session then lives until readIdleTimeout.
        """
        clock = Clock()
        session, transport, listener = self.session(clock)
        clock.advance(59)
        session.dataReceived(hello(b"hi"))
        clock.advance(100)
        self.assertEqual((session.state, listener.errors), ("OPEN", []))
        clock.advance(200)
        self.assertTrue(listener.errors[0].check(ReadIdleTimeoutError))

    def test_countsFromAccept(self) -> None:
        """
        The time counts from the connection's accept (the session's
        startTime), and a new value on an open session applies to the time
        left; 0 turns it off.
        """
        clock = Clock()
        session, transport, listener = self.session(clock)
        clock.advance(20)
        session.firstPacketTimeout = 30
        clock.advance(9.9)
        self.assertEqual(session.state, "OPEN")
        clock.advance(0.2)
        self.assertTrue(listener.errors[0].check(FirstPacketTimeoutError))
        clock = Clock()
        session, transport, listener = self.session(clock)
        session.firstPacketTimeout = 0
        clock.advance(1000)
        self.assertEqual((session.isClosed, listener.errors[0].check(ReadIdleTimeoutError)),
                         (True, ReadIdleTimeoutError))

    def test_beforeOpen(self) -> None:
        """
        A session whose onOpen never finishes (openTimeout off) is dropped
        at the deadline too, without onClose.
        """

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred:
                super().onOpen(session)
                return Deferred()

        clock = Clock()
        listener = Slow()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(openTimeout=0), clock=clock, role="server"
        )
        clock.advance(60.1)
        self.assertTrue(session.closeReason.check(FirstPacketTimeoutError))
        self.assertTrue(transport.disconnecting)

    def test_withoutOpenTimeoutOrIdleTimeout(self) -> None:
        """
        The limit holds whichever other timers are off: without openTimeout
        (the session's own first-packet timer runs from accept) and without
        readIdleTimeout (the idle timer watches the first packet alone, and
        closes nothing once a packet came).
        """
        for config in (dict(openTimeout=0), dict(readIdleTimeout=0), dict(openTimeout=0, readIdleTimeout=0)):
            clock = Clock()
            session, transport, listener = self.session(clock, **config)
            clock.advance(59.9)
            self.assertEqual(session.state, "OPEN", config)
            clock.advance(0.2)
            self.assertTrue(listener.errors[0].check(FirstPacketTimeoutError), config)
        clock = Clock()
        session, transport, listener = self.session(clock, readIdleTimeout=0)
        session.dataReceived(hello(b"hi"))
        clock.advance(1000)
        self.assertEqual((session.state, listener.errors), ("OPEN", []))

    def test_notOnClientsNorMessageTransports(self) -> None:
        """
        A client's session, and a session on a message transport (its
        handshake or datagram came first), have no such timer.
        """
        clock = Clock()
        session, transport = sessionOnStringTransport(RecordingListener(), HelloCodec(), clock=clock)
        clock.advance(1000)
        self.assertEqual(session.state, "OPEN")

        class MessageTransport(StringTransport):
            messages = True

        session = Session(clock=clock, wheel=TimerWheel(clock), config=SessionConfig(readIdleTimeout=0),
                          owner=_Configure(RecordingListener(), HelloCodec(), role="server"))
        session.makeConnection(MessageTransport())
        clock.advance(1000)
        self.assertEqual((session.state, session.firstPacketTimeout), ("OPEN", 60.0))


class WriteTimeoutTests(SynchronousTestCase):
    """
    A session unwritable for writeTimeout seconds, the peer taking none of
    the bytes waiting, is closed with WriteTimeoutError.
    """

    def pair(self, **config: Any) -> Any:
        """
        @return: connected sessions whose client end will not be pumped.
        """
        return connectedSessions(RecordingListener(), RecordingListener(), HelloCodec(),
                                 config=SessionConfig(readIdleTimeout=0, firstPacketTimeout=0, **config))

    def test_nonReadingPeerClosed(self) -> None:
        """
        70 KiB waiting (above writeHighMark) and nothing taken for 60 s:
        onError gets a WriteTimeoutError saying what, why and which setting;
        the session closes.
        """
        pair = self.pair()
        pair.server.writePkg(b"x" * 70_000)
        self.assertFalse(pair.server.isWritable())
        pair.clock.advance(59.8)
        self.assertEqual(pair.server.state, "OPEN")
        pair.clock.advance(0.4)
        (error,) = pair.serverListener.errors
        self.assertTrue(error.check(WriteTimeoutError))
        message = error.getErrorMessage()
        for words in ("the peer took none of the 70004 bytes", "it does not read",
                      "writeTimeout is 60 s", "--write-timeout"):
            self.assertIn(words, message)
        self.assertTrue(pair.server.isClosed)

    def test_slowReaderKept(self) -> None:
        """
        A peer that takes a little every 30 s is not timed out, however long
        it stays unwritable.
        """
        pair = self.pair()
        pair.server.writePkg(b"x" * 200_000)
        outgoing = pair.serverTransport.outgoing
        for _ in range(10):
            pair.clock.advance(30)
            outgoing[0] = outgoing[0][1000:]
        self.assertEqual((pair.server.state, pair.server.isWritable()), ("OPEN", False))
        for _ in range(61):
            pair.clock.advance(1)
        self.assertTrue(pair.server.closeReason.check(WriteTimeoutError))

    def test_offAndWritableAgain(self) -> None:
        """
        writeTimeout 0 never closes; a session that became writable again
        starts a new count the next time.
        """
        pair = self.pair(writeTimeout=0)
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(1000)
        self.assertEqual(pair.server.state, "OPEN")
        pair = self.pair(writeTimeout=10)
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(8)
        pair.pump()
        self.assertTrue(pair.server.isWritable())
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(8)
        self.assertEqual(pair.server.state, "OPEN")
        pair.clock.advance(2.2)
        self.assertTrue(pair.server.closeReason.check(WriteTimeoutError))


class TurnTests(SynchronousTestCase):
    """
    A read hands at most maxPacketsPerTurn packets to onMessage; the rest
    follow from the next reactor turns, in order, reading paused meanwhile.
    """

    def session(self, listener: Any = None, **config: Any) -> tuple[Session, StringTransport, Clock, Any]:
        """
        @return: a session, its transport, its clock and its listener.
        """
        clock = Clock()
        listener = listener or EchoListener()
        session, transport = sessionOnStringTransport(listener, HelloCodec(), clock=clock,
                                                      config=SessionConfig(**config))
        return session, transport, clock, listener

    def stream(self, count: int) -> tuple[list[bytes], bytes]:
        """
        @return: C{count} payloads and their frames, joined.
        """
        payloads = [b"%d" % i for i in range(count)]
        return payloads, b"".join(map(hello, payloads))

    def test_boundedTurns(self) -> None:
        """
        1000 packets in one read, 256 per turn: 256 echoed at once in one
        write, reading paused; the next turns give the rest, in wire order,
        then reading resumes.
        """
        session, transport, clock, _ = self.session()
        payloads, data = self.stream(1000)
        session.dataReceived(data)
        self.assertEqual(transport.value(), b"".join(map(hello, payloads[:256])))
        self.assertEqual(transport.producerState, "paused")
        clock.advance(0)
        self.assertEqual(transport.value(), data)
        self.assertEqual(transport.producerState, "producing")

    def test_arrivingMeanwhileWaits(self) -> None:
        """
        Bytes that arrive during the turns (a TLS layer may still deliver
        some) come after the packets that wait.
        """
        listener = RecordingListener()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        payloads, data = self.stream(25)
        session.dataReceived(data)
        session.dataReceived(hello(b"late"))
        self.assertEqual(listener.messages, payloads[:10])
        clock.advance(0)
        self.assertEqual(listener.messages, payloads + [b"late"])

    def test_awaitedHandlerInATurn(self) -> None:
        """
        A handler awaited in the middle of a turn holds the rest of the turn
        and the following turns behind it, in order.
        """
        waits: list[Deferred] = []

        class Awaiting(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Any:
                super().onMessage(session, pkg)
                if pkg == b"5":
                    waits.append(Deferred())
                    return waits[-1]
                return None

        listener = Awaiting()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        payloads, data = self.stream(30)
        session.dataReceived(data)
        self.assertEqual(listener.messages, payloads[:6])
        clock.advance(0)
        self.assertEqual(listener.messages, payloads[:6])
        waits[0].callback(None)
        clock.advance(0)
        self.assertEqual(listener.messages, payloads)
        self.assertEqual(transport.producerState, "producing")

    def test_halfCloseAndClose(self) -> None:
        """
        A peer that half-closes during the turns gets every packet answered
        before the session closes; a handler that closes the session drops
        the packets still waiting.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=10)
        payloads, data = self.stream(25)
        session.dataReceived(data)
        session.readConnectionLost()
        self.assertEqual(session.state, "OPEN")
        clock.advance(0)
        self.assertEqual(transport.value(), data)
        self.assertEqual(session.state, "CLOSING")

        class Closer(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                if pkg == b"12":
                    session.close()

        listener = Closer()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        session.dataReceived(data)
        clock.advance(0)
        self.assertEqual(listener.messages, payloads[:13])
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_noBound(self) -> None:
        """
        maxPacketsPerTurn 0 delivers everything a read holds at once.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=0)
        payloads, data = self.stream(5000)
        session.dataReceived(data)
        self.assertEqual(transport.value(), data)

    def test_turnCancelledWithConnection(self) -> None:
        """
        A connection lost while packets wait for their turn leaves no call
        behind.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=10)
        session.dataReceived(self.stream(100)[1])
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([c for c in clock.getDelayedCalls() if c.active()], [])


class CountHeaderTests(SynchronousTestCase):
    """
    maxMsgLen counts the payload of a length-prefixed packet; with
    countHeader it counts the header too, as getty does.
    """

    def test_payloadOnly(self) -> None:
        """
        By default a 10-byte payload passes maxMsgLen 10, 11 bytes do not.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(),
                                              config=SessionConfig(maxMsgLen=10))
        codec = HelloCodec()
        self.assertEqual(codec.read(session, bytearray(hello(b"x" * 10))), (b"x" * 10, 14))
        e = self.assertRaises(PacketTooLargeError, codec.read, session, bytearray(hello(b"x" * 11)))
        self.assertEqual((e.length, e.limit), (11, 10))

    def test_gettyRule(self) -> None:
        """
        With countHeader, pkgLen + 4 > maxMsgLen is refused: 6 bytes of
        payload pass maxMsgLen 10, 7 do not, in read and readPackets, and
        the error names the header.
        """
        for codec in (HelloCodec(countHeader=True), codecFromString("hello:count-header"),
                      LengthPrefixedCodec(4, "little", countHeader=True)):
            session, _ = sessionOnStringTransport(RecordingListener(), codec, config=SessionConfig(maxMsgLen=10))
            self.assertEqual(codec.read(session, bytearray(hello(b"x" * 6))), (b"x" * 6, 10))
            e = self.assertRaises(PacketTooLargeError, codec.read, session, bytearray(hello(b"x" * 7)))
            self.assertEqual((e.length, e.limit), (11, 10))
            self.assertIn("4-byte header included", str(e))
            out: list[bytes] = []
            buf = bytearray(hello(b"y" * 6) + hello(b"y" * 7))
            e = self.assertRaises(PacketTooLargeError, codec.readPackets, session, buf, out)
            self.assertEqual((out, e.length), ([b"y" * 6], 11))

    def test_specs(self) -> None:
        """
        The codec specs take :count-header after hello and length specs
        only.
        """
        self.assertTrue(codecFromString("length:2:count-header").countHeader)
        self.assertTrue(codecFromString("length:4:big:count-header").countHeader)
        self.assertFalse(codecFromString("length:4:big").countHeader)
        self.assertEqual(repr(codecFromString("hello:count-header")),
                         "LengthPrefixedCodec(size=4, byteorder='little', countHeader=True)")
        for bad in ("line:count-header", "length:count-header", "raw:count-header"):
            self.assertRaises(ConfigError, codecFromString, bad)
        self.assertRaises(ConfigError, LengthPrefixedCodec, 4, "big", "yes")


class ListenerSettingTests(SynchronousTestCase):
    """
    Every listener gets the server's maxSessions and backlog unless its
    description names its own.
    """

    def test_backlogs(self) -> None:
        """
        tcp:, unix: and tls: listeners and ws:// ports listen with the
        server's backlog (65535 by default) or their own.
        """
        from .certs import testCertificates

        pki = testCertificates()
        key, cert = pki.serverKey, pki.serverCert
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0", "tcp:0:backlog=7", f"tls:0:key={key}:cert={cert}", "ws://127.0.0.1:0/",
                           "ws://127.0.0.1:0/?backlog=9", f"unix:{self.mktemp()}"])
        self.assertEqual([s[2] for s in reactor.tcpServers], [DEFAULT_LISTEN_BACKLOG, 7, 65535, 9])
        self.assertEqual(reactor.sslServers[0][3], DEFAULT_LISTEN_BACKLOG)
        self.assertEqual(reactor.unixServers[0][2], DEFAULT_LISTEN_BACKLOG)
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0", "ws://127.0.0.1:0/"], backlog=128)
        self.assertEqual([s[2] for s in reactor.tcpServers], [128, 128])

    def test_caps(self) -> None:
        """
        maxSessions comes from the description (:maxSessions=N, ?maxSessions=N)
        or the server; UDP listeners take it as maxPeers.
        """
        reactor = FakeUDPReactor()
        server = serverOn(reactor, ["tcp:0:maxSessions=3", "tcp:0", "ws://127.0.0.1:0/?maxSessions=4",
                                    "udp:0", "udp:0:maxPeers=2"], maxSessions=50)
        caps = [getattr(listener, "cap", None) for listener in server._listeners]
        self.assertEqual([c.maxSessions for c in caps if c is not None], [3, 50, 4])
        self.assertEqual([p.protocol.maxPeers for p in reactor.udpPorts], [50, 2])
        self.assertEqual(Server(["tcp:0"], echoSession, reactor=reactor).maxSessions, DEFAULT_MAX_SESSIONS)

    def test_badValues(self) -> None:
        """
        A bad maxSessions or backlog raises ConfigError naming it and the
        description.
        """
        reactor = MemoryReactorClock()
        for endpoints, kw, words in [
            (["tcp:0:maxSessions=many"], {}, "maxSessions must be a whole number, got 'many' (in 'tcp:0:maxSessions=many')"),
            (["tcp:0:backlog=-1"], {}, "backlog must be a positive integer, got -1"),
            (["ws://127.0.0.1:0/?maxSessions=-3"], {}, "maxSessions must be an integer, 0 or more"),
            (["tcp:0"], {"maxSessions": -1}, "maxSessions must be an integer, 0 or more, got -1"),
            (["tcp:0"], {"backlog": 0}, "backlog must be a positive integer, got 0"),
        ]:
            e = self.assertRaises(ConfigError, Server, endpoints, echoSession, reactor=reactor, **kw)
            self.assertIn(words, str(e))

    def test_takeOption(self) -> None:
        """
        takeOption removes the option wherever it is and keeps escapes.
        """
        self.assertEqual(L.takeOption("tcp:80:maxSessions=5:interface=\\:\\:1", "maxSessions"),
                         ("tcp:80:interface=\\:\\:1", "5"))
        self.assertEqual(L.takeOption("tcp:80", "maxSessions"), ("tcp:80", None))


class CapTests(SynchronousTestCase):
    """
    Beyond maxSessions a listener closes new connections at once, counts
    them and logs them once per interval.
    """

    def test_refusedBeyondTheCap(self) -> None:
        """
        The third connection of a listener with maxSessions 2 gets no
        session: its write side is shut at once, nothing is written, it is
        closed after REFUSAL_LINGER; once a session ends, a new one is
        accepted again.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0:maxSessions=2"])
        first, _ = accept(reactor)
        accept(reactor)
        refusal, transport = accept(reactor)
        self.assertNotIsInstance(refusal, Session)
        self.assertEqual((server.accepted, server.refusedFull, len(server.sessions())), (2, 1, 2))
        self.assertEqual((transport.value(), transport.writeClosed, transport.disconnecting), (b"", True, False))
        reactor.advance(L.REFUSAL_LINGER)
        self.assertTrue(transport.disconnecting)
        refusal.connectionLost(Failure(ConnectionDone()))
        first.connectionLost(Failure(ConnectionDone()))
        session, _ = accept(reactor)
        self.assertIsInstance(session, Session)
        self.assertEqual(server.refusedFull, 1)

    def test_refusalsLoggedOncePerInterval(self) -> None:
        """
        The first refusal is logged at once (a warning naming the listener,
        the cap and the peer), the next ones in one line per interval with
        their number, and nothing while there are none.
        """
        logs = captureLogs(self)
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0:maxSessions=1"])
        accept(reactor)
        refused = lambda: [line for line in logs if "refused" in line]  # noqa: E731
        accept(reactor, port=40001)
        self.assertEqual(refused(), [
            "txgetty: tcp:0:maxSessions=1 holds maxSessions (1) connections: refused one from "
            "tcp:127.0.0.1:40001 (closed at once); further refusals are counted and logged every 10 s"])
        for _ in range(5):
            accept(reactor)
        reactor.advance(L.REFUSAL_LOG_INTERVAL)
        self.assertEqual(len(refused()), 2)
        self.assertIn("refused 5 more connections in the last 10 s, 6 in all: it holds maxSessions (1)",
                      refused()[1])
        reactor.advance(L.REFUSAL_LOG_INTERVAL * 3)
        self.assertEqual(len(refused()), 2)
        accept(reactor)
        self.assertEqual(len(refused()), 3)
        server.stopService()
        self.assertEqual(server.refusedFull, 7)

    def test_lingeringBounded(self) -> None:
        """
        Beyond MAX_LINGERING refused connections at a time, the next ones
        are closed at once.
        """
        self.patch(L, "MAX_LINGERING", 2)
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0:maxSessions=1"])
        accept(reactor)
        transports = [accept(reactor)[1] for _ in range(3)]
        self.assertEqual([t.disconnecting for t in transports], [False, False, True])

    def test_noCap(self) -> None:
        """
        maxSessions 0 accepts every connection.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0"], maxSessions=0)
        for _ in range(20):
            accept(reactor)
        self.assertEqual((server.accepted, server.refusedFull), (20, 0))


class HTTPStageTests(SynchronousTestCase):
    """
    On a ws:// listener each connection has openTimeout seconds from accept
    to its upgrade, and counts for maxSessions until it is gone.
    """

    def site(self, **config: Any) -> tuple[Any, MemoryReactorClock, Server]:
        """
        @return: the listener's site, the reactor, the server.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["ws://127.0.0.1:0/?maxSessions=2"], config=SessionConfig(**config))
        return reactor.tcpServers[0][1], reactor, server

    def connect(self, site: Any) -> tuple[Any, StringTransport]:
        """
        @return: a channel (or refusal) of the site and its transport.
        """
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        return channel, transport

    def test_tricklingRequestDropped(self) -> None:
        """
        Bytes trickling in do not reset the timer: after openTimeout the
        connection is aborted and logged once; its place is free again.
        """
        logs = captureLogs(self)
        site, reactor, server = self.site(openTimeout=3)
        channel, transport = self.connect(site)
        for byte in b"GET / HTTP/1.1\r\n":
            reactor.advance(0.1)
            channel.dataReceived(bytes([byte]))
        self.assertFalse(transport.disconnected)
        reactor.advance(3 - 1.6)
        self.assertTrue(transport.disconnected)
        self.assertEqual([line for line in logs if "upgrade" in line], [
            "txgetty: ws://127.0.0.1:0/?maxSessions=2: tcp:127.0.0.1:40000 did not finish its WebSocket upgrade "
            "within 3 s of connecting (openTimeout): dropped; further ones are counted and logged every 10 s"])
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(site.stages.cap.active, 0)

    def test_capCountsHTTPConnections(self) -> None:
        """
        Two HTTP connections fill a maxSessions=2 port: the third is refused;
        the upgrade stops the timer; the count drops when a connection ends.
        """
        site, reactor, server = self.site(openTimeout=3)
        one, t1 = self.connect(site)
        two, t2 = self.connect(site)
        third = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002))
        self.assertNotIsInstance(third, type(one))
        self.assertEqual(server.refusedFull, 1)
        site.stages.upgraded(t2)
        reactor.advance(5)
        self.assertEqual((t1.disconnected, t2.disconnected), (True, False))
        site.stages.end(t2)
        site.stages.end(t2)
        self.assertEqual(site.stages.cap.active, 1)

    def test_off(self) -> None:
        """
        openTimeout 0 leaves the HTTP stage unbounded.
        """
        site, reactor, server = self.site(openTimeout=0)
        channel, transport = self.connect(site)
        reactor.advance(1000)
        self.assertFalse(transport.disconnected)


class TallyTests(SynchronousTestCase):
    """
    L{txgetty.tally.Tally} logs the first event at once, then one line
    per interval while events go on.
    """

    def test_lines(self) -> None:
        """
        Three events, one interval, one event: three lines.
        """
        logs = captureLogs(self)
        clock = Clock()
        tally = Tally(clock, "first {what}", "again {n} of {total} in {interval:g} s", interval=5, level="info")
        for _ in range(3):
            tally.count(what="x")
        clock.advance(5)
        clock.advance(5)
        tally.count(what="y")
        self.assertEqual(logs, ["first x", "again 2 of 3 in 5 s", "first y"])
        tally.stop()
        self.assertEqual(clock.getDelayedCalls(), [])


class TwistdOptionTests(SynchronousTestCase):
    """
    twistd txgetty has an option for every new limit, with the defaults.
    """

    def test_defaults(self) -> None:
        """
        Without options: the server defaults, and the Server gets the
        listener defaults.
        """
        options = Options()
        options.parseOptions(["--no-rpc"])
        config = options["config"]
        self.assertEqual(
            (config.readIdleTimeout, config.firstPacketTimeout, config.writeTimeout, config.maxPacketsPerTurn,
             options["max-sessions"], options["backlog"]),
            (300.0, 60.0, 60.0, 256, 10000, 65535),
        )

    def test_given(self) -> None:
        """
        The options reach the config and the Server; a :count-header codec
        works.
        """
        options = Options()
        options.parseOptions(["--no-rpc", "--listen", "tcp:0", "--first-packet-timeout", "5", "--write-timeout", "7",
                              "--max-packets-per-turn", "0", "--max-sessions", "12", "--backlog", "99",
                              "--read-idle-timeout", "0", "--codec", "hello:count-header"])
        config = options["config"]
        self.assertEqual((config.firstPacketTimeout, config.writeTimeout, config.maxPacketsPerTurn,
                          config.readIdleTimeout), (5.0, 7.0, 0, 0.0))
        self.assertTrue(options["codecObject"].countHeader)
        reactor = MemoryReactorClock()
        top = makeService(options, reactor)
        (server,) = [s for s in top if isinstance(s, Server)]
        self.assertEqual((server.maxSessions, server.backlog), (12, 99))
        server.startService()
        self.assertEqual(reactor.tcpServers[0][2], 99)
        server.stopService()

    def test_badValues(self) -> None:
        """
        Bad values stop twistd with a message naming the option.
        """
        for args, words in [(["--max-sessions", "-1"], "--max-sessions takes a whole number of connections, 0 or more"),
                            (["--backlog", "0"], "--backlog takes a whole number of connections, 1 or more"),
                            (["--write-timeout", "-1"], "--write-timeout takes a number of seconds, 0 or more"),
                            (["--first-packet-timeout", "x"], "--first-packet-timeout takes a number of seconds"),
                            (["--max-packets-per-turn", "-5"], "--max-packets-per-turn takes a whole number of packets"),
                            (["--listen", "tcp:0:maxSessions=-2"], "maxSessions must be an integer, 0 or more, got -2"),
                            (["--listen", "tcp:99999:maxSessions=3"],
                             "the port of 'tcp:99999:maxSessions=3' must be a number 0-65535")]:
            e = self.assertRaises(usage.UsageError, Options().parseOptions, ["--no-rpc"] + args)
            self.assertIn(words, str(e))
