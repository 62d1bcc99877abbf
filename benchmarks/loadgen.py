#!/usr/bin/env python3
"""Closed-loop echo / call load generator for txgetty's benchmarks (asyncio, uvloop if installed).

A separate process from the server under test.  Protocols (--proto):
  frame  length-prefixed frames: a 4-byte length (``--byteorder big``, network order, or
         ``little``, getty's hello framing) followed by the payload
  ws     RFC 6455 WebSocket, hand-rolled: HTTP upgrade (GET --path), then one masked
         binary message per request (one random mask key per connection, the payload
         masked once: the server unmasks every frame, the client pays nothing per message)
  amp    Twisted AMP: calls of the command ``Echo`` (argument ``data``, as peers/tw_amp.py)
  rpc    txgetty's RPC frame: calls of --rpc-method (default Echo.echo) with one string
         argument, serialized with --serializer json|msgpack|raw (docs/rpc-protocol.md)
For frame and ws the server must echo every frame (message) back unchanged; for amp and rpc
every answer must name a call in flight and carry its argument back (loadgen_calls.py).

Modes (--mode):
  load      C connections (--conns), W requests outstanding on each (--window): every
            echo that comes back is answered at once by a new request (the k echoes of one
            read go out as one write).  --warmup seconds uncounted, then --seconds counted
            on the wall clock.  Reports msgs/s, MB/s (payload bytes one way), latency
            percentiles (request write -> the read that completes its echo, per message),
            client CPU (getrusage), and, given --server-pid, the server's CPU over the same
            window (utime+stime from /proc/PID/stat) and its peak RSS (VmHWM).
  idle      opens --conns connections, does ONE echo on each, then idles; reports the
            server's VmRSS before/after and (after - before) / conns.  Needs --server-pid.
            --hold S: then measures the server's CPU (and the noise figures) over S seconds
            of the connections held idle; --linger S: prints the JSON line and keeps the
            connections open S seconds more (e.g. for a profiler) before it exits.
  connrate  --parallel loops of connect -> 1 echo -> close for --seconds; reports
            connections/s and the connect+echo latency.

Machine-wide busy CPU (/proc/stat) is recorded over the window too: other_cpu_cores is
the CPU used by neither this client nor the server (another job spoils the figures); and
server_/client_runq_wait_pct, the share of the window each spent runnable but waiting for
its CPU (/proc/PID/schedstat), which shows another task on a pinned CPU.

Output: one JSON line on stdout, one human-readable line on stderr.

Derived from the team's peer benchmark harness (shared/bench/client.py: FrameConn,
WsConn, AmpConn), with a --byteorder option and txgetty's RPC frame.

Examples:
  python loadgen.py --port 9000 --byteorder little --conns 50 --window 32 --seconds 5 \\
      --server-pid 1234
  python loadgen.py --port 9001 --proto rpc --serializer msgpack --conns 50 --window 32
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import struct
import sys
import time
from array import array
from collections import deque
from typing import Any

from loadgen_calls import AmpConn, Conn, RpcConn, payload_text

now_ns = time.perf_counter_ns
CLK_TCK = os.sysconf("SC_CLK_TCK")
_ORDER = {"big": "!I", "little": "<I"}
_H = struct.Struct("!H")
_Q = struct.Struct("!Q")


# ----------------------------------------------------------------------------- /proc
def proc_cpu_s(pid: int) -> float:
    """Return utime+stime of a process in seconds (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_status_kb(pid: int, key: str) -> int | None:
    """Return a kB field (VmRSS, VmHWM, ...) of /proc/PID/status, or None."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def machine_busy_s() -> tuple[float, float, float]:
    """Return (busy, irq+softirq, steal) CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])  # user nice system idle iowait irq softirq steal
    return (total - v[3] - v[4]) / CLK_TCK, (v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK


def schedstat(pid: int | str) -> tuple[int, int]:
    """Return (ns run on a CPU, ns waited on a run queue) of a task (/proc/PID/schedstat).

    The wait is the time the task was runnable but another task had its CPU: on a
    pinned process it shows competition for that CPU precisely (0 when not available)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


def self_cpu_s() -> float:
    """Return this process's user+system CPU seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Gauges:
    """Snapshot of the CPU counters at the start of a window; end() returns the deltas."""

    def __init__(self, server_pid: int) -> None:
        """Read the counters now (the server's too if server_pid is not 0)."""
        self.pid = server_pid
        self.t = now_ns()
        self.cli = self_cpu_s()
        self.mach, self.irq, self.steal = machine_busy_s()
        self.srv = proc_cpu_s(server_pid) if server_pid else None
        self.sched_cli = schedstat("self")
        self.sched_srv = schedstat(server_pid) if server_pid else None

    def end(self) -> dict[str, Any]:
        """Return wall seconds, client/server CPU and the other CPU since the snapshot."""
        secs = (now_ns() - self.t) / 1e9
        cli = self_cpu_s() - self.cli
        mach, irq, steal = machine_busy_s()
        mach -= self.mach
        irq -= self.irq
        steal -= self.steal
        wait_cli = schedstat("self")[1] - self.sched_cli[1]
        out: dict[str, Any] = {
            "seconds": round(secs, 4), "client_cpu_s": round(cli, 3),
            "client_cpu_pct": round(100 * cli / secs, 1), "machine_busy_cores": round(mach / secs, 3),
            "machine_irq_cores": round(irq / secs, 3), "machine_steal_cores": round(steal / secs, 3),
            "client_runq_wait_pct": round(100 * wait_cli / 1e9 / secs, 2)}
        if self.pid:
            srv = proc_cpu_s(self.pid) - self.srv
            run_srv, wait_srv = schedstat(self.pid)
            out.update(server_runq_wait_pct=round(100 * (wait_srv - self.sched_srv[1]) / 1e9 / secs, 2),
                       server_exec_pct=round(100 * (run_srv - self.sched_srv[0]) / 1e9 / secs, 1))
            out.update(server_cpu_s=round(srv, 3), server_cpu_pct=round(100 * srv / secs, 1),
                       server_hwm_kb=proc_status_kb(self.pid, "VmHWM"),
                       server_rss_kb=proc_status_kb(self.pid, "VmRSS"))
            out["other_cpu_cores"] = round((mach - cli - srv) / secs, 3)
        return out


# ----------------------------------------------------------------------------- shared state
class Run:
    """The options and the counters shared by every connection of one run."""

    def __init__(self, o: argparse.Namespace) -> None:
        """Build the payload (deterministic pseudo-random bytes) and reset the counters."""
        self.o = o
        self.hdr = struct.Struct(_ORDER[o.byteorder])
        self.payload = bytes(random.Random(915).getrandbits(8) for _ in range(o.size))
        self.text = payload_text(self.payload)  # the value of the amp and rpc calls
        self.measuring = False
        self.stopping = False
        self.lat = array("q")  # nanoseconds, only while measuring
        self.count = 0  # echoes received while measuring
        self.errors = 0
        self.loop = ""

    def fail(self, msg: str) -> None:
        """Report a protocol error and exit at once (exit status 2)."""
        print(f"loadgen.py: {msg}", file=sys.stderr, flush=True)
        os._exit(2)


# ----------------------------------------------------------------------------- protocol
class FrameConn(Conn):
    """One connection speaking 4-byte length-prefixed frames.

    Every request is the same frame and an echo returns it byte for byte, so k replies in
    the buffer must equal resp*k: one comparison checks them all (a mismatch falls back to
    parsing frame by frame, to report it).  The k replies of one read are answered with
    one write of k requests; send timestamps are kept per write batch (FIFO)."""

    def __init__(self, run: Run) -> None:
        """Prepare the request frame; connection_made() fulfils self.ready."""
        super().__init__(run)
        self.ts: deque = deque()  # [send time, requests left in that batch]
        self.size = len(run.payload)
        self.req = run.hdr.pack(self.size) + run.payload
        self.resp = self.req
        self.cache: dict[int, bytes] = {}

    def send(self, n: int, t: int | None = None) -> None:
        """Write n requests in one write, stamped with t (now by default)."""
        self.ts.append([t or now_ns(), n])
        self.transport.write(self.req * n)

    def data_received(self, data: bytes) -> None:
        """Count the complete echoes in the buffer (fast path: one comparison)."""
        buf = self.buf
        buf += data
        rl = len(self.resp)
        k = len(buf) // rl
        if not k:
            return
        exp = self.cache.get(k)
        if exp is None:
            exp = self.cache[k] = self.resp * k
        if buf.startswith(exp):
            del buf[:k * rl]
            self.replies(k)
        else:
            self.slow_parse()

    def slow_parse(self) -> None:
        """Parse frame by frame and fail on a wrong length or content."""
        buf = self.buf
        n = len(buf)
        off = got = 0
        unpack = self.run.hdr.unpack_from
        while n - off >= 4:
            (ln,) = unpack(buf, off)
            if ln != self.size:
                self.run.fail(f"bad frame length {ln} (wrong --byteorder?)")
            end = off + 4 + ln
            if end > n:
                break
            if buf[off:end] != self.resp:
                self.run.fail("echo differs from the request")
            off = end
            got += 1
        del buf[:off]
        if got:
            self.replies(got)

    def replies(self, got: int) -> None:
        """Record the latency of got echoes and send as many new requests."""
        run = self.run
        now = now_ns()
        ts = self.ts
        measuring = run.measuring
        if measuring:
            run.count += got
            lat = run.lat
        rem = got
        while rem:
            b = ts[0]
            k = min(b[1], rem)
            if measuring:
                lat.extend([now - b[0]] * k)
            b[1] -= k
            rem -= k
            if not b[1]:
                ts.popleft()
        if self.one is not None:
            if not self.one.done():
                self.one.set_result(now)
            return
        if not run.stopping:
            self.send(got, now)


class WsConn(FrameConn):
    """Hand-rolled RFC 6455 client: upgrade handshake, then masked binary frames out and
    unmasked binary frames in (the server must not mask).  One random mask key per
    connection, the payload masked once, so every frame is a valid masked frame the server
    has to unmask.  Echo frames are checked with the same one-comparison fast path as
    'frame' (a server frame is 0x82, length, payload); anything else (ping, fragments,
    close) goes to a full parser.  (Ported from shared/bench/client.py.)"""

    def __init__(self, run: Run) -> None:
        """Prepare the masked request frame and the expected (unmasked) echo frame."""
        super().__init__(run)
        self.handshaken = False
        p = run.payload
        key = os.urandom(4)
        masked = bytes(b ^ key[i & 3] for i, b in enumerate(p))
        ln = len(p)
        if ln < 126:
            hdr = bytes([0x82, ln])
        elif ln < 65536:
            hdr = bytes([0x82, 126]) + _H.pack(ln)
        else:
            hdr = bytes([0x82, 127]) + _Q.pack(ln)
        self.resp = hdr + p
        self.req = bytes([hdr[0], hdr[1] | 0x80]) + hdr[2:] + key + masked

    def connection_made(self, transport: Any) -> None:
        """Send the upgrade request; ready is fulfilled by the 101 answer."""
        self.transport = transport
        k = base64.b64encode(os.urandom(16)).decode()
        o = self.run.o
        transport.write((f"GET {o.path} HTTP/1.1\r\nHost: {o.host}:{o.port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {k}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        """The upgrade answer first, then echo frames."""
        if self.handshaken:
            return FrameConn.data_received(self, data)
        buf = self.buf
        buf += data
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return
        head = bytes(buf[:i])
        if not head.startswith(b"HTTP/1.1 101"):
            self.run.fail(f"WS handshake refused: {head[:200]!r}")
        del buf[:i + 4]
        self.handshaken = True
        self.ready.set_result(self)
        if buf:
            self.slow_parse()

    def slow_parse(self) -> None:
        """Parse frame by frame: answer pings, fail on a close or a wrong size, count echoes."""
        buf = self.buf
        n = len(buf)
        off = got = 0
        while n - off >= 2:
            b0 = buf[off]
            ln = buf[off + 1]
            if ln & 0x80:
                self.run.fail("server frame is masked")
            ln &= 0x7F
            h = 2
            if ln == 126:
                if n - off < 4:
                    break
                (ln,) = _H.unpack_from(buf, off + 2)
                h = 4
            elif ln == 127:
                if n - off < 10:
                    break
                (ln,) = _Q.unpack_from(buf, off + 2)
                h = 10
            end = off + h + ln
            if end > n:
                break
            op = b0 & 0x0F
            if op == 0x9:  # ping -> pong (a client frame must be masked: zero key)
                body = bytes(buf[off + h:end])
                self.transport.write(bytes([0x8A, 0x80 | len(body)]) + b"\0\0\0\0" + body)
            elif op == 0x8:
                self.run.fail("server closed the WebSocket")
            elif b0 & 0x80 and op in (0x0, 0x2):  # FIN of a binary message
                if op == 0x2 and ln != self.size:
                    self.run.fail(f"WS echo of wrong size {ln}")
                got += 1
            off = end
        if off:
            del buf[:off]
        if got:
            self.replies(got)


PROTOS = {"frame": FrameConn, "ws": WsConn, "amp": AmpConn, "rpc": RpcConn}


async def connect(run: Run) -> FrameConn:
    """Open one connection to the server and wait until it is made (WS: upgraded)."""
    loop = asyncio.get_running_loop()
    _, p = await loop.create_connection(lambda: PROTOS[run.o.proto](run), run.o.host, run.o.port)
    return await p.ready


# ----------------------------------------------------------------------------- modes
def pct(sorted_ns: list[int], p: float) -> float | None:
    """Return the p-quantile of sorted nanoseconds, in microseconds."""
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, int(p * len(sorted_ns)))
    return round(sorted_ns[i] / 1e3, 1)


def lat_stats(lat: array) -> dict[str, float | None]:
    """Return latency percentiles, maximum and mean in microseconds."""
    s = sorted(lat)
    return {"lat_p50_us": pct(s, 0.50), "lat_p90_us": pct(s, 0.90), "lat_p99_us": pct(s, 0.99),
            "lat_p999_us": pct(s, 0.999), "lat_max_us": round(s[-1] / 1e3, 1) if s else None,
            "lat_mean_us": round(sum(s) / len(s) / 1e3, 1) if s else None}


async def measure(run: Run) -> dict[str, Any]:
    """After --warmup, count the echoes (or connections) and their latency over a --seconds
    window; return the Gauges' figures of the window."""
    o = run.o
    await asyncio.sleep(o.warmup)
    run.lat = array("q")
    run.count = 0
    g = Gauges(o.server_pid)
    run.measuring = True
    await asyncio.sleep(o.seconds)
    run.measuring = False
    return g.end()


async def mode_load(run: Run) -> dict[str, Any]:
    """Closed loop: C connections x W in flight, warm-up, then a timed window."""
    o = run.o
    conns = await asyncio.gather(*[connect(run) for _ in range(o.conns)])
    for c in conns:
        c.send(o.window)
    res = await measure(run)
    count = run.count
    run.stopping = True
    res.update(msgs=count, msgs_per_s=round(count / res["seconds"], 1),
               mb_per_s=round(count * o.size / res["seconds"] / 1e6, 2), **lat_stats(run.lat))
    return res


async def mode_idle(run: Run) -> dict[str, Any]:
    """Open N connections with one echo each; report the server's RSS growth per connection."""
    o = run.o
    if not o.server_pid:
        run.fail("--mode idle needs --server-pid")
    loop = asyncio.get_running_loop()
    # One warm-up connection first, so first-use allocations are not charged to the N.
    c = await connect(run)
    c.one = loop.create_future()
    c.send(1)
    await c.one
    await asyncio.sleep(o.settle)
    rss0 = proc_status_kb(o.server_pid, "VmRSS")
    t0 = now_ns()
    sem = asyncio.Semaphore(o.parallel)

    async def one() -> FrameConn:
        """Open one connection and do one echo on it."""
        async with sem:
            conn = await connect(run)
            conn.one = loop.create_future()
            conn.send(1)
            await conn.one
            return conn

    conns = await asyncio.gather(*[one() for _ in range(o.conns)])
    setup = (now_ns() - t0) / 1e9
    await asyncio.sleep(o.settle)
    rss1 = proc_status_kb(o.server_pid, "VmRSS")
    res = {"open": len(conns), "setup_s": round(setup, 3), "setup_conns_per_s": round(len(conns) / setup, 1),
           "server_rss_before_kb": rss0, "server_rss_after_kb": rss1,
           "server_fds": len(os.listdir(f"/proc/{o.server_pid}/fd")),
           "server_hwm_kb": proc_status_kb(o.server_pid, "VmHWM"),
           "kb_per_conn": round((rss1 - rss0) / len(conns), 3), "client_cpu_s": round(self_cpu_s(), 3)}
    if o.hold:
        g = Gauges(o.server_pid)
        await asyncio.sleep(o.hold)
        res.update(g.end())
        res["server_rss_kb"] = proc_status_kb(o.server_pid, "VmRSS")
    lost = sum(1 for c in conns if c.transport.is_closing())
    res["lost"] = lost  # connections the server closed while they idled
    if o.linger:
        print(json.dumps(record(o, run, res)), flush=True)
        res["printed"] = True
        await asyncio.sleep(o.linger)
    run.stopping = True
    return res


async def mode_connrate(run: Run) -> dict[str, Any]:
    """Parallel loops of connect -> one echo -> close (client closes first)."""
    o = run.o
    loop = asyncio.get_running_loop()

    async def slot() -> None:
        """Loop: connect, one echo, close."""
        while not run.stopping:
            t0 = now_ns()
            try:
                c = await connect(run)
                c.one = loop.create_future()
                c.send(1)
                await c.one
                c.closing = True
                c.transport.close()
            except OSError as e:
                run.errors += 1
                if run.errors < 5:
                    print(f"loadgen.py: {e!r}", file=sys.stderr)
                await asyncio.sleep(0.01)
                continue
            if run.measuring:
                run.lat.append(now_ns() - t0)
                run.count += 1

    tasks = [asyncio.ensure_future(slot()) for _ in range(o.parallel)]
    res = await measure(run)
    run.stopping = True
    res.update(conns_done=run.count, conns_per_s=round(run.count / res["seconds"], 1), **lat_stats(run.lat))
    for t in tasks:
        t.cancel()
    return res


def run_loop(coro: Any, want: str, run: Any = None) -> tuple[Any, str]:
    """Run coro on uvloop if wanted and installed, else on asyncio; return (result, loop name)
    (the name is also set as run.loop before it starts)."""
    if want == "uvloop":
        try:
            import uvloop
        except ImportError:
            print("loadgen.py: uvloop is not installed; using asyncio", file=sys.stderr)
        else:
            if run is not None:
                run.loop = "uvloop"
            return uvloop.run(coro), "uvloop"
    if run is not None:
        run.loop = "asyncio"
    return asyncio.run(coro), "asyncio"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--byteorder", choices=["big", "little"], default="big",
                    help="byte order of the 4-byte length (little = getty's hello framing)")
    ap.add_argument("--proto", choices=sorted(PROTOS), default="frame",
                    help="frame (4-byte length + payload), ws (WebSocket binary messages), amp (AMP Echo "
                         "command) or rpc (txgetty RPC calls)")
    ap.add_argument("--serializer", choices=["json", "msgpack", "raw"], default="json",
                    help="rpc: the body's serializer (default json)")
    ap.add_argument("--rpc-method", default="Echo.echo",
                    help="rpc: Service.method to call with the payload as its one argument (default Echo.echo)")
    ap.add_argument("--path", default="/", help="ws: the path of the upgrade request")
    ap.add_argument("--mode", choices=["load", "idle", "connrate"], default="load")
    ap.add_argument("--conns", type=int, default=1, help="connections (load, idle)")
    ap.add_argument("--window", type=int, default=1, help="requests in flight per connection (load)")
    ap.add_argument("--size", type=int, default=915, help="payload bytes (default 915, as getty's benchmark)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window (load, connrate)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before the window")
    ap.add_argument("--parallel", type=int, default=16, help="concurrent loops (connrate), connects in flight (idle)")
    ap.add_argument("--settle", type=float, default=1.0, help="idle: seconds to wait before reading RSS")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="idle: then measure the server's CPU over this many seconds of idle connections")
    ap.add_argument("--linger", type=float, default=0.0,
                    help="idle: print the JSON line, then keep the connections this many seconds more")
    ap.add_argument("--server-pid", type=int, default=0, help="read this process's CPU and memory from /proc")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="event loop (uvloop falls back to asyncio when it is not installed)")
    ap.add_argument("--label", default="", help="copied into the JSON line")
    return ap.parse_args(argv)


