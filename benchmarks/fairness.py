#!/usr/bin/env python3
"""Fairness: a well-behaved client's latency beside four peers that stream tiny packets.

One echo server at a time (twistd txgetty, hello framing), for each value of
``--max-packets-per-turn`` (0 = no bound: the "before"), and the raw Twisted framer
(peers/tw_raw.py) for reference.  Per server, three measurements with loadgen.py:

  alone    the probe alone: 1 connection, 1 request in flight, 16-byte payloads;
  beside   the same probe while 4 flooders (one loadgen.py, nice 10) stream 1-byte
           packets with --flood-window requests in flight each (every read of echoes
           answered at once by as many new requests: a steady stream of tiny packets);
  single   one flooder alone: the server's throughput for a single session streaming
           tiny packets, which the bound costs a little.

Each server is a fresh process pinned to --server-cpu; the load generators share
--client-cpu (the flooders niced, so that the probe gets its CPU when it needs it).
The table gives the probe's p50 / p99 / max alone and beside the flooders, the
flooders' echoes/s, and the single session's echoes/s against the unbounded server.
The target (issue 12): p99 beside four flooders <= 20 ms.

  python benchmarks/fairness.py                           # 0,64,256,1024 + tw_raw, 5 s windows
  python benchmarks/fairness.py --turns 0,256 --no-raw --seconds 3 --max-wait 0   # a quick look
  python benchmarks/fairness.py --report benchmarks/results/fairness-*.jsonl
  python benchmarks/fairness.py --in-process                # the bound's own CPU cost, no sockets

--in-process measures the code's cost alone, without sockets or load generators: one
session on a string transport (EchoListener, hello framing) is fed 40 reads of 64 KiB of
5-byte packets (13,107 a read), each read followed by a turn of a fake clock that runs
the delivery's later turns, best of 5; it prints ns per packet for each --turns value.
It leaves out what a real reactor adds per turn (one more reactor iteration, one write
system call per turn instead of per read, a pause and a resume of the peer's reading per
read), which the socket measurements include.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import benchlib as B

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(HERE, "loadgen.py")
TW_RAW = os.path.join(HERE, "peers", "tw_raw.py")


def loadgen_argv(opts: argparse.Namespace, port: int, conns: int, window: int, size: int, seconds: float,
                 warmup: float, server_pid: int, label: str) -> list[str]:
    """Return the loadgen.py command of one measurement (frame protocol, hello byte order)."""
    return [opts.python, LOADGEN, "--port", str(port), "--proto", "frame", "--byteorder", "little",
            "--conns", str(conns), "--window", str(window), "--size", str(size), "--seconds", str(seconds),
            "--warmup", str(warmup), "--server-pid", str(server_pid), "--label", label]


def start_server(opts: argparse.Namespace, name: str, turn: int | None) -> B.Server:
    """Start txgetty with maxPacketsPerTurn = turn, or tw_raw when turn is None."""
    port = B.free_port()
    if turn is None:
        argv = [opts.python, TW_RAW, "--port", str(port), "--byteorder", "little"]
    else:
        argv = B.twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty"] + B.txgetty_common_args(opts) + [
            "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=4096", "--max-packets-per-turn", str(turn)]
    return B.Server(name, argv, port, opts)


def probe(opts: argparse.Namespace, server: B.Server, label: str) -> dict[str, Any]:
    """Run the probe (1 x 1) for --seconds; return its record."""
    argv = B.pinned(loadgen_argv(opts, server.port, 1, 1, 16, opts.seconds, 1.0, server.pid, label), opts,
                    opts.client_cpu)
    rec, _ = B.run_json(argv, opts.seconds + 60, label, env=opts.env)
    return rec


def beside(opts: argparse.Namespace, server: B.Server, label: str) -> dict[str, Any]:
    """Run the probe while four flooders stream; return the probe's record with the flooders' rate."""
    flood_s = opts.seconds + 4.0
    argv = B.pinned(["nice", "-n", "10"] + loadgen_argv(opts, server.port, opts.flooders, opts.flood_window, 1,
                                                        flood_s, 1.0, server.pid, label + " flooders"),
                    opts, opts.client_cpu)
    flood = B.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=opts.env)
    try:
        time.sleep(2.0)  # the flooders' warm-up, and their stream going
        if flood.poll() is not None:
            raise RuntimeError(f"the flooders ended early: {flood.stderr.read()[-400:]}")
        rec = probe(opts, server, label)
        out, err = flood.communicate(timeout=flood_s + 60)
    finally:
        B.stop_proc(flood)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if flood.returncode != 0 or not lines:
        raise RuntimeError(f"flooders rc={flood.returncode}: {err.strip()[-400:]}")
    flooders = json.loads(lines[-1])
    rec["flood_msgs_per_s"] = flooders.get("msgs_per_s")
    rec["flood_client_cpu_pct"] = flooders.get("client_cpu_pct")
    rec["flood_server_cpu_pct"] = flooders.get("server_cpu_pct")
    if rec.get("other_cpu_cores") is not None and flooders.get("client_cpu_pct") is not None:
        # The flooders are neither the server nor the probe, but part of the measurement.
        rec["other_cpu_cores"] = round(max(0.0, rec["other_cpu_cores"] - flooders["client_cpu_pct"] / 100), 3)
    return rec


def single(opts: argparse.Namespace, server: B.Server, label: str) -> dict[str, Any]:
    """One flooder alone for --seconds: a single session's throughput of tiny packets."""
    argv = B.pinned(loadgen_argv(opts, server.port, 1, opts.flood_window, 1, opts.seconds, 1.0, server.pid, label),
                    opts, opts.client_cpu)
    rec, _ = B.run_json(argv, opts.seconds + 60, label, env=opts.env)
    return rec


