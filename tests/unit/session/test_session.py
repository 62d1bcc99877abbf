"""
Tests for L{txgetty.session.Session}: packets in, packets out, handler
errors, ordered awaiting, closing, attributes, counters and settings.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IProtocol, ITCPTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.codec import HelloCodec, LengthPrefixedCodec, LineCodec, codecFromString
from txgetty.config import SessionConfig
from txgetty.errors import (
    CodecError,
    ConfigError,
    PacketTooLargeError,
    SessionClosedError,
    TruncatedPacketError,
)
from txgetty.handlers import EchoListener
from txgetty.interfaces import ISession
from txgetty.session import Session
from txgetty.testing import RecordingListener, connectedSessions, sessionOnStringTransport


HELLO = HelloCodec()


def hello(*payloads: bytes) -> bytes:
    """
    @param payloads: packets.
    @return: their hello framing.
    """
    return b"".join(HELLO.write(_Big(), p) for p in payloads)


class _Big:
    maxMsgLen = 1 << 30


class CountingTransport(StringTransport):
    """
    A L{StringTransport} that counts write and writeSequence calls.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.sequences = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.sequences += 1
        super().writeSequence(data)


class ReadTests(SynchronousTestCase):
    """
    Packets arriving.
    """

    def test_interfaces(self) -> None:
        """
        A session provides L{ISession} and L{IProtocol}.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertTrue(verifyObject(ISession, session))
        self.assertTrue(verifyObject(IProtocol, session))

    def test_orderAndCounters(self) -> None:
        """
        Packets reach onMessage once each, in wire order; the read counters
        count bytes and packets.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HELLO)
        stream = hello(b"a", b"bb", b"ccc")
        session.dataReceived(stream[:7])
        session.dataReceived(stream[7:])
        self.assertEqual(listener.messages, [b"a", b"bb", b"ccc"])
        self.assertEqual((session.bytesRead, session.packetsRead), (len(stream), 3))

    def test_readerBreakingContract(self) -> None:
        """
        A reader that claims a packet of length 0, or says "n bytes" when n
        are already there, ends the session with a L{CodecError} naming it.
        """
        for result in ((b"x", 0), (None, 1)):

            class Bad:
                def read(self, session: Any, data: bytearray) -> Any:
                    return result

                def write(self, session: Any, pkg: Any) -> bytes:
                    return b""

            listener = RecordingListener()
            session, _ = sessionOnStringTransport(listener, Bad())
            session.dataReceived(b"abc")
            self.assertTrue(listener.errors[0].check(CodecError))
            self.assertIn("Bad", listener.errors[0].getErrorMessage())
            self.assertTrue(session.isClosed)

    def test_readerCrashIsCodecError(self) -> None:
        """
        Any exception from a reader becomes a L{CodecError} that names the
        reader and the original error.
        """

        class Crashing:
            def read(self, session: Any, data: bytearray) -> Any:
                raise KeyError("boom")

            def write(self, session: Any, pkg: Any) -> bytes:
                return b""

        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, Crashing())
        session.dataReceived(b"abc")
        message = listener.errors[0].getErrorMessage()
        self.assertIn("Crashing", message)
        self.assertIn("boom", message)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_readerKeepingAView(self) -> None:
        """
        A reader that returns memoryviews into the buffer still works: the
        session continues on a copy instead of failing to resize it.
        """

        class Views:
            def read(self, session: Any, data: bytearray) -> Any:
                if not data:
                    return None, 0
                return memoryview(data)[:1], 1

            def write(self, session: Any, pkg: Any) -> bytes:
                return bytes(pkg)

        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, Views())
        session.dataReceived(b"xyz")
        self.assertEqual([bytes(m) for m in listener.messages], [b"x", b"y", b"z"])

    def test_goodPacketsBeforeGarbageDelivered(self) -> None:
        """
        Complete packets that arrived before an oversize header are delivered
        before onError.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HELLO, config=SessionConfig(maxMsgLen=10))
        session.dataReceived(hello(b"ok") + b"\xff\xff\x00\x00")
        self.assertEqual(listener.names(), ["open", "message", "error"])

    def test_dataAfterErrorIgnored(self) -> None:
        """
        Once an error is closing the session, more input is dropped.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HELLO, config=SessionConfig(maxMsgLen=10))
        session.dataReceived(b"\xff\xff\x00\x00")
        session.dataReceived(hello(b"late"))
        self.assertEqual(listener.messages, [])

    def test_inputDuringSlowOpenIsKept(self) -> None:
        """
        Bytes that arrive while an asynchronous onOpen runs are delivered once
        it finishes.
        """
        gate: Deferred = Deferred()

        class Slow(RecordingListener):
            def onOpen(self, session: Any) -> Deferred:
                super().onOpen(session)
                return gate

        listener = Slow()
        session, _ = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"early"))
        self.assertEqual(listener.messages, [])
        gate.callback(None)
        self.assertEqual(listener.messages, [b"early"])


