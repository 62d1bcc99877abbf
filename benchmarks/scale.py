#!/usr/bin/env python3
"""Scale: 10,000 idle TCP sessions with a 1 s cron, txgetty against a raw Twisted server.

For every repetition and server (interleaved), two measurements, each on a fresh server
process (pinned to --server-cpu, loadgen.py to --client-cpu):

  idle      loadgen.py --mode idle --conns N --hold H: N connections opened (--parallel
            connects in flight), one echo on each, --settle s, then the server's RSS
            (VmRSS after - before) / N and, over H seconds of the connections held idle,
            the server's CPU (utime+stime, /proc/PID/stat) as % of one core; also the time
            to set the N connections up.
  connrate  loadgen.py --mode connrate: --parallel loops of connect -> one echo -> close
            for --seconds; connections per second and the server's CPU per connection.

The servers (--peers):

  txgetty         ``twistd -n txgetty --listen tcp:PORT:interface=127.0.0.1:backlog=4096
                  --cron-period 1 --app cron_app:newSession``: hello echo whose onCron counts
                  the call (cron_app.py logs the count; the onCron calls/s while idle are
                  reported, to check every session's cron ran once per period)
  txgetty_cron60  the built-in echo with the default --cron-period (60 s): the idle cost of
                  the sessions without the 1 s cron
  tw_raw          peers/tw_raw.py (no timers at all)

--profile samples the txgetty server with py-spy for --profile-seconds while it holds the N
sessions idle (in the first repetition, after the measured window) and prints its top
functions.  Quiet-machine wait and noise checks as echo.py's (a noisy window is measured
again).

  python benchmarks/scale.py --commit HEAD                  # 10,000 sessions, 3 reps (~5 min)
  python benchmarks/scale.py --conns 2000 --reps 1 --peers txgetty,tw_raw
  python benchmarks/scale.py --report benchmarks/results/scale-*.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Any

from benchlib import (
    HERE,
    ROOT,
    Output,
    Server,
    add_common_args,
    f0,
    f1,
    f2,
    free_port,
    log,
    main_or_report,
    measured,
    med,
    meta_line,
    not_counted,
    pinned,
    profile_table,
    pyspy_start,
    pyspy_top,
    read_jsonl,
    record_run,
    run_json,
    server_env,
    spawn,
    stop_proc,
    twistd_argv,
    txgetty_common_args,
)

PEERS = ("txgetty", "txgetty_cron60", "tw_raw")
BASE = "tw_raw"
CPU_TARGET = 5.0  # % of one core, 10,000 idle sessions with a 1 s cron
KB_TARGET = 2.0  # KB per session above raw Twisted


def server(name: str, opts: argparse.Namespace) -> Server:
    """Start one server and wait until it accepts."""
    port = free_port()
    if name.startswith("txgetty"):
        argv = twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty"] + txgetty_common_args(opts) + [
            "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=4096"]
        base = os.path.join(opts.src or ROOT, "txgetty")
        tap = next(p for p in (os.path.join(base, "tools", "tap.py"), os.path.join(base, "tap.py"))
                   if os.path.exists(p))  # txgetty/tap.py before the tools/ layout
        with open(tap) as f:
            if '"max-sessions"' in f.read():
                # Its default cap (10,000 per listener) is the measured count: the warm-up
                # connection and the 10,000 need room.
                argv += ["--max-sessions", str(opts.conns + 100)]
        if name == "txgetty":
            app = ("cron_app:newSessionFreeze" if opts.gc_freeze else "cron_app:newSessionGC" if opts.gc_stats
                   else "cron_app:newSession")
            argv += ["--cron-period", str(opts.cron_period), "--app", app]
        return Server(name, argv, port, opts, env=server_env(opts, HERE))
    argv = [opts.python, os.path.join(HERE, "peers", "tw_raw.py"), "--port", str(port), "--host", "127.0.0.1",
            "--byteorder", "little"]
    return Server(name, argv, port, opts)


def loadgen_argv(opts: argparse.Namespace, srv: Server, mode: str, extra: list[str]) -> list[str]:
    """Return the loadgen.py command line for one measurement of srv."""
    return pinned([opts.python, os.path.join(HERE, "loadgen.py"), "--port", str(srv.port), "--byteorder", "little",
                   "--mode", mode, "--server-pid", str(srv.pid), "--label", srv.name] + extra, opts, opts.client_cpu)


def cron_rate(text: str, t0: float, t1: float) -> dict[str, Any]:
    """Return the onCron calls/s that cron_app.py logged between t0 and t1 (unix time), and
    with --gc-stats the garbage collector's runs and share of the time."""
    pat = r"cron_app: t=([\d.]+) calls=(\d+) sessions=(-?\d+)(?: gc_counts=([\d,]+) gc_ms=([\d.,]+))?"
    pts = [m for m in re.findall(pat, text) if t0 <= float(m[0]) <= t1]
    if len(pts) < 2:
        return {}
    a, b = pts[0], pts[-1]
    dt = float(b[0]) - float(a[0])
    out: dict[str, Any] = {"cron_calls_per_s": round((int(b[1]) - int(a[1])) / dt, 1), "cron_sessions": int(b[2])}
    if a[3] and b[3]:
        ca, cb = [list(map(int, x.split(","))) for x in (a[3], b[3])]
        ma, mb = [list(map(float, x.split(","))) for x in (a[4], b[4])]
        out.update(gc_runs_per_s=[round((y - x) / dt, 2) for x, y in zip(ca, cb)],
                   gc_ms_per_s=[round((y - x) / dt, 2) for x, y in zip(ma, mb)],
                   gc_cpu_pct=round(sum(mb) / 10 / dt - sum(ma) / 10 / dt, 2))
    return out


