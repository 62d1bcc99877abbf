"""
Tests for the logging rule of docs/contracts.md ("Logging"): an unexpected
exception from a listener callback, the new-session callback or a reader is
logged once, at error level, with its traceback and the fields C{session},
C{peer}, C{callback}, C{listener}, C{error}, C{why} and C{outcome}; a
routine end (the peer left, a timeout, a peer's bad bytes) is one info line
without a traceback; a clean close is not logged.  Unit tests on a
L{StringTransport}, then every transport and a client over real loopback
sockets.
"""

from __future__ import annotations

from typing import Any
import gc

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.codec import HelloCodec, LineCodec
from txgetty.config import SessionConfig
from txgetty.errors import CodecError, OpenTimeoutError, PacketTooLargeError, ReadIdleTimeoutError
from txgetty.handlers import EventListener
from txgetty.session.errorlog import ROUTINE_ERRORS, isRoutine
from txgetty.testing import RecordingListener, connectedSessions, sessionOnStringTransport

from ...support.net import helloFrames as hello
from ...support.logs import (
    Raising,
    assertLoggedOnce,
    assertRoutineOnce,
    captureEvents,
    failureEvents,
    raisingDeferred,
    routineEvents,
)


HELLO = HelloCodec()


LISTENER = f"{Raising.__module__}.Raising"


class ClassificationTests(SynchronousTestCase):
    """
    Which errors are routine.
    """

    def test_routine(self) -> None:
        """
        Codec errors, timeouts, lost or refused connections are routine;
        a KeyError or a TypeError is not.
        """
        for exc in (CodecError("x"), PacketTooLargeError(5, 1), ReadIdleTimeoutError("x"),
                    OpenTimeoutError("x"), ConnectionLost(), ConnectionDone()):
            self.assertTrue(isRoutine(Failure(exc)), exc)
        for exc in (KeyError("x"), TypeError("x"), RuntimeError("x")):
            self.assertFalse(isRoutine(Failure(exc)), exc)
        self.assertIn(CodecError, ROUTINE_ERRORS)


