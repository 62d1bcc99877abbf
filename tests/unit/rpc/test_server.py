"""
Tests for L{txgetty.rpc.server.RpcServer} and its L{ServiceRegistry}: raw
frames sent over in-memory sessions on a fake clock (L{FrameClient}), so
that deadlines, drains and idle timeouts are exact.  (Blocking methods and
a shutdown over real sockets are in L{tests.integration.test_rpc_client}.)
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.config import SessionConfig
from txgetty.errors import CodecError, FirstPacketTimeoutError, PacketTooLargeError, ReadIdleTimeoutError
from txgetty.rpc import (
    BadResponse,
    CallInfo,
    Echo,
    RpcServer,
    ServiceError,
    frame as F,
    registerBuiltins,
    rpcmethod,
)
from txgetty.rpc.serializers import GZIP, MSGPACK, NONE, ZLIB
from txgetty.rpc.server import DRAIN_GRACE, cutText, errorCode, errorHead

from ...support.docs import DOCS
from ...support.rpc import (
    Failing,
    FrameClient,
    LATER,
    LogCapture,
    Marked,
    Plain,
    RecordingHook,
    calcOf,
    calcServer,
    requestFrame,
    resultOf,
)


class ServerTestCase(SynchronousTestCase):
    """
    A server on a fake clock with C{Calc}, C{Plain} and C{Failing}.
    """

    def setUp(self) -> None:
        """
        Make the clock (a memory reactor, so that the server can "listen").
        """
        self.clock = MemoryReactorClock()
        del LATER[:]

    def makeServer(self, **kw: Any) -> RpcServer:
        """
        @param kw: L{RpcServer} arguments.
        @return: the server (not listening: sessions are made in memory).
        """
        rpc = calcServer(self.clock, **kw)
        rpc.register(Plain())
        rpc.register(Failing())
        return rpc

    def connect(self, rpc: RpcServer | None = None, **kw: Any) -> FrameClient:
        """
        @param rpc: the server, or C{None} for a new one made with C{kw}.
        @return: a raw frame client connected to it in memory.
        """
        return FrameClient(rpc or self.makeServer(**kw), self.clock)


class CallTests(ServerTestCase):
    """
    Requests, responses, errors and oneway calls.
    """

    def test_results(self) -> None:
        """
        Positional and keyword arguments reach the method; its result comes
        back in the response to the same request id.
        """
        client = self.connect()
        client.call(1, "Calc.add", 2, 3)
        client.call(2, "Plain.greet", "you", kwargs={"punctuation": "?"})
        client.call(3, "Plain.greet", kwargs={"name": "kw"})
        self.assertEqual([client.result(i) for i in (1, 2, 3)], [5, "hello you?", "hello kw!"])

    def test_deferredAndAsync(self) -> None:
        """
        A method may return a L{Deferred} or be C{async def}: the response
        is sent when it finishes, and later calls are not held up.
        """

        class Slow:
            """
            Deferred and coroutine methods.
            """

            def __init__(self) -> None:
                """
                Make the L{Deferred} both methods wait for.
                """
                self.d: Deferred = Deferred()

            def viaDeferred(self) -> Deferred:
                """
                @return: C{self.d}.
                """
                return self.d

            async def viaCoroutine(self, x: int) -> int:
                """
                @return: C{x} doubled, once C{self.d} fires.
                """
                await self.d
                return 2 * x

        rpc = self.makeServer()
        slow = Slow()
        rpc.register(slow)
        client = self.connect(rpc)
        client.call(1, "Slow.viaDeferred")
        client.call(2, "Slow.viaCoroutine", 21)
        client.call(3, "Calc.add", 1, 1)
        self.assertEqual([f.requestId for f in client.frames()], [3])
        slow.d.callback("done")
        client.pair.pump()
        self.assertEqual([client.result(1), client.result(2)], ["done", 42])

    def test_exceptionsAreResponses(self) -> None:
        """
        A method's exception becomes an error response with its type,
        message and code; the connection stays open and serves more calls.
        """
        client = self.connect()
        client.call(1, "Failing.coded")
        client.call(2, "Failing.bare")
        client.call(3, "Failing.later")
        LATER[0].errback(ZeroDivisionError("no zeros"))
        client.pair.pump()
        client.call(4, "Calc.add", 1, 2)
        self.assertEqual(client.error(1), {F.STATUS: "error", F.ERROR_TYPE: "ValueError",
                                           F.ERROR_MESSAGE: "the value is wrong", F.ERROR_CODE: "E42"})
        self.assertEqual((client.error(2)[F.ERROR_TYPE], client.error(2)[F.ERROR_MESSAGE]), ("KeyError", "KeyError"))
        self.assertEqual(client.error(3)[F.ERROR_MESSAGE], "no zeros")
        self.assertEqual(client.result(4), 3)
        self.assertFalse(client.serverSession.isClosed)
        self.assertEqual(client.pair.server.listener.server.status()["errors"], 3)
        self.assertEqual(len(self.flushLoggedErrors(ValueError, KeyError, ZeroDivisionError)), 3)

    def test_unknownNames(self) -> None:
        """
        Unknown services and methods, and requests naming neither, are
        answered with NoSuchService, NoSuchMethod and BadRequest listing
        what exists.
        """
        client = self.connect()
        client.call(1, "Nope.add")
        client.call(2, "Calc.nope")
        client.send(F.Frame(F.REQUEST, 3, {}, b"[]"))
        self.assertEqual(client.error(1)[F.ERROR_TYPE], "NoSuchService")
        self.assertIn("services: Calc, Failing, Health, Plain", client.error(1)[F.ERROR_MESSAGE])
        self.assertEqual(client.error(2)[F.ERROR_TYPE], "NoSuchMethod")
        self.assertIn("methods: add, note, wait, where", client.error(2)[F.ERROR_MESSAGE])
        self.assertEqual(client.error(3)[F.ERROR_TYPE], "BadRequest")
        self.assertFalse(client.serverSession.isClosed)

    def test_badBodies(self) -> None:
        """
        Undecodable bodies, unknown serializer or compressor codes and
        unserializable results are error responses; the connection stays.
        """
        client = self.connect()
        client.call(1, "Calc.add", body=b"[1,")
        client.call(2, "Calc.add", body=b"[1,2]", ser=99)
        client.call(3, "Calc.add", body=b"[1,2]", comp=99)
        client.call(4, "Failing.unserializable")
        client.call(5, "Calc.add", 1)
        errors = [client.error(i) for i in range(1, 6)]
        self.assertEqual([e[F.ERROR_TYPE] for e in errors],
                         ["FrameError", "FrameError", "FrameError", "BadResponse", "TypeError"])
        self.assertIn("cannot decode the request body", errors[0][F.ERROR_MESSAGE])
        self.assertIn("unknown serializer 99", errors[1][F.ERROR_MESSAGE])
        self.assertIn("unknown compressor 99", errors[2][F.ERROR_MESSAGE])
        self.assertIn("cannot be sent as json", errors[3][F.ERROR_MESSAGE])
        self.assertFalse(client.serverSession.isClosed)

    def test_duplicateId(self) -> None:
        """
        A request id already in flight on the connection is refused; the
        first call is unaffected.
        """
        client = self.connect()
        client.call(7, "Calc.wait")
        client.call(7, "Calc.add", 1, 2)
        [refusal] = client.frames()
        self.assertEqual(refusal.head[F.ERROR_TYPE], "BadRequest")
        self.assertIn("already in flight", refusal.head[F.ERROR_MESSAGE])
        calcOf(client.serverSession.listener.server).waiting[0].callback("first")
        client.pair.pump()
        self.assertEqual(resultOf(client.frames()[1]), "first")

    def test_oneway(self) -> None:
        """
        Oneway calls run but are never answered, not even when they fail
        or name nothing; those that ran count as calls, failures as errors
        too, and refusals as errors only.
        """
        client = self.connect()
        client.call(0, "Calc.note", "a", type=F.ONEWAY)
        client.call(0, "Failing.coded", type=F.ONEWAY)
        client.call(0, "Nope.x", type=F.ONEWAY)
        client.call(1, "Calc.add", 1, 1)
        rpc = client.serverSession.listener.server
        self.assertEqual(calcOf(rpc).seen, ["a", (1, 1)])
        self.assertEqual([f.requestId for f in client.frames()], [1])
        self.assertEqual((rpc.calls, rpc.errors), (3, 2))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_heartbeat(self) -> None:
        """
        A heartbeat request is answered by a heartbeat response with its
        id; stray responses from the client are ignored.
        """
        client = self.connect()
        client.send(F.Frame(F.HEARTBEAT_REQUEST, 77), F.Frame(F.RESPONSE, 5), F.Frame(F.HEARTBEAT_RESPONSE, 6))
        self.assertEqual(client.frames(), [F.Frame(F.HEARTBEAT_RESPONSE, 77)])

    def test_serializersAndCompression(self) -> None:
        """
        The response uses the request's serializer and compressor; results
        above C{compressThreshold} of uncompressed requests use the
        server's compressor, smaller ones are sent plain.
        """
        client = self.connect(compressor="zlib", compressThreshold=100)
        client.call(1, "Calc.add", b"\x00" * 200, b"!", ser=MSGPACK, comp=GZIP)
        client.call(2, "Calc.add", "x" * 200, "y")
        client.call(3, "Calc.add", "x", "y")
        self.assertEqual([(f.serializer, f.compressor) for f in client.frames()],
                         [(MSGPACK, GZIP), (1, ZLIB), (1, NONE)])
        self.assertEqual([client.result(i) for i in (1, 2, 3)], [b"\x00" * 200 + b"!", "x" * 200 + "y", "xy"])

    def test_blockingWithoutPool(self) -> None:
        """
        A blocking method on a server without a task pool fails with a
        clear error response.
        """
        rpc = self.makeServer()
        rpc.register(Marked())
        client = self.connect(rpc)
        client.call(1, "Marked.two")
        self.assertIn("has no taskPool", client.error(1)[F.ERROR_MESSAGE])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_status(self) -> None:
        """
        The built-in services answer, and Status reports the counters.
        """
        rpc = RpcServer(reactor=self.clock)
        registerBuiltins(rpc)
        client = self.connect(rpc)
        client.call(1, "Echo.echo", {"a": [1]})
        client.call(2, "Ping.ping")
        client.call(3, "Status.status")
        status = client.result(3)
        self.assertEqual((client.result(1), client.result(2)), ({"a": [1]}, "pong"))
        self.assertEqual((status["connections"], status["calls"], status["errors"]), (1, 2, 0))
        self.assertEqual(status["services"]["Ping"], ["ping"])


class StreamErrorTests(ServerTestCase):
    """
    Frames that break the stream close the connection with a clear error.
    """

    def test_oversizeBeforeBody(self) -> None:
        """
        A frame declaring more than the server's C{maxMsgLen} closes the
        connection as soon as its header arrives, naming the limit.
        """
        client = self.connect(config=SessionConfig(maxMsgLen=1000))
        self.assertEqual(client.serverSession.maxMsgLen, 1000)
        client.sendBytes(requestFrame(1, "Calc.add", "x" * 2000).encode()[:F.HEADER_SIZE])
        self.assertTrue(client.serverSession.isClosed)
        reason = client.serverSession.closeReason
        self.assertTrue(reason.check(PacketTooLargeError), reason)
        self.assertIn("exceeds the limit of 1000 bytes", reason.getErrorMessage())
        self.assertEqual(client.frames(), [])

    def test_badMagic(self) -> None:
        """
        Bytes that are not RPC frames close the connection with the reason.
        """
        client = self.connect()
        client.sendBytes(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(client.serverSession.closeReason.check(CodecError))
        self.assertIn("bad magic", client.serverSession.closeReason.getErrorMessage())


class CancelTests(ServerTestCase):
    """
    Deadlines, cancel frames and lost connections cancel the handler; no
    late response is sent.
    """

    def test_deadline(self) -> None:
        """
        A call still running at its C{timeout-ms} deadline is cancelled on
        the server, and never answered.
        """
        client = self.connect()
        client.call(1, "Calc.wait", head={F.TIMEOUT_MS: "500"})
        calc = calcOf(client.serverSession.listener.server)
        client.pair.advance(0.499)
        self.assertEqual(calc.cancelled, 0)
        client.pair.advance(0.001)
        self.assertEqual(calc.cancelled, 1)
        client.pair.advance(10)
        self.assertEqual(client.frames(), [])
        self.assertEqual(client.serverSession.listener.calls, {})

    def test_deadlineCoroutine(self) -> None:
        """
        An C{async def} method sees L{CancelledError} at its C{await} when
        its deadline passes.
        """
        seen: list[str] = []
        never: Deferred = Deferred()

        class Waiter:
            """
            Waits for ever.
            """

            async def forever(self) -> None:
                """
                Record how the wait ended.
                """
                try:
                    await never
                except CancelledError:
                    seen.append("cancelled")
                    raise

        rpc = self.makeServer()
        rpc.register(Waiter())
        client = self.connect(rpc)
        client.call(1, "Waiter.forever", head={F.TIMEOUT_MS: "100"})
        client.pair.advance(0.1)
        self.assertEqual((seen, client.frames()), (["cancelled"], []))

    def test_answeredBeforeDeadline(self) -> None:
        """
        A call answered before its deadline leaves no timer behind; a
        C{timeout-ms} of 0 is no deadline.
        """
        client = self.connect()
        client.call(1, "Calc.wait", head={F.TIMEOUT_MS: "1000"})
        client.call(2, "Calc.wait", head={F.TIMEOUT_MS: "0"})
        self.assertEqual(len([c for c in self.clock.getDelayedCalls() if c.func.__name__ == "_expired"]), 1)
        for d in calcOf(client.serverSession.listener.server).waiting:
            d.callback("ok")
        client.pair.pump()
        self.assertEqual([client.result(1), client.result(2)], ["ok", "ok"])
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.func.__name__ == "_expired"], [])

    def test_cancelFrame(self) -> None:
        """
        A cancel frame cancels the call with its id on the server, which
        does not answer it; cancels for unknown ids are ignored.
        """
        client = self.connect()
        client.call(1, "Calc.wait")
        client.call(2, "Calc.wait")
        client.send(F.Frame(F.CANCEL, 1), F.Frame(F.CANCEL, 99))
        calc = calcOf(client.serverSession.listener.server)
        self.assertEqual((calc.cancelled, calc.waiting[0].called, calc.waiting[1].called), (1, True, False))
        calc.waiting[1].callback("two")
        client.pair.pump()
        self.assertEqual([f.requestId for f in client.frames()], [2])

    def test_connectionLost(self) -> None:
        """
        Calls in flight are cancelled when their connection is lost.
        """
        client = self.connect()
        client.call(1, "Calc.wait")
        client.call(2, "Calc.wait")
        client.pair.clientTransport.abortConnection()
        client.pair.pump()
        rpc = client.serverSession.listener.server
        self.assertEqual((calcOf(rpc).cancelled, rpc.status()["connections"]), (2, 0))


class BusyTests(ServerTestCase):
    """
    The per-connection limit of calls in flight.
    """

    def test_busy(self) -> None:
        """
        Past C{maxInFlight} unfinished calls, a request is refused at once
        with ServerBusy (code C{busy}); a oneway past the limit is dropped
        and counted; the calls in flight are all answered and the
        connection then takes calls again.
        """
        client = self.connect(maxInFlight=2)
        rpc = client.serverSession.listener.server
        for rid in (1, 2, 3):
            client.call(rid, "Calc.wait")
        client.call(4, "Calc.note", "dropped", type=F.ONEWAY)
        busy = client.error(3)
        self.assertEqual((busy[F.ERROR_TYPE], busy[F.ERROR_CODE]), ("ServerBusy", "busy"))
        self.assertIn("maxInFlight", busy[F.ERROR_MESSAGE])
        for d in calcOf(rpc).waiting:
            d.callback("ok")
        client.pair.pump()
        client.call(5, "Calc.add", 2, 2)
        self.assertEqual([client.result(1), client.result(2), client.result(5)], ["ok", "ok", 4])
        self.assertEqual((rpc.busy, len(calcOf(rpc).waiting), calcOf(rpc).seen), (2, 2, [(2, 2)]))

    def test_otherConnections(self) -> None:
        """
        The limit is per connection: another connection is not refused.
        """
        rpc = self.makeServer(maxInFlight=1)
        first, second = self.connect(rpc), self.connect(rpc)
        first.call(1, "Calc.wait")
        second.call(1, "Calc.add", 1, 2)
        self.assertEqual(second.result(1), 3)


class AuthTests(ServerTestCase):
    """
    The auth hook, checked on a connection's first request.
    """

    def setUp(self) -> None:
        """
        Record what the hook is asked.
        """
        super().setUp()
        self.asked: list[tuple[Any, Any]] = []

    def auth(self, token: Any, session: Any) -> bool:
        """
        @return: whether the token is C{s3cret}.
        """
        self.asked.append((token, session))
        return token == "s3cret"

    def test_accepted(self) -> None:
        """
        A good C{auth} head entry opens the connection to calls; the hook
        is asked once, with the session.
        """
        client = self.connect(auth=self.auth)
        client.call(1, "Calc.add", 1, 2, head={F.AUTH: "s3cret"})
        client.call(2, "Calc.add", 2, 2)
        self.assertEqual([client.result(1), client.result(2)], [3, 4])
        self.assertEqual(self.asked, [("s3cret", client.serverSession)])

    def test_refused(self) -> None:
        """
        A wrong or missing token is answered AuthError and the connection
        is closed; the method does not run.
        """
        for head in ({F.AUTH: "guess"}, {}):
            client = self.connect(auth=self.auth)
            client.call(1, "Calc.add", 1, 2, head=head)
            self.assertEqual(client.error(1)[F.ERROR_TYPE], "AuthError")
            self.assertTrue(client.serverSession.isClosed)
            self.assertIn("authentication failed", client.serverSession.closeReason.getErrorMessage())
            self.assertEqual(client.recorder.names()[-1], "close")
            self.assertEqual(calcOf(client.serverSession.listener.server).seen, [])

    def test_hookFails(self) -> None:
        """
        An auth hook that raises refuses the connection, saying so.
        """

        def broken(token: Any, session: Any) -> bool:
            """
            @raise RuntimeError: always.
            """
            raise RuntimeError("directory down")

        client = self.connect(auth=broken)
        client.call(1, "Calc.add", 1, 2, head={F.AUTH: "x"})
        self.assertIn("the auth callable failed: directory down", client.error(1)[F.ERROR_MESSAGE])
        self.assertTrue(client.serverSession.isClosed)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_onewayRefused(self) -> None:
        """
        A refused oneway first call closes the connection without a
        response.
        """
        client = self.connect(auth=self.auth)
        client.call(0, "Calc.note", "x", type=F.ONEWAY, head={F.AUTH: "no"})
        self.assertEqual((client.frames(), client.serverSession.isClosed), ([], True))

    def test_deferredHook(self) -> None:
        """
        While an auth hook's L{Deferred} is pending, the following frames
        wait; they run in order once it accepts.
        """
        decision: Deferred = Deferred()
        client = self.connect(auth=lambda token, session: decision)
        client.call(1, "Calc.add", 1, 2, head={F.AUTH: "t"})
        client.call(2, "Calc.add", 3, 4)
        self.assertEqual(client.frames(), [])
        decision.callback(True)
        client.pair.pump()
        self.assertEqual([f.requestId for f in client.frames()], [1, 2])
        self.assertEqual(client.result(2), 7)


class HookTests(ServerTestCase):
    """
    Hooks on connect, disconnect, before and after each call.
    """

    def test_lifecycle(self) -> None:
        """
        Hooks learn of the connection, of each call (service, method, id,
        session, head map, start time) before and after it ran with its
        result or failure, and of the disconnection.
        """
        hook = RecordingHook()
        client = self.connect(hooks=[hook])
        session = client.serverSession
        self.clock.advance(5)
        client.call(9, "Calc.add", 1, 2, head={F.TRACE_ID: "t-1", "user": "ann"})
        client.call(10, "Failing.coded")
        client.call(11, "Calc.nope")
        client.pair.clientTransport.loseConnection()
        client.pair.pump()
        names = [e[0] for e in hook.events]
        self.assertEqual(names, ["connected", "before", "after", "before", "after", "disconnected"])
        info = hook.events[1][1]
        self.assertEqual((info.service, info.method, info.requestId, info.session, info.started),
                         ("Calc", "add", 9, session, 5.0))
        self.assertEqual((info.head[F.TRACE_ID], info.head["user"]), ("t-1", "ann"))
        self.assertIs(hook.events[2][1], info)
        self.assertEqual(hook.events[2][2], 3)
        failure = hook.events[4][2]
        self.assertIsInstance(failure, Failure)
        self.assertTrue(failure.check(ValueError))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertIs(hook.events[0][1], session)
        self.assertIs(hook.events[-1][1], session)

    def test_cancelledCall(self) -> None:
        """
        A call cancelled by its deadline reaches C{afterCall} with a
        L{CancelledError} failure.
        """
        hook = RecordingHook()
        client = self.connect(hooks=[hook])
        client.call(1, "Calc.wait", head={F.TIMEOUT_MS: "10"})
        client.pair.advance(0.01)
        [after] = [e for e in hook.events if e[0] == "after"]
        self.assertTrue(after[2].check(CancelledError))

    def test_brokenAndPartialHooks(self) -> None:
        """
        A hook that raises is logged and does not break the call; hooks may
        have only some of the methods, and can be added later.
        """

        class Broken:
            """
            Raises before every call.
            """

            def beforeCall(self, info: CallInfo) -> None:
                """
                @raise RuntimeError: always.
                """
                raise RuntimeError("hook bug")

        rpc = self.makeServer(hooks=[Broken()])
        later = RecordingHook()
        rpc.addHook(later)
        client = self.connect(rpc)
        client.call(1, "Calc.add", 1, 2)
        self.assertEqual(client.result(1), 3)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual([e[0] for e in later.events], ["connected", "before", "after"])


class _Slow:
    """
    A service whose method takes a second of the test's clock and notes
    the C{started} of the call it serves.
    """

    def __init__(self, clock: MemoryReactorClock) -> None:
        self.clock = clock
        self.seen: list[tuple[float, float]] = []

    def work(self) -> None:
        """
        Note (C{currentCall().started}, the clock now), then take a second.
        """
        from txgetty.rpc import currentCall

        self.seen.append((currentCall().started, self.clock.seconds()))
        self.clock.advance(1)


class StartedTests(ServerTestCase):
    """
    docs/rpc.md, currentCall(): C{started} is "the reactor time its request
    arrived: when the connection read the bytes that delivered it, so a call
    that waited behind an earlier one in the same read still shows its
    arrival".
    """

    def test_arrivalNotRunTime(self) -> None:
        """
        Two requests read at once at t=5: the second runs at t=6, after the
        first took a second, and its C{started} is still 5.
        """
        rpc = self.makeServer()
        slow = _Slow(self.clock)
        rpc.register(slow, "Slow")
        client = self.connect(rpc)
        self.clock.advance(5)
        client.send(requestFrame(1, "Slow.work"), requestFrame(2, "Slow.work"))
        self.assertEqual(slow.seen, [(5.0, 5.0), (5.0, 6.0)])
        self.assertEqual((client.result(1), client.result(2)), (None, None))


class ShutdownTests(ServerTestCase):
    """
    Graceful shutdown and idle reaping.
    """

    def test_drain(self) -> None:
        """
        Stopping sends the going-away notice (a response with request id 0
        and status going-away), lets the calls in flight finish and be
        answered while new calls get ShuttingDown; a connection closes
        DRAIN_GRACE seconds after the last call is answered (its client may
        close it before).
        """
        client = self.connect(shutdownTimeout=30)
        rpc = client.serverSession.listener.server
        rpc.startService()
        client.call(1, "Calc.wait")
        client.call(2, "Calc.wait")
        stopped = rpc.stopService()
        client.call(3, "Calc.add", 1, 2)
        self.assertEqual(client.error(3)[F.ERROR_TYPE], "ShuttingDown")
        calc = calcOf(rpc)
        calc.waiting[0].callback("one")
        client.pair.advance(10)
        self.assertFalse(client.serverSession.isClosed)
        calc.waiting[1].callback("two")
        client.pair.advance(0)
        self.assertEqual([client.result(1), client.result(2)], ["one", "two"])
        self.assertFalse(client.serverSession.isClosed)
        client.pair.advance(DRAIN_GRACE)
        client.pair.advance(0)
        self.assertTrue(client.serverSession.isClosed)
        self.successResultOf(stopped)
        self.assertEqual(calc.seen, [])
        notice = [f for f in client.frames() if f.requestId == 0]
        self.assertEqual([(f.type, dict(f.head), f.body) for f in notice], [(F.RESPONSE, {"status": "going-away"}, b"")])

    def test_drainTimeout(self) -> None:
        """
        Calls still running at C{shutdownTimeout} are cancelled without an
        answer, and the connection closes then.
        """
        client = self.connect(shutdownTimeout=2)
        rpc = client.serverSession.listener.server
        rpc.startService()
        client.call(1, "Calc.wait")
        stopped = rpc.stopService()
        client.pair.advance(1.9)
        self.assertNoResult(stopped)
        client.pair.advance(0.1)
        client.pair.advance(0)
        self.successResultOf(stopped)
        frames = [(f.type, f.requestId, dict(f.head)) for f in client.frames()]
        self.assertEqual((calcOf(rpc).cancelled, frames, client.serverSession.isClosed),
                         (1, [(F.RESPONSE, 0, {"status": "going-away"})], True))

    def test_idleReaping(self) -> None:
        """
        A connection with no frame for C{idleTimeout} seconds is closed;
        heartbeats keep it open; 0 turns reaping off.
        """
        client = self.connect(idleTimeout=30)
        for _ in range(4):
            client.pair.advance(20)
            client.send(F.Frame(F.HEARTBEAT_REQUEST, 1))
        self.assertFalse(client.serverSession.isClosed)
        client.pair.advance(31)
        self.assertTrue(client.serverSession.closeReason.check(ReadIdleTimeoutError))
        forever = self.connect(idleTimeout=0)
        forever.send(F.Frame(F.HEARTBEAT_REQUEST, 1))  # (a first frame within firstPacketTimeout)
        forever.pair.advance(10**6)
        self.assertFalse(forever.serverSession.isClosed)

    def test_firstFrameTimeout(self) -> None:
        """
        docs/rpc.md: a new connection must send its first frame within
        C{firstPacketTimeout} (60 s on a server by default); one silent from
        the start is closed with L{FirstPacketTimeoutError} even if
        C{idleTimeout} is longer. One frame in time keeps it open.
        """
        silent = self.connect(idleTimeout=300)
        silent.pair.advance(59)
        self.assertFalse(silent.serverSession.isClosed)
        silent.pair.advance(1.5)
        self.assertTrue(silent.serverSession.closeReason.check(FirstPacketTimeoutError))
        talking = self.connect(idleTimeout=300)
        talking.pair.advance(30)
        talking.send(F.Frame(F.HEARTBEAT_REQUEST, 1))
        talking.pair.advance(100)
        self.assertFalse(talking.serverSession.isClosed)


class Bad:
    """
    Methods that fail like the issue's example, or in the caller's way.
    """

    def big(self, n: int) -> str:
        """
        @return: a text of C{n} characters.
        """
        return "x" * n

    def boom(self) -> None:
        """
        @raise KeyError: a bug.
        """
        raise KeyError("missing thing")

    def inner(self) -> int:
        """
        @raise TypeError: raised inside the method: a bug too.
        """
        return len(5)  # type: ignore[arg-type]

    def refuse(self) -> None:
        """
        @raise ServiceError: an error the method means to answer with.
        """
        raise Refusal("not today", code=7)

    def one(self, x: int) -> int:
        """
        @return: C{x}.
        """
        return x

    @staticmethod
    def nothing() -> None:
        """
        Return nothing.
        """


class Refusal(ServiceError):
    """
    An application's expected error.
    """


class FakePool:
    """
    A task pool that runs functions at once (for the argument check of
    blocking methods, which happens before a thread is taken).

    @ivar ran: the functions run.
    """

    def __init__(self) -> None:
        """
        Start with nothing run.
        """
        self.ran: list[Any] = []

    def run(self, function: Any, *args: Any, **kw: Any) -> Deferred:
        """
        @return: a L{Deferred} of the function's result.
        """
        self.ran.append(function)
        return maybeDeferred(function, *args, **kw)


class Blocking:
    """
    A blocking method.
    """

    @rpcmethod(blocking=True)
    def work(self, x: int) -> int:
        """
        @return: C{x} doubled.
        """
        return 2 * x


class LogTests(ServerTestCase):
    """
    docs/rpc.md, I{Errors}: "The server logs each failed call once ...
    naming Service.method, the request id (or oneway) and the connection's
    session with the client's address": a bug at error level with its
    traceback, a ServiceError or the caller's mistake as one info line.
    """

    def setUp(self) -> None:
        """
        Capture the log; serve C{Bad} and C{Blocking}.
        """
        super().setUp()
        self.logs = LogCapture(self)
        self.rpc = self.makeServer(taskPool=FakePool())
        self.rpc.register(Bad())
        self.rpc.register(Blocking())

    def test_bugWithTraceback(self) -> None:
        """
        An unexpected exception (KeyError in Bad.boom, a TypeError raised
        inside a method, a failing Deferred, a oneway) is logged once at
        error level with its type, message, traceback, call and session;
        the caller gets the error and the connection serves more calls.
        """
        client = self.connect(self.rpc)
        client.call(1, "Bad.boom")
        client.call(2, "Bad.inner")
        client.call(3, "Failing.later")
        LATER[0].errback(ZeroDivisionError("no zeros"))
        client.pair.pump()
        client.call(0, "Bad.boom", type=F.ONEWAY)
        client.call(4, "Calc.add", 1, 2)
        self.assertEqual(client.result(4), 3)
        self.assertEqual(client.error(1)[F.ERROR_MESSAGE], "'missing thing'")
        lines = self.logs.lines()
        self.assertEqual([level for level, _ in lines], [LogLevel.error] * 4)
        session = repr(client.serverSession).split(" ")[0]
        peer = f"127.0.0.1:{client.serverSession.remoteAddress.port}"
        for (_, text), (call, kind, why, where) in zip(lines, [
            ("Bad.boom request #1", "KeyError", "'missing thing'", "in boom"),
            ("Bad.inner request #2", "TypeError", "object of type 'int' has no len()", "in inner"),
            ("Failing.later request #3", "ZeroDivisionError", "no zeros", "ZeroDivisionError"),
            ("Bad.boom oneway", "KeyError", "'missing thing'", "in boom"),
        ]):
            self.assertTrue(text.startswith(f"txgetty rpc: {call} on {session} "), text)
            self.assertIn(f"raised {kind}: {why}", text)
            self.assertIn(peer, text)
            self.assertIn("Traceback", text)
            self.assertIn(where, text)
        self.assertEqual(len(self.flushLoggedErrors(KeyError, TypeError, ZeroDivisionError)), 4)

    def test_expectedAtInfo(self) -> None:
        """
        A ServiceError, undecodable arguments and arguments the method does
        not take (a plain or a blocking method: the blocking one is
        refused before a thread is taken) are logged as one info line each,
        without a traceback, and nothing is flagged as an error.
        """
        client = self.connect(self.rpc)
        client.call(1, "Bad.refuse")
        client.call(2, "Calc.add", body=b"[1,")
        client.call(3, "Bad.one", 1, 2)
        client.call(4, "Blocking.work")
        client.call(5, "Blocking.work", 21)
        self.assertEqual(client.error(1), {F.STATUS: "error", F.ERROR_TYPE: "Refusal", F.ERROR_MESSAGE: "not today",
                                           F.ERROR_CODE: "7"})
        self.assertEqual(client.error(3)[F.ERROR_TYPE], "TypeError")
        self.assertEqual(client.error(4)[F.ERROR_MESSAGE],
                         "Blocking.work() missing a required argument: 'x'")
        self.assertEqual(client.result(5), 42)
        self.assertEqual(self.rpc.taskPool.ran, [self.rpc.registry.lookup("Blocking", "work").function])
        lines = self.logs.lines()
        self.assertEqual([level for level, _ in lines], [LogLevel.info] * 4)
        for (_, text), (call, kind) in zip(lines, [("Bad.refuse request #1", "Refusal: not today"),
                                                   ("Calc.add request #2", "FrameError: cannot decode"),
                                                   ("Bad.one request #3", "TypeError: "),
                                                   ("Blocking.work request #4", "TypeError: Blocking.work()")]):
            self.assertIn(call, text)
            self.assertIn(f"raised {kind}", text)
            self.assertNotIn("Traceback", text)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_deadline(self) -> None:
        """
        A call cancelled at its deadline is logged as one info line naming
        the deadline; one cancelled by a cancel frame is not logged.
        """
        client = self.connect(self.rpc)
        client.call(1, "Calc.wait", head={F.TIMEOUT_MS: "500"})
        client.call(2, "Calc.wait")
        client.send(F.Frame(F.CANCEL, 2))
        client.pair.advance(0.5)
        [(level, text)] = self.logs.lines()
        self.assertEqual(level, LogLevel.info)
        self.assertIn("Calc.wait request #1 on <tcp-session#", text)
        self.assertIn("cancelled: its deadline (timeout-ms 500) passed", text)
        self.assertEqual((client.frames(), self.rpc.cancelled), ([], 2))


class ResultTests(ServerTestCase):
    """
    docs/rpc.md, I{Errors} and I{Limits}: a result that cannot be sent is
    answered BadResponse or ResponseTooLarge for that one call, logged on
    the server; the connection stays and later calls on it succeed.
    """

    def setUp(self) -> None:
        """
        Capture the log.
        """
        super().setUp()
        self.logs = LogCapture(self)

    def test_unserializable(self) -> None:
        """
        A result JSON cannot carry (an object, NaN), on the quick path and
        with hooks (which see the BadResponse failure), is BadResponse,
        logged at error level naming the call; the next call succeeds.
        """
        for hooks in ([], [RecordingHook()]):
            rpc = self.makeServer(hooks=hooks)
            rpc.register(Echo())
            client = self.connect(rpc)
            client.call(1, "Failing.unserializable")
            client.call(2, "Echo.echo", kwargs={"value": 1.5})
            client.send(F.Frame(F.REQUEST, 3, {F.SERVICE: "Calc", F.METHOD: "add"}, b"[1e308,1e308]"))
            client.call(4, "Calc.add", 1, 2)
            self.assertEqual(client.result(2), 1.5)
            self.assertEqual(client.result(4), 3)
            for rid, needle in ((1, "(object) cannot be sent as json: TypeError"),
                                (3, "(float) cannot be sent as json: ValueError: NaN, Infinity")):
                head = client.error(rid)
                self.assertEqual(head[F.ERROR_TYPE], "BadResponse")
                self.assertIn(needle, head[F.ERROR_MESSAGE])
            self.assertFalse(client.serverSession.isClosed)
            if hooks:
                after = [e[2] for e in hooks[0].events if e[0] == "after"]
                self.assertTrue(after[0].check(BadResponse))
                self.assertEqual(after[1], 1.5)
        lines = self.logs.lines()
        self.assertEqual([level for level, _ in lines], [LogLevel.error] * 4)
        self.assertIn("Failing.unserializable request #1 on <tcp-session#", lines[0][1])
        self.assertIn("BadResponse: the result of Failing.unserializable request #1", lines[0][1])

    def test_tooLarge(self) -> None:
        """
        With maxMsgLen 1000, a response of exactly 1000 bytes is sent, one
        of 1001 is ResponseTooLarge (on the quick path, with hooks, after a
        Deferred), logged; a result that fits once compressed is sent
        compressed; the connection serves the next call.
        """
        for hooks in ([], [RecordingHook()]):
            rpc = self.makeServer(config=SessionConfig(maxMsgLen=1000), hooks=hooks)
            rpc.register(Bad())
            client = self.connect(rpc)
            client.call(1, "Bad.big", 982)  # 16 + 984 bytes
            client.call(2, "Bad.big", 983)
            client.call(3, "Calc.wait")
            calcOf(rpc).waiting[0].callback("y" * 2000)
            client.pair.pump()
            client.call(4, "Bad.big", 2000, head={F.ACCEPT_COMPRESSOR: "2"})
            client.call(5, "Calc.add", 1, 2)
            self.assertEqual((len(client.response(1).encode()), client.result(1)), (1000, "x" * 982))
            for rid in (2, 3):
                head = client.error(rid)
                self.assertEqual(head[F.ERROR_TYPE], "ResponseTooLarge")
                self.assertIn("more than this connection's maxMsgLen of 1000", head[F.ERROR_MESSAGE])
            self.assertEqual((client.response(4).compressor, client.result(4)), (ZLIB, "x" * 2000))
            self.assertEqual(client.result(5), 3)
            self.assertFalse(client.serverSession.isClosed)
            self.assertEqual((rpc.calls, rpc.errors), (5, 2))
        self.assertEqual([level for level, _ in self.logs.lines()], [LogLevel.error] * 4)
        self.assertIn("ResponseTooLarge: the response to Bad.big request #2 would be 1001 bytes",
                      self.logs.lines()[0][1])


class AuthLogTests(ServerTestCase):
    """
    A refused auth attempt is logged, without the token.
    """

    def setUp(self) -> None:
        """
        Capture the log.
        """
        super().setUp()
        self.logs = LogCapture(self)

    def test_refusedLogged(self) -> None:
        """
        A wrong token and a missing one are each logged once at warn level,
        naming the connection and the reason; the token's text is nowhere
        in the log or the close reason.
        """
        token = "guess-Zq81x"
        for head in ({F.AUTH: token}, {}):
            client = self.connect(auth=lambda t, s: t == "s3cret")
            client.call(1, "Calc.add", 1, 2, head=head)
            self.assertEqual(client.error(1)[F.ERROR_TYPE], "AuthError")
            self.assertNotIn(token, client.serverSession.closeReason.getErrorMessage())
        lines = self.logs.lines()
        self.assertEqual([level for level, _ in lines], [LogLevel.warn] * 2)
        self.assertIn("authentication refused on <tcp-session#", lines[0][1])
        self.assertIn("the auth token was refused; closing the connection", lines[0][1])
        self.assertIn("carries no auth token (head entry 'auth')", lines[1][1])
        self.assertNotIn(token, self.logs.text())

    def test_callableRaises(self) -> None:
        """
        An auth callable that raises is logged at error level with its
        traceback; if the traceback holds the token (a KeyError of it), the
        traceback is left out and the token is nowhere in the log.
        """
        def lookup(token: Any, session: Any) -> bool:
            return {"s3cret": True}[token]

        def broken(token: Any, session: Any) -> bool:
            raise RuntimeError("directory down")

        token = "guess-Zq81x"
        for auth in (lookup, broken):
            client = self.connect(auth=auth)
            client.call(1, "Calc.add", 1, 2, head={F.AUTH: token})
            self.assertEqual(client.error(1)[F.ERROR_TYPE], "AuthError")
        lines = self.logs.lines()
        self.assertEqual([level for level, _ in lines], [LogLevel.error] * 2)
        self.assertIn("raised KeyError on <tcp-session#", lines[0][1])
        self.assertIn("its traceback is not logged: it holds the auth token", lines[0][1])
        self.assertIn("Traceback", lines[1][1])
        self.assertIn("directory down", lines[1][1])
        self.assertNotIn(token, self.logs.text())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LateAnswerTests(ServerTestCase):
    """
    "No late response is ever sent" (docs/rpc-protocol.md, I{Connection
    rules}; docs/rpc.md, I{Deadlines and cancellation}).
    """

    def test_swallowedCancellation(self) -> None:
        """
        A handler that catches the server's cancellation (deadline or
        cancel frame) and returns anyway sends nothing; hooks see its
        result; it counts in cancelled, not in calls.
        """
        class Stubborn:
            """
            Returns even when cancelled.
            """

            async def run(self) -> str:
                """
                @return: C{"late"} once cancelled.
                """
                try:
                    await Deferred()
                except CancelledError:
                    return "late"
                return "never"

        hook = RecordingHook()
        rpc = self.makeServer(hooks=[hook])
        rpc.register(Stubborn())
        client = self.connect(rpc)
        client.call(1, "Stubborn.run", head={F.TIMEOUT_MS: "100"})
        client.call(2, "Stubborn.run")
        client.send(F.Frame(F.CANCEL, 2))
        client.pair.advance(10)
        self.assertEqual(client.frames(), [])
        self.assertEqual([e[2] for e in hook.events if e[0] == "after"], ["late", "late"])
        self.assertEqual((rpc.calls, rpc.errors, rpc.cancelled), (0, 0, 2))
        self.assertEqual(rpc.status()["cancelled"], 2)


class ErrorTextTests(SynchronousTestCase):
    """
    The rules of error texts (docs/rpc-protocol.md, I{The head map}).
    """

    def test_cut(self) -> None:
        """
        A text of at most 4096 characters is kept; a longer one is cut to
        exactly 4096 characters ending with "... (N characters, cut)"; type
        and code are cut by the same rule.
        """
        self.assertEqual(cutText("é" * 4096), "é" * 4096)
        for n in (4097, 10**6):
            cut = cutText("é" * n)
            self.assertEqual(len(cut), 4096)
            self.assertTrue(cut.endswith(f"... ({n} characters, cut)"))
            self.assertTrue(cut.startswith("é" * (4096 - len(f"... ({n} characters, cut)"))))
        head = errorHead("T" * 5000, "m", "c" * 5000)
        self.assertEqual((len(head[F.ERROR_TYPE]), len(head[F.ERROR_CODE])), (4096, 4096))

    def test_code(self) -> None:
        """
        error-code: a non-empty str as it is, an int (not a bool) in
        decimal, nothing for anything else.
        """
        import enum

        class Color(enum.IntEnum):
            RED = 3

        for code, text in (("E1", "E1"), (42, "42"), (-3, "-3"), (Color.RED, "3"), (True, None), ("", None),
                           (1.5, None), (None, None), (b"x", None), (10**5000, None)):
            self.assertEqual(errorCode(code), text, type(code))

    def test_maxErrorResponse(self) -> None:
        """
        The largest error response is 49,228 bytes, as the page says: each
        text at most 4096 characters of up to 4 UTF-8 bytes.
        """
        widest = "\U0001f600" * 4096
        frame = F.Frame(F.RESPONSE, 1, errorHead(widest, widest, widest), b"")
        self.assertEqual(len(frame.encode()), 49228)
        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        self.assertIn("an error response is at most 49,228\nbytes", text)
