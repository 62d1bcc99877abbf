#!/usr/bin/env python3
"""Counted costs of an echo server, per connection or per message: instructions (callgrind),
system calls (perf's syscall tracepoints) and CPU, driven by the harness's C load generator.

Wall-clock rates move with the host (see README.md, "The machine's own speed drifts") and
with whatever else runs on its two cores; counts do not.  Each measurement starts a fresh
server (pinned to --server-cpu; the C load generator to --client-cpu) and one of:

  callgrind  the server runs under ``valgrind --tool=callgrind``; its counters are zeroed
             when the load generator opens its measured window (MEASURE_START) and dumped
             when it prints its result: **instructions per op** (Ir / ops).  About 50x
             slower than native, so batching differs from a native run (a 1x1 ping-pong or
             a connect/close loop has nothing to batch); repeatable to about 1 %.
  perf       the server runs natively; ``perf stat -e syscalls:sys_enter_* -p PID`` counts
             its system calls over the window: **system calls per op**, by call (recvfrom
             per message is the inverse of the packets the server gets per read); also the
             server's CPU per op.
  cpu        the server's CPU (utime+stime, /proc/PID/stat) per op over the window.

Modes: ``msg`` (``loadgen --conns C --window W``: an op is one echo) and ``conn``
(``loadgen --connrate --conns P``: an op is connect -> one echo -> close, the client
closing first).  Frames: 4-byte big-endian length + --size payload bytes (the harness's
``frame``).  ``--client py`` drives the servers with benchmarks/loadgen.py (uvloop; what
echo.py and scale.py use) instead: it has no window markers, so the counts cover its window
from 0.3 s after it opens to 0.5 s before it closes, and the CPU per op is loadgen.py's own
(``--server-pid``); ``--byteorder little`` (py only) speaks getty's hello framing, with the
servers ``tw_raw_b_little``, ``txgetty_hello`` and the variants (``--codec hello``).

Servers (--servers, comma-separated; ``--server NAME=CMD`` adds one, {port} and {py}
substituted; ``--variant NAME=DIR`` adds txgetty with DIR ahead on PYTHONPATH, DIR holding
a txgetty/ package, e.g. a patched copy):

  tw_raw     the harness's servers/tw_raw.py (``transport.write`` per packet; the ratio of
             issue 13 is taken against it)
  tw_raw_b   benchmarks/peers/tw_raw.py --byteorder big (``writeSequence`` per packet: echo.py's peer)
  txgetty    twistd -n txgetty --no-rpc --codec length:4:big (the installed/working-tree txgetty)
  (variants  txgetty with DIR and benchmarks/ ahead on PYTHONPATH; --txgetty-args adds options,
             e.g. ``--cron-period 1 --app cron_app:newSession`` for scale.py's server)

  python benchmarks/costs.py --tool callgrind --mode conn --servers tw_raw,txgetty --seconds 10
  python benchmarks/costs.py --tool callgrind --mode msg --conns 1 --window 1 --servers tw_raw,txgetty
  python benchmarks/costs.py --tool perf --mode msg --conns 50 --window 32 --servers tw_raw,txgetty --reps 3
  python benchmarks/costs.py --tool callgrind --mode conn --variant fast=/tmp/variants/fast --servers txgetty,fast
  python benchmarks/costs.py --tool cpu --client py --byteorder little --mode conn --servers tw_raw_b_little,txgetty_hello

Prints one JSON line per measurement (also appended to --out) and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
SYSCALLS = ("recvfrom", "sendto", "sendmsg", "epoll_wait", "epoll_ctl", "accept4", "close", "shutdown",
            "setsockopt", "getsockname", "getpeername", "fcntl", "ioctl", "getsockopt")


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu_s(pid: int) -> tuple[float, float]:
    """Return (utime, stime) of a process in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until 127.0.0.1:port accepts; raise if the process exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on {port} within {timeout:.0f} s")