def record(o: argparse.Namespace, run: Run, res: dict[str, Any]) -> dict[str, Any]:
    """Return the JSON record of a run: the options and what was measured."""
    rec = {"label": o.label, "mode": o.mode, "proto": o.proto, "byteorder": o.byteorder,
           "serializer": o.serializer if o.proto == "rpc" else None, "conns": o.conns,
           "window": o.window, "size": o.size, "parallel": o.parallel if o.mode != "load" else None,
           "loop": run.loop, "errors": run.errors, **res}
    if "client_cpu_pct" in rec:
        rec["client_bound"] = rec["client_cpu_pct"] >= 90.0
    return rec


def main(argv: list[str] | None = None) -> None:
    """Run one measurement and print its JSON line."""
    o = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    run = Run(o)
    coro = {"load": mode_load, "idle": mode_idle, "connrate": mode_connrate}[o.mode](run)
    res, loop = run_loop(coro, o.loop, run)
    rec = record(o, run, res)
    if not res.pop("printed", False):
        print(json.dumps(rec), flush=True)
    name = o.label or o.proto
    if o.mode == "load":
        print(f"{name} C={o.conns} W={o.window}: {rec['msgs_per_s']:,.0f} msg/s "
              f"{rec['mb_per_s']} MB/s p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us "
              f"srv={rec.get('server_cpu_pct')}% cli={rec['client_cpu_pct']}% "
              f"other={rec.get('other_cpu_cores')} runq-wait srv={rec.get('server_runq_wait_pct')}% "
              f"cli={rec['client_runq_wait_pct']}% hwm={rec.get('server_hwm_kb')}kB errors={run.errors}",
              file=sys.stderr, flush=True)
        if not rec["msgs"]:
            print("loadgen.py: no echo (answer) came back in the window (server closed the connections? "
                  "wrong --byteorder or --proto?)", file=sys.stderr, flush=True)
            os._exit(3)
    elif o.mode == "connrate":
        print(f"{name} connrate x{o.parallel}: {rec['conns_per_s']:,.0f} conn/s "
              f"p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us srv={rec.get('server_cpu_pct')}% "
              f"cli={rec['client_cpu_pct']}% errors={run.errors}", file=sys.stderr, flush=True)
    else:
        print(f"{name} idle x{rec['open']}: {rec['kb_per_conn']} kB/conn "
              f"({rec['server_rss_before_kb']} -> {rec['server_rss_after_kb']} kB), set up in {rec['setup_s']} s"
              + (f", server CPU {rec['server_cpu_pct']}% over {o.hold:g} s idle" if o.hold else ""),
              file=sys.stderr, flush=True)
    os._exit(0)  # skip tearing down thousands of connections


if __name__ == "__main__":
    main()
