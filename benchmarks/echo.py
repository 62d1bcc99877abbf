#!/usr/bin/env python3
"""Echo benchmark runner: txgetty's echo servers beside raw Twisted / autobahn peers, in one run.

For every repetition and configuration (C connections x W requests in flight), each server
is started as a fresh process, driven by a load generator (another process) for a warm-up
and a timed window, then stopped.  The servers (--peers):

  txgetty       the product as it runs: the venv's ``twistd -n --pidfile= txgetty --listen
                tcp:PORT:interface=127.0.0.1:backlog=4096`` (default codec: hello, getty's
                4-byte little-endian length + payload; the built-in echo listener)
  txgetty_pool  the same with ``--task-pool N`` (--pool, default 4): onMessage runs in an
                ordered thread pool, the replies are written from the reactor thread
  tw_raw        peers/tw_raw.py, a minimal hand-written Twisted framer, the same framing
  txgetty_ws    ``txgetty --listen ws://127.0.0.1:PORT/ --codec raw``: one packet per binary
                WebSocket message (autobahn under it)
  tw_ws         peers/tw_ws.py, a minimal raw autobahn echo server
  txgetty_udp   ``txgetty --listen udp:PORT:interface=127.0.0.1 --codec raw`` (--udp-codec):
                a session per peer address, one datagram = one packet
  tw_udp        peers/tw_udp.py, a raw Twisted DatagramProtocol echo

The load generator follows the peer's protocol: loadgen.py (asyncio/uvloop; frames, or
--proto ws for the WebSocket peers), udpgen.py for UDP (closed loop, lost datagrams time
out and are counted).  ``--loadgen txgetty`` drives the frame peers with ``txgetty bench
--json`` (the command beside the interpreter) instead of loadgen.py; ``--loadgen
loadgen,txgetty`` runs both against the same server process, one after the other.

By default the server is pinned to CPU 1 and the load generator to CPU 0 (taskset;
--no-pin to let the kernel place them).  Before each run the runner waits for a quiet
machine (< 0.15 cores busy, no other benchmark process); a run whose window saw more than
--max-other cores used by neither server nor client, or in which the server or the load
generator waited for its CPU more than --max-runq-wait % of the time (/proc/PID/schedstat),
is discarded and repeated (after --tries, default 4, it is kept and flagged).  One JSON
line per run goes to --out (JSONL); at the end the Markdown tables (medians over --reps)
are printed, one per protocol and configuration, with each row against the protocol's
raw peer (tw_raw, tw_ws, tw_udp; --base to choose).  --profile samples the server of every
run with py-spy and prints its top functions (the sampling slows the server a little).

  python benchmarks/echo.py                                   # 1x1,50x1,50x32, 5 s x 3 reps
  python benchmarks/echo.py --commit HEAD                     # a fixed commit, not the work tree
  python benchmarks/echo.py --peers txgetty,txgetty_pool --configs 50x32,50x1 --base txgetty
  python benchmarks/echo.py --peers txgetty_ws,tw_ws --configs 50x32,1x1
  python benchmarks/echo.py --peers txgetty_udp,tw_udp --configs 1x1,50x1,50x8
  python benchmarks/echo.py --peers txgetty --configs 50x32 --loadgen loadgen,txgetty
  python benchmarks/echo.py --report benchmarks/results/echo-*.jsonl
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys
from typing import Any

from benchlib import (
    HERE,
    Server,
    add_common_args,
    f0,
    free_port,
    main_or_report,
    med,
    meta_line,
    not_counted,
    pinned,
    profile_table,
    pyspy_top,
    read_jsonl,
    run_json,
    twistd_argv,
    txgetty_common_args,
)
from loadrun import (
    Row,
    add_load_args,
    by_rate,
    parse_matrix,
    row_key,
    run_matrix,
    run_txgetty_bench,
    runs_line,
)
from loadrun import drive as drive_once

#: peer -> protocol (frame, ws, udp)
PEERS = {"txgetty": "frame", "txgetty_pool": "frame", "tw_raw": "frame", "txgetty_ws": "ws", "tw_ws": "ws",
         "txgetty_udp": "udp", "tw_udp": "udp"}
BASES = {"frame": "tw_raw", "ws": "tw_ws", "udp": "tw_udp"}
LOADGENS = ("loadgen", "txgetty")


# ----------------------------------------------------------------------------- processes
def server_argv(name: str, port: int, opts: argparse.Namespace) -> list[str]:
    """Return the command line of one server."""
    proto = PEERS[name]
    if name.startswith("txgetty"):
        argv = twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty"] + txgetty_common_args(opts)
        if proto == "ws":
            argv += ["--listen", f"ws://127.0.0.1:{port}/", "--codec", "raw"]
        elif proto == "udp":
            argv += ["--listen", f"udp:{port}:interface=127.0.0.1", "--codec", opts.udp_codec]
        else:
            argv += ["--listen", f"tcp:{port}:interface=127.0.0.1:backlog=4096"]
            if opts.byteorder != "little":
                argv += ["--codec", "length:4:big"]
        if name == "txgetty_pool":
            argv += ["--task-pool", str(opts.pool)]
        return argv + shlex.split(opts.txgetty_args)
    argv = [opts.python, os.path.join(HERE, "peers", f"{name}.py"), "--port", str(port), "--host", "127.0.0.1"]
    return argv + (["--byteorder", opts.byteorder] if proto == "frame" else [])


def start_server(name: str, opts: argparse.Namespace) -> Server:
    """Start one server on a free port and wait until it answers."""
    udp = PEERS[name] == "udp"
    port = free_port(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    return Server(name, server_argv(name, port, opts), port, opts, probe="udp" if udp else "tcp")


def run_loadgen(opts: argparse.Namespace, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Run loadgen.py (frame or ws) or udpgen.py against srv once; return its JSON record."""
    proto = PEERS[srv.name]
    common = ["--port", str(srv.port), "--conns", str(conns), "--window", str(window), "--size", str(opts.size),
              "--seconds", str(opts.seconds), "--warmup", str(opts.warmup), "--loop", opts.loop,
              "--server-pid", str(srv.pid), "--label", srv.name]
    if proto == "udp":
        argv = [opts.python, os.path.join(HERE, "udpgen.py"), "--codec", opts.udp_codec,
                "--timeout", str(opts.udp_timeout)] + common
    else:
        argv = [opts.python, os.path.join(HERE, "loadgen.py"), "--mode", "load", "--proto", proto,
                "--byteorder", opts.byteorder] + common
    argv = pinned(argv, opts, opts.client_cpu)
    rec, _ = run_json(argv, opts.seconds + opts.warmup + 60, "load generator")
    rec.update(cmd_client=shlex.join(argv), loadgen="udpgen" if proto == "udp" else "loadgen")
    return rec


