"""
Unit tests of the listening ports (L{txgetty.server.ports}): parsing
listener descriptions and their settings, and the session cap.
"""

from __future__ import annotations

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.config import DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_SESSIONS
from txgetty.errors import ConfigError
from txgetty.server import Server, ports as L
from txgetty.session import Session

from ...support.sessions import accept, echoSession, serverOn
from ...support.transports import FakeUDPReactor, captureLogs


class ListenerSettingTests(SynchronousTestCase):
    """
    Every listener gets the server's maxSessions and backlog unless its
    description names its own.
    """

    def test_backlogs(self) -> None:
        """
        tcp:, unix: and tls: listeners and ws:// ports listen with the
        server's backlog (65535 by default) or their own.
        """
        from ...support.certs import testCertificates

        pki = testCertificates()
        key, cert = pki.serverKey, pki.serverCert
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0", "tcp:0:backlog=7", f"tls:0:key={key}:cert={cert}", "ws://127.0.0.1:0/",
                           "ws://127.0.0.1:0/?backlog=9", f"unix:{self.mktemp()}"])
        self.assertEqual([s[2] for s in reactor.tcpServers], [DEFAULT_LISTEN_BACKLOG, 7, 65535, 9])
        self.assertEqual(reactor.sslServers[0][3], DEFAULT_LISTEN_BACKLOG)
        self.assertEqual(reactor.unixServers[0][2], DEFAULT_LISTEN_BACKLOG)
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0", "ws://127.0.0.1:0/"], backlog=128)
        self.assertEqual([s[2] for s in reactor.tcpServers], [128, 128])

    def test_caps(self) -> None:
        """
        maxSessions comes from the description (:maxSessions=N, ?maxSessions=N)
        or the server; UDP listeners take it as maxPeers.
        """
        reactor = FakeUDPReactor()
        server = serverOn(reactor, ["tcp:0:maxSessions=3", "tcp:0", "ws://127.0.0.1:0/?maxSessions=4",
                                    "udp:0", "udp:0:maxPeers=2"], maxSessions=50)
        caps = [getattr(listener, "cap", None) for listener in server._listeners]
        self.assertEqual([c.maxSessions for c in caps if c is not None], [3, 50, 4])
        self.assertEqual([p.protocol.maxPeers for p in reactor.udpPorts], [50, 2])
        self.assertEqual(Server(["tcp:0"], echoSession, reactor=reactor).maxSessions, DEFAULT_MAX_SESSIONS)

    def test_badValues(self) -> None:
        """
        A bad maxSessions or backlog raises ConfigError naming it and the
        description.
        """
        reactor = MemoryReactorClock()
        for endpoints, kw, words in [
            (["tcp:0:maxSessions=many"], {}, "maxSessions must be a whole number, got 'many' (in 'tcp:0:maxSessions=many')"),
            (["tcp:0:backlog=-1"], {}, "backlog must be a positive integer, got -1"),
            (["ws://127.0.0.1:0/?maxSessions=-3"], {}, "maxSessions must be an integer, 0 or more"),
            (["tcp:0"], {"maxSessions": -1}, "maxSessions must be an integer, 0 or more, got -1"),
            (["tcp:0"], {"backlog": 0}, "backlog must be a positive integer, got 0"),
        ]:
            e = self.assertRaises(ConfigError, Server, endpoints, echoSession, reactor=reactor, **kw)
            self.assertIn(words, str(e))

    def test_takeOption(self) -> None:
        """
        takeOption removes the option wherever it is and keeps escapes.
        """
        self.assertEqual(L.takeOption("tcp:80:maxSessions=5:interface=\\:\\:1", "maxSessions"),
                         ("tcp:80:interface=\\:\\:1", "5"))
        self.assertEqual(L.takeOption("tcp:80", "maxSessions"), ("tcp:80", None))


