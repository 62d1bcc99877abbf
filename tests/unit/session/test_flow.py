"""
Unit tests for flow control (L{txgetty.session.flow}): writability with high and
low water marks, the outbound cap, read pausing, and the task-pool backlog,
with in-memory sessions on a fake clock and a task pool whose "workers" run
in the test's own thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.errors import ConfigError, OutboundOverflowError, TaskPoolError, WriteTimeoutError
from txgetty.handlers import EchoListener
from txgetty.taskpool import RUNNING, TaskPool
from txgetty.testing import RecordingListener, connectedSessions, sessionOnStringTransport

from ...support.logs import assertLoggedOnce, captureEvents, failureEvents
from ...support.pools import HandPool


class WritabilityRecorder(RecordingListener):
    """
    Records writability changes too.
    """

    def onWritabilityChanged(self, session: Any) -> None:
        self.events.append(("writable", session, session.isWritable()))


class WritabilityTests(SynchronousTestCase):
    """
    isWritable(), onWritabilityChanged and pausing reads while unwritable.
    """

    def pair(self, **config: Any) -> Any:
        """
        @return: a connected pair whose server side records writability.
        """
        config.setdefault("writeHighMark", 1000)
        config.setdefault("writeLowMark", 500)
        return connectedSessions(
            WritabilityRecorder(), RecordingListener(), HelloCodec(), config=SessionConfig(**config)
        )

    def test_highAndLowMarks(self) -> None:
        """
        Writing past writeHighMark makes the session unwritable (listener
        told, reading paused); once the peer took the bytes it is writable
        again and reading resumes.
        """
        pair = self.pair()
        server = pair.server
        pair.clientTransport.pauseProducing()
        server.writePkg(b"x" * 600)
        self.assertTrue(server.isWritable())
        server.writePkg(b"x" * 600)
        self.assertFalse(server.isWritable())
        self.assertEqual(pair.serverListener.events[-1][::2], ("writable", False))
        self.assertTrue(pair.serverTransport.paused)
        pair.clientTransport.resumeProducing()
        pair.pump()
        self.assertTrue(server.isWritable())
        self.assertEqual(pair.serverListener.events[-1][::2], ("writable", True))
        self.assertFalse(pair.serverTransport.paused)

    def test_lowMarkChecked(self) -> None:
        """
        While unwritable, the session checks on the wheel whether the bytes
        waiting went under writeLowMark (even if they never drain fully).
        """
        pair = self.pair()
        server = pair.server
        pair.clientTransport.pauseProducing()
        server.writeBytes(b"x" * 1200)
        self.assertFalse(server.isWritable())
        pair.serverTransport.outgoing[:] = [b"x" * 400]
        pair.clock.advance(0.2)
        self.assertTrue(server.isWritable())

    def test_noReadPauseWhenDisabled(self) -> None:
        """
        With pauseReadingWhenUnwritable False, reading goes on.
        """
        pair = self.pair(pauseReadingWhenUnwritable=False)
        pair.clientTransport.pauseProducing()
        pair.server.writeBytes(b"x" * 1200)
        self.assertFalse(pair.server.isWritable())
        self.assertFalse(pair.serverTransport.paused)

    def test_overflowCloses(self) -> None:
        """
        Past maxPendingBytes the session ends with L{OutboundOverflowError}
        naming the setting; the peer's reading is not needed for that.
        """
        pair = self.pair(maxPendingBytes=5000)
        pair.clientTransport.pauseProducing()
        for _ in range(6):
            pair.server.writeBytes(b"x" * 1000)
        failure = pair.serverListener.errors[0]
        self.assertTrue(failure.check(OutboundOverflowError))
        self.assertIn("maxPendingBytes", failure.getErrorMessage())
        self.assertTrue(pair.server.isClosed)

    def test_echoAgainstNonReader(self) -> None:
        """
        An echo server whose peer never reads stops reading that peer once
        its replies pile up: the bytes waiting stay near writeHighMark, the
        session is not closed.
        """
        pair = connectedSessions(EchoListener(), RecordingListener(), HelloCodec(),
                                 config=SessionConfig(writeHighMark=4096, writeLowMark=1024))
        pair.clientTransport.pauseProducing()
        for _ in range(200):
            pair.client.writePkg(b"y" * 100)
            pair.pump()
        self.assertTrue(pair.serverTransport.paused)
        self.assertLess(pair.server.pendingBytes, 4096 + 1000)
        self.assertFalse(pair.server.isClosed)
        pair.clientTransport.resumeProducing()
        pair.pump()
        self.assertEqual(len(pair.clientListener.messages), 200)

    def test_markOrder(self) -> None:
        """
        Low marks may not exceed high marks, in a config or on a session;
        the message says which to change first.
        """
        self.assertRaises(ConfigError, SessionConfig, writeLowMark=10, writeHighMark=5)
        self.assertRaises(ConfigError, SessionConfig, backlogLowMark=10, backlogHighMark=5)
        self.assertRaises(ConfigError, SessionConfig, writeHighMark=10, maxPendingBytes=5)
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
        with self.assertRaises(ConfigError) as ctx:
            session.writeHighMark = 10
        self.assertIn("lower writeLowMark first", str(ctx.exception))


class UserPauseTests(SynchronousTestCase):
    """
    pauseReading() and resumeReading().
    """

    def test_reasonsAddUp(self) -> None:
        """
        A user pause holds until resumeReading, even when another reason to
        pause ends meanwhile.
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec(),
                                 config=SessionConfig(writeHighMark=100, writeLowMark=0))
        server = pair.server
        server.pauseReading()
        pair.clientTransport.pauseProducing()
        server.writePkg(b"z" * 200)
        pair.clientTransport.resumeProducing()
        pair.pump()
        self.assertTrue(server.isWritable())
        self.assertTrue(pair.serverTransport.paused)
        server.resumeReading()
        self.assertFalse(pair.serverTransport.paused)


