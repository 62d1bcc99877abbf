"""
Unit tests of L{txgetty.client.reconnect.ReconnectPolicy}: its defaults, the
backoff it computes, and the values it refuses.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from txgetty.client.reconnect import ReconnectPolicy
from txgetty.errors import ConfigError


class PolicyTests(SynchronousTestCase):
    """
    Tests for L{ReconnectPolicy}.
    """

    def test_defaults(self) -> None:
        """
        The defaults start at getty's 0.3 s and double up to 30 s.
        """
        policy = ReconnectPolicy()
        self.assertEqual([policy.baseDelay(n) for n in range(1, 10)],
                         [0.3, 0.6, 1.2, 2.4, 4.8, 9.6, 19.2, 30.0, 30.0])
        self.assertEqual(policy.baseDelay(10**9), 30.0)

    def test_jitterBounds(self) -> None:
        """
        Every jittered delay lies within [base*(1-j), min(base*(1+j), max)].
        """
        policy = ReconnectPolicy(initialDelay=1, factor=3, maxDelay=50, jitter=0.25)
        rng = random.Random(7)
        for failures in range(1, 12):
            base = policy.baseDelay(failures)
            for _ in range(200):
                d = policy.delay(failures, rng)
                self.assertGreaterEqual(d, base * 0.75)
                self.assertLessEqual(d, min(base * 1.25, 50))

    def test_noJitter(self) -> None:
        """
        jitter 0 gives the base delays exactly.
        """
        policy = ReconnectPolicy(jitter=0)
        self.assertEqual(policy.delay(3, random.Random()), 1.2)

    def test_badValues(self) -> None:
        """
        Values that cannot work are refused, naming the setting.
        """
        for kw, needle in (
            ({"initialDelay": 0}, "initialDelay"), ({"factor": 0.5}, "factor"),
            ({"jitter": 1.5}, "jitter"), ({"maxAttempts": 0}, "maxAttempts"),
            ({"maxDelay": 0.1}, "maxDelay"), ({"stableAfter": -1}, "stableAfter"),
        ):
            with self.assertRaises(ConfigError) as ctx:
                ReconnectPolicy(**kw)
            self.assertIn(needle, str(ctx.exception))
