"""
Helpers for integration tests with real sockets (trial, real reactor):
bounded waits, a length-prefixed client protocol, an echoing listener that
records events, and a L{Server} harness.  Used by the integration tests
(C{tests.integration}).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence
import struct

from twisted.internet import reactor
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from txgetty.codec import HelloCodec
from txgetty.server import Server
from txgetty.session import Session
from txgetty.testing import RecordingListener


#: The longest any single wait of these tests may take, in seconds.
WAIT = 15.0


def bounded(d: Deferred, what: str, seconds: float = WAIT) -> Deferred:
    """
    Fail a wait that takes too long, with a message saying what it was.

    @param d: the L{Deferred} to wait for.
    @param what: what is awaited, for the failure message.
    @param seconds: how long to wait at most.
    @return: C{d}, failing with L{AssertionError} after C{seconds}.
    """

    def timedOut(result: Any, timeout: float) -> None:
        raise AssertionError(f"waited {timeout:g} s for {what} in vain")

    return d.addTimeout(seconds, reactor, onTimeoutCancel=timedOut)


def fireSoon(d: Deferred, value: Any) -> None:
    """
    Fire a L{Deferred} from the reactor rather than from the current call
    stack, so that a test resumed by it never runs inside txgetty's code.

    @param d: the L{Deferred}.
    @param value: its result.
    """
    reactor.callLater(0, d.callback, value)


def helloFrame(payload: bytes) -> bytes:
    """
    @param payload: a packet.
    @return: the packet in getty's hello framing (4-byte little-endian
        length, then the payload).
    """
    return struct.pack("<I", len(payload)) + payload


def helloFrames(*payloads: bytes) -> bytes:
    """
    @param payloads: packets.
    @return: their hello frames, concatenated.
    """
    return b"".join(helloFrame(p) for p in payloads)


def samplePayloads(count: int, tag: bytes = b"") -> list[bytes]:
    """
    @param count: how many.
    @param tag: bytes that make these payloads differ from another client's.
    @return: payloads of varied sizes, including an empty one.
    """
    return [b"" if i == 0 else tag + (b"%d:" % i) * (i % 97) for i in range(count)]


@implementer(IHandshakeListener)
class FramedClient(Protocol):
    """
    A client speaking a length-prefixed framing; it records the packets it
    receives and can send raw bytes too.

    @ivar received: the payloads received, in order.
    @ivar rawReceived: every byte received.
    @ivar lostReason: the L{Failure} given to C{connectionLost}, once lost.
    @ivar handshakeDone: whether a TLS handshake completed (TLS only).
    @ivar localAddress: this end's address, once connected.
    """

    def __init__(self, prefix: bytes = b"", lengthFormat: str = "<I") -> None:
        """
        @param prefix: constant bytes before the length of every frame.
        @param lengthFormat: the L{struct} format of the length.
        """
        self.prefix = prefix
        self.header = struct.Struct(lengthFormat)
        self.received: list[bytes] = []
        self.rawReceived = bytearray()
        self.lostReason: Failure | None = None
        self.handshakeDone = False
        self.localAddress: Any = None
        self._buf = bytearray()
        self._receiveWaiters: list[tuple[int, Deferred]] = []
        self._lostWaiters: list[Deferred] = []

    def frame(self, payload: bytes) -> bytes:
        """
        @param payload: a packet.
        @return: the packet framed.
        """
        return self.prefix + self.header.pack(len(payload)) + payload

    def sendPackets(self, payloads: Sequence[bytes]) -> None:
        """
        @param payloads: packets to send, framed, in one write.
        """
        self.transport.write(b"".join(self.frame(p) for p in payloads))

    def connectionMade(self) -> None:
        """
        Remember this end's address (it cannot be asked once closed).
        """
        self.localAddress = self.transport.getHost()

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake finished (from this side's point of view).
        """
        self.handshakeDone = True

    def dataReceived(self, data: bytes) -> None:
        """
        @param data: bytes from the server; complete frames are decoded.
        """
        self.rawReceived += data
        buf = self._buf
        buf += data
        start = len(self.prefix) + self.header.size
        while len(buf) >= start:
            (length,) = self.header.unpack_from(buf, len(self.prefix))
            if len(buf) < start + length:
                break
            self.received.append(bytes(buf[start:start + length]))
            del buf[:start + length]
        for item in list(self._receiveWaiters):
            count, d = item
            if len(self.received) >= count:
                self._receiveWaiters.remove(item)
                fireSoon(d, self.received[:count])

    def connectionLost(self, reason: Failure) -> None:
        """
        @param reason: why the connection ended; pending receive waits fail.
        """
        self.lostReason = reason
        waiters, self._receiveWaiters = self._receiveWaiters, []
        for count, d in waiters:
            reactor.callLater(0, d.errback, AssertionError(
                f"connection lost ({reason.getErrorMessage()}) after {len(self.received)} "
                f"of {count} packets"
            ))
        lost, self._lostWaiters = self._lostWaiters, []
        for d in lost:
            fireSoon(d, self)

    def whenReceived(self, count: int) -> Deferred:
        """
        @param count: how many packets to wait for.
        @return: a L{Deferred} firing with the first C{count} packets, or
            failing if the connection is lost before.
        """
        d: Deferred = Deferred()
        if len(self.received) >= count:
            fireSoon(d, self.received[:count])
        elif self.lostReason is not None:
            why = self.lostReason.getErrorMessage()
            d.errback(AssertionError(f"connection already lost: {why}"))
        else:
            self._receiveWaiters.append((count, d))
        return d

    def whenLost(self) -> Deferred:
        """
        @return: a L{Deferred} firing with this client once the connection
            is gone (see L{lostReason}).
        """
        d: Deferred = Deferred()
        if self.lostReason is not None:
            fireSoon(d, self)
        else:
            self._lostWaiters.append(d)
        return d

    def disconnect(self) -> Deferred:
        """
        Abort the connection if it is still there (test clean-up).

        @return: a L{Deferred} firing once it is gone.
        """
        if self.lostReason is None and self.transport is not None:
            self.transport.abortConnection()
        return bounded(self.whenLost(), "a client to disconnect")


