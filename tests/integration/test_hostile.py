"""
Hostile peers against a real server on 127.0.0.1:0, each while a
well-behaved client keeps being answered: connections that never send, a
trickled packet header, a trickled WebSocket HTTP request, connections
beyond the listener's cap, a peer that stops reading, and peers flooding
tiny packets.  The limits are configured short so that every test ends in
a few seconds.
"""

from __future__ import annotations

from typing import Any
import socket
import threading
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from txgetty.client import Client
from txgetty.codec import HelloCodec, RawCodec
from txgetty.config import SessionConfig
from txgetty.errors import FirstPacketTimeoutError, PacketTimeoutError, WriteTimeoutError
from txgetty.handlers import EchoListener
from txgetty.server import Server, ports as L

from ..support.net import FramedClient, ServerHarness, WAIT, bounded, connectClient, echoCheck, fireSoon
from ..support.net import helloFrame as hello
from ..support.transports import captureLogs, inThread, realWait, waitUntil


class Peer(Protocol):
    """
    A raw peer: sends what the test says, records what comes back and how
    the connection ended.

    @ivar received: the bytes received.
    @ivar lostReason: why the connection ended, once it did.
    @ivar lostAt: when (reactor seconds).
    """

    def __init__(self, first: bytes = b"") -> None:
        """
        @param first: bytes to send on connecting.
        """
        self.first = first
        self.received = bytearray()
        self.lostReason: Failure | None = None
        self.lostAt: float | None = None
        self._lost: Deferred = Deferred()

    def connectionMade(self) -> None:
        """
        Send the first bytes, if any.
        """
        if self.first:
            self.transport.write(self.first)

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: recorded.
        """
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        @param reason: recorded.
        """
        self.lostReason = reason
        self.lostAt = reactor.seconds()
        fireSoon(self._lost, self)

    def whenLost(self, seconds: float = WAIT) -> Deferred:
        """
        @return: a bounded L{Deferred} firing once the server dropped it.
        """
        return bounded(self._lost, "the server to drop a hostile peer", seconds)

    def close(self) -> None:
        """
        Drop the connection if it is still there (clean-up).
        """
        if self.lostReason is None and self.transport is not None:
            self.transport.abortConnection()


async def connectPeer(testCase: TestCase, address: Any, peer: Peer) -> Peer:
    """
    @return: the peer, connected; the test drops it at the end.
    """
    endpoint = TCP4ClientEndpoint(reactor, address.host, address.port, timeout=WAIT)
    await bounded(connectProtocol(endpoint, peer), "a hostile peer to connect")
    testCase.addCleanup(peer.close)
    return peer


async def trickle(peer: Peer, data: bytes, interval: float) -> None:
    """
    Send bytes one at a time until they are all sent or the peer is gone.

    @param peer: a connected peer.
    @param data: the bytes.
    @param interval: seconds between two bytes.
    """
    for i in range(len(data)):
        if peer.lostReason is not None:
            return
        peer.transport.write(data[i:i + 1])
        await realWait(interval)


async def keepEchoing(testCase: TestCase, client: FramedClient, until: Deferred, what: bytes) -> int:
    """
    Echo one packet after the other until C{until} fired.

    @return: how many echoes came back (each checked).
    """
    count = 0
    while not until.called:
        await echoCheck(testCase, client, [what + b"%d" % count])
        count += 1
        await realWait(0.02)
    return count


