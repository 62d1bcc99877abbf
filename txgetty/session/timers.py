"""
The timers of one session, as one object the session owns: C{onCron}, the
read-idle and first-packet timeouts, the packet timeout and the open
timeout, all driven by the shared timer wheel (L{txgetty.wheel}).

The life cycle (L{txgetty.session.lifecycle}) calls the named moments
(L{SessionTimers.armOpen}, L{SessionTimers.opened}, L{SessionTimers.stop},
...), the settings call the C{...Changed} methods, and an expired timer
reports back through the callables the session gave: C{fire} (an event of
the life-cycle table) and C{cronTurn} (one C{onCron}).

The cron and idle timers of a session that opened start at the wheel's
next tick, due when they would have been had they started at open, so a
session that ends before the next tick (a connect, one request, a close)
never puts them on the wheel.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.python.failure import Failure

from ..errors import (
    FirstPacketTimeoutError,
    PacketTimeoutError,
    PeerIdleError,
    ReadIdleTimeoutError,
)
from ..transports.addresses import formatAddress


def _cancel(call: Any) -> None:
    """
    @param call: a wheel call or C{None}; cancelled if still pending.
    """
    if call is not None and call.active():
        call.cancel()


def _gone(*args: Any) -> None:
    """
    What a released L{SessionTimers} calls instead of its session's methods.

    @param args: ignored.
    """


class SessionTimers:
    """
    The wheel calls of one session and when they are due.

    @ivar partialSince: when (clock seconds) the incomplete packet in the
        session's buffer started arriving, or C{None}.
    @ivar messageMode: whether the session is on a message transport (no
        first-packet timeout: it starts with its handshake or its first
        datagram).
    """

    __slots__ = (
        "partialSince", "messageMode", "_session", "_wheel", "_clock", "_fire", "_cronTurn",
        "_describePartial", "_cron", "_idle", "_packet", "_open", "_first", "_openPhase",
        "_isOpen", "_armPending", "_openedAt",
    )

    def __init__(
        self,
        session: Any,
        wheel: Any,
        clock: Any,
        fire: Callable[..., Any],
        cronTurn: Callable[[], None],
        describePartial: Callable[[], str],
    ) -> None:
        """
        @param session: the session (its public settings, C{lastActive},
            C{startTime}, C{packetsRead}, C{bytesRead}, C{isClosed},
            C{transport}, C{remoteAddress}).
        @param wheel: the timer wheel.
        @param clock: the clock.
        @param fire: fires an event of the session's life-cycle table.
        @param cronTurn: runs one C{onCron} of the open session.
        @param describePartial: says how much of the incomplete packet
            arrived (for the packet timeout's message).
        """
        self.partialSince: float | None = None
        self.messageMode = False
        self._session = session
        self._wheel = wheel
        self._clock = clock
        self._fire = fire
        self._cronTurn = cronTurn
        self._describePartial = describePartial
        self._cron = self._idle = self._packet = self._open = self._first = None
        self._openPhase = "onOpen"
        self._isOpen = False
        self._armPending = False
        self._openedAt = 0.0

    def _callAt(self, when: float, f: Callable[[], None]) -> Any:
        """
        @param when: clock seconds.
        @param f: what to call then.
        @return: the wheel call (at the same tick as a C{callLater} made
            earlier for that time, on a wheel that has C{callAt}).
        """
        callAt = getattr(self._wheel, "callAt", None)
        if callAt is not None:
            return callAt(when, f)
        return self._wheel.callLater(max(when - self._clock.seconds(), 0.0), f)

    # -- the life cycle's moments -------------------------------------------------

    def armOpen(self, phase: str) -> None:
        """
        Start the C{openTimeout} timer (once), for what is left of it since
        the connection was accepted.

        @param phase: what the session waits for (C{"the TLS handshake"},
            C{"onOpen"}), for the message.
        """
        self._openPhase = phase
        timeout = self._session.openTimeout
        if timeout and self._open is None:
            self._open = self._callAt(self._session.startTime + timeout, self._openCheck)

    def opened(self) -> None:
        """
        The session is open: stop the open timer; start the cron and idle
        timers at the wheel's next tick.
        """
        self._isOpen = True
        call = self._open
        if call is not None:
            self._open = None
            _cancel(call)
        self._openedAt = self._clock.seconds()
        atNextTick = getattr(self._wheel, "atNextTick", None)
        if atNextTick is None:
            self._armTimers()
        else:
            self._armPending = True
            atNextTick(self._armTimers)

    def stop(self) -> None:
        """
        Cancel every timer (the session closes or is gone).
        """
        self._isOpen = False
        if self._armPending:
            self._armPending = False
            self._wheel.cancelNextTick(self._armTimers)
        if (self._cron is None and self._idle is None and self._packet is None and self._open is None
                and self._first is None):
            return  # (the usual case of a short connection: none armed)
        calls = (self._cron, self._idle, self._packet, self._open, self._first)
        self._cron = self._idle = self._packet = self._open = self._first = None
        for call in calls:
            if call is not None and call.active():
                call.cancel()

    def release(self) -> None:
        """
        The session is gone (after L{stop}): drop the references back to it,
        so that it is freed when the last reference to it goes rather than
        left for the garbage collector (the timers and the session refer to
        each other).  Nothing calls back after this: every timer is
        cancelled, and the settings' C{...Changed} methods find it not open.
        """
        self._session = None
        self._fire = self._cronTurn = _gone
        self._describePartial = str

    def partialPacket(self, since: float) -> None:
        """
        An incomplete packet started arriving at C{since}: start the packet
        timeout if it is on and not running.

        @param since: clock seconds.
        """
        self.partialSince = since
        timeout = self._session.packetTimeout
        if timeout and self._packet is None and self._isOpen:
            self._packet = self._wheel.callLater(timeout, self._packetCheck)

    # -- settings changed ---------------------------------------------------------

    def cronPeriodChanged(self) -> None:
        """
        C{cronPeriod} changed: the next C{onCron} is one new period from now.
        """
        call = self._cron
        if call is not None and call.active():
            call.reset(self._session.cronPeriod)

    def idleTimeoutChanged(self) -> None:
        """
        C{readIdleTimeout} changed: reschedule the idle timer of an open
        session.
        """
        call, self._idle = self._idle, None
        _cancel(call)
        if self._isOpen and not self._armPending:
            self._scheduleIdle(self._session.readIdleTimeout or None)

    def packetTimeoutChanged(self) -> None:
        """
        C{packetTimeout} changed: check the incomplete packet (if any) at
        the next tick against the new value.
        """
        call, self._packet = self._packet, None
        _cancel(call)
        if self._isOpen and self._session.packetTimeout and self.partialSince is not None:
            self._packet = self._wheel.callLater(0, self._packetCheck)

    def firstPacketTimeoutChanged(self, opening: bool) -> None:
        """
        C{firstPacketTimeout} changed: restart the timer that watches the
        first packet.

        @param opening: whether the session is connected and not open yet
            (TLS handshake, C{onOpen}).
        """
        call, self._first = self._first, None
        _cancel(call)
        if self._isOpen and not self._armPending:
            # The idle timer watches the first packet: reschedule it for both.
            idle, self._idle = self._idle, None
            _cancel(idle)
            timeout = self._session.readIdleTimeout
            left = timeout - (self._clock.seconds() - self._session.lastActive) if timeout else None
            self._scheduleIdle(None if left is None else max(left, 0.0))
        elif opening:
            self.armFirstPacket()

    # -- cron ---------------------------------------------------------------------

    def _armTimers(self) -> None:
        """
        The wheel's first tick after open: start the cron and idle timers,
        due when they would have been had they started at open.
        """
        self._armPending = False
        if not self._isOpen:
            return
        session = self._session
        if self._cron is None:
            self._cron = self._callAt(self._openedAt + session.cronPeriod, self._cronTick)
        if self._idle is None:
            timeout = session.readIdleTimeout
            due = session.lastActive + timeout if timeout else None
            first = self._firstPacketDue()
            if first is not None and (due is None or first < due):
                due = first
            if due is not None:
                self._idle = self._callAt(due, self._idleCheck)

    def _cronTick(self) -> None:
        """
        Run one C{onCron} and schedule the next one period after this one
        was due, so the wheel's rounding does not add up over the periods.
        """
        fired = self._cron
        due = fired.getTime() if fired is not None else self._clock.seconds()
        if not self._isOpen:
            self._cron = None
            return
        self._cronTurn()
        if self._isOpen and self._cron is fired:
            now = self._clock.seconds()
            period = self._session.cronPeriod
            nextDue = due + period
            if nextDue < now:
                # Fell behind by more than a period: skip, do not catch up.
                nextDue = now + period
            self._cron = self._callAgain(fired, nextDue - now, self._cronTick)

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

    # -- read-idle and first packet -----------------------------------------------

    def _idleCheck(self) -> None:
        """
        Close the session if nothing arrived for C{readIdleTimeout}, or if
        its first packet is overdue (one timer serves both, not one more
        per session).
        """
        fired, self._idle = self._idle, None
        if not self._isOpen:
            return
        session = self._session
        now = self._clock.seconds()
        due = self._firstPacketDue()
        if due is not None and now >= due:
            self._firstPacketExpired(now - session.startTime)
            return
        timeout = session.readIdleTimeout
        idle = now - session.lastActive
        if timeout and idle >= timeout and not getattr(session.transport, "idleIsError", True):
            # A UDP peer that goes silent has left: a clean end.
            self._fire("close", Failure(PeerIdleError(
                f"no datagram from {formatAddress(session.remoteAddress)} for {idle:.1f} s "
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
        due = self._firstPacketDue()
        if due is not None:
            first = max(due - self._clock.seconds(), 0.0)
            if idleDelay is None or first < idleDelay:
                idleDelay = first
        if idleDelay is not None:
            self._idle = self._callAgain(fired, idleDelay, self._idleCheck)

    def _firstPacketDue(self) -> float | None:
        """
        @return: when (clock seconds) the first packet of this stream session
            is due, if it has none yet and the idle timer watches for it
            (the first-packet timer does before the session opened, when
            C{openTimeout} does not come first); else C{None}.
        """
        session = self._session
        timeout = session.firstPacketTimeout
        if timeout and not session.packetsRead and not self.messageMode and self._first is None:
            return session.startTime + timeout
        return None

    def armFirstPacket(self) -> None:
        """
        Start the C{firstPacketTimeout} timer of a stream session that has
        no packet yet, for what is left of the time since it connected.
        (A message transport's session starts with its handshake or its
        first datagram: no timer.)
        """
        session = self._session
        timeout = session.firstPacketTimeout
        if not timeout or session.packetsRead or self.messageMode:
            return
        self._first = self._callAt(session.startTime + timeout, self._firstPacketCheck)

    def _firstPacketCheck(self) -> None:
        """
        The first-packet timer ran out: close the session unless a packet
        arrived (the check is here, not on the path of every packet).
        """
        self._first = None
        session = self._session
        timeout = session.firstPacketTimeout
        if session.packetsRead or not timeout or session.isClosed:
            return
        elapsed = self._clock.seconds() - session.startTime
        if elapsed < timeout:
            self.armFirstPacket()
        else:
            self._firstPacketExpired(elapsed)

    def _firstPacketExpired(self, elapsed: float) -> None:
        """
        No complete packet within C{firstPacketTimeout}: open, onError then
        close; not open yet (TLS handshake, C{onOpen}), drop.

        @param elapsed: seconds since the connection was accepted.
        """
        session = self._session
        self._fire("error" if self._isOpen else "close", Failure(FirstPacketTimeoutError(
            f"no complete packet within {elapsed:.1f} s of connecting ({session.bytesRead} bytes received); "
            f"firstPacketTimeout is {session.firstPacketTimeout:g} s: raise it or set 0 to disable it "
            f"(--first-packet-timeout for twistd)"
        )))

    # -- packet and open ------------------------------------------------------------

    def _packetCheck(self) -> None:
        """
        Close the session if a packet has been incomplete for too long.
        """
        self._packet = None
        timeout = self._session.packetTimeout
        since = self.partialSince
        if not self._isOpen or not timeout or since is None:
            return
        elapsed = self._clock.seconds() - since
        if elapsed >= timeout:
            self._fire("error", Failure(PacketTimeoutError(
                f"a packet has been arriving for {elapsed:.1f} s and is still incomplete "
                f"({self._describePartial()}); packetTimeout is {timeout:g} s: "
                f"raise it or set 0 to disable it (--packet-timeout for twistd)"
            )))
        else:
            self._packet = self._wheel.callLater(timeout - elapsed, self._packetCheck)

    def _openCheck(self) -> None:
        """
        openTimeout is over: drop the session if it is still not open.
        """
        self._open = None
        self._fire("openTimeout", self._openPhase)
