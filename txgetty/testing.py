"""
Helpers to unit-test listeners and codecs without sockets or a reactor.

Two connected sessions in memory::

    from txgetty.testing import RecordingListener, connectedSessions
    from txgetty import EchoListener, HelloCodec

    pair = connectedSessions(EchoListener(), RecordingListener(), HelloCodec())
    pair.client.writePkg(b"hi")
    pair.pump()
    assert pair.clientListener.messages == [b"hi"]
    pair.clock.advance(60)          # fires onCron through the shared wheel

One session whose output lands in a L{StringTransport}::

    session, transport = sessionOnStringTransport(MyListener(), HelloCodec())
    session.dataReceived(b"\\x02\\x00\\x00\\x00hi")
    assert transport.value() == ...
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from .config import SessionConfig
from .errors import SessionRefusedError
from .interfaces import ICodec, IEventListener
from .handlers import EventListener
from .session import Session, SessionOwner
from .wheel import TimerWheel


class RecordingListener(EventListener):
    """
    A listener that remembers every event, for assertions.

    @ivar events: C{(name, session, *details)} tuples in the order they came:
        C{("open", s)}, C{("message", s, pkg)}, C{("error", s, failure)},
        C{("cron", s)}, C{("close", s)}.
    """

    def __init__(self) -> None:
        """
        Start with no events.
        """
        self.events: list[tuple] = []

    @property
    def messages(self) -> list[Any]:
        """
        The packets received, in order.
        """
        return [e[2] for e in self.events if e[0] == "message"]

    @property
    def errors(self) -> list[Failure]:
        """
        The failures given to C{onError}, in order.
        """
        return [e[2] for e in self.events if e[0] == "error"]

    def names(self) -> list[str]:
        """
        @return: the event names only, e.g. C{["open", "message", "close"]}.
        """
        return [e[0] for e in self.events]

    def onOpen(self, session: Any) -> Any:
        """
        @param session: the session.
        """
        self.events.append(("open", session))

    def onClose(self, session: Any) -> None:
        """
        @param session: the session.
        """
        self.events.append(("close", session))

    def onError(self, session: Any, failure: Failure) -> None:
        """
        @param session: the session.
        @param failure: the failure.
        """
        self.events.append(("error", session, failure))

    def onCron(self, session: Any) -> None:
        """
        @param session: the session.
        """
        self.events.append(("cron", session))

    def onMessage(self, session: Any, pkg: Any) -> Any:
        """
        @param session: the session.
        @param pkg: the packet.
        """
        self.events.append(("message", session, pkg))


class _Configure(SessionOwner):
    """
    An owner that sets up every session with a new-session callback, or with
    a fixed listener and codec.
    """

    def __init__(self, listener: IEventListener | None, codec: ICodec | None,
                 newSession: Any = None, role: str = "client") -> None:
        """
        @param listener: the listener, when no callback is given.
        @param codec: the codec, when no callback is given.
        @param newSession: a new-session callback, as given to a server.
        @param role: C{"server"} or C{"client"}: whose defaults the session
            takes for the settings its config leaves to the role
            (L{txgetty.config.ROLE_DEFAULTS}).
        """
        self.sessionRole = role
        self.listener = listener
        self.codec = codec
        self.newSession = newSession

    def configureSession(self, session: Session) -> None:
        """
        @param session: the new session.
        @raise SessionRefusedError: the callback returned C{False}.
        """
        if self.newSession is not None:
            if self.newSession(session) is False:
                raise SessionRefusedError("the new-session callback returned False")
            return
        session.codec = self.codec
        # None is refused by the setter, with a ConfigError naming the methods.
        session.listener = cast(IEventListener, self.listener)


@implementer(ITransport, IPushProducer)
class LoopbackTransport:
    """
    One end of an in-memory connection; bytes move to the other end when
    L{SessionPair.pump} runs.

    @ivar protocol: the protocol on this end.
    @ivar disconnecting: C{loseConnection} or C{abortConnection} was called.
    @ivar aborted: C{abortConnection} was called.
    @ivar paused: this end asked not to receive (C{pauseProducing}).
    @ivar bufferSize: bytes in C{outgoing} above which a registered
        streaming producer is paused, as Twisted's TCP transports do; it is
        resumed once the bytes are pumped out.
    @ivar producer: the registered producer, if any.
    """

    bufferSize = 65536

    def __init__(self, host: Any, peer: Any) -> None:
        """
        @param host: this end's address.
        @param peer: the other end's address.
        """
        self._host = host
        self._peer = peer
        self.protocol: Any = None
        self.outgoing: list[bytes] = []
        self.disconnecting = self.aborted = self.paused = self.lost = False
        self.producer: Any = None
        self.producerPaused = False

    def write(self, data: bytes) -> None:
        """
        @param data: bytes for the other end.
        """
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if not self.disconnecting:
            self.outgoing.append(data)
            if (self.producer is not None and not self.producerPaused
                    and sum(map(len, self.outgoing)) > self.bufferSize):
                self.producerPaused = True
                self.producer.pauseProducing()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        @param producer: a push producer to pause while C{outgoing} is full.
        @param streaming: must be C{True}.
        @raise RuntimeError: a producer is already registered.
        """
        if self.producer is not None:
            raise RuntimeError("a producer is already registered")
        self.producer = producer

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self.producer = None
        self.producerPaused = False

    def drained(self) -> None:
        """
        The outgoing bytes were delivered: resume a paused producer.
        """
        if self.producer is not None and self.producerPaused and not self.outgoing:
            self.producerPaused = False
            self.producer.resumeProducing()

    def writeSequence(self, seq: Any) -> None:
        """
        @param seq: several byte strings for the other end.
        """
        for data in seq:
            self.write(data)

    def loseConnection(self) -> None:
        """
        Close once the pending bytes have gone out.
        """
        self.disconnecting = True

    def abortConnection(self) -> None:
        """
        Close at once, dropping pending bytes.
        """
        self.outgoing.clear()
        self.disconnecting = self.aborted = True

    def getHost(self) -> Any:
        """
        @return: this end's address.
        """
        return self._host

    def getPeer(self) -> Any:
        """
        @return: the other end's address.
        """
        return self._peer

    def pauseProducing(self) -> None:
        """
        Stop receiving until L{resumeProducing}.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        Receive again.
        """
        self.paused = False

    def stopProducing(self) -> None:
        """
        Close the connection.
        """
        self.loseConnection()