class SilentAndSlowTests(TestCase):
    """
    Connections that send nothing, or trickle their first packet or their
    header, are closed by firstPacketTimeout and packetTimeout.
    """

    async def test_neverSending(self) -> None:
        """
        30 connections that never send a byte are closed about
        firstPacketTimeout (0.6 s) after they connected, with a
        FirstPacketTimeoutError; a client that sends is answered meanwhile
        and stays.
        """
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"],
                                config=SessionConfig(firstPacketTimeout=0.6, waitTime=0.1))
        (address,) = await harness.start()
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"first"])
        start = reactor.seconds()
        silent = [await connectPeer(self, address, Peer()) for _ in range(30)]
        allLost = gatherResults([p.whenLost() for p in silent])
        echoes = await keepEchoing(self, good, allLost, b"good")
        await allLost
        self.assertGreater(echoes, 0)
        for peer in silent:
            self.assertIsInstance(peer.lostReason.value, ConnectionDone)
            self.assertTrue(0.5 <= peer.lostAt - start < 5, peer.lostAt - start)
        errors = [listener.errors[0] for listener in harness.listeners[1:]]
        self.assertEqual([e.check(FirstPacketTimeoutError) for e in errors], [FirstPacketTimeoutError] * 30)
        await echoCheck(self, good, [b"still here"])

    async def test_tricklingHeaderAndFirstPacket(self) -> None:
        """
        A peer that trickles a hello header (a byte every 0.3 s) is closed
        by packetTimeout (0.8 s); one that stays silent for 0.9 s and then
        trickles its first packet (in 0.45 s, within packetTimeout, but
        complete only 1.35 s after connecting) is closed by
        firstPacketTimeout (1 s); the good client is answered throughout.
        """
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"],
                                config=SessionConfig(packetTimeout=0.8, firstPacketTimeout=1.0, waitTime=0.1))
        (address,) = await harness.start()
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"first"])
        header = await connectPeer(self, address, Peer())
        slow = await connectPeer(self, address, Peer())

        async def slowly() -> None:
            await realWait(0.9)
            await trickle(slow, hello(b""), 0.15)

        both = gatherResults([ensureDeferred(trickle(header, b"\x10\x00\x00", 0.3)), ensureDeferred(slowly())])
        done = gatherResults([header.whenLost(), slow.whenLost()])
        await keepEchoing(self, good, done, b"good")
        await both
        reasons = {i: harness.listeners[i].errors[0] for i in (1, 2)}
        self.assertTrue(reasons[1].check(PacketTimeoutError), reasons[1])
        self.assertTrue(reasons[2].check(FirstPacketTimeoutError), reasons[2])
        self.assertEqual(harness.listeners[2].messages, [])
        await echoCheck(self, good, [b"still here"])


class CapTests(TestCase):
    """
    Beyond maxSessions, a listener closes new connections cleanly, counts
    them, and logs them once per interval.
    """

    async def test_refusedCleanlyAndLogged(self) -> None:
        """
        With maxSessions 3 held by idle connections, further ones (sending
        or not) read a clean end of stream at once; the first refusal is
        logged at once, the others in one line per interval; once a place
        is free a client is served.
        """
        self.patch(L, "REFUSAL_LOG_INTERVAL", 0.5)
        logs = captureLogs(self)
        harness = ServerHarness(self, ["tcp:0:interface=127.0.0.1"], maxSessions=3,
                                config=SessionConfig(firstPacketTimeout=0))
        (address,) = await harness.start()
        holders = [await connectPeer(self, address, Peer()) for _ in range(2)]
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"hello"])
        refused = [await connectPeer(self, address, Peer(hello(b"let me in") if i % 2 else b"")) for i in range(6)]
        await gatherResults([p.whenLost(2) for p in refused])
        for peer in refused:
            self.assertIsInstance(peer.lostReason.value, ConnectionDone)
            self.assertEqual(peer.received, b"")
        self.assertEqual((harness.server.refusedFull, harness.server.accepted), (6, 3))
        lines = [line for line in logs if "refused" in line]
        self.assertEqual(len(lines), 1)
        self.assertIn("holds maxSessions (3) connections: refused one from tcp:127.0.0.1:", lines[0])
        await waitUntil(lambda: len([line for line in logs if "refused" in line]) == 2, "the summary line", 3)
        self.assertIn("refused 5 more connections in the last 0.5 s, 6 in all", [
            line for line in logs if "refused" in line][1])
        await echoCheck(self, good, [b"still served"])
        holders[0].transport.loseConnection()
        await holders[0].whenLost()
        await waitUntil(lambda: len(harness.server.sessions()) == 2, "the place to be free")
        late = await connectClient(self, address)
        await echoCheck(self, late, [b"in at last"])
        self.assertEqual(harness.server.refusedFull, 6)


