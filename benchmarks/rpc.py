#!/usr/bin/env python3
"""RPC benchmark runner: txgetty's RPC server beside a Twisted AMP server, in one run.

For every repetition and configuration (C connections x W calls in flight on each), each
server is started as a fresh process, driven by loadgen.py (another process) for a warm-up
and a timed window, then stopped.  Every call sends one --size-character ASCII string
(no ``"`` or ``\\``) and gets it back.  The servers (--peers):

  txgetty_rpc_json     the product as it runs: the venv's ``twistd -n --pidfile= txgetty
                       --listen tcp:0:interface=127.0.0.1 --rpc-listen
                       tcp:0:interface=127.0.0.1:backlog=4096`` (the built-in services;
                       both listeners on ports the kernel picks, read from the log, so no
                       server ever takes the fixed 8090/8091), called with ``Echo.echo(text)``
                       by ``loadgen.py --proto rpc --serializer json``
  txgetty_rpc_msgpack  the same server, ``--serializer msgpack``
  txgetty_rpc_raw      the same server, ``--serializer raw`` (the body is the text's bytes,
                       not serialized; not in the default --peers)
  tw_amp               peers/tw_amp.py: AMP command ``Echo(data: amp.String)`` answered by
                       an ``@Echo.responder``, called by ``loadgen.py --proto amp``

``--loadgen loadgen,txgetty`` also measures txgetty_rpc_json with ``txgetty bench --rpc
--json`` (the command beside the interpreter) against the same server process, one after
the other.  Before it is measured, every txgetty server is asked ``txgetty call
127.0.0.1:PORT Echo.echo '"probe"'`` once and must print ``"probe"``.

Pinning, the quiet-machine wait, the noise checks, --commit snapshots and the JSONL output
are benchlib's, as for echo.py.  At the end the Markdown tables (medians over --reps), one
per configuration, with every row against tw_amp, and the verdict on the target (--target,
default 4: txgetty RPC >= 4x AMP's calls/s at 50x32).  --profile samples the txgetty
servers with py-spy during their windows and prints their top costs in µs CPU per call
(the share of the reactor thread's samples x the server's CPU per call in that run; the RPC
server's idle task-pool threads, which py-spy counts as busy, are left out).

  python benchmarks/rpc.py --commit HEAD                        # 50x32,50x1,1x1, 5 s x 3 reps
  python benchmarks/rpc.py --commit HEAD --configs 50x32 --reps 1 --loadgen loadgen,txgetty
  python benchmarks/rpc.py --commit HEAD --peers txgetty_rpc_json,txgetty_rpc_msgpack --configs 50x32 \\
      --reps 1 --seconds 8 --profile
  python benchmarks/rpc.py --report benchmarks/results/rpc-*.jsonl
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
    Output,
    Server,
    Window,
    add_common_args,
    f0,
    f1,
    f2,
    free_port,
    log,
    measured,
    med,
    meta_line,
    pinned,
    pyspy_start,
    pyspy_top,
    read_jsonl,
    run_main,
    spawn,
    stop_proc,
    twistd_argv,
)
from loadgen_calls import _H, RpcTemplate, amp_tail, payload_text

#: peer -> (loadgen.py --proto, --serializer)
PEERS = {"txgetty_rpc_json": ("rpc", "json"), "txgetty_rpc_msgpack": ("rpc", "msgpack"),
         "txgetty_rpc_raw": ("rpc", "raw"), "tw_amp": ("amp", None)}
BASE = "tw_amp"
LOADGENS = ("loadgen", "txgetty")
_RPC_PORT = re.compile(r"txgetty rpc: listening on tcp:127\.0\.0\.1:(\d+)")


# ----------------------------------------------------------------------------- processes
def txgetty_cmd(opts: argparse.Namespace) -> list[str]:
    """Return the command that runs the ``txgetty`` CLI (the one beside the interpreter)."""
    exe = os.path.join(os.path.dirname(opts.python), "txgetty")
    return [exe] if os.access(exe, os.X_OK) else [opts.python, "-m", "txgetty.cli"]


def server_argv(name: str, port: int, opts: argparse.Namespace) -> list[str]:
    """Return the command line of one server (txgetty's listen on ports the kernel picks)."""
    if name.startswith("txgetty"):
        return twistd_argv(opts.python) + [
            "-n", "--pidfile=", "txgetty", "--listen", "tcp:0:interface=127.0.0.1",
            "--rpc-listen", "tcp:0:interface=127.0.0.1:backlog=4096"] + shlex.split(opts.txgetty_args)
    return [opts.python, os.path.join(HERE, "peers", f"{name}.py"), "--port", str(port), "--host", "127.0.0.1"]


def start_server(name: str, opts: argparse.Namespace) -> Server:
    """Start one server and wait until it answers: tw_amp on a free port; txgetty on the RPC
    port its log names, checked with one ``txgetty call Echo.echo``."""
    if not name.startswith("txgetty"):
        port = free_port()
        return Server(name, server_argv(name, port, opts), port, opts)
    srv = Server(name, server_argv(name, 0, opts), 0, opts, probe="none")
    try:
        deadline = time.time() + 30
        while True:
            m = _RPC_PORT.search(srv.log_text())
            if m:
                srv.port = int(m.group(1))
                break
            srv.check_alive()
            if time.time() > deadline:
                raise RuntimeError(f"{name}: no 'txgetty rpc: listening on' line within 30 s (log: {srv.log.name})")
            time.sleep(0.05)
        srv.call_check = call_check(opts, srv.port)
    except BaseException:
        srv.stop()
        raise
    return srv


def call_check(opts: argparse.Namespace, port: int) -> str:
    """Call Echo.echo("probe") with ``txgetty call``; return its command line, or raise RuntimeError."""
    argv = pinned(txgetty_cmd(opts) + ["call", f"127.0.0.1:{port}", "Echo.echo", '"probe"', "--timeout", "10"],
                  opts, opts.client_cpu)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=opts.logdir, env=opts.env, check=False)
    if p.returncode != 0 or p.stdout.strip() != '"probe"':
        raise RuntimeError(f"txgetty call Echo.echo failed (rc={p.returncode}): {p.stdout.strip()[:200]} "
                           f"{p.stderr.strip()[-400:]}")
    return shlex.join(argv)


