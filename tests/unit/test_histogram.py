"""
L{txgetty.histogram}: bucket counts and call outcomes, bounded.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txgetty.histogram import MAX_CALL_KEYS, OTHER, CallStats, Histogram


class HistogramTests(SynchronousTestCase):
    """
    L{Histogram}.
    """

    def test_bucketsAreUpperBoundsInclusive(self) -> None:
        """
        A value equal to a bound counts in that bound's bucket (Prometheus's
        C{le}); above the last bound, in +Inf; the cumulative form adds up.
        """
        h = Histogram((0.1, 1.0))
        for v in (0.05, 0.1, 0.5, 1.0, 7.0):
            h.observe(v)
        self.assertEqual(h.counts, [2, 2, 1])
        self.assertEqual(h.count, 5)
        self.assertAlmostEqual(h.sum, 8.65)
        self.assertEqual(h.cumulative(), [("0.1", 2), ("1.0", 4), ("+Inf", 5)])

    def test_add(self) -> None:
        """
        L{Histogram.add} sums counts and sums.
        """
        a, b = Histogram((1.0,)), Histogram((1.0,))
        a.observe(0.5)
        b.observe(2.0)
        a.add(b)
        self.assertEqual((a.counts, a.sum), ([1, 1], 2.5))


class CallStatsTests(SynchronousTestCase):
    """
    L{CallStats}.
    """

    def test_record(self) -> None:
        """
        Calls are counted by service, method and outcome once watched.
        """
        stats = CallStats()
        stats.watch()
        stats.record("S", "m", "ok", 0.001)
        stats.record("S", "m", "ok", 0.002)
        stats.record("S", "m", "ValueError", 0.5)
        found = {key: h.count for key, h in stats.items()}
        self.assertEqual(found, {("S", "m", "ok"): 2, ("S", "m", "ValueError"): 1})

    def test_bounded(self) -> None:
        """
        Past L{MAX_CALL_KEYS} keys, new ones count under L{OTHER}; long
        outcomes are cut and still counted in one series.
        """
        stats = CallStats()
        stats.watch()
        stats.record("S", "m", "E" * 500, 0.0)
        stats.record("S", "m", "E" * 500, 0.0)
        for i in range(MAX_CALL_KEYS + 10):
            stats.record("S", "m", f"Error{i}", 0.0)
        found = {key: h.count for key, h in stats.items()}
        self.assertEqual(len(found), MAX_CALL_KEYS + 1)
        self.assertEqual(found[("S", "m", "E" * 64)], 2)
        self.assertEqual(found[(OTHER, OTHER, OTHER)], 11)

    def test_unwatched(self) -> None:
        """
        Nothing is counted until someone watches the stats (the metrics
        collector does): a process without metrics pays nothing for them.
        """
        stats = CallStats()
        self.assertFalse(stats.watched)
        stats.record("S", "m", "ok", 0.001)
        self.assertEqual(list(stats.items()), [])
        stats.watch()
        stats.record("S", "m", "ok", 0.001)
        self.assertEqual([(key, h.count) for key, h in stats.items()], [(("S", "m", "ok"), 1)])
