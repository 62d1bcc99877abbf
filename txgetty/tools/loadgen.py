"""
The load generator behind C{txgetty bench}: C connections, W packets in
flight on each, every echo answered by a new packet (closed loop); it
measures messages per second and the latency of every message.

Any echo-style server works whatever its codec: the expected reply is the
request's own bytes, so k replies that arrive together are checked with one
comparison; anything else is parsed with the codec and counted as an error
if it is not the echo.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, TextIO, cast

from twisted.internet.defer import CancelledError, Deferred, DeferredList, FirstError, TimeoutError, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.internet.task import LoopingCall, deferLater
from twisted.python.failure import Failure

from ..client.slot import describeConnectFailure
from ..codec import codecFromString
from ..transports.endpoints import clientEndpoint
from ..errors import TxGettyError
from ..transports.tls import TLSClientSettings, describeHandshakeFailure, isTLSFailure, tlsConnectionOf

now = time.perf_counter_ns

#: The characters of the RPC mode's string argument: printable ASCII but
#: the two JSON escapes (quote, backslash).
_PLAIN_TEXT = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')


@dataclass
class BenchOptions:
    """
    What to run.

    @ivar address: the server, as for L{txgetty.transports.endpoints.clientEndpoint}.
    @ivar codec: the codec spec (C{hello}, C{length:4}, C{line} ...).
    @ivar connections: C, the number of connections.
    @ivar window: W, packets in flight per connection.
    @ivar size: payload bytes per packet.
    @ivar duration: measured seconds (ignored when C{count} is set).
    @ivar count: fixed work instead: this many echoes per connection.
    @ivar warmup: unmeasured seconds first (not with C{count}).
    @ivar progress: print a line a second to stderr.
    @ivar tls: TLS client settings for C{tls:} addresses.
    @ivar rpc: call C{Echo.echo} with a C{size}-character string over the
        RPC frame instead of echoing packets (C{codec} is then unused).
    @ivar timeout: seconds to connect, and seconds without any answer
        after which the run fails.
    """

    address: str
    codec: str = "hello"
    connections: int = 50
    window: int = 32
    size: int = 915
    duration: float = 10.0
    count: int = 0
    warmup: float = 1.0
    progress: bool = True
    tls: TLSClientSettings | None = None
    rpc: bool = False
    timeout: float = 10.0


class BenchError(TxGettyError):
    """
    A load test could not run, or got no answer; the message says why.
    """


class _Run:
    """
    State shared by the connections of one run.
    """

    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        codec = codecFromString(options.codec)
        payload = bytes((i * 7 + 13) % 251 for i in range(options.size))

        class Limits:
            maxMsgLen = max(options.size * 8 + 1024, 1)
            readerState = None

        self.codec = codec
        # What a codec reads of a session (maxMsgLen, readerState): enough for one.
        self.limits: Any = cast(Any, Limits())
        self.payload = payload
        self.frame = codec.write(self.limits, payload)
        self.measuring = False
        self.stopping = False
        self.latencies = array("q")
        self.count = 0
        self.total = 0
        self.errors = 0
        self.budget: int | None = None
        self.done: Deferred | None = None
        self.failed: Deferred = Deferred()
        self.firstError = ""

    def allow(self, n: int) -> int:
        """
        @param n: requests a connection wants to send.
        @return: how many it may send (all, unless a fixed count runs out).
        """
        if self.budget is None:
            return n
        n = min(n, self.budget)
        self.budget -= n
        return n

    def error(self, what: str) -> None:
        """
        @param what: a description of the first error, kept for the summary.
        """
        self.errors += 1
        if not self.firstError:
            self.firstError = what


class _EchoLoad(Protocol):
    """
    One connection of the load: sends W frames, answers each echo with one.
    """

    #: Once connected, the TCP transport (C{abortConnection}, C{setTcpNoDelay}).
    transport: Any

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buf = bytearray()
        self.sent: deque[list[int]] = deque()
        self.cache: dict[int, bytes] = {}
        self.ready: Deferred = Deferred()

    def connectionMade(self) -> None:
        setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setNoDelay is not None:
            setNoDelay(True)
        self.ready.callback(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.run.stopping:
            if isTLSFailure(reason):
                why = str(describeHandshakeFailure(reason, self.transport.getPeer(),
                                                   connection=tlsConnectionOf(self.transport)))
            else:
                why = f"connection lost: {reason.getErrorMessage()}"
                if not self.run.total:
                    what = "RPC server (--rpc)" if self.run.options.rpc else f"echo server with codec {self.run.options.codec}"
                    why += f" before any answer (is it an {what}?)"
            self.run.error(why)
            if self.run.done is not None and not self.run.done.called:
                self.run.done.callback(None)

    def send(self, n: int, t: int = 0) -> None:
        """
        @param n: frames to send now, in one write.
        @param t: their send time (now if 0).
        """
        self.sent.append([t or now(), n])
        self.transport.write(self.run.frame * n)

    def dataReceived(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        size = len(self.run.frame)
        k = len(buf) // size
        if not k:
            return
        expected = self.cache.get(k)
        if expected is None:
            expected = self.cache[k] = self.run.frame * k
        if buf.startswith(expected):
            del buf[:k * size]
            self.replies(k)
        else:
            self.slowParse()

    def slowParse(self) -> None:
        """
        Cut the buffer with the codec; a packet that is not the echo is an
        error.
        """
        run = self.run
        got = 0
        while self.buf:
            try:
                pkg, n = run.codec.read(run.limits, self.buf)
            except Exception as e:
                run.error(f"cannot parse the reply: {e}")
                self.transport.abortConnection()
                return
            if pkg is None:
                break
            if bytes(pkg) != run.payload:
                run.error(f"reply differs from the request: {bytes(pkg)[:40]!r}")
            del self.buf[:n]
            got += 1
        if got:
            self.replies(got)

    def replies(self, got: int) -> None:
        """
        @param got: echoes just received; record latencies, send as many.
        """
        run = self.run
        t = now()
        if run.measuring:
            run.count += got
            for batch in self._pop(got):
                run.latencies.extend([t - batch[0]] * batch[1])
        else:
            for _ in self._pop(got):
                pass
        self.more(got, t)

    def more(self, got: int, t: int) -> None:
        """
        Count answers and send as many new requests (closed loop), unless
        the run is over.

        @param got: answers just received.
        @param t: when they arrived.
        """
        run = self.run
        run.total += got
        if run.done is not None and run.budget == 0 and run.total >= run.options.connections * run.options.count:
            if not run.done.called:
                run.done.callback(None)
            return
        if not run.stopping:
            n = run.allow(got)
            if n:
                self.send(n, t)

    def _pop(self, got: int) -> Any:
        """
        @param got: how many sent frames were answered.
        @return: C{[send time, n]} pieces covering them, oldest first.
        """
        sent = self.sent
        while got:
            head = sent[0]
            k = min(head[1], got)
            yield [head[0], k]
            head[1] -= k
            got -= k
            if not head[1]:
                sent.popleft()


class _RpcLoad(_EchoLoad):
    """
    One connection of an RPC load: C{Echo.echo(payload)} calls, answers
    matched by request id and checked against the expected response body.
    """

    def __init__(self, run: _Run) -> None:
        super().__init__(run)
        from ..rpc.frame import REQUEST, Frame, RpcCodec

        # A printable ASCII string of SIZE characters without quote or
        # backslash, so that its JSON is SIZE + 2 bytes (nothing escaped).
        text = "".join(_PLAIN_TEXT[b % len(_PLAIN_TEXT)] for b in run.payload)
        self.request = bytearray(Frame(REQUEST, 0, {"service": "Echo", "method": "echo"},
                                       json.dumps([text]).encode()).encode())
        self.expected = json.dumps(text, ensure_ascii=False).encode()
        self.codec = RpcCodec()
        self.nextId = 0
        self.inFlight: dict[int, int] = {}

    def send(self, n: int, t: int = 0) -> None:
        t = t or now()
        frames = []
        request = self.request
        for _ in range(n):
            self.nextId = (self.nextId + 1) & 0xFFFFFFFF
            request[12:16] = self.nextId.to_bytes(4, "big")
            self.inFlight[self.nextId] = t
            frames.append(bytes(request))
        self.transport.write(b"".join(frames))

    def dataReceived(self, data: bytes) -> None:
        self.buf += data
        frames: list[Any] = []
        try:
            self.codec.readPackets(self.run.limits, self.buf, frames)
        except Exception as e:
            self.run.error(f"cannot parse the RPC response: {e}")
            self.transport.abortConnection()
            return
        if not frames:
            return
        run = self.run
        t = now()
        measuring = run.measuring
        for frame in frames:
            sent = self.inFlight.pop(frame.requestId, None)
            if sent is None or frame.head or frame.body != self.expected:
                run.error(f"unexpected RPC response: {frame!r} {frame.head!r}")
            elif measuring:
                run.latencies.append(t - sent)
        got = len(frames)
        if measuring:
            run.count += got
        self.more(got, t)


def _cpuSeconds() -> float:
    """
    @return: user + system CPU seconds of this process.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _checkAddress(address: str) -> None:
    """
    @param address: the server to load.
    @raise BenchError: it is a UDP or WebSocket address, which the load
        generator does not drive.
    """
    if address.startswith(("udp:", "ws://", "wss://")):
        raise BenchError(
            f"txgetty bench drives stream servers (HOST:PORT, tcp:, tls:, unix:), not {address.split(':')[0]}: "
            f"addresses; use txgetty send to try {address}"
        )


