"""
Unit tests for L{txgetty.rpc.connection.RpcConnection} and its contract with
the server, L{ICallDispatcher}: the connection hands its frames to any
provider of it, and L{RpcServer} provides it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.interfaces import ICallDispatcher
from txgetty.rpc import frame as F
from txgetty.rpc.connection import RpcConnection
from txgetty.rpc.serializers import JSON
from txgetty.rpc.server import RpcServer


@implementer(ICallDispatcher)
class RecordingDispatcher:
    """
    An L{ICallDispatcher} that records what its connections report.
    """

    def __init__(self, auth: Any = None) -> None:
        self.auth = auth
        self.seen: list[tuple[str, Any]] = []
        self.deciding: Deferred = Deferred()

    def connectionOpened(self, connection: Any) -> None:
        self.seen.append(("opened", connection))

    def connectionClosed(self, connection: Any) -> None:
        self.seen.append(("closed", connection))

    def request(self, connection: Any, frame: Any) -> None:
        self.seen.append(("request", frame))

    def authenticate(self, connection: Any, frame: Any) -> Deferred:
        self.seen.append(("authenticate", frame))
        return self.deciding


class FakeSession:
    """
    The little of a session a connection reads.
    """

    maxMsgLen = 1000

    def __init__(self) -> None:
        self.written: list[Any] = []

    def writePkg(self, pkg: Any) -> None:
        self.written.append(pkg)


def request(rid: int = 1) -> F.Frame:
    """
    @return: a request frame.
    """
    return F.Frame(F.REQUEST, rid, {F.SERVICE: "S", F.METHOD: "m"}, b"[]", JSON)


class ContractTests(SynchronousTestCase):
    """
    L{RpcConnection} talks to its server only through L{ICallDispatcher}.
    """

    def test_serverProvidesCallDispatcher(self) -> None:
        """
        L{RpcServer} provides L{ICallDispatcher} (checked by
        C{verifyObject}).
        """
        server = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=MemoryReactorClock())
        self.assertTrue(verifyObject(ICallDispatcher, server))

    def test_reportsOpenRequestClose(self) -> None:
        """
        An open, a request and a close reach the dispatcher, in that order;
        C{maxBody} follows the session's C{maxMsgLen}.
        """
        dispatcher = RecordingDispatcher()
        connection = RpcConnection(dispatcher)
        session = FakeSession()
        connection.onOpen(session)
        frame = request()
        self.assertIsNone(connection.onMessage(session, frame))
        connection.onClose(session)
        self.assertEqual(dispatcher.seen, [("opened", connection), ("request", frame), ("closed", connection)])
        self.assertEqual(connection.maxBody, 1000 - F.HEADER_SIZE)

    def test_firstRequestAuthenticated(self) -> None:
        """
        With an auth callable, a request of a connection not authenticated
        yet goes to C{authenticate}, whose L{Deferred} holds the next frames.
        """
        dispatcher = RecordingDispatcher(auth=lambda token, session: True)
        connection = RpcConnection(dispatcher)
        session = FakeSession()
        connection.onOpen(session)
        frame = request()
        self.assertIs(connection.onMessage(session, frame), dispatcher.deciding)
        self.assertEqual(dispatcher.seen[1:], [("authenticate", frame)])

    def test_heartbeatAnsweredByTheConnection(self) -> None:
        """
        A heartbeat is answered by the connection itself; the dispatcher
        hears nothing of it.
        """
        dispatcher = RecordingDispatcher()
        connection = RpcConnection(dispatcher)
        session = FakeSession()
        connection.onOpen(session)
        connection.onMessage(session, F.Frame(F.HEARTBEAT_REQUEST, 7, None, b"", JSON))
        [answer] = session.written
        self.assertEqual((answer.type, answer.requestId), (F.HEARTBEAT_RESPONSE, 7))
        self.assertEqual([kind for kind, _ in dispatcher.seen], ["opened"])
