#!/usr/bin/env python3
"""In-process cost of one short-lived connection (or of one message): raw Twisted's
Protocol/Factory against a txgetty Server's session, without sockets or a running reactor.

Each connection goes the way a TCP connection goes through Twisted: the listener's factory
builds the protocol (``buildProtocol``), ``makeConnection`` on a fake TCP transport, one
4-byte big-endian frame of --size bytes arrives (``dataReceived``: the echo is written), the
peer closes (``readConnectionLost`` for a half-closeable protocol such as txgetty's session,
else ``connectionLost``), and if the protocol asked the transport to close it
(``loseConnection``), the transport's own ``connectionLost`` follows, as the reactor's next
write event would bring it.  --concurrent connections (16, as the connrate runs' 16 loops)
are open at a time; every 16 connections the (real, never running) epoll reactor runs its
due timers (``runUntilCurrent``), as a running reactor would between events.  --messages:
one connection instead, and --count frames, one per ``dataReceived`` (a 1 x 1 ping-pong).

The transport (``FakeTCPTransport``) provides ``ITCPTransport`` over a real (unconnected)
socket, so the socket options a protocol sets are real ``setsockopt`` calls and
``getHost`` a real ``getsockname``; the fake port hands that socket to txgetty as the
listening socket.  What it costs to accept, read, write and close a socket is not in these
figures, and neither are the paths txgetty takes only on a real ``tcp.Connection`` (it is
not one): see costs.py for the server as a whole.

  python benchmarks/session_setup.py                       # txgetty vs raw, 20,000 connections x 5 rounds
  python benchmarks/session_setup.py --messages --count 100000
  python benchmarks/session_setup.py --profile txgetty     # cProfile of the txgetty side
  python benchmarks/session_setup.py --only txgetty --count 20000 --rounds 1   # for callgrind

Under ``valgrind --tool=callgrind`` two runs of different --count give instructions per
connection (the difference of the totals over the difference of the counts), repeatable to
a few instructions, on a busy machine too.  The txgetty side is the public API only:
``Server`` with an ``IStreamServerEndpoint`` object that hands over the factory, and the
new-session callback of ``twistd txgetty``'s echo (``--codec length:4:big``).  Figures: the
best round's µs per connection (a round is --count connections), and the median.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import socket
import statistics
import struct
import sys
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol, IListeningPort, IStreamServerEndpoint, ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer


@implementer(ITCPTransport)
class FakeTCPTransport(StringTransport):
    """A StringTransport that is an ITCPTransport over a real socket (for the socket options)."""

    def __init__(self, sock: socket.socket, host: Any, peer: Any) -> None:
        """Wrap sock; host and peer are the addresses to report."""
        super().__init__(hostAddress=host, peerAddress=peer)
        self.socket = sock
        self.lost = False

    def getHandle(self) -> socket.socket:
        """Return the socket."""
        return self.socket

    def getHost(self) -> Any:
        """Return the local address, from a real getsockname() as tcp.Server.getHost does."""
        self.socket.getsockname()
        return self.hostAddr

    def setTcpNoDelay(self, enabled: bool) -> None:
        """Set TCP_NODELAY (a real setsockopt)."""
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)

    def getTcpNoDelay(self) -> bool:
        """Return TCP_NODELAY."""
        return bool(self.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    def setTcpKeepAlive(self, enabled: bool) -> None:
        """Set SO_KEEPALIVE (a real setsockopt)."""
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, enabled)

    def getTcpKeepAlive(self) -> bool:
        """Return SO_KEEPALIVE."""
        return bool(self.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))

    def loseWriteConnection(self) -> None:
        """Half-close (not used here)."""


@implementer(IListeningPort)
class _Port:
    """The listening port the capturing endpoint returns."""

    def __init__(self, host: Any, sock: socket.socket) -> None:
        """host: the address getHost returns; sock: the "listening" socket (the one the
        fake transports use, so that options set on it are there for them, as Linux copies
        a listening socket's TCP options to the sockets it accepts)."""
        self.host = host
        self.socket = sock

    def startListening(self) -> None:
        """Nothing to do."""

    def stopListening(self) -> Any:
        """Nothing to do."""
        return succeed(None)

    def getHost(self) -> Any:
        """Return the address."""
        return self.host


@implementer(IStreamServerEndpoint)
class CapturingEndpoint:
    """An endpoint that keeps the factory it is given instead of listening."""

    def __init__(self, host: Any, sock: socket.socket) -> None:
        """host: the address the port reports; sock: its socket."""
        self.host = host
        self.sock = sock
        self.factory: Any = None

    def listen(self, factory: Any) -> Any:
        """Keep the factory; return a fake port."""
        self.factory = factory
        return succeed(_Port(self.host, self.sock))


def raw_factory() -> Factory:
    """The harness's minimal raw Twisted echo (servers/tw_raw.py), as a Factory."""
    hdr = struct.Struct("!I")
    unpack_from, pack = hdr.unpack_from, hdr.pack

    class Echo(Protocol):
        _buf = b""

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)
            self._write = self.transport.write

        def dataReceived(self, data: bytes) -> None:
            buf = self._buf + data if self._buf else data
            n = len(buf)
            off = 0
            while n - off >= 4:
                (length,) = unpack_from(buf, off)
                end = off + 4 + length
                if end > n:
                    break
                self._write(pack(length) + buf[off + 4:end])
                off = end
            self._buf = buf[off:] if off < n else b""

    return Factory.forProtocol(Echo)