@inlineCallbacks
def _connectAll(reactor: Any, endpoint: Any, label: str, factory: Any, options: BenchOptions) -> Any:
    """
    Open every connection of the run; if one cannot be opened, close the
    others and fail with one error (no "Unhandled error in Deferred").

    @return: a L{Deferred} firing with the connected protocols.
    @raise BenchError: a connection failed or did not open in time.
    """
    attempts = [endpoint.connect(factory).addTimeout(options.timeout, reactor)
                for _ in range(options.connections)]
    results = yield DeferredList(attempts, consumeErrors=True)
    protocols = [r for ok, r in results if ok]
    failures = [r for ok, r in results if not ok]
    if not failures:
        ready = yield DeferredList([p.ready.addTimeout(options.timeout, reactor) for p in protocols],
                                   consumeErrors=True)
        failures = [r for ok, r in ready if not ok]
    if failures:
        for p in protocols:
            p.transport.abortConnection()
        failure = failures[0]
        if failure.check(CancelledError, TimeoutError):
            why = f"no connection within {options.timeout:g} s (--timeout) [TimeoutError]"
        else:
            why = describeConnectFailure(failure)
        raise BenchError(f"cannot connect to {label}: {why} ({len(failures)} of {options.connections} "
                         f"connections failed)")
    return protocols


