"""
Tests for the timer wheel (L{txgetty.wheel}) and the session timers it
drives: onCron, read-idle timeout and packet timeout.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import AlreadyCalled, AlreadyCancelled, ConnectionDone
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import ConfigError, PacketTimeoutError, ReadIdleTimeoutError
from txgetty.interfaces import ITimerWheel
from txgetty.testing import RecordingListener, sessionOnStringTransport
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

    def test_badParameters(self) -> None:
        """
        A non-positive tick or no slots is a L{ConfigError}.
        """
        self.assertRaises(ConfigError, TimerWheel, self.clock, 0)
        self.assertRaises(ConfigError, TimerWheel, self.clock, 0.1, 0)


class CronTests(SynchronousTestCase):
    """
    onCron through the wheel.
    """

    def test_periodic(self) -> None:
        """
        onCron runs about every cronPeriod while open, never after onClose.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HelloCodec(), config=SessionConfig(cronPeriod=1.0), clock=clock)
        for _ in range(35):
            clock.advance(0.1)
        self.assertEqual(listener.names().count("cron"), 3)
        session.connectionLost(Failure(ConnectionDone()))
        clock.advance(10)
        self.assertEqual(listener.names()[-1], "close")
        self.assertEqual(listener.names().count("cron"), 3)

    def test_periodicReusesOneCall(self) -> None:
        """
        The cron and idle timers of an open session reuse one wheel call
        each from period to period, so an idle server does not hand the
        garbage collector a new object per session and period.
        """
        clock = Clock()
        listener = RecordingListener()
        config = SessionConfig(cronPeriod=1.0, readIdleTimeout=2.0)
        session, _ = sessionOnStringTransport(listener, HelloCodec(), config=config, clock=clock)
        cron, idle = session._cronCall, session._idleCall
        for _ in range(5):
            clock.advance(0.5)
            session.dataReceived(b"\x00\x00\x00\x00")
        self.assertEqual(listener.names().count("cron"), 2)
        self.assertIs(session._cronCall, cron)
        self.assertIs(session._idleCall, idle)
        self.assertTrue(cron.active() and idle.active())

    def test_periodChange(self) -> None:
        """
        Changing cronPeriod while open reschedules the next onCron.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HelloCodec(), config=SessionConfig(cronPeriod=100.0), clock=clock)
        session.cronPeriod = 1.0
        clock.advance(1.1)
        self.assertEqual(listener.names().count("cron"), 1)

    def test_failingCron(self) -> None:
        """
        An onCron that raises reaches onError and (by default) closes only
        its own session; another session's cron goes on.
        """
        clock = Clock()

        class Bad(RecordingListener):
            def onCron(self, session: Any) -> None:
                super().onCron(session)
                raise RuntimeError("cron broke")

        bad, good = Bad(), RecordingListener()
        config = SessionConfig(cronPeriod=1.0)
        badSession, badTransport = sessionOnStringTransport(bad, HelloCodec(), config=config, clock=clock)
        goodSession, _ = sessionOnStringTransport(good, HelloCodec(), config=config, clock=clock)
        for _ in range(25):
            clock.advance(0.1)
        self.assertTrue(badTransport.disconnecting)
        self.assertTrue(bad.errors[0].check(RuntimeError))
        self.assertEqual(good.names().count("cron"), 2)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class TimeoutTests(SynchronousTestCase):
    """
    Read-idle and packet timeouts.
    """

    def test_readIdle(self) -> None:
        """
        A session silent for readIdleTimeout ends with
        L{ReadIdleTimeoutError}; input in time keeps it alive.
        """
        clock = Clock()
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(readIdleTimeout=5.0), clock=clock
        )
        for _ in range(3):
            clock.advance(4)
            session.dataReceived(b"\x00\x00\x00\x00")
        self.assertEqual(listener.errors, [])
        clock.advance(5.2)
        self.assertTrue(listener.errors[0].check(ReadIdleTimeoutError))
        self.assertIn("readIdleTimeout", listener.errors[0].getErrorMessage())
        self.assertTrue(transport.disconnecting)

    def test_readIdleEnabledLater(self) -> None:
        """
        Setting readIdleTimeout on an open session arms it.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HelloCodec(), clock=clock)
        session.readIdleTimeout = 1.0
        clock.advance(1.2)
        self.assertTrue(listener.errors[0].check(ReadIdleTimeoutError))

    def test_slowPacket(self) -> None:
        """
        A peer trickling one byte a second ends with L{PacketTimeoutError}
        after packetTimeout, although it is never idle.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(packetTimeout=10.0, readIdleTimeout=3.0), clock=clock
        )
        stream = b"\x10\x00\x00\x00" + b"s" * 16
        for b in stream[:12]:
            session.dataReceived(bytes([b]))
            clock.advance(1)
        self.assertEqual(listener.messages, [])
        self.assertEqual(len(listener.errors), 1)
        self.assertTrue(listener.errors[0].check(PacketTimeoutError))
        message = listener.errors[0].getErrorMessage()
        self.assertIn("packetTimeout", message)
        self.assertIn("of 20 bytes", message)

    def test_packetsCompletingInTime(self) -> None:
        """
        A steady stream where every packet completes within packetTimeout is
        never cut, even when each read ends inside a packet.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(packetTimeout=2.0), clock=clock
        )
        packet = b"\x04\x00\x00\x00abcd"
        stream = packet * 50
        for i in range(0, len(stream), 5):
            session.dataReceived(stream[i:i + 5])
            clock.advance(0.5)
        self.assertEqual(listener.errors, [])
        self.assertEqual(len(listener.messages), 50)

    def test_packetTimeoutOff(self) -> None:
        """
        packetTimeout 0 lets a packet take forever.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(packetTimeout=0), clock=clock
        )
        session.dataReceived(b"\x10\x00")
        clock.advance(1000)
        self.assertEqual(listener.errors, [])


class AsyncCronTests(SynchronousTestCase):
    """
    onCron returning a coroutine or a Deferred.
    """

    def test_asyncCronRuns(self) -> None:
        """
        An C{async def onCron} runs; its failure is a handler error.
        """
        clock = Clock()

        class Async(RecordingListener):
            async def onCron(self, session: Any) -> None:
                super().onCron(session)
                raise ValueError("async cron broke")

        listener = Async()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(cronPeriod=1.0), clock=clock
        )
        clock.advance(1.1)
        self.assertEqual(listener.names(), ["open", "cron", "error"])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_lateCronFailureLogged(self) -> None:
        """
        A cron Deferred failing after the session closed is logged, and
        onError does not run after onClose.
        """
        from twisted.internet.defer import Deferred

        clock = Clock()
        pending: list[Deferred] = []

        class Slow(RecordingListener):
            def onCron(self, session: Any) -> Deferred:
                super().onCron(session)
                pending.append(Deferred())
                return pending[-1]

        listener = Slow()
        session, _ = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(cronPeriod=1.0, handlerErrorPolicy="continue"),
            clock=clock,
        )
        clock.advance(1.1)
        session.connectionLost(Failure(ConnectionDone()))
        pending[0].errback(ValueError("too late"))
        self.assertEqual(listener.names(), ["open", "cron", "close"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_lateWriteAfterCloseIsRoutine(self) -> None:
        """
        A late handler that fails only because it wrote to the session after
        the peer left is logged at info level as routine, not as an error.
        """
        from twisted.internet.defer import Deferred
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        logged: list = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        clock = Clock()
        pending: list[Deferred] = []

        class Slow(RecordingListener):
            def onCron(self, session: Any) -> Deferred:
                super().onCron(session)
                d: Deferred = Deferred()
                d.addCallback(lambda _: session.writePkg(b"late"))
                pending.append(d)
                return d

        session, _ = sessionOnStringTransport(Slow(), HelloCodec(), config=SessionConfig(cronPeriod=1.0), clock=clock)
        clock.advance(1.1)
        session.connectionLost(Failure(ConnectionDone()))
        pending[0].callback(None)
        [event] = [e for e in logged if e.get("error") == "SessionClosedError"]
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(event["callback"], "onCron")
        self.assertIn("after the session closed", formatEvent(event))
        self.assertNotIn("log_failure", event)
        self.assertEqual(self.flushLoggedErrors(), [])


class CronDriftTests(SynchronousTestCase):
    """
    onCron keeps its period over time.
    """

    def test_noDrift(self) -> None:
        """
        Over 100 periods of 1 s with a 0.1 s wheel, onCron runs 100 times
        (within one): the wheel's rounding does not accumulate.
        """
        clock = Clock()
        listener = RecordingListener()
        sessionOnStringTransport(listener, HelloCodec(), config=SessionConfig(cronPeriod=1.0), clock=clock)
        for _ in range(1000):
            clock.advance(0.1)
        self.assertIn(listener.names().count("cron"), (99, 100))
