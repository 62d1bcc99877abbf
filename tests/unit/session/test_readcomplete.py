"""
Tests for the optional listener method C{onReadComplete}
(L{txgetty.interfaces.IReadCompleteListener}), as docs/contracts.md words it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.codec import LengthPrefixedCodec
from txgetty.config import SessionConfig
from txgetty.interfaces import IReadCompleteListener
from txgetty.testing import RecordingListener, sessionOnStringTransport

CODEC = LengthPrefixedCodec(4, "big")


def framed(*payloads: bytes) -> bytes:
    """
    @return: the payloads, each behind a 4-byte big-endian length.
    """
    return b"".join(len(p).to_bytes(4, "big") + p for p in payloads)


@implementer(IReadCompleteListener)
class ReadCompleteListener(RecordingListener):
    """
    Records C{onReadComplete} with what the transport held at that moment,
    and echoes each packet.
    """

    def __init__(self) -> None:
        super().__init__()
        self.transport: Any = None
        self.hold: Deferred[None] | None = None

    def onMessage(self, session: Any, pkg: Any) -> Any:
        super().onMessage(session, pkg)
        session.writePkg(pkg)
        if pkg == b"wait":
            self.hold = Deferred()
            return self.hold
        if pkg == b"boom-later":
            self.boom = True
        return None

    def onReadComplete(self, session: Any) -> None:
        self.events.append(("readComplete", session, self.transport.value() if self.transport else None))
        if getattr(self, "boom", False):
            self.boom = False
            raise ValueError("onReadComplete failed")


class ReadCompleteTests(SynchronousTestCase):
    """
    docs/contracts.md: C{onReadComplete(session)} is called "once the packets
    of one read were delivered to onMessage and the writes they made were
    handed to the transport".
    """

    def setUp(self) -> None:
        self.listener = ReadCompleteListener()
        self.session, self.transport = sessionOnStringTransport(self.listener, CODEC, role="server")
        self.listener.transport = self.transport

    def names(self) -> list[str]:
        """
        @return: the event names after the open.
        """
        return [e[0] for e in self.listener.events if e[0] != "open"]

    def test_interface(self) -> None:
        """
        The listener provides L{IReadCompleteListener}'s method, as the RPC
        server's connections do.
        """
        from txgetty.rpc import RpcServer
        from txgetty.rpc.connection import RpcConnection

        verifyObject(IReadCompleteListener, self.listener)
        rpc = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=Clock())
        verifyObject(IReadCompleteListener, RpcConnection(rpc))

    def test_oncePerRead(self) -> None:
        """
        Three packets in one read: three C{onMessage}, then one
        C{onReadComplete}, when the three answers were written already.
        """
        self.session.dataReceived(framed(b"a", b"b", b"c"))
        self.assertEqual(self.names(), ["message", "message", "message", "readComplete"])
        self.assertEqual(self.listener.events[-1][2], framed(b"a", b"b", b"c"))
        self.session.dataReceived(framed(b"d"))
        self.assertEqual(self.names()[-2:], ["message", "readComplete"])

    def test_partialReadNotCalled(self) -> None:
        """
        A read that completes no packet delivers nothing and is not
        reported.
        """
        self.session.dataReceived(framed(b"abc")[:3])
        self.assertEqual(self.names(), [])

    def test_heldDelivery(self) -> None:
        """
        A handler that makes the session wait ends the read's delivery: it
        is reported then, and the rest, delivered once the handler is done,
        is reported again.
        """
        self.session.dataReceived(framed(b"wait", b"after"))
        self.assertEqual(self.names(), ["message", "readComplete"])
        assert self.listener.hold is not None
        self.listener.hold.callback(None)
        self.assertEqual(self.names(), ["message", "readComplete", "message", "readComplete"])

    def test_perTurn(self) -> None:
        """
        A read longer than C{maxPacketsPerTurn} is delivered over turns,
        each reported.
        """
        listener, clock = ReadCompleteListener(), Clock()
        session, transport = sessionOnStringTransport(listener, CODEC, config=SessionConfig(maxPacketsPerTurn=2),
                                                      clock=clock, role="server")
        listener.transport = transport
        session.dataReceived(framed(b"a", b"b", b"c"))
        names = [e[0] for e in listener.events if e[0] != "open"]
        self.assertEqual(names, ["message", "message", "readComplete"])
        clock.advance(0)
        names = [e[0] for e in listener.events if e[0] != "open"]
        self.assertEqual(names, ["message", "message", "readComplete", "message", "readComplete"])

    def test_notWithoutMethod(self) -> None:
        """
        A listener without the method gets its packets as always.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, CODEC, role="server")
        session.dataReceived(framed(b"a"))
        self.assertEqual(listener.messages, [b"a"])

    def test_notAfterClose(self) -> None:
        """
        A read whose packet closes the session is not reported.
        """
        class Closing(ReadCompleteListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                session.close("done")

        listener = Closing()
        session, _ = sessionOnStringTransport(listener, CODEC, role="server")
        session.dataReceived(framed(b"a"))
        self.assertNotIn("readComplete", [e[0] for e in listener.events])

    def test_raises(self) -> None:
        """
        What C{onReadComplete} raises is a handler failure of
        C{onReadComplete}: logged, and the error policy applies.
        """
        self.session.dataReceived(framed(b"boom-later"))
        errors = self.flushLoggedErrors(ValueError)
        self.assertEqual(len(errors), 1)
        self.assertEqual(self.listener.errors[0].value.args, ("onReadComplete failed",))
