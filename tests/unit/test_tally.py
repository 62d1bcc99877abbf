"""
Unit tests of L{txgetty.tally.Tally}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txgetty.tally import Tally

from ..support.transports import captureLogs


class TallyTests(SynchronousTestCase):
    """
    L{txgetty.tally.Tally} logs the first event at once, then one line
    per interval while events go on.
    """

    def test_lines(self) -> None:
        """
        Three events, one interval, one event: three lines.
        """
        logs = captureLogs(self)
        clock = Clock()
        tally = Tally(clock, "first {what}", "again {count} of {total} in {interval:g} s", interval=5, level="info")
        for _ in range(3):
            tally.count(what="x")
        clock.advance(5)
        clock.advance(5)
        tally.count(what="y")
        self.assertEqual(logs, ["first x", "again 2 of 3 in 5 s", "first y"])
        tally.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
