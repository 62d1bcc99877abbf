"""
The client: a pool of N sessions to one server, each re-dialled from its own
loss event with backoff (see L{txgetty.client.slot} and L{ReconnectPolicy})::

    client = Client("tcp:127.0.0.1:8090", newSession, connections=4)
    client.setServiceParent(application)
    session = await client.whenConnected()
    client.session().writePkg(b"hello")      # round-robin by default
"""

from __future__ import annotations

import random
from typing import Any, Callable

from twisted.application.service import IService, Service
from twisted.internet.defer import CancelledError, Deferred, gatherResults, succeed
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from . import slot as _slot
from ..config import DEFAULT_WHEEL_TICK, SessionConfig
from ..transports.endpoints import clientEndpoint
from ..errors import ConfigError, ConnectGaveUpError, NoSessionError
from ..interfaces import IClient, ISlotOwner, ITimerWheel
from .reconnect import ReconnectPolicy
from ..session import Session
from ..transports.tls import TLSClientSettings
from ..wheel import TimerWheel

_log = Logger()

DEFAULT_CONNECT_TIMEOUT = 5.0
CHOICES = ("round-robin", "random", "least-loaded")


@implementer(IClient, ISlotOwner, IService)
class Client(Service):
    """
    Keeps C{connections} sessions open to one server (an L{IService <twisted.application.service.IService>}).

    @ivar label: the server address as text, for logs.
    @ivar config: the settings every session starts with.
    @ivar reconnect: the L{ReconnectPolicy}.
    @ivar connectTimeout: seconds an attempt may take until the session is
        open (TCP connect, TLS handshake and C{onOpen}).
    @ivar dials: connection attempts made.
    @ivar opened: sessions that opened.
    @ivar lost: open sessions that ended.
    @ivar failures: attempts that failed (refused, timed out, dropped before
        C{stableAfter}, ...).
    @ivar selfConnects: attempts that connected to themselves.
    @ivar gaveUp: slots that stopped after C{maxAttempts} failures.
    """

    def __init__(
        self,
        endpoint: str | IStreamClientEndpoint,
        newSession: Callable[[Session], Any],
        *,
        connections: int = 1,
        reactor: Any = None,
        config: SessionConfig | None = None,
        reconnect: ReconnectPolicy | None = None,
        connectTimeout: float = DEFAULT_CONNECT_TIMEOUT,
        choose: str = "round-robin",
        tls: TLSClientSettings | None = None,
        wheel: ITimerWheel | None = None,
        wheelTick: float = DEFAULT_WHEEL_TICK,
        rng: random.Random | None = None,
        taskPool: Any = None,
    ) -> None:
        """
        @param endpoint: where to connect: C{HOST:PORT}, C{tcp:HOST:PORT},
            C{tls:HOST:PORT[:caFile=F][:cert=F:key=F]}, C{unix:PATH} (see
            L{txgetty.transports.endpoints.clientEndpoint}), or an endpoint object.
        @param newSession: called with each new session before it opens; sets
            C{session.codec} and C{session.listener}; raising or returning
            C{False} refuses it (counted as a failed attempt).
        @param connections: the pool size N.
        @param reactor: the reactor; the global one if C{None}.
        @param config: the initial session settings.
        @param reconnect: the backoff policy (getty's 0.3 s start by default).
        @param connectTimeout: seconds until an attempt is abandoned.
        @param choose: how L{session} picks: C{"round-robin"}, C{"random"} or
            C{"least-loaded"} (fewest bytes waiting to be written).
        @param tls: TLS settings for C{tls:} addresses.
        @param wheel: a shared timer wheel; one is made if C{None}.
        @param wheelTick: resolution of the wheel made here.
        @param rng: the random source for jitter and random choice.
        @param taskPool: a L{TaskPool <txgetty.taskpool.TaskPool>} for the
            sessions' C{onMessage}/C{onCron}, or C{None} (reactor thread).
        @raise ConfigError: a parameter cannot work; the message names it.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise ConfigError(f"connections must be a positive integer, got {connections!r}")
        if choose not in CHOICES:
            raise ConfigError(f"choose must be one of {', '.join(CHOICES)}, got {choose!r}")
        if not isinstance(connectTimeout, (int, float)) or not connectTimeout > 0:
            raise ConfigError(f"connectTimeout must be a positive number of seconds, got {connectTimeout!r}")
        if not callable(newSession):
            raise TypeError(f"newSession must be callable, got {newSession!r}")
        self.config = config or SessionConfig()
        if isinstance(endpoint, str):
            self.endpoint, self.label = clientEndpoint(reactor, endpoint, tls, self.config.maxMsgLen)
        else:
            self.endpoint, self.label = endpoint, repr(endpoint)
        self.clock = reactor
        self.reconnect = reconnect or ReconnectPolicy()
        self.connectTimeout = float(connectTimeout)
        self.choose = choose
        self.wheel = wheel or TimerWheel(reactor, wheelTick)
        self.random = rng or random.Random()
        self.taskPool = taskPool
        self._newSessionCallback = newSession
        self._slots = [_slot.Slot(self, i) for i in range(connections)]
        self._open: list[Session] = []
        self._next = 0
        self._waiters: list[tuple[int, Deferred]] = []
        self.dials = self.opened = self.lost = self.failures = self.selfConnects = self.gaveUp = 0

    def __repr__(self) -> str:
        return f"<txgetty Client to {self.label}: {len(self._open)}/{len(self._slots)} open>"

    # -- IService -------------------------------------------------------------

    def startService(self) -> None:
        """
        Start dialling every slot.
        """
        Service.startService(self)
        for slot in self._slots:
            slot.fire("start")

    def stopService(self) -> Deferred:
        """
        Stop: no more dialling (pending attempts and backoff timers are
        cancelled), open sessions close gracefully.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once every slot is stopped.
        """
        Service.stopService(self)
        for slot in self._slots:
            slot.fire("stop")
        self._failWaiters(Failure(CancelledError("the client was stopped")))
        return gatherResults([s.whenStopped() for s in self._slots]).addCallback(lambda _: None)

    # -- sessions -------------------------------------------------------------

    def sessions(self) -> list[Session]:
        """
        @return: the open sessions.
        """
        return list(self._open)

    def session(self) -> Session:
        """
        Pick an open session with the C{choose} policy.

        @return: the session.
        @raise NoSessionError: none is open.
        """
        sessions = [s for s in self._open if not s.isClosed]
        if not sessions:
            raise NoSessionError(f"no session to {self.label} is open ({self._stateSummary()})")
        if self.choose == "random":
            return self.random.choice(sessions)
        if self.choose == "least-loaded":
            return min(sessions, key=lambda s: s.pendingBytes)
        self._next = (self._next + 1) % len(sessions)
        return sessions[self._next]

    def whenConnected(self) -> Deferred:
        """
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with an open session (chosen by the
            policy) as soon as one is open; it fails with
            L{ConnectGaveUpError} if every slot gave up, or L{CancelledError <twisted.internet.defer.CancelledError>}
            if the client is stopped first.
        """
        return self.whenAllConnected(1).addCallback(lambda _: self.session())

    def whenAllConnected(self, count: int | None = None) -> Deferred:
        """
        @param count: how many sessions to wait for (default: the pool size).
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with the list of open sessions once at
            least C{count} are open (fails as L{whenConnected} does).
        """
        count = len(self._slots) if count is None else count
        if not 1 <= count <= len(self._slots):
            raise ConfigError(f"count must be between 1 and the pool size {len(self._slots)}, got {count}")
        if len(self._open) >= count:
            return succeed(list(self._open))
        d: Deferred = Deferred()
        self._waiters.append((count, d))
        self._checkGaveUp()
        return d

    def stat(self) -> str:
        """
        @return: one line with the pool's counters.
        """
        return (
            f"client {self.label}: {len(self._open)}/{len(self._slots)} open "
            f"({self._stateSummary()}); dials {self.dials}, opened {self.opened}, lost {self.lost}, "
            f"failed attempts {self.failures}, self-connects {self.selfConnects}, gave up {self.gaveUp}"
        )

    def slotStates(self) -> list[str]:
        """
        @return: the state of each connection slot, in slot order, by name
            (one of L{txgetty.client.slot.STATES}' names: C{"IDLE"},
            C{"DIALING"}, C{"OPEN"}, C{"WAITING"}, C{"STOPPING"},
            C{"STOPPED"}, C{"GAVE_UP"}).
        """
        return [slot.state.name for slot in self._slots]

    def allGaveUp(self) -> bool:
        """
        @return: whether no slot will open a session any more: each one gave
            up after C{maxAttempts} failures or is stopped.
        """
        return all(slot.state in (_slot.GAVE_UP, _slot.STOPPED) for slot in self._slots)

    def _stateSummary(self) -> str:
        """
        @return: how many slots are in each state, e.g. C{"2 OPEN, 1 WAITING"}.
        """
        counts: dict[str, int] = {}
        for name in self.slotStates():
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))

    # -- ISlotOwner: what the slots ask and report --------------------------

    def configureNewSession(self, session: Session) -> Any:
        """
        Run the application's new-session callback (for a slot).

        @param session: a connected session, not open yet.
        @return: what the callback returned (C{False} refuses the session).
        """
        return self._newSessionCallback(session)

    def slotOpened(self, slot: _slot.Slot) -> None:
        """
        @param slot: a slot whose session opened.
        """
        self.opened += 1
        assert slot.session is not None
        self._open.append(slot.session)
        ready = [(n, d) for n, d in self._waiters if len(self._open) >= n]
        self._waiters = [(n, d) for n, d in self._waiters if len(self._open) < n]
        for _, d in ready:
            d.callback(list(self._open))

    def slotSessionEnded(self, session: Session) -> None:
        """
        @param session: a session of a slot that ended (open or not).
        """
        if session in self._open:
            self.lost += 1
            self._open.remove(session)

    def slotGaveUp(self, slot: _slot.Slot) -> None:
        """
        @param slot: a slot that stopped trying.
        """
        self.gaveUp += 1
        self._checkGaveUp()

    def _checkGaveUp(self) -> None:
        """
        Fail the waiters that can no longer be satisfied.
        """
        alive = sum(1 for s in self._slots if s.state != _slot.GAVE_UP)
        doomed = [(n, d) for n, d in self._waiters if n > alive]
        if not doomed:
            return
        self._waiters = [w for w in self._waiters if w not in doomed]
        last = next((s.lastFailure for s in self._slots if s.lastFailure is not None), None)
        attempts = self.reconnect.maxAttempts
        error = ConnectGaveUpError(
            f"gave up connecting to {self.label} after {attempts} failed attempt{'s' if attempts != 1 else ''} "
            f"per connection (maxAttempts): {_slot.describeConnectFailure(last)}",
            label=self.label, lastFailure=last,
        )
        for _, d in doomed:
            d.errback(Failure(error))

    def _failWaiters(self, failure: Failure) -> None:
        """
        @param failure: what every waiter gets.
        """
        waiters, self._waiters = self._waiters, []
        for _, d in waiters:
            d.errback(failure)


def connect(
    endpoint: str | IStreamClientEndpoint, newSession: Callable[[Session], Any], **kw: Any
) -> Client:
    """
    Make a started L{Client} (for scripts; applications should add the client
    to their service tree instead).

    @param endpoint: as for L{Client}.
    @param newSession: as for L{Client}.
    @param kw: other L{Client} arguments.
    @return: the running client.
    """
    client = Client(endpoint, newSession, **kw)
    client.startService()
    return client

