"""
Helpers for the RPC tests: a raw frame client on an in-memory session, an
in-memory network joining an L{RpcClient}'s controlled endpoints to
L{RpcServer}s on one fake clock, and real-socket helpers (servers on
127.0.0.1 port 0, clients stopped at the end of the test).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
import json
import threading

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txgetty.rpc import CallInfo, RpcClient, RpcServer, frame as F, rpcmethod
from txgetty.rpc.serializers import JSON, NONE, compressor, serializer
from txgetty.session import Session
from txgetty.testing import ControlledEndpoint, RecordingListener, SessionPair, _Configure
from txgetty.wheel import TimerWheel

from .net import bounded


#: The server address the in-memory client sessions pretend to reach.
SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8091)


def requestFrame(rid: int, name: str, *args: Any, kwargs: dict | None = None, head: dict | None = None,
                 type: int = F.REQUEST, ser: int = JSON, comp: int = NONE, body: bytes | None = None) -> F.Frame:
    """
    @param rid: the request id.
    @param name: C{"Service.method"}.
    @param args: positional arguments.
    @param kwargs: keyword arguments, if any.
    @param head: more head map entries.
    @param type: the message type.
    @param ser: the serializer code of the body.
    @param comp: the compressor code of the body.
    @param body: the body bytes as they are (instead of encoding C{args}).
    @return: a request frame, as a client would send it.
    """
    service, _, method = name.partition(".")
    fullHead = {F.SERVICE: service, F.METHOD: method}
    fullHead.update(head or {})
    if body is None:
        value = {"args": list(args), "kwargs": kwargs} if kwargs else list(args)
        body = serializer(ser).dumps(value)
        if comp:
            body = compressor(comp).compress(body)
    return F.Frame(type, rid, fullHead, body, ser, comp)


def resultOf(frame: F.Frame) -> Any:
    """
    @param frame: a successful response.
    @return: its decoded body.
    """
    data = compressor(frame.compressor).decompress(frame.body) if frame.compressor else frame.body
    return serializer(frame.serializer).loads(data)


class FrameClient:
    """
    One in-memory connection to an L{RpcServer} that sends raw frames, as
    a hand-written client would: the server side is a session made by the
    server's own L{Server <txgetty.server.Server>} (its config, clock and
    session bookkeeping).

    @ivar pair: the L{SessionPair}.
    @ivar recorder: the client side's L{RecordingListener}.
    """

    def __init__(self, rpc: RpcServer, clock: Clock) -> None:
        """
        @param rpc: the server, built with C{reactor=clock}.
        @param clock: the clock of the server.
        """
        self.recorder = RecordingListener()
        serverSession = rpc.server.newSession(IPv4Address("TCP", "127.0.0.1", 40000))
        owner = _Configure(self.recorder, F.RpcCodec())
        client = Session(clock=clock, wheel=TimerWheel(clock, 0.1), owner=owner)
        self.pair = SessionPair(serverSession, client, clock, rpc.server._wheel).connect()

    @property
    def serverSession(self) -> Session:
        """
        The server's session of this connection.
        """
        return self.pair.server

    def send(self, *frames: F.Frame) -> None:
        """
        @param frames: frames to send; the bytes are delivered at once.
        """
        for frame in frames:
            self.pair.client.writePkg(frame)
        self.pair.pump()

    def sendBytes(self, data: bytes) -> None:
        """
        @param data: raw bytes to deliver to the server.
        """
        self.pair.client.writeBytes(data)
        self.pair.pump()

    def frames(self) -> list[F.Frame]:
        """
        @return: every frame received so far.
        """
        return self.recorder.messages

    def response(self, rid: int) -> F.Frame:
        """
        @param rid: a request id.
        @return: the only response to it.
        @raise AssertionError: none or several came.
        """
        found = [f for f in self.frames() if f.type == F.RESPONSE and f.requestId == rid]
        if len(found) != 1:
            raise AssertionError(f"expected one response to #{rid}, got {found!r}")
        return found[0]

    def result(self, rid: int) -> Any:
        """
        @param rid: a request id.
        @return: the value of its successful response.
        @raise AssertionError: it was an error response.
        """
        frame = self.response(rid)
        if frame.head.get(F.STATUS) == "error":
            raise AssertionError(f"#{rid} failed: {frame.head!r}")
        return resultOf(frame)

    def error(self, rid: int) -> dict[str, str]:
        """
        @param rid: a request id.
        @return: the head map of its error response.
        @raise AssertionError: it succeeded.
        """
        head = self.response(rid).head
        if head.get(F.STATUS) != "error":
            raise AssertionError(f"#{rid} did not fail: {head!r}")
        return head

    def call(self, rid: int, name: str, *args: Any, **kw: Any) -> None:
        """
        Send a request (arguments as for L{requestFrame}).
        """
        self.send(requestFrame(rid, name, *args, **kw))


class MemoryNetwork:
    """
    An L{RpcClient} whose addresses are L{ControlledEndpoint}s, each joined
    by hand to an L{RpcServer} in memory, all on one L{Clock}.

    @ivar clock: the clock.
    @ivar servers: the servers, by index.
    @ivar endpoints: the client's endpoints, one per server.
    @ivar client: the started client.
    @ivar pairs: the in-memory connections made, in order.
    """

    def __init__(self, servers: Sequence[RpcServer] | int = 1, clock: Clock | None = None,
                 **clientArgs: Any) -> None:
        """
        @param servers: servers (built with this network's clock) or how
            many L{Calc}-serving servers to make.
        @param clock: the clock the servers use.
        @param clientArgs: more L{RpcClient} arguments.
        """
        self.clock = clock or Clock()
        if isinstance(servers, int):
            servers = [calcServer(self.clock, index=i) for i in range(servers)]
        self.servers = list(servers)
        self.endpoints = [ControlledEndpoint() for _ in self.servers]
        self.pairs: list[SessionPair] = []
        self.client = RpcClient(self.endpoints, reactor=self.clock, **clientArgs)
        self.client.startService()

    def accept(self, index: int) -> SessionPair:
        """
        Complete the last connection attempt to server C{index}.

        @param index: the server.
        @return: the in-memory connection.
        """
        attempt = self.endpoints[index].last
        server = self.servers[index].server
        protocol = attempt.factory.buildProtocol(SERVER_ADDRESS)
        pair = SessionPair(server.newSession(IPv4Address("TCP", "127.0.0.1", 50000 + index)), protocol,
                           self.clock, server._wheel).connect()
        attempt.protocol, attempt.transport = protocol, pair.clientTransport
        attempt.deferred.callback(protocol)
        self.pairs.append(pair)
        self.pump()
        return pair

    def acceptAll(self) -> None:
        """
        Complete the last attempt to every server.
        """
        for index in range(len(self.servers)):
            self.accept(index)

    def pump(self) -> None:
        """
        Move bytes on every connection until nothing moves.
        """
        while any([pair.pump() for pair in self.pairs]):  # noqa: C419 (pump them all)
            pass

    def advance(self, seconds: float) -> None:
        """
        @param seconds: how far to move the clock, then pump.
        """
        self.clock.advance(seconds)
        self.pump()

    def drop(self, pair: SessionPair) -> None:
        """
        Reset a connection (as a dying server would), delivered at once.

        @param pair: the connection.
        """
        pair.serverTransport.abortConnection()
        self.pump()

    def stop(self) -> None:
        """
        Stop the client (its parked calls fail, its connections close).
        """
        self.client.stopService()
        self.pump()


class Calc:
    """
    A small service for the tests.

    @ivar index: which server this is (returned by C{where}).
    @ivar seen: the arguments of every C{add} and C{note} call.
    @ivar waiting: unfinished L{Deferred}s returned by C{wait}.
    """

    def __init__(self, index: int = 0) -> None:
        """
        @param index: the server's index.
        """
        self.index = index
        self.seen: list[Any] = []
        self.waiting: list[Deferred] = []
        self.cancelled = 0

    def add(self, a: Any, b: Any) -> Any:
        """
        @return: C{a + b}.
        """
        self.seen.append((a, b))
        return a + b

    def where(self, *args: Any) -> int:
        """
        @return: the server's index, whatever the arguments.
        """
        return self.index

    def note(self, value: Any) -> None:
        """
        @param value: remembered in C{seen}.
        """
        self.seen.append(value)

    def wait(self) -> Deferred:
        """
        @return: a L{Deferred} the test fires (kept in C{waiting}); its
            cancellation is counted in C{cancelled}.
        """

        def cancelled(d: Deferred) -> None:
            """
            @param d: the cancelled L{Deferred}.
            """
            self.cancelled += 1

        d: Deferred = Deferred(cancelled)
        self.waiting.append(d)
        return d


def calcServer(clock: Any, index: int = 0, **serverArgs: Any) -> RpcServer:
    """
    @param clock: the reactor or clock.
    @param index: what the server's C{Calc.where} returns.
    @param serverArgs: more L{RpcServer} arguments.
    @return: a (not started) server with C{Calc} registered.
    """
    serverArgs.setdefault("endpoints", ["tcp:0:interface=127.0.0.1"])
    rpc = RpcServer(reactor=clock, **serverArgs)
    rpc.register(Calc(index))
    return rpc


def calcOf(rpc: RpcServer) -> Calc:
    """
    @param rpc: a server made by L{calcServer}.
    @return: its C{Calc} service object.
    """
    return rpc.registry._owners["Calc"]


#: The L{Deferred}s returned by L{Failing.later}, for the test to fire.
LATER: list[Deferred] = []


class Plain:
    """
    A service of public methods.
    """

    def greet(self, name: str, punctuation: str = "!") -> str:
        """
        @return: a greeting.
        """
        return f"hello {name}{punctuation}"

    def _hidden(self) -> None:
        """
        Not exposed: private.
        """

    constant = 3

    class Nested:
        """
        Not exposed: a class.
        """


class Marked:
    """
    A service with marked methods: only they are exposed.
    """

    @rpcmethod
    def one(self) -> int:
        """
        @return: 1.
        """
        return 1

    @rpcmethod(name="two", blocking=True)
    def secondMethod(self) -> int:
        """
        @return: 2.
        """
        return 2

    def unmarked(self) -> None:
        """
        Not exposed: another method is marked.
        """


class Failing:
    """
    Methods that fail in various ways.
    """

    def coded(self) -> None:
        """
        @raise ValueError: with a C{code}.
        """
        error = ValueError("the value is wrong")
        error.code = "E42"  # type: ignore[attr-defined]
        raise error

    def bare(self) -> None:
        """
        @raise KeyError: without a message.
        """
        raise KeyError()

    def later(self) -> Deferred:
        """
        @return: a L{Deferred} that the test fires (it is appended to
            L{LATER}).
        """
        d: Deferred = Deferred()
        LATER.append(d)
        return d

    def unserializable(self) -> object:
        """
        @return: something JSON cannot carry.
        """
        return object()


class RecordingHook:
    """
    A hook that records every call it gets.

    @ivar events: C{(name, argument, ...)} tuples.
    """

    def __init__(self) -> None:
        """
        Start with no events.
        """
        self.events: list[tuple] = []

    def connected(self, session: Any) -> None:
        """
        @param session: a new connection.
        """
        self.events.append(("connected", session))

    def disconnected(self, session: Any) -> None:
        """
        @param session: a connection that ended.
        """
        self.events.append(("disconnected", session))

    def beforeCall(self, info: CallInfo) -> None:
        """
        @param info: a call about to run.
        """
        self.events.append(("before", info))

    def afterCall(self, info: CallInfo, result: Any) -> None:
        """
        @param info: a call that finished.
        @param result: its value, or a L{Failure}.
        """
        self.events.append(("after", info, result))


class Threads:
    """
    Report the thread a method runs in.
    """

    @rpcmethod(blocking=True)
    def blocking(self, x: int) -> list:
        """
        @return: C{x} and this thread's id.
        """
        return [x, threading.get_ident()]

    @rpcmethod
    def inline(self) -> int:
        """
        @return: this thread's id.
        """
        return threading.get_ident()


async def startServer(testCase: TestCase, rpc: RpcServer) -> str:
    """
    Start a server on a real socket; the test stops it at its end.

    @param testCase: the test, for clean-up.
    @param rpc: a server listening on C{tcp:0:interface=127.0.0.1}.
    @return: its C{HOST:PORT} address.
    """
    rpc.startService()
    testCase.addCleanup(lambda: bounded(rpc.stopService(), "the RPC server to stop") if rpc.running else None)
    [address] = await bounded(rpc.whenListening(), "the RPC server to listen")
    return f"{address.host}:{address.port}"


def startClient(testCase: TestCase, addresses: Any, **clientArgs: Any) -> RpcClient:
    """
    Start an L{RpcClient} on the real reactor; the test stops it at its end.

    @param testCase: the test, for clean-up.
    @param addresses: one or several C{HOST:PORT}.
    @param clientArgs: more L{RpcClient} arguments.
    @return: the client.
    """
    clientArgs.setdefault("timeout", 10.0)
    client = RpcClient(addresses, reactor=reactor, **clientArgs)
    client.startService()
    testCase.addCleanup(lambda: bounded(client.stopService(), "the RPC client to stop") if client.running else None)
    return client


class LogCapture:
    """
    The log events published while a test runs.

    @ivar events: every event, in order.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        """
        Start capturing; the test's cleanup stops it.

        @param testCase: the test.
        """
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        testCase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def lines(self, namespace: str = "txgetty.rpc.server") -> list[tuple[LogLevel, str]]:
        """
        @param namespace: the logger's namespace.
        @return: C{(level, text)} of each event of that namespace; the text
            is the formatted message followed by the traceback, if any.
        """
        found = []
        for event in self.events:
            if event.get("log_namespace") != namespace:
                continue
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += "\n" + failure.getTraceback()
            found.append((event["log_level"], text))
        return found

    def text(self) -> str:
        """
        @return: every event of every namespace, formatted, with
            tracebacks: what a log file would show.
        """
        parts = []
        for event in self.events:
            parts.append(formatEvent(event))
            if event.get("log_failure") is not None:
                parts.append(event["log_failure"].getTraceback())
        return "\n".join(parts)


def jsonArgs(*values: Any) -> list[str]:
    """
    @param values: arguments.
    @return: them as JSON texts for C{txgetty call}.
    """
    return [json.dumps(v) for v in values]


__all__ = [
    "LATER",
    "SERVER_ADDRESS",
    "Calc",
    "Failing",
    "FrameClient",
    "LogCapture",
    "Marked",
    "MemoryNetwork",
    "Plain",
    "RecordingHook",
    "Threads",
    "calcOf",
    "calcServer",
    "jsonArgs",
    "requestFrame",
    "resultOf",
    "startClient",
    "startServer",
]
