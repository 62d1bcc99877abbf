"""
Helpers for the UDP and WebSocket transport tests (C{tests.integration.test_transports},
C{test_udp}, C{test_websocket}): free ports, bounded polling,
txgetty clients, real UDP peers, a fake UDP reactor for fake-clock tests, a
blocking C{websockets} client run in a thread, a raw WebSocket client that
never answers, and log capture.
"""

from __future__ import annotations

from typing import Any, Callable
import base64
import os
import socket
import struct

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from txgetty.client import Client
from txgetty.client.reconnect import ReconnectPolicy
from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.server import Server
from txgetty.session import Session
from txgetty.transports.udp import UDPServerProtocol

from .net import EchoRecorder, WAIT, bounded, fireSoon


#: A fast reconnect policy for tests: 0.05 s doubling up to 0.5 s.
FAST = ReconnectPolicy(initialDelay=0.05, maxDelay=0.5, jitter=0.1)
#: A policy that gives up after the first failed attempt.
ONCE = ReconnectPolicy(initialDelay=0.05, maxDelay=0.5, maxAttempts=1)


def freePort(kind: int = socket.SOCK_STREAM) -> int:
    """
    @param kind: C{socket.SOCK_STREAM} or C{socket.SOCK_DGRAM}.
    @return: a port of 127.0.0.1 that was free a moment ago (bound to port
        0, then closed).
    """
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def realWait(seconds: float) -> Deferred:
    """
    Let real time pass, to observe that something does B{not} happen.

    @param seconds: how long (at most 1.5 s).
    @return: a L{Deferred} firing after that time.
    """
    assert seconds <= 1.5, "keep real-time waits short"
    return deferLater(reactor, seconds, lambda: None)


async def waitUntil(predicate: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    """
    Poll a condition every 10 ms until it holds.

    @param predicate: the condition.
    @param what: what is awaited, for the failure message.
    @param seconds: how long to wait at most.
    @raise AssertionError: it did not hold in time.
    """
    deadline = reactor.seconds() + seconds
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"waited {seconds:g} s for {what} in vain")
        await deferLater(reactor, 0.01, lambda: None)


def whenEvent(listener: EchoRecorder, name: str, count: int = 1) -> Deferred:
    """
    @param listener: a recording listener.
    @param name: an event name (C{"open"}, C{"message"}, C{"close"} ...).
    @param count: how many such events to wait for.
    @return: a bounded L{Deferred} firing once there are C{count}.
    """
    return bounded(listener.whenEvent(name, count), f"{count} {name!r} events")


def eventsOf(listener: EchoRecorder, session: Any) -> list[str]:
    """
    @param listener: a listener shared by several sessions.
    @param session: one of them.
    @return: the names of that session's events, in order.
    """
    return [e[0] for e in listener.events if e[1] is session]


def startTxClient(
    testCase: TestCase,
    address: str,
    *,
    listener: EchoRecorder | None = None,
    reconnect: ReconnectPolicy = FAST,
    **clientArgs: Any,
) -> tuple[Client, EchoRecorder]:
    """
    Start a txgetty client with hello framing whose sessions share one
    (non-echoing) recording listener; the test stops it at its end.

    @param testCase: the test, for clean-up.
    @param address: where to connect (C{tcp:}, C{udp:}, C{ws://} ...).
    @param listener: the listener; a new L{EchoRecorder} if C{None}.
    @param reconnect: the reconnect policy.
    @param clientArgs: more L{Client} arguments (C{config}, C{tls} ...).
    @return: the running client and its listener.
    """
    recorder = listener or EchoRecorder(echo=False)

    def newSession(session: Session) -> None:
        session.codec = HelloCodec()
        session.listener = recorder

    client = Client(address, newSession, reactor=reactor, reconnect=reconnect, **clientArgs)
    client.startService()
    testCase.addCleanup(lambda: bounded(client.stopService(), "the client to stop"))
    return client, recorder


async def onFreePort(start: Callable[[int], Deferred], tries: int = 5) -> int:
    """
    Start something on a port that was just free, trying again with another
    port if some other test took it meanwhile.

    @param start: called with a port; returns a L{Deferred} that fails with
        L{CannotListenError} if the port is taken.
    @param tries: how many ports to try.
    @return: the port used.
    """
    for attempt in range(tries):
        port = freePort()
        try:
            await start(port)
        except CannotListenError:
            if attempt == tries - 1:
                raise
            continue
        return port
    raise AssertionError("unreachable")