def _watchAnswers(reactor: Any, run: _Run, timeout: float) -> LoopingCall:
    """
    Fail the run (its C{failed}) once no answer came for C{timeout} seconds.

    @return: the running watchdog.
    """
    state = {"total": -1, "since": reactor.seconds()}

    def check() -> None:
        if run.total != state["total"]:
            state.update(total=run.total, since=reactor.seconds())
        elif reactor.seconds() - state["since"] >= timeout and not run.failed.called:
            run.failed.errback(Failure(BenchError(_silence(run, timeout))))

    watchdog = LoopingCall(check)
    watchdog.clock = reactor
    watchdog.start(min(1.0, timeout / 4), now=False)
    return watchdog


@inlineCallbacks
def _until(run: _Run, d: Deferred) -> Any:
    """
    Wait for C{d}, unless the run fails first.

    @param run: the run.
    @param d: what to wait for.
    @return: a L{Deferred} firing with C{d}'s result.
    @raise BenchError: the run failed (no answer for C{timeout} seconds).
    """
    try:
        result, _ = yield DeferredList([d, run.failed], fireOnOneCallback=True, fireOnOneErrback=True,
                                       consumeErrors=True)
    except FirstError as e:
        e.subFailure.raiseException()
    return result


def _silence(run: _Run, seconds: float) -> str:
    """
    @param run: the run.
    @param seconds: how long nothing came.
    @return: the error of a run whose server stopped answering.
    """
    o = run.options
    what = "answer to Echo.echo (--rpc)" if o.rpc else f"echo (codec {o.codec})"
    if run.errors:
        return f"no answer from {o.address} for {seconds:g} s after {run.total}: {run.firstError}"
    if not run.total:
        return (f"no answer from {o.address} in {seconds:g} s: it accepted {o.connections} connection(s) but "
                f"sent no {what} back; is it an echo server with that framing?")
    return f"{o.address} stopped answering: nothing for {seconds:g} s (--timeout) after {run.total} answers"


