"""
Tests for L{txgetty.testing}, the helpers users test their own listeners
and codecs with, and for the interface declarations of the public classes.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty import EchoListener, EventListener, HelloCodec, IEventListener, IServer, Server
from txgetty.testing import LoopbackTransport, RecordingListener, connectedSessions, sessionOnStringTransport


class SessionPairTests(SynchronousTestCase):
    """
    Tests for L{connectedSessions} and L{SessionPair}.
    """

    def test_bothOpen(self) -> None:
        """
        Both sessions are open and their listeners saw onOpen.
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        self.assertEqual((pair.server.state, pair.client.state), ("OPEN", "OPEN"))
        self.assertEqual(pair.serverListener.names(), ["open"])
        self.assertEqual(pair.clientListener.names(), ["open"])

    def test_pumpBothWays(self) -> None:
        """
        pump() carries packets both ways until nothing moves, and says
        whether anything did.
        """
        pair = connectedSessions(EchoListener(), RecordingListener(), HelloCodec())
        pair.client.writePkgs([b"1", b"2"])
        self.assertTrue(pair.pump())
        self.assertEqual(pair.clientListener.messages, [b"1", b"2"])
        self.assertFalse(pair.pump())

    def test_chunkSize(self) -> None:
        """
        pump(chunkSize=1) delivers one byte per dataReceived.
        """
        pieces: list[int] = []
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        server = pair.server

        class Spy:
            def dataReceived(self, data: bytes) -> None:
                pieces.append(len(data))
                server.dataReceived(data)

            def connectionLost(self, reason: Any) -> None:
                server.connectionLost(reason)

        pair.serverTransport.protocol = Spy()
        pair.client.writePkg(b"abc")
        pair.pump(chunkSize=1)
        self.assertEqual(pieces, [1] * 7)
        self.assertEqual(pair.serverListener.messages, [b"abc"])

    def test_cleanClose(self) -> None:
        """
        Closing one side delivers its pending packets, then a clean close to
        both: onClose alone on each side.
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        pair.client.writePkg(b"last")
        pair.client.close()
        pair.pump()
        self.assertEqual(pair.serverListener.names(), ["open", "message", "close"])
        self.assertEqual(pair.clientListener.names(), ["open", "close"])
        self.assertTrue(pair.server.closeReason.check(ConnectionDone))

    def test_abort(self) -> None:
        """
        An abort drops pending bytes; the peer sees an abnormal end (onError
        then onClose).
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        pair.client.writePkg(b"lost")
        pair.clientTransport.abortConnection()
        pair.pump()
        self.assertEqual(pair.serverListener.names(), ["open", "error", "close"])
        self.assertTrue(pair.server.closeReason.check(ConnectionLost))

    def test_pausedSideReceivesNothing(self) -> None:
        """
        A side that paused producing gets nothing until it resumes.
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        pair.serverTransport.pauseProducing()
        pair.client.writePkg(b"wait")
        pair.pump()
        self.assertEqual(pair.serverListener.messages, [])
        pair.serverTransport.resumeProducing()
        pair.pump()
        self.assertEqual(pair.serverListener.messages, [b"wait"])

    def test_advanceRunsCron(self) -> None:
        """
        advance() moves the shared clock, so onCron runs on both sides.
        """
        from txgetty.config import SessionConfig

        pair = connectedSessions(
            RecordingListener(), RecordingListener(), HelloCodec(), config=SessionConfig(cronPeriod=1.0)
        )
        pair.advance(1.2)
        self.assertIn("cron", pair.serverListener.names())
        self.assertIn("cron", pair.clientListener.names())

    def test_transportInterfaces(self) -> None:
        """
        L{LoopbackTransport} is an L{ITransport} and L{IPushProducer}, and
        refuses text.
        """
        transport = LoopbackTransport(None, None)
        self.assertTrue(verifyObject(ITransport, transport))
        self.assertTrue(verifyObject(IPushProducer, transport))
        self.assertRaises(TypeError, transport.write, "text")


class StringTransportSessionTests(SynchronousTestCase):
    """
    Tests for L{sessionOnStringTransport}.
    """

    def test_feedAndRead(self) -> None:
        """
        Bytes fed in reach the listener; what it writes is in the transport.
        """
        session, transport = sessionOnStringTransport(EchoListener(), HelloCodec())
        session.dataReceived(b"\x02\x00\x00\x00hi")
        self.assertEqual(transport.value(), b"\x02\x00\x00\x00hi")


class InterfaceTests(SynchronousTestCase):
    """
    The public classes provide the interfaces they declare.
    """

    def test_listeners(self) -> None:
        """
        L{EventListener}, L{EchoListener} and L{RecordingListener} are
        L{IEventListener}s.
        """
        for listener in (EventListener(), EchoListener(), RecordingListener()):
            self.assertTrue(verifyObject(IEventListener, listener))

    def test_server(self) -> None:
        """
        L{Server} is an L{IServer} and an L{IService}.
        """
        server = Server(["tcp:0"], lambda s: None, reactor=MemoryReactorClock())
        self.assertTrue(verifyObject(IServer, server))
        self.assertTrue(verifyObject(IService, server))

    def test_baseListenerDoesNotLogAgain(self) -> None:
        """
        The base listener's onError logs nothing: the session has logged the
        failure already (docs/contracts.md, "Logging").
        """
        from twisted.logger import globalLogPublisher
        from twisted.python.failure import Failure

        events: list[Any] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        session, _ = sessionOnStringTransport(EventListener(), HelloCodec())
        del events[:]
        EventListener().onError(session, Failure(ValueError("visible")))
        self.assertEqual(events, [])


class NewSessionCallbackTests(SynchronousTestCase):
    """
    L{connectedSessions} with real new-session callbacks, and paused ends.
    """

    def test_callbacks(self) -> None:
        """
        Each side can be set up by a new-session callback; a refusing one
        leaves that side ABORTING.
        """
        seen = []

        def serverSide(session: Any) -> None:
            seen.append("server")
            session.codec = HelloCodec()
            session.listener = EchoListener()

        pair = connectedSessions(clientListener=RecordingListener(), codec=HelloCodec(),
                                 serverNewSession=serverSide)
        pair.client.writePkg(b"x")
        pair.pump()
        self.assertEqual(pair.clientListener.messages, [b"x"])
        refused = connectedSessions(RecordingListener(), codec=HelloCodec(),
                                    clientNewSession=lambda s: False)
        self.assertEqual(refused.client.state, "ABORTING")
        self.assertEqual(seen, ["server"])

    def test_pausedEndSeesCloseAfterResume(self) -> None:
        """
        A paused end gets the other end's close only after it resumes, with
        the bytes sent before the close delivered first.
        """
        pair = connectedSessions(RecordingListener(), RecordingListener(), HelloCodec())
        pair.serverTransport.pauseProducing()
        pair.client.writePkg(b"last")
        pair.client.close()
        pair.pump()
        self.assertEqual(pair.serverListener.names(), ["open"])
        self.assertEqual(pair.clientListener.names(), ["open"])
        pair.serverTransport.resumeProducing()
        pair.pump()
        self.assertEqual(pair.serverListener.names(), ["open", "message", "close"])
        self.assertEqual(pair.clientListener.names(), ["open", "close"])