async def connectClient(
    testCase: TestCase,
    address: Any,
    client: FramedClient | None = None,
    tlsOptions: Any = None,
) -> FramedClient:
    """
    Connect a client to a bound address; the test disconnects it at the end.

    @param testCase: the test, for clean-up.
    @param address: an L{IPv4Address} or L{UNIXAddress}.
    @param client: the protocol; a hello-framing L{FramedClient} if C{None}.
    @param tlsOptions: client TLS options to connect with TLS.
    @return: the connected client.
    """
    if isinstance(address, UNIXAddress):
        endpoint: Any = UNIXClientEndpoint(reactor, address.name, timeout=WAIT)
    else:
        endpoint = TCP4ClientEndpoint(reactor, address.host, address.port, timeout=WAIT)
    if tlsOptions is not None:
        endpoint = wrapClientTLS(tlsOptions, endpoint)
    client = client or FramedClient()
    await bounded(connectProtocol(endpoint, client), f"a connection to {address}")
    testCase.addCleanup(client.disconnect)
    return client


async def echoCheck(testCase: TestCase, client: FramedClient, payloads: Sequence[bytes]) -> None:
    """
    Send packets and check that exactly they come back, in order.

    @param testCase: the test, for assertions.
    @param client: a connected client that has no unread echoes.
    @param payloads: the packets.
    """
    already = len(client.received)
    client.sendPackets(payloads)
    got = await bounded(client.whenReceived(already + len(payloads)), "echoes")
    testCase.assertEqual(got[already:], list(payloads))


class _EventLog(list):
    """
    A list of listener events that reports each appended event's name.
    """

    def __init__(self, onAppend: Callable[[str], None]) -> None:
        """
        @param onAppend: called with the name of each appended event.
        """
        super().__init__()
        self._onAppend = onAppend

    def append(self, event: tuple) -> None:
        """
        @param event: a C{(name, session, *details)} tuple.
        """
        super().append(event)
        self._onAppend(event[0])


