"""
Tests for L{txgetty.rpc.client.RpcClient}: unit tests on a fake clock with
the client's connections joined by hand to in-memory servers
(L{MemoryNetwork}) or to a fake server the test answers itself; then
integration tests with real servers on 127.0.0.1 port 0.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty.errors import ConfigError
from txgetty.rpc import (
    CallTimeoutError,
    ConnectionLostError,
    FrameError,
    NoServerError,
    RemoteError,
    frame as F,
)
from txgetty.rpc.serializers import GZIP, MSGPACK, NONE, RAW, ZLIB
from txgetty.testing import Attempt

from ...support.rpc import MemoryNetwork, RecordingHook, calcOf, calcServer, resultOf


def outcome(d: Deferred) -> list:
    """
    @param d: a call's L{Deferred}.
    @return: a list that gets its result or L{Failure} when it fires.
    """
    box: list = []
    d.addBoth(box.append)
    return box


def fakeServer(net: MemoryNetwork, index: int = 0) -> Attempt:
    """
    Complete an attempt with nobody behind it: the test reads what the
    client sent (L{sent}) and answers by hand.

    @return: the attempt.
    """
    attempt = net.endpoints[index].last
    attempt.succeed()
    return attempt


def peek(transport: Any) -> list[F.Frame]:
    """
    @param transport: a L{LoopbackTransport <txgetty.testing.LoopbackTransport>}.
    @return: the frames written on it and not yet delivered.
    """
    frames: list[F.Frame] = []
    F.RpcCodec().readPackets(SimpleNamespace(maxMsgLen=1 << 20), bytearray(b"".join(transport.outgoing)), frames)
    return frames


def exchange(net: MemoryNetwork, *calls: tuple) -> tuple[list[list], list[F.Frame], list[F.Frame]]:
    """
    Make calls on the network's only connection and watch the frames both
    ways.

    @param net: a network with one accepted connection.
    @param calls: C{(name, *args)} of each call.
    @return: each call's outcome box, the request frames and the response
        frames.
    """
    pair = net.pairs[0]
    pair.clientTransport.pauseProducing()
    boxes = [outcome(net.client.call(*call)) for call in calls]
    requests = peek(pair.clientTransport)
    net.pump()
    responses = peek(pair.serverTransport)
    pair.clientTransport.resumeProducing()
    net.pump()
    return boxes, requests, responses


def sent(attempt: Attempt) -> list[F.Frame]:
    """
    @return: the frames the client wrote on the attempt's connection since
        the last look (they are taken off the wire).
    """
    frames = peek(attempt.transport)
    attempt.transport.outgoing.clear()
    return frames


class CallTests(SynchronousTestCase):
    """
    Calls, proxies, options and errors.
    """

    def test_callAndProxy(self) -> None:
        """
        C{call} and the proxy give the result; keyword arguments reach the
        method; dunder proxy attributes are refused (a single-underscore
        name may be a method marked with @rpcmethod).
        """
        net = MemoryNetwork(1)
        net.acceptAll()
        calc = net.client.proxy("Calc")
        results = [outcome(net.client.call("Calc.add", 1, 2)), outcome(calc.add("x", "y")),
                   outcome(calc.add(1, kwargs={"b": 5}))]
        net.pump()
        self.assertEqual(results, [[3], ["xy"], [6]])
        with self.assertRaises(AttributeError):
            calc.__private__
        self.assertTrue(callable(calc._marked))
        self.assertEqual((net.client.calls, net.client.failures), (3, 0))

    def test_head(self) -> None:
        """
        The client's and the call's metadata, service, method and timeout
        are in the request's head map as hooks see it; the auth token is
        sent (the call is accepted) but hidden from hooks.
        """
        hook, clock = RecordingHook(), Clock()
        net = MemoryNetwork([calcServer(clock, hooks=[hook])], clock, auth="tok",
                            metadata={"app": "a", "trace-id": "1"})
        net.acceptAll()
        net.client.call("Calc.add", 1, 2, timeout=1.5, metadata={"trace-id": "2"})
        net.client.call("Calc.add", 1, 2, timeout=None)
        net.pump()
        heads = [e[1].head for e in hook.events if e[0] == "before"]
        self.assertEqual(heads[0], {"app": "a", "trace-id": "2", F.SERVICE: "Calc", F.METHOD: "add",
                                    F.TIMEOUT_MS: "1500"})
        self.assertNotIn(F.AUTH, heads[1])
        self.assertNotIn(F.TIMEOUT_MS, heads[1])

    def test_remoteError(self) -> None:
        """
        An error response fails the call with L{RemoteError} carrying the
        remote type, message and code.
        """
        net = MemoryNetwork(1)
        attempt = fakeServer(net)
        d = outcome(net.client.call("Calc.add", 1))
        [request] = sent(attempt)
        attempt.protocol.dataReceived(F.Frame(F.RESPONSE, request.requestId, {
            F.STATUS: "error", F.ERROR_TYPE: "TypeError", F.ERROR_MESSAGE: "missing b", F.ERROR_CODE: "7"}).encode())
        error = d[0].value
        self.assertIsInstance(error, RemoteError)
        self.assertEqual((error.type, error.message, error.code), ("TypeError", "missing b", "7"))
        self.assertEqual(str(error), "TypeError: missing b (code 7)")

    def test_undecodableResponse(self) -> None:
        """
        A response the client cannot decode fails that call with
        L{FrameError}; the connection stays usable.
        """
        net = MemoryNetwork(1)
        attempt = fakeServer(net)
        first, second = outcome(net.client.call("Calc.add", 1, 2)), outcome(net.client.call("Calc.add", 1, 2))
        one, two = sent(attempt)
        for frame in (F.Frame(F.RESPONSE, one.requestId, {}, b"[1", 1, 0),
                      F.Frame(F.RESPONSE, two.requestId, {}, b"3", 1, 99)):
            attempt.protocol.dataReceived(frame.encode())
        self.assertIn("cannot decode the response to Calc.add", first[0].getErrorMessage())
        self.assertTrue(second[0].check(FrameError))
        self.assertIn("unknown compressor 99", second[0].getErrorMessage())
        third = outcome(net.client.call("Calc.add", 1, 2))
        [request] = sent(attempt)
        attempt.protocol.dataReceived(F.Frame(F.RESPONSE, request.requestId, {}, b"3").encode())
        self.assertEqual(third, [3])

    def test_badArguments(self) -> None:
        """
        Bad names and options are refused when made; an unserializable
        argument fails the call.
        """
        with self.assertRaises(ValueError):
            MemoryNetwork(1).client.call("noDot")
        for kw, needle in (({"balance": "fastest"}, "balance"), ({"failover": "pray"}, "failover"),
                           ({"serializer": "xml"}, "unknown serializer"), ({"compressor": 42}, "compressor")):
            with self.assertRaises(ConfigError) as ctx:
                MemoryNetwork(1, **kw)
            self.assertIn(needle, str(ctx.exception))
        with self.assertRaises(ConfigError):
            MemoryNetwork(0)
        net = MemoryNetwork(1)
        net.acceptAll()
        self.assertTrue(outcome(net.client.call("Calc.add", object(), 1))[0].check(TypeError))

    def test_oneway(self) -> None:
        """
        C{oneway} sends a oneway frame, gets nothing back, leaves nothing
        pending.
        """
        net = MemoryNetwork(1)
        net.acceptAll()
        self.assertIsNone(self.successResultOf(net.client.oneway("Calc.note", "hi")))
        net.pump()
        self.assertEqual(calcOf(net.servers[0]).seen, ["hi"])
        self.assertEqual(net.pairs[0].client.listener.pending, {})

    def test_onewayWithoutConnection(self) -> None:
        """
        C{oneway} with no open connection waits for one, like C{call}: its
        Deferred fires once the oneway is sent; a oneway that cannot be sent
        before the client stops fails with L{NoServerError}.
        """
        clock = Clock()
        net = MemoryNetwork([calcServer(clock)], clock)
        sent = net.client.oneway("Calc.note", "later")
        self.assertNoResult(sent)
        net.acceptAll()
        self.assertIsNone(self.successResultOf(sent))
        self.assertEqual(calcOf(net.servers[0]).seen, ["later"])
        stranded = MemoryNetwork(1).client
        lost = stranded.oneway("Calc.note", "never")
        stranded.stopService()
        self.failureResultOf(lost, NoServerError)


    def test_parkedUntilConnected(self) -> None:
        """
        A call made before any connection is open is sent once one opens;
        one whose timeout passes first fails with L{CallTimeoutError}.
        """
        net = MemoryNetwork(1)
        early, late = outcome(net.client.call("Calc.add", 1, 2)), outcome(net.client.call("Calc.add", 1, 1, timeout=1))
        net.advance(1)
        self.assertTrue(late[0].check(CallTimeoutError))
        net.acceptAll()
        self.assertEqual(early, [3])
        self.assertEqual(calcOf(net.servers[0]).seen, [(1, 2)])

    def test_stopFailsParked(self) -> None:
        """
        Stopping the client fails the calls waiting for a connection with
        L{NoServerError} and those in flight with L{ConnectionLostError}.
        """
        parked = MemoryNetwork(1)
        waiting = outcome(parked.client.call("Calc.add", 1, 2))
        parked.stop()
        self.assertTrue(waiting[0].check(NoServerError))
        self.assertIn("the RPC client was stopped", waiting[0].getErrorMessage())
        net = MemoryNetwork(1)
        net.acceptAll()
        flying = outcome(net.client.call("Calc.wait"))
        net.pump()
        net.stop()
        self.assertTrue(flying[0].check(ConnectionLostError))
        self.assertEqual(calcOf(net.servers[0]).cancelled, 1)

    def test_serializersAndCompression(self) -> None:
        """
        msgpack carries bytes; request bodies above C{compressThreshold}
        are compressed, and the server answers with the request's
        compressor, or, for an uncompressed request, with the one the
        client accepts (C{accept-compressor}) rather than its own.
        """
        clock = Clock()
        net = MemoryNetwork([calcServer(clock, compressor="zlib", compressThreshold=100)], clock,
                            serializer="msgpack", compressor="gzip", compressThreshold=100)
        net.acceptAll()
        pair = net.pairs[0]
        (big, small), requests, responses = exchange(net, ("Calc.add", b"\x00" * 300, b"!"), ("Calc.add", b"a", b"b"))
        self.assertEqual([(f.serializer, f.compressor) for f in requests + responses],
                         [(MSGPACK, GZIP), (MSGPACK, NONE), (MSGPACK, GZIP), (MSGPACK, NONE)])
        self.assertEqual((big, small), ([b"\x00" * 300 + b"!"], [b"ab"]))
        pair.clientTransport.pauseProducing()
        answered = outcome(net.client.call("Calc.wait"))
        net.pump()
        calcOf(net.servers[0]).waiting[0].callback("z" * 300)
        [response] = peek(pair.serverTransport)
        self.assertEqual((response.compressor, resultOf(response)), (GZIP, "z" * 300))
        self.assertEqual(requests[0].head[F.ACCEPT_COMPRESSOR], str(GZIP))
        pair.clientTransport.resumeProducing()
        net.pump()
        self.assertEqual(answered, ["z" * 300])


class TimeoutTests(SynchronousTestCase):
    """
    Timeouts, cancellation, lost connections and heartbeats.
    """

    def test_timeoutReachesServer(self) -> None:
        """
        A call without an answer fails with L{CallTimeoutError} at its
        timeout, the server's handler is cancelled, and a late answer is
        ignored.
        """
        net = MemoryNetwork(1, timeout=2)
        attempt = fakeServer(net)
        d = outcome(net.client.call("Calc.wait"))
        [request] = sent(attempt)
        net.clock.advance(1.999)
        self.assertEqual(d, [])
        net.clock.advance(0.001)
        self.assertIn("within 2 s (timeout)", d[0].getErrorMessage())
        self.assertEqual(sent(attempt), [F.Frame(F.CANCEL, request.requestId)])
        attempt.protocol.dataReceived(F.Frame(F.RESPONSE, request.requestId, {}, b"1").encode())
        self.assertEqual((len(d), net.client.failures, net.client.calls), (1, 1, 0))

    def test_cancelReachesServer(self) -> None:
        """
        Cancelling a call's L{Deferred} cancels the handler on the server,
        which sends no answer.
        """
        net = MemoryNetwork(1)
        net.acceptAll()
        d = net.client.call("Calc.wait")
        net.pump()
        d.cancel()
        net.pump()
        self.failureResultOf(d, CancelledError)
        calc = calcOf(net.servers[0])
        self.assertEqual((calc.cancelled, net.pairs[0].client.listener.pending), (1, {}))
        self.assertEqual([c for c in net.clock.getDelayedCalls() if c.func.__name__ == "_timedOut"], [])

    def test_lostConnectionFailsAtOnce(self) -> None:
        """
        Every pending call fails with L{ConnectionLostError} when its
        connection is lost, without waiting for its timeout.
        """
        net = MemoryNetwork(1, timeout=60)
        net.acceptAll()
        calls = [outcome(net.client.call("Calc.wait")) for _ in range(3)]
        net.pump()
        net.drop(net.pairs[0])
        self.assertEqual([c[0].type for c in calls], [ConnectionLostError] * 3)
        self.assertIn("was lost before Calc.wait was answered", calls[0][0].getErrorMessage())

    def test_heartbeats(self) -> None:
        """
        The client sends a heartbeat every period; answered heartbeats keep
        the connection (and the server's idle timer) alive.
        """
        net = MemoryNetwork(1, heartbeat=15)
        attempt = fakeServer(net)
        net.advance(15)
        self.assertEqual([f.type for f in sent(attempt)], [F.HEARTBEAT_REQUEST])
        attempt.protocol.dataReceived(F.Frame(F.HEARTBEAT_RESPONSE, 0).encode())
        net.advance(15)
        self.assertEqual([f.type for f in sent(attempt)], [F.HEARTBEAT_REQUEST])
        self.assertFalse(attempt.transport.disconnecting)

    def test_heartbeatsKeepRealServer(self) -> None:
        """
        Against a server, heartbeats keep a quiet connection open far past
        the server's idle timeout.
        """
        net = MemoryNetwork(1, heartbeat=10)
        net.acceptAll()
        for _ in range(100):
            net.advance(10)
        self.assertFalse(net.pairs[0].server.isClosed or net.pairs[0].client.isClosed)
        d = outcome(net.client.call("Calc.add", 1, 2))
        net.pump()
        self.assertEqual(d, [3])

    def test_deadConnection(self) -> None:
        """
        A server that reads but never answers heartbeats gets its
        connection closed after a whole unanswered period; the pending call
        fails then, saying why.
        """
        net = MemoryNetwork(1, heartbeat=5, timeout=None)
        attempt = fakeServer(net)
        d = outcome(net.client.call("Calc.add", 1, 2))
        net.advance(9.9)
        self.assertFalse(attempt.transport.disconnecting)
        net.advance(0.1)
        self.assertTrue(attempt.transport.disconnecting)
        attempt.drop(clean=False)
        self.assertTrue(d[0].check(ConnectionLostError))
        self.assertIn("a heartbeat got no answer for a whole heartbeat period (5 s)", d[0].getErrorMessage())


class BalanceTests(SynchronousTestCase):
    """
    Load balancing over several servers.
    """

    def where(self, net: MemoryNetwork, count: int, **kw: Any) -> Counter:
        """
        @return: how many of C{count} C{Calc.where} calls each server got.
        """
        results = [outcome(net.client.call("Calc.where", **kw)) for _ in range(count)]
        net.pump()
        return Counter(r[0] for r in results)

    def test_roundRobin(self) -> None:
        """
        Round-robin spreads calls evenly, and skips a server that is down.
        """
        net = MemoryNetwork(3)
        net.acceptAll()
        self.assertEqual(self.where(net, 30), {0: 10, 1: 10, 2: 10})
        net.drop(net.pairs[1])
        self.assertEqual(self.where(net, 30), {0: 15, 2: 15})

    def test_random(self) -> None:
        """
        Random balancing uses every server, roughly evenly, never a down
        one.
        """
        import random

        net = MemoryNetwork(3, balance="random", rng=random.Random(4))
        net.acceptAll()
        counts = self.where(net, 300)
        self.assertEqual(sorted(counts), [0, 1, 2])
        self.assertTrue(all(60 < n < 140 for n in counts.values()), counts)
        net.drop(net.pairs[0])
        self.assertEqual(sorted(self.where(net, 50)), [1, 2])

    def test_leastPending(self) -> None:
        """
        Least-pending sends a call to the server with the fewest calls
        waiting for answers.
        """
        net = MemoryNetwork(3, balance="least-pending")
        net.acceptAll()
        for _ in range(5):
            net.client.call("Calc.wait")
        net.pump()
        waiting = [len(calcOf(s).waiting) for s in net.servers]
        self.assertEqual(sorted(waiting), [1, 2, 2])
        idle = waiting.index(1)
        self.assertEqual(self.where(net, 1), {idle: 1})
        busiest = waiting.index(2)
        for d in calcOf(net.servers[busiest]).waiting:
            d.callback(None)
        net.pump()
        self.assertEqual(self.where(net, 1), {busiest: 1})

    def test_consistentHash(self) -> None:
        """
        Consistent hashing sends the same key to the same server; keys
        spread over the servers; when a server is down only its keys move.
        """
        net = MemoryNetwork(3, balance="consistent-hash")
        net.acceptAll()
        owner = {k: set(self.where(net, 3, hashKey=k)) for k in range(60)}
        self.assertTrue(all(len(s) == 1 for s in owner.values()), owner)
        owner = {k: s.pop() for k, s in owner.items()}
        self.assertEqual(set(owner.values()), {0, 1, 2})
        byArgument = [outcome(net.client.call("Calc.where", "user-7")) for _ in range(5)]
        net.pump()
        self.assertEqual(len({r[0] for r in byArgument}), 1)
        net.drop(net.pairs[1])
        moved = {k: set(self.where(net, 1, hashKey=k)).pop() for k in owner}
        self.assertEqual({k: v for k, v in moved.items() if owner[k] != 1}, {k: v for k, v in owner.items() if v != 1})
        self.assertNotIn(1, moved.values())


class FailoverTests(SynchronousTestCase):
    """
    What happens to calls when a server goes away or refuses them.
    """

    def holdOn(self, net: MemoryNetwork, **kw: Any) -> tuple[list, int]:
        """
        Make a C{Calc.wait} call.

        @return: its outcome box and the index of the server it went to.
        """
        box = outcome(net.client.call("Calc.wait", **kw))
        net.pump()
        index = [i for i, s in enumerate(net.servers) if calcOf(s).waiting][-1]
        return box, index

    def test_failFast(self) -> None:
        """
        With fail-fast, a call on a lost connection fails with
        L{ConnectionLostError}, even if idempotent; calls elsewhere go on;
        new calls go to the servers still up.
        """
        net = MemoryNetwork(2)
        net.acceptAll()
        lost, victim = self.holdOn(net, idempotent=True)
        kept = outcome(net.client.call("Calc.wait"))
        net.pump()
        net.drop(net.pairs[victim])
        self.assertTrue(lost[0].check(ConnectionLostError))
        self.assertEqual((kept, net.client.retried), ([], 0))
        results = [outcome(net.client.call("Calc.where")) for _ in range(4)]
        net.pump()
        self.assertEqual(results, [[1 - victim]] * 4)

    def checkRetry(self, balance: str) -> None:
        """
        With retry, an idempotent call whose connection is lost is sent to
        the other server and succeeds there.

        @param balance: the balance policy.
        """
        net = MemoryNetwork(2, failover="retry", balance=balance, timeout=None)
        net.acceptAll()
        retried, victim = self.holdOn(net, idempotent=True)
        other = calcOf(net.servers[1 - victim])
        net.drop(net.pairs[victim])
        self.assertEqual(len(other.waiting), 1)
        other.waiting[0].callback("answered")
        net.pump()
        self.assertEqual((retried, net.client.retried), (["answered"], 1))

    def test_retryRoundRobin(self) -> None:
        """
        With retry and round-robin, an idempotent call of a lost connection
        is answered by the other server.
        """
        self.checkRetry("round-robin")

    def test_retryLeastPending(self) -> None:
        """
        With retry and least-pending, an idempotent call of a lost
        connection goes to the server still up, not back to the dead one.
        """
        self.checkRetry("least-pending")


    def test_notIdempotentNotRetried(self) -> None:
        """
        With retry, a call not marked idempotent fails with
        L{ConnectionLostError} when its connection is lost, and runs
        nowhere else.
        """
        net = MemoryNetwork(2, failover="retry")
        net.acceptAll()
        failed, victim = self.holdOn(net)
        net.drop(net.pairs[victim])
        self.assertTrue(failed[0].check(ConnectionLostError))
        self.assertEqual((calcOf(net.servers[1 - victim]).waiting, net.client.retried), ([], 0))

    def test_busyRetried(self) -> None:
        """
        With retry, an idempotent call refused with ServerBusy goes to
        another server; a non-idempotent one gets the refusal.
        """
        clock = Clock()
        net = MemoryNetwork([calcServer(clock, index=i, maxInFlight=1) for i in range(2)], clock,
                            failover="retry", retries=1)
        net.acceptAll()
        _, busy = self.holdOn(net)
        results = [outcome(net.client.call("Calc.where", idempotent=True)) for _ in range(2)]
        net.pump()
        self.assertEqual(results, [[1 - busy]] * 2)
        self.assertEqual((net.servers[busy].busy, net.client.retried), (1, 1))
        plain = [outcome(net.client.call("Calc.where")) for _ in range(2)]
        net.pump()
        kinds = sorted(p[0].value.type if isinstance(p[0], Failure) else str(p[0]) for p in plain)
        self.assertEqual(kinds, sorted([str(1 - busy), "ServerBusy"]))
        self.assertEqual(net.client.retried, 1)

    def test_busyEverywhere(self) -> None:
        """
        When every server is busy, an idempotent call is tried C{retries}
        extra times, then fails with the ServerBusy refusal.
        """
        clock = Clock()
        net = MemoryNetwork([calcServer(clock, maxInFlight=0) for _ in range(2)], clock, failover="retry",
                            retries=3)
        net.acceptAll()
        refused = outcome(net.client.call("Calc.where", idempotent=True))
        net.pump()
        self.assertEqual((refused[0].value.type, refused[0].value.code), ("ServerBusy", "busy"))
        self.assertEqual((net.client.retried, sum(s.busy for s in net.servers)), (3, 4))


class DocumentedRulesTests(SynchronousTestCase):
    """
    Promises of docs/rpc.md about what the client sends, tested from the
    page's words.
    """

    def test_timeLeft(self) -> None:
        """
        "A call with a timeout sends the time it has left as the head entry
        timeout-ms ...: its whole timeout when it is sent at once, what
        remains of it when it is sent after waiting for a connection or sent
        again to another server."
        """
        hooks = [RecordingHook(), RecordingHook()]
        clock = Clock()
        net = MemoryNetwork([calcServer(clock, hooks=[hooks[0]]), calcServer(clock, index=1, hooks=[hooks[1]])],
                            clock, failover="retry", timeout=10)
        parked = outcome(net.client.call("Calc.where"))
        net.advance(2.5)
        net.acceptAll()
        self.assertEqual(parked, [0])
        now = outcome(net.client.call("Calc.wait", idempotent=True))
        net.pump()
        first = [i for i, s in enumerate(net.servers) if calcOf(s).waiting][0]
        net.advance(3)
        net.drop(net.pairs[first])
        calcOf(net.servers[1 - first]).waiting[0].callback("second")
        net.pump()
        self.assertEqual(now, ["second"])
        sentTimeouts = [e[1].head[F.TIMEOUT_MS] for hook in hooks for e in hook.events if e[0] == "before"]
        self.assertEqual(sorted(sentTimeouts), ["10000", "7000", "7500"])

    def test_rawWithCompressor(self) -> None:
        """
        "raw combines with a compressor like the others: a body above the
        threshold travels compressed and is decompressed before the method
        sees it"; the raw response is compressed with the request's
        compressor and reaches the caller as the bytes returned.
        """
        clock = Clock()
        net = MemoryNetwork([calcServer(clock, compressThreshold=100)], clock, serializer="raw",
                            compressor="zlib", compressThreshold=100)
        net.servers[0].register(RawEcho())
        net.acceptAll()
        data = bytes(range(256)) * 4
        (big, small), requests, responses = exchange(net, ("RawEcho.echo", data), ("RawEcho.echo", b"ab"))
        self.assertEqual([(f.serializer, f.compressor) for f in requests + responses],
                         [(RAW, ZLIB), (RAW, NONE), (RAW, ZLIB), (RAW, NONE)])
        self.assertEqual((big, small), ([data], [b"ab"]))
        self.assertEqual(calcOf(net.servers[0]).seen, [])

    def test_textOnly(self) -> None:
        """
        "An RpcClient whose auth token or metadata is not text raises
        ConfigError when it is made"; a call's own non-text metadata raises
        TypeError from call().
        """
        for kw, needle in (({"auth": b"tok"}, "the auth token must be text, got a bytes"),
                           ({"metadata": {"n": 1}}, "must be text, got 'n': 1"),
                           ({"metadata": {1: "n"}}, "must be text, got 1: 'n'")):
            with self.assertRaises(ConfigError) as ctx:
                MemoryNetwork(1, **kw)
            self.assertIn(needle, str(ctx.exception))
        with self.assertRaises(TypeError):
            MemoryNetwork(1).client.call("Calc.add", 1, 2, metadata={"n": 2})

    def test_strictJsonResponse(self) -> None:
        """
        txgetty's client "fails a call whose response holds them [NaN, Infinity]
        with FrameError", and refuses NaN arguments with ValueError.
        """
        net = MemoryNetwork(1)
        attempt = fakeServer(net)
        d = outcome(net.client.call("Calc.add", 1, 2))
        [request] = sent(attempt)
        attempt.protocol.dataReceived(F.Frame(F.RESPONSE, request.requestId, {}, b"NaN").encode())
        self.assertTrue(d[0].check(FrameError))
        self.assertIn("NaN is not JSON", d[0].getErrorMessage())
        self.assertTrue(outcome(net.client.call("Calc.add", float("nan"), 1))[0].check(ValueError))


class RawEcho:
    """
    A raw service: the body back.
    """

    def echo(self, data: bytes) -> bytes:
        """
        @return: C{data}.
        """
        return data
