"""
Counting a repeated event in the log: the first occurrence makes a line at
once, then at most one line per interval says how many came since, so that
a flood (refused connections, WebSocket upgrades that never finish) makes a
few lines, not one per event.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

_log = Logger()

#: Seconds between two lines of a tally, unless it is given its own.
DEFAULT_INTERVAL = 10.0


class Tally:
    """
    Counts an event and logs it: the first at once, then at most one line
    per interval with the number since, so that a flood makes a few lines.

    @ivar total: events counted so far.
    """

    def __init__(self, clock: Any, first: str, again: str, interval: float | None = None,
                 level: str = "warn", log: Logger | None = None) -> None:
        """
        @param clock: the L{IReactorTime <twisted.internet.interfaces.IReactorTime>} of the interval.
        @param first: the format of the first event's line.
        @param again: the format of the later lines, with C{{count}} (events
            since the last line), C{{total}} and C{{interval}}.
        @param interval: seconds between two lines (L{DEFAULT_INTERVAL}
            if C{None}).
        @param level: C{"warn"} or C{"info"}.
        @param log: the logger of the lines (that of the module counting,
            so that the lines carry its namespace); this module's if C{None}.
        """
        self._emit = getattr(log or _log, level)
        self.clock = clock
        self.first = first
        self.again = again
        self.interval = DEFAULT_INTERVAL if interval is None else interval
        self.total = 0
        self._since = 0
        self._call: Any = None
        self._fields: dict[str, Any] = {}

    def count(self, **fields: Any) -> None:
        """
        Count one event.

        @param fields: the log fields of this event.
        """
        self.total += 1
        self._fields = fields
        if self._call is None:
            self._emit(self.first, interval=self.interval, total=self.total, **fields)
            self._call = self.clock.callLater(self.interval, self._report)
        else:
            self._since += 1

    def _report(self) -> None:
        """
        The interval is over: log what happened in it, if anything.
        """
        self._call = None
        if self._since:
            self._emit(self.again, count=self._since, total=self.total, interval=self.interval, **self._fields)
            self._since = 0
            self._call = self.clock.callLater(self.interval, self._report)

    def stop(self) -> None:
        """
        Cancel the next line (the listener stopped).
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._since = 0