class EchoRecorder(RecordingListener):
    """
    A L{RecordingListener} that echoes every packet (if asked) and lets a
    test wait for events.
    """

    def __init__(self, echo: bool = True) -> None:
        """
        @param echo: whether C{onMessage} writes the packet back.
        """
        super().__init__()
        self.events = _EventLog(self._recorded)
        self.echo = echo
        self._counts: dict[str, int] = {}
        self._waiters: list[tuple[str, int, Deferred]] = []

    def _recorded(self, name: str) -> None:
        """
        An event was recorded: fire the waits it satisfies.

        @param name: the event's name.
        """
        self._counts[name] = self._counts.get(name, 0) + 1
        for item in list(self._waiters):
            if self._counts.get(item[0], 0) >= item[1]:
                self._waiters.remove(item)
                fireSoon(item[2], list(self.events))

    def whenEvent(self, name: str, count: int = 1) -> Deferred:
        """
        @param name: an event name (C{"open"}, C{"message"}, C{"error"},
            C{"cron"}, C{"close"}).
        @param count: how many such events to wait for.
        @return: a L{Deferred} firing with the events so far once there are
            C{count} of that name.
        """
        d: Deferred = Deferred()
        if self._counts.get(name, 0) >= count:
            fireSoon(d, list(self.events))
        else:
            self._waiters.append((name, count, d))
        return d

    def onMessage(self, session: Any, pkg: Any) -> Any:
        """
        @param session: the session.
        @param pkg: the packet; echoed back if C{echo} is set.
        """
        super().onMessage(session, pkg)
        if self.echo:
            session.writePkg(pkg)

    def count(self, name: str) -> int:
        """
        @param name: an event name (C{"open"}, C{"error"}, C{"close"} ...).
        @return: how many such events were recorded.
        """
        return self._counts.get(name, 0)

    def eventsOf(self, session: Any) -> list[str]:
        """
        @param session: a session.
        @return: the names of that session's events, in order.
        """
        return [e[0] for e in self.events if e[1] is session]

    def whenCount(self, name: str, n: int) -> Deferred:
        """
        @param name: an event name.
        @param n: how many such events to wait for in total.
        @return: a L{Deferred} firing with C{None} (from the reactor, not
            from inside txgetty) once there are C{n}, failing after
            L{WAIT} seconds.
        """
        return bounded(self.whenEvent(name, n).addCallback(lambda _: None),
                       f"{n} {name!r} events (have {self.count(name)})")


class ServerHarness:
    """
    A L{Server} whose new-session callback gives each session an
    L{EchoRecorder} and a codec, and can change or refuse the n-th session.

    @ivar server: the server.
    @ivar sessions: the sessions, in the order they were accepted.
    @ivar listeners: their listeners, in the same order.
    """

    def __init__(
        self,
        testCase: TestCase,
        endpoints: Sequence[str],
        *,
        codec: Callable[[], Any] = HelloCodec,
        perSession: Sequence[Callable[[Session], Any] | None] = (),
        **serverArgs: Any,
    ) -> None:
        """
        @param testCase: the test, for clean-up.
        @param endpoints: the endpoint descriptions.
        @param codec: makes the codec of each session.
        @param perSession: for the n-th accepted session, C{None} or a
            callable run last in the new-session callback; what it returns
            (or raises) is the callback's result.
        @param serverArgs: more L{Server} arguments (C{config}, C{tls} ...).
        """
        self.testCase = testCase
        self.codec = codec
        self.perSession = list(perSession)
        self.sessions: list[Session] = []
        self.listeners: list[EchoRecorder] = []
        self._sessionWaiters: list[tuple[int, Deferred]] = []
        self.server = Server(list(endpoints), self._newSession, reactor=reactor, **serverArgs)

    def _newSession(self, session: Session) -> Any:
        """
        The server's new-session callback.

        @param session: the new session.
        @return: what the per-session callable returns, if any.
        """
        index = len(self.sessions)
        listener = EchoRecorder()
        self.sessions.append(session)
        self.listeners.append(listener)
        for item in list(self._sessionWaiters):
            if item[0] == index:
                self._sessionWaiters.remove(item)
                fireSoon(item[1], listener)
        session.codec = self.codec()
        session.listener = listener
        tweak = self.perSession[index] if index < len(self.perSession) else None
        if tweak is not None:
            return tweak(session)
        return None

    def whenSession(self, index: int) -> Deferred:
        """
        @param index: the position of a session in accepting order.
        @return: a L{Deferred} firing with its listener once it is accepted.
        """
        d: Deferred = Deferred()
        if index < len(self.listeners):
            fireSoon(d, self.listeners[index])
        else:
            self._sessionWaiters.append((index, d))
        return bounded(d, f"session #{index} to be accepted")

    async def start(self) -> list[Any]:
        """
        Start the server; the test stops it at the end.

        @return: the bound addresses.
        """
        self.server.startService()
        self.testCase.addCleanup(self.stop)
        return await bounded(self.server.whenListening(), "the server to listen")

    def stop(self) -> Any:
        """
        Stop the server if it runs.

        @return: a L{Deferred} firing once it stopped, or C{None}.
        """
        if self.server.running:
            return bounded(self.server.stopService(), "the server to stop")
        return None