def build_loadgen(harness: str, outdir: str) -> str:
    """Compile the harness's C load generator into outdir; return its path."""
    src = os.path.join(harness, "c", "loadgen.c")
    exe = os.path.join(outdir, "loadgen")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def server_table(opts: argparse.Namespace) -> dict[str, tuple[str, dict[str, str] | None]]:
    """Return name -> (command template, environment or None)."""
    py = opts.python
    twistd = os.path.join(os.path.dirname(py), "twistd")
    txg = (f"{py} {twistd} -n --pidfile= txgetty --no-rpc --codec length:4:big "
           f"--listen tcp:{{port}}:interface=127.0.0.1:backlog=4096 {opts.txgetty_args}")
    table: dict[str, tuple[str, dict[str, str] | None]] = {
        "tw_raw": (f"{py} {opts.harness}/servers/tw_raw.py --port {{port}}", None),
        "tw_raw_b": (f"{py} {HERE}/peers/tw_raw.py --port {{port}} --byteorder big", None),
        "tw_raw_b_little": (f"{py} {HERE}/peers/tw_raw.py --port {{port}} --byteorder little", None),
        "txgetty": (txg, None),
        "txgetty_hello": (txg.replace("--codec length:4:big", "--codec hello"), None),
    }
    for spec in opts.variant:
        name, path = spec.split("=", 1)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath(path), HERE] + [
            p for p in [os.environ.get("PYTHONPATH")] if p]))
        table[name] = (txg if opts.byteorder == "big" else txg.replace("length:4:big", "hello"), env)
    for spec in opts.server:
        name, cmd = spec.split("=", 1)
        table[name] = (cmd.replace("{py}", py), None)
    return table


def loadgen_argv(opts: argparse.Namespace, port: int, pid: int) -> list[str]:
    """Return the load generator's command line for the mode."""
    if opts.client == "py":
        argv = [opts.python, os.path.join(HERE, "loadgen.py"), "--port", str(port), "--proto", "frame",
                "--byteorder", opts.byteorder, "--size", str(opts.size), "--seconds", str(opts.seconds),
                "--warmup", str(opts.warmup), "--server-pid", str(pid)]
        if opts.mode == "conn":
            argv += ["--mode", "connrate", "--parallel", str(opts.conns)]
        else:
            argv += ["--conns", str(opts.conns), "--window", str(opts.window)]
        return ["taskset", "-c", opts.client_cpu] + argv if opts.pin else argv
    argv = [opts.loadgen, "--port", str(port), "--proto", "frame", "--size", str(opts.size),
            "--duration", str(opts.seconds), "--warmup", str(opts.warmup)]
    if opts.mode == "conn":
        argv += ["--connrate", "--conns", str(opts.conns)]
    else:
        argv += ["--conns", str(opts.conns), "--window", str(opts.window)]
    return ["taskset", "-c", opts.client_cpu] + argv if opts.pin else argv


def timed_lines(lg: subprocess.Popen, opts: argparse.Namespace) -> Any:
    """For loadgen.py (no markers of its own): yield MEASURE_START 0.3 s into its window,
    MEASURE_END 0.3 s before its end, then its output lines."""
    time.sleep(0.7 + opts.warmup + 0.2)  # (interpreter start-up, connects)
    yield "MEASURE_START"
    time.sleep(max(0.5, opts.seconds - 0.5))
    yield "MEASURE_END"
    yield from lg.stdout  # type: ignore[misc]