def body(opts: argparse.Namespace) -> None:
    """Measure every server of --turns (and tw_raw)."""
    servers: list[tuple[str, int | None]] = [(f"txgetty turn={t}", t) for t in opts.turns]
    if opts.raw:
        servers.append(("tw_raw", None))

    def run(out: B.Output) -> None:
        for name, turn in servers:
            for kind, fn in (("alone", probe), ("beside", beside), ("single", single)):
                def once(name: str = name, turn: int | None = turn, kind: str = kind, fn: Any = fn) -> dict[str, Any]:
                    server = start_server(opts, f"fairness-{name.replace(' ', '-').replace('=', '')}", turn)
                    try:
                        rec = fn(opts, server, f"{name} {kind}")
                        server.check_alive()
                    finally:
                        server.stop()
                    return rec

                B.log(f"== {name}: {kind}")
                rec = B.measured(opts, f"{name} {kind}", once, B.log, out.write,
                                 {"type": "fairness", "server": name, "turn": turn, "kind": kind}, sides=("server",))
                out.write(rec)
                if "error" not in rec:
                    B.log(f"   p50={rec.get('lat_p50_us')}us p99={rec.get('lat_p99_us')}us "
                          f"max={rec.get('lat_max_us')}us msgs/s={rec.get('msgs_per_s')}"
                          + (f" flooders={rec.get('flood_msgs_per_s')}/s" if kind == "beside" else ""))

    B.record_run(opts, {"turns": opts.turns, "flooders": opts.flooders, "flood_window": opts.flood_window,
                        "seconds": opts.seconds}, run, report)


