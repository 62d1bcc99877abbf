#!/usr/bin/env python3
"""Closed-loop UDP echo load generator for txgetty's benchmarks (asyncio, uvloop if installed).

A separate process from the server under test.  P peers (--conns), each its own connected
UDP socket (so its own local port: a server that keeps state per peer address, such as
txgetty's UDP listener, makes a session per peer), each with W requests in flight
(--window): every echo is answered at once by a new request.  A request is one datagram:

  raw    the payload itself (--size bytes), its first 8 bytes a per-peer sequence number
  hello  getty's hello framing in the datagram: 4-byte little-endian length + that payload

UDP may lose datagrams: a request not answered within --timeout seconds is counted lost
and replaced by a new one (so the loop keeps W in flight); an echo that comes back after
its request was given up is counted late (and otherwise ignored).  Echoes are checked
(length, the payload's tail, a sequence number that was sent).

Reports, over the --seconds window after --warmup: msgs/s (echoes), latency percentiles
(send of a request -> its echo), lost (timed out in the window), late, loss % = lost /
(echoes + lost), the machine's UDP receive/send buffer drops in the window (/proc/net/snmp
RcvbufErrors/SndbufErrors: a full socket buffer, the usual cause of loss on loopback),
client CPU, and with --server-pid the server's CPU, peak RSS and the
noise figures (other_cpu_cores, run-queue waits), as loadgen.py.  One JSON line on stdout,
a summary on stderr.

  python udpgen.py --port 9000 --conns 50 --window 8 --seconds 5 --server-pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import sys
from array import array
from typing import Any

from loadgen import Gauges, lat_stats, now_ns, run_loop

SEQ = struct.Struct("!Q")
HELLO = struct.Struct("<I")


def udp_snmp() -> dict[str, int]:
    """Return the machine's UDP counters (/proc/net/snmp: InDatagrams, RcvbufErrors, ...)."""
    with open("/proc/net/snmp") as f:
        rows = [ln.split() for ln in f if ln.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


class Run:
    """The options and counters shared by every peer of one run."""

    def __init__(self, o: argparse.Namespace) -> None:
        """Build the payload's fixed tail and reset the counters."""
        self.o = o
        if o.size < SEQ.size:
            raise SystemExit(f"udpgen.py: --size must be at least {SEQ.size}")
        rnd = random.Random(915)
        self.fill = bytes(rnd.getrandbits(8) for _ in range(o.size - SEQ.size))
        self.head = HELLO.pack(o.size) if o.codec == "hello" else b""
        self.dlen = len(self.head) + o.size
        self.off = len(self.head)
        self.measuring = False
        self.stopping = False
        self.lat = array("q")
        self.count = self.lost = self.late = self.errors = self.bad = self.sent = 0
        self.loop = ""


class Peer(asyncio.DatagramProtocol):
    """One peer: a connected UDP socket with W requests in flight."""

    def __init__(self, run: Run) -> None:
        """No request in flight yet."""
        self.run = run
        self.out: dict[int, int] = {}  # seq -> send time (ns), oldest first
        self.seq = 0
        self.transport: Any = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        """Keep the transport."""
        self.transport = transport
        self.ready.set_result(self)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error (e.g. port unreachable): count it."""
        self.run.errors += 1

    def send(self, t: int = 0) -> None:
        """Send one request, stamped t (now by default)."""
        run = self.run
        self.seq += 1
        self.out[self.seq] = t or now_ns()
        if run.measuring:
            run.sent += 1
        self.transport.sendto(run.head + SEQ.pack(self.seq) + run.fill)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """An echo: check it, record its latency, send the next request."""
        run = self.run
        now = now_ns()
        if len(data) != run.dlen or not data.endswith(run.fill):
            run.bad += 1
            return
        (seq,) = SEQ.unpack_from(data, run.off)
        t0 = self.out.pop(seq, None)
        if t0 is None:
            if seq > self.seq:
                run.bad += 1
            else:
                run.late += 1
            return
        if run.measuring:
            run.count += 1
            run.lat.append(now - t0)
        if not run.stopping:
            self.send(now)

    def expire(self, cutoff: int) -> None:
        """Give up the requests sent before cutoff: count them lost, send new ones."""
        out = self.out
        run = self.run
        while out:
            seq, t = next(iter(out.items()))
            if t >= cutoff:
                break
            del out[seq]
            if run.measuring:
                run.lost += 1
            if not run.stopping:
                self.send()


async def mode_load(run: Run) -> dict[str, Any]:
    """P peers x W in flight, warm-up, then a timed window."""
    o = run.o
    loop = asyncio.get_running_loop()
    peers = []
    for _ in range(o.conns):
        _, p = await loop.create_datagram_endpoint(lambda: Peer(run), remote_addr=(o.host, o.port))
        peers.append(await p.ready)
    timeout_ns = int(o.timeout * 1e9)

    def sweep() -> None:
        """Expire the overdue requests of every peer, then again in --sweep seconds."""
        cutoff = now_ns() - timeout_ns
        for p in peers:
            p.expire(cutoff)
        if not run.stopping:
            loop.call_later(o.sweep, sweep)

    for p in peers:
        for _ in range(o.window):
            p.send()
    loop.call_later(o.sweep, sweep)
    await asyncio.sleep(o.warmup)
    run.lat = array("q")
    run.count = run.lost = run.late = run.sent = 0
    g = Gauges(o.server_pid)
    snmp0 = udp_snmp()
    run.measuring = True
    await asyncio.sleep(o.seconds)
    run.measuring = False
    res = g.end()
    snmp1 = udp_snmp()
    run.stopping = True
    count, lost = run.count, run.lost
    res.update(msgs=count, msgs_per_s=round(count / res["seconds"], 1),
               mb_per_s=round(count * o.size / res["seconds"] / 1e6, 2), sent=run.sent, lost=lost,
               late=run.late, bad=run.bad, loss_pct=round(100 * lost / (count + lost), 3) if count + lost else None,
               in_flight_end=sum(len(p.out) for p in peers),
               udp_rcvbuf_errors=snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0),
               udp_sndbuf_errors=snmp1.get("SndbufErrors", 0) - snmp0.get("SndbufErrors", 0), **lat_stats(run.lat))
    for p in peers:
        p.transport.close()
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--codec", choices=["raw", "hello"], default="raw", help="datagram contents (default raw)")
    ap.add_argument("--conns", type=int, default=1, help="peers (sockets), P")
    ap.add_argument("--window", type=int, default=1, help="requests in flight per peer, W")
    ap.add_argument("--size", type=int, default=915, help="payload bytes (default 915)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before the window")
    ap.add_argument("--timeout", type=float, default=0.2, help="seconds after which a request is lost (0.2)")
    ap.add_argument("--sweep", type=float, default=0.01, help="seconds between timeout checks (0.01)")
    ap.add_argument("--server-pid", type=int, default=0, help="read this process's CPU and memory from /proc")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    ap.add_argument("--label", default="", help="copied into the JSON line")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run one measurement and print its JSON line."""
    o = parse_args(argv)
    run = Run(o)
    res, loop = run_loop(mode_load(run), o.loop, run)
    rec = {"label": o.label, "mode": "load", "proto": "udp", "codec": o.codec, "conns": o.conns,
           "window": o.window, "size": o.size, "timeout_s": o.timeout, "loop": loop, "errors": run.errors, **res}
    rec["client_bound"] = rec["client_cpu_pct"] >= 90.0
    print(json.dumps(rec), flush=True)
    print(f"{o.label or 'udp'} P={o.conns} W={o.window}: {rec['msgs_per_s']:,.0f} msg/s p50={rec['lat_p50_us']}us "
          f"p99={rec['lat_p99_us']}us lost={rec['lost']} ({rec['loss_pct']}%) rcvbuf-drops={rec['udp_rcvbuf_errors']} late={rec['late']} bad={rec['bad']} "
          f"srv={rec.get('server_cpu_pct')}% cli={rec['client_cpu_pct']}% other={rec.get('other_cpu_cores')} "
          f"errors={run.errors}", file=sys.stderr, flush=True)
    if not rec["msgs"]:
        print("udpgen.py: no echo came back in the window", file=sys.stderr, flush=True)
        os._exit(3)
    os._exit(0)


if __name__ == "__main__":
    main()