class HandlerTests(SynchronousTestCase):
    """
    What onMessage may return or raise.
    """

    def test_exceptionClosesByDefault(self) -> None:
        """
        An exception in onMessage goes to onError and closes the session; the
        packets after it are not delivered.
        """

        class Raising(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                raise ValueError(pkg)

        listener = Raising()
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1", b"2"))
        self.assertEqual(listener.names(), ["open", "message", "error"])
        self.assertTrue(listener.errors[0].check(ValueError))
        self.assertTrue(transport.disconnecting)
        self.assertTrue(session.closeReason.check(ValueError))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_exceptionContinuePolicy(self) -> None:
        """
        With handlerErrorPolicy "continue", onError sees each failure and the
        next packets are still delivered.
        """

        class Raising(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                raise ValueError(pkg)

        listener = Raising()
        session, transport = sessionOnStringTransport(
            listener, HELLO, config=SessionConfig(handlerErrorPolicy="continue")
        )
        session.dataReceived(hello(b"1", b"2"))
        self.assertEqual(listener.names(), ["open", "message", "error", "message", "error"])
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 2)

    def test_deferredAwaitedInOrder(self) -> None:
        """
        An onMessage returning an unfired Deferred holds the next packet of
        that session (and pauses reading) until it fires.
        """
        gates: list[Deferred] = []

        class Slow(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                super().onMessage(session, pkg)
                gates.append(Deferred())
                return gates[-1]

        listener = Slow()
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1", b"2"))
        self.assertEqual(listener.messages, [b"1"])
        self.assertEqual(transport.producerState, "paused")
        session.dataReceived(hello(b"3"))
        gates[0].callback(None)
        self.assertEqual(listener.messages, [b"1", b"2"])
        gates[1].callback(None)
        self.assertEqual(listener.messages, [b"1", b"2", b"3"])
        gates[2].callback(None)
        self.assertEqual(transport.producerState, "producing")

    def test_coroutineAwaited(self) -> None:
        """
        An C{async def} onMessage is awaited before the next packet; a failure
        inside it reaches onError.
        """
        gate: Deferred = Deferred()

        class Async(RecordingListener):
            async def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                if pkg == b"1":
                    await gate
                    raise ValueError("after await")

        listener = Async()
        session, _ = sessionOnStringTransport(
            listener, HELLO, config=SessionConfig(handlerErrorPolicy="continue")
        )
        session.dataReceived(hello(b"1", b"2"))
        self.assertEqual(listener.messages, [b"1"])
        gate.callback(None)
        self.assertEqual(listener.names(), ["open", "message", "error", "message"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_firedDeferredNotPaused(self) -> None:
        """
        An already-fired Deferred does not pause anything.
        """

        class Quick(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                super().onMessage(session, pkg)
                return succeed(None)

        listener = Quick()
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1", b"2"))
        self.assertEqual(listener.messages, [b"1", b"2"])
        self.assertEqual(transport.producerState, "producing")

    def test_closeInsideOnMessageStopsDelivery(self) -> None:
        """
        A handler that closes its session gets no more packets.
        """

        class Closer(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                session.close()

        listener = Closer()
        session, _ = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"1", b"2", b"3"))
        self.assertEqual(listener.messages, [b"1"])

    def test_listenerCallbacksRaisingAreLogged(self) -> None:
        """
        onError and onClose raising are logged, never propagated.
        """

        class Grumpy(RecordingListener):
            def onError(self, session: Any, failure: Failure) -> None:
                raise RuntimeError("onError broke")

            def onClose(self, session: Any) -> None:
                raise RuntimeError("onClose broke")

        session, _ = sessionOnStringTransport(Grumpy(), HELLO)
        session.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual(session.state, "CLOSED")


class WriteTests(SynchronousTestCase):
    """
    Packets going out.
    """

    def test_batchedDuringDelivery(self) -> None:
        """
        Replies written while a read's packets are delivered leave in one
        transport write.
        """
        session, _ = sessionOnStringTransport(EchoListener(), HELLO)
        transport = CountingTransport()
        session.transport = transport
        session.dataReceived(hello(b"a", b"b", b"c"))
        self.assertEqual(transport.writes, 1)
        self.assertEqual(transport.value(), hello(b"a", b"b", b"c"))
        self.assertEqual((session.packetsWritten, session.bytesWritten), (3, 15))

    def test_writePkgsOneSequence(self) -> None:
        """
        writePkgs outside a delivery makes one writeSequence call.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        transport = CountingTransport()
        session.transport = transport
        session.writePkgs([b"x", b"y"])
        self.assertEqual((transport.sequences, transport.writes), (1, 0))
        self.assertEqual(transport.value(), hello(b"x", b"y"))
        self.assertEqual(session.packetsWritten, 2)

    def test_writeBytes(self) -> None:
        """
        writeBytes sends raw bytes, takes bytearray and memoryview, refuses
        text with a TypeError.
        """
        session, transport = sessionOnStringTransport(RecordingListener(), HELLO)
        session.writeBytes(b"a")
        session.writeBytes(bytearray(b"b"))
        session.writeBytes(memoryview(b"c"))
        self.assertEqual(transport.value(), b"abc")
        self.assertRaises(TypeError, session.writeBytes, "text")
        self.assertEqual((session.bytesWritten, session.packetsWritten), (3, 0))

    def test_writeToClosed(self) -> None:
        """
        Writing to a closed session raises L{SessionClosedError} saying which
        session and why, and writes nothing.
        """
        session, transport = sessionOnStringTransport(RecordingListener(), HELLO)
        session.close("going home")
        for write in (lambda: session.writePkg(b"x"), lambda: session.writePkgs([b"x"]),
                      lambda: session.writeBytes(b"x")):
            with self.assertRaises(SessionClosedError) as ctx:
                write()
            self.assertIn("going home", str(ctx.exception))
        self.assertEqual(transport.value(), b"")

    def test_writerErrorPropagates(self) -> None:
        """
        A packet the writer refuses raises to the caller and the session
        stays usable.
        """
        session, transport = sessionOnStringTransport(RecordingListener(), LineCodec())
        self.assertRaises(CodecError, session.writePkg, b"a\nb")
        session.writePkg(b"fine")
        self.assertEqual(transport.value(), b"fine\n")


class CloseTests(SynchronousTestCase):
    """
    Closing.
    """

    def test_idempotent(self) -> None:
        """
        close() twice keeps the first reason, and both Deferreds fire once the
        connection is gone, after onClose.
        """
        listener = RecordingListener()
        session, _ = sessionOnStringTransport(listener, HELLO)
        first = session.close("first")
        second = session.close("second")
        self.assertNoResult(first)
        session.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(session.closeReason.getErrorMessage(), "first")
        self.assertEqual(listener.names(), ["open", "close"])
        self.successResultOf(session.close())

    def test_flushesPendingBatch(self) -> None:
        """
        A close from inside onMessage sends what the batch already holds.
        """

        class ReplyAndClose(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                session.writePkg(b"bye")
                session.close()

        session, transport = sessionOnStringTransport(ReplyAndClose(), HELLO)
        session.dataReceived(hello(b"x"))
        self.assertEqual(transport.value(), hello(b"bye"))

    def test_zeroWaitTimeAborts(self) -> None:
        """
        With waitTime 0, close aborts at once.
        """
        session, transport = sessionOnStringTransport(
            RecordingListener(), HELLO, config=SessionConfig(waitTime=0)
        )
        session.close()
        self.assertTrue(transport.disconnected)

    def test_closeReasonKinds(self) -> None:
        """
        close() takes a text, an exception or a Failure as the reason.
        """
        for reason, kind in (("txt", "ConnectionClosedLocally"), (KeyError("k"), "KeyError"),
                             (Failure(ValueError("v")), "ValueError")):
            session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
            session.close(reason)
            self.assertEqual(type(session.closeReason.value).__name__, kind)


class HalfCloseTests(SynchronousTestCase):
    """
    The peer's half-close (it finished sending, it still reads): what it
    sent is answered, then the session closes.
    """

    def test_provides(self) -> None:
        """
        A session is an L{IHalfCloseableProtocol}, so Twisted tells it of a
        half-close instead of dropping the connection.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertTrue(verifyObject(IHalfCloseableProtocol, session))

    def test_repliesThenClose(self) -> None:
        """
        Packets, then the half-close: each is answered, then the session
        closes cleanly (flushing, not aborting), with C{ConnectionDone}.
        """
        class Echo(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                session.writePkg(pkg)

        listener = Echo()
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"a", b"b"))
        session.readConnectionLost()
        self.assertEqual(transport.value(), hello(b"a", b"b"))
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        self.assertTrue(session.closeReason.check(ConnectionDone))
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(listener.names(), ["open", "message", "message", "close"])

    def test_waitsForAwaitedHandler(self) -> None:
        """
        A handler still running (an unfinished L{Deferred}) when the peer
        half-closes gets to finish and answer, and so do the packets held
        behind it; only then does the session close.
        """
        pending: list[Deferred] = []

        class Slow(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Deferred:
                super().onMessage(session, pkg)
                d: Deferred = Deferred()
                d.addCallback(lambda _: session.writePkg(pkg))
                pending.append(d)
                return d

        session, transport = sessionOnStringTransport(Slow(), HELLO)
        session.dataReceived(hello(b"1", b"2"))
        session.readConnectionLost()
        self.assertFalse(transport.disconnecting)
        pending[0].callback(None)
        self.assertFalse(transport.disconnecting)
        pending[1].callback(None)
        self.assertEqual(transport.value(), hello(b"1", b"2"))
        self.assertTrue(transport.disconnecting)
        self.assertTrue(session.closeReason.check(ConnectionDone))

    def test_truncatedPacket(self) -> None:
        """
        A half-close in the middle of a packet is a L{TruncatedPacketError}
        for onError, after the whole packets before it were answered.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(listener, HELLO)
        session.dataReceived(hello(b"whole") + b"\x09\x00\x00\x00par")
        session.readConnectionLost()
        self.assertEqual(listener.names(), ["open", "message", "error"])
        self.assertTrue(listener.errors[0].check(TruncatedPacketError))
        self.assertIn("finished sending in the middle of a packet (7 of 13 bytes", listener.errors[0].getErrorMessage())
        self.assertTrue(transport.disconnecting)

    def test_onceOnly(self) -> None:
        """
        A second half-close notice changes nothing, and reading stays
        paused whatever else resumes it (the reactor would only read the
        end again).
        """
        session, transport = sessionOnStringTransport(RecordingListener(), HELLO)
        session.pauseReading()
        session.readConnectionLost()
        session.readConnectionLost()
        session.resumeReading()
        self.assertEqual(transport.producerState, "paused")

    def test_duringOpen(self) -> None:
        """
        A half-close while C{onOpen} is unfinished waits for the open, then
        the packets that arrived meanwhile are answered before the close.
        """
        opened: Deferred = Deferred()

        class LateOpen(EchoListener):
            def onOpen(self, session: Any) -> Deferred:
                return opened

        session, transport = sessionOnStringTransport(LateOpen(), HELLO)
        session.dataReceived(hello(b"early"))
        session.readConnectionLost()
        self.assertEqual(transport.value(), b"")
        opened.callback(None)
        self.assertEqual(transport.value(), hello(b"early"))
        self.assertTrue(transport.disconnecting)
        self.assertTrue(session.closeReason.check(ConnectionDone))


class SessionApiTests(SynchronousTestCase):
    """
    Attributes, statistics and settings.
    """

    def test_attributes(self) -> None:
        """
        Attributes can be set, read with a default, and removed.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertEqual(session.getAttribute("k", 1), 1)
        session.setAttribute("k", 2)
        self.assertEqual(session.getAttribute("k"), 2)
        session.removeAttribute("k")
        session.removeAttribute("missing")
        self.assertIsNone(session.getAttribute("k"))

    def test_stat(self) -> None:
        """
        stat() names the session, its state, addresses and counters.
        """
        pair = connectedSessions(EchoListener(), RecordingListener(), HELLO)
        pair.client.writePkg(b"hey")
        pair.pump()
        text = pair.server.stat()
        for part in ("tcp-session", "OPEN", "127.0.0.1:8090", "read 1 pkgs/7 B", "wrote 1 pkgs/7 B"):
            self.assertIn(part, text)

    def test_pluginValidation(self) -> None:
        """
        A listener missing methods, or a codec without read/write, is refused
        with a L{ConfigError} saying what is missing.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)

        class HalfListener:
            def onMessage(self, session: Any, pkg: Any) -> None:
                pass

        with self.assertRaises(ConfigError) as ctx:
            session.listener = HalfListener()
        self.assertIn("onOpen", str(ctx.exception))
        self.assertRaises(ConfigError, setattr, session, "reader", object())
        self.assertRaises(ConfigError, setattr, session, "writer", object())

    def test_settingValidation(self) -> None:
        """
        Bad setting values raise L{ConfigError} naming the setting.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        for name, value in (("maxMsgLen", 0), ("cronPeriod", -1), ("waitTime", "x"),
                            ("readIdleTimeout", -2), ("packetTimeout", None), ("tcpNoDelay", 1),
                            ("keepAlivePeriod", 0), ("handlerErrorPolicy", "explode")):
            with self.assertRaises(ConfigError) as ctx:
                setattr(session, name, value)
            self.assertIn(name, str(ctx.exception))
        self.assertRaises(ConfigError, SessionConfig, maxMsgLen=-5)

    def test_tcpOptionsApplied(self) -> None:
        """
        No-delay and keepalive settings reach a TCP transport, at connect and
        when changed later.
        """

        @implementer(ITCPTransport)
        class TCP(StringTransport):
            def __init__(self) -> None:
                super().__init__()
                self.calls: list[tuple] = []

            def setTcpNoDelay(self, enabled: bool) -> None:
                self.calls.append(("nodelay", enabled))

            def setTcpKeepAlive(self, enabled: bool) -> None:
                self.calls.append(("keepalive", enabled))

        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        transport = TCP()
        session.transport = transport
        session._applySocketOptions()
        self.assertEqual(transport.calls, [("nodelay", True), ("keepalive", True)])
        session.tcpNoDelay = False
        self.assertEqual(transport.calls[-2], ("nodelay", False))

    def test_isClosed(self) -> None:
        """
        isClosed turns true when close starts, and state names the step.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertFalse(session.isClosed)
        self.assertEqual(session.state, "OPEN")
        session.close()
        self.assertTrue(session.isClosed)
        self.assertEqual(session.state, "CLOSING")

    def test_readerStateResetWithReader(self) -> None:
        """
        Setting a new reader clears readerState.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), LineCodec())
        session.dataReceived(b"partial")
        self.assertIsNotNone(session.readerState)
        session.codec = LineCodec()
        self.assertIsNone(session.readerState)


class ErrorWriteTests(SynchronousTestCase):
    """
    onError of an open session may still write a last message.
    """

    def test_lastWordsFlushed(self) -> None:
        """
        onError for a codec error runs in state ERRORING: its write is sent
        before the connection closes; the session is already isClosed.
        """

        class Polite(RecordingListener):
            def onError(self, session: Any, failure: Failure) -> None:
                super().onError(session, failure)
                self.state = (session.state, session.isClosed)
                session.writePkg(b"bye: " + failure.getErrorMessage().encode()[:20])

        listener = Polite()
        session, transport = sessionOnStringTransport(listener, HELLO, config=SessionConfig(maxMsgLen=10))
        session.dataReceived(b"\xff\x00\x00\x00")
        self.assertEqual(listener.state, ("ERRORING", True))
        self.assertTrue(transport.value().startswith(b"\x19\x00\x00\x00bye: packet of 255"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(session.state, "CLOSING")

    def test_closeInsideOnError(self) -> None:
        """
        onError may close the session itself, with its own reason.
        """

        class Closer(RecordingListener):
            def onError(self, session: Any, failure: Failure) -> None:
                session.close("my reason")

        session, transport = sessionOnStringTransport(Closer(), HELLO, config=SessionConfig(maxMsgLen=10))
        session.dataReceived(b"\xff\x00\x00\x00")
        self.assertEqual(session.state, "CLOSING")
        self.assertTrue(transport.disconnecting)


class TurnTests(SynchronousTestCase):
    """
    A read hands at most maxPacketsPerTurn packets to onMessage; the rest
    follow from the next reactor turns, in order, reading paused meanwhile.
    """

    def session(self, listener: Any = None, **config: Any) -> tuple[Session, StringTransport, Clock, Any]:
        """
        @return: a session, its transport, its clock and its listener.
        """
        clock = Clock()
        listener = listener or EchoListener()
        session, transport = sessionOnStringTransport(listener, HelloCodec(), clock=clock,
                                                      config=SessionConfig(**config))
        return session, transport, clock, listener

    def stream(self, count: int) -> tuple[list[bytes], bytes]:
        """
        @return: C{count} payloads and their frames, joined.
        """
        payloads = [b"%d" % i for i in range(count)]
        return payloads, b"".join(map(hello, payloads))

    def test_boundedTurns(self) -> None:
        """
        1000 packets in one read, 256 per turn: 256 echoed at once in one
        write, reading paused; the next turns give the rest, in wire order,
        then reading resumes.
        """
        session, transport, clock, _ = self.session()
        payloads, data = self.stream(1000)
        session.dataReceived(data)
        self.assertEqual(transport.value(), b"".join(map(hello, payloads[:256])))
        self.assertEqual(transport.producerState, "paused")
        clock.advance(0)
        self.assertEqual(transport.value(), data)
        self.assertEqual(transport.producerState, "producing")

    def test_arrivingMeanwhileWaits(self) -> None:
        """
        Bytes that arrive during the turns (a TLS layer may still deliver
        some) come after the packets that wait.
        """
        listener = RecordingListener()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        payloads, data = self.stream(25)
        session.dataReceived(data)
        session.dataReceived(hello(b"late"))
        self.assertEqual(listener.messages, payloads[:10])
        clock.advance(0)
        self.assertEqual(listener.messages, payloads + [b"late"])

    def test_awaitedHandlerInATurn(self) -> None:
        """
        A handler awaited in the middle of a turn holds the rest of the turn
        and the following turns behind it, in order.
        """
        waits: list[Deferred] = []

        class Awaiting(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> Any:
                super().onMessage(session, pkg)
                if pkg == b"5":
                    waits.append(Deferred())
                    return waits[-1]
                return None

        listener = Awaiting()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        payloads, data = self.stream(30)
        session.dataReceived(data)
        self.assertEqual(listener.messages, payloads[:6])
        clock.advance(0)
        self.assertEqual(listener.messages, payloads[:6])
        waits[0].callback(None)
        clock.advance(0)
        self.assertEqual(listener.messages, payloads)
        self.assertEqual(transport.producerState, "producing")

    def test_halfCloseAndClose(self) -> None:
        """
        A peer that half-closes during the turns gets every packet answered
        before the session closes; a handler that closes the session drops
        the packets still waiting.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=10)
        payloads, data = self.stream(25)
        session.dataReceived(data)
        session.readConnectionLost()
        self.assertEqual(session.state, "OPEN")
        clock.advance(0)
        self.assertEqual(transport.value(), data)
        self.assertEqual(session.state, "CLOSING")

        class Closer(RecordingListener):
            def onMessage(self, session: Any, pkg: Any) -> None:
                super().onMessage(session, pkg)
                if pkg == b"12":
                    session.close()

        listener = Closer()
        session, transport, clock, _ = self.session(listener, maxPacketsPerTurn=10)
        session.dataReceived(data)
        clock.advance(0)
        self.assertEqual(listener.messages, payloads[:13])
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_noBound(self) -> None:
        """
        maxPacketsPerTurn 0 delivers everything a read holds at once.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=0)
        payloads, data = self.stream(5000)
        session.dataReceived(data)
        self.assertEqual(transport.value(), data)

    def test_turnCancelledWithConnection(self) -> None:
        """
        A connection lost while packets wait for their turn leaves no call
        behind.
        """
        session, transport, clock, _ = self.session(maxPacketsPerTurn=10)
        session.dataReceived(self.stream(100)[1])
        session.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([c for c in clock.getDelayedCalls() if c.active()], [])


class CountHeaderTests(SynchronousTestCase):
    """
    maxMsgLen counts the payload of a length-prefixed packet; with
    countHeader it counts the header too, as getty does.
    """

    def test_payloadOnly(self) -> None:
        """
        By default a 10-byte payload passes maxMsgLen 10, 11 bytes do not.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HelloCodec(),
                                              config=SessionConfig(maxMsgLen=10))
        codec = HelloCodec()
        self.assertEqual(codec.read(session, bytearray(hello(b"x" * 10))), (b"x" * 10, 14))
        e = self.assertRaises(PacketTooLargeError, codec.read, session, bytearray(hello(b"x" * 11)))
        self.assertEqual((e.length, e.limit), (11, 10))

    def test_gettyRule(self) -> None:
        """
        With countHeader, pkgLen + 4 > maxMsgLen is refused: 6 bytes of
        payload pass maxMsgLen 10, 7 do not, in read and readPackets, and
        the error names the header.
        """
        for codec in (HelloCodec(countHeader=True), codecFromString("hello:count-header"),
                      LengthPrefixedCodec(4, "little", countHeader=True)):
            session, _ = sessionOnStringTransport(RecordingListener(), codec, config=SessionConfig(maxMsgLen=10))
            self.assertEqual(codec.read(session, bytearray(hello(b"x" * 6))), (b"x" * 6, 10))
            e = self.assertRaises(PacketTooLargeError, codec.read, session, bytearray(hello(b"x" * 7)))
            self.assertEqual((e.length, e.limit), (11, 10))
            self.assertIn("4-byte header included", str(e))
            out: list[bytes] = []
            buf = bytearray(hello(b"y" * 6) + hello(b"y" * 7))
            e = self.assertRaises(PacketTooLargeError, codec.readPackets, session, buf, out)
            self.assertEqual((out, e.length), ([b"y" * 6], 11))

    def test_specs(self) -> None:
        """
        The codec specs take :count-header after hello and length specs
        only.
        """
        self.assertTrue(codecFromString("length:2:count-header").countHeader)
        self.assertTrue(codecFromString("length:4:big:count-header").countHeader)
        self.assertFalse(codecFromString("length:4:big").countHeader)
        self.assertEqual(repr(codecFromString("hello:count-header")),
                         "LengthPrefixedCodec(size=4, byteorder='little', countHeader=True)")
        for bad in ("line:count-header", "length:count-header", "raw:count-header"):
            self.assertRaises(ConfigError, codecFromString, bad)
        self.assertRaises(ConfigError, LengthPrefixedCodec, 4, "big", "yes")


class ContractTests(SynchronousTestCase):
    """
    The named contracts other packages use instead of the session's
    private state: C{fail}, C{acceptsWrites}, C{backlogFull}, C{maxMsgLen}.
    """

    def test_failClosesWithTheFailure(self) -> None:
        """
        C{fail(failure)} of an open session tells C{onError} the failure,
        closes the session and keeps the failure as C{closeReason}; an
        exception is wrapped in a L{Failure}.
        """
        listener = RecordingListener()
        session, transport = sessionOnStringTransport(listener, HELLO)
        self.assertTrue(verifyObject(ISession, session))
        session.fail(CodecError("a text message"))
        self.assertTrue(session.isClosed)
        self.assertIsInstance(session.closeReason.value, CodecError)
        self.assertEqual([type(f.value) for f in listener.errors], [CodecError])
        self.assertTrue(transport.disconnecting)

    def test_acceptsWrites(self) -> None:
        """
        C{acceptsWrites} is C{True} while the session is open and C{False}
        once it closes, as C{writePkg} accepts or refuses.
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertTrue(session.acceptsWrites)
        session.close()
        self.assertFalse(session.acceptsWrites)
        self.assertRaises(SessionClosedError, session.writePkg, b"late")

    def test_backlogFullIsNotTheUsersPause(self) -> None:
        """
        C{backlogFull} is C{False} for an open session even while the
        application paused reading itself (only a full task-pool backlog
        makes it C{True}).
        """
        session, _ = sessionOnStringTransport(RecordingListener(), HELLO)
        self.assertFalse(session.backlogFull)
        session.pauseReading()
        self.assertFalse(session.backlogFull)