class HandlerErrorTests(SynchronousTestCase):
    """
    Exceptions from listener callbacks on a session over a StringTransport.
    """

    def setUp(self) -> None:
        self.events = captureEvents(self)

    def test_onMessageRaises(self) -> None:
        """
        onMessage raising KeyError is logged once at error level with the
        traceback, the session, the peer, the listener class and the
        callback; the line names the exception type; onError still gets it.
        """
        listener = Raising("onMessage")
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1", b"2"))
        event = assertLoggedOnce(self, self.events, KeyError, session=session, callback="onMessage",
                                 listener=LISTENER, peer="tcp:127.0.0.1:40000", error="KeyError")
        text = formatEvent(event)
        self.assertIn(f"{LISTENER}.onMessage raised KeyError: 'nokey'", text)
        self.assertIn('the session closes (handlerErrorPolicy "close")', text)
        self.assertIn("in _maybeRaise", event["log_failure"].getTraceback())
        self.assertEqual(listener.names(), ["open", "message", "error"])
        self.assertEqual(routineEvents(self.events, "KeyError"), [])

    def test_continuePolicy(self) -> None:
        """
        With handlerErrorPolicy "continue" each failing packet is logged
        once, saying the session goes on.
        """
        listener = Raising("onMessage")
        session, _ = sessionOnStringTransport(listener, HELLO, config=SessionConfig(handlerErrorPolicy="continue"))
        session.dataReceived(hello(b"1", b"2"))
        found = failureEvents(self.events, KeyError)
        self.assertEqual(len(found), 2)
        self.assertTrue(all(e["log_level"] == LogLevel.error for e in found))
        self.assertIn("the session goes on", formatEvent(found[0]))
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)

    def test_closedThenRaised(self) -> None:
        """
        A handler that closes its session and then raises is still logged
        (once), though the session is already closing.
        """

        class CloseThenRaise(EventListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                session.close()
                raise ValueError("after close")

        session, _ = sessionOnStringTransport(CloseThenRaise(), HELLO)
        session.dataReceived(hello(b"1"))
        event = assertLoggedOnce(self, self.events, ValueError, callback="onMessage")
        self.assertIn("already closing", formatEvent(event))

    def test_deferredFailsLater(self) -> None:
        """
        An onMessage Deferred that fails after delivery went on is logged
        once: no second "Unhandled error in Deferred" once it is collected.
        """
        gates: list[Deferred] = []

        class Slow(EventListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                gates.append(raisingDeferred(RuntimeError("late")))
                return gates[-1]

        session, _ = sessionOnStringTransport(Slow(), HELLO)
        session.dataReceived(hello(b"1"))
        gates.pop().callback(None)
        gc.collect()
        assertLoggedOnce(self, self.events, RuntimeError, callback="onMessage", session=session)

    def test_coroutineFailsAfterAwait(self) -> None:
        """
        An async onMessage failing after an await is logged once with the
        coroutine's frame in the traceback.
        """
        gate: Deferred = Deferred()

        class Async(EventListener):
            async def onMessage(self, session: Any, pkg: Any) -> None:
                await gate
                raise LookupError("after await")

        session, _ = sessionOnStringTransport(Async(), HELLO)
        session.dataReceived(hello(b"1"))
        gate.callback(None)
        gc.collect()
        event = assertLoggedOnce(self, self.events, LookupError, callback="onMessage")
        self.assertIn("in onMessage", event["log_failure"].getTraceback())

    def test_deferredFailsAfterClose(self) -> None:
        """
        A handler Deferred failing after its session closed is logged once,
        saying so; not given to onError.
        """
        gates: list[Deferred] = []

        class Slow(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                gates.append(raisingDeferred(RuntimeError("too late")))
                return gates[-1]

        listener = Slow()
        session, _ = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1"))
        session.connectionLost(Failure(ConnectionDone()))
        gates.pop().callback(None)
        gc.collect()
        event = assertLoggedOnce(self, self.events, RuntimeError, callback="onMessage")
        self.assertIn("after the session closed", formatEvent(event))
        self.assertEqual(listener.errors, [])

    def test_onCron(self) -> None:
        """
        onCron raising is logged once with callback onCron.
        """
        listener = Raising("onCron")
        session, _ = sessionOnStringTransport(listener, HELLO, config=SessionConfig(cronPeriod=1.0))
        session._clock.advance(1.2)
        assertLoggedOnce(self, self.events, KeyError, callback="onCron", listener=LISTENER)

    def test_asyncCron(self) -> None:
        """
        An async onCron failing is logged once.
        """

        class AsyncCron(EventListener):
            async def onCron(self, session: Any) -> None:
                raise ArithmeticError("cron")

        session, _ = sessionOnStringTransport(AsyncCron(), HELLO, config=SessionConfig(cronPeriod=1.0))
        session._clock.advance(1.2)
        gc.collect()
        assertLoggedOnce(self, self.events, ArithmeticError, callback="onCron")

    def test_onOpen(self) -> None:
        """
        onOpen raising is logged once: the connection is dropped, the
        session never opened.
        """
        listener = Raising("onOpen")
        session, transport = sessionOnStringTransport(listener, HELLO)
        event = assertLoggedOnce(self, self.events, KeyError, callback="onOpen", listener=LISTENER)
        self.assertIn("never opened", formatEvent(event))
        self.assertTrue(transport.disconnecting)

    def test_onOpenDeferredFails(self) -> None:
        """
        An onOpen Deferred that fails is logged once.
        """
        gate = raisingDeferred(OverflowError("open"))

        class SlowOpen(EventListener):
            def onOpen(self, session: Any) -> Deferred:
                return gate

        session, _ = sessionOnStringTransport(SlowOpen(), HELLO)
        gate.callback(None)
        gc.collect()
        assertLoggedOnce(self, self.events, OverflowError, callback="onOpen")

    def test_onCloseAndOnErrorRaise(self) -> None:
        """
        onError and onClose raising are logged once each ("ignored"); the
        session still ends.
        """
        listener = Raising("onError", "onClose")
        session, _ = sessionOnStringTransport(listener, HELLO)
        session.connectionLost(Failure(ConnectionLost()))
        found = failureEvents(self.events, KeyError)
        self.assertEqual([e["callback"] for e in found], ["onError", "onClose"])
        self.assertTrue(all(e["log_level"] == LogLevel.error and "ignored" in formatEvent(e) for e in found))
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 2)
        self.assertEqual(session.state, "CLOSED")

    def test_onWritabilityChanged(self) -> None:
        """
        onWritabilityChanged raising is logged once.
        """
        listener = Raising("onWritabilityChanged")
        session, transport = sessionOnStringTransport(
            listener, HELLO, config=SessionConfig(writeHighMark=10, writeLowMark=5)
        )
        transport.producer = None
        session._setWritable(False)
        assertLoggedOnce(self, self.events, KeyError, callback="onWritabilityChanged")

    def test_newSessionCallback(self) -> None:
        """
        A new-session callback that raises is logged once, with its
        traceback, the connection refused.
        """

        def newSession(session: Any) -> None:
            session.codec = HELLO
            raise NameError("in the callback")

        pair = connectedSessions(serverNewSession=newSession, clientListener=RecordingListener(), codec=HELLO)
        self.assertEqual(pair.server.state, "ABORTING")
        event = assertLoggedOnce(self, self.events, NameError, callback="newSession", listener=None)
        self.assertIn("refused", formatEvent(event))

    def test_readerBug(self) -> None:
        """
        A reader raising something else than a CodecError is logged once
        with its traceback (callback "reader", the reader's class); the
        CodecError that closes the session is not logged again.
        """

        class Broken:
            def read(self, session: Any, data: bytearray) -> Any:
                return data[99], 1

            def write(self, session: Any, pkg: Any) -> bytes:
                return b""

        session, _ = sessionOnStringTransport(RecordingListener(), Broken())
        session.dataReceived(b"abc")
        event = assertLoggedOnce(self, self.events, IndexError, callback="reader")
        self.assertTrue(event["listener"].endswith(".Broken"), event["listener"])
        self.assertEqual(routineEvents(self.events, "CodecError"), [])


class RoutineEndTests(SynchronousTestCase):
    """
    Routine ends: one info line, no traceback; a clean close: nothing.
    """

    def setUp(self) -> None:
        self.events = captureEvents(self)

    def test_codecError(self) -> None:
        """
        A peer's oversize header is one info line naming PacketTooLargeError.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO, config=SessionConfig(maxMsgLen=10))
        session.dataReceived(b"\xff\xff\xff\x00")
        event = assertRoutineOnce(self, self.events, "PacketTooLargeError", session=session, callback=None)
        self.assertIn("exceeds the limit", formatEvent(event))

    def test_lineCodecError(self) -> None:
        """
        A line longer than maxMsgLen is one info line.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), LineCodec(), config=SessionConfig(maxMsgLen=4))
        session.dataReceived(b"0123456789")
        assertRoutineOnce(self, self.events, "PacketTooLargeError")

    def test_readIdleTimeout(self) -> None:
        """
        readIdleTimeout expiring is one info line.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO, config=SessionConfig(readIdleTimeout=1.0))
        session._clock.advance(1.5)
        session._clock.advance(0.2)
        assertRoutineOnce(self, self.events, "ReadIdleTimeoutError", peer="tcp:127.0.0.1:40000")

    def test_connectionLost(self) -> None:
        """
        A reset connection is one info line.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        session.connectionLost(Failure(ConnectionLost("reset")))
        assertRoutineOnce(self, self.events, "ConnectionLost")

    def test_cleanCloseIsNotLogged(self) -> None:
        """
        A clean close by the peer, or by this side, logs nothing about the
        session's end.
        """
        for end in ("peer", "local"):
            del self.events[:]
            session, transport = sessionOnStringTransport(RecordingListener(), HELLO)
            if end == "local":
                session.close()
            session.connectionLost(Failure(ConnectionDone()))
            self.assertEqual([e for e in self.events if e.get("session") is session], [], end)

    def test_handlerCodecErrorIsRoutine(self) -> None:
        """
        A handler raising CodecError (rejecting a peer's bad packet) is
        routine: one info line naming the listener.
        """

        class Picky(EventListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                raise CodecError("not JSON")

        session, _ = sessionOnStringTransport(Picky(), HELLO)
        session.dataReceived(hello(b"{"))
        event = assertRoutineOnce(self, self.events, "CodecError", callback="onMessage")
        self.assertIn("Picky.onMessage raised CodecError: not JSON", formatEvent(event))
