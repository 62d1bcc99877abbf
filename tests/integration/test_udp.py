"""
Tests of the UDP transport (L{txgetty.transports.udp}): a session per peer
address with a clean idle expiry, oversize datagrams dropped and counted,
many peers and the C{maxPeers} limit, codec errors of a datagram, and the
connected-UDP client hearing an ICMP refusal.

The idle-expiry and codec tests run a real L{Server} on a fake reactor
(L{FakeUDPReactor}: fake clock, UDP ports in memory); the others use real
sockets on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any, Callable
import socket
import threading

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.trial.unittest import TestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import DatagramTooLargeError, PacketTooLargeError, SessionClosedError
from txgetty.handlers import EventListener
from txgetty.session import Session
from txgetty.taskpool import TaskPool
from txgetty.testing import _Configure
from txgetty.transports.udp import UDPClientEndpoint
from txgetty.wheel import TimerWheel

from ..support.net import EchoRecorder, ServerHarness, bounded, helloFrame
from ..support.transports import (
    FakeUDPReactor,
    FakeUDPServer,
    ONCE,
    captureLogs,
    freePort,
    realWait,
    startTxClient,
    udpPeer,
    waitUntil,
    whenEvent,
)


UDP = "udp:0:interface=127.0.0.1"


class OversizeTests(TestCase):
    """
    Datagrams above maxMsgLen are dropped and counted, never truncated, and
    do not close the peer's session.
    """

    def test_droppedAndCountedOnce(self) -> None:
        """
        Three oversize datagrams: none delivered, the open session stays
        open, oversize and dropped count 3, one warning is logged; a datagram
        of exactly maxMsgLen bytes is delivered, and an oversize first
        datagram makes no session.
        """
        logs = captureLogs(self)
        fake = FakeUDPServer(self, maxMsgLen=100)
        fake.receive(helloFrame(b"first"))
        for _ in range(3):
            fake.receive(b"\0" * 101)
        fake.receive(b"\0" * 200, ("10.9.9.9", 9))
        [session] = fake.sessions
        self.assertEqual(fake.listeners[0].names(), ["open", "message"])
        self.assertFalse(session.isClosed)
        self.assertEqual((fake.protocol.oversize, fake.protocol.dropped), (4, 4))
        self.assertEqual(len([t for t in logs if "larger than 100 bytes" in t]), 1)
        fake.receive(helloFrame(b"x" * 96))
        self.assertEqual(fake.listeners[0].messages, [b"first", b"x" * 96])
        self.assertEqual(fake.port.maxPacketSize, 101)

    async def test_realSocketsNotTruncated(self) -> None:
        """
        Over real sockets an oversize datagram (150 bytes, maxMsgLen 100) is
        counted and dropped, not delivered cut to the read size; the peer's
        session still echoes afterwards.
        """
        harness = ServerHarness(self, [UDP], config=SessionConfig(maxMsgLen=100))
        [address] = await harness.start()
        protocol = harness.server._listeners[0].protocol
        peer = udpPeer(self)
        peer.sendTo(helloFrame(b"one"), address.port)
        await peer.whenReceived(1)
        peer.sendTo(helloFrame(b"y" * 146), address.port)
        await waitUntil(lambda: protocol.oversize == 1, "the oversize datagram to be counted")
        peer.sendTo(helloFrame(b"two"), address.port)
        self.assertEqual(await peer.whenReceived(2), [helloFrame(b"one"), helloFrame(b"two")])
        self.assertEqual(harness.listeners[0].messages, [b"one", b"two"])
        self.assertEqual((len(harness.sessions), protocol.dropped), (1, 1))
        self.assertEqual(harness.server.datagramDrops(), {"oversize": 1, "peers": 0, "backlog": 0})
        self.assertNotIn("error", harness.listeners[0].names())

    async def test_oversizeWriteRaises(self) -> None:
        """
        A packet too large for one datagram, written from onMessage, is not
        sent: writePkg raises a DatagramTooLargeError (a PacketTooLargeError)
        naming its size and the limit, which reaches onError like any handler
        error; under handlerErrorPolicy "continue" the session stays open and
        answers the next packet.
        """
        harness = ServerHarness(self, [UDP], config=SessionConfig(maxMsgLen=200_000,
                                                                  handlerErrorPolicy="continue"),
                                perSession=[lambda session: setattr(session, "listener", _BigReply())])
        [address] = await harness.start()
        peer = udpPeer(self)
        peer.sendTo(helloFrame(b"one"), address.port)
        await waitUntil(lambda: harness.sessions and harness.sessions[0].listener.errors, "onError")
        [session] = harness.sessions
        [failure] = session.listener.errors
        self.assertIsInstance(failure.value, DatagramTooLargeError)
        self.assertIsInstance(failure.value, PacketTooLargeError)
        self.assertIn("70004 bytes", str(failure.value))
        self.assertIn("65507", str(failure.value))
        session.listener.big = False
        peer.sendTo(helloFrame(b"two"), address.port)
        self.assertEqual(await peer.whenReceived(1), [helloFrame(b"two")])
        self.assertFalse(session.isClosed)

    async def test_writePkgsFromPoolOneDatagramEach(self) -> None:
        """
        writePkgs from a handler in a task pool sends each packet as a
        datagram of its own, as it does from the reactor thread.
        """
        pool = TaskPool(size=1, reactor=reactor)
        pool.startService()
        self.addCleanup(pool.stopService)
        harness = ServerHarness(self, [UDP], taskPool=pool,
                                perSession=[lambda session: setattr(session, "listener", _Twice())])
        [address] = await harness.start()
        peer = udpPeer(self)
        peer.sendTo(helloFrame(b"one"), address.port)
        self.assertEqual(await peer.whenReceived(2), [helloFrame(b"one"), helloFrame(b"one!")])

    async def test_oversizeWriteFromPool(self) -> None:
        """
        Written by a handler in a task pool (sent later from the reactor
        thread), the oversize packet's error still reaches onError, and the
        default policy closes the session; nothing is raised into the
        reactor (trial would report it).
        """
        pool = TaskPool(size=1, reactor=reactor)
        pool.startService()
        self.addCleanup(pool.stopService)
        harness = ServerHarness(self, [UDP], taskPool=pool, config=SessionConfig(maxMsgLen=200_000),
                                perSession=[lambda session: setattr(session, "listener", _BigReply())])
        [address] = await harness.start()
        peer = udpPeer(self)
        peer.sendTo(helloFrame(b"one"), address.port)
        await waitUntil(lambda: harness.sessions and harness.sessions[0].isClosed, "the session to close")
        [failure] = harness.sessions[0].listener.errors
        self.assertIsInstance(failure.value, DatagramTooLargeError)


class _Twice(EventListener):
    """
    Answers each packet with two, in one writePkgs call.
    """

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the session.
        @param pkg: the packet.
        """
        session.writePkgs([pkg, pkg + b"!"])


