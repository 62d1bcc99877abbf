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
                       by ``loadgen.py --proto rpc --serializer json`` (with the ``orjson``
                       extra, if the interpreter has it, writing the text results)
  txgetty_rpc_json_std the same server with orjson hidden (peers/no_orjson ahead on its
                       PYTHONPATH): JSON by the standard library alone, as without the
                       ``orjson`` extra; the same ``--serializer json``
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
import os
import re
import shlex
import subprocess
import time
from typing import Any

from benchlib import (
    HERE,
    Server,
    add_common_args,
    f0,
    f2,
    free_port,
    log,
    main_or_report,
    med,
    meta_line,
    not_counted,
    pinned,
    pyspy_top,
    read_jsonl,
    run_json,
    server_env,
    twistd_argv,
)
from loadgen_calls import _H, RpcTemplate, amp_tail, payload_text
from loadrun import (
    Row,
    add_load_args,
    by_rate,
    parse_matrix,
    row_key,
    run_matrix,
    run_txgetty_bench,
    runs_line,
    txgetty_cli,
)
from loadrun import drive as drive_once
from loadrun import us_per_msg as us_per_call

#: peer -> (loadgen.py --proto, --serializer)
PEERS = {"txgetty_rpc_json": ("rpc", "json"), "txgetty_rpc_json_std": ("rpc", "json"),
         "txgetty_rpc_msgpack": ("rpc", "msgpack"),
         "txgetty_rpc_raw": ("rpc", "raw"), "tw_amp": ("amp", None)}
BASE = "tw_amp"
LOADGENS = ("loadgen", "txgetty")
_RPC_PORT = re.compile(r"txgetty rpc: listening on tcp:127\.0\.0\.1:(\d+)")


# ----------------------------------------------------------------------------- processes
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
    env = server_env(opts, os.path.join(HERE, "peers", "no_orjson")) if name == "txgetty_rpc_json_std" else None
    srv = Server(name, server_argv(name, 0, opts), 0, opts, probe="none", env=env)
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
    argv = pinned(txgetty_cli(opts) + ["call", f"127.0.0.1:{port}", "Echo.echo", '"probe"', "--timeout", "10"],
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
    rec, err = run_json(argv, opts.seconds + opts.warmup + 60, "loadgen.py")
    if rec.get("errors"):
        raise RuntimeError(f"loadgen.py: {rec['errors']} connection(s) lost during the run: {err.strip()[-300:]}")
    rec.update(cmd_client=shlex.join(argv), loadgen="loadgen")
    return rec


def drive(opts: argparse.Namespace, lg: str, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Measure srv once with load generator lg (and py-spy with --profile); return the record."""
    path = None
    if opts.profile and srv.name.startswith("txgetty"):
        path = os.path.join(opts.logdir, f"pyspy-{srv.name}-{conns}x{window}-{srv.pid}-{lg}.txt")

    def measure() -> dict[str, Any]:
        """One run of the load generator."""
        if lg == "txgetty":
            return run_txgetty_bench(opts, srv, conns, window, ["--rpc"])
        return run_loadgen(opts, srv, conns, window)

    def analyse(prof_path: str) -> dict[str, Any]:
        """The reactor thread's top functions (the task pool's idle threads left out)."""
        main_path, others = main_thread_stacks(prof_path)
        return dict(pyspy_top(main_path, opts.profile_top, lines=opts.profile_lines),
                    kind="non-idle reactor-thread", other_threads=others)

    rec = drive_once(opts, srv, measure, path, analyse, lines=opts.profile_lines,
                     nonblocking=opts.profile_nonblocking)
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


def run_all(opts: argparse.Namespace) -> None:
    """Run every repetition x configuration x server (x load generator), interleaved, then
    print the tables."""
    configs, peers, lgs = parse_matrix(opts, PEERS, LOADGENS)
    if opts.profile:  # py-spy's own CPU (about 0.15 cores, on the client's CPU) is no disturbance
        opts.max_other += 0.25
        opts.max_runq_wait = max(opts.max_runq_wait, 10.0)
        log(f"profiling: noise limits raised to {opts.max_other:g} other cores, {opts.max_runq_wait:g} % run-queue wait")

    def plan(name: str, rep: int) -> tuple[list[str], tuple[str, ...], bool]:
        """The load generators in their order (txgetty bench speaks JSON RPC only: the other
        servers get loadgen.py alone); both sides' run-queue waits count; profiled."""
        order = [lg for lg in lgs if lg == "loadgen" or name == "txgetty_rpc_json"]
        return (order if rep % 2 == 0 else order[::-1]), ("server", "client"), bool(
            opts.profile and name.startswith("txgetty"))

    run_matrix(opts, configs, peers, plan, start_server, drive,
               {"target": opts.target, "size": opts.size, "wire": wire_sizes(opts.size)}, report, 19, "calls/s")


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
        first = next(iter(g.values()))[0]
        out.append(f"\n#### RPC calls, {conns} x {window} (connections x calls in flight), {first['size']}-character "
                   f"string {runs_line(g)}\n")
        out.append("| server | calls/s | min-max calls/s | vs tw_amp | p50 µs | p99 µs | server CPU % "
                   "| server µs CPU/call | CPU/call vs tw_amp | client CPU % | server peak RSS MB | note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for row in by_rate(g):
            st = Row(g[row])
            vs = f"{st.rate / base_rate:.2f}x" if base_rate else "-"
            cpu_vs = f"{base_us / st.us:.2f}x" if base_us and st.us else "-"
            out.append(st.line(row, vs, after_us=[cpu_vs]))
            if (conns, window) == (50, 32) and base_rate and row.startswith("txgetty") and "(" not in row:
                verdicts.append(verdict(row, st.rate, base_rate, st.us, base_us, st.scpu,
                                        med([r.get("server_cpu_pct") for r in g[BASE]]), st.ccpu, target))
        for row in g:
            profs = [r for r in g[row] if r.get("profile")]
            if profs:
                us = us_per_call(profs[-1]) or 0.0
                out.append(profile_per_call(profs[-1]["profile"], us, f"{row}, {conns}x{window}, "
                                                                      f"{profs[-1]['msgs_per_s']:,.0f} calls/s while profiled"))
    if verdicts:
        out.append(f"\n**Verdict** (target: txgetty RPC ≥ {target:g}x AMP's calls/s at 50x32, server-bound):\n")
        out += [f"- {v}" for v in verdicts]
    out += not_counted(recs, ("load",), lambda r: f"{row_key(r)} {r.get('conns')}x{r.get('window')}")
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
    add_load_args(ap)
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
    main_or_report(parse_args(argv), run_all, report)


if __name__ == "__main__":
    main()
