"""
The server: listens on one or more endpoints and gives every accepted
connection to a new-session callback, which sets the session's codec,
listener and limits (or refuses it).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, FirstError, gatherResults, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from ..config import DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_SESSIONS, DEFAULT_WHEEL_TICK, SessionConfig
from ..transports.udp import DROP_KINDS
from .ports import UDPListener, parseListeners
from .stats import ListenerStats
from ..errors import SessionRefusedError
from ..interfaces import IServer, ISessionFactory, ITimerWheel
from ..session import Session, SessionOwner
from ..transports.tls import TLSServerSettings
from ..wheel import TimerWheel

_log = Logger()

NewSessionCallback = Callable[[Session], Any]


@implementer(IServer, ISessionFactory, IService)
class Server(Service, SessionOwner):
    """
    Accepts sessions on several endpoints (an L{IService <twisted.application.service.IService>}).

    @ivar reactor: the reactor its sessions and listeners use.
    @ivar config: the settings every session starts with.
    @ivar addresses: the bound addresses, once listening.
    @ivar accepted: connections accepted so far.
    @ivar refused: connections the new-session callback refused.
    @ivar opened: sessions whose C{onOpen} succeeded.
    @ivar closed: sessions that ended (opened or not).
    @ivar maxSessions: the session cap of each listener that names none.
    @ivar backlog: the listen backlog of each listener that names none.
    """

    sessionRole = "server"

    def __init__(
        self,
        endpoints: Sequence[str | IStreamServerEndpoint],
        newSession: NewSessionCallback,
        *,
        reactor: Any = None,
        config: SessionConfig | None = None,
        tls: TLSServerSettings | None = None,
        wheel: ITimerWheel | None = None,
        wheelTick: float = DEFAULT_WHEEL_TICK,
        taskPool: Any = None,
        raiseSynchronously: bool = False,
        name: str = "txgetty",
        maxSessions: int = DEFAULT_MAX_SESSIONS,
        backlog: int = DEFAULT_LISTEN_BACKLOG,
    ) -> None:
        """
        @param endpoints: listener descriptions (see L{txgetty.server.ports}:
            Twisted endpoint strings, C{tls:}, C{udp:}, C{ws://}, C{wss://}) or
            L{IStreamServerEndpoint <twisted.internet.interfaces.IStreamServerEndpoint>} providers.
        @param newSession: called with each new session before it opens; it
            sets C{session.codec} and C{session.listener} and may change the
            limits; raising (or returning C{False}) refuses the connection.
        @param reactor: the reactor; the global one if C{None}.
        @param config: the initial session settings.
        @param tls: key/certificate files for C{tls:} endpoints.
        @param wheel: a shared timer wheel; one is made if C{None}.
        @param wheelTick: resolution of the wheel made here, in seconds.
        @param taskPool: a L{TaskPool <txgetty.taskpool.TaskPool>} to run
            every session's C{onMessage} and C{onCron} in, or C{None} (the
            reactor thread); the callback may change it per session.  Start
            the pool before the server (a parent service does).
        @param raiseSynchronously: make L{startService} raise when an
            endpoint fails to listen at once (as twistd wants).
        @param name: how the server names itself in logs (e.g.
            C{"txgetty rpc"}).
        @param maxSessions: the most connections each listener holds (from
            accept to their end; on a WebSocket listener, HTTP connections
            too) unless its description names its own (C{:maxSessions=N},
            C{?maxSessions=N}); beyond, a new connection is closed at once,
            counted in L{refusedFull} and logged once per 10 s; 0: no cap.
            UDP listeners take it as their C{maxPeers} (0: 10000).
        @param backlog: the listen backlog of each listener that names none
            (C{:backlog=N}, C{?backlog=N}); the kernel clamps it to its
            maximum (C{net.core.somaxconn}).
        @raise txgetty.errors.ConfigError: an endpoint, TLS file or limit is
            wrong.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        if not callable(newSession):
            raise TypeError(f"newSession must be callable, got {newSession!r}")
        self.reactor = reactor
        self._newSession = newSession
        self.config = config or SessionConfig()
        self._wheel = wheel or TimerWheel(reactor, wheelTick)
        self.taskPool = taskPool
        self.maxSessions = maxSessions
        self.backlog = backlog
        self._listeners = parseListeners(reactor, list(endpoints), tls, maxSessions, backlog)
        if not self._listeners:
            raise ValueError("a Server needs at least one endpoint to listen on")
        self._raiseSynchronously = raiseSynchronously
        self.name = name  # type: ignore[assignment]  # Service.name: None in Twisted's untyped class body
        self._ports: list[IListeningPort] = []
        # Each session, with the cap of the listener that counts it (None
        # where the listener counts its connections itself) and the
        # counters of its listener, which metrics read (UDP sessions share
        # one: they are made without a cap).
        self._sessions: dict[Session, tuple[Any, ListenerStats]] = {}
        self._outcome: Any = None
        self._waiters: list[Deferred] = []
        self.addresses: list[Any] = []
        self.accepted = self.refused = self.opened = self.closed = 0
        self._starting = False
        # What metrics read: the counters of each listener.
        self._listenerStats = {listener.description: ListenerStats(listener.description)
                               for listener in self._listeners}
        udp = [listener.description for listener in self._listeners if isinstance(listener, UDPListener)]
        self._udpStats = self._listenerStats[udp[0]] if len(udp) == 1 else ListenerStats(", ".join(udp) or "udp")

    def __repr__(self) -> str:
        return f"<txgetty Server on {', '.join(listener.description for listener in self._listeners)}>"

    # -- IService -------------------------------------------------------------

    def startService(self) -> None:
        """
        Listen on every endpoint.

        @raise Exception: an endpoint failed at once and C{raiseSynchronously}
            is set.
        """
        Service.startService(self)
        self._outcome = None
        self._starting = True
        results = [self._listen(listener) for listener in self._listeners]
        gatherResults(results, consumeErrors=True).addBoth(self._listened)
        self._starting = False
        if self._raiseSynchronously and isinstance(self._outcome, Failure):
            self._outcome.raiseException()

    def _listened(self, result: Any) -> None:
        """
        Every endpoint listens, or one failed: tell whoever waits.

        @param result: the addresses, or a L{Failure <twisted.python.failure.Failure>} (of L{FirstError <twisted.internet.defer.FirstError>}).
        """
        if isinstance(result, Failure) and result.check(FirstError):
            result = result.value.subFailure
        self._outcome = result
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            self._relay(d)

    def _relay(self, d: Deferred) -> None:
        """
        @param d: a L{Deferred <twisted.internet.defer.Deferred>} to fire with the listening outcome.
        """
        if isinstance(self._outcome, Failure):
            d.errback(self._outcome)
        else:
            d.callback(list(self._outcome))

    def _listen(self, listener: Any) -> Deferred:
        """
        @param listener: one of L{txgetty.server.ports}'s listeners.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the bound address.
        """
        description = listener.description
        d = listener.listen(self)

        def listening(port: IListeningPort) -> Any:
            self._ports.append(port)
            address = port.getHost()
            self.addresses.append(address)
            _log.info(
                "{server}: listening on {address} (from {endpoint})",
                server=self.name, address=listener.label(address), endpoint=description,
            )
            return address

        def failed(failure: Failure) -> Failure:
            if self._raiseSynchronously and self._starting:
                return failure  # raised to the caller of startService, who reports it
            _log.error(
                "{server}: cannot listen on {endpoint}: {reason}",
                server=self.name, endpoint=description, reason=failure.getErrorMessage(),
                error=type(failure.value).__name__,
            )
            return failure

        return d.addCallbacks(listening, failed)

    def whenListening(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the bound addresses once every
            endpoint listens, or failing with the first listen error.
        """
        d: Deferred = Deferred()
        if self._outcome is None:
            self._waiters.append(d)
        else:
            self._relay(d)
        return d

    def stopListening(self) -> Deferred:
        """
        Stop accepting connections; the sessions stay open.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once every port is closed.
        """
        ports, self._ports = self._ports, []
        self.addresses = []
        self._stopTallies()
        return gatherResults([maybeDeferred(p.stopListening) for p in ports], consumeErrors=True).addCallback(
            lambda _: None
        )

    def stopService(self) -> Deferred:
        """
        Stop listening, then close every session gracefully (each flushes for
        up to its C{waitTime}, then aborts).

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the ports are closed and every
            session is gone.
        """
        Service.stopService(self)
        self._stopTallies()
        ports, self._ports = self._ports, []
        waits: list[Deferred[Any]] = [maybeDeferred(p.stopListening) for p in ports]
        # close() returns None only in a task-pool thread; this is the reactor's.
        waits += [d for s in list(self._sessions) if (d := s.close("the server is stopping")) is not None]
        self.addresses = []
        self._outcome = None
        if not waits:
            return succeed(None)
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def _stopTallies(self) -> None:
        """
        Cancel the listeners' pending log lines about refused connections.
        """
        for listener in self._listeners:
            cap = getattr(listener, "cap", None)
            if cap is not None:
                cap.stop()

    # -- sessions -------------------------------------------------------------

    def sessions(self) -> list[Session]:
        """
        @return: the sessions currently connected (open or not yet).
        """
        return list(self._sessions)

    @property
    def refusedFull(self) -> int:
        """
        Connections closed at once because their listener held
        C{maxSessions} connections.
        """
        return sum(listener.cap.refused for listener in self._listeners if getattr(listener, "cap", None))

    def datagramDrops(self) -> dict[str, int]:
        """
        @return: the datagrams the UDP listeners dropped so far, by kind:
            C{oversize} (larger than C{maxMsgLen}), C{peers} (from new peers
            beyond C{maxPeers}), C{backlog} (for a session whose task-pool
            backlog was full); zeros without UDP listeners.
        """
        drops = dict.fromkeys(DROP_KINDS, 0)
        for listener in self._listeners:
            if isinstance(listener, UDPListener) and listener.protocol is not None:
                for kind, count in listener.protocol.drops.items():
                    drops[kind] += count
        return drops

    @property
    def isListening(self) -> bool:
        """
        Whether the server runs and every endpoint listens (what a
        readiness check asks).
        """
        return bool(self.running) and isinstance(self._outcome, list) and bool(self._ports)

    def listenerStats(self) -> list[tuple[ListenerStats, list[Session], int]]:
        """
        What a metrics scrape reads, per listener.

        @return: for each listener its L{ListenerStats}, its sessions not
            gone yet, and the connections it refused for its cap.
        """
        live: dict[ListenerStats, list[Session]] = {stats: [] for stats in self._listenerStats.values()}
        for session, (_, stats) in self._sessions.items():
            live.setdefault(stats, []).append(session)
        refused = {listener.description: listener.cap.refused for listener in self._listeners
                   if getattr(listener, "cap", None) is not None}
        return [(stats, sessions, refused.get(stats.listener, 0)) for stats, sessions in live.items()]

    def newSession(self, addr: Any, name: str | None = None, cap: Any = None, accepted: Any = None) -> Session:
        """
        Make a session for a new connection or UDP peer (L{ISessionFactory}).

        @param addr: the peer's address.
        @param name: the session's name (derived from the transport if
            C{None}).
        @param cap: the L{SessionCap <txgetty.server.ports.SessionCap>} to
            release when the session is gone, if any.
        @param accepted: what the connection takes from its listening
            socket (L{AcceptedSockets
            <txgetty.transports.sockets.AcceptedSockets>}), if known.
        @return: a new session owned by this server.
        """
        # (Positional: a class called with keywords costs a dict of them.)
        session = Session(self.reactor, self._wheel, self.config, self, name, accepted)
        if accepted is not None:
            # The peer's address as accept() gave it, what getPeer() would
            # make again.
            session.remoteAddress = addr
        if self.taskPool is not None:
            session.taskPool = self.taskPool
        self._sessions[session] = (cap, self._listenerStats.get(getattr(cap, "label", None), self._udpStats))
        self.accepted += 1
        return session

    def configureSession(self, session: Session) -> None:
        """
        Run the new-session callback.

        @param session: the connected session.
        @raise SessionRefusedError: the callback returned C{False}.
        """
        if self._newSession(session) is False:
            raise SessionRefusedError("the new-session callback returned False")

    def sessionRefused(self, session: Session, failure: Failure) -> None:
        """
        @param session: a session the new-session callback refused.
        @param failure: why.
        """
        self.refused += 1

    def sessionOpened(self, session: Session) -> None:
        """
        @param session: a session that opened.
        """
        self.opened += 1
        entry = self._sessions.get(session)
        if entry is not None:
            entry[1].opened += 1

    def sessionGone(self, session: Session) -> None:
        """
        @param session: a session whose connection is gone.
        """
        entry = self._sessions.pop(session, None)
        if entry is not None:
            cap, stats = entry
            if cap is not None:
                cap.release()
            stats.sessionGone(session)
        self.closed += 1


def serve(
    endpoints: Iterable[str | IStreamServerEndpoint], newSession: NewSessionCallback, **kw: Any
) -> Server:
    """
    Make a started L{Server} (for scripts; applications should add the
    server to their service tree instead).

    @param endpoints: as for L{Server}.
    @param newSession: as for L{Server}.
    @param kw: other L{Server} arguments.
    @return: the running server.
    """
    server = Server(list(endpoints), newSession, **kw)
    server.startService()
    return server
