"""
Unit tests for L{txgetty.session.watermarks}: the write side's state of a
session, alone and as a session on a L{StringTransport} keeps it.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.session.watermarks import WriteMarks
from txgetty.testing import RecordingListener, sessionOnStringTransport


class WriteMarksTests(SynchronousTestCase):
    """
    L{WriteMarks} starts writable and watched, and cancels its check.
    """

    def test_initial(self) -> None:
        """
        A new L{WriteMarks} is writable, watched (not polled), with no check
        due.
        """
        marks = WriteMarks()
        self.assertTrue(marks.writable)
        self.assertFalse(marks.poll)
        self.assertIsNone(marks.check)

    def test_stopChecking(self) -> None:
        """
        L{WriteMarks.stopChecking} cancels a due check and forgets it.
        """
        clock = Clock()
        marks = WriteMarks()
        marks.check = clock.callLater(1, lambda: None)
        call = marks.check
        marks.stopChecking()
        self.assertFalse(call.active())
        self.assertIsNone(marks.check)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopCheckingCalled(self) -> None:
        """
        A check that already ran is only forgotten (no error cancelling it).
        """
        clock = Clock()
        marks = WriteMarks()
        marks.check = clock.callLater(1, lambda: None)
        clock.advance(1)
        marks.stopChecking()
        self.assertIsNone(marks.check)

    def test_sessionFollowsMarks(self) -> None:
        """
        A session's C{isWritable()} follows the write watch it registered
        on its transport (the buffer passed its size: unwritable), and an
        unwritable session whose bytes are under C{writeLowMark} is writable
        again at the next wheel tick.
        """
        clock = Clock()
        session, transport = sessionOnStringTransport(
            RecordingListener(), HelloCodec(), clock=clock, config=SessionConfig(writeHighMark=10, writeLowMark=0)
        )
        self.assertTrue(session.isWritable())
        transport.producer.pauseProducing()  # what Twisted does past bufferSize
        self.assertFalse(session.isWritable())
        clock.advance(0.1)
        self.assertTrue(session.isWritable())
