"""
Plain counters for what a metrics scrape reads later: a histogram of
durations (bucket counts and a sum, bumped without a lock) and the call
outcomes of an RPC server or client by service, method and outcome.

Nothing here knows about Prometheus: the owners (the task pool, the RPC
server and client) bump these integers on their own path, and
L{txgetty.metrics} turns them into metric families when it is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterator

#: Upper bounds (seconds) of the latency buckets of RPC calls and task-pool
#: queue waits; a last bucket (+Inf) takes what is above.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

#: Distinct C{(service, method, outcome)} keys a L{CallStats} keeps; beyond,
#: new keys are counted under L{OTHER} (so that a peer sending made-up
#: error types or names cannot grow the series without bound).
MAX_CALL_KEYS = 2000

#: The service, method or outcome of calls counted beyond L{MAX_CALL_KEYS},
#: and the service and method of refused calls that named none known.
OTHER = "_other"

#: The longest outcome label kept (error type names are cut to it).
MAX_OUTCOME_LENGTH = 64


class Histogram:
    """
    Counts of observations by bucket, and their sum.

    @ivar bounds: the buckets' upper bounds, ascending.
    @ivar counts: observations per bucket (one more than C{bounds}: the
        last is +Inf); not cumulative.
    @ivar sum: the sum of the observations.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        """
        @param bounds: the buckets' upper bounds, ascending.
        """
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """
        @param value: one observation (a bucket takes values up to and
            including its bound, as Prometheus's C{le}).
        """
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """
        Observations so far.
        """
        return sum(self.counts)

    def add(self, other: Histogram) -> None:
        """
        Add another histogram of the same bounds into this one.

        @param other: the histogram.
        """
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.sum += other.sum

    def cumulative(self) -> list[tuple[str, int]]:
        """
        @return: C{(le, count)} pairs, cumulative, the last C{"+Inf"} (the
            form of Prometheus's histogram buckets).
        """
        out = []
        total = 0
        for bound, n in zip((*(repr(float(b)) for b in self.bounds), "+Inf"), self.counts):
            total += n
            out.append((bound, total))
        return out


class CallStats:
    """
    Finished calls by service, method and outcome, each a L{Histogram} of
    their latency.

    Outcomes: C{"ok"}, C{"cancelled"}, C{"deadline"}, C{"busy"}, or the
    error's type name (C{"NoSuchMethod"}, C{"ValueError"}, ...).

    Calls are counted only while someone reads them: from L{watch} on
    (L{txgetty.metrics} watches the stats of the servers and clients it
    exposes).  Unwatched, L{record} returns at once and the owner's fast
    path does not time its calls, so a process without metrics pays
    nothing for them.

    @ivar watched: whether calls are counted.
    """

    __slots__ = ("_calls", "watched")

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str, str], Histogram] = {}
        self.watched = False

    def watch(self) -> None:
        """
        Count calls from now on (the metrics collector calls it).
        """
        self.watched = True

    def record(self, service: str, method: str, outcome: str, seconds: float) -> None:
        """
        Count one finished call.

        @param service: its service name.
        @param method: its method name.
        @param outcome: how it ended.
        @param seconds: how long it took.
        """
        if not self.watched:
            return
        key = (service, method, outcome)
        histogram = self._calls.get(key)
        if histogram is None:
            histogram = self._newKey(key)
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1
        histogram.sum += seconds

    def histogram(self, service: str, method: str, outcome: str) -> Histogram:
        """
        @param service: a service name.
        @param method: a method name.
        @param outcome: how calls ended.
        @return: the histogram L{record} counts such calls in (a caller that
            counts many calls of one key may count into it directly).
        """
        key = (service, method, outcome)
        return self._calls.get(key) or self._newKey(key)

    def _newKey(self, key: tuple[str, str, str]) -> Histogram:
        """
        @param key: a key not counted yet.
        @return: its histogram (that of L{OTHER} beyond L{MAX_CALL_KEYS}).
        """
        key = (key[0], key[1], key[2][:MAX_OUTCOME_LENGTH])
        if key not in self._calls and len(self._calls) >= MAX_CALL_KEYS:
            key = (OTHER, OTHER, OTHER)
        histogram = self._calls.get(key)
        if histogram is None:
            histogram = self._calls[key] = Histogram()
        return histogram

    def items(self) -> Iterator[tuple[tuple[str, str, str], Histogram]]:
        """
        @return: each C{(service, method, outcome)} key with its histogram.
        """
        return iter(list(self._calls.items()))
