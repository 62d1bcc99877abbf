"""
The reconnect policy of a client pool slot: exponential backoff with
bounded jitter, an optional limit on attempts, and the rule that decides
when a connection was good enough to start backing off from scratch again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..config import _number
from ..errors import ConfigError

DEFAULT_INITIAL_DELAY = 0.3
DEFAULT_FACTOR = 2.0
DEFAULT_MAX_DELAY = 30.0
DEFAULT_JITTER = 0.1
DEFAULT_STABLE_AFTER = 1.0


@dataclass(frozen=True)
class ReconnectPolicy:
    """
    How a lost or failed connection is dialled again.

    The n-th consecutive failed attempt (n = 1, 2, ...) waits
    C{min(initialDelay * factor ** (n - 1), maxDelay)} seconds, multiplied by
    a random factor in C{[1 - jitter, 1 + jitter]} and capped again at
    C{maxDelay}.

    @ivar initialDelay: seconds before the first new attempt (getty: 0.3 s);
        never 0, which would re-dial in a hot loop.
    @ivar factor: growth of the delay per consecutive failure (>= 1).
    @ivar maxDelay: the longest wait between attempts.
    @ivar jitter: relative spread of each delay, from 0 (none) to 1.
    @ivar maxAttempts: consecutive failed attempts after which the slot gives
        up (C{None}: never give up).
    @ivar stableAfter: a session that stayed open this many seconds counts as
        a success and resets the backoff; one that dies sooner (refused by
        the server, dropped at once) counts as a failed attempt, so a server
        that accepts and drops connections is not re-dialled in a hot loop.
    """

    initialDelay: float = DEFAULT_INITIAL_DELAY
    factor: float = DEFAULT_FACTOR
    maxDelay: float = DEFAULT_MAX_DELAY
    jitter: float = DEFAULT_JITTER
    maxAttempts: int | None = None
    stableAfter: float = DEFAULT_STABLE_AFTER

    def __post_init__(self) -> None:
        """
        Check the values.

        @raise ConfigError: a value cannot work; the message names it.
        """
        _number("initialDelay", self.initialDelay, positive=True)
        _number("maxDelay", self.maxDelay, positive=True)
        _number("stableAfter", self.stableAfter, positive=False)
        _number("jitter", self.jitter, positive=False, upper=1.0)
        if _number("factor", self.factor, positive=True) < 1:
            raise ConfigError(f"factor must be 1 or more, got {self.factor!r}")
        if self.maxDelay < self.initialDelay:
            raise ConfigError(
                f"maxDelay ({self.maxDelay!r}) must not be below initialDelay ({self.initialDelay!r})"
            )
        attempts = self.maxAttempts
        if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1):
            raise ConfigError(f"maxAttempts must be a positive integer or None, got {attempts!r}")

    def baseDelay(self, failures: int) -> float:
        """
        @param failures: consecutive failed attempts so far (1 or more).
        @return: the delay before the next attempt, without jitter.
        """
        exponent = max(0, failures - 1)
        if exponent * math.log(self.factor) >= math.log(self.maxDelay / self.initialDelay):
            return self.maxDelay
        return self.initialDelay * self.factor ** exponent

    def delay(self, failures: int, rng: random.Random) -> float:
        """
        @param failures: consecutive failed attempts so far (1 or more).
        @param rng: the random source (inject a seeded one in tests).
        @return: the delay before the next attempt, jitter included, within
            C{[base * (1 - jitter), min(base * (1 + jitter), maxDelay)]}.
        """
        base = self.baseDelay(failures)
        spread = rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0
        return min(base * spread, self.maxDelay)

    def gaveUp(self, failures: int) -> bool:
        """
        @param failures: consecutive failed attempts so far.
        @return: whether the slot must stop trying.
        """
        return self.maxAttempts is not None and failures >= self.maxAttempts