class SessionPair:
    """
    Two sessions connected in memory, a fake clock and the wheel they share.

    @ivar server: the server-side session.
    @ivar client: the client-side session.
    @ivar serverListener: the server session's listener.
    @ivar clientListener: the client session's listener.
    @ivar clock: the L{Clock} driving both.
    @ivar wheel: the L{TimerWheel} driving cron and timeouts.
    """

    def __init__(self, server: Session, client: Session, clock: Clock, wheel: TimerWheel) -> None:
        """
        @param server: the server-side session (not yet connected).
        @param client: the client-side session (not yet connected).
        @param clock: the clock.
        @param wheel: the wheel.
        """
        self.server, self.client, self.clock, self.wheel = server, client, clock, wheel
        serverAddress = IPv4Address("TCP", "127.0.0.1", 8090)
        clientAddress = IPv4Address("TCP", "127.0.0.1", 40000 + server.id % 20000)
        self.serverTransport = LoopbackTransport(serverAddress, clientAddress)
        self.clientTransport = LoopbackTransport(clientAddress, serverAddress)
        self.serverTransport.protocol, self.clientTransport.protocol = server, client

    @property
    def serverListener(self) -> Any:
        """
        The server session's listener.
        """
        return self.server.listener

    @property
    def clientListener(self) -> Any:
        """
        The client session's listener.
        """
        return self.client.listener

    def connect(self) -> SessionPair:
        """
        Connect both sessions (their C{onOpen} runs).

        @return: this pair.
        """
        self.server.makeConnection(self.serverTransport)
        self.client.makeConnection(self.clientTransport)
        return self

    def pump(self, chunkSize: int | None = None) -> bool:
        """
        Move bytes both ways, then deliver disconnections, until nothing
        moves.

        @param chunkSize: deliver at most this many bytes per
            C{dataReceived} (to test readers with split packets).
        @return: whether anything moved.
        """
        movedAny = False
        while True:
            moved = self._move(self.clientTransport, self.serverTransport, chunkSize)
            moved = self._move(self.serverTransport, self.clientTransport, chunkSize) or moved
            moved = self._disconnect() or moved
            if not moved:
                return movedAny
            movedAny = True

    def _move(self, source: LoopbackTransport, sink: LoopbackTransport, chunkSize: int | None) -> bool:
        """
        @param source: the sending end.
        @param sink: the receiving end.
        @param chunkSize: the largest piece per delivery.
        @return: whether bytes moved.
        """
        if not source.outgoing or sink.paused or sink.lost:
            return False
        data = b"".join(source.outgoing)
        source.outgoing.clear()
        step = chunkSize or len(data)
        for i in range(0, len(data), step):
            if sink.paused or sink.lost:
                # The receiver paused mid-way: the rest waits, as in TCP.
                source.outgoing.insert(0, data[i:])
                break
            sink.protocol.dataReceived(data[i:i + step])
        source.drained()
        return True

    def _disconnect(self) -> bool:
        """
        Deliver the end of the connection: at once to the end that closed
        (once its output is out), and to the other end when it is not paused
        (a paused TCP end notices the close only when it reads again).

        @return: whether a disconnection was delivered.
        """
        ends = (self.serverTransport, self.clientTransport)
        if not any(t.disconnecting and not t.outgoing for t in ends):
            return False
        aborted = any(t.aborted for t in ends)
        delivered = False
        for t in ends:
            if not t.lost and (t.disconnecting or not t.paused):
                t.lost = delivered = True
                reason = ConnectionLost("connection aborted") if aborted else ConnectionDone()
                t.protocol.connectionLost(Failure(reason))
        return delivered

    def advance(self, seconds: float) -> None:
        """
        Move the clock (firing cron and timeouts), then pump.

        @param seconds: how far.
        """
        self.clock.advance(seconds)
        self.pump()