def _percentile(ordered: list[int], p: float) -> float | None:
    """
    @param ordered: sorted latencies in ns.
    @param p: a fraction (0.99).
    @return: that percentile in µs, or C{None} without data.
    """
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] / 1e3, 1)


def summarize(run: _Run, seconds: float, cpu: float) -> dict[str, Any]:
    """
    @param run: the finished run.
    @param seconds: the measured wall-clock window.
    @param cpu: this process's CPU seconds in that window.
    @return: the figures of the run.
    """
    o = run.options
    ordered = sorted(run.latencies)
    return {
        "address": o.address, "codec": "rpc Echo.echo (json)" if o.rpc else o.codec,
        "connections": o.connections, "window": o.window,
        "size": o.size, "seconds": round(seconds, 3), "msgs": run.count,
        "msgs_per_s": round(run.count / seconds, 1) if seconds else 0.0,
        "mb_per_s": round(run.count * o.size / seconds / 1e6, 2) if seconds else 0.0,
        "lat_p50_us": _percentile(ordered, 0.50), "lat_p90_us": _percentile(ordered, 0.90),
        "lat_p99_us": _percentile(ordered, 0.99), "lat_p999_us": _percentile(ordered, 0.999),
        "lat_max_us": round(ordered[-1] / 1e3, 1) if ordered else None,
        "errors": run.errors, "first_error": run.firstError,
        "client_cpu_pct": round(100 * cpu / seconds, 1) if seconds else 0.0,
    }


def formatSummary(result: dict[str, Any]) -> str:
    """
    @param result: figures from L{summarize}.
    @return: a human-readable block.
    """
    latency = "  ".join(
        f"{name} {'-' if result[key] is None else result[key]}"
        for name, key in (("p50", "lat_p50_us"), ("p90", "lat_p90_us"), ("p99", "lat_p99_us"),
                          ("p99.9", "lat_p999_us"), ("max", "lat_max_us"))
    )
    lines = [
        f"{result['address']}  codec {result['codec']}  {result['connections']} conns x "
        f"{result['window']} in flight  {result['size']} B payload",
        f"  {result['msgs']:,} echoes in {result['seconds']:.2f} s: {result['msgs_per_s']:,.0f} msg/s, "
        f"{result['mb_per_s']:.1f} MB/s",
        f"  latency µs  {latency}" if result["msgs"] else "  latency µs  - (no echo measured)",
        f"  errors {result['errors']}{'  (' + result['first_error'] + ')' if result['errors'] else ''}"
        f"  client CPU {result['client_cpu_pct']}%",
    ]
    return "\n".join(lines)


