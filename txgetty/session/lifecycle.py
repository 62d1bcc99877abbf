"""
The life cycle of a session: its states, the transition table, the actions
of the table, and the timers (cron, read-idle, packet and open timeouts)
driven by the shared wheel.  Mixed into L{txgetty.Session}.

The table, L{TRANSITIONS}, as C{TRANSITIONS.diagram()} draws it (a pair
not listed keeps the state and does nothing: an idempotent close, a late
C{onOpen} result after the connection is gone)::

  NEW
    connect     -> OPENING       _doConfigure
    connectTLS  -> HANDSHAKING   _doConfigure
    close       -> DEAD          _doGone
    lost        -> DEAD          _doGone
  HANDSHAKING (writable)
    refuse      -> ABORTING      _doRefuse
    handshake   -> OPENING       _doOpen
    close       -> ABORTING      _doAbort
    openTimeout -> ABORTING      _doOpenTimeout
    lost        -> DEAD          _doHandshakeFailed
  OPENING (writable)
    refuse      -> ABORTING      _doRefuse
    openOk      -> OPEN          _doStart
    openFail    -> ABORTING      _doOpenFailed
    close       -> OPENING_CLOSE _doLoseConnection
    openTimeout -> ABORTING      _doOpenTimeout
    error       -> ABORTING      _doOpenFailed
    lost        -> DEAD          _doCancelOpen
  OPENING_CLOSE (closed)
    openOk      -> CLOSING       _doOpenedClosing
    openFail    -> ABORTING      _doOpenFailed
    lost        -> DEAD          _doCancelOpen
    openTimeout -> ABORTING      _doOpenTimeout
  OPEN (writable)
    close       -> CLOSING       _doClose
    error       -> ERRORING      _doFail
    lost        -> CLOSED        _doLost
  ERRORING (closed, writable)
    close       -> CLOSING       _doLoseConnection
    lost        -> CLOSED        _doClosed
  CLOSING (closed)
    lost        -> CLOSED        _doClosed
  ABORTING (closed)
    lost        -> DEAD          _doGone
  DEAD (closed, final)
  CLOSED (closed, final)

A session counts as opened once C{onOpen} succeeded; only opened sessions
reach C{CLOSED} (and get C{onClose}); the others end in C{DEAD}.
"""

from __future__ import annotations

from inspect import iscoroutine
from typing import TYPE_CHECKING, Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..transports.addresses import formatAddress
from ..errors import (
    OpenTimeoutError,
    SessionClosedError,
    SessionRefusedError,
    TruncatedPacketError,
)
from .errorlog import ALREADY_LOGGED, logSessionFailure
from ..statemachine import State, Table
from .pooling import CRON
from .readgate import EOF

if TYPE_CHECKING:
    from .delivery import Delivery
    from .watermarks import WriteMarks
    from .reading import WaitingMessages
    from .readgate import ReadGate
    from .timers import SessionTimers
from ..transports.sockets import unsentBytes
from ..transports.tls import describeHandshakeFailure, isTLSFailure, tlsConnectionOf

_log = Logger()

#: The close reason of a session whose peer finished sending (shared, as
#: Twisted shares its C{connectionDone}).
_PEER_DONE = Failure(ConnectionDone("the peer finished sending"))
#: The reason a socket closed at once after the peer's end of input is
#: given (shared, as Twisted's reactor shares its own ConnectionDone).
_DONE = Failure(ConnectionDone())


def _closedAtOnce(transport: Any) -> bool:
    """
    Close a socket transport whose write buffer is empty now, as the reactor
    would on its next write event after C{loseConnection()}: with
    C{shutdown()} and C{close()}, then C{connectionLost}.

    @param transport: the session's transport.
    @return: whether it was closed (only a plain TCP or UNIX socket with
        nothing left to write; TLS and other transports are not).
    """
    if (
        not isinstance(transport, FileDescriptor)
        or not transport.connected
        or transport.disconnecting
        or unsentBytes(transport)
    ):
        return False
    # What FileDescriptor.doWrite and the reactor's _disconnectSelectable do
    # once the buffer is empty after loseConnection(), without the turn of
    # the reactor (epoll_ctl twice, an empty send) in between.
    transport.connectionLost(_DONE)
    return True


