"""
Tests for the W3C trace context of RPC calls (L{txgetty.rpc.tracing}),
written from docs/rpc-protocol.md ("Trace context") and
docs/observability.md ("Trace context"): what a valid C{traceparent} is,
that an invalid one is ignored and not an error, what C{currentCall()}
shows, and what a call made from inside a method sends.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from txgetty.rpc import RpcServer, currentCall, rpcmethod
from txgetty.rpc.tracing import newSpanId, newTraceId, parseTraceparent

from ...support.docs import DOCS
from ...support.rpc import FrameClient, MemoryNetwork, calcServer, requestFrame

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


class Traced:
    """
    A service that shows what C{currentCall()} says of the trace.
    """

    @rpcmethod
    def show(self) -> dict[str, Any]:
        """
        @return: the trace attributes of the running call.
        """
        call = currentCall()
        return {"traceparent": call.traceparent, "tracestate": call.tracestate, "traceId": call.traceId,
                "parentId": call.parentId, "spanId": call.spanId}


class ParseTests(SynchronousTestCase):
    """
    Which C{traceparent} values are valid (docs/rpc-protocol.md, "Trace
    context").
    """

    def test_valid(self) -> None:
        """
        C{VERSION-TRACEID-PARENTID-FLAGS} in lowercase hex of 2, 32, 16 and
        2 digits is read into its fields; bit 0 of the flags is "sampled".
        """
        parent = parseTraceparent(VALID)
        assert parent is not None
        self.assertEqual((parent.traceId, parent.parentId, parent.flags, parent.sampled), (TRACE, PARENT, "01", True))
        self.assertEqual(str(parent), VALID)
        unsampled = parseTraceparent(f"00-{TRACE}-{PARENT}-00")
        assert unsampled is not None
        self.assertFalse(unsampled.sampled)

    def test_invalid(self) -> None:
        """
        Uppercase digits, wrong lengths, all-zero ids, version C{ff},
        anything after the flags of version C{00}, and non-text values are
        not valid.
        """
        for value in [
            VALID.upper(), f"00-{TRACE[:-1]}-{PARENT}-01", f"00-{TRACE}-{PARENT}0-01", f"00-{TRACE}-{PARENT}-1",
            f"00-{'0' * 32}-{PARENT}-01", f"00-{TRACE}-{'0' * 16}-01", f"ff-{TRACE}-{PARENT}-01",
            f"00-{TRACE}-{PARENT}-01-extra", f" {VALID}", f"{VALID} ", "", "garbage", f"0-{TRACE}-{PARENT}-01",
            f"00_{TRACE}_{PARENT}_01", f"00-{TRACE}-{PARENT}-0g", None, 42,
        ]:
            self.assertIsNone(parseTraceparent(value), value)

    def test_laterVersion(self) -> None:
        """
        A version above C{00} may append fields after a C{-}: its first
        four fields are read as version C{00}'s.
        """
        parent = parseTraceparent(f"01-{TRACE}-{PARENT}-01-whatever-comes")
        assert parent is not None
        self.assertEqual((parent.traceId, parent.parentId), (TRACE, PARENT))
        self.assertEqual(str(parent), VALID)
        self.assertIsNone(parseTraceparent(f"01-{TRACE}-{PARENT}-01x"))

    def test_newIds(self) -> None:
        """
        New span ids are 16 lowercase hex digits, trace ids 32, never all
        zeros, and differ from each other.
        """
        spans = {newSpanId() for _ in range(100)}
        traces = {newTraceId() for _ in range(100)}
        self.assertEqual((len(spans), len(traces)), (100, 100))
        for span in spans:
            self.assertIsNotNone(parseTraceparent(f"00-{TRACE}-{span}-01"))
        for trace in traces:
            self.assertIsNotNone(parseTraceparent(f"00-{trace}-{PARENT}-01"))


class ServerTests(SynchronousTestCase):
    """
    What the method of a traced call sees (C{currentCall()}).
    """

    def setUp(self) -> None:
        """
        A server with C{Traced}, and a raw frame client.
        """
        self.clock = MemoryReactorClock()
        rpc = calcServer(self.clock)
        rpc.register(Traced())
        self.client = FrameClient(rpc, self.clock)

    def show(self, head: dict[str, str]) -> dict[str, Any]:
        """
        @return: what C{Traced.show} says for a request with C{head}.
        """
        self.client.send(requestFrame(1, "Traced.show", head=head))
        return self.client.result(1)

    def test_valid(self) -> None:
        """
        The method sees the request's C{traceparent} and C{tracestate}, its
        trace id, the caller's span as parent id, and a span id of its own
        (16 hex digits, not all zeros, not the parent's).
        """
        seen = self.show({"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"})
        self.assertEqual(seen["traceparent"], VALID)
        self.assertEqual(seen["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        self.assertEqual((seen["traceId"], seen["parentId"]), (TRACE, PARENT))
        self.assertIsNotNone(parseTraceparent(f"00-{TRACE}-{seen['spanId']}-01"))
        self.assertNotEqual(seen["spanId"], PARENT)

    def test_invalidIgnored(self) -> None:
        """
        "An invalid traceparent ... is ignored, not an error: the call runs
        and is answered as if it carried no trace context, and its
        tracestate is ignored with it."
        """
        text = (DOCS / "rpc-protocol.md").read_text(encoding="utf-8")
        self.assertIn("is **ignored, not an error**", text)
        seen = self.show({"traceparent": VALID.upper(), "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual(seen, {"traceparent": None, "tracestate": None, "traceId": None, "parentId": None,
                                "spanId": None})

    def test_none(self) -> None:
        """
        A call without C{traceparent} has no trace context.
        """
        self.assertEqual(self.show({})["traceId"], None)

    def test_longTracestate(self) -> None:
        """
        A C{tracestate} of more than 8,224 characters is ignored; one of
        8,224 is passed on.
        """
        self.assertEqual(self.show({"traceparent": VALID, "tracestate": "a" * 8224})["tracestate"], "a" * 8224)
        self.client.send(requestFrame(2, "Traced.show", head={"traceparent": VALID, "tracestate": "a" * 8225}))
        self.assertIsNone(self.client.result(2)["tracestate"])
        self.assertEqual(self.client.result(2)["traceId"], TRACE)

    def test_hooksSeeTheTrace(self) -> None:
        """
        Hooks get the same trace context in their L{CallInfo}.
        """
        infos: list[Any] = []

        class Hook:
            def beforeCall(self, info: Any) -> None:
                infos.append(info)

        self.client.pair.server.listener.server.addHook(Hook())
        seen = self.show({"traceparent": VALID})
        self.assertEqual((infos[0].traceId, infos[0].parentId, infos[0].spanId),
                         (TRACE, PARENT, seen["spanId"]))


class Relay:
    """
    A service whose method calls another server with an L{RpcClient}.
    """

    def __init__(self) -> None:
        self.client: Any = None
        self.span: str | None = None

    @rpcmethod
    def relay(self) -> Any:
        """
        @return: the other server's C{Traced.show}, called from here.
        """
        self.span = currentCall().spanId
        return self.client.call("Traced.show")


class PropagationTests(SynchronousTestCase):
    """
    A call made from inside a method passes the trace on; a call made
    outside any method sends the C{traceparent} it is given.
    """

    def setUp(self) -> None:
        """
        Server B (C{Traced}) reached in memory by an L{RpcClient}.
        """
        self.clock = MemoryReactorClock()
        serverB = RpcServer(reactor=self.clock, endpoints=["tcp:0:interface=127.0.0.1"])
        serverB.register(Traced())
        self.network = MemoryNetwork([serverB], clock=self.clock)
        self.network.accept(0)

    def test_explicit(self) -> None:
        """
        Outside any method, C{call(..., traceparent=..., tracestate=...)}
        sends them as they are.
        """
        d = self.network.client.call("Traced.show", traceparent=VALID, tracestate="k=v")
        self.network.pump()
        seen = self.successResultOf(d)
        self.assertEqual((seen["traceparent"], seen["tracestate"]), (VALID, "k=v"))

    def test_explicitInvalid(self) -> None:
        """
        An explicit C{traceparent} that is not valid is the caller's
        mistake: C{ValueError}, naming the expected form.
        """
        e = self.assertRaises(ValueError, self.network.client.call, "Traced.show", traceparent="00-nope")
        self.assertIn("'00-nope' is not a W3C trace context traceparent", str(e))

    def test_outsideNothing(self) -> None:
        """
        Outside any method and without C{traceparent}, no trace context is
        sent.
        """
        d = self.network.client.call("Traced.show")
        self.network.pump()
        self.assertIsNone(self.successResultOf(d)["traceparent"])

    def test_fromInsideAMethod(self) -> None:
        """
        A call made from inside a method sends the same trace id, the
        running call's span id as parent id, the same flags and
        C{tracestate}.
        """
        relay = Relay()
        relay.client = self.network.client
        serverA = calcServer(self.clock)
        serverA.register(relay)
        front = FrameClient(serverA, self.clock)
        front.send(requestFrame(1, "Relay.relay", head={"traceparent": f"00-{TRACE}-{PARENT}-00",
                                                        "tracestate": "k=v"}))
        self.network.pump()
        front.pair.pump()
        seen = front.result(1)
        self.assertEqual(seen["traceparent"], f"00-{TRACE}-{relay.span}-00")
        self.assertEqual((seen["traceId"], seen["parentId"], seen["tracestate"]), (TRACE, relay.span, "k=v"))

    def test_fromInsideAnUntracedMethod(self) -> None:
        """
        A call made from inside a method whose call has no trace context
        sends none.
        """
        relay = Relay()
        relay.client = self.network.client
        serverA = calcServer(self.clock)
        serverA.register(relay)
        front = FrameClient(serverA, self.clock)
        front.call(1, "Relay.relay")
        self.network.pump()
        front.pair.pump()
        self.assertIsNone(front.result(1)["traceparent"])


class TracerLookupTests(SynchronousTestCase):
    """
    docs/observability.md: while no tracer provider is set, txgetty looks for
    one at most once a second.
    """

    def setUp(self) -> None:
        from txgetty.rpc import tracing

        if tracing._otelTrace is None:
            raise SkipTest("opentelemetry-api is not installed (the otel extra)")
        self.tracing = tracing
        self.now = [1000.0]
        self.asked: list[Any] = []
        self.provider: Any = tracing._otelTrace.ProxyTracerProvider()
        self.patch(tracing, "_monotonic", lambda: self.now[0])
        self.patch(tracing, "_TRACERS", tracing._TracerCache())

        def getter() -> Any:
            self.asked.append(self.now[0])
            return self.provider

        self.patch(tracing._otelTrace, "get_tracer_provider", getter)

    def test_lookedForOnceASecond(self) -> None:
        """
        With no provider set, many calls within a second ask OpenTelemetry
        once; a second later it is asked again, and a provider set by then
        is used from that call on, for good.
        """
        from opentelemetry.sdk.trace import TracerProvider

        for _ in range(100):
            self.assertIsNone(self.tracing.activeTracer())
        self.assertEqual(len(self.asked), 1)
        self.provider = TracerProvider()
        self.now[0] += 0.5
        self.assertIsNone(self.tracing.activeTracer())
        self.now[0] += 0.6
        tracer = self.tracing.activeTracer()
        self.assertIsNotNone(tracer)
        self.now[0] += 100
        self.assertIs(self.tracing.activeTracer(), tracer)
        self.assertEqual(len(self.asked), 2)
