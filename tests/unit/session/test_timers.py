"""
Tests for the session timers (L{txgetty.session.timers.SessionTimers}) on
the timer wheel: onCron, read-idle, packet, open and first-packet timeouts,
when they start, and the shared settings they read.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import FirstPacketTimeoutError, PacketTimeoutError, ReadIdleTimeoutError
from txgetty.session import Session
from txgetty.testing import RecordingListener, _Configure, sessionOnStringTransport
from txgetty.wheel import TimerWheel

from ...support.net import helloFrame as hello


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
        clock.advance(0.1)  # the timers start at the wheel's first tick after open
        timers = session._timers
        cron, idle = timers._cron, timers._idle
        for _ in range(5):
            clock.advance(0.5)
            session.dataReceived(b"\x00\x00\x00\x00")
        self.assertEqual(listener.names().count("cron"), 2)
        self.assertIs(timers._cron, cron)
        self.assertIs(timers._idle, idle)
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


class FirstPacketTimeoutTests(SynchronousTestCase):
    """
    A stream session without a complete packet firstPacketTimeout seconds
    after its connection was accepted is closed with
    FirstPacketTimeoutError.
    """

    def session(self, clock: Clock, **config: Any) -> tuple[Session, StringTransport, RecordingListener]:
        """
        @return: a server-role session on a string transport.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(**config), clock=clock, role="server"
        )
        return session, transport, listener

    def test_silentConnectionClosed(self) -> None:
        """
        Nothing, or only part of a packet, within 60 s: closed, onError saw
        a FirstPacketTimeoutError naming the setting and the twistd option.
        """
        for first in (b"", b"\x05\x00"):
            clock = Clock()
            session, transport, listener = self.session(clock, packetTimeout=0)
            session.dataReceived(first)
            clock.advance(59.9)
            self.assertEqual(session.state, "OPEN")
            clock.advance(0.2)
            self.assertTrue(session.isClosed)
            self.assertTrue(transport.disconnecting)
            (error,) = listener.errors
            self.assertTrue(error.check(FirstPacketTimeoutError))
            message = error.getErrorMessage()
            self.assertIn("firstPacketTimeout is 60 s", message)
            self.assertIn("--first-packet-timeout", message)
            self.assertIn(f"({len(first)} bytes received)", message)

    def test_packetInTime(self) -> None:
        """
        One complete packet before the deadline and the timer does nothing;
        the session then lives until readIdleTimeout.
        """
        clock = Clock()
        session, transport, listener = self.session(clock)
        clock.advance(59)
        session.dataReceived(hello(b"hi"))
        clock.advance(100)
        self.assertEqual((session.state, listener.errors), ("OPEN", []))
        clock.advance(200)
        self.assertTrue(listener.errors[0].check(ReadIdleTimeoutError))

    def test_countsFromAccept(self) -> None:
        """
        The time counts from the connection's accept (the session's
        startTime), and a new value on an open session applies to the time
        left; 0 turns it off.
        """
        clock = Clock()
        session, transport, listener = self.session(clock)
        clock.advance(20)
        session.firstPacketTimeout = 30
        clock.advance(9.9)
        self.assertEqual(session.state, "OPEN")
        clock.advance(0.2)
        self.assertTrue(listener.errors[0].check(FirstPacketTimeoutError))
        clock = Clock()
        session, transport, listener = self.session(clock)
        session.firstPacketTimeout = 0
        clock.advance(1000)
        self.assertEqual((session.isClosed, listener.errors[0].check(ReadIdleTimeoutError)),
                         (True, ReadIdleTimeoutError))

    def test_beforeOpen(self) -> None:
        """
        A session whose onOpen never finishes (openTimeout off) is dropped
        at the deadline too, without onClose.
        """

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred:
                super().onOpen(session)
                return Deferred()

        clock = Clock()
        listener = Slow()
        session, transport = sessionOnStringTransport(
            listener, HelloCodec(), config=SessionConfig(openTimeout=0), clock=clock, role="server"
        )
        clock.advance(60.1)
        self.assertTrue(session.closeReason.check(FirstPacketTimeoutError))
        self.assertTrue(transport.disconnecting)

    def test_withoutOpenTimeoutOrIdleTimeout(self) -> None:
        """
        The limit holds whichever other timers are off: without openTimeout
        (the session's own first-packet timer runs from accept) and without
        readIdleTimeout (the idle timer watches the first packet alone, and
        closes nothing once a packet came).
        """
        for config in (dict(openTimeout=0), dict(readIdleTimeout=0), dict(openTimeout=0, readIdleTimeout=0)):
            clock = Clock()
            session, transport, listener = self.session(clock, **config)
            clock.advance(59.9)
            self.assertEqual(session.state, "OPEN", config)
            clock.advance(0.2)
            self.assertTrue(listener.errors[0].check(FirstPacketTimeoutError), config)
        clock = Clock()
        session, transport, listener = self.session(clock, readIdleTimeout=0)
        session.dataReceived(hello(b"hi"))
        clock.advance(1000)
        self.assertEqual((session.state, listener.errors), ("OPEN", []))

    def test_notOnClientsNorMessageTransports(self) -> None:
        """
        A client's session, and a session on a message transport (its
        handshake or datagram came first), have no such timer.
        """
        clock = Clock()
        session, transport = sessionOnStringTransport(RecordingListener(), HelloCodec(), clock=clock)
        clock.advance(1000)
        self.assertEqual(session.state, "OPEN")

        class MessageTransport(StringTransport):
            messages = True

        session = Session(clock=clock, wheel=TimerWheel(clock), config=SessionConfig(readIdleTimeout=0),
                          owner=_Configure(RecordingListener(), HelloCodec(), role="server"))
        session.makeConnection(MessageTransport())
        clock.advance(1000)
        self.assertEqual((session.state, session.firstPacketTimeout), ("OPEN", 60.0))


