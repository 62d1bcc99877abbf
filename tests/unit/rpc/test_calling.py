"""
Tests for L{txgetty.rpc.calling}: the client side of one RPC connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.errors import SessionClosedError
from txgetty.interfaces import ICallOwner, IEventListener
from txgetty.rpc import RpcClient
from txgetty.rpc import frame as F
from txgetty.rpc.calling import ClientCall, ClientConnection
from txgetty.rpc.errors import ConnectionLostError
from txgetty.rpc.serializers import JSON


@implementer(ICallOwner)
class Owner:
    """
    An L{ICallOwner} that records what its connections report.
    """

    serializer = JSON

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def connectionOpened(self, session: Any) -> None:
        self.events.append(("opened", session))

    def connectionClosed(self) -> None:
        self.events.append(("closed",))

    def callAnswered(self, pending: Any, frame: Any) -> None:
        self.events.append(("answered", pending.name, frame.requestId))

    def callLost(self, pending: Any, error: Exception) -> None:
        self.events.append(("lost", pending.name, error))

    def serverIdle(self, address: str) -> None:
        self.events.append(("idle", address))


class FakeSession:
    """
    What a connection uses of its session.
    """

    cronPeriod = 15.0

    def __init__(self) -> None:
        self.written: list[F.Frame] = []
        self.closedWith: Any = None
        self.isClosed = False
        self.closeReason: Any = None

    def writePkg(self, frame: F.Frame) -> None:
        if self.isClosed:
            raise SessionClosedError("closed")
        self.written.append(frame)

    def close(self, reason: Any = None) -> None:
        self.closedWith, self.isClosed = reason, True


class ClientConnectionTests(SynchronousTestCase):
    """
    L{ClientConnection}.
    """

    def setUp(self) -> None:
        self.owner = Owner()
        self.connection = ClientConnection(self.owner, "127.0.0.1:8091")
        self.session = FakeSession()
        self.connection.onOpen(self.session)

    def pend(self, name: str = "Calc.add") -> ClientCall:
        """
        @return: a call pending on the connection under a new id.
        """
        call = ClientCall(Deferred(), name, (), {})
        call.requestId = self.connection.newId()
        self.connection.pending[call.requestId] = call
        return call

    def test_interfaces(self) -> None:
        """
        The connection is a session listener; L{RpcClient} provides what it
        needs of its client.
        """
        verifyObject(IEventListener, self.connection)
        verifyObject(ICallOwner, RpcClient(["127.0.0.1:1"], reactor=Clock()))
        self.assertEqual(self.owner.events, [("opened", self.session)])

    def test_newIdSkipsZeroAndPending(self) -> None:
        """
        Request ids are never 0 (heartbeats and the going-away notice) and
        never one still pending, across the 32-bit wrap.
        """
        self.connection.nextId = 0xFFFFFFFE
        first = self.pend()
        self.assertEqual(first.requestId, 0xFFFFFFFF)
        self.connection.pending[1] = first
        self.assertEqual(self.connection.newId(), 2)

    def test_response(self) -> None:
        """
        A response is reported with its call, which leaves the pending
        ones; with none left the server is idle.
        """
        call = self.pend()
        self.connection.onMessage(self.session, F.Frame(F.RESPONSE, call.requestId, {}, b"3", JSON))
        self.assertEqual(self.owner.events[1:], [("answered", "Calc.add", call.requestId), ("idle", "127.0.0.1:8091")])
        self.assertEqual(self.connection.pending, {})

    def test_unknownResponseIgnored(self) -> None:
        """
        A response to no pending call is dropped.
        """
        self.connection.onMessage(self.session, F.Frame(F.RESPONSE, 77, {}, b"3", JSON))
        self.assertEqual(self.owner.events[1:], [])

    def test_goingAway(self) -> None:
        """
        The going-away notice drains the connection: it closes once its
        last pending call is answered.
        """
        call = self.pend()
        self.connection.onMessage(self.session, F.Frame(F.RESPONSE, 0, {F.STATUS: F.GOING_AWAY}, b"", JSON))
        self.assertTrue(self.connection.draining)
        self.assertFalse(self.session.isClosed)
        self.connection.onMessage(self.session, F.Frame(F.RESPONSE, call.requestId, {}, b"1", JSON))
        self.assertTrue(self.session.isClosed)
        self.assertIn("going away", self.session.closedWith)

    def test_heartbeat(self) -> None:
        """
        Each cron tick sends a heartbeat; a tick with the previous one still
        unanswered closes the connection as dead; any frame answers it.
        """
        self.connection.onCron(self.session)
        self.assertEqual([f.type for f in self.session.written], [F.HEARTBEAT_REQUEST])
        self.connection.onMessage(self.session, F.Frame(F.HEARTBEAT_RESPONSE, 0, {}, b"", JSON))
        self.connection.onCron(self.session)
        self.assertFalse(self.session.isClosed)
        self.connection.onCron(self.session)
        self.assertIsInstance(self.session.closedWith, ConnectionLostError)
        self.assertIn("no answer for a whole heartbeat period (15 s)", str(self.session.closedWith))

    def test_closeLosesPending(self) -> None:
        """
        When the session closes, every pending call is reported lost with
        the close reason, then the server idle and the connection closed.
        """
        self.pend("Calc.add")
        self.pend("Calc.mul")
        self.connection.onClose(self.session)
        lost = [e for e in self.owner.events if e[0] == "lost"]
        self.assertEqual([e[1] for e in lost], ["Calc.add", "Calc.mul"])
        self.assertIn("was lost before Calc.add was answered: closed", str(lost[0][2]))
        self.assertEqual(self.owner.events[-2:], [("idle", "127.0.0.1:8091"), ("closed",)])
