"""
One slot of a client pool: it keeps one session to the server, dialling
again from the session's own loss event (getty's lazy reconnect), with
backoff, a connect timeout and clean stopping.

The table, L{TRANSITIONS}, as C{TRANSITIONS.diagram()} draws it (a pair
not listed changes nothing)::

  IDLE
    start      -> DIALING  _doDial
  DIALING
    dialFailed -> WAITING  _doFailed
    opened     -> OPEN     _doOpened
    gone       -> WAITING  _doFailed
    timeout    -> DIALING  _doAbandon
    stop       -> STOPPING _doAbandon
  OPEN
    gone       -> WAITING  _doLost
    stop       -> STOPPING _doAbandon
  WAITING
    retry      -> DIALING  _doDial
    giveUp     -> GAVE_UP  _doGiveUp
    stop       -> STOPPED  _doCancelRetry
  STOPPING
    dialFailed -> STOPPED  _doStopped
    gone       -> STOPPED  _doStopped
  STOPPED
    start      -> DIALING  _doRestart
  GAVE_UP
    start      -> DIALING  _doRestart
    stop       -> STOPPED  _doStopped
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, NoRouteError, TCPTimedOutError, TimeoutError
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..errors import ConnectTimeoutError, SelfConnectError, SessionRefusedError, TLSHandshakeError
from ..interfaces import ISlotOwner
from ..session import Session, SessionOwner
from ..statemachine import State, Table


_log = Logger()

IDLE = State("IDLE")
DIALING = State("DIALING")
OPEN = State("OPEN")
WAITING = State("WAITING")
STOPPING = State("STOPPING")
STOPPED = State("STOPPED")
GAVE_UP = State("GAVE_UP")
STATES = (IDLE, DIALING, OPEN, WAITING, STOPPING, STOPPED, GAVE_UP)
EVENTS = ("start", "dialFailed", "opened", "gone", "timeout", "retry", "giveUp", "stop")


class _SlotFactory(Factory):
    """
    Builds the session of one dial of a slot.
    """

    noisy = False

    def __init__(self, slot: Slot) -> None:
        """
        @param slot: the slot dialling.
        """
        self.slot = slot

    def buildProtocol(self, addr: Any) -> Session:  # type: ignore[override]  # an IProtocol without the
        # factory attribute that Twisted's typing of Factory asks for; nothing reads it
        """
        @param addr: the server's address.
        @return: a new session owned by the slot.
        """
        return self.slot.newSession()


class Slot(SessionOwner):
    """
    One pool slot of a L{Client <txgetty.Client>}.

    @ivar index: the slot's number in its pool.
    @ivar fire: C{fire(event, *args)}: apply one event of L{EVENTS} to
        L{TRANSITIONS} (made by the table; the arguments go to the action).
    @ivar state: the slot's state, one of L{STATES}.
    @ivar session: the slot's current session, if any.
    @ivar failures: consecutive failed attempts.
    @ivar lastFailure: the failure of the last failed attempt.
    """

    def __init__(self, client: ISlotOwner, index: int) -> None:
        """
        @param client: the pool (a L{Client <txgetty.Client>}).
        @param index: the slot's number.
        """
        self.client = client
        self.index = index
        self.state: State = IDLE
        self.session: Session | None = None
        self.failures = 0
        self.lastFailure: Failure | None = None
        self._dialing: Deferred | None = None
        self._timer: Any = None
        self._timedOut = False
        self._openedAt = 0.0
        self._stopWaiters: list[Deferred] = []

    def __repr__(self) -> str:
        return f"<Slot {self.index} of {self.client.label} {self.state}>"

    def whenStopped(self) -> Deferred:
        """
        @return: a L{Deferred} firing once the slot is C{STOPPED}.
        """
        d: Deferred = Deferred()
        if self.state in (STOPPED, IDLE):
            d.callback(None)
        else:
            self._stopWaiters.append(d)
        return d

    # -- SessionOwner ---------------------------------------------------------

    def newSession(self) -> Session:
        """
        Make the session of the current dial, owned by this slot (for the
        factory the slot dials with).

        @return: the session of the current dial.
        """
        client = self.client
        self.session = Session(clock=client.clock, wheel=client.wheel, config=client.config, owner=self)
        self.session.taskPool = client.taskPool
        return self.session

    def configureSession(self, session: Session) -> None:
        """
        Refuse a connection to ourselves, then run the user's callback.

        @param session: the connected session.
        @raise SelfConnectError: the local and remote addresses are equal.
        @raise SessionRefusedError: the callback returned C{False}.
        """
        if session.localAddress == session.remoteAddress:
            self.client.selfConnects += 1
            raise SelfConnectError(
                f"connected to itself ({session.localAddress}): nothing listens on "
                f"{self.client.label} and the kernel picked the same port"
            )
        if self.client.configureNewSession(session) is False:
            raise SessionRefusedError("the new-session callback returned False")

    def sessionOpened(self, session: Session) -> None:
        """
        @param session: the slot's session, now open.
        """
        if session is self.session:
            self.fire("opened")

    def sessionGone(self, session: Session) -> None:
        """
        @param session: a session of this slot whose connection is gone.
        """
        if session is self.session:
            self.session = None
            self.fire("gone", session.closeReason, session)

    # -- actions --------------------------------------------------------------

    def _doDial(self) -> None:
        """
        Connect, with the connect timeout armed.
        """
        client = self.client
        client.dials += 1
        self._timedOut = False
        self._timer = client.clock.callLater(client.connectTimeout, self.fire, "timeout")
        self._dialing = d = client.endpoint.connect(_SlotFactory(self))
        d.addCallbacks(self._dialed, self._dialError)

    def _dialed(self, protocol: Any) -> None:
        """
        @param protocol: the connected session (it reports its own opening).
        """
        self._dialing = None

    def _dialError(self, failure: Failure) -> None:
        """
        @param failure: why the connection could not be made.
        """
        self._dialing = None
        if self._timedOut:
            failure = Failure(self._timeoutError())
        self.fire("dialFailed", failure)

    def _timeoutError(self) -> ConnectTimeoutError:
        """
        @return: the error of an attempt that took too long.
        """
        return ConnectTimeoutError(
            f"connecting to {self.client.label} took more than {self.client.connectTimeout:g} s "
            f"(raise connectTimeout)"
        )

    def _doRestart(self) -> None:
        """
        Start again after a stop or giving up, from a fresh backoff.
        """
        self.failures = 0
        self._doDial()

    def _cancelTimer(self) -> None:
        """
        Cancel the connect-timeout or retry timer.
        """
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _doOpened(self) -> None:
        """
        The session is open: stop the connect timer, tell the pool.
        """
        self._cancelTimer()
        self._openedAt = self.client.clock.seconds()
        self.client.slotOpened(self)

    def _doAbandon(self, *_: Any) -> None:
        """
        Give up the current attempt or session (connect timeout, or stop).
        """
        stopping = self.state == STOPPING
        if stopping:
            self._cancelTimer()
        else:
            self._timer = None
            self._timedOut = True
        reason: Any = "the client is stopping" if stopping else self._timeoutError()
        if self.session is not None:
            self.session.close(reason)
        elif self._dialing is not None:
            self._dialing.cancel()

    def _doFailed(self, failure: Failure, session: Session | None = None) -> None:
        """
        An attempt failed (refused, timed out, dropped before it opened).

        @param failure: why.
        @param session: the session of the attempt, if it got that far.
        """
        self.client.failures += 1
        self._backoff(failure, "attempt failed")

    def _doLost(self, failure: Failure, session: Session) -> None:
        """
        An open session ended: one that lived C{stableAfter} seconds resets
        the backoff; one that died sooner counts as another failure.

        @param failure: why it ended.
        @param session: the session.
        """
        self.client.slotSessionEnded(session)
        if self.client.clock.seconds() - self._openedAt >= self.client.reconnect.stableAfter:
            self.failures = 0
        else:
            self.client.failures += 1
        self._backoff(failure, "session lost")

    def _backoff(self, failure: Failure, what: str) -> None:
        """
        Wait before the next attempt, or give up after C{maxAttempts}.

        @param failure: why the last attempt or session ended.
        @param what: a few words for the log.
        """
        self._cancelTimer()
        self.failures += 1
        self.lastFailure = failure
        policy = self.client.reconnect
        if policy.gaveUp(self.failures):
            self.fire("giveUp")
            return
        delay = policy.delay(self.failures, self.client.random)
        _log.info(
            "txgetty: {endpoint} slot {slot}: {event} ({reason}); dialling again in {delay:.2f} s",
            endpoint=self.client.label, slot=self.index, event=what, reason=_describe(failure),
            error=_errorName(failure), attempt=self.failures, delay=delay,
        )
        self._timer = self.client.clock.callLater(delay, self.fire, "retry")

    def _doGiveUp(self) -> None:
        """
        Too many failures in a row: stop trying and tell the pool.
        """
        _log.warn(
            "txgetty: {endpoint} slot {slot}: gave up after {attempt} failed attempts; last: {reason}",
            endpoint=self.client.label, slot=self.index, attempt=self.failures,
            reason=_describe(self.lastFailure), error=_errorName(self.lastFailure),
        )
        self.client.slotGaveUp(self)

    def _doCancelRetry(self) -> None:
        """
        Stopped while waiting to retry.
        """
        self._cancelTimer()
        self._doStopped()

    def _doStopped(self, failure: Failure | None = None, session: Session | None = None) -> None:
        """
        The slot is stopped: tell whoever waits.

        @param failure: why the last attempt or session ended, if one did.
        @param session: the session that ended, if any.
        """
        if session is not None:
            self.client.slotSessionEnded(session)
        self._cancelTimer()
        waiters, self._stopWaiters = self._stopWaiters, []
        for d in waiters:
            d.callback(None)

    #: C{(state, event) -> (next state, action)}.  Pairs not listed change
    #: nothing (e.g. a late connect result for an attempt already abandoned).
    TRANSITIONS = Table([
        (IDLE, "start", DIALING, _doDial),
        (DIALING, "dialFailed", WAITING, _doFailed),
        (DIALING, "opened", OPEN, _doOpened),
        (DIALING, "gone", WAITING, _doFailed),
        (DIALING, "timeout", DIALING, _doAbandon),
        (DIALING, "stop", STOPPING, _doAbandon),
        (OPEN, "gone", WAITING, _doLost),
        (OPEN, "stop", STOPPING, _doAbandon),
        (WAITING, "retry", DIALING, _doDial),
        (WAITING, "giveUp", GAVE_UP, _doGiveUp),
        (WAITING, "stop", STOPPED, _doCancelRetry),
        (STOPPING, "dialFailed", STOPPED, _doStopped),
        (STOPPING, "gone", STOPPED, _doStopped),
        (STOPPED, "start", DIALING, _doRestart),
        (GAVE_UP, "start", DIALING, _doRestart),
        (GAVE_UP, "stop", STOPPED, _doStopped),
    ], attribute="state")
    fire = TRANSITIONS.fire


#: The table of L{Slot} (see its C{TRANSITIONS}).
TRANSITIONS = Slot.TRANSITIONS


def describeConnectFailure(failure: Failure | None) -> str:
    """
    Say in plain words why a connection attempt failed.

    @param failure: why the attempt (or the session) ended, or C{None}.
    @return: the cause and a hint, with the error's type in brackets, or
        C{"-"}.
    """
    if failure is None:
        return "-"
    error = failure.value
    kind = type(error).__name__
    number = getattr(error, "osError", None)
    if isinstance(error, TLSHandshakeError):
        return str(error)
    if isinstance(error, ConnectionRefusedError) or number == errno.ECONNREFUSED:
        why = "connection refused: nothing listens there (is the server running, on that port?)"
    elif isinstance(error, DNSLookupError):
        why = "unknown host: the name does not resolve (DNS lookup failed)"
    elif isinstance(error, (TCPTimedOutError, TimeoutError, ConnectTimeoutError)):
        why = f"no answer: {failure.getErrorMessage()} (a firewall, or a host that is down?)"
    elif isinstance(error, NoRouteError):
        why = "no route to the host (network down, or a wrong address?)"
    elif number == errno.ENOENT:
        why = "no socket file there (is the server running? the right path?)"
    else:
        return f"{kind}: {failure.getErrorMessage()}"
    return f"{why} [{kind}]"


_describe = describeConnectFailure


def _errorName(failure: Failure | None) -> str | None:
    """
    @param failure: a failure, or C{None}.
    @return: its exception's class name (the C{error} log field), or C{None}.
    """
    return None if failure is None else type(failure.value).__name__