def callgrind_total(path: str) -> int:
    """Return the Ir total of a callgrind dump (its ``summary:``/``totals:`` line)."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def perf_counts(path: str) -> dict[str, int]:
    """Return {event: count} from ``perf stat -x,`` output."""
    out: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                name = parts[2].split(":")[-1].replace("sys_enter_", "")
                out[name] = int(float(parts[0]))
    return out


def measure(name: str, opts: argparse.Namespace, table: dict[str, Any], rep: int) -> dict[str, Any]:
    """Start the server, run one window with the chosen tool, stop it; return the record."""
    template, env = table[name]
    port = free_port()
    argv = shlex.split(template.format(port=port))
    tmp = tempfile.mkdtemp(prefix=f"costs-{name}-")
    if opts.tool == "callgrind":
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p", "--dump-line=no"] + argv
    if opts.pin:
        argv = ["taskset", "-c", opts.server_cpu] + argv
    log = open(os.path.join(tmp, "server.log"), "wb")
    srv = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp)
    rec: dict[str, Any] = {"server": name, "tool": opts.tool, "mode": opts.mode, "client": opts.client,
                           "conns": opts.conns,
                           "window": opts.window, "size": opts.size, "rep": rep, "cmd_server": shlex.join(argv)}
    perf = None
    try:
        wait_port(port, srv, 120 if opts.tool == "callgrind" else 30)
        time.sleep(1.0 if opts.tool == "callgrind" else 0.3)
        lg = subprocess.Popen(loadgen_argv(opts, port, srv.pid), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cpu0 = None
        result = None
        lines = lg.stdout if opts.client == "c" else timed_lines(lg, opts)
        for line in lines:  # type: ignore[union-attr]
            line = line.strip()
            if line == "MEASURE_START":
                t_start = time.time()
                if opts.tool == "callgrind":
                    subprocess.run(["callgrind_control", "-z", str(srv.pid)], capture_output=True, check=True)
                elif opts.tool == "perf":
                    events = ",".join(f"syscalls:sys_enter_{s}" for s in SYSCALLS) + ",raw_syscalls:sys_enter"
                    perf = subprocess.Popen(["perf", "stat", "-x,", "-o", f"{tmp}/perf.txt", "-e", events,
                                             "-p", str(srv.pid)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
                cpu0 = proc_cpu_s(srv.pid)
            elif line == "MEASURE_END" or (line.startswith("{") and opts.client == "c"):
                cpu1 = proc_cpu_s(srv.pid)
                if opts.client == "c":
                    result = json.loads(line)
                else:
                    measured_s = time.time() - t_start
                if opts.tool == "callgrind":
                    before = set(os.listdir(tmp))
                    subprocess.run(["callgrind_control", "-d", str(srv.pid)], capture_output=True, check=True)
                    deadline = time.time() + 60
                    dumps: list[str] = []
                    while time.time() < deadline and not dumps:
                        dumps = [d for d in set(os.listdir(tmp)) - before if d.startswith("cg.")]
                        time.sleep(0.2)
                    time.sleep(1.0)
                    rec["instructions"] = callgrind_total(os.path.join(tmp, sorted(dumps)[-1]))
                elif perf is not None:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(10)
                    rec["syscalls"] = perf_counts(f"{tmp}/perf.txt")
                cpu0 = cpu0 or cpu1
                rec["server_user_s"] = round(cpu1[0] - cpu0[0], 3)
                rec["server_sys_s"] = round(cpu1[1] - cpu0[1], 3)
                rec["server_cpu_s"] = round(rec["server_user_s"] + rec["server_sys_s"], 3)
            elif line.startswith("{"):
                result = json.loads(line)
        lg.wait()
        if result is None:
            raise RuntimeError(f"loadgen failed: {lg.stderr.read()[-400:]}")  # type: ignore[union-attr]
        if opts.client == "py":
            # loadgen.py's rate over its window, times the part of it measured here
            rate = result.get("msgs_per_s") or result.get("conns_per_s") or 0
            done = result.get("msgs") or result.get("conns_done") or 0
            if done and result.get("server_cpu_s") is not None:
                # loadgen.py's own window is exact: its server CPU, split as in ours
                share = rec["server_user_s"] / rec["server_cpu_s"] if rec.get("server_cpu_s") else 0.5
                scale = result["server_cpu_s"] * rate * measured_s / done / (rec["server_cpu_s"] or 1)
                rec["server_cpu_s"] = round(rec["server_cpu_s"] * scale, 3)
                rec["server_user_s"] = round(rec["server_cpu_s"] * share, 3)
                rec["server_sys_s"] = round(rec["server_cpu_s"] - rec["server_user_s"], 3)
            result = {"msgs": round(rate * measured_s), "seconds": round(measured_s, 3), "msgs_per_s": rate,
                      "client_cpu_s": result.get("client_cpu_s"), "lat_p50_us": result.get("lat_p50_us")}
        ops = result["msgs"]
        rec.update(ops=ops, seconds=result["seconds"], ops_per_s=result["msgs_per_s"],
                   client_cpu_s=result["client_cpu_s"], lat_p50_us=result["lat_p50_us"])
        if ops:
            rec["server_cpu_us_per_op"] = round(1e6 * rec["server_cpu_s"] / ops, 2)
            rec["server_user_us_per_op"] = round(1e6 * rec["server_user_s"] / ops, 2)
            rec["server_sys_us_per_op"] = round(1e6 * rec["server_sys_s"] / ops, 2)
            if "instructions" in rec:
                rec["instructions_per_op"] = round(rec["instructions"] / ops)
            if "syscalls" in rec:
                rec["syscalls_per_op"] = {k: round(v / ops, 3) for k, v in rec["syscalls"].items() if v}
    except Exception as e:
        rec["error"] = str(e)
    finally:
        if perf is not None and perf.poll() is None:
            perf.kill()
            perf.wait()
        if srv.poll() is None:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(30)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        log.close()
        if opts.keep:
            rec["tmp"] = tmp
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rec


def table_rows(recs: list[dict[str, Any]]) -> str:
    """Return a Markdown table: per server, medians over the repetitions."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        if "error" not in r:
            by.setdefault(r["server"], []).append(r)
    out = ["| server | reps | ops/window | instructions/op | min-max | vs first | server µs CPU/op (user + sys) "
           "| syscalls/op |", "|---|--:|--:|--:|--:|--:|--:|---|"]
    first = None
    for name, rs in by.items():
        ins = [r["instructions_per_op"] for r in rs if "instructions_per_op" in r]
        cpu = [r["server_cpu_us_per_op"] for r in rs if "server_cpu_us_per_op" in r]
        usr = [r["server_user_us_per_op"] for r in rs if "server_user_us_per_op" in r]
        sys_ = [r["server_sys_us_per_op"] for r in rs if "server_sys_us_per_op" in r]
        mi = statistics.median(ins) if ins else None
        if first is None:
            first = mi
        sc: dict[str, list[float]] = {}
        for r in rs:
            for k, v in r.get("syscalls_per_op", {}).items():
                sc.setdefault(k, []).append(v)
        scs = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(sc.items(), key=lambda kv: -max(kv[1])))
        out.append(f"| {name} | {len(rs)} | {statistics.median(r['ops'] for r in rs):,.0f} | "
                   + (f"{mi:,.0f} | {min(ins):,.0f}-{max(ins):,.0f} | {mi / first:.2f}x" if mi else "- | - | -")
                   + (f" | {statistics.median(cpu):.1f} ({statistics.median(usr):.1f} + {statistics.median(sys_):.1f})"
                      if cpu else " | -") + f" | {scs or '-'} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=("callgrind", "perf", "cpu"), default="callgrind")
    ap.add_argument("--mode", choices=("msg", "conn"), default="msg")
    ap.add_argument("--servers", default="tw_raw,txgetty")
    ap.add_argument("--server", action="append", default=[], metavar="NAME=CMD")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--txgetty-args", default="", help="more options for every txgetty server")
    ap.add_argument("--conns", type=int, default=None, help="connections (msg: default 1; conn: parallel loops, default 16)")
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--size", type=int, default=915)
    ap.add_argument("--byteorder", choices=("big", "little"), default="big",
                    help="frames' length byte order (little: getty's hello framing; needs --client py, and "
                         "servers that speak it: txgetty_hello, tw_raw_b_little)")
    ap.add_argument("--seconds", type=float, default=None, help="window (default: callgrind 10, else 5)")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up (default: callgrind 3, else 1)")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--python", default=os.path.join(ROOT, ".venv", "bin", "python"))
    ap.add_argument("--harness", default="/work/shared/bench/harness")
    ap.add_argument("--loadgen", default=None, help="the C load generator (default: built from --harness)")
    ap.add_argument("--client", choices=("c", "py"), default="c",
                    help="c: the harness's C load generator (default); py: benchmarks/loadgen.py (uvloop), "
                         "measured from 0.3 s into its window to 0.3 s before its end")
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, dumps)")
    ap.add_argument("--out", default=None)
    opts = ap.parse_args(argv)
    if opts.conns is None:
        opts.conns = 16 if opts.mode == "conn" else 1
    if opts.seconds is None:
        opts.seconds = 10.0 if opts.tool == "callgrind" else 5.0
    if opts.warmup is None:
        opts.warmup = 3.0 if opts.tool == "callgrind" else 1.0
    if not os.path.isabs(opts.python):
        opts.python = os.path.abspath(opts.python)
    if opts.out is None:
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        opts.out = os.path.join(HERE, "results", time.strftime("costs-%Y%m%d-%H%M%S.jsonl"))
    return opts