def connectedSessions(
    serverListener: IEventListener | None = None,
    clientListener: IEventListener | None = None,
    codec: ICodec | None = None,
    *,
    clientCodec: ICodec | None = None,
    serverNewSession: Any = None,
    clientNewSession: Any = None,
    config: SessionConfig | None = None,
    clientConfig: SessionConfig | None = None,
    clock: Clock | None = None,
    tick: float = 0.1,
) -> SessionPair:
    """
    Make two open sessions connected in memory.

    Each side is set up either by a listener and codec, or by the same
    new-session callback a server or client would be given (to test your own
    callback as it is).

    @param serverListener: the server side's listener.
    @param clientListener: the client side's listener.
    @param codec: the server side's codec (and the client's by default).
    @param clientCodec: a different codec for the client side.
    @param serverNewSession: a new-session callback for the server side,
        instead of C{serverListener} and C{codec}.
    @param clientNewSession: a new-session callback for the client side.
    @param config: the server side's settings (the settings it leaves
        unset take a server's defaults, L{txgetty.config.ROLE_DEFAULTS}).
    @param clientConfig: the client side's settings (the server's by
        default; unset ones take a client's defaults).
    @param clock: a clock to use; a new L{Clock} by default.
    @param tick: the wheel's resolution.
    @return: the connected L{SessionPair} (a side that its callback refused
        is in state C{ABORTING}).
    """
    clock = clock or Clock()
    wheel = TimerWheel(clock, tick)
    serverOwner = _Configure(serverListener, codec, serverNewSession, role="server")
    clientOwner = _Configure(clientListener, clientCodec or codec, clientNewSession)
    server = Session(clock=clock, wheel=wheel, config=config, owner=serverOwner)
    client = Session(clock=clock, wheel=wheel, config=clientConfig or config, owner=clientOwner)
    return SessionPair(server, client, clock, wheel).connect()


