"""
Unit tests of the timer wheel (L{txgetty.wheel.TimerWheel}) on a fake clock.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.errors import ConfigError
from txgetty.interfaces import ITimerWheel
from txgetty.wheel import TimerWheel


class WheelTests(SynchronousTestCase):
    """
    Tests for L{TimerWheel}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.wheel = TimerWheel(self.clock, tick=0.1, slots=16)
        self.fired: list[Any] = []

    def test_interfaces(self) -> None:
        """
        The wheel is an L{ITimerWheel}; its calls are L{IDelayedCall}s.
        """
        self.assertTrue(verifyObject(ITimerWheel, self.wheel))
        self.assertTrue(verifyObject(IDelayedCall, self.wheel.callLater(1, lambda: None)))

    def test_firesAtTickAfterDue(self) -> None:
        """
        A call runs at the first tick at or after its time, with its
        arguments, and only once.
        """
        call = self.wheel.callLater(0.25, self.fired.append, "x")
        self.clock.advance(0.2)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["x"])
        self.assertFalse(call.active())
        self.clock.advance(5)
        self.assertEqual(self.fired, ["x"])

    def test_manyTurns(self) -> None:
        """
        Calls further away than one turn of the wheel (16 slots x 0.1 s) wait
        for their own turn.
        """
        self.wheel.callLater(5.0, self.fired.append, "late")
        self.wheel.callLater(0.1, self.fired.append, "soon")
        for _ in range(49):
            self.clock.advance(0.1)
        self.assertEqual(self.fired, ["soon"])
        self.clock.advance(0.11)
        self.assertEqual(self.fired, ["soon", "late"])

    def test_cancelAndReset(self) -> None:
        """
        A cancelled call never runs; a reset call runs at its new time;
        cancelling twice or after the call ran raises as Twisted's calls do.
        """
        a = self.wheel.callLater(1, self.fired.append, "a")
        b = self.wheel.callLater(1, self.fired.append, "b")
        a.cancel()
        self.assertRaises(AlreadyCancelled, a.cancel)
        b.reset(3)
        self.clock.advance(2)
        self.assertEqual(self.fired, [])
        b.delay(1)
        self.clock.advance(1.5)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.6)
        self.assertEqual(self.fired, ["b"])
        self.assertRaises(AlreadyCalled, b.cancel)

    def test_idleWheelStopsTicking(self) -> None:
        """
        With no calls pending the wheel leaves no reactor timer behind.
        """
        call = self.wheel.callLater(1, lambda: None)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        call.cancel()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.wheel.callLater(0.1, lambda: None)
        self.clock.advance(0.2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stallCatchUp(self) -> None:
        """
        After the reactor stalled for longer than a turn, every due call runs
        at the next tick.
        """
        for i in range(10):
            self.wheel.callLater(0.1 * (i + 1), self.fired.append, i)
        self.clock.advance(100)
        self.assertEqual(sorted(self.fired), list(range(10)))

    def test_raisingCallLogged(self) -> None:
        """
        A call that raises is logged and the calls after it still run.
        """

        def boom() -> None:
            raise ValueError("boom")

        self.wheel.callLater(0.1, boom)
        self.wheel.callLater(0.1, self.fired.append, "after")
        self.clock.advance(0.2)
        self.assertEqual(self.fired, ["after"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_scheduleFromCall(self) -> None:
        """
        A call may schedule another; it runs at a later tick, not in the turn
        that scheduled it.
        """

        def again() -> None:
            self.fired.append(self.clock.seconds())
            if len(self.fired) < 3:
                self.wheel.callLater(0, again)

        self.wheel.callLater(0, again)
        for _ in range(5):
            self.clock.advance(0.1)
        self.assertEqual(len(self.fired), 3)
        self.assertEqual(len(set(self.fired)), 3)

    def test_again(self) -> None:
        """
        L{WheelCall.again} runs a call that already ran once more, as the
        same object; it refuses a pending call (that is what C{reset} is
        for) and a cancelled one.
        """
        call = self.wheel.callLater(0.1, self.fired.append, "x")
        self.assertRaises(ValueError, call.again, 1)
        self.clock.advance(0.1)
        call.again(0.3)
        self.assertTrue(call.active())
        self.clock.advance(0.2)
        self.assertEqual(self.fired, ["x"])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["x", "x"])
        self.assertEqual(len(self.wheel), 0)
        call.again(1)
        call.cancel()
        self.assertRaises(AlreadyCancelled, call.again, 1)
        self.clock.advance(2)
        self.assertEqual(self.fired, ["x", "x"])

    def test_callAt(self) -> None:
        """
        C{callAt(when, f)} runs at the first tick at or after the absolute
        time C{when}, the same tick a C{callLater} for that time gets.
        """
        self.clock.advance(0.25)
        call = self.wheel.callAt(0.45, self.fired.append, "at")
        self.assertEqual(call.getTime(), 0.45)
        self.clock.advance(0.2)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["at"])

    def test_atNextTick(self) -> None:
        """
        C{atNextTick(f)} calls C{f} once at the next tick (however often it
        was asked for), before the calls due at that tick, and keeps no
        driver once nothing else is pending.
        """
        self.wheel.callLater(0.05, self.fired.append, "due")
        f = lambda: self.fired.append("next")  # noqa: E731
        self.wheel.atNextTick(f)
        self.wheel.atNextTick(f)
        self.clock.advance(0.1)
        self.assertEqual(self.fired, ["next", "due"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancelNextTick(self) -> None:
        """
        C{cancelNextTick(f)} takes C{f} back; with nothing else pending the
        wheel stops its driver; an unknown callable is no error.
        """
        f = lambda: self.fired.append("next")  # noqa: E731
        self.wheel.atNextTick(f)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.wheel.cancelNextTick(f)
        self.wheel.cancelNextTick(f)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1)
        self.assertEqual(self.fired, [])

    def test_badParameters(self) -> None:
        """
        A non-positive tick or no slots is a L{ConfigError}.
        """
        self.assertRaises(ConfigError, TimerWheel, self.clock, 0)
        self.assertRaises(ConfigError, TimerWheel, self.clock, 0.1, 0)
