"""
What a server counts per listener for metrics: sessions opened, sessions
gone by close reason, and the traffic and flow-control counters of the
sessions that are gone (those of the live sessions are read from them at
scrape time, so that nothing is counted twice and the hot path only bumps
the session's own integers).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from twisted.internet.error import ConnectError, ConnectionDone, ConnectionLost
from twisted.python.failure import Failure

from ..errors import (
    CodecError,
    ConnectionClosedLocally,
    DeadPeerError,
    OutboundOverflowError,
    SessionRefusedError,
    SessionTimeoutError,
    TLSHandshakeError,
    WebSocketClosedError,
)

#: The counters summed over a listener's sessions: the session attribute
#: of each.
SESSION_COUNTERS: tuple[str, ...] = (
    "bytesRead", "bytesWritten", "packetsRead", "packetsWritten",
    "timesPaused", "timesUnwritable", "overflows", "handlerErrors",
)

#: The L{SESSION_COUNTERS} of a session, as a tuple.
_counters = attrgetter(*SESSION_COUNTERS)

#: How many gone sessions' counters a listener keeps before adding them up.
_SUM_EVERY = 64

#: The close reasons, in the order they are checked (the first class that
#: matches names the reason); anything else is C{"error"}, a session that
#: ended without a reason C{"unknown"}.
_REASONS: tuple[tuple[str, tuple[type[BaseException], ...]], ...] = (
    ("peer_closed", (ConnectionDone, WebSocketClosedError)),
    ("peer_reset", (ConnectionLost,)),
    ("local", (ConnectionClosedLocally,)),
    ("outbound_overflow", (OutboundOverflowError,)),
    ("timeout", (SessionTimeoutError, DeadPeerError)),
    ("bad_input", (CodecError,)),
    ("tls", (TLSHandshakeError,)),
    ("refused", (SessionRefusedError,)),
    ("connect_failed", (ConnectError,)),
)

#: Every close reason a metric may carry.
CLOSE_REASONS: tuple[str, ...] = (*(name for name, _ in _REASONS), "error", "unknown")


def closeReasonOf(failure: Failure | None) -> str:
    """
    @param failure: why a session ended (its C{closeReason}), or C{None}.
    @return: one of L{CLOSE_REASONS}.
    """
    if failure is None:
        return "unknown"
    kind = type(failure.value)
    name = _REASON_OF_TYPE.get(kind)
    if name is None:
        name = _REASON_OF_TYPE[kind] = next(
            (name for name, classes in _REASONS if issubclass(kind, classes)), "error")
    return name


#: The close reason of each exception class met so far (filled by
#: L{closeReasonOf}: the classes of close reasons are few).
_REASON_OF_TYPE: dict[type, str] = {}


def transportOf(description: str) -> str:
    """
    @param description: a listener description (C{tcp:8090}, C{ws://...},
        C{udp:...}, an endpoint's repr).
    @return: the transport label: the description's kind (C{tcp},
        C{tls}, C{unix}, C{udp}, C{ws}, C{wss}, ...), C{endpoint} for an
        endpoint object.
    """
    if description.startswith(("ws://", "wss://")):
        return description.split(":", 1)[0]
    if description.startswith("<"):
        return "endpoint"
    kind = description.split(":", 1)[0].lower()
    return "tls" if kind == "ssl" else kind


class ListenerStats:
    """
    The counters of one listener.

    @ivar listener: the listener's description (the C{listener} label).
    @ivar transport: its kind (the C{transport} label).
    @ivar opened: sessions whose C{onOpen} succeeded.
    @ivar closed: sessions gone, by close reason.
    @ivar gone: the L{SESSION_COUNTERS} of the sessions gone, summed
        (read it through L{totals}: the last few sessions' counters wait to
        be added).
    """

    def __init__(self, listener: str) -> None:
        """
        @param listener: the listener's description.
        """
        self.listener = listener
        self.transport = transportOf(listener)
        self.opened = 0
        self.closed = dict.fromkeys(CLOSE_REASONS, 0)
        self.gone = dict.fromkeys(SESSION_COUNTERS, 0)
        # The counters of sessions gone since they were last added to gone,
        # one tuple each: added up in batches, which costs a session one
        # append instead of a sum per counter.
        self._unsummed: list[tuple[int, ...]] = []

    def sessionGone(self, session: Any) -> None:
        """
        @param session: a session that ended: its counters move into
            L{gone}, its close reason is counted.
        """
        unsummed = self._unsummed
        unsummed.append(_counters(session))
        if len(unsummed) >= _SUM_EVERY:
            self._sumGone()
        reason = session.closeReason
        # (closeReasonOf's lookup, inlined for the classes met before.)
        name = None if reason is None else _REASON_OF_TYPE.get(type(reason.value))
        self.closed[name or closeReasonOf(reason)] += 1

    def _sumGone(self) -> None:
        """
        Add the counters of the sessions gone since the last time to
        L{gone}.
        """
        unsummed, self._unsummed = self._unsummed, []
        gone = self.gone
        for name, values in zip(SESSION_COUNTERS, zip(*unsummed)):
            gone[name] += sum(values)

    def totals(self, live: list[Any]) -> dict[str, int]:
        """
        @param live: the listener's sessions not gone yet.
        @return: each of L{SESSION_COUNTERS} over the sessions gone and
            C{live}.
        """
        if self._unsummed:
            self._sumGone()
        totals = dict(self.gone)
        for session in live:
            for name in SESSION_COUNTERS:
                totals[name] += getattr(session, name)
        return totals
