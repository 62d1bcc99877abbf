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
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from typing import Any

from benchlib import (
    HERE,
    Output,
    Server,
    Window,
    add_common_args,
    f0,
    f1,
    free_port,
    log,
    measured,
    med,
    meta_line,
    pinned,
    profile_table,
    pyspy_start,
    pyspy_top,
    read_jsonl,
    run_main,
    spawn,
    stop_proc,
    twistd_argv,
    txgetty_common_args,
)

#: peer -> protocol (frame, ws, udp)
PEERS = {"txgetty": "frame", "txgetty_pool": "frame", "tw_raw": "frame", "txgetty_ws": "ws", "tw_ws": "ws",
         "txgetty_udp": "udp", "tw_udp": "udp"}
BASES = {"frame": "tw_raw", "ws": "tw_ws", "udp": "tw_udp"}
LOADGENS = ("loadgen", "txgetty")
LG_NAMES = {"loadgen": "loadgen.py", "txgetty": "txgetty bench", "udpgen": "udpgen.py"}


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
    p = subprocess.run(argv, capture_output=True, text=True, timeout=opts.seconds + opts.warmup + 60)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"load generator rc={p.returncode}: {p.stderr.strip()[-600:]}")
    rec = json.loads(lines[-1])
    rec.update(cmd_client=shlex.join(argv), loadgen="udpgen" if proto == "udp" else "loadgen")
    return rec


def txgetty_bench_argv(opts: argparse.Namespace) -> list[str]:
    """Return the command that runs ``txgetty bench`` (the one beside the interpreter)."""
    exe = os.path.join(os.path.dirname(opts.python), "txgetty")
    if os.access(exe, os.X_OK):
        return [exe]
    return [opts.python, "-m", "txgetty.cli"]