class TimerStartTests(SynchronousTestCase):
    """
    When L{txgetty.session.timers.SessionTimers} starts a session's cron,
    idle and open timers.
    """

    def test_shortSessionHasNoTimers(self) -> None:
        """
        A session that opens and closes between two ticks of the wheel never
        puts a call on it, and leaves nothing scheduled.
        """
        clock = Clock()
        config = SessionConfig(cronPeriod=1.0, readIdleTimeout=5.0)
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(), config=config, clock=clock)
        wheel = session._wheel
        self.assertEqual(len(wheel), 0)
        session.connectionLost()
        self.assertEqual(len(wheel), 0)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_timersDueFromOpen(self) -> None:
        """
        The timers that start at the first tick are due when they would
        have been had they started at open: onCron after one cronPeriod, the
        idle close after readIdleTimeout.
        """
        clock = Clock()
        listener = RecordingListener()
        config = SessionConfig(cronPeriod=1.0, readIdleTimeout=2.5)
        session, _ = sessionOnStringTransport(listener, HelloCodec(), config=config, clock=clock)
        self.assertEqual(len(session._wheel), 0)
        clock.advance(0.15)
        self.assertEqual(len(session._wheel), 2)  # started at the first tick
        clock.advance(0.8)  # 0.95 s
        self.assertNotIn("cron", listener.names())
        clock.advance(0.1)  # 1.05 s
        self.assertEqual(listener.names().count("cron"), 1)
        clock.advance(1.4)  # 2.45 s
        self.assertEqual(listener.names().count("cron"), 2)
        self.assertFalse(session.isClosed)
        clock.advance(0.1)  # 2.55 s
        self.assertTrue(session.isClosed)
        self.assertIn("readIdleTimeout is 2.5 s", session.closeReason.getErrorMessage())

    def test_openTimerOnlyWhileOpening(self) -> None:
        """
        An onOpen that finishes at once needs no open timer; one that does
        not finish gets the session dropped after openTimeout.
        """
        clock = Clock()
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(), clock=clock,
                                              config=SessionConfig(openTimeout=1.0))
        self.assertIsNone(session._timers._open)

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Any:
                return Deferred()

        session, _ = sessionOnStringTransport(Slow(), HelloCodec(), clock=clock, config=SessionConfig(openTimeout=1.0))
        self.assertIsNotNone(session._timers._open)
        clock.advance(0.95)
        self.assertFalse(session.isClosed)
        clock.advance(0.1)
        self.assertTrue(session.isClosed)
        self.assertIn("did not open within 1 s", session.closeReason.getErrorMessage())

    def test_sharedSettingsCopiedOnChange(self) -> None:
        """
        Sessions made from one config share their settings object until one
        changes a setting of its own, which changes only that session.
        """
        config = SessionConfig(cronPeriod=5.0)
        one, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(), config=config)
        two, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(), config=config)
        self.assertIs(one._cfg, two._cfg)
        one.cronPeriod = 1.0
        self.assertIsNot(one._cfg, two._cfg)
        self.assertEqual((one.cronPeriod, two.cronPeriod), (1.0, 5.0))