class WebSocketStageTests(TestCase):
    """
    On a ws:// listener, openTimeout bounds each connection's whole HTTP
    stage, however slowly its request trickles in.
    """

    async def test_tricklingRequests(self) -> None:
        """
        20 connections sending an upgrade request at 10 bytes/s are all
        dropped about openTimeout (0.8 s) after they connected (logged once);
        a WebSocket client is answered meanwhile.
        """
        logs = captureLogs(self)
        server = Server(["ws://127.0.0.1:0/"], lambda s: (setattr(s, "codec", RawCodec()),
                                                           setattr(s, "listener", EchoListener())),
                        reactor=reactor, config=SessionConfig(openTimeout=0.8, waitTime=0.1))
        server.startService()
        self.addCleanup(server.stopService)
        (address,) = await bounded(server.whenListening(), "the WebSocket server")
        answers: list[bytes] = []

        class Collect(EchoListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                answers.append(pkg)

        client = Client(f"ws://127.0.0.1:{address.port}/", lambda s: (setattr(s, "codec", RawCodec()),
                                                                      setattr(s, "listener", Collect())),
                        reactor=reactor)
        client.startService()
        self.addCleanup(client.stopService)
        session = await bounded(client.whenConnected(), "the WebSocket client")
        request = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        start = reactor.seconds()
        peers = [await connectPeer(self, address, Peer()) for _ in range(20)]
        trickles = gatherResults([ensureDeferred(trickle(peer, request, 0.1)) for peer in peers])
        lost = gatherResults([p.whenLost(5) for p in peers])
        sent = 0
        while not lost.called:
            session.writePkg(b"ping %d" % sent)
            sent += 1
            await waitUntil(lambda: len(answers) == sent, "the WebSocket echo", 5)
            await realWait(0.05)
        await lost
        await trickles
        for peer in peers:
            self.assertTrue(0.7 <= peer.lostAt - start < 4, peer.lostAt - start)
            self.assertNotIn(b"101", bytes(peer.received))
        self.assertGreater(sent, 3)
        self.assertEqual(len([line for line in logs if "did not finish its WebSocket upgrade" in line]), 1)


class BigReplies(EchoListener):
    """
    Answers every packet with 64 KiB.
    """

    def onMessage(self, session: Any, pkg: Any) -> None:
        """
        @param session: the session.
        @param pkg: the packet.
        """
        session.writePkg(pkg + b"." * 65536)


class NonReadingTests(TestCase):
    """
    A peer that sends requests and never reads the replies is paused, then
    closed by writeTimeout.
    """

    async def test_nonReadingPeerClosed(self) -> None:
        """
        The non-reader's session is closed with a WriteTimeoutError about
        writeTimeout (0.8 s) after it stopped taking bytes; a reading client
        gets its big replies meanwhile.
        """
        listeners: list[Any] = []

        class Recording(BigReplies):
            def onError(self, session: Any, failure: Failure) -> None:
                listeners.append(failure)

        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: (setattr(s, "codec", HelloCodec()),
                                                                   setattr(s, "listener", Recording())),
                        reactor=reactor, config=SessionConfig(writeTimeout=0.8, waitTime=0.2))
        server.startService()
        self.addCleanup(server.stopService)
        (address,) = await bounded(server.whenListening(), "the server")
        good = await connectClient(self, address)
        peer = Peer()
        await connectPeer(self, address, peer)
        peer.transport.pauseProducing()
        peer.transport.write(b"".join(hello(b"req") for _ in range(100)))
        count = 0
        while not listeners:
            good.sendPackets([b"r%d" % count])
            await bounded(good.whenReceived(count + 1), "a big reply")
            count += 1
            await realWait(0.05)
            self.assertLess(count, 200, "the non-reader was not closed")
        await waitUntil(lambda: len(server.sessions()) == 1, "the non-reader's session to end")
        self.assertGreater(count, 3)
        self.assertEqual([f.check(WriteTimeoutError) for f in listeners], [WriteTimeoutError])
        self.assertIn("it does not read", listeners[0].getErrorMessage())
        good.sendPackets([b"last"])
        await bounded(good.whenReceived(count + 1), "a big reply")
        peer.transport.resumeProducing()
        await peer.whenLost()


class Ticker:
    """
    Counts reactor iterations: a call that schedules itself again with
    C{callLater(0)} runs once per iteration.

    @ivar count: iterations so far.
    """

    def __init__(self) -> None:
        self.count = 0
        self._call = reactor.callLater(0, self._tick)

    def _tick(self) -> None:
        self.count += 1
        self._call = reactor.callLater(0, self._tick)

    def stop(self) -> None:
        """
        Stop counting.
        """
        if self._call.active():
            self._call.cancel()