def idle_run(name: str, opts: argparse.Namespace, profile: bool) -> dict[str, Any]:
    """One idle measurement on a fresh server (and a py-spy profile after it if asked)."""
    srv = server(name, opts)
    try:
        linger = opts.profile_seconds + 3 if profile else 0
        argv = loadgen_argv(opts, srv, "idle", ["--conns", str(opts.conns), "--parallel", str(opts.parallel),
                                               "--settle", str(opts.settle), "--hold", str(opts.hold),
                                               "--linger", str(linger)])
        p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = ""
            deadline = time.time() + opts.hold + opts.settle * 2 + 120
            while not line.startswith("{"):
                line = p.stdout.readline()
                if not line and p.poll() is not None:
                    raise RuntimeError(f"loadgen rc={p.returncode}: {p.stderr.read().strip()[-600:]}")
                if time.time() > deadline:
                    raise RuntimeError("loadgen idle did not finish in time")
            t_end = time.time()
            rec = json.loads(line)
            if profile:  # the sessions are still held: sample the idle server
                path = os.path.join(opts.logdir, f"pyspy-scale-{name}-{srv.pid}.txt")
                prof = pyspy_start(srv.pid, opts.profile_seconds, path, opts, rate=opts.profile_rate, gil=True,
                                   lines=opts.profile_lines)
                try:
                    prof.wait(opts.profile_seconds + 30)
                finally:
                    stop_proc(prof)
                if os.path.exists(path):
                    rec["profile"] = dict(pyspy_top(path, opts.profile_top, lines=opts.profile_lines),
                                          kind="GIL-holding")
                    rec["profile_file"] = path
            p.wait(linger + 60)
        finally:
            stop_proc(p)
        srv.check_alive()
        if name == "txgetty":
            time.sleep(0.1)
            rec.update(cron_rate(srv.log_text(), t_end - opts.hold - 0.5, t_end + 0.5))
        rec.update(cmd_client=shlex.join(argv), cmd_server=shlex.join(srv.argv))
        return rec
    finally:
        srv.stop()


def connrate_run(name: str, opts: argparse.Namespace) -> dict[str, Any]:
    """One connection-rate measurement on a fresh server."""
    srv = server(name, opts)
    try:
        argv = loadgen_argv(opts, srv, "connrate", ["--parallel", "16", "--seconds", str(opts.seconds),
                                                   "--warmup", "1"])
        rec, _ = run_json(argv, opts.seconds + 60, "loadgen")
        srv.check_alive()
        rec.update(cmd_client=shlex.join(argv), cmd_server=shlex.join(srv.argv))
        return rec
    finally:
        srv.stop()


