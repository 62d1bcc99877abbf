"""What the closed-loop load runners (echo.py, rpc.py) share.

* ``txgetty bench --json`` against a running server, with the server's CPU and the noise
  figures measured by the runner over the middle of the bench's window (run_txgetty_bench);
* one measurement of a server, with py-spy sampling it during the window if asked (drive);
* the interleaved repetitions x configurations x servers (x load generators), with a fresh
  server per measurement, or one server for every load generator in turn (run_matrix), and
  their progress lines (say);
* the report's figures of one table row: medians, range, server CPU per message and the
  bound note (Row), and the options both runners take (add_load_args).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchlib import (
    Output,
    Server,
    Window,
    f0,
    f1,
    log,
    measured,
    med,
    pinned,
    pyspy_start,
    record_run,
    spawn,
    stop_proc,
)

LG_NAMES = {"loadgen": "loadgen.py", "txgetty": "txgetty bench", "udpgen": "udpgen.py"}


# ----------------------------------------------------------------------------- measurements
def txgetty_cli(opts: argparse.Namespace) -> list[str]:
    """Return the command that runs the ``txgetty`` CLI: ``python -m txgetty`` with the
    runner's interpreter, so that a ``--commit`` snapshot ahead on PYTHONPATH is the txgetty
    it runs (the console script beside the interpreter imports the installed one's entry
    point)."""
    return [opts.python, "-m", "txgetty"]


def run_txgetty_bench(opts: argparse.Namespace, srv: Server, conns: int, window: int,
                      extra: list[str]) -> dict[str, Any]:
    """Run ``txgetty bench 127.0.0.1:PORT EXTRA... --json`` against srv once; return its JSON
    record with the server's CPU and the noise figures, which this runner measures over the
    middle of the bench's window (from warm-up + 0.3 s to 0.3 s before its end; the server is
    in a steady state then)."""
    argv = pinned(txgetty_cli(opts) + ["bench", f"127.0.0.1:{srv.port}"] + extra + [
        "-c", str(conns), "-w", str(window), "-s", str(opts.size), "-d", str(opts.seconds),
        "--warmup", str(opts.warmup), "--json", "-q"], opts, opts.client_cpu)
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


def drive(opts: argparse.Namespace, srv: Server, measure: Callable[[], dict[str, Any]], prof_path: str | None,
          analyse: Callable[[str], dict[str, Any]], **pyspy_kw: Any) -> dict[str, Any]:
    """Measure srv once with measure() and return the record; with a prof_path, py-spy samples
    the server during the window (from warm-up + 0.5 s, window - 1 s long) into it, and
    analyse(prof_path) is the record's profile."""
    prof = None
    if prof_path:
        prof = pyspy_start(srv.pid, opts.seconds - 1, prof_path, opts, rate=opts.profile_rate,
                           delay=opts.warmup + 0.5, **pyspy_kw)
    try:
        rec = measure()
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
        rec["profile"] = analyse(prof_path)
        rec["profile_file"] = prof_path
    rec["cmd_server"] = shlex.join(srv.argv)
    return rec


# ----------------------------------------------------------------------------- the matrix
def parse_matrix(opts: argparse.Namespace, known: Any, loadgens: tuple[str, ...]
                 ) -> tuple[list[tuple[int, ...]], list[str], list[str]]:
    """Return --configs (CONNSxWINDOW pairs), --peers and --loadgen; exit on an unknown name."""
    configs = [tuple(int(x) for x in c.lower().split("x")) for c in opts.configs.split(",")]
    peers = opts.peers.split(",")
    lgs = opts.loadgen.split(",")
    for p in peers:
        if p not in known:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(known)}")
    for lg in lgs:
        if lg not in loadgens:
            sys.exit(f"unknown load generator {lg!r}; known: {', '.join(loadgens)}")
    return configs, peers, lgs


#: (peer, repetition) -> (the load generators in their order, the noise-checked sides, profiled)
Plan = Callable[[str, int], tuple[list[str], tuple[str, ...], bool]]
#: (opts, load generator, server, conns, window) -> one measurement's record
Drive = Callable[[argparse.Namespace, str, Server, int, int], dict[str, Any]]