def drive(opts: argparse.Namespace, lg: str, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Measure srv once with load generator lg (and py-spy with --profile); return the record."""
    path = os.path.join(opts.logdir, f"pyspy-{srv.name}-{conns}x{window}-{srv.pid}.txt") if opts.profile else None
    codec = "hello" if opts.byteorder == "little" else "length:4:big"

    def measure() -> dict[str, Any]:
        """One run of the load generator."""
        if lg == "txgetty":
            return run_txgetty_bench(opts, srv, conns, window, ["--codec", codec])
        return run_loadgen(opts, srv, conns, window)

    return drive_once(opts, srv, measure, path, lambda p: pyspy_top(p, opts.profile_top))


def run_all(opts: argparse.Namespace) -> None:
    """Run every repetition x configuration x server (x load generator), interleaved, then
    print the tables."""
    configs, peers, lgs = parse_matrix(opts, PEERS, LOADGENS)
    if "txgetty" in lgs and any(PEERS[p] != "frame" for p in peers):
        sys.exit("--loadgen txgetty drives the frame peers only (txgetty, txgetty_pool, tw_raw)")

    def plan(name: str, rep: int) -> tuple[list[str], tuple[str, ...], bool]:
        """The load generators in their order; the sides whose run-queue wait counts as noise
        (the pool's worker threads share the server's CPU: its main thread waits for them on
        the run queue by design, so only the client's wait counts); profiled."""
        sides = ("client",) if name == "txgetty_pool" else ("server", "client")
        return (lgs if rep % 2 == 0 else lgs[::-1]), sides, bool(opts.profile)

    run_matrix(opts, configs, peers, plan, start_server, drive, {"byteorder": opts.byteorder, "base": opts.base},
               lambda files: report(files, opts.base), 12, "msg/s")


# ----------------------------------------------------------------------------- report
def report(files: list[str], base: str | None = None) -> str:
    """Return Markdown tables (one per protocol and configuration, medians over the runs) of JSONL files."""
    recs = read_jsonl(files)
    metas = [r for r in recs if r.get("type") == "meta"]
    bo = metas[-1].get("byteorder", "little") if metas else "little"
    base = base or (metas[-1].get("base") if metas else None)
    out = [meta_line(recs, f"; load generators: loadgen.py / udpgen.py on uvloop, txgetty bench on Twisted; "
                           f"TCP framing: 4-byte {bo}-endian length + payload")]
    ok = [r for r in recs if r.get("type") == "load" and "error" not in r and not r.get("discarded")]
    groups: dict[tuple[str, int, int], dict[str, list]] = {}
    for r in ok:
        groups.setdefault((PEERS.get(r["peer"], "frame"), r["conns"], r["window"]), {}).setdefault(
            row_key(r), []).append(r)
    for key in sorted(groups, key=lambda k: (k[0], k[1] * k[2], k[1])):
        proto, conns, window = key
        g = groups[key]
        b = base if base in g else BASES[proto] if BASES[proto] in g else None
        base_rate = med([r["msgs_per_s"] for r in g[b]]) if b else None
        bench_base = BASES[proto] + " (txgetty bench)"  # txgetty bench rows: against the raw peer under it
        bench_rate = med([r["msgs_per_s"] for r in g[bench_base]]) if bench_base in g and not base else None
        first = next(iter(g.values()))[0]
        udp = proto == "udp"
        what = {"frame": "TCP", "ws": "WebSocket", "udp": "UDP"}[proto]
        unit = "peers" if udp else "connections"
        out.append(f"\n#### {what} echo, {conns} x {window} ({unit} x in flight), {first['size']}-byte payloads "
                   f"{runs_line(g)}\n")
        extra = " loss % | lost/late per run | kernel rcvbuf drops per run |" if udp else ""
        vs_head = b or (bench_base if bench_rate else "-")
        out.append(f"| server | msg/s | min-max msg/s | vs {vs_head} | p50 µs | p99 µs |{extra} server CPU % "
                   "| server µs CPU/msg | client CPU % | server peak RSS MB | note |")
        out.append("|---|--:|--:|--:|--:|--:|" + ("--:|--:|--:|" if udp else "") + "--:|--:|--:|--:|---|")
        for row in by_rate(g):
            rs = g[row]
            st = Row(rs)
            vs = f"{st.rate / base_rate:.2f}x" if base_rate else "-"
            if bench_rate and row.endswith("(txgetty bench)"):
                vs = f"{st.rate / bench_rate:.2f}x ‡"
            cells = []
            if udp:
                cells = [f"{med([r.get('loss_pct') for r in rs])}",
                         f"{f0(med([r.get('lost') for r in rs]))}/{f0(med([r.get('late') for r in rs]))}",
                         f0(med([r.get("udp_rcvbuf_errors") for r in rs]))]
            out.append(st.line(row, vs, after_p99=cells))
        if bench_rate:
            out.append(f"\n‡ against {bench_base}: the same load generator.")
        for row in g:
            profs = [r for r in g[row] if r.get("profile")]
            if profs:
                out.append(profile_table(profs[-1]["profile"], f"{row}, {what} {conns}x{window}"))
    out += not_counted(recs, ("load",), lambda r: f"{row_key(r)} {r.get('conns')}x{r.get('window')}")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="1x1,50x1,50x32", help="CONNSxWINDOW,... (default 1x1,50x1,50x32)")
    ap.add_argument("--peers", default="txgetty,tw_raw", help=f"servers to run (default txgetty,tw_raw; "
                                                             f"known: {', '.join(PEERS)})")
    ap.add_argument("--loadgen", default="loadgen",
                    help="load generator(s) for the frame peers: loadgen (loadgen.py), txgetty (txgetty bench "
                         "--json), or loadgen,txgetty (both, against the same server process)")
    ap.add_argument("--base", help="row the 'vs' column compares with (default: the protocol's raw peer)")
    add_load_args(ap)
    ap.add_argument("--size", type=int, default=915, help="payload bytes (default 915, as getty's benchmark)")
    ap.add_argument("--byteorder", choices=["big", "little"], default="little",
                    help="TCP length header byte order (default little: getty's hello framing, "
                         "txgetty's default codec; big runs txgetty with --codec length:4:big)")
    ap.add_argument("--pool", type=int, default=4, help="txgetty_pool's --task-pool (default 4)")
    ap.add_argument("--udp-codec", choices=["raw", "hello"], default="raw", help="txgetty_udp's codec (raw)")
    ap.add_argument("--udp-timeout", type=float, default=0.2, help="udpgen.py: seconds before a request is lost")
    ap.add_argument("--txgetty-args", default="", help="more twistd txgetty options for the txgetty peers")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="loadgen's event loop")
    ap.add_argument("--profile", action="store_true",
                    help="sample each server with py-spy during its window and report its top functions")
    ap.add_argument("--profile-top", type=int, default=15, help="functions per py-spy table (default 15)")
    ap.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second (default 250)")
    add_common_args(ap, "echo")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report); stop every server process on the way out."""
    opts = parse_args(argv)
    main_or_report(opts, run_all, lambda files: report(files, opts.base))


if __name__ == "__main__":
    main()
