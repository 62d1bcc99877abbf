"""
Unit tests for L{txgetty.session.readgate}: the pause reasons of a session
and the pausing of its transport, on a L{StringTransport}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from txgetty.interfaces import PAUSE_REASONS
from txgetty.session.readgate import EOF, ReadGate


class ReadGateTests(SynchronousTestCase):
    """
    L{ReadGate} pauses on the first reason, resumes on the last one gone,
    and leaves the transport alone once the connection is gone.
    """

    def setUp(self) -> None:
        self.transport = StringTransport()
        self.current: Any = self.transport
        self.gate = ReadGate(lambda: self.current)

    def test_firstReasonPauses(self) -> None:
        """
        The first reason pauses the transport and is recorded as its bit.
        """
        self.gate.pause("handler")
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.gate.reasons, PAUSE_REASONS["handler"])

    def test_lastReasonResumes(self) -> None:
        """
        With two reasons, dropping one keeps the transport paused; dropping
        the other resumes it.
        """
        self.gate.pause("handler")
        self.gate.pause("user")
        self.gate.resume("handler")
        self.assertEqual(self.transport.producerState, "paused")
        self.gate.resume("user")
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.gate.reasons, 0)

    def test_resumeWithoutReason(self) -> None:
        """
        Dropping a reason that does not hold changes nothing (a resumeReading
        without pauseReading does not resume a transport paused for another
        reason).
        """
        self.gate.pause("backlog")
        self.gate.resume("user")
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.gate.reasons, PAUSE_REASONS["backlog"])

    def test_pauseTwiceSameReason(self) -> None:
        """
        The same reason twice is one reason: one resume reads again.
        """
        self.gate.pause("user")
        self.gate.pause("user")
        self.gate.resume("user")
        self.assertEqual(self.transport.producerState, "producing")

    def test_goneLeavesTransport(self) -> None:
        """
        Once the producer callable gives C{None} (the connection is gone),
        reasons are still recorded but the transport is not touched.
        """
        self.current = None
        self.gate.pause("user")
        self.assertEqual(self.transport.producerState, "producing")
        self.assertTrue(self.gate.holds(PAUSE_REASONS["user"]))
        self.gate.resume("user")
        self.assertEqual(self.gate.reasons, 0)

    def test_holds(self) -> None:
        """
        L{ReadGate.holds} tells whether any reason of a mask holds.
        """
        self.gate.pause("pool")
        self.assertTrue(self.gate.holds(PAUSE_REASONS["backlog"] | PAUSE_REASONS["pool"]))
        self.assertFalse(self.gate.holds(PAUSE_REASONS["user"]))

    def test_peerDone(self) -> None:
        """
        L{ReadGate.peerDone} is the C{"eof"} reason.
        """
        self.assertFalse(self.gate.peerDone)
        self.gate.pause("eof")
        self.assertTrue(self.gate.peerDone)
        self.assertEqual(EOF, PAUSE_REASONS["eof"])

    def test_pauseTellsWhetherPaused(self) -> None:
        """
        L{ReadGate.pause} returns C{True} only when it paused the transport
        (what the session's C{timesPaused} counts): the first reason while
        connected.
        """
        self.assertTrue(self.gate.pause("user"))
        self.assertFalse(self.gate.pause("handler"))
        self.gate.resume("user")
        self.gate.resume("handler")
        self.current = None
        self.assertFalse(self.gate.pause("user"))

    def test_peerFinished(self) -> None:
        """
        L{ReadGate.peerFinished} holds the C{"eof"} reason without pausing
        the transport, and says whether it is the first reason.
        """
        self.assertTrue(self.gate.peerFinished())
        self.assertTrue(self.gate.peerDone)
        self.assertEqual(self.transport.producerState, "producing")
        self.assertFalse(self.gate.peerFinished())
        other = ReadGate(lambda: self.transport)
        other.pause("user")
        self.assertFalse(other.peerFinished())
        self.assertEqual(other.reasons, PAUSE_REASONS["user"] | EOF)

    def test_unknownReason(self) -> None:
        """
        A reason not in L{PAUSE_REASONS} is a bug of the caller: C{KeyError}.
        """
        self.assertRaises(KeyError, self.gate.pause, "nap")
