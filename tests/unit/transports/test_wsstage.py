"""
Unit tests of a WebSocket port's HTTP stage (L{txgetty.transports.wsstage}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.config import SessionConfig
from txgetty.server import Server

from ...support.sessions import serverOn
from ...support.transports import captureLogs


class HTTPStageTests(SynchronousTestCase):
    """
    On a ws:// listener each connection has openTimeout seconds from accept
    to its upgrade, and counts for maxSessions until it is gone.
    """

    def site(self, **config: Any) -> tuple[Any, MemoryReactorClock, Server]:
        """
        @return: the listener's site, the reactor, the server.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["ws://127.0.0.1:0/?maxSessions=2"], config=SessionConfig(**config))
        return reactor.tcpServers[0][1], reactor, server

    def connect(self, site: Any) -> tuple[Any, StringTransport]:
        """
        @return: a channel (or refusal) of the site and its transport.
        """
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        return channel, transport

    def test_tricklingRequestDropped(self) -> None:
        """
        Bytes trickling in do not reset the timer: after openTimeout the
        connection is aborted and logged once; its place is free again.
        """
        logs = captureLogs(self)
        site, reactor, server = self.site(openTimeout=3)
        channel, transport = self.connect(site)
        for byte in b"GET / HTTP/1.1\r\n":
            reactor.advance(0.1)
            channel.dataReceived(bytes([byte]))
        self.assertFalse(transport.disconnected)
        reactor.advance(3 - 1.6)
        self.assertTrue(transport.disconnected)
        self.assertEqual([line for line in logs if "upgrade" in line], [
            "txgetty: ws://127.0.0.1:0/?maxSessions=2: tcp:127.0.0.1:40000 did not finish its WebSocket upgrade "
            "within 3 s of connecting (openTimeout): dropped; further ones are counted and logged every 10 s"])
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(site.stages.cap.active, 0)

    def test_capCountsHTTPConnections(self) -> None:
        """
        Two HTTP connections fill a maxSessions=2 port: the third is refused;
        the upgrade stops the timer; the count drops when a connection ends.
        """
        site, reactor, server = self.site(openTimeout=3)
        one, t1 = self.connect(site)
        two, t2 = self.connect(site)
        third = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40002))
        self.assertNotIsInstance(third, type(one))
        self.assertEqual(server.refusedFull, 1)
        site.stages.upgraded(t2)
        reactor.advance(5)
        self.assertEqual((t1.disconnected, t2.disconnected), (True, False))
        site.stages.end(t2)
        site.stages.end(t2)
        self.assertEqual(site.stages.cap.active, 1)

    def test_off(self) -> None:
        """
        openTimeout 0 leaves the HTTP stage unbounded.
        """
        site, reactor, server = self.site(openTimeout=0)
        channel, transport = self.connect(site)
        reactor.advance(1000)
        self.assertFalse(transport.disconnected)