def run_all(opts: argparse.Namespace) -> None:
    """Every repetition x peer (order alternating): idle, then connrate; then the tables."""
    peers = opts.peers.split(",")
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    def body(out: Output) -> None:
        """The measurements."""
        for rep in range(opts.reps):
            for name in (peers if rep % 2 == 0 else peers[::-1]):
                prof = opts.profile and rep == 0 and name.startswith("txgetty")
                runs = [("idle", lambda n=name, pr=prof: idle_run(n, opts, pr), say_idle)]
                if opts.connrate:
                    runs.append(("connrate", lambda n=name: connrate_run(n, opts), say_connrate))
                for kind, run, say in runs:
                    rec = measured(opts, name, run, log, out.write, {"type": kind, "peer": name, "rep": rep})
                    out.write(rec)
                    if "error" in rec:
                        log(f"[{rep}] {name:15s} {kind} ERROR {rec['error']}")
                    else:
                        log(f"[{rep}] {name:15s} {kind} {say(rec)}")

    record_run(opts, {"conns": opts.conns, "hold": opts.hold, "cron_period": opts.cron_period,
                      "app": "newSessionFreeze" if opts.gc_freeze else "newSessionGC" if opts.gc_stats else "newSession"},
               body, report)


def say_idle(rec: dict[str, Any]) -> str:
    """Return the progress line of an idle run."""
    return (f"x{rec['open']}: cpu={rec['server_cpu_pct']}% over {rec['seconds']}s "
            f"{rec['kb_per_conn']} KB/conn ({rec['server_rss_before_kb']}->{rec['server_rss_after_kb']} kB) "
            f"setup={rec['setup_s']}s cron={rec.get('cron_calls_per_s')}/s lost={rec['lost']} "
            f"gc={rec.get('gc_cpu_pct')}% {rec.get('gc_runs_per_s')} runs/s "
            f"other={rec['other_cpu_cores']} runq-wait srv={rec['server_runq_wait_pct']}%")


def say_connrate(rec: dict[str, Any]) -> str:
    """Return the progress line of a connection-rate run."""
    return (f"{rec['conns_per_s']:,.0f} conn/s p50={rec['lat_p50_us']}us "
            f"srv={rec['server_cpu_pct']}% cli={rec['client_cpu_pct']}% errors={rec['errors']} "
            f"other={rec['other_cpu_cores']}")