def run_loadgen(opts: argparse.Namespace, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Run loadgen.py (--proto rpc or amp) against srv once; return its JSON record."""
    proto, ser = PEERS[srv.name]
    argv = [opts.python, os.path.join(HERE, "loadgen.py"), "--mode", "load", "--proto", proto,
            "--port", str(srv.port), "--conns", str(conns), "--window", str(window), "--size", str(opts.size),
            "--seconds", str(opts.seconds), "--warmup", str(opts.warmup), "--loop", opts.loop,
            "--server-pid", str(srv.pid), "--label", srv.name]
    if ser:
        argv += ["--serializer", ser]
    argv = pinned(argv, opts, opts.client_cpu)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=opts.seconds + opts.warmup + 60, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen.py rc={p.returncode}: {p.stderr.strip()[-600:]}")
    rec = json.loads(lines[-1])
    if rec.get("errors"):
        raise RuntimeError(f"loadgen.py: {rec['errors']} connection(s) lost during the run: {p.stderr.strip()[-300:]}")
    rec.update(cmd_client=shlex.join(argv), loadgen="loadgen")
    return rec


def run_txgetty_bench(opts: argparse.Namespace, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Run ``txgetty bench --rpc --json`` against srv once; return its record with the server's
    CPU and the noise figures, measured by this runner over the middle of the bench's window
    (from warm-up + 0.3 s to 0.3 s before its end), as echo.py does."""
    argv = pinned(txgetty_cmd(opts) + [
        "bench", f"127.0.0.1:{srv.port}", "--rpc", "-c", str(conns), "-w", str(window), "-s", str(opts.size),
        "-d", str(opts.seconds), "--warmup", str(opts.warmup), "--json", "-q"], opts, opts.client_cpu)
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
    if opts.profile and srv.name.startswith("txgetty"):
        prof_path = os.path.join(opts.logdir, f"pyspy-{srv.name}-{conns}x{window}-{srv.pid}-{lg}.txt")
        prof = pyspy_start(srv.pid, opts.seconds - 1, prof_path, opts, rate=opts.profile_rate,
                           delay=opts.warmup + 0.5, lines=opts.profile_lines, nonblocking=opts.profile_nonblocking)
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
        main_path, others = main_thread_stacks(prof_path)
        rec["profile"] = pyspy_top(main_path, opts.profile_top, lines=opts.profile_lines)
        rec["profile"].update(kind="non-idle reactor-thread", other_threads=others)
        rec["profile_file"] = prof_path
    rec["cmd_server"] = shlex.join(srv.argv)
    if getattr(srv, "call_check", None):
        rec["cmd_call_check"] = srv.call_check
    return rec


def main_thread_stacks(path: str) -> tuple[str, int]:
    """Write the stacks of a py-spy raw file that are not of threading's threads (the RPC
    server's idle task-pool workers, which py-spy counts as busy: they wait in a C call,
    SimpleQueue.get) to PATH-main.txt; return it and the samples left out."""
    out_path = path[:-4] + "-main.txt"
    others = 0
    with open(path) as f, open(out_path, "w") as out:
        for line in f:
            if "Thread._bootstrap (threading.py" in line.split(";", 1)[0]:
                others += int(line.rsplit(" ", 1)[1])
            else:
                out.write(line)
    return out_path, others


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
    if opts.profile:  # py-spy's own CPU (about 0.15 cores, on the client's CPU) is no disturbance
        opts.max_other += 0.25
        opts.max_runq_wait = max(opts.max_runq_wait, 10.0)
        log(f"profiling: noise limits raised to {opts.max_other:g} other cores, {opts.max_runq_wait:g} % run-queue wait")
    out = Output(opts.out)
    try:
        code = out.meta(opts, target=opts.target, size=opts.size, wire=wire_sizes(opts.size))
        log(f"results -> {opts.out}")
        for rep in range(opts.reps):  # interleaved, order alternating, so drift hits every server alike
            for conns, window in configs:
                for name in (peers if rep % 2 == 0 else peers[::-1]):
                    meta = {"type": "load", "peer": name, "rep": rep, "conns": conns, "window": window,
                            "profiled": bool(opts.profile and name.startswith("txgetty"))}
                    # txgetty bench speaks JSON RPC only: the other servers get loadgen.py alone
                    order = [lg for lg in lgs if lg == "loadgen" or name == "txgetty_rpc_json"]
                    order = order if rep % 2 == 0 else order[::-1]
                    if len(order) == 1:
                        def once(name: str = name, lg: str = order[0], c: int = conns, w: int = window) -> dict:
                            """A fresh server, one measurement."""
                            srv = start_server(name, opts)
                            try:
                                return drive(opts, lg, srv, c, w)
                            finally:
                                srv.stop()
                        recs = [measured(opts, name, once, log, out.write, meta)]
                    else:  # the load generators one after the other against the same server
                        srv = start_server(name, opts)
                        try:
                            recs = [measured(opts, name, lambda lg=lg, s=srv, c=conns, w=window: drive(opts, lg, s, c, w),
                                             log, out.write, meta) for lg in order]
                        finally:
                            srv.stop()
                    for rec in recs:
                        out.write(rec)
                        say(rep, name, rec)
        out.check_code(opts, code)
    finally:
        out.close()
    print()
    print(report([opts.out]))


def say(rep: int, name: str, rec: dict[str, Any]) -> None:
    """Log one run's figures."""
    c, w = rec["conns"], rec["window"]
    if "error" in rec:
        log(f"[{rep}] {name:19s} C={c:<3d} W={w:<3d} ERROR {rec['error']}")
        return
    lg = "txgetty bench" if rec.get("loadgen") == "txgetty" else "loadgen.py"
    log(f"[{rep}] {name:19s} C={c:<3d} W={w:<3d} {lg:13s} {rec['msgs_per_s']:>10,.0f} calls/s "
        f"p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us srv={rec['server_cpu_pct']}% "
        f"cli={rec['client_cpu_pct']}% other={rec['other_cpu_cores']} "
        f"runq-wait srv={rec.get('server_runq_wait_pct')}% cli={rec.get('client_runq_wait_pct')}%")


# ----------------------------------------------------------------------------- report
def wire_sizes(size: int) -> dict[str, Any]:
    """Return the bytes one call puts on the wire, per protocol (request, response, bodies)."""
    text = payload_text(bytes(size))
    out: dict[str, Any] = {}
    for ser in ("json", "msgpack", "raw"):
        try:
            t = RpcTemplate(argparse.Namespace(rpc_method="Echo.echo", serializer=ser), text)
        except SystemExit:  # msgpack not installed here
            continue
        out[f"rpc_{ser}"] = {"request": t.req_len, "request_body": t.req_body_len,
                             "response": t.resp_len, "response_body": len(t.result)}
    seq = b"12345"  # a 5-digit call number
    data = text.encode()
    answer = b"\x00\x07_answer" + _H.pack(len(seq)) + seq + b"\x00\x04data" + _H.pack(size) + data + b"\x00\x00"
    out["amp"] = {"request": len(b"\x00\x04_ask" + _H.pack(len(seq)) + seq + amp_tail(data)),
                  "response": len(answer), "data": size, "note": "with a 5-digit _ask/_answer number"}
    return out


def us_per_call(r: dict[str, Any]) -> float | None:
    """Return the server's CPU µs per call (its CPU share over the call rate)."""
    if not r.get("msgs_per_s") or r.get("server_cpu_pct") is None:
        return None
    return 1e6 * r["server_cpu_pct"] / 100 / r["msgs_per_s"]


def row_key(r: dict[str, Any]) -> str:
    """Return a record's row name: the peer, and the load generator if it is txgetty bench."""
    return r["peer"] + (" (txgetty bench)" if r.get("loadgen") == "txgetty" else "")


def payload_line(wire: dict[str, Any], size: int) -> str:
    """Return the sentence saying what one call carries."""
    parts = []
    for ser in ("json", "msgpack", "raw"):
        w = wire.get(f"rpc_{ser}")
        if w:
            parts.append(f"RPC {ser}: request frame {w['request']} B (body {w['request_body']} B), "
                         f"response {w['response']} B (body {w['response_body']} B)")
    a = wire.get("amp", {})
    parts.append(f"AMP: request box {a.get('request')} B, answer box {a.get('response')} B ({a.get('note')})")
    return (f"Every call carries one {size}-character ASCII string (no `\"` or `\\`, so JSON needs no escapes; "
            f"for AMP its {size} bytes as the `data` amp.String) and gets it back: " + "; ".join(parts) + ".")


def profile_per_call(prof: dict[str, Any], us: float, title: str) -> str:
    """Return a Markdown table of a pyspy_top() result in µs CPU per call (each share x the
    server's CPU per call measured in the same run)."""
    left = f", {prof['other_threads']:,} samples of the idle task-pool threads left out" \
        if prof.get("other_threads") else ""
    out = [(f"\n##### py-spy: {title} ({prof['samples']:,} {prof.get('kind', 'non-idle')} samples{left}; "
            f"{us:.2f} µs CPU per call)\n")]
    if prof.get("packages"):
        out.append("Self time by package: " + ", ".join(f"{k} {v} % ({us * v / 100:.2f} µs)"
                                                        for k, v in prof["packages"][:8]) + "\n")
    out += ["| self % | µs/call | function (self) | | incl. % | µs/call | function (inclusive, below the event loop) |",
            "|--:|--:|---|---|--:|--:|---|"]
    for a, b in zip(prof["self"], prof["inclusive"]):
        out.append(f"| {a[1]} | {us * a[1] / 100:.2f} | `{a[0]}` | | {b[1]} | {us * b[1] / 100:.2f} | `{b[0]}` |")
    return "\n".join(out)


def report(files: list[str]) -> str:
    """Return the Markdown tables (one per configuration, medians over the runs) and the verdict."""
    recs = read_jsonl(files)
    metas = [r for r in recs if r.get("type") == "meta"]
    target = (metas[-1].get("target") if metas else None) or 4.0
    out = [meta_line(recs, "; load generator: loadgen.py on uvloop (txgetty bench on Twisted where named)")]
    if metas and metas[-1].get("wire"):
        out.append("\n" + payload_line(metas[-1]["wire"], metas[-1].get("size", 915)))
    ok = [r for r in recs if r.get("type") == "load" and "error" not in r and not r.get("discarded")]
    groups: dict[tuple[int, int], dict[str, list]] = {}
    for r in ok:
        groups.setdefault((r["conns"], r["window"]), {}).setdefault(row_key(r), []).append(r)
    verdicts = []
    for conns, window in sorted(groups, key=lambda k: (-k[0] * k[1], -k[0])):
        g = groups[(conns, window)]
        base_rate = med([r["msgs_per_s"] for r in g[BASE]]) if BASE in g else None
        base_us = med([us_per_call(r) for r in g[BASE]]) if BASE in g else None
        n = max(len(v) for v in g.values())
        first = next(iter(g.values()))[0]
        out.append(f"\n#### RPC calls, {conns} x {window} (connections x calls in flight), {first['size']}-character "
                   f"string (median of {n} runs of {first['seconds']:.0f} s)\n")
        out.append("| server | calls/s | min-max calls/s | vs tw_amp | p50 µs | p99 µs | server CPU % "
                   "| server µs CPU/call | CPU/call vs tw_amp | client CPU % | server peak RSS MB | note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for row in sorted(g, key=lambda p: -med([r["msgs_per_s"] for r in g[p]])):
            rs = g[row]
            rate = [r["msgs_per_s"] for r in rs]
            m = med(rate)
            scpu = med([r.get("server_cpu_pct") for r in rs])
            ccpu = med([r.get("client_cpu_pct") for r in rs])
            us = med([us_per_call(r) for r in rs])
            note = []
            if ccpu is not None and ccpu >= 90:
                note.append("**client-bound**")
            if scpu is not None and scpu >= 90:
                note.append("server-bound")
            if not note:
                note.append("latency-bound")
            if any(r.get("noisy") for r in rs):
                note.append("NOISY run kept")
            if any(r.get("profiled") for r in rs):
                note.append("profiled")
            vs = f"{m / base_rate:.2f}x" if base_rate else "-"
            cpu_vs = f"{base_us / us:.2f}x" if base_us and us else "-"
            out.append(f"| {row} | {f0(m)} | {f0(min(rate))}-{f0(max(rate))} | {vs} | "
                       f"{f0(med([r['lat_p50_us'] for r in rs]))} | {f0(med([r['lat_p99_us'] for r in rs]))} | "
                       f"{f0(scpu)} | {f1(us)} | {cpu_vs} | {f0(ccpu)} | "
                       f"{f1((med([r.get('server_hwm_kb') for r in rs]) or 0) / 1024)} | {', '.join(note)} |")
            if (conns, window) == (50, 32) and base_rate and row.startswith("txgetty") and "(" not in row:
                verdicts.append(verdict(row, m, base_rate, us, base_us, scpu,
                                        med([r.get("server_cpu_pct") for r in g[BASE]]), ccpu, target))
        for row in g:
            profs = [r for r in g[row] if r.get("profile")]
            if profs:
                us = us_per_call(profs[-1]) or 0.0
                out.append(profile_per_call(profs[-1]["profile"], us, f"{row}, {conns}x{window}, "
                                                                      f"{profs[-1]['msgs_per_s']:,.0f} calls/s while profiled"))
    if verdicts:
        out.append(f"\n**Verdict** (target: txgetty RPC ≥ {target:g}x AMP's calls/s at 50x32, server-bound):\n")
        out += [f"- {v}" for v in verdicts]
    bad = [r for r in recs if r.get("type") == "load" and ("error" in r or r.get("discarded"))]
    if bad:
        out.append("\nRuns not counted:\n")
        for r in bad:
            d = r.get("discarded")
            why = r.get("error") or (d if isinstance(d, str) else f"other_cpu_cores={r.get('other_cpu_cores')}")
            why += "" if "error" in r else " (machine not quiet)"
            out.append(f"- {row_key(r)} {r.get('conns')}x{r.get('window')} rep {r.get('rep')}: {why}")
    return "\n".join(out)


def verdict(row: str, rate: float, base_rate: float, us: float | None, base_us: float | None,
            scpu: float | None, base_scpu: float | None, ccpu: float | None, target: float) -> str:
    """Return the verdict sentence of one txgetty row at 50x32."""
    ratio = rate / base_rate
    word = "**met**" if ratio >= target else "**missed**"
    s = f"{row}: {f0(rate)} calls/s against tw_amp's {f0(base_rate)}: **{ratio:.2f}x**, {word}"
    bound = []
    if not (scpu and scpu >= 90):
        bound.append(f"txgetty not server-bound ({f0(scpu)} % CPU)")
    if not (base_scpu and base_scpu >= 90):
        bound.append(f"tw_amp not server-bound ({f0(base_scpu)} % CPU)")
    if ccpu is not None and ccpu >= 90:
        bound.append("the load generator is client-bound: txgetty's figure is a lower bound")
    if bound:
        s += " (" + "; ".join(bound) + ")"
    if us and base_us:
        need = base_us / target
        s += (f". Server CPU per call {f2(us)} µs against AMP's {f2(base_us)} µs ({base_us / us:.2f}x less); "
              f"{target:g}x needs ≤ {f2(need)} µs per call")
        s += f", i.e. {f2(us - need)} µs ({100 * (us - need) / us:.0f} %) less" if us > need else ", reached"
    return s + "."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="50x32,50x1,1x1", help="CONNSxWINDOW,... (default 50x32,50x1,1x1)")
    ap.add_argument("--peers", default="txgetty_rpc_json,txgetty_rpc_msgpack,tw_amp",
                    help=f"servers to run (default txgetty_rpc_json,txgetty_rpc_msgpack,tw_amp; known: "
                         f"{', '.join(PEERS)})")
    ap.add_argument("--loadgen", default="loadgen",
                    help="loadgen (loadgen.py), or loadgen,txgetty: txgetty_rpc_json also measured with "
                         "txgetty bench --rpc, against the same server process")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before it (default 1)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; tables show medians (default 3)")
    ap.add_argument("--size", type=int, default=915, help="characters of the string argument (default 915)")
    ap.add_argument("--target", type=float, default=4.0, help="the 50x32 target, x tw_amp's calls/s (default 4)")
    ap.add_argument("--txgetty-args", default="", help="more twistd txgetty options for the txgetty servers")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="loadgen's event loop")
    ap.add_argument("--profile", action="store_true",
                    help="sample the txgetty servers with py-spy during their windows; top costs per call")
    ap.add_argument("--profile-lines", action="store_true", help="profile per line instead of per function")
    ap.add_argument("--profile-top", type=int, default=20, help="functions per py-spy table (default 20)")
    ap.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second (default 250)")
    ap.add_argument("--profile-nonblocking", action="store_true",
                    help="py-spy --nonblocking: sample without pausing the server (slows it less)")
    add_common_args(ap, "rpc")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report); stop every server process on the way out."""
    opts = parse_args(argv)
    if opts.report:
        print(report(opts.report))
        return
    run_main(opts, run_matrix)


if __name__ == "__main__":
    main()