def main(argv: list[str] | None = None) -> None:
    """Run every repetition x server (interleaved, order alternating) and print the table."""
    opts = parse_args(argv)
    if opts.loadgen is None:
        opts.loadgen = build_loadgen(opts.harness, os.path.dirname(opts.out))
    table = server_table(opts)
    names = opts.servers.split(",")
    for n in names:
        if n not in table:
            sys.exit(f"unknown server {n!r}; known: {', '.join(table)}")
    recs = []
    with open(opts.out, "a") as f:
        for rep in range(opts.reps):
            order = names if rep % 2 == 0 else names[::-1]
            for name in order:
                rec = measure(name, opts, table, rep)
                recs.append(rec)
                f.write(json.dumps(rec) + "\n")
                f.flush()
                short = {k: rec.get(k) for k in ("server", "rep", "ops", "ops_per_s", "instructions_per_op",
                                                 "server_cpu_us_per_op", "server_user_us_per_op",
                                                 "server_sys_us_per_op", "syscalls_per_op", "error") if k in rec}
                print(json.dumps(short), flush=True)
    recs.sort(key=lambda r: names.index(r["server"]))
    print()
    print(f"{opts.tool}, mode {opts.mode}, client {opts.client}, {opts.conns} x {opts.window}, {opts.size}-byte payloads, "
          f"{opts.seconds:g} s windows, {opts.reps} reps")
    print(table_rows(recs))


if __name__ == "__main__":
    main()