def run_matrix(opts: argparse.Namespace, configs: list[tuple[int, ...]], peers: list[str], plan: Plan,
               start_server: Callable[[str, argparse.Namespace], Server], drive: Drive, meta: dict[str, Any],
               report: Callable[[list[str]], str], width: int, unit: str) -> None:
    """Run every repetition x configuration x server (x load generator), interleaved, then
    print the tables.  With one load generator each measurement gets a fresh server; with
    several they take turns against the same server process."""

    def body(out: Output) -> None:
        """The measurements."""
        # interleaved (rep -> config -> server, order alternating) so drift hits every server alike
        for rep in range(opts.reps):
            for conns, window in configs:
                for name in (peers if rep % 2 == 0 else peers[::-1]):
                    order, sides, profiled = plan(name, rep)
                    rmeta = {"type": "load", "peer": name, "rep": rep, "conns": conns, "window": window,
                             "profiled": profiled}
                    if len(order) == 1:
                        def once(name: str = name, lg: str = order[0], c: int = conns, w: int = window) -> dict:
                            """A fresh server, one measurement."""
                            srv = start_server(name, opts)
                            try:
                                return drive(opts, lg, srv, c, w)
                            finally:
                                srv.stop()
                        recs = [measured(opts, name, once, log, out.write, rmeta, sides)]
                    else:  # the load generators one after the other against the same server
                        srv = start_server(name, opts)
                        try:
                            recs = [measured(opts, name, lambda lg=lg, s=srv, c=conns, w=window: drive(opts, lg, s, c, w),
                                             log, out.write, rmeta, sides) for lg in order]
                        finally:
                            srv.stop()
                    for rec in recs:
                        out.write(rec)
                        say(rep, name, rec, width, unit)

    record_run(opts, meta, body, report)


def say(rep: int, name: str, rec: dict[str, Any], width: int, unit: str) -> None:
    """Log one run's figures."""
    c, w = rec["conns"], rec["window"]
    if "error" in rec:
        log(f"[{rep}] {name:{width}s} C={c:<3d} W={w:<3d} ERROR {rec['error']}")
        return
    lost = f" lost={rec['lost']}" if "lost" in rec else ""
    log(f"[{rep}] {name:{width}s} C={c:<3d} W={w:<3d} {LG_NAMES[rec.get('loadgen', 'loadgen')]:13s} "
        f"{rec['msgs_per_s']:>10,.0f} {unit} p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us{lost} "
        f"srv={rec['server_cpu_pct']}% cli={rec['client_cpu_pct']}% other={rec['other_cpu_cores']} "
        f"runq-wait srv={rec.get('server_runq_wait_pct')}% cli={rec.get('client_runq_wait_pct')}%")


# ----------------------------------------------------------------------------- report
def row_key(r: dict[str, Any]) -> str:
    """Return a record's row name: the peer, and the load generator if it is txgetty bench."""
    return r["peer"] + (" (txgetty bench)" if r.get("loadgen") == "txgetty" else "")


def us_per_msg(r: dict[str, Any]) -> float | None:
    """Return the server's CPU µs per message or call (its CPU share over the rate)."""
    if not r.get("msgs_per_s") or r.get("server_cpu_pct") is None:
        return None
    return 1e6 * r["server_cpu_pct"] / 100 / r["msgs_per_s"]


def by_rate(g: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Return the rows of a table, fastest (median rate) first."""
    return sorted(g, key=lambda p: -med([r["msgs_per_s"] for r in g[p]]))


def runs_line(g: dict[str, list[dict[str, Any]]]) -> str:
    """Return a table title's '(median of N runs of S s)'."""
    return f"(median of {max(len(v) for v in g.values())} runs of {next(iter(g.values()))[0]['seconds']:.0f} s)"


class Row:
    """The figures of one table row, over its runs: the median rate and its range, latency,
    server and client CPU, server CPU µs per message, peak RSS, and the note (server-bound,
    client-bound or latency-bound; a noisy run kept; profiled)."""

    def __init__(self, rs: list[dict[str, Any]]) -> None:
        """Take the medians of the runs rs."""
        self.rs = rs
        self.rates = [r["msgs_per_s"] for r in rs]
        self.rate = med(self.rates)
        self.scpu = med([r.get("server_cpu_pct") for r in rs])
        self.ccpu = med([r.get("client_cpu_pct") for r in rs])
        self.us = med([us_per_msg(r) for r in rs])
        note = []
        if self.ccpu is not None and self.ccpu >= 90:
            note.append("**client-bound**")
        if self.scpu is not None and self.scpu >= 90:
            note.append("server-bound")
        if not note:
            note.append("latency-bound")
        if any(r.get("noisy") for r in rs):  # kept after 4 noisy tries
            note.append("NOISY run kept")
        if any(r.get("profiled") for r in rs):
            note.append("profiled")
        self.note = ", ".join(note)

    def line(self, name: str, vs: str, after_p99: Sequence[str] = (), after_us: Sequence[str] = ()) -> str:
        """Return the row: name, rate, range, vs, p50, p99, [after_p99], server CPU %, µs CPU
        per message, [after_us], client CPU %, peak RSS MB, note."""
        rs = self.rs
        cells = [name, f0(self.rate), f"{f0(min(self.rates))}-{f0(max(self.rates))}", vs,
                 f0(med([r["lat_p50_us"] for r in rs])), f0(med([r["lat_p99_us"] for r in rs])), *after_p99,
                 f0(self.scpu), f1(self.us), *after_us, f0(self.ccpu),
                 f1((med([r.get("server_hwm_kb") for r in rs]) or 0) / 1024), self.note]
        return "| " + " | ".join(cells) + " |"


def add_load_args(ap: argparse.ArgumentParser) -> None:
    """Add the window options (--seconds, --warmup, --reps)."""
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before it (default 1)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; tables show medians (default 3)")