class _BigReply(EchoRecorder):
    """
    Answers a packet with one too large for a datagram while C{big} is set,
    else echoes it.
    """

    big = True

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the session.
        @param pkg: the packet.
        """
        super().onMessage(session, b"x" * 70_000 if self.big else pkg)


class _Gated(EventListener):
    """
    Echoes each packet once C{gate} is set (in a task pool's worker).
    """

    def __init__(self, gate: threading.Event) -> None:
        """
        @param gate: set to let the handlers go on.
        """
        self.gate = gate

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the session.
        @param pkg: the packet, echoed after the gate opens.
        """
        self.gate.wait(10)
        session.writePkg(pkg)


class BacklogTests(TestCase):
    """
    A UDP peer cannot be paused: a session whose task-pool backlog is full
    drops its datagrams, counted (real sockets).
    """

    async def test_fullBacklogDropsDatagrams(self) -> None:
        """
        Ordered pool of one blocked worker, backlogHighMark 8: of a peer's 60
        datagrams the session takes 9 (then it holds back reading) and drops
        the other 51, counted as backlog and logged once; once the worker
        runs the 9 are echoed in order, and below backlogLowMark the session
        takes datagrams again.
        """
        logs = captureLogs(self)
        gate = threading.Event()
        self.addCleanup(gate.set)
        pool = TaskPool(size=1, reactor=reactor)
        pool.startService()
        self.addCleanup(pool.stopService)
        harness = ServerHarness(self, [UDP], taskPool=pool,
                                config=SessionConfig(backlogHighMark=8, backlogLowMark=2),
                                perSession=[lambda session: setattr(session, "listener", _Gated(gate))])
        [address] = await harness.start()
        server = harness.server
        peer = udpPeer(self)
        for i in range(60):
            peer.sendTo(helloFrame(b"%d" % i), address.port)
        await waitUntil(lambda: server.datagramDrops()["backlog"] == 51, "51 datagrams dropped")
        self.assertEqual(harness.sessions[0].taskBacklog, 9)
        gate.set()
        self.assertEqual(await peer.whenReceived(9), [helloFrame(b"%d" % i) for i in range(9)])
        await waitUntil(lambda: harness.sessions[0].taskBacklog == 0, "the backlog to drain")
        peer.sendTo(helloFrame(b"after"), address.port)
        self.assertEqual((await peer.whenReceived(10))[-1], helloFrame(b"after"))
        self.assertEqual(server.datagramDrops(), {"oversize": 0, "peers": 0, "backlog": 51})
        self.assertEqual(len([t for t in logs if "datagrams are dropped until it catches up" in t]), 1)


class PeersTests(TestCase):
    """
    Many peers, each its own session; the maxPeers limit (real sockets).
    """

    timeout = 60

    async def test_manyPeers(self) -> None:
        """
        200 client sockets give 200 sessions, each echoing to its own peer.
        """
        harness = ServerHarness(self, [UDP])
        [address] = await harness.start()
        peers = [udpPeer(self) for _ in range(200)]
        for start in range(0, 200, 25):
            for i in range(start, start + 25):
                peers[i].sendTo(helloFrame(b"peer %d" % i), address.port)
            for i in range(start, start + 25):
                self.assertEqual(await peers[i].whenReceived(1), [helloFrame(b"peer %d" % i)])
        server = harness.server
        self.assertEqual((server.opened, len(server.sessions())), (200, 200))
        self.assertEqual(len(harness.server._listeners[0].protocol.peers), 200)
        self.assertEqual(sorted(m for listener in harness.listeners for m in listener.messages),
                         sorted(b"peer %d" % i for i in range(200)))

    async def test_maxPeers(self) -> None:
        """
        With maxPeers=3, datagrams from a 4th and 5th peer are dropped and
        counted (logged once) while the first three are served.
        """
        logs = captureLogs(self)
        harness = ServerHarness(self, ["udp:0:interface=127.0.0.1:maxPeers=3"])
        [address] = await harness.start()
        protocol = harness.server._listeners[0].protocol
        self.assertEqual(protocol.maxPeers, 3)
        peers = [udpPeer(self) for _ in range(5)]
        for i, peer in enumerate(peers[:3]):
            peer.sendTo(helloFrame(b"%d" % i), address.port)
            await peer.whenReceived(1)
        for peer in peers[3:] * 2:
            peer.sendTo(helloFrame(b"late"), address.port)
        await waitUntil(lambda: protocol.dropped == 4, "4 dropped datagrams")
        peers[0].sendTo(helloFrame(b"again"), address.port)
        await peers[0].whenReceived(2)
        await realWait(0.1)
        self.assertEqual([len(p.received) for p in peers], [2, 1, 1, 0, 0])
        self.assertEqual((len(harness.sessions), protocol.oversize), (3, 0))
        self.assertEqual(harness.server.datagramDrops(), {"oversize": 0, "peers": 4, "backlog": 0})
        self.assertEqual(len([t for t in logs if "new peers are dropped" in t]), 1)


class _Factory:
    """
    Builds a session per connection, as a L{Client}'s slot does.
    """

    def __init__(self, make: Callable[[], Session]) -> None:
        """
        @param make: makes a session.
        """
        self.make = make

    def buildProtocol(self, addr: Any) -> Session:
        """
        @param addr: the server's address.
        @return: a new session.
        """
        return self.make()


class ConnectedClientTests(TestCase):
    """
    The connected-UDP client (C{udp:HOST:PORT} addresses of L{Client}).
    """

    def test_refusalReported(self) -> None:
        """
        When Twisted reports the ICMP refusal (C{connectionRefused} of the
        connected port's protocol), the client session gets onError with a
        L{ConnectionRefusedError} naming the address and ICMP, then onClose,
        and its port is closed (fake reactor).
        """
        fakeReactor = FakeUDPReactor()
        listener = EchoRecorder(echo=False)
        owner = _Configure(listener, HelloCodec())
        wheel = TimerWheel(fakeReactor, 0.1)
        factory = _Factory(lambda: Session(clock=fakeReactor, wheel=wheel, owner=owner))
        endpoint = UDPClientEndpoint(fakeReactor, "127.0.0.1", 7)
        session = self.successResultOf(endpoint.connect(factory))
        [port] = fakeReactor.udpPorts
        self.assertEqual(port.connectedTo, ("127.0.0.1", 7))
        session.writePkg(b"anyone?")
        self.assertEqual(port.written, [(helloFrame(b"anyone?"), None)])
        port.protocol.connectionRefused()
        fakeReactor.advanceBy(0.1)
        self.assertEqual(listener.names(), ["open", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(ConnectionRefusedError))
        self.assertIn("127.0.0.1:7 refused (ICMP port unreachable)", failure.getErrorMessage())
        self.assertFalse(port.listening)

    async def test_refusedByICMP(self) -> None:
        """
        A client session to a port where nothing listens gets onError with a
        L{ConnectionRefusedError} that mentions ICMP (loopback answers
        "port unreachable"), then onClose.
        """
        port = freePort(socket.SOCK_DGRAM)
        client, listener = startTxClient(self, f"udp:127.0.0.1:{port}", reconnect=ONCE)
        session = await bounded(client.whenConnected(), "the UDP session")
        session.writePkg(b"anyone?")
        await whenEvent(listener, "close")
        self.assertEqual(listener.names(), ["open", "error", "close"])
        [failure] = listener.errors
        self.assertTrue(failure.check(ConnectionRefusedError))
        self.assertIn("ICMP", failure.getErrorMessage())
        self.assertIn(f"127.0.0.1:{port}", failure.getErrorMessage())
        self.assertRaises(SessionClosedError, session.writePkg, b"again")


    async def test_echo(self) -> None:
        """
        A client session echoes through a UDP server; its session is named
        udp-session and its remote address is the server's.
        """
        harness = ServerHarness(self, [UDP])
        [address] = await harness.start()
        client, listener = startTxClient(self, f"udp:127.0.0.1:{address.port}")
        session = await bounded(client.whenConnected(), "the UDP session")
        session.writePkg(b"ping")
        await whenEvent(listener, "message")
        self.assertEqual(listener.messages, [b"ping"])
        self.assertEqual(session.name, "udp-session")
        self.assertEqual(session.remoteAddress, IPv4Address("UDP", "127.0.0.1", address.port))
