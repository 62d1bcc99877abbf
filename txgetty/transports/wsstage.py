"""
The HTTP stage of a WebSocket port's connections, from accept to the
upgrade: each counts for the listener's C{maxSessions}, and has the server's
C{openTimeout} to finish its upgrade, with one fixed timer.  Used by
L{txgetty.transports.websocket} (twisted.web is imported only with it).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

from .addresses import formatAddress
from ..tally import Tally

_log = Logger()


class HTTPStages:
    """
    The connections of one WebSocket port, from accept to their end.  Each
    counts for the listener's C{maxSessions} (L{SessionCap
    <txgetty.server.ports.SessionCap>}), and has C{openTimeout} seconds from
    accept to finish its WebSocket upgrade: a fixed timer, which bytes
    trickling in do not reset (twisted.web's own timer is reset by every
    byte, autobahn's starts once the request is parsed).  Connections that
    did not make it are dropped, counted and logged once per 10 s.

    @ivar timeout: seconds from accept to the upgrade (0: no limit).
    @ivar expired: connections dropped for it.
    """

    def __init__(self, clock: Any, cap: Any, timeout: float, label: str) -> None:
        """
        @param clock: the reactor.
        @param cap: the listener's cap.
        @param timeout: the openTimeout (0: none).
        @param label: the listener, for the log.
        """
        self.clock = clock
        self.cap = cap
        self.timeout = timeout
        self.label = label
        self._timers: dict[Any, Any] = {}
        self._held: set[Any] = set()
        self.expired = Tally(
            clock,
            "txgetty: {endpoint}: {peer} did not finish its WebSocket upgrade within {timeout:g} s of "
            "connecting (openTimeout): dropped; further ones are counted and logged every {interval:g} s",
            "txgetty: {endpoint}: dropped {count} more connections in the last {interval:g} s that did not "
            "upgrade within openTimeout ({timeout:g} s), {total} in all",
            level="info", log=_log,
        )

    def begin(self, transport: Any) -> None:
        """
        @param transport: a connection just accepted (and admitted by the
            cap): start its timer.
        """
        self._held.add(transport)
        if self.timeout:
            self._timers[transport] = self.clock.callLater(self.timeout, self._expire, transport)

    def upgraded(self, transport: Any) -> None:
        """
        @param transport: a connection whose upgrade is done.
        """
        call = self._timers.pop(transport, None)
        if call is not None and call.active():
            call.cancel()

    def end(self, transport: Any) -> None:
        """
        @param transport: a connection that is gone (called once or more).
        """
        self.upgraded(transport)
        if transport in self._held:
            self._held.discard(transport)
            self.cap.release()

    def _expire(self, transport: Any) -> None:
        """
        @param transport: a connection still not upgraded after the timeout.
        """
        self._timers.pop(transport, None)
        self.expired.count(endpoint=self.label, peer=formatPeer(transport), timeout=self.timeout)
        transport.abortConnection()

    def stop(self) -> None:
        """
        The listener stopped: no more log lines.
        """
        self.expired.stop()


def formatPeer(transport: Any) -> str:
    """
    @param transport: a connection.
    @return: its peer's address as text.
    """
    return formatAddress(transport.getPeer())


class StageChannel(HTTPChannel):
    """
    An HTTP connection of a WebSocket port; once upgraded, the WebSocket
    protocol takes its transport over (and reports the end itself).
    """

    site: Any

    def connectionMade(self) -> None:
        """
        Accepted: the HTTP stage starts.
        """
        HTTPChannel.connectionMade(self)
        self.site.stages.begin(self.transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Gone before (or without) an upgrade.

        @param reason: why.
        """
        self.site.stages.end(self.transport)
        HTTPChannel.connectionLost(self, reason)


class StageSite(Site):
    """
    The site of a WebSocket port: refuses connections beyond the listener's
    cap, and bounds each connection's HTTP stage (L{HTTPStages}).
    """

    protocol = StageChannel  # type: ignore[assignment]

    def __init__(self, root: Resource, stages: HTTPStages) -> None:
        """
        @param root: the root resource.
        @param stages: the port's connections (and their clock, which
            twisted.web's own timers use too).
        """
        Site.__init__(self, root, reactor=stages.clock)
        self.stages = stages

    def buildProtocol(self, addr: Any) -> Any:
        """
        @param addr: the peer's address.
        @return: an HTTP channel, or the protocol that refuses the
            connection when the listener is full.
        """
        cap = self.stages.cap
        if not cap.admit():
            return cap.refuse(addr)
        return Site.buildProtocol(self, addr)
