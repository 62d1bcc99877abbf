"""
The kernel behaviour the workers' design rests on (docs/workers.md,
I{Why the supervisor accepts}), measured on the machine that runs the tests.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ..support.workerapps import queuedThroughClose, reuseportSpread


class ReuseportTests(SynchronousTestCase):
    """
    What C{SO_REUSEPORT} listeners do.
    """

    def test_closedListenerResetsItsQueue(self) -> None:
        """
        When the owner of one of two SO_REUSEPORT listeners dies with
        connections queued on it, the kernel resets those connections: they
        do not move to the other listener (why per-worker listening sockets
        would lose connections whenever a worker dies or is replaced).
        """
        outcome = queuedThroughClose(held=False)
        self.assertGreater(outcome["reset"], 0, outcome)
        self.assertEqual(outcome["reset"] + outcome["acceptedLater"], outcome["total"], outcome)

    def test_heldListenerKeepsItsQueue(self) -> None:
        """
        If another process keeps the socket open (the supervisor keeps every
        socket it bound), the queued connections wait and are accepted later:
        none is reset.
        """
        outcome = queuedThroughClose(held=True)
        self.assertEqual(outcome, {"reset": 0, "acceptedLater": outcome["total"], "total": outcome["total"]})

    def test_hashSpreadIsRandom(self) -> None:
        """
        The kernel spreads connections over SO_REUSEPORT listeners by a hash
        of their addresses: every listener gets some of 200 connections, but
        not in a fixed rotation (why the supervisor deals stream connections
        out itself: see benchmarks/workers.py for how often 50 connections
        miss the +-30 % bound).
        """
        counts = reuseportSpread(4, 200)
        self.assertEqual(sum(counts), 200)
        self.assertTrue(all(counts), counts)