def run_txgetty_bench(opts: argparse.Namespace, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Run ``txgetty bench --json`` against srv once; return its JSON record with the server's
    CPU and the noise figures, which this runner measures over the middle of the bench's window
    (from warm-up + 0.3 s to 0.3 s before its end; the server is in a steady state then)."""
    codec = "hello" if opts.byteorder == "little" else "length:4:big"
    argv = txgetty_bench_argv(opts) + [
        "bench", f"127.0.0.1:{srv.port}", "--codec", codec, "-c", str(conns), "-w", str(window),
        "-s", str(opts.size), "-d", str(opts.seconds), "--warmup", str(opts.warmup), "--json", "-q"]
    argv = pinned(argv, opts, opts.client_cpu)
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=opts.logdir, env=opts.env)
    try:
        time.sleep(opts.warmup + 0.3)
        if p.poll() is not None:
            raise RuntimeError(f"txgetty bench ended early, rc={p.returncode}: {p.stderr.read()[-600:]}")
        w = Window(srv.pid, p.pid)
        time.sleep(max(0.5, opts.seconds - 0.6))
        g = w.end()
        out, err = p.communicate(timeout=opts.seconds + 60)
    finally:
        stop_proc(p)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"txgetty bench rc={p.returncode}: {err.strip()[-600:]}")
    rec = json.loads(lines[-1])
    cli_pct = rec.get("client_cpu_pct")  # over the bench's own window
    rec.update({k: v for k, v in g.items() if k != "seconds"}, client_cpu_pct=cli_pct,
               server_window_s=g["seconds"], window_client_cpu_pct=g.get("client_cpu_pct"),
               conns=conns, label=srv.name, loadgen="txgetty", cmd_client=shlex.join(argv))
    return rec


def drive(opts: argparse.Namespace, lg: str, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Measure srv once with load generator lg (and py-spy with --profile); return the record."""
    prof = None
    if opts.profile:
        prof_path = os.path.join(opts.logdir, f"pyspy-{srv.name}-{conns}x{window}-{srv.pid}.txt")
        prof = pyspy_start(srv.pid, opts.seconds - 1, prof_path, opts, rate=opts.profile_rate, delay=opts.warmup + 0.5)
    try:
        rec = (run_txgetty_bench if lg == "txgetty" else run_loadgen)(opts, srv, conns, window)
    except RuntimeError:
        srv.check_alive()  # a server that died is the better explanation
        raise
    finally:
        if prof is not None:
            try:
                prof.wait(opts.seconds + 30)
            finally:
                stop_proc(prof)
    srv.check_alive()
    if prof is not None and os.path.exists(prof_path):
        rec["profile"] = pyspy_top(prof_path, opts.profile_top)
        rec["profile_file"] = prof_path
    rec["cmd_server"] = shlex.join(srv.argv)
    return rec


def run_matrix(opts: argparse.Namespace) -> None:
    """Run every repetition x configuration x server (x load generator), interleaved, then
    print the tables."""
    configs = [tuple(int(x) for x in c.lower().split("x")) for c in opts.configs.split(",")]
    peers = opts.peers.split(",")
    lgs = opts.loadgen.split(",")
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    for lg in lgs:
        if lg not in LOADGENS:
            sys.exit(f"unknown load generator {lg!r}; known: {', '.join(LOADGENS)}")
    if "txgetty" in lgs and any(PEERS[p] != "frame" for p in peers):
        sys.exit("--loadgen txgetty drives the frame peers only (txgetty, txgetty_pool, tw_raw)")
    out = Output(opts.out)
    try:
        code = out.meta(opts, byteorder=opts.byteorder, base=opts.base)
        log(f"results -> {opts.out}")
        # interleaved (rep -> config -> server, order alternating) so drift hits both alike
        for rep in range(opts.reps):
            for conns, window in configs:
                for name in (peers if rep % 2 == 0 else peers[::-1]):
                    meta = {"type": "load", "peer": name, "rep": rep, "conns": conns, "window": window,
                            "profiled": bool(opts.profile)}
                    order = lgs if rep % 2 == 0 else lgs[::-1]
                    # The pool's worker threads share the server's CPU: its main thread waits for
                    # them on the run queue by design, so only the client's wait counts as noise.
                    sides = ("client",) if name == "txgetty_pool" else ("server", "client")
                    if len(order) == 1:
                        def once(name: str = name, lg: str = order[0], c: int = conns, w: int = window) -> dict:
                            """A fresh server, one measurement."""
                            srv = start_server(name, opts)
                            try:
                                return drive(opts, lg, srv, c, w)
                            finally:
                                srv.stop()
                        recs = [measured(opts, name, once, log, out.write, meta, sides)]
                    else:  # the load generators one after the other against the same server
                        srv = start_server(name, opts)
                        try:
                            recs = [measured(opts, name, lambda lg=lg, s=srv, c=conns, w=window: drive(opts, lg, s, c, w),
                                             log, out.write, meta, sides) for lg in order]
                        finally:
                            srv.stop()
                    for rec in recs:
                        out.write(rec)
                        say(rep, name, rec)
        out.check_code(opts, code)
    finally:
        out.close()
    print()
    print(report([opts.out], opts.base))


def say(rep: int, name: str, rec: dict[str, Any]) -> None:
    """Log one run's figures."""
    c, w = rec["conns"], rec["window"]
    if "error" in rec:
        log(f"[{rep}] {name:12s} C={c:<3d} W={w:<3d} ERROR {rec['error']}")
        return
    lost = f" lost={rec['lost']}" if "lost" in rec else ""
    log(f"[{rep}] {name:12s} C={c:<3d} W={w:<3d} {LG_NAMES[rec.get('loadgen', 'loadgen')]:13s} "
        f"{rec['msgs_per_s']:>10,.0f} msg/s p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us{lost} "
        f"srv={rec['server_cpu_pct']}% cli={rec['client_cpu_pct']}% other={rec['other_cpu_cores']} "
        f"runq-wait srv={rec.get('server_runq_wait_pct')}% cli={rec.get('client_runq_wait_pct')}%")


# ----------------------------------------------------------------------------- report
def row_key(r: dict[str, Any]) -> str:
    """Return a record's row name: the peer, and the load generator if it is txgetty bench."""
    return r["peer"] + (" (txgetty bench)" if r.get("loadgen") == "txgetty" else "")


def us_per_msg(r: dict[str, Any]) -> float | None:
    """Return the server's CPU µs per message (its CPU share over the echo rate)."""
    if not r.get("msgs_per_s") or r.get("server_cpu_pct") is None:
        return None
    return 1e6 * r["server_cpu_pct"] / 100 / r["msgs_per_s"]


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
        n = max(len(v) for v in g.values())
        first = next(iter(g.values()))[0]
        udp = proto == "udp"
        what = {"frame": "TCP", "ws": "WebSocket", "udp": "UDP"}[proto]
        unit = "peers" if udp else "connections"
        out.append(f"\n#### {what} echo, {conns} x {window} ({unit} x in flight), {first['size']}-byte payloads "
                   f"(median of {n} runs of {first['seconds']:.0f} s)\n")
        extra = " loss % | lost/late per run | kernel rcvbuf drops per run |" if udp else ""
        vs_head = b or (bench_base if bench_rate else "-")
        out.append(f"| server | msg/s | min-max msg/s | vs {vs_head} | p50 µs | p99 µs |{extra} server CPU % "
                   "| server µs CPU/msg | client CPU % | server peak RSS MB | note |")
        out.append("|---|--:|--:|--:|--:|--:|" + ("--:|--:|--:|" if udp else "") + "--:|--:|--:|--:|---|")
        for row in sorted(g, key=lambda p: -med([r["msgs_per_s"] for r in g[p]])):
            rs = g[row]
            rate = [r["msgs_per_s"] for r in rs]
            m = med(rate)
            scpu = med([r.get("server_cpu_pct") for r in rs])
            ccpu = med([r.get("client_cpu_pct") for r in rs])
            note = []
            if ccpu is not None and ccpu >= 90:
                note.append("**client-bound**")
            if scpu is not None and scpu >= 90:
                note.append("server-bound")
            if not note:
                note.append("latency-bound")
            if any(r.get("noisy") for r in rs):  # kept after 4 noisy tries
                note.append("NOISY run kept")
            if any(r.get("profiled") for r in rs):
                note.append("profiled")
            vs = f"{m / base_rate:.2f}x" if base_rate else "-"
            if bench_rate and row.endswith("(txgetty bench)"):
                vs = f"{m / bench_rate:.2f}x ‡"
            cells = ""
            if udp:
                cells = (f" {med([r.get('loss_pct') for r in rs])} | "
                         f"{f0(med([r.get('lost') for r in rs]))}/{f0(med([r.get('late') for r in rs]))} | "
                         f"{f0(med([r.get('udp_rcvbuf_errors') for r in rs]))} |")
            out.append(f"| {row} | {f0(m)} | {f0(min(rate))}-{f0(max(rate))} | {vs} | "
                       f"{f0(med([r['lat_p50_us'] for r in rs]))} | {f0(med([r['lat_p99_us'] for r in rs]))} |"
                       f"{cells} {f0(scpu)} | {f1(med([us_per_msg(r) for r in rs]))} | {f0(ccpu)} | "
                       f"{f1((med([r.get('server_hwm_kb') for r in rs]) or 0) / 1024)} | {', '.join(note)} |")
        if bench_rate:
            out.append(f"\n‡ against {bench_base}: the same load generator.")
        for row in g:
            profs = [r for r in g[row] if r.get("profile")]
            if profs:
                out.append(profile_table(profs[-1]["profile"], f"{row}, {what} {conns}x{window}"))
    bad = [r for r in recs if r.get("type") == "load" and ("error" in r or r.get("discarded"))]
    if bad:
        out.append("\nRuns not counted:\n")
        for r in bad:
            d = r.get("discarded")
            why = r.get("error") or (d if isinstance(d, str) else f"other_cpu_cores={r.get('other_cpu_cores')}")
            why += "" if "error" in r else " (machine not quiet)"
            out.append(f"- {row_key(r)} {r.get('conns')}x{r.get('window')} rep {r.get('rep')}: {why}")
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
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before it (default 1)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; tables show medians (default 3)")
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
    if opts.report:
        print(report(opts.report, opts.base))
        return
    run_main(opts, run_matrix)


if __name__ == "__main__":
    main()
