"""
The life cycle of a session: its states, the transition table, the actions
of the table, and the timers (cron, read-idle, packet and open timeouts)
driven by the shared wheel.  Mixed into L{txgetty.Session}.

The table, L{TRANSITIONS}, as C{TRANSITIONS.diagram()} draws it (a pair
not listed keeps the state and does nothing: an idempotent close, a late
C{onOpen} result after the connection is gone)::

  NEW
    connect     -> OPENING       _doConfigureAndOpen
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
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterator

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..transports.addresses import formatAddress
from ..errors import (
    FirstPacketTimeoutError,
    OpenTimeoutError,
    PeerIdleError,
    PacketTimeoutError,
    ReadIdleTimeoutError,
    SessionClosedError,
    SessionRefusedError,
    TruncatedPacketError,
)
from .errorlog import ALREADY_LOGGED, logSessionFailure
from ..statemachine import State, Table
from .pooling import CRON
from ..transports.tls import describeHandshakeFailure, isTLSFailure, tlsConnectionOf

_log = Logger()


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
        _backlog: Iterator[Any] | None
        _messages: deque[Any] | None
        _waiters: list[Deferred[Any]]
        _openWait: Deferred[Any] | None
        # An awaited handler's Deferred, or the next turn's delayed call.
        _waiting: Any
        _partialSince: float | None
        _tasks: Any
        _writeCall: Any
        _peerDone: bool
        _cronCall: Any
        _idleCall: Any
        _packetCall: Any
        _openCall: Any
        _abortCall: Any
        _cronPeriod: float
        _openTimeout: float
        _packetTimeout: float
        _readIdleTimeout: float
        _waitTime: float
        _firstPacketTimeout: float
        _firstCall: Any
        _messageMode: bool
        packetsRead: int
        bytesRead: int
        startTime: float

        def _applySocketOptions(self) -> None: ...
        def _drainMessages(self) -> None: ...
        def _flush(self) -> None: ...
        def _handlerFailed(self, failure: Failure, callback: str) -> None: ...
        def _pauseReading(self, why: str) -> None: ...
        def _process(self) -> None: ...
        def _resumeReading(self, why: str) -> None: ...
        def _toPool(self, packets: list[Any]) -> None: ...
        def _unwatchWrites(self) -> None: ...
        def _watchWrites(self) -> None: ...
    else:
        __slots__ = ()

    def _doConfigure(self) -> bool:
        """
        Run the owner's new-session callback and apply socket options.

        @return: C{True} if the session was accepted.
        """
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
            return False
        if self._openTimeout:
            self._openCall = self._wheel.callLater(self._openTimeout, self._openCheck)
        if not 0 < self._openTimeout < self._firstPacketTimeout:
            # The open timer does not come first: watch the first packet
            # from now (else the idle timer does, once open).
            self._armFirstPacket()
        return True

    def _doConfigureAndOpen(self) -> None:
        """
        Configure, then open a plain (non-TLS) session.
        """
        if self._doConfigure():
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
        if isinstance(result, Deferred) or iscoroutine(result):
            d = self._openWait = ensureDeferred(result)
            self._pauseReading("opening")
            d.addCallbacks(lambda _: self._fire("openOk"), lambda f: self._fire("openFail", f, "onOpen"))
        else:
            self._fire("openOk")

    def _doStart(self) -> None:
        """
        The session is open: start cron and timeouts, read what waited.
        """
        if self._openWait is not None:
            self._openWait = None
            self._resumeReading("opening")
        if self._openCall is not None:
            self._openCall.cancel()
            self._openCall = None
        self._owner.sessionOpened(self)
        wheel = self._wheel
        self._cronCall = wheel.callLater(self._cronPeriod, self._cronTick)
        self._scheduleIdle(self._readIdleTimeout or None)
        if self._buf and self._state is OPEN:
            self._process()
        self._drainMessages()
        self._endIfPeerDone()

    # -- the peer's half-close ---------------------------------------------------

    def readConnectionLost(self) -> None:
        """
        The peer finished sending but may still read (a TCP or UNIX
        half-close: C{nc -N}, C{socat} or C{shutdown(SHUT_WR)} once their
        input ends).  Deliver what arrived, let awaited handlers and the task
        pool finish, then close: their replies are flushed, not lost.
        """
        if self._peerDone:
            return
        self._peerDone = True
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
        if not self._peerDone or self._state is not OPEN:
            return
        if self._waiting is not None or (self._tasks is not None and self._tasks.pending):
            return
        if self._buf:
            need = f" of {self._need}" if self._need else ""
            self._fire("error", Failure(TruncatedPacketError(
                f"the peer finished sending in the middle of a packet ({len(self._buf)}{need} bytes received)"
            )))
        else:
            self._fire("close", Failure(ConnectionDone("the peer finished sending")))

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

    def _openCheck(self) -> None:
        """
        openTimeout is over: drop the session if it is still not open.
        """
        self._openCall = None
        self._fire("openTimeout", "the TLS handshake" if self._state is HANDSHAKING else "onOpen")

    def _doOpenTimeout(self, phase: str) -> None:
        """
        The session did not open in time: report it, drop the connection.

        @param phase: what it was waiting for, for the message.
        """
        failure = Failure(OpenTimeoutError(
            f"{self!r} did not open within {self._openTimeout:g} s (waiting for {phase}); "
            f"openTimeout: raise it or set 0 to disable it (--open-timeout for twistd)"
        ))
        self.closeReason = failure
        logSessionFailure(self, failure, "the connection is dropped; the session never opened")
        wait, self._openWait = self._openWait, None
        if wait is not None:
            wait.cancel()
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
        self._flush()
        self._unwatchWrites()
        if self._waitTime:
            self.transport.loseConnection()
            self._abortCall = self._clock.callLater(self._waitTime, self._abortNow)
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
        self._stopTimers()
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
        self._stopTimers()
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
        self._callListener("onClose")
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
        log("txgetty: {why}", why=failure.getErrorMessage(), session=self, peer=formatAddress(self.remoteAddress),
            error="TLSHandshakeError", callback=None)
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
        wait, self._openWait = self._openWait, None
        if wait is not None:
            wait.cancel()
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
        self._stopTimers()
        if self._abortCall is not None:
            self._abortCall.cancel()
            self._abortCall = None
        self._buf = bytearray()
        self._backlog = None
        waiting = self._waiting
        if waiting is not None and not isinstance(waiting, Deferred) and waiting.active():
            waiting.cancel()  # the next turn of a session that yielded (Session._dispatchTurn)
        self._messages = None
        if self._writeCall is not None:
            if self._writeCall.active():
                self._writeCall.cancel()
            self._writeCall = None
        if self._tasks is not None:
            self._tasks.clear()
        self._owner.sessionGone(self)
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

    # -- timers -------------------------------------------------------------------

    def _stopTimers(self) -> None:
        """
        Cancel the cron and timeout calls.
        """
        for name in ("_cronCall", "_idleCall", "_packetCall", "_openCall", "_firstCall"):
            call = getattr(self, name)
            if call is not None:
                setattr(self, name, None)
                if call.active():
                    call.cancel()

    def _cronTick(self) -> None:
        """
        Call C{onCron} (in the task pool, if the session has one) and
        schedule the next call one period after this one was due, so the
        wheel's rounding does not add up over the periods.
        """
        fired = self._cronCall
        due = fired.getTime() if fired is not None else self._clock.seconds()
        if self._state is not OPEN:
            self._cronCall = None
            return
        keepAlive = getattr(self.transport, "keepAlive", None)
        if keepAlive is not None:
            keepAlive()
            if self._state is not OPEN:
                return
        if self._tasks is not None:
            self._toPool([CRON])
        else:
            try:
                result = self._listener.onCron(self)
                if isinstance(result, Deferred) or iscoroutine(result):
                    ensureDeferred(result).addErrback(self._lateHandlerFailure, "onCron")
            except Exception:
                self._handlerFailed(Failure(), "onCron")
        if self._state is OPEN and self._cronCall is fired:
            now = self._clock.seconds()
            nextDue = due + self._cronPeriod
            if nextDue < now:
                # Fell behind by more than a period: skip, do not catch up.
                nextDue = now + self._cronPeriod
            self._cronCall = self._callAgain(fired, nextDue - now, self._cronTick)

    def _callAgain(self, fired: Any, delay: float, f: Callable[[], None]) -> Any:
        """
        Schedule a periodic timer's next run, reusing the call that just ran
        when the wheel allows it (L{WheelCall.again
        <txgetty.wheel.WheelCall.again>}), so an idle server does not feed
        the garbage collector one new object per session and period.

        @param fired: the call that just ran, or C{None}.
        @param delay: seconds from now.
        @param f: the method to call.
        @return: the scheduled call.
        """
        again = getattr(fired, "again", None)
        if again is None or fired.active():
            return self._wheel.callLater(delay, f)
        again(delay)
        return fired

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

    def _idleCheck(self) -> None:
        """
        Close the session if nothing arrived for C{readIdleTimeout}, or if
        its first packet is overdue (L{_firstPacketDue}: one timer serves
        both, not one more per session).
        """
        fired, self._idleCall = self._idleCall, None
        if self._state is not OPEN:
            return
        now = self._clock.seconds()
        due = self._firstPacketDue()
        if due is not None and now >= due:
            self._firstPacketExpired(now - self.startTime)
            return
        timeout = self._readIdleTimeout
        idle = now - self.lastActive
        if timeout and idle >= timeout and not getattr(self.transport, "idleIsError", True):
            # A UDP peer that goes silent has left: a clean end.
            self._fire("close", Failure(PeerIdleError(
                f"no datagram from {formatAddress(self.remoteAddress)} for {idle:.1f} s "
                f"(readIdleTimeout is {timeout:g} s)"
            )))
        elif timeout and idle >= timeout:
            self._fire("error", Failure(ReadIdleTimeoutError(
                f"no data from the peer for {idle:.1f} s (readIdleTimeout is {timeout:g} s; "
                f"raise it or set 0 to disable it, --read-idle-timeout for twistd)"
            )))
        else:
            self._scheduleIdle(timeout - idle if timeout else None, fired)

    def _scheduleIdle(self, idleDelay: float | None, fired: Any = None) -> None:
        """
        Schedule the idle timer of an open session at the nearer of its
        read-idle deadline and its first-packet deadline, if any.

        @param idleDelay: seconds until the read-idle check, or C{None}.
        @param fired: the timer's call that just ran, to reuse.
        """
        delays = [] if idleDelay is None else [idleDelay]
        due = self._firstPacketDue()
        if due is not None:
            delays.append(max(due - self._clock.seconds(), 0.0))
        if delays:
            self._idleCall = self._callAgain(fired, min(delays), self._idleCheck)

    def _firstPacketDue(self) -> float | None:
        """
        @return: when (clock seconds) the first packet of this stream session
            is due, if it has none yet and the idle timer watches for it
            (the session's own first-packet timer does before it opened, when
            C{openTimeout} does not come first); else C{None}.
        """
        if self._firstPacketTimeout and not self.packetsRead and not self._messageMode and self._firstCall is None:
            return self.startTime + self._firstPacketTimeout
        return None

    def _armFirstPacket(self) -> None:
        """
        Start the C{firstPacketTimeout} timer of a stream session that has
        no packet yet, for what is left of the time since it connected.
        (A message transport's session starts with its handshake or its
        first datagram: no timer.)
        """
        timeout = self._firstPacketTimeout
        if not timeout or self.packetsRead or self._messageMode:
            return
        left = timeout - (self._clock.seconds() - self.startTime)
        self._firstCall = self._wheel.callLater(max(left, 0.0), self._firstPacketCheck)

    def _firstPacketCheck(self) -> None:
        """
        The first-packet timer of a session that was not yet open ran out:
        close the session unless a packet arrived (the check is here, not on
        the path of every packet).
        """
        self._firstCall = None
        timeout = self._firstPacketTimeout
        if self.packetsRead or not timeout or self._state.closed:
            return
        elapsed = self._clock.seconds() - self.startTime
        if elapsed < timeout:
            self._armFirstPacket()
        else:
            self._firstPacketExpired(elapsed)

    def _firstPacketExpired(self, elapsed: float) -> None:
        """
        No complete packet within C{firstPacketTimeout}: open, onError then
        close; not open yet (TLS handshake, C{onOpen}), drop.

        @param elapsed: seconds since the connection was accepted.
        """
        self._fire("error" if self._state is OPEN else "close", Failure(FirstPacketTimeoutError(
            f"no complete packet within {elapsed:.1f} s of connecting ({self.bytesRead} bytes received); "
            f"firstPacketTimeout is {self._firstPacketTimeout:g} s: raise it or set 0 to disable it "
            f"(--first-packet-timeout for twistd)"
        )))

    def _packetCheck(self) -> None:
        """
        Close the session if a packet has been incomplete for too long.
        """
        self._packetCall = None
        timeout = self._packetTimeout
        since = self._partialSince
        if self._state is not OPEN or not timeout or since is None:
            return
        elapsed = self._clock.seconds() - since
        if elapsed >= timeout:
            need = f"{self._need}" if self._need else "an unknown number of"
            self._fire("error", Failure(PacketTimeoutError(
                f"a packet has been arriving for {elapsed:.1f} s and is still incomplete "
                f"({len(self._buf)} of {need} bytes); packetTimeout is {timeout:g} s: "
                f"raise it or set 0 to disable it (--packet-timeout for twistd)"
            )))
        else:
            self._packetCall = self._wheel.callLater(timeout - elapsed, self._packetCheck)

    #: The life cycle: C{(state, event) -> (next state, action)}.  Every pair
    #: not listed keeps the state and does nothing (an idempotent close, a late
    #: onOpen result after the connection is gone, ...).
    TRANSITIONS = Table([
        (NEW, "connect", OPENING, _doConfigureAndOpen),
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
