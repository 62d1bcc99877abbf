"""
A hashed timer wheel: one reactor timer drives the C{onCron} calls and the
timeout checks of every session.

Calls are kept in C{slots} buckets by the tick they are due at; one reactor
C{callLater} per tick (only while calls are pending) runs the buckets whose
time has come.  Scheduling, cancelling and firing cost O(1) each, against
O(log n) reactor heap operations and a L{LoopingCall
<twisted.internet.task.LoopingCall>} per session (see
C{benchmarks/cron_wheel.py} for the measured difference).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from .config import DEFAULT_WHEEL_TICK
from .errors import ConfigError
from .interfaces import ITimerWheel

_log = Logger()


_PENDING, _CALLED, _CANCELLED = "pending", "called", "cancelled"


@implementer(IDelayedCall)
class WheelCall:
    """
    One call scheduled on a L{TimerWheel}.

    What the wheel uses of it (its small protocol with the wheel): C{due}
    (the requested time), C{tickNo} (the tick of the bucket it is in, set
    by the wheel), L{isPending}, L{run}.

    @ivar due: the requested time (clock seconds).
    @ivar tickNo: the wheel tick whose bucket holds the call.
    """

    __slots__ = ("due", "tickNo", "_wheel", "_f", "_args", "_kw", "_state")

    def __init__(
        self, wheel: TimerWheel, due: float, f: Callable[..., Any], args: tuple, kw: dict
    ) -> None:
        """
        @param wheel: the wheel holding the call.
        @param due: the requested time (clock seconds).
        @param f: the callable.
        @param args: its positional arguments.
        @param kw: its keyword arguments.
        """
        self._wheel = wheel
        self.due = due
        self.tickNo = 0
        self._f = f
        self._args = args
        self._kw = kw
        self._state = _PENDING

    def isPending(self) -> bool:
        """
        @return: whether the call is still to run (the wheel's view of
            L{active}).
        """
        return self._state is _PENDING

    def run(self) -> None:
        """
        Run the call now (the wheel took it out of its bucket); what it
        raises goes to the wheel.
        """
        self._state = _CALLED
        self._f(*self._args, **self._kw)

    def getTime(self) -> float:
        """
        @return: the time the call was asked for (it runs at the first tick
            at or after it).
        """
        return self.due

    def active(self) -> bool:
        """
        @return: C{True} until the call runs or is cancelled.
        """
        return self._state is _PENDING

    def cancel(self) -> None:
        """
        Do not run the call.

        @raise AlreadyCalled: it already ran.
        @raise AlreadyCancelled: it was already cancelled.
        """
        self._checkPending()
        self._state = _CANCELLED
        self._wheel.discard(self)

    def reset(self, secondsFromNow: float) -> None:
        """
        Move the call to C{secondsFromNow} seconds from now.

        @param secondsFromNow: the new delay.
        """
        self._checkPending()
        wheel = self._wheel
        wheel.discard(self)
        self.due = wheel.seconds() + secondsFromNow
        wheel.insert(self)

    def again(self, secondsFromNow: float) -> None:
        """
        Run a call that already ran once more, C{secondsFromNow} seconds from
        now, reusing this object.  Periodic callers (a session's C{onCron} and
        idle checks) use it so that thousands of sessions do not hand the
        garbage collector a new long-lived object every period.

        @param secondsFromNow: the delay.
        @raise AlreadyCancelled: the call was cancelled.
        @raise ValueError: the call has not run yet (use L{reset}).
        """
        if self._state is _CANCELLED:
            raise AlreadyCancelled()
        if self._state is _PENDING:
            raise ValueError("again() is for a call that already ran; use reset() on a pending call")
        wheel = self._wheel
        self.due = wheel.seconds() + secondsFromNow
        self._state = _PENDING
        wheel.insert(self)

    def delay(self, secondsLater: float) -> None:
        """
        Move the call C{secondsLater} seconds later.

        @param secondsLater: seconds to add.
        """
        self.reset(self.due - self._wheel.seconds() + secondsLater)

    def _checkPending(self) -> None:
        """
        @raise AlreadyCalled: the call ran.
        @raise AlreadyCancelled: the call was cancelled.
        """
        if self._state is _CALLED:
            raise AlreadyCalled()
        if self._state is _CANCELLED:
            raise AlreadyCancelled()

    def __repr__(self) -> str:
        return f"<WheelCall {self._state} due={self.due:.3f} {self._f!r}>"


@implementer(ITimerWheel)
class TimerWheel:
    """
    A hashed timing wheel on top of an L{IReactorTime <twisted.internet.interfaces.IReactorTime>}.

    @ivar tick: the resolution in seconds: a call runs at the first tick at or
        after its time.
    """

    def __init__(
        self, clock: IReactorTime, tick: float = DEFAULT_WHEEL_TICK, slots: int = 1024
    ) -> None:
        """
        @param clock: the reactor (or a L{Clock <twisted.internet.task.Clock>} in tests).
        @param tick: the resolution in seconds.
        @param slots: the number of buckets; calls further away than
            C{tick * slots} seconds simply wait for more turns of the wheel.
        @raise ConfigError: C{tick} is not positive or C{slots} below 1.
        """
        if isinstance(tick, bool) or not isinstance(tick, (int, float)) or not tick > 0:
            raise ConfigError(f"the wheel tick must be a positive number of seconds, got {tick!r}")
        if not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"the wheel needs at least 1 slot, got {slots!r}")
        self.tick = float(tick)
        self._clock = clock
        self._slots: list[dict[WheelCall, None]] = [{} for _ in range(slots)]
        self._count = 0
        #: Callables to run at the next tick (L{atNextTick}), in order.
        self._nextTick: dict[Callable[[], Any], None] = {}
        self._doneTick = math.floor(clock.seconds() / self.tick)
        self._driver: IDelayedCall | None = None
        self._turning = False

    def seconds(self) -> float:
        """
        @return: the clock's current time.
        """
        return self._clock.seconds()

    def __len__(self) -> int:
        """
        @return: the number of pending calls.
        """
        return self._count

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> WheelCall:
        """
        Schedule C{f(*args, **kw)} for C{delay} seconds from now (rounded up
        to the next tick).

        @param delay: seconds from now.
        @param f: the callable.
        @param args: its positional arguments.
        @param kw: its keyword arguments.
        @return: the L{WheelCall}, which can be cancelled or reset.
        """
        call = WheelCall(self, self._clock.seconds() + delay, f, args, kw)
        self.insert(call)
        return call

    def callAt(self, when: float, f: Callable[..., Any], *args: Any) -> WheelCall:
        """
        Schedule C{f(*args)} at the clock time C{when} (rounded up to the
        next tick), exactly as a L{callLater} made earlier for that time
        would be.

        @param when: clock seconds.
        @param f: the callable.
        @param args: its positional arguments.
        @return: the L{WheelCall}.
        """
        call = WheelCall(self, when, f, args, {})
        self.insert(call)
        return call

    def atNextTick(self, f: Callable[[], Any]) -> None:
        """
        Call C{f()} at the wheel's next tick, before the calls due then
        (once, however often it is asked for until then).  Cheaper than a
        L{callLater} (no call object, no bucket): a session starts its
        timers this way, so that one that ends before the next tick never
        puts any on the wheel.

        @param f: the callable (hashable: a bound method is).
        """
        self._nextTick[f] = None
        if self._driver is None and not self._turning:
            self._schedule()

    def cancelNextTick(self, f: Callable[[], Any]) -> None:
        """
        Do not call C{f} at the next tick after all (no error if it is not
        queued).

        @param f: a callable given to L{atNextTick}.
        """
        if self._nextTick.pop(f, 0) is None and not self._nextTick and not self._count:
            if self._driver is not None:
                self._driver.cancel()
                self._driver = None

    def insert(self, call: WheelCall) -> None:
        """
        Put a call into the bucket of its tick and make sure the wheel turns
        (what a L{WheelCall} asks when it is scheduled again).

        @param call: the call.
        """
        tickNo = max(math.ceil(call.due / self.tick), self._doneTick + 1)
        call.tickNo = tickNo
        slots = self._slots
        slots[tickNo % len(slots)][call] = None
        self._count += 1
        if self._driver is None and not self._turning:
            self._schedule()

    def discard(self, call: WheelCall) -> None:
        """
        Take a pending call out of its bucket (what a L{WheelCall} asks when
        it is cancelled or moved).

        @param call: the call.
        """
        slots = self._slots
        del slots[call.tickNo % len(slots)][call]
        self._count -= 1
        if not self._count and self._driver is not None and not self._nextTick:
            self._driver.cancel()
            self._driver = None

    def _schedule(self) -> None:
        """
        Ask the clock to run L{_turn} at the next tick boundary.
        """
        nextAt = (self._doneTick + 1) * self.tick
        self._driver = self._clock.callLater(max(0.0, nextAt - self._clock.seconds()), self._turn)

    def _turn(self) -> None:
        """
        Run every call due up to now, then schedule the next turn if calls
        remain.
        """
        self._driver = None
        self._turning = True
        first = self._doneTick + 1
        # The driver was set for tick `first`; float rounding must not make
        # the wheel think that tick has not come yet.
        nowTick = max(math.floor(self._clock.seconds() / self.tick), first)
        slots = self._slots
        # A stalled reactor may have skipped many ticks; one pass over all the
        # slots then covers them.
        try:
            if self._nextTick:
                self._doneTick = first - 1
                self._runNextTick()
            for t in range(first, min(nowTick, first + len(slots) - 1) + 1):
                # Calls scheduled by the calls of this slot go to later ticks.
                self._doneTick = t
                self._runSlot(slots[t % len(slots)], nowTick)
        finally:
            self._turning = False
            self._doneTick = nowTick
        if self._count or self._nextTick:
            self._schedule()

    def _runNextTick(self) -> None:
        """
        Run what L{atNextTick} queued (what they queue runs at the tick
        after).
        """
        todo, self._nextTick = self._nextTick, {}
        for f in todo:
            try:
                f()
            except Exception:
                _log.failure("txgetty: a timer-wheel call {function!r} raised", function=f, level=LogLevel.error)

    def _runSlot(self, slot: dict[WheelCall, None], nowTick: int) -> None:
        """
        Run the calls of one bucket that are due by C{nowTick}.

        @param slot: the bucket.
        @param nowTick: the current tick number.
        """
        due = [c for c in slot if c.tickNo <= nowTick]
        for call in due:
            if not call.isPending():
                continue
            del slot[call]
            self._count -= 1
            try:
                call.run()
            except Exception:
                _log.failure("txgetty: a timer-wheel call {function!r} raised", function=call, level=LogLevel.error)