class CapTests(SynchronousTestCase):
    """
    Beyond maxSessions a listener closes new connections at once, counts
    them and logs them once per interval.
    """

    def test_refusedBeyondTheCap(self) -> None:
        """
        The third connection of a listener with maxSessions 2 gets no
        session: its write side is shut at once, nothing is written, it is
        closed after REFUSAL_LINGER; once a session ends, a new one is
        accepted again.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0:maxSessions=2"])
        first, _ = accept(reactor)
        accept(reactor)
        refusal, transport = accept(reactor)
        self.assertNotIsInstance(refusal, Session)
        self.assertEqual((server.accepted, server.refusedFull, len(server.sessions())), (2, 1, 2))
        self.assertEqual((transport.value(), transport.writeClosed, transport.disconnecting), (b"", True, False))
        reactor.advance(L.REFUSAL_LINGER)
        self.assertTrue(transport.disconnecting)
        refusal.connectionLost(Failure(ConnectionDone()))
        first.connectionLost(Failure(ConnectionDone()))
        session, _ = accept(reactor)
        self.assertIsInstance(session, Session)
        self.assertEqual(server.refusedFull, 1)

    def test_refusalsLoggedOncePerInterval(self) -> None:
        """
        The first refusal is logged at once (a warning naming the listener,
        the cap and the peer), the next ones in one line per interval with
        their number, and nothing while there are none.
        """
        logs = captureLogs(self)
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0:maxSessions=1"])
        accept(reactor)
        refused = lambda: [line for line in logs if "refused" in line]  # noqa: E731
        accept(reactor, port=40001)
        self.assertEqual(refused(), [
            "txgetty: tcp:0:maxSessions=1 holds maxSessions (1) connections: refused one from "
            "tcp:127.0.0.1:40001 (closed at once); further refusals are counted and logged every 10 s"])
        for _ in range(5):
            accept(reactor)
        reactor.advance(L.REFUSAL_LOG_INTERVAL)
        self.assertEqual(len(refused()), 2)
        self.assertIn("refused 5 more connections in the last 10 s, 6 in all: it holds maxSessions (1)",
                      refused()[1])
        reactor.advance(L.REFUSAL_LOG_INTERVAL * 3)
        self.assertEqual(len(refused()), 2)
        accept(reactor)
        self.assertEqual(len(refused()), 3)
        server.stopService()
        self.assertEqual(server.refusedFull, 7)

    def test_lingeringBounded(self) -> None:
        """
        Beyond MAX_LINGERING refused connections at a time, the next ones
        are closed at once.
        """
        self.patch(L, "MAX_LINGERING", 2)
        reactor = MemoryReactorClock()
        serverOn(reactor, ["tcp:0:maxSessions=1"])
        accept(reactor)
        transports = [accept(reactor)[1] for _ in range(3)]
        self.assertEqual([t.disconnecting for t in transports], [False, False, True])

    def test_noCap(self) -> None:
        """
        maxSessions 0 accepts every connection.
        """
        reactor = MemoryReactorClock()
        server = serverOn(reactor, ["tcp:0"], maxSessions=0)
        for _ in range(20):
            accept(reactor)
        self.assertEqual((server.accepted, server.refusedFull), (20, 0))


class ParseListenersTests(SynchronousTestCase):
    """
    L{L.parseListeners}: one listener per description, of the kind the
    description names.
    """

    def test_kinds(self) -> None:
        """
        Stream descriptions become stream listeners, C{udp:} a UDP listener,
        C{ws://} a WebSocket listener, and an endpoint object a stream
        listener named by its repr, in the order given.
        """
        endpoint = TCP4ServerEndpoint(MemoryReactorClock(), 0)
        listeners = L.parseListeners(
            MemoryReactorClock(), ["tcp:0:interface=127.0.0.1", "udp:0", "ws://127.0.0.1:0/a", endpoint], None
        )
        self.assertEqual([type(x) for x in listeners],
                         [L.StreamListener, L.UDPListener, L.WebSocketListener, L.StreamListener])
        self.assertIs(listeners[3].endpoint, endpoint)
        self.assertEqual(listeners[3].description, repr(endpoint))

    def test_webSocketPathsShareAPort(self) -> None:
        """
        WebSocket URLs on one scheme, host and port are one listener with
        several paths; port 0 always gets a port of its own.
        """
        listeners = L.parseListeners(MemoryReactorClock(), [
            "ws://127.0.0.1:9000/a", "ws://127.0.0.1:9000/b", "ws://127.0.0.1:0/c", "ws://127.0.0.1:0/d",
        ], None)
        self.assertEqual([x.paths for x in listeners], [["/a", "/b"], ["/c"], ["/d"]])

    def test_udpPeersFromMaxSessions(self) -> None:
        """
        A UDP listener without C{maxPeers} takes the server's C{maxSessions}
        (the default when that is 0, no limit).
        """
        [udp] = L.parseListeners(MemoryReactorClock(), ["udp:0"], None, maxSessions=7)
        self.assertEqual(udp.maxPeers, 7)
        [udp] = L.parseListeners(MemoryReactorClock(), ["udp:0"], None, maxSessions=0)
        self.assertEqual(udp.maxPeers, DEFAULT_MAX_SESSIONS)
        [udp] = L.parseListeners(MemoryReactorClock(), ["udp:0:maxPeers=3"], None, maxSessions=7)
        self.assertEqual(udp.maxPeers, 3)

    def test_errorsNameTheDescriptionGiven(self) -> None:
        """
        An error in a description names it as the user wrote it, not with
        the options the server added (C{backlog}); C{wss://} without TLS
        files says which options to give.
        """
        with self.assertRaises(ConfigError) as ctx:
            L.parseListeners(MemoryReactorClock(), ["tcp:99999:maxSessions=2"], None)
        self.assertIn("'tcp:99999:maxSessions=2'", str(ctx.exception))
        self.assertNotIn("backlog=", str(ctx.exception))
        with self.assertRaises(ConfigError) as ctx:
            L.parseListeners(MemoryReactorClock(), ["wss://127.0.0.1:0/"], None)
        self.assertIn("--tls-key and --tls-cert", str(ctx.exception))

    def test_serverWideSettingsChecked(self) -> None:
        """
        The server-wide C{maxSessions} and C{backlog} are checked too.
        """
        self.assertRaises(ConfigError, L.parseListeners, MemoryReactorClock(), [], None, maxSessions=-1)
        self.assertRaises(ConfigError, L.parseListeners, MemoryReactorClock(), [], None, backlog=0)


class TakeOptionTests(SynchronousTestCase):
    """
    L{L.takeOption} takes one C{:key=value} out of a description.
    """

    def test_take(self) -> None:
        """
        The option is removed wherever it is; the last value wins if it is
        given twice; an escaped colon is part of a value, not a separator.
        """
        self.assertEqual(L.takeOption("tcp:0:maxSessions=5:interface=::1", "maxSessions"),
                         ("tcp:0:interface=::1", "5"))
        self.assertEqual(L.takeOption("tcp:0:maxSessions=1:maxSessions=2", "maxSessions"), ("tcp:0", "2"))
        self.assertEqual(L.takeOption("unix:/a\\:maxSessions=3", "maxSessions"), ("unix:/a\\:maxSessions=3", None))
        self.assertEqual(L.takeOption("tcp:0", "maxSessions"), ("tcp:0", None))
