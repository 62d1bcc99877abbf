"""
Unit tests for L{txgetty.server.Server} without sockets: its counters and
session registry, driven through sessions on string transports.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail
from twisted.internet.error import CannotListenError, ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.codec import HelloCodec
from txgetty.config import SessionConfig
from txgetty.interfaces import ISessionFactory
from txgetty.server import Server
from txgetty.testing import RecordingListener

from ...support.logs import captureEvents


class CounterTests(SynchronousTestCase):
    """
    The server counts accepted, refused, opened and closed sessions.
    """

    def serve(self, newSession: Any) -> tuple[Server, Any]:
        """
        @return: a started server on a memory reactor, and a function that
            connects one session to it.
        """
        reactor = MemoryReactorClock()
        server = Server(["tcp:0:interface=127.0.0.1"], newSession, reactor=reactor)
        server.startService()
        factory = reactor.tcpServers[0][1]

        def connect() -> Any:
            session = factory.buildProtocol(None)
            session.makeConnection(StringTransport())
            return session

        return server, connect

    def test_closedDuringOnOpenCountsAsOpened(self) -> None:
        """
        A session closed inside its own onOpen still counts as opened (it
        gets onClose), and as closed once gone; whenClosed fires after the
        server forgot it.
        """

        class Bye(RecordingListener):
            def onOpen(self, session: Any) -> None:
                super().onOpen(session)
                session.close()

        listener = Bye()

        def newSession(session: Any) -> None:
            session.codec = HelloCodec()
            session.listener = listener

        server, connect = self.serve(newSession)
        session = connect()
        seen = []
        session.whenClosed().addCallback(lambda _: seen.append((len(server.sessions()), server.closed)))
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((server.accepted, server.opened, server.closed), (1, 1, 1))
        self.assertEqual(listener.names(), ["open", "close"])
        self.assertEqual(seen, [(0, 1)])

    def test_refusalsCounted(self) -> None:
        """
        Every refusal counts: returning False, raising, and a callback that
        sets no listener (a bug, logged as an error).
        """
        behaviours = iter([lambda s: False, lambda s: 1 / 0, lambda s: None])

        def newSession(session: Any) -> Any:
            return next(behaviours)(session)

        server, connect = self.serve(newSession)
        for _ in range(3):
            connect()
        self.assertEqual(server.refused, 3)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class SessionFactoryTests(SynchronousTestCase):
    """
    L{Server} provides L{ISessionFactory}, the contract its listening ports
    and transports use.
    """

    def test_providesSessionFactory(self) -> None:
        """
        A server provides L{ISessionFactory} (checked by C{verifyObject}),
        with the reactor and settings it was given.
        """
        reactor = MemoryReactorClock()
        config = SessionConfig()
        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: None, reactor=reactor, config=config)
        self.assertTrue(verifyObject(ISessionFactory, server))
        self.assertIs(server.reactor, reactor)
        self.assertIs(server.config, config)

    def test_newSessionIsCountedAndReleasesItsCap(self) -> None:
        """
        C{newSession} makes a session owned by the server, with the given
        name, counted as accepted and listed until it is gone; the cap given
        is released when it is.
        """
        released = []

        class Cap:
            def release(self) -> None:
                released.append(True)

        server = Server(["tcp:0:interface=127.0.0.1"], lambda s: None, reactor=MemoryReactorClock())
        session = server.newSession(None, name="my-session", cap=Cap())
        self.assertEqual(session.name, "my-session")
        self.assertEqual((server.accepted, server.sessions()), (1, [session]))
        server.sessionGone(session)
        self.assertEqual((server.sessions(), released), ([], [True]))


class FailingEndpoint:
    """
    A server endpoint whose C{listen} fails with L{CannotListenError}.
    """

    def listen(self, factory: Any) -> Any:
        return fail(CannotListenError("127.0.0.1", 8090, OSError(98, "Address already in use")))


class ListenLogTests(SynchronousTestCase):
    """
    A server's listening events (docs/observability.md, "Logs").
    """

    def test_cannotListenFields(self) -> None:
        """
        A listener that cannot listen logs one error with C{server} (its
        name), C{endpoint} (the description), C{reason} and C{error}.
        """
        events = captureEvents(self)
        server = Server([("tcp:8090:interface=127.0.0.1", FailingEndpoint())], lambda s: None,
                        reactor=MemoryReactorClock(), name="myserver")
        server.startService()
        [event] = [e for e in events if e.get("log_namespace") == "txgetty.server.server"]
        self.assertEqual(event["log_level"], LogLevel.error)
        self.assertEqual(
            {k: event[k] for k in ("server", "endpoint", "error")},
            {"server": "myserver", "endpoint": "tcp:8090:interface=127.0.0.1", "error": "CannotListenError"},
        )
        self.assertIn("Address already in use", event["reason"])
        self.assertIn(event["reason"], formatEvent(event))