def txgetty_factory(reactor: Any, host: Any, sock: socket.socket) -> tuple[Factory, Any]:
    """A txgetty Server's listener factory (twistd txgetty's echo, --codec length:4:big)."""
    from txgetty import EchoListener, LengthPrefixedCodec, Server

    codec = LengthPrefixedCodec(4, "big")
    listener = EchoListener()

    def newSession(session: Any) -> None:
        session.codec = codec
        session.listener = listener

    endpoint = CapturingEndpoint(host, sock)
    server = Server([endpoint], newSession, reactor=reactor)
    server.startService()
    return endpoint.factory, server


def make_reactor() -> Any:
    """A fresh epoll reactor object (never run: its timers are run by hand)."""
    from twisted.internet.epollreactor import EPollReactor

    return EPollReactor()


def one_round(factory: Any, reactor: Any, count: int, frame: bytes, sock: socket.socket, concurrent: int) -> float:
    """Run count connections through factory, concurrent of them open at a time (connection
    i opens, gets its frame and echoes it while connection i - concurrent closes); return the
    seconds taken."""
    host = IPv4Address("TCP", "127.0.0.1", 9000)
    half = IHalfCloseableProtocol.providedBy
    done = Failure(ConnectionDone())
    run = reactor.runUntilCurrent
    ring: list[Any] = [None] * concurrent

    def close(p: Any, t: Any) -> None:
        if half(p):
            p.readConnectionLost()
            if t.disconnecting:
                t.lost = True
                p.connectionLost(done)
        else:
            p.connectionLost(done)

    t0 = time.perf_counter()
    for i in range(count):
        slot = i % concurrent
        if ring[slot] is not None:
            close(*ring[slot])
        peer = IPv4Address("TCP", "127.0.0.1", 10000 + (i & 0x7FFF))
        p = factory.buildProtocol(peer)
        t = FakeTCPTransport(sock, host, peer)
        p.makeConnection(t)
        p.dataReceived(frame)
        if not t.value():
            raise RuntimeError("no echo")
        t.clear()
        ring[slot] = (p, t)
        if i & 15 == 15:
            run()
    for entry in ring:
        if entry is not None:
            close(*entry)
    run()
    return time.perf_counter() - t0


def message_round(factory: Any, reactor: Any, count: int, frame: bytes, sock: socket.socket, concurrent: int) -> float:
    """One connection, count frames, one per dataReceived (a 1 x 1 ping-pong: every frame is
    echoed before the next arrives); return the seconds taken."""
    host = IPv4Address("TCP", "127.0.0.1", 9000)
    peer = IPv4Address("TCP", "127.0.0.1", 10000)
    p = factory.buildProtocol(peer)
    t = FakeTCPTransport(sock, host, peer)
    p.makeConnection(t)
    received = p.dataReceived
    clear = t.io.seek, t.io.truncate
    t0 = time.perf_counter()
    for i in range(count):
        received(frame)
        clear[0](0)
        clear[1]()
    elapsed = time.perf_counter() - t0
    if IHalfCloseableProtocol.providedBy(p):
        p.readConnectionLost()
    p.connectionLost(Failure(ConnectionDone()))
    reactor.runUntilCurrent()
    return elapsed


def main(argv: list[str] | None = None) -> None:
    """Measure each side, rounds interleaved; print µs per connection."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20000, help="connections per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, default=915)
    ap.add_argument("--concurrent", type=int, default=16, help="connections open at a time (default 16, as "
                    "the connrate runs' 16 loops)")
    ap.add_argument("--only", choices=("raw", "txgetty"), default=None)
    ap.add_argument("--messages", action="store_true",
                    help="per message instead: one connection, --count frames one per dataReceived (1 x 1)")
    ap.add_argument("--profile", choices=("raw", "txgetty"), default=None, help="cProfile one round of one side")
    ap.add_argument("--top", type=int, default=35)
    opts = ap.parse_args(argv)
    frame = struct.pack("!I", opts.size) + bytes(opts.size)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reactor = make_reactor()
    host = IPv4Address("TCP", "127.0.0.1", 9000)
    sides: dict[str, Any] = {"raw": raw_factory()}
    sides["txgetty"], server = txgetty_factory(reactor, host, sock)
    names = [opts.only] if opts.only else ["raw", "txgetty"]
    run = message_round if opts.messages else one_round
    unit = "msg" if opts.messages else "conn"
    if opts.profile:
        run(sides[opts.profile], reactor, 2000, frame, sock, opts.concurrent)
        prof = cProfile.Profile()
        prof.enable()
        run(sides[opts.profile], reactor, opts.count, frame, sock, opts.concurrent)
        prof.disable()
        st = pstats.Stats(prof)
        st.sort_stats("tottime").print_stats(opts.top)
        return
    for name in names:  # warm up (the adaptive interpreter, the allocator)
        run(sides[name], reactor, min(2000, opts.count), frame, sock, opts.concurrent)
    results: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()
    for r in range(opts.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            results[name].append(1e6 * run(sides[name], reactor, opts.count, frame, sock, opts.concurrent) / opts.count)
    if "txgetty" in names and server.sessions():
        sys.exit(f"{len(server.sessions())} sessions left over: the run did not close them")
    print(f"{opts.count} {'messages' if opts.messages else 'connections'} x {opts.rounds} rounds, {opts.size}-byte frame, Python "
          f"{sys.version.split()[0]}, pid {os.getpid()}")
    base = min(results["raw"]) if "raw" in results else None
    for name in names:
        best, medi = min(results[name]), statistics.median(results[name])
        rel = f"  ({best / base:.2f}x raw)" if base else ""
        print(f"{name:8s} best {best:6.2f} µs/{unit}, median {medi:6.2f}{rel}   rounds: "
              + " ".join(f"{x:.2f}" for x in results[name]))


if __name__ == "__main__":
    main()
