"""
Trace context across two hops over real sockets on 127.0.0.1 (client →
server A, whose method calls server B with an L{RpcClient}), without and
with OpenTelemetry (the SDK's in-memory exporter), as docs/observability.md
("Trace context") promises.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase

from txgetty.rpc import RemoteError, RpcServer, currentCall, rpcmethod
from txgetty.rpc import client as clientModule, server as serverModule, tracing

from ..support.rpc import startClient, startServer

try:
    import opentelemetry.trace as otelTrace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
except ImportError:  # pragma: no cover - the test extra installs them
    otelTrace = None  # type: ignore[assignment]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


class Leaf:
    """
    Server B's service: what its method sees of the trace.
    """

    @rpcmethod
    def show(self) -> dict[str, Any]:
        """
        @return: the running call's trace attributes.
        """
        call = currentCall()
        return {"traceId": call.traceId, "parentId": call.parentId, "spanId": call.spanId,
                "traceparent": call.traceparent}

    @rpcmethod
    def fail(self) -> None:
        """
        @raise ValueError: always.
        """
        raise ValueError("no")


class Middle:
    """
    Server A's service: calls server B from inside its method.
    """

    def __init__(self) -> None:
        self.client: Any = None

    @rpcmethod
    async def relay(self, name: str = "Leaf.show") -> dict[str, Any]:
        """
        @return: what A saw and what B answered.
        """
        call = currentCall()
        mine = {"traceId": call.traceId, "parentId": call.parentId, "spanId": call.spanId}
        try:
            leaf = await self.client.call(name)
        except RemoteError as e:
            leaf = {"error": e.type}
        # Still valid after the await.
        mine["after"] = currentCall().spanId
        return {"middle": mine, "leaf": leaf}


class TwoHopTests(TestCase):
    """
    client → A → B over real sockets.
    """

    timeout = 60

    async def hops(self) -> Any:
        """
        Start B, A (with a client to B) and a client to A.

        @return: the client to A.
        """
        leafServer = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor)
        leafServer.register(Leaf())
        leafAddress = await startServer(self, leafServer)
        middle = Middle()
        middleServer = RpcServer(["tcp:0:interface=127.0.0.1"], reactor=reactor)
        middleServer.register(middle)
        middleAddress = await startServer(self, middleServer)
        middle.client = startClient(self, leafAddress)
        return startClient(self, middleAddress)

    async def test_twoHops(self) -> None:
        """
        B's method sees the trace id the client sent, with A's span as
        parent; A sees the client's span as parent.
        """
        client = await self.hops()
        seen = await client.call("Middle.relay", traceparent=VALID)
        middle, leaf = seen["middle"], seen["leaf"]
        self.assertEqual((middle["traceId"], middle["parentId"]), (TRACE, PARENT))
        self.assertEqual((leaf["traceId"], leaf["parentId"]), (TRACE, middle["spanId"]))
        self.assertEqual(leaf["traceparent"], f"00-{TRACE}-{middle['spanId']}-01")
        self.assertEqual(middle["after"], middle["spanId"])
        self.assertNotIn(leaf["spanId"], (middle["spanId"], PARENT))

    async def test_noOpenTelemetry(self) -> None:
        """
        Without opentelemetry-api (as if it were not installed), the trace
        context still goes through both hops.
        """
        self.patch(tracing, "_otelTrace", None)
        self.patch(serverModule, "OTEL", False)
        self.patch(clientModule, "OTEL", False)
        client = await self.hops()
        seen = await client.call("Middle.relay", traceparent=VALID)
        self.assertEqual((seen["leaf"]["traceId"], seen["leaf"]["parentId"]), (TRACE, seen["middle"]["spanId"]))


class OpenTelemetryTests(TwoHopTests):
    """
    The same hops with a tracer provider set: server and client spans,
    exported by the SDK's in-memory exporter.
    """

    def setUp(self) -> None:
        """
        A tracer provider that keeps the finished spans in memory, made
        the one txgetty sees.
        """
        if otelTrace is None:
            message = "opentelemetry-sdk is not installed (the test extra installs it)"
            if os.environ.get("CI") == "true":
                self.fail(message)
            raise SkipTest(message)
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.patch(otelTrace, "get_tracer_provider", lambda: provider)

    def spans(self) -> dict[tuple[str, str], Any]:
        """
        @return: the finished spans by (kind, name).
        """
        return {(span.kind.name, span.name): span for span in self.exporter.get_finished_spans()}

    async def test_twoHops(self) -> None:
        """
        The client span of the first call, A's server span, A's client
        span and B's server span form one trace, each the parent of the
        next; B's method sees A's client span as parent.
        """
        client = await self.hops()
        seen = await client.call("Middle.relay", traceparent=VALID)
        spans = self.spans()
        first, middle = spans[("CLIENT", "Middle/relay")], spans[("SERVER", "Middle/relay")]
        onward, leaf = spans[("CLIENT", "Leaf/show")], spans[("SERVER", "Leaf/show")]
        for span in (first, middle, onward, leaf):
            self.assertEqual(format(span.context.trace_id, "032x"), TRACE)
        self.assertEqual(format(first.parent.span_id, "016x"), PARENT)
        self.assertEqual(middle.parent.span_id, first.context.span_id)
        self.assertEqual(onward.parent.span_id, middle.context.span_id)
        self.assertEqual(leaf.parent.span_id, onward.context.span_id)
        self.assertEqual(seen["middle"]["spanId"], format(middle.context.span_id, "016x"))
        self.assertEqual(seen["leaf"]["parentId"], format(onward.context.span_id, "016x"))
        self.assertEqual(seen["leaf"]["spanId"], format(leaf.context.span_id, "016x"))
        self.assertEqual(dict(leaf.attributes), {"rpc.system": "txgetty", "rpc.service": "Leaf",
                                                 "rpc.method": "show"})

    async def test_newTrace(self) -> None:
        """
        A call without trace context starts a new trace: the client span
        is a root, and B still sees the same (new) trace id.
        """
        client = await self.hops()
        seen = await client.call("Middle.relay")
        spans = self.spans()
        first = spans[("CLIENT", "Middle/relay")]
        self.assertIsNone(first.parent)
        trace = format(first.context.trace_id, "032x")
        self.assertEqual((seen["middle"]["traceId"], seen["leaf"]["traceId"]), (trace, trace))

    async def test_errorStatus(self) -> None:
        """
        A failed call's server and client spans have an error status.
        """
        client = await self.hops()
        seen = await client.call("Middle.relay", "Leaf.fail", traceparent=VALID)
        self.assertEqual(seen["leaf"], {"error": "ValueError"})
        spans = self.spans()
        self.assertEqual(spans[("SERVER", "Leaf/fail")].status.status_code.name, "ERROR")
        self.assertEqual(spans[("CLIENT", "Leaf/fail")].status.status_code.name, "ERROR")
        self.assertEqual(spans[("CLIENT", "Leaf/fail")].attributes["rpc.txgetty.error_type"], "ValueError")
        self.assertEqual(spans[("SERVER", "Middle/relay")].status.status_code.name, "UNSET")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    async def test_refusedCallSpans(self) -> None:
        """
        docs/observability.md: "A call the server refuses without running it
        ... gets a SERVER span too, with the ERROR status and error.type the
        refusal's type; one that names no registered method is named
        _other/_other (the names it gave are in rpc.service and
        rpc.method)", a child of the request's traceparent (the client
        call's span).
        """
        from txgetty.rpc import RemoteError

        client = await self.hops()
        failure = await self.assertFailure(client.call("Nowhere.thing", traceparent=VALID), RemoteError)
        self.assertEqual(failure.type, "NoSuchService")
        span = self.spans()[("SERVER", "_other/_other")]
        self.assertEqual(span.status.status_code.name, "ERROR")
        self.assertEqual(span.attributes["error.type"], "NoSuchService")
        self.assertEqual((span.attributes["rpc.service"], span.attributes["rpc.method"]), ("Nowhere", "thing"))
        self.assertEqual(format(span.context.trace_id, "032x"), TRACE)
        self.assertEqual(span.parent.span_id, self.spans()[("CLIENT", "Nowhere/thing")].context.span_id)

    async def test_noOpenTelemetry(self) -> None:
        """
        With opentelemetry-api unavailable, nothing is recorded even though
        a provider is set, and the context still goes through.
        """
        await TwoHopTests.test_noOpenTelemetry(self)
        self.assertEqual(self.exporter.get_finished_spans(), ())


class NoProviderTests(TestCase):
    """
    opentelemetry-api installed but no tracer provider set: no spans, the
    W3C context alone.
    """

    def test_noProvider(self) -> None:
        """
        With the default (proxy) provider, txgetty makes no tracer.
        """
        if otelTrace is None:
            raise SkipTest("opentelemetry-api is not installed")
        self.patch(otelTrace, "get_tracer_provider", lambda: otelTrace.ProxyTracerProvider())
        self.assertIsNone(tracing.serverTrace({}))
        self.assertIsNone(tracing.clientTrace("A.b", None, None, None))
        trace = tracing.serverTrace({"traceparent": VALID})
        assert trace is not None
        self.assertIsNone(trace.span)
        self.assertEqual(trace.traceId, TRACE)
