"""A txgetty app for scale.py: the echo service whose onCron does trivial work (counts the call).

  twistd -n txgetty --cron-period 1 --app cron_app:newSession     (benchmarks/ on PYTHONPATH)

Every 2 s it logs one line, ``cron_app: t=<unix time> calls=<onCron calls so far>
sessions=<open sessions>``, from which scale.py computes the onCron calls per second while
the sessions idle (to check that every session's cron really ran once per period).
``--app cron_app:newSessionGC`` (scale.py --gc-stats) also times the garbage collector's
runs (gc.callbacks) and logs ``gc_counts=<gen0,gen1,gen2> gc_ms=<ms per generation>``.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from txgetty import EchoListener

_log = Logger()


class CronCounter(EchoListener):
    """Echo every packet; count the onCron calls and the open sessions."""

    calls = 0
    sessions = 0

    def onOpen(self, session: Any) -> None:
        """One more session."""
        CronCounter.sessions += 1

    def onClose(self, session: Any) -> None:
        """One session less."""
        CronCounter.sessions -= 1

    def onCron(self, session: Any) -> None:
        """The trivial work: count the call."""
        CronCounter.calls += 1


listener = CronCounter()
_reporter: LoopingCall | None = None


def _report() -> None:
    """Log the counters."""
    _log.info("cron_app: t={t:.3f} calls={calls} sessions={sessions}", t=time.time(), calls=CronCounter.calls,
              sessions=CronCounter.sessions)


def _start(report: Any, timeGC: bool = False) -> None:
    """Once per process: log the counters with report() every 2 s; with timeGC also time the
    garbage collector's runs (gc.callbacks)."""
    global _reporter, _gc
    if _reporter is None:
        if timeGC:
            import gc

            _gc = _GCTimer()
            gc.callbacks.append(_gc)
        _reporter = LoopingCall(report)
        _reporter.start(2.0, now=True)


def newSession(session: Any) -> None:
    """The --app callback: every session gets the counting echo listener (the codec stays --codec's)."""
    _start(_report)
    session.listener = listener


class _GCTimer:
    """gc.callbacks hook: collections per generation and the time spent in them."""

    def __init__(self) -> None:
        """No collection yet."""
        self.counts = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.collected = 0
        self._t = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        """Time one collection."""
        if phase == "start":
            self._t = time.perf_counter()
        else:
            g = info["generation"]
            self.counts[g] += 1
            self.seconds[g] += time.perf_counter() - self._t
            self.collected += info["collected"]


_gc: _GCTimer | None = None


def _reportGC() -> None:
    """Log the counters and the garbage collector's figures."""
    g = _gc
    _log.info("cron_app: t={t:.3f} calls={calls} sessions={sessions} gc_counts={c} gc_ms={ms} gc_collected={n}",
              t=time.time(), calls=CronCounter.calls, sessions=CronCounter.sessions,
              c=",".join(map(str, g.counts)), ms=",".join(f"{1000 * s:.1f}" for s in g.seconds), n=g.collected)


def newSessionGC(session: Any) -> None:
    """As newSession, and also time the garbage collector's runs (diagnostics: scale.py --gc-stats)."""
    _start(_reportGC, timeGC=True)
    session.listener = listener


def _reportFreeze() -> None:
    """Log as _reportGC, then move every object alive now to the permanent generation."""
    _reportGC()
    __import__("gc").freeze()


def newSessionFreeze(session: Any) -> None:
    """As newSessionGC, and call gc.freeze() every 2 s (an application-level mitigation, to
    measure how much of the idle cost is the collector scanning the long-lived sessions;
    acyclic garbage such as txgetty's WheelCalls is still freed by reference counting)."""
    _start(_reportFreeze, timeGC=True)
    session.listener = listener