def report(files: list[str]) -> str:
    """Return the Markdown tables (medians over the runs) and the target verdicts."""
    recs = read_jsonl(files)
    metas = [r for r in recs if r.get("type") == "meta"]
    m = metas[-1] if metas else {}
    out = [meta_line(recs, "; loadgen.py on uvloop; hello framing")]
    ok = [r for r in recs if r.get("type") in ("idle", "connrate") and "error" not in r and not r.get("discarded")]
    idle: dict[str, list] = {}
    rate: dict[str, list] = {}
    for r in ok:
        (idle if r["type"] == "idle" else rate).setdefault(r["peer"], []).append(r)
    n = m.get("conns", "?")
    if idle:
        reps = max(len(v) for v in idle.values())
        out.append(f"\n#### {n:,} idle sessions (median of {reps} runs; CPU over {m.get('hold', '?'):g} s held idle)\n")
        out.append("| server | server CPU % of one core | min-max CPU % | onCron calls/s | RSS before MB | "
                   "RSS after MB | KB per session | KB per session above tw_raw | setup s (rate conn/s) | note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        base_kb = med([r["kb_per_conn"] for r in idle.get(BASE, [])])
        for peer in [p for p in PEERS if p in idle]:
            rs = idle[peer]
            cpu = [r["server_cpu_pct"] for r in rs]
            kb = med([r["kb_per_conn"] for r in rs])
            above = f"{kb - base_kb:+.2f}" if base_kb is not None and peer != BASE else "-"
            note = ", ".join(x for x in ["NOISY run kept" if any(r.get("noisy") for r in rs) else "",
                                          f"{sum(r.get('lost', 0) for r in rs)} connections lost"
                                          if any(r.get("lost") for r in rs) else ""] if x)
            out.append(f"| {peer} | {f2(med(cpu))} | {f2(min(cpu))}-{f2(max(cpu))} | "
                       f"{f0(med([r.get('cron_calls_per_s') for r in rs]))} | "
                       f"{f1(med([r['server_rss_before_kb'] for r in rs]) / 1024)} | "
                       f"{f1(med([r['server_rss_after_kb'] for r in rs]) / 1024)} | {f2(kb)} | {above} | "
                       f"{f2(med([r['setup_s'] for r in rs]))} ({f0(med([r.get('setup_conns_per_s') for r in rs]))}) "
                       f"| {note} |")
        gcs = [r for r in idle.get("txgetty", []) if r.get("gc_cpu_pct") is not None]
        if gcs:
            out.append(f"\nGarbage collector in the txgetty server while idle (--gc-stats, median of {len(gcs)}): "
                       f"{med([r['gc_cpu_pct'] for r in gcs]):.2f} % of a core; collections per second by "
                       f"generation {[med([r['gc_runs_per_s'][g] for r in gcs]) for g in range(3)]}, ms per second "
                       f"{[med([r['gc_ms_per_s'][g] for r in gcs]) for g in range(3)]}.")
        tg = idle.get("txgetty")
        if tg:
            cpu = med([r["server_cpu_pct"] for r in tg])
            kb = med([r["kb_per_conn"] for r in tg])
            verdict = "MET" if cpu <= CPU_TARGET else f"MISSED by {cpu - CPU_TARGET:.2f} points ({cpu / CPU_TARGET:.2f}x)"
            out.append(f"\nTarget: server CPU ≤ {CPU_TARGET:g} % of a core at {n:,} idle sessions with a "
                       f"{m.get('cron_period', 1):g} s cron: txgetty {cpu:.2f} % -> **{verdict}**.")
            if base_kb is not None:
                d = kb - base_kb
                verdict = "MET" if d <= KB_TARGET else f"MISSED by {d - KB_TARGET:.2f} KB ({d / KB_TARGET:.2f}x)"
                out.append(f"Target: ≤ {KB_TARGET:g} KB per session above raw Twisted: txgetty {kb:.2f} KB vs "
                           f"tw_raw {base_kb:.2f} KB = {d:+.2f} KB -> **{verdict}**.")
    if rate:
        reps = max(len(v) for v in rate.values())
        out.append(f"\n#### Connection setup rate (16 concurrent connect -> 1 echo -> close loops, "
                   f"median of {reps} runs of {rate[next(iter(rate))][0]['seconds']:.0f} s)\n")
        out.append("| server | conn/s | min-max | vs tw_raw | p50 µs | p99 µs | server CPU % | server µs CPU/conn | "
                   "client CPU % | errors | note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        base = med([r["conns_per_s"] for r in rate.get(BASE, [])])
        for peer in [p for p in PEERS if p in rate]:
            rs = rate[peer]
            cps = [r["conns_per_s"] for r in rs]
            mc = med(cps)
            out.append(f"| {peer} | {f0(mc)} | {f0(min(cps))}-{f0(max(cps))} | "
                       f"{f'{mc / base:.2f}x' if base else '-'} | {f0(med([r['lat_p50_us'] for r in rs]))} | "
                       f"{f0(med([r['lat_p99_us'] for r in rs]))} | {f0(med([r['server_cpu_pct'] for r in rs]))} | "
                       f"{f1(med([1e6 * r['server_cpu_s'] / r['conns_done'] for r in rs if r.get('conns_done')]))} | "
                       f"{f0(med([r['client_cpu_pct'] for r in rs]))} | {sum(r['errors'] for r in rs)} | "
                       f"{'NOISY run kept' if any(r.get('noisy') for r in rs) else ''} |")
    for peer, rs in idle.items():
        profs = [r for r in rs if r.get("profile")]
        if profs:
            out.append(profile_table(profs[-1]["profile"], f"{peer} holding {n:,} idle sessions"))
    out += not_counted(recs, ("idle", "connrate"), lambda r: f"{r.get('peer')} {r['type']}")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=",".join(PEERS), help=f"servers (default {','.join(PEERS)})")
    ap.add_argument("--conns", type=int, default=10_000, help="idle connections (default 10,000)")
    ap.add_argument("--parallel", type=int, default=64, help="connects in flight while opening them (64)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before reading the RSS (default 2)")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds of idle CPU measured (default 10)")
    ap.add_argument("--cron-period", type=float, default=1.0, help="txgetty's --cron-period (default 1)")
    ap.add_argument("--seconds", type=float, default=5.0, help="connrate window (default 5)")
    ap.add_argument("--no-connrate", dest="connrate", action="store_false", help="skip the connection-rate runs")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="py-spy the txgetty servers holding the idle sessions")
    ap.add_argument("--profile-seconds", type=int, default=10)
    ap.add_argument("--profile-rate", type=int, default=1000, help="py-spy samples/s (default 1000: the server "
                                                                  "is mostly idle, only busy samples count)")
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--profile-lines", action="store_true", help="py-spy per line, not per function")
    ap.add_argument("--gc-stats", action="store_true",
                    help="txgetty: cron_app:newSessionGC, which also times the garbage collector (gc.callbacks)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="txgetty: cron_app:newSessionFreeze, as --gc-stats and gc.freeze() every 2 s (diagnostics)")
    add_common_args(ap, "scale")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report)."""
    main_or_report(parse_args(argv), run_all, report)


if __name__ == "__main__":
    main()
