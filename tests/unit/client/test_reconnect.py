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


class BackoffTests(SynchronousTestCase):
    """
    The delays the policy computes, attempt by attempt, and when it gives
    up.
    """

    def test_baseDelayGrowsThenCaps(self) -> None:
        """
        Without jitter the n-th failure waits C{initialDelay * factor **
        (n - 1)}, up to C{maxDelay} and no further, however many failures
        came before (no overflow for a huge count).
        """
        policy = ReconnectPolicy(initialDelay=0.5, factor=3, maxDelay=10, jitter=0)
        self.assertEqual([policy.baseDelay(n) for n in range(1, 6)], [0.5, 1.5, 4.5, 10, 10])
        self.assertEqual(policy.baseDelay(10 ** 6), 10)
        self.assertEqual(policy.delay(10 ** 6, random.Random(0)), 10)

    def test_zeroFailuresIsTheFirstDelay(self) -> None:
        """
        A failure count below 1 (no failure yet) waits the initial delay,
        not less.
        """
        policy = ReconnectPolicy(initialDelay=0.2, jitter=0)
        self.assertEqual((policy.baseDelay(0), policy.baseDelay(1)), (0.2, 0.2))

    def test_factorOneIsConstant(self) -> None:
        """
        With C{factor=1} every attempt waits C{initialDelay}.
        """
        policy = ReconnectPolicy(initialDelay=0.7, factor=1, maxDelay=5, jitter=0)
        self.assertEqual({policy.baseDelay(n) for n in range(1, 50)}, {0.7})

    def test_jitterNeverPassesMaxDelay(self) -> None:
        """
        Jitter spreads a delay at the cap downwards only: no delay is longer
        than C{maxDelay}.
        """
        policy = ReconnectPolicy(initialDelay=1, maxDelay=2, jitter=1.0)
        rng = random.Random(3)
        delays = [policy.delay(20, rng) for _ in range(500)]
        self.assertLessEqual(max(delays), 2)
        self.assertGreaterEqual(min(delays), 0)

    def test_sameSeedSameDelays(self) -> None:
        """
        The delays depend on the random source only: two sources with the
        same seed give the same sequence (tests inject one).
        """
        policy = ReconnectPolicy()
        first = [policy.delay(n, random.Random(42)) for n in range(1, 8)]
        second = [policy.delay(n, random.Random(42)) for n in range(1, 8)]
        self.assertEqual(first, second)

    def test_gaveUp(self) -> None:
        """
        With C{maxAttempts=3} the policy gives up at the third consecutive
        failure, not before; without it, never.
        """
        policy = ReconnectPolicy(maxAttempts=3)
        self.assertEqual([policy.gaveUp(n) for n in range(1, 5)], [False, False, True, True])
        self.assertFalse(ReconnectPolicy().gaveUp(10 ** 9))

    def test_frozen(self) -> None:
        """
        A policy cannot be changed once made (one may be shared by many
        clients).
        """
        policy = ReconnectPolicy()
        with self.assertRaises(AttributeError):
            policy.initialDelay = 5  # type: ignore[misc]

    def test_boolsRefused(self) -> None:
        """
        C{True} is not a number of attempts (nor of seconds): the message
        names the setting.
        """
        for kw, needle in (({"maxAttempts": True}, "maxAttempts"), ({"initialDelay": True}, "initialDelay")):
            with self.assertRaises(ConfigError) as ctx:
                ReconnectPolicy(**kw)  # type: ignore[arg-type]
            self.assertIn(needle, str(ctx.exception))