def sessionOnStringTransport(
    listener: IEventListener,
    codec: ICodec,
    *,
    config: SessionConfig | None = None,
    clock: Clock | None = None,
    tick: float = 0.1,
    role: str = "client",
) -> tuple[Session, StringTransport]:
    """
    Make one open session writing into a L{StringTransport}.

    Feed it with C{session.dataReceived(bytes)}, read what it wrote with
    C{transport.value()}, end it with C{session.connectionLost(failure)}.

    @param listener: the listener.
    @param codec: the codec.
    @param config: the settings.
    @param clock: a clock; a new L{Clock} by default.
    @param tick: the wheel's resolution.
    @param role: C{"client"} (nothing closes an idle session) or
        C{"server"} (a server's defaults: C{readIdleTimeout} 300 s,
        C{firstPacketTimeout} 60 s) for the settings C{config} leaves unset.
    @return: the session and its transport.
    """
    clock = clock or Clock()
    session = Session(
        clock=clock, wheel=TimerWheel(clock, tick), config=config, owner=_Configure(listener, codec, role=role)
    )
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8090),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
    )
    session.makeConnection(transport)
    return session, transport


class ControlledEndpoint:
    """
    A client endpoint whose connection attempts the test completes by hand,
    for testing clients (reconnect, timeouts, stopping) with a fake clock.

    @ivar attempts: the L{Attempt}s made so far, oldest first.
    """

    def __init__(self) -> None:
        """
        Start with no attempts.
        """
        self.attempts: list[Attempt] = []

    def connect(self, factory: Any) -> Any:
        """
        @param factory: the protocol factory of the attempt.
        @return: the attempt's L{Deferred <twisted.internet.defer.Deferred>}.
        """
        attempt = Attempt(factory)
        self.attempts.append(attempt)
        return attempt.deferred

    @property
    def last(self) -> Attempt:
        """
        The most recent attempt.
        """
        return self.attempts[-1]


class Attempt:
    """
    One connection attempt on a L{ControlledEndpoint}.

    @ivar factory: the factory given to C{connect}.
    @ivar deferred: what C{connect} returned.
    @ivar cancelled: whether the client cancelled the attempt.
    @ivar protocol: the protocol built by L{succeed}, if any.
    @ivar transport: its L{LoopbackTransport}.
    """

    def __init__(self, factory: Any) -> None:
        """
        @param factory: the factory given to C{connect}.
        """
        from twisted.internet.defer import Deferred

        self.factory = factory
        self.cancelled = False
        self.protocol: Any = None
        self.transport: LoopbackTransport | None = None
        self.deferred: Any = Deferred(self._cancel)

    def _cancel(self, d: Any) -> None:
        self.cancelled = True

    def succeed(self, host: Any = None, peer: Any = None) -> Any:
        """
        Complete the attempt: build the protocol and connect it.

        @param host: the local address (C{127.0.0.1:50000} by default).
        @param peer: the server's address (C{127.0.0.1:8090} by default); equal
            to C{host} it simulates a TCP self-connect.
        @return: the connected protocol.
        """
        host = host or IPv4Address("TCP", "127.0.0.1", 50000)
        peer = peer or IPv4Address("TCP", "127.0.0.1", 8090)
        self.transport = LoopbackTransport(host, peer)
        self.protocol = self.factory.buildProtocol(peer)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.deferred.callback(self.protocol)
        return self.protocol

    def fail(self, reason: Exception | None = None) -> None:
        """
        Fail the attempt (connection refused by default).

        @param reason: the error.
        """
        from twisted.internet.error import ConnectionRefusedError

        self.deferred.errback(Failure(reason or ConnectionRefusedError()))

    def drop(self, clean: bool = True) -> None:
        """
        End the connection made by L{succeed}, as the server would.

        @param clean: a clean close (C{ConnectionDone}) or a reset.
        """
        assert self.transport is not None and self.protocol is not None
        if not self.transport.lost:
            self.transport.lost = True
            reason = ConnectionDone() if clean else ConnectionLost("connection reset")
            self.protocol.connectionLost(Failure(reason))