class UDPPeer(DatagramProtocol):
    """
    A UDP socket of the test (one peer address) that records the datagrams
    it receives.

    @ivar received: the datagrams, in arrival order.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self._waiters: list[tuple[int, Deferred]] = []

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        """
        @param data: a datagram.
        @param addr: its sender.
        """
        self.received.append(data)
        for item in list(self._waiters):
            if len(self.received) >= item[0]:
                self._waiters.remove(item)
                fireSoon(item[1], list(self.received))

    def whenReceived(self, count: int) -> Deferred:
        """
        @param count: how many datagrams to wait for in total.
        @return: a bounded L{Deferred} firing with the datagrams.
        """
        d: Deferred = Deferred()
        if len(self.received) >= count:
            fireSoon(d, list(self.received))
        else:
            self._waiters.append((count, d))
        return bounded(d, f"{count} datagrams (have {len(self.received)})")

    def sendTo(self, data: bytes, port: int) -> None:
        """
        @param data: a datagram.
        @param port: the port on 127.0.0.1 to send it to.
        """
        self.transport.write(data, ("127.0.0.1", port))


def udpPeer(testCase: TestCase) -> UDPPeer:
    """
    @param testCase: the test, for clean-up.
    @return: a L{UDPPeer} bound to 127.0.0.1 on a free port.
    """
    peer = UDPPeer()
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    testCase.addCleanup(port.stopListening)
    return peer


class FakeUDPPort:
    """
    A listening UDP port in memory: it records what is written.

    @ivar written: C{(data, addr)} of every datagram sent.
    @ivar protocol: the port's protocol.
    @ivar maxPacketSize: the largest datagram the port would read.
    @ivar connectedTo: the peer of a connected port.
    """

    def __init__(self, port: int, protocol: Any, interface: str, maxPacketSize: int) -> None:
        """
        @param port: the port number asked for (0: 40000 is used).
        @param protocol: the L{DatagramProtocol}.
        @param interface: the interface asked for.
        @param maxPacketSize: the largest datagram to read.
        """
        self.port = port or 40000
        self.interface = interface or "0.0.0.0"
        self.protocol = protocol
        self.maxPacketSize = maxPacketSize
        self.written: list[tuple[bytes, Any]] = []
        self.listening = True
        self.connectedTo: tuple[str, int] | None = None

    def write(self, data: bytes, addr: Any = None) -> None:
        """
        @param data: a datagram.
        @param addr: where to.
        """
        self.written.append((data, addr))

    def getHost(self) -> IPv4Address:
        """
        @return: the bound address.
        """
        return IPv4Address("UDP", self.interface, self.port)

    def connect(self, host: str, port: int) -> None:
        """
        @param host: the only peer's address (connected UDP).
        @param port: its port.
        """
        self.connectedTo = (host, port)

    def stopListening(self) -> Deferred:
        """
        @return: a fired L{Deferred}.
        """
        if self.listening:
            self.listening = False
            self.protocol.doStop()
        return succeed(None)


class FakeUDPReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that can also listen on UDP (in memory).

    @ivar udpPorts: the L{FakeUDPPort}s made.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udpPorts: list[FakeUDPPort] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192) -> FakeUDPPort:
        """
        @param port: the port.
        @param protocol: the L{DatagramProtocol}.
        @param interface: the interface.
        @param maxPacketSize: the largest datagram to read.
        @return: the fake port, with the protocol started on it.
        """
        fake = FakeUDPPort(port, protocol, interface, maxPacketSize)
        self.udpPorts.append(fake)
        protocol.makeConnection(fake)
        return fake

    def advanceBy(self, seconds: float, step: float = 0.05) -> None:
        """
        Let fake time pass in small steps (so timers set by timers run).

        @param seconds: how long.
        @param step: the step.
        """
        steps = round(seconds / step)
        for _ in range(steps):
            self.advance(step)
        self.advance(0)


def inThread(function: Callable[..., Any], *args: Any, what: str = "a client thread", **kw: Any) -> Deferred:
    """
    Run a blocking client in a reactor thread.

    @param function: the blocking function.
    @param args: its arguments.
    @param what: what it does, for a timeout message.
    @param kw: its keyword arguments.
    @return: a bounded L{Deferred} with its result (a little longer than
        L{WAIT}, so the thread's own timeouts say what went wrong first).
    """
    return bounded(deferToThread(function, *args, **kw), what, WAIT + 5)


def wsConnect(url: str, **kw: Any) -> Any:
    """
    Open a blocking C{websockets} client connection (call it in a thread).

    @param url: a C{ws://} or C{wss://} URL.
    @param kw: more C{websockets.sync.client.connect} arguments; by default
        no proxy, no compression, no pings and bounded timeouts.
    @return: the connection.
    """
    from websockets.sync.client import connect

    options: dict[str, Any] = {
        "proxy": None, "compression": None, "ping_interval": None, "open_timeout": WAIT, "close_timeout": WAIT,
    }
    options.update(kw)
    return connect(url, **options)


def receiveUntilClosed(ws: Any) -> tuple[list[Any], int | None, str | None]:
    """
    Read messages until the server closes (call it in a thread).

    @param ws: an open C{websockets} connection.
    @return: the messages read, and the close code and reason the server
        sent (C{None} if it sent no close frame).
    """
    from websockets.exceptions import ConnectionClosed

    messages: list[Any] = []
    try:
        while True:
            messages.append(ws.recv(timeout=WAIT))
    except ConnectionClosed as e:
        rcvd = e.rcvd
        return messages, (rcvd.code if rcvd else None), (rcvd.reason if rcvd else None)


class RawWebSocketClient(Protocol):
    """
    A client that does the WebSocket upgrade by hand, then never answers
    anything (no pong, no close reply): a dead peer whose TCP stack is alive.

    @ivar raw: every byte received.
    @ivar lostReason: why the connection ended, once it did.
    """

    def __init__(self, path: str = "/") -> None:
        """
        @param path: the path to upgrade.
        """
        self.path = path
        self.raw = bytearray()
        self.lostReason: Failure | None = None
        self._upgraded: Deferred = Deferred()
        self._lost: Deferred = Deferred()

    def connectionMade(self) -> None:
        """
        Send the upgrade request.
        """
        key = base64.b64encode(os.urandom(16)).decode()
        host = self.transport.getPeer()
        self.transport.write((
            f"GET {self.path} HTTP/1.1\r\nHost: {host.host}:{host.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: bytes from the server, recorded and otherwise ignored.
        """
        self.raw += data
        if not self._upgraded.called and b"\r\n\r\n" in self.raw:
            self._upgraded.callback(bytes(self.raw.split(b"\r\n", 1)[0]))

    def connectionLost(self, reason: Failure) -> None:
        """
        @param reason: why the connection ended.
        """
        self.lostReason = reason
        if not self._upgraded.called:
            self._upgraded.errback(reason)
        fireSoon(self._lost, self)

    def whenUpgraded(self) -> Deferred:
        """
        @return: a bounded L{Deferred} firing with the response's status line.
        """
        return bounded(self._upgraded, "the WebSocket upgrade response")

    def whenLost(self) -> Deferred:
        """
        @return: a bounded L{Deferred} firing with this client once the
            server dropped it (see L{lostReason}).
        """
        return bounded(self._lost, "the server to drop the raw client")

    def frames(self) -> list[tuple[int, bytes]]:
        """
        @return: C{(opcode, payload)} of the (unmasked) frames received after
            the upgrade response.
        """
        data = bytes(self.raw.split(b"\r\n\r\n", 1)[1]) if b"\r\n\r\n" in self.raw else b""
        frames = []
        while len(data) >= 2:
            opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
            if length == 126:
                (length,), start = struct.unpack("!H", data[2:4]), 4
            elif length == 127:
                (length,), start = struct.unpack("!Q", data[2:10]), 10
            if len(data) < start + length:
                break
            frames.append((opcode, data[start:start + length]))
            data = data[start + length:]
        return frames


def captureLogs(testCase: TestCase) -> list[str]:
    """
    Record the text of every log event until the test ends.

    @param testCase: the test, for clean-up.
    @return: the list the texts are appended to.
    """
    texts: list[str] = []

    def observer(event: dict) -> None:
        texts.append(formatEvent(event) or "")

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return texts


PEER = ("10.0.0.1", 5000)


class FakeUDPServer:
    """
    A L{Server} with one UDP listener on a L{FakeUDPReactor}; every session
    gets its own L{EchoRecorder}.

    @ivar reactor: the fake reactor (its clock drives the timer wheel).
    @ivar server: the started server.
    @ivar protocol: the listener's L{UDPServerProtocol}.
    @ivar port: the fake UDP port (what the sessions sent).
    @ivar sessions: the sessions, in the order they were made.
    @ivar listeners: their listeners.
    """

    def __init__(self, testCase: TestCase, description: str = "udp:9999", **config: Any) -> None:
        """
        @param testCase: the test, for clean-up.
        @param description: the UDP listener.
        @param config: L{SessionConfig} settings.
        """
        self.reactor = FakeUDPReactor()
        self.sessions: list[Session] = []
        self.listeners: list[EchoRecorder] = []
        self.server = Server([description], self._newSession, reactor=self.reactor,
                             config=SessionConfig(**config))
        self.server.startService()
        testCase.addCleanup(self._stop)
        self.protocol: UDPServerProtocol = self.server._listeners[0].protocol
        [self.port] = self.reactor.udpPorts

    def _newSession(self, session: Session) -> None:
        """
        @param session: a new peer session: hello codec, echoing recorder.
        """
        session.codec = HelloCodec()
        session.listener = EchoRecorder()
        self.sessions.append(session)
        self.listeners.append(session.listener)

    def _stop(self) -> None:
        """
        Stop the server and let the fake clock run the ends.
        """
        if self.server.running:
            self.server.stopService()
            self.reactor.advanceBy(0.2)

    def receive(self, data: bytes, peer: tuple = PEER) -> None:
        """
        @param data: a datagram arriving from C{peer}.
        @param peer: its sender.
        """
        self.protocol.datagramReceived(data, peer)