#: The states; C{writable}: writes are accepted; C{closed}: the session is
#: closing or closed; C{final}: the connection is gone.
NEW = State("NEW")
HANDSHAKING = State("HANDSHAKING", writable=True)
OPENING = State("OPENING", writable=True)
OPENING_CLOSE = State("OPENING_CLOSE", closed=True)
OPEN = State("OPEN", writable=True)
ERRORING = State("ERRORING", writable=True, closed=True)
CLOSING = State("CLOSING", closed=True)
CLOSED = State("CLOSED", closed=True, final=True)
ABORTING = State("ABORTING", closed=True)
DEAD = State("DEAD", closed=True, final=True)

STATES = (NEW, HANDSHAKING, OPENING, OPENING_CLOSE, OPEN, ERRORING, CLOSING, CLOSED, ABORTING, DEAD)

#: connect: transport up, no TLS; connectTLS: transport up, TLS handshake to
#: come; refuse: the new-session callback refused; handshake: TLS done;
#: openOk/openFail: onOpen's outcome; openTimeout: not open after
#: openTimeout; close: close() called; error: a codec, timeout or handler
#: error; lost: the transport is gone.
EVENTS = (
    "connect",
    "connectTLS",
    "refuse",
    "handshake",
    "openOk",
    "openFail",
    "openTimeout",
    "close",
    "error",
    "lost",
)


class PendingOpen:
    """
    The unfinished C{onOpen} of a session: the L{Deferred
    <twisted.internet.defer.Deferred>} it returned (or made of the coroutine
    it returned), which the actions of the table wait for (C{_doOpen}),
    find finished (C{_doStart}) or cancel (an open timeout, the connection
    gone first).  Reading is paused (C{"opening"}) while one is pending.
    A session holds L{NOTHING_PENDING} until its C{onOpen} returns an
    unfinished result, and again once that result came.

    @ivar deferred: the pending C{onOpen}'s Deferred, or C{None} once it
        was cancelled.
    """

    __slots__ = ("deferred",)

    def __init__(self, deferred: Deferred[Any] | None = None) -> None:
        """
        @param deferred: what C{onOpen} returned, as a Deferred.
        """
        self.deferred = deferred

    def cancel(self) -> None:
        """
        Cancel the pending C{onOpen}'s Deferred, if there is one.
        """
        d = self.deferred
        if d is not None:
            self.deferred = None
            d.cancel()


#: What a session holds while no C{onOpen} is pending (shared: it holds
#: nothing, and nothing changes it).
NOTHING_PENDING = PendingOpen()