def flood(port: int, chunks: int, chunk: bytes) -> int:
    """
    Send C{chunks} copies of C{chunk} from a blocking socket, reading the
    echoes in another thread, until every byte came back.

    @return: the bytes that came back.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    total = chunks * len(chunk)
    got = [0]

    def read() -> None:
        while got[0] < total:
            data = sock.recv(1 << 16)
            if not data:
                return
            got[0] += len(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(chunks):
            sock.sendall(chunk)
        reader.join(WAIT)
    finally:
        sock.close()
    return got[0]


class FloodTests(TestCase):
    """
    Peers streaming tiny packets are delivered maxPacketsPerTurn at a time,
    so the reactor serves everyone in between.
    """

    async def flood(self, turn: int, flooders: int, chunks: int) -> tuple[list[int], dict[Any, int], list[float]]:
        """
        Flood an echo server whose sessions have C{maxPacketsPerTurn=turn}
        while a good client echoes.

        @return: the bytes each flooder got back, the most packets each
            session got in one reactor iteration, and the good client's
            round trips.
        """
        ticker = Ticker()
        self.addCleanup(ticker.stop)
        perTick: dict[tuple[Any, int], int] = {}

        class Counting(EchoListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                key = (session, ticker.count)
                perTick[key] = perTick.get(key, 0) + 1
                session.writePkg(pkg)

        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: (setattr(s, "codec", HelloCodec()),
                                                                   setattr(s, "listener", Counting())),
                        reactor=reactor, config=SessionConfig(maxPacketsPerTurn=turn))
        server.startService()
        self.addCleanup(server.stopService)
        (address,) = await bounded(server.whenListening(), "the server")
        good = await connectClient(self, address)
        await echoCheck(self, good, [b"first"])
        chunk = hello(b"z") * (65536 // 5)
        floods = gatherResults([inThread(flood, address.port, chunks, chunk, what="a flooder")
                                for _ in range(flooders)])
        rtts = []
        while not floods.called:
            t0 = time.perf_counter()
            await echoCheck(self, good, [b"good"])
            rtts.append(time.perf_counter() - t0)
            await realWait(0.01)
        got = await floods
        most: dict[Any, int] = {}
        for (session, _), n in perTick.items():
            most[session] = max(most.get(session, 0), n)
        self.assertEqual(got, [chunks * len(chunk)] * flooders)
        return got, most, rtts

    async def test_floodBoundedPerTurn(self) -> None:
        """
        Four flooders sending 64 KiB reads of 5-byte packets (13,107 a read)
        get at most two turns' worth (2 x 64) of packets per reactor
        iteration, every byte echoed; the good client is answered throughout
        (each round trip well under a second, however busy the machine).
        """
        got, most, rtts = await self.flood(64, 4, 4)
        flooders = [n for n in most.values() if n > 1]
        self.assertEqual(len(flooders), 4)
        self.assertLessEqual(max(flooders), 128)
        self.assertGreater(len(rtts), 0)
        self.assertLess(max(rtts), 2.0)

    async def test_unboundedForContrast(self) -> None:
        """
        Without the bound (maxPacketsPerTurn 0) one iteration delivers a
        read's thousands of packets: what the bound prevents.
        """
        got, most, rtts = await self.flood(0, 1, 4)
        self.assertGreater(max(most.values()), 1000)


class LegitimateIdleTests(TestCase):
    """
    The server's limits leave legitimate idle peers alone: a WebSocket
    client that answers pings, and an RPC client with heartbeats, stay
    connected well past firstPacketTimeout and readIdleTimeout.
    """

    async def test_webSocketAnsweringPings(self) -> None:
        """
        A WebSocket session that sends nothing but answers the server's
        pings (one per cronPeriod, 0.2 s) outlives readIdleTimeout (0.6 s):
        its pongs are input.
        """
        server = Server(["ws://127.0.0.1:0/"], lambda s: (setattr(s, "codec", RawCodec()),
                                                           setattr(s, "listener", EchoListener())),
                        reactor=reactor, config=SessionConfig(readIdleTimeout=0.6, cronPeriod=0.2))
        server.startService()
        self.addCleanup(server.stopService)
        (address,) = await bounded(server.whenListening(), "the WebSocket server")
        client = Client(f"ws://127.0.0.1:{address.port}/", lambda s: (setattr(s, "codec", RawCodec()),
                                                                      setattr(s, "listener", EchoListener())),
                        reactor=reactor)
        client.startService()
        self.addCleanup(client.stopService)
        await bounded(client.whenConnected(), "the WebSocket client")
        (serverSession,) = server.sessions()
        await realWait(1.5)
        self.assertEqual((serverSession.state, serverSession.packetsRead, client.lost), ("OPEN", 0, 0))

    async def test_rpcWithHeartbeats(self) -> None:
        """
        An idle RPC client whose heartbeats (every 0.25 s) are its only
        frames keeps its connection past the server's firstPacketTimeout
        (0.7 s) and idle timeout (0.8 s); the next call works on it.
        """
        from txgetty.rpc import RpcServer

        from ..support.rpc import Calc, startClient, startServer

        rpc = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor, idleTimeout=0.8,
                        config=SessionConfig(firstPacketTimeout=0.7))
        rpc.register(Calc())
        address = await startServer(self, rpc)
        client = startClient(self, address, heartbeat=0.25)
        await bounded(client.whenConnected(), "the RPC client")
        (session,) = rpc.server.sessions()
        await realWait(1.5)
        self.assertEqual(session.state, "OPEN")
        self.assertEqual(await bounded(client.call("Calc.add", 2, 3), "a call"), 5)
        self.assertEqual(rpc.server.sessions(), [session])