class BacklogTests(SynchronousTestCase):
    """
    Task-pool delivery and the inbound backlog, driven by hand.
    """

    def setUp(self) -> None:
        RUNNING.pools += 1
        self.addCleanup(setattr, RUNNING, "pools", RUNNING.pools - 1)

    def serve(self, pool: TaskPool, listener: Any = None, **config: Any) -> Any:
        """
        @return: a session on a string transport using C{pool}.
        """
        session, transport = sessionOnStringTransport(
            listener or EchoListener(), HelloCodec(), config=SessionConfig(**config)
        )
        session.taskPool = pool
        return session, transport

    def test_writesGoThroughOutbox(self) -> None:
        """
        Packets go to the pool, not to the handler at once; the handler's
        writes reach the transport when its batch is done, counted then.
        """
        pool = HandPool()
        session, transport = self.serve(pool)
        session.dataReceived(b"\x01\x00\x00\x00a\x01\x00\x00\x00b")
        self.assertEqual(transport.value(), b"")
        self.assertEqual(session.taskBacklog, 2)
        pool.runAll()
        self.assertEqual(transport.value(), b"\x01\x00\x00\x00a\x01\x00\x00\x00b")
        self.assertEqual((session.packetsWritten, session.taskBacklog, pool.pending), (2, 0, 0))

    def test_backlogPausesAndResumes(self) -> None:
        """
        More than backlogHighMark packets waiting pause reading; it resumes
        once the backlog is back at backlogLowMark.
        """
        pool = HandPool()
        session, transport = self.serve(pool, backlogHighMark=4, backlogLowMark=2)
        session.dataReceived(b"\x01\x00\x00\x00a" * 5)
        self.assertEqual(transport.producerState, "paused")
        pool.runAll()
        self.assertEqual(transport.producerState, "producing")

    def test_orderedOneTaskPerSession(self) -> None:
        """
        In ordered mode a session has at most one task queued; packets that
        arrive meanwhile join its inbox and run in order.
        """
        seen: list[bytes] = []

        class Recorder(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                seen.append(pkg)

        pool = HandPool()
        session, _ = self.serve(pool, Recorder())
        session.dataReceived(b"\x01\x00\x00\x001")
        session.dataReceived(b"\x01\x00\x00\x002")
        self.assertEqual(len(pool.tasks), 1)
        pool.runAll()
        self.assertEqual(seen, [b"1", b"2"])

    def test_unorderedOneTaskPerPacket(self) -> None:
        """
        In unordered mode every packet is a task.
        """
        pool = HandPool(ordered=False)
        session, transport = self.serve(pool)
        session.dataReceived(b"\x01\x00\x00\x00a\x01\x00\x00\x00b")
        self.assertEqual(len(pool.tasks), 2)
        pool.runOne()
        self.assertEqual(transport.value(), b"\x01\x00\x00\x00a")

    def test_handlerErrorInPool(self) -> None:
        """
        A handler raising in the pool reaches onError in the reactor thread
        and closes the session (default policy); queued packets are dropped.
        The exception is logged once, at error level, with its traceback.
        """
        events = captureEvents(self)

        class Raising(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                raise ValueError("in a worker")

        listener = Raising()
        pool = HandPool()
        session, transport = self.serve(pool, listener)
        session.dataReceived(b"\x01\x00\x00\x00a\x01\x00\x00\x00b")
        pool.runAll()
        self.assertEqual(listener.names(), ["open", "message", "error"])
        self.assertTrue(transport.disconnecting)
        self.assertEqual((session.taskBacklog, pool.pending), (0, 0))
        assertLoggedOnce(self, events, ValueError, callback="onMessage", session=session)

    def test_poolNotRunning(self) -> None:
        """
        A pool that is not running refuses packets: onError gets a
        L{TaskPoolError} saying so, logged once at error level (a mistake
        in the application's set-up, not a routine end).
        """
        events = captureEvents(self)
        pool = HandPool()
        pool.running = False
        listener = RecordingListener()
        session, _ = self.serve(pool, listener)
        session.dataReceived(b"\x01\x00\x00\x00a")
        self.assertTrue(listener.errors[0].check(TaskPoolError))
        self.assertIn("not running", listener.errors[0].getErrorMessage())
        [event] = failureEvents(events, TaskPoolError)
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertEqual(len(self.flushLoggedErrors(TaskPoolError)), 1)

    def test_cronInPool(self) -> None:
        """
        With a pool, onCron runs in the session's turn in the pool.
        """
        clock = Clock()
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HelloCodec(), config=SessionConfig(cronPeriod=1.0),
                                              clock=clock)
        pool = HandPool()
        session.taskPool = pool
        clock.advance(1.1)
        self.assertEqual(listener.names(), ["open"])
        pool.runAll()
        self.assertEqual(listener.names(), ["open", "cron"])

    def test_closeFromWorker(self) -> None:
        """
        close() from a handler in the pool happens when its batch ends.
        """

        class Closer(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                session.writePkg(b"bye")
                self.result = session.close("done")

        listener = Closer()
        pool = HandPool()
        session, transport = self.serve(pool, listener)
        session.dataReceived(b"\x01\x00\x00\x00a")
        pool.runAll()
        self.assertIsNone(listener.result)
        self.assertEqual(transport.value(), b"\x03\x00\x00\x00bye")
        self.assertTrue(transport.disconnecting)

    def test_badPool(self) -> None:
        """
        session.taskPool takes a task pool or None.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec())
        self.assertRaises(ConfigError, setattr, session, "taskPool", object())

    def test_handlerErrorUnordered(self) -> None:
        """
        In unordered mode too, a raising handler reaches onError and closes
        its session; the other packets' tasks then run nothing.  Logged
        once.
        """
        events = captureEvents(self)

        class Raising(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                raise ValueError("unordered")

        listener = Raising()
        pool = HandPool(ordered=False)
        session, transport = self.serve(pool, listener)
        session.dataReceived(b"\x01\x00\x00\x00a\x01\x00\x00\x00b")
        pool.runAll()
        self.assertEqual(listener.names(), ["open", "message", "error"])
        self.assertTrue(listener.errors[0].check(ValueError))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(pool.pending, 0)
        assertLoggedOnce(self, events, ValueError, callback="onMessage")


class WriteTimeoutTests(SynchronousTestCase):
    """
    A session unwritable for writeTimeout seconds, the peer taking none of
    the bytes waiting, is closed with WriteTimeoutError.
    """

    def pair(self, **config: Any) -> Any:
        """
        @return: connected sessions whose client end will not be pumped.
        """
        return connectedSessions(RecordingListener(), RecordingListener(), HelloCodec(),
                                 config=SessionConfig(readIdleTimeout=0, firstPacketTimeout=0, **config))

    def test_nonReadingPeerClosed(self) -> None:
        """
        70 KiB waiting (above writeHighMark) and nothing taken for 60 s:
        onError gets a WriteTimeoutError saying what, why and which setting;
        the session closes.
        """
        pair = self.pair()
        pair.server.writePkg(b"x" * 70_000)
        self.assertFalse(pair.server.isWritable())
        pair.clock.advance(59.8)
        self.assertEqual(pair.server.state, "OPEN")
        pair.clock.advance(0.4)
        (error,) = pair.serverListener.errors
        self.assertTrue(error.check(WriteTimeoutError))
        message = error.getErrorMessage()
        for words in ("the peer took none of the 70004 bytes", "it does not read",
                      "writeTimeout is 60 s", "--write-timeout"):
            self.assertIn(words, message)
        self.assertTrue(pair.server.isClosed)

    def test_slowReaderKept(self) -> None:
        """
        A peer that takes a little every 30 s is not timed out, however long
        it stays unwritable.
        """
        pair = self.pair()
        pair.server.writePkg(b"x" * 200_000)
        outgoing = pair.serverTransport.outgoing
        for _ in range(10):
            pair.clock.advance(30)
            outgoing[0] = outgoing[0][1000:]
        self.assertEqual((pair.server.state, pair.server.isWritable()), ("OPEN", False))
        for _ in range(61):
            pair.clock.advance(1)
        self.assertTrue(pair.server.closeReason.check(WriteTimeoutError))

    def test_offAndWritableAgain(self) -> None:
        """
        writeTimeout 0 never closes; a session that became writable again
        starts a new count the next time.
        """
        pair = self.pair(writeTimeout=0)
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(1000)
        self.assertEqual(pair.server.state, "OPEN")
        pair = self.pair(writeTimeout=10)
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(8)
        pair.pump()
        self.assertTrue(pair.server.isWritable())
        pair.server.writePkg(b"x" * 70_000)
        pair.clock.advance(8)
        self.assertEqual(pair.server.state, "OPEN")
        pair.clock.advance(2.2)
        self.assertTrue(pair.server.closeReason.check(WriteTimeoutError))
