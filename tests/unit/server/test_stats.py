"""
L{txgetty.server.stats}: close reasons and transports as metric labels.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.errors import (ConnectionClosedLocally, OutboundOverflowError, PacketTooLargeError,
                            ReadIdleTimeoutError, WriteTimeoutError)
from txgetty.server.stats import CLOSE_REASONS, SESSION_COUNTERS, ListenerStats, closeReasonOf, transportOf


class CloseReasonTests(SynchronousTestCase):
    """
    L{closeReasonOf}.
    """

    def test_reasons(self) -> None:
        """
        Each kind of end maps to its documented reason; anything else is
        C{error}, no reason C{unknown}; all are in L{CLOSE_REASONS}.
        """
        cases = [
            (ConnectionDone(), "peer_closed"), (ConnectionLost(), "peer_reset"),
            (ConnectionClosedLocally("x"), "local"), (OutboundOverflowError("x"), "outbound_overflow"),
            (ReadIdleTimeoutError("x"), "timeout"), (WriteTimeoutError("x"), "timeout"),
            (PacketTooLargeError(10, 5), "bad_input"), (ZeroDivisionError(), "error"),
        ]
        for error, reason in cases:
            self.assertEqual(closeReasonOf(Failure(error)), reason, error)
            self.assertIn(reason, CLOSE_REASONS)
        self.assertEqual(closeReasonOf(None), "unknown")

    def test_subclassesAndRepeats(self) -> None:
        """
        A subclass of a reason's class has that reason, the first time and
        every time after (the answer is kept per class).
        """
        class Reset(ConnectionLost):
            pass

        class Other(KeyError):
            pass

        for _ in range(2):
            self.assertEqual(closeReasonOf(Failure(Reset())), "peer_reset")
            self.assertEqual(closeReasonOf(Failure(Other())), "error")
            self.assertEqual(closeReasonOf(Failure(ConnectionDone())), "peer_closed")


class TransportTests(SynchronousTestCase):
    """
    L{transportOf}.
    """

    def test_kinds(self) -> None:
        """
        The transport label is the description's kind.
        """
        for description, kind in [("tcp:8090", "tcp"), ("ssl:443", "tls"), ("tls:443", "tls"),
                                  ("unix:/tmp/s", "unix"), ("udp:9000", "udp"), ("ws://h:1/p", "ws"),
                                  ("wss://h:1/p", "wss"), ("<Endpoint object>", "endpoint")]:
            self.assertEqual(transportOf(description), kind)


class _GoneSession:
    """
    A session's counters and close reason, as L{ListenerStats} reads them.
    """

    def __init__(self, n: int, reason: Failure | None) -> None:
        for i, name in enumerate(SESSION_COUNTERS):
            setattr(self, name, n * (i + 1))
        self.closeReason = reason


class ListenerStatsTests(SynchronousTestCase):
    """
    L{ListenerStats} sums the counters of the sessions gone with those of
    the live ones.
    """

    def test_totalsOverGoneAndLive(self) -> None:
        """
        However many sessions went (more and fewer than one batch), the
        totals are the exact sums over the gone and the live sessions, and
        every close reason is counted at once.
        """
        for count in (1, 63, 64, 65, 200):
            stats = ListenerStats("tcp:0")
            for n in range(count):
                stats.sessionGone(_GoneSession(n, Failure(ConnectionDone())))
            live = [_GoneSession(1000, None), _GoneSession(7, None)]
            expected = {name: (sum(range(count)) + 1007) * (i + 1) for i, name in enumerate(SESSION_COUNTERS)}
            self.assertEqual(stats.totals(live), expected, count)
            self.assertEqual(stats.totals(live), expected, count)
            self.assertEqual(stats.closed["peer_closed"], count)