def in_process(turns: list[int]) -> None:
    """Print the per-packet CPU cost of delivering 64 KiB reads of tiny packets, per turn value."""
    import struct

    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from txgetty import EchoListener, HelloCodec, SessionConfig
    from txgetty.testing import sessionOnStringTransport

    class Sink(StringTransport):
        """Counts what is written instead of keeping it."""

        written = 0

        def write(self, data: bytes) -> None:
            self.written += len(data)

    chunk = (struct.pack("<I", 1) + b"z") * (65536 // 5)
    packets = 40 * (len(chunk) // 5)
    base = None
    print("| maxPacketsPerTurn | ns per packet | vs 0 |")
    print("|---|---|---|")
    for turn in turns:
        clock = Clock()
        session, _ = sessionOnStringTransport(EchoListener(), HelloCodec(), clock=clock,
                                              config=SessionConfig(maxPacketsPerTurn=turn))
        session.transport.__class__ = Sink
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(40):
                session.dataReceived(chunk)
                clock.advance(0)
            best = min(best, time.perf_counter() - t0)
        ns = 1e9 * best / packets
        base = ns if turn == 0 and base is None else base
        print(f"| {turn} | {ns:.1f} | {f'{100 * (ns / base - 1):+.1f} %' if base else '-'} |", flush=True)


def ms(us: Any) -> str:
    """Format microseconds as milliseconds."""
    return "-" if us is None else f"{us / 1000:,.2f}"


def report(files: list[str]) -> str:
    """Return the Markdown table of fairness runs."""
    recs = [r for r in B.read_jsonl(files) if r.get("type") == "fairness" and "error" not in r
            and "discarded" not in r]
    by: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[str] = []
    for r in recs:
        by[(r["server"], r["kind"])] = r
        if r["server"] not in order:
            order.append(r["server"])
    base = by.get(("txgetty turn=0", "single"), {}).get("msgs_per_s")
    meta = next((r for r in reversed(B.read_jsonl(files)) if r.get("type") == "meta"), {})
    lines = [B.meta_line(B.read_jsonl(files), f"; probe: loadgen.py 1 x 1, 16-byte payloads; {meta.get('flooders')} "
                                              f"flooders: loadgen.py (nice 10) x {meta.get('flood_window')} in "
                                              f"flight, 1-byte payloads; {meta.get('seconds')} s windows"), "",
             "| server | alone p50 / p99 ms | beside 4 flooders p50 / p99 / max ms | flooders echoes/s "
             "| one flooder alone echoes/s | vs turn=0 | server µs CPU per echo (one flooder) | noisy |",
             "|---|---|---|---|---|---|---|---|"]
    for name in order:
        a, b, s = by.get((name, "alone"), {}), by.get((name, "beside"), {}), by.get((name, "single"), {})
        rate = s.get("msgs_per_s")
        vs = f"{100 * (rate / base - 1):+.1f} %" if rate and base and name.startswith("txgetty") else "-"
        noisy = ", ".join(k for k, r in (("alone", a), ("beside", b), ("single", s)) if r.get("noisy")) or ""
        cpu = s.get("server_cpu_pct")
        per = 1e4 * cpu / rate if cpu and rate else None
        lines.append(f"| {name} | {ms(a.get('lat_p50_us'))} / {ms(a.get('lat_p99_us'))} "
                     f"| {ms(b.get('lat_p50_us'))} / {ms(b.get('lat_p99_us'))} / {ms(b.get('lat_max_us'))} "
                     f"| {B.f0(b.get('flood_msgs_per_s'))} | {B.f0(rate)} | {vs} | {B.f2(per)} | {noisy} |")
    verdict = by.get(("txgetty turn=256", "beside"), {}).get("lat_p99_us")
    if verdict is not None:
        lines += ["", f"Target p99 <= 20 ms beside 4 flooders with the default (256): "
                      f"{ms(verdict)} ms, {'met' if verdict <= 20_000 else 'NOT met'}."]
    return "\n".join(lines)


def main() -> None:
    """Parse the options and run (or --report)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=lambda s: [int(x) for x in s.split(",")], default=[0, 64, 256, 1024],
                    help="maxPacketsPerTurn values to measure (0: no bound), comma separated")
    ap.add_argument("--no-raw", dest="raw", action="store_false", help="leave out the tw_raw reference")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each measured window")
    ap.add_argument("--flooders", type=int, default=4)
    ap.add_argument("--flood-window", type=int, default=8192, help="requests in flight per flooder")
    ap.add_argument("--in-process", action="store_true", help="only measure the bound's CPU cost in this process")
    B.add_common_args(ap, "fairness")
    opts = ap.parse_args()
    if opts.in_process:
        in_process(opts.turns)
        return
    B.main_or_report(opts, body, report)


if __name__ == "__main__":
    main()