class LifecycleMixin:
    """
    The transition actions and timers of a session.  It works on the
    attributes that L{txgetty.Session} declares.
    """

    if TYPE_CHECKING:
        # For the type checker: what this mixin uses of the session it is
        # mixed into (attributes set in Session.__init__, methods of the other
        # mixins), without importing txgetty.session (a cycle).  Its empty
        # __slots__ stay out of the checker's sight: they are not the
        # session's slots.
        transport: Any
        remoteAddress: Any
        closeReason: Failure | None
        lastActive: float
        _state: State
        _clock: Any
        _wheel: Any
        _owner: Any
        _listener: Any
        _reader: Any
        _writer: Any
        _buf: bytearray
        _need: int
        _messages: WaitingMessages | None
        _batch: list[bytes] | None
        _waiters: list[Deferred[Any]]
        _opening: PendingOpen
        _delivery: Delivery
        _tasks: Any
        _marks: WriteMarks
        _gate: ReadGate
        _abortCall: Any
        _timers: SessionTimers
        # The session's SessionSettings (txgetty.session.settings, which
        # imports this module).
        _cfg: Any
        packetsRead: int
        handlerErrors: int
        timesPaused: int
        bytesRead: int
        startTime: float

        def _applySocketOptions(self) -> None: ...
        def _drainMessages(self) -> None: ...
        def _flush(self) -> None: ...
        def _pauseReading(self, why: str) -> None: ...
        def _process(self) -> None: ...
        def _resumeReading(self, why: str) -> None: ...
        def _toPool(self, packets: list[Any]) -> None: ...
        def _unwatchWrites(self) -> None: ...
        def _watchWrites(self) -> None: ...
    else:
        __slots__ = ()

    def _doConfigure(self) -> None:
        """
        Run the owner's new-session callback and apply socket options, then
        open a plain session (C{connect}); a TLS session (C{connectTLS})
        opens once its handshake completed.
        """
        plain = self._state is OPENING
        try:
            self._owner.configureSession(self)
            if self._listener is None:
                raise SessionRefusedError("the new-session callback did not set session.listener")
            if self._reader is None or self._writer is None:
                raise SessionRefusedError("the new-session callback did not set session.codec")
            self._applySocketOptions()
            self._watchWrites()
        except Exception:
            self._fire("refuse", Failure())
            return
        settings = self._cfg
        if self._state is HANDSHAKING:
            # (A plain session's open timer starts only if onOpen does not
            # finish at once: see _doOpen.)
            self._timers.armOpen("the TLS handshake")
        if not 0 < settings.openTimeout < settings.firstPacketTimeout:
            # The open timer does not come first: watch the first packet
            # from now (else the idle timer does, once open).
            self._timers.armFirstPacket()
        if plain:
            self._doOpen()

    def _doOpen(self) -> None:
        """
        Call C{onOpen}; an unfinished result pauses reading until it fires.
        """
        try:
            result = self._listener.onOpen(self)
        except Exception:
            self._fire("openFail", Failure(), "onOpen")
            return
        if result is not None and (isinstance(result, Deferred) or iscoroutine(result)):
            d = ensureDeferred(result)
            self._opening = PendingOpen(d)
            self._pauseReading("opening")
            if not d.called:
                self._timers.armOpen("onOpen")
            d.addCallbacks(lambda _: self._fire("openOk"), lambda f: self._fire("openFail", f, "onOpen"))
        else:
            self._fire("openOk")

    def _doStart(self) -> None:
        """
        The session is open: start cron and timeouts, read what waited.
        """
        if self._opening is not NOTHING_PENDING:
            # onOpen's result came: nothing is pending any more.
            self._opening = NOTHING_PENDING
            self._resumeReading("opening")
        self._timers.opened()
        self._owner.sessionOpened(self)
        if self._buf and self._state is OPEN:
            self._process()
        if self._messages:
            self._drainMessages()
        if self._gate.reasons & EOF:
            self._endIfPeerDone()

    # -- the peer's half-close ---------------------------------------------------

    def readConnectionLost(self) -> None:
        """
        The peer finished sending but may still read (a TCP or UNIX
        half-close: C{nc -N}, C{socat} or C{shutdown(SHUT_WR)} once their
        input ends).  Deliver what arrived, let awaited handlers and the task
        pool finish, then close: their replies are flushed, not lost.
        """
        gate = self._gate
        if gate.reasons & EOF:
            return
        if self._state is OPEN and not self._delivery.isHeld and (self._tasks is None or not self._tasks.pending):
            # Nothing left to answer: the session closes now, and the
            # transport stops reading as it closes; it need not be paused
            # first (a turn of the reactor's bookkeeping).
            if gate.peerFinished():
                self.timesPaused += 1
            if not self._buf:
                self._fire("close", _PEER_DONE)
                return
        else:
            self._pauseReading("eof")
        self._endIfPeerDone()

    def writeConnectionLost(self) -> None:
        """
        This side's half is closed, which only a C{loseWriteConnection()} of
        the application's own does: the session goes on reading until the
        connection ends.
        """

    def _endIfPeerDone(self) -> None:
        """
        After the peer's half-close, close once nothing is left to answer:
        cleanly (C{ConnectionDone}), or with L{TruncatedPacketError} if the
        input ended in the middle of a packet.
        """
        if not self._gate.reasons & EOF or self._state is not OPEN:
            return
        if self._delivery.isHeld or (self._tasks is not None and self._tasks.pending):
            return
        if self._buf:
            need = f" of {self._need}" if self._need else ""
            self._fire("error", Failure(TruncatedPacketError(
                f"the peer finished sending in the middle of a packet ({len(self._buf)}{need} bytes received)"
            )))
        else:
            self._fire("close", _PEER_DONE)

    def _doRefuse(self, failure: Failure) -> None:
        """
        The new-session callback refused the session: drop the connection.

        @param failure: why.
        """
        self.closeReason = failure
        why = failure.getErrorMessage()
        if not failure.check(SessionRefusedError):
            logSessionFailure(self, failure, "the connection is refused", "newSession", None,
                              routine=False)
        elif "did not set" in why:
            _log.error("txgetty: refused {session!r}: {why} (a bug in the callback)", session=self, why=why,
                       peer=formatAddress(self.remoteAddress), callback="newSession")
        else:
            _log.info("txgetty: refused {session!r}: {why}", session=self, why=why,
                      peer=formatAddress(self.remoteAddress), callback="newSession")
        self._owner.sessionRefused(self, failure)
        self.transport.abortConnection()

    def _doOpenFailed(self, failure: Failure, callback: str | None = None) -> None:
        """
        C{onOpen} failed (or an error came before it finished): log and
        report it, drop the connection.

        @param failure: the failure.
        @param callback: C{"onOpen"} if C{onOpen} failed; C{None} for an
            error the session detected.
        """
        self.closeReason = failure
        if callback is not ALREADY_LOGGED:
            logSessionFailure(self, failure, "the connection is dropped; the session never opened", callback)
        self._callListener("onError", failure)
        self.transport.abortConnection()

    def _doOpenTimeout(self, phase: str) -> None:
        """
        The session did not open in time: report it, drop the connection.

        @param phase: what it was waiting for, for the message.
        """
        failure = Failure(OpenTimeoutError(
            f"{self!r} did not open within {self._cfg.openTimeout:g} s (waiting for {phase}); "
            f"openTimeout: raise it or set 0 to disable it (--open-timeout for twistd)"
        ))
        self.closeReason = failure
        logSessionFailure(self, failure, "the connection is dropped; the session never opened")
        self._opening.cancel()
        if self._listener is not None:
            self._callListener("onError", failure)
        self.transport.abortConnection()

    def _doAbort(self, reason: Failure) -> None:
        """
        Closed before it opened: drop the connection at once.

        @param reason: the close reason.
        """
        self.closeReason = reason
        self.transport.abortConnection()

    def _doLoseConnection(self, reason: Failure) -> None:
        """
        Flush and disconnect, aborting after waitTime (a close during
        C{onOpen}, after an error, or of an open session).

        @param reason: the close reason, unless one is already set.
        """
        if self.closeReason is None:
            self.closeReason = reason
        if self._batch:
            self._flush()
        self._unwatchWrites()
        if self._gate.reasons & EOF and _closedAtOnce(self.transport):
            # The peer finished sending and every reply is in the kernel:
            # nothing to wait for.
            return
        if self._cfg.waitTime:
            self.transport.loseConnection()
            self._abortCall = self._clock.callLater(self._cfg.waitTime, self._abortNow)
        else:
            self.transport.abortConnection()

    def _abortNow(self) -> None:
        """
        waitTime is over and the connection is still there: abort it.
        """
        self._abortCall = None
        self.transport.abortConnection()

    def _doClose(self, reason: Failure) -> None:
        """
        Close an open session: stop timers, flush, disconnect.

        @param reason: the close reason.
        """
        self._timers.stop()
        self._doLoseConnection(reason)

    def _doFail(self, failure: Failure, callback: str | None = None) -> None:
        """
        An error ends an open session: log it, tell C{onError} (which may
        still write a last message), then close gracefully.

        @param failure: the error.
        @param callback: the listener method that raised it, C{None} for an
            error the session detected (codec, timeout), or
            L{ALREADY_LOGGED}.
        """
        self.closeReason = failure
        self._timers.stop()
        if callback is None:
            logSessionFailure(self, failure, "the session closes")
        elif callback is not ALREADY_LOGGED:
            logSessionFailure(self, failure, 'the session closes (handlerErrorPolicy "close")', callback)
        self._callListener("onError", failure)
        self._fire("close", failure)

    def _doOpenedClosing(self) -> None:
        """
        C{onOpen} succeeded after a close was requested: the session counts
        as opened (it will get C{onClose}).
        """
        self._owner.sessionOpened(self)

    def _doLost(self, reason: Failure) -> None:
        """
        The connection of an open session is gone.

        @param reason: why; anything but a clean close is reported to
            C{onError} first.
        """
        if isTLSFailure(reason):
            reason = Failure(describeHandshakeFailure(reason, self.remoteAddress, "connection",
                                                      tlsConnectionOf(self.transport)))
        elif isinstance(reason.value, ConnectionDone) and self._buf:
            need = f" of {self._need}" if self._need else ""
            reason = Failure(TruncatedPacketError(
                f"the peer closed the connection in the middle of a packet "
                f"({len(self._buf)}{need} bytes received)"
            ))
        self.closeReason = reason
        if not isinstance(reason.value, ConnectionDone):  # (cheaper than reason.check)
            logSessionFailure(self, reason, "the session is closed")
            self._callListener("onError", reason)
        self._doClosed(reason)

    def _doClosed(self, reason: Failure) -> None:
        """
        An opened session is gone: C{onClose}, then clean up.

        @param reason: why the transport went away.
        """
        # (_callListener("onClose"), inlined: every session's end.)
        try:
            self._listener.onClose(self)
        except Exception:
            logSessionFailure(self, Failure(), "ignored", "onClose", routine=False)
        self._finish()

    def _doHandshakeFailed(self, reason: Failure) -> None:
        """
        The TLS handshake failed: report it in plain words.

        @param reason: the failure from the TLS layer.
        """
        failure = Failure(describeHandshakeFailure(reason, self.remoteAddress,
                                                   connection=tlsConnectionOf(self.transport)))
        self.closeReason = failure
        # A connect-and-close (health check, port scan) is not worth a warning.
        log = _log.info if reason.check(ConnectionDone, ConnectionLost) else _log.warn
        why = failure.getErrorMessage()
        log("txgetty: {why}", why=why, reason=f"TLSHandshakeError: {why}", session=self,
            peer=formatAddress(self.remoteAddress), error="TLSHandshakeError", callback=None)
        if self._listener is not None:
            self._callListener("onError", failure)
        self._finish()

    def _doCancelOpen(self, reason: Failure) -> None:
        """
        The connection went away while C{onOpen} had not finished.

        @param reason: why.
        """
        if self.closeReason is None:
            self.closeReason = reason
        self._opening.cancel()
        self._finish()

    def _doGone(self, reason: Failure | None = None) -> None:
        """
        A session that never opened is gone.

        @param reason: why, if known.
        """
        if self.closeReason is None and reason is not None:
            self.closeReason = reason
        self._finish()

    def _finish(self) -> None:
        """
        Release everything and tell whoever waits for the end.
        """
        self._timers.stop()
        if self._abortCall is not None:
            self._abortCall.cancel()
            self._abortCall = None
        if self._buf:
            self._buf = bytearray()
        if self._delivery.waiting is not None:  # (isHeld, inlined)
            self._delivery.drop()
        self._messages = None
        if self._marks.check is not None:
            self._marks.stopChecking()
        if self._tasks is not None:
            self._tasks.clear()
        self._owner.sessionGone(self)
        # Nothing calls back into the session any more: drop the references
        # back to it, so that it is freed at once, not by the garbage
        # collector.
        self._timers.release()
        self._gate.release()
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def _callListener(self, method: str, *args: Any) -> None:
        """
        Call C{onError} or C{onClose}, logging (not raising) what they raise.

        @param method: the listener method's name.
        @param args: its arguments after the session.
        """
        try:
            getattr(self._listener, method)(self, *args)
        except Exception:
            logSessionFailure(self, Failure(), "ignored", method, routine=False)

    # -- cron -------------------------------------------------------------------

    def _cronTurn(self) -> None:
        """
        One C{onCron} of the open session (in the task pool, if it has one),
        after the transport's own keepalive (a WebSocket ping); what
        L{SessionTimers <txgetty.session.timers.SessionTimers>} runs every
        C{cronPeriod}.
        """
        keepAlive = getattr(self.transport, "keepAlive", None)
        if keepAlive is not None:
            keepAlive()
            if self._state is not OPEN:
                return
        if self._tasks is not None:
            self._toPool([CRON])
            return
        try:
            result = self._listener.onCron(self)
            if isinstance(result, Deferred) or iscoroutine(result):
                ensureDeferred(result).addErrback(self._lateHandlerFailure, "onCron")
        except Exception:
            self._handlerFailed(Failure(), "onCron")

    def _describePartial(self) -> str:
        """
        @return: how much of the incomplete packet in the buffer arrived,
            for the packet timeout's message.
        """
        need = f"{self._need}" if self._need else "an unknown number of"
        return f"{len(self._buf)} of {need} bytes"

    def _handlerFailed(self, failure: Failure, callback: str) -> None:
        """
        A handler raised: log it (once), tell C{onError}; close unless the
        policy says continue.

        @param failure: the handler's failure.
        @param callback: the listener method that failed (C{"onMessage"},
            C{"onCron"}).
        """
        self.handlerErrors += 1
        if self._state is not OPEN:
            logSessionFailure(self, failure, "the session was already closing", callback)
            if self._cfg.handlerErrorPolicy == "continue":
                self._callListener("onError", failure)
        elif self._cfg.handlerErrorPolicy == "continue":
            logSessionFailure(self, failure, 'the session goes on (handlerErrorPolicy "continue")', callback)
            self._callListener("onError", failure)
        else:
            self._fire("error", failure, callback)

    def _lateHandlerFailure(self, failure: Failure, callback: str = "onMessage") -> None:
        """
        An asynchronous handler (or one in the task pool) failed: report it
        like a synchronous one while the session is open, only log it once
        the session is closing.

        @param failure: the handler's failure.
        @param callback: the listener method that failed.
        """
        if self._state is OPEN:
            self._handlerFailed(failure, callback)
        else:
            # A write after the session closed is routine: the peer left
            # while its request was being handled.
            logSessionFailure(self, failure, "it finished after the session closed; nothing more happens",
                              callback, routine=True if failure.check(SessionClosedError) else None)

    #: The life cycle: C{(state, event) -> (next state, action)}.  Every pair
    #: not listed keeps the state and does nothing (an idempotent close, a late
    #: onOpen result after the connection is gone, ...).
    TRANSITIONS = Table([
        (NEW, "connect", OPENING, _doConfigure),
        (NEW, "connectTLS", HANDSHAKING, _doConfigure),
        (NEW, "close", DEAD, _doGone),
        (NEW, "lost", DEAD, _doGone),
        (HANDSHAKING, "refuse", ABORTING, _doRefuse),
        (HANDSHAKING, "handshake", OPENING, _doOpen),
        (HANDSHAKING, "close", ABORTING, _doAbort),
        (HANDSHAKING, "openTimeout", ABORTING, _doOpenTimeout),
        (HANDSHAKING, "lost", DEAD, _doHandshakeFailed),
        (OPENING, "refuse", ABORTING, _doRefuse),
        (OPENING, "openOk", OPEN, _doStart),
        (OPENING, "openFail", ABORTING, _doOpenFailed),
        (OPENING, "close", OPENING_CLOSE, _doLoseConnection),
        (OPENING, "openTimeout", ABORTING, _doOpenTimeout),
        (OPENING, "error", ABORTING, _doOpenFailed),
        (OPENING, "lost", DEAD, _doCancelOpen),
        (OPENING_CLOSE, "openOk", CLOSING, _doOpenedClosing),
        (OPENING_CLOSE, "openFail", ABORTING, _doOpenFailed),
        (OPENING_CLOSE, "lost", DEAD, _doCancelOpen),
        (OPENING_CLOSE, "openTimeout", ABORTING, _doOpenTimeout),
        (OPEN, "close", CLOSING, _doClose),
        (OPEN, "error", ERRORING, _doFail),
        (OPEN, "lost", CLOSED, _doLost),
        (ERRORING, "close", CLOSING, _doLoseConnection),
        (ERRORING, "lost", CLOSED, _doClosed),
        (CLOSING, "lost", CLOSED, _doClosed),
        (ABORTING, "lost", DEAD, _doGone),
    ])
    #: Apply one event of L{EVENTS} to the table (made by it:
    #: C{session._fire(event, *args)}, the arguments go to the action).
    _fire = TRANSITIONS.fire


#: The table of L{LifecycleMixin} (see its C{TRANSITIONS}).
TRANSITIONS = LifecycleMixin.TRANSITIONS