@inlineCallbacks
def runBench(reactor: Any, options: BenchOptions, out: TextIO = sys.stderr) -> Any:
    """
    Run one load test.

    @param reactor: the reactor.
    @param options: what to run.
    @param out: where progress lines go.
    @return: a L{Deferred} firing with the figures (see L{summarize}).
    @raise BenchError: the connections could not be made, or no answer
        came (for C{timeout} seconds, or during the whole run).
    """
    _checkAddress(options.address)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = _Run(options)
    endpoint, label = clientEndpoint(reactor, options.address, options.tls)
    factory = Factory.forProtocol(lambda: (_RpcLoad if options.rpc else _EchoLoad)(run))
    factory.noisy = False
    protocols = yield _connectAll(reactor, endpoint, label, factory, options)
    ticker = _progress(reactor, run, out) if options.progress else None
    if options.count:
        run.budget = options.connections * max(0, options.count - options.window)
        run.done = Deferred()
        run.measuring = True
        begun = now(), _cpuSeconds()
        for p in protocols:
            p.send(min(options.window, options.count))
        wait: Deferred = run.done.addCallback(lambda _: begun)
    else:
        for p in protocols:
            p.send(options.window)
        wait = _measure(reactor, run, options)
    watchdog = _watchAnswers(reactor, run, options.timeout)
    try:
        start, cpu0 = yield _until(run, wait)
    except BenchError:
        wait.cancel()
        _stop(run, ticker, protocols)
        raise
    finally:
        watchdog.stop()
        if not run.failed.called:
            run.failed.callback(None)
    run.measuring = False
    seconds, cpu = (now() - start) / 1e9, _cpuSeconds() - cpu0
    _stop(run, ticker, protocols)
    if not run.count and not run.errors:
        raise BenchError(_silence(run, options.warmup + options.duration) if not run.total else
                         f"no echo came back during the measured {options.duration:g} s (after {run.total} in "
                         f"the warm-up)")
    return summarize(run, seconds, cpu)


@inlineCallbacks
def _measure(reactor: Any, run: _Run, options: BenchOptions) -> Any:
    """
    Warm up, then measure for C{duration} seconds.

    @return: a L{Deferred} firing with the wall-clock and CPU times the
        measured window started at.
    """
    yield deferLater(reactor, options.warmup, lambda: None)
    run.latencies, run.count = array("q"), 0
    begun = now(), _cpuSeconds()
    run.measuring = True
    yield deferLater(reactor, options.duration, lambda: None)
    return begun


def _stop(run: _Run, ticker: LoopingCall | None, protocols: list[Any]) -> None:
    """
    End a run: no more requests, no more progress lines, close the
    connections.
    """
    run.measuring = False
    run.stopping = True
    if ticker is not None and ticker.running:
        ticker.stop()
    for p in protocols:
        p.transport.loseConnection()


def _progress(reactor: Any, run: _Run, out: TextIO) -> LoopingCall:
    """
    @return: a running L{LoopingCall} that prints a line per second.
    """
    state = {"count": 0, "t": now()}

    def tick() -> None:
        t = now()
        done = run.total
        rate = (done - state["count"]) / max((t - state["t"]) / 1e9, 1e-9)
        state.update(count=done, t=t)
        phase = "measuring" if run.measuring else "warming up"
        out.write(f"  {phase}: {rate:,.0f} msg/s, {done:,} echoes, errors {run.errors}\n")
        out.flush()

    ticker = LoopingCall(tick)
    ticker.clock = reactor
    ticker.start(1.0, now=False)
    return ticker


def printResult(result: dict[str, Any], asJSON: bool, out: TextIO = sys.stdout) -> None:
    """
    @param result: figures from L{summarize}.
    @param asJSON: print one JSON line instead of the text block.
    @param out: where to print.
    """
    out.write((json.dumps(result) if asJSON else formatSummary(result)) + os.linesep)
    out.flush()
