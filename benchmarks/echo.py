#!/usr/bin/env python3
"""Echo benchmark runner: txgetty's echo server beside a raw Twisted echo server, in one run.

For every repetition and configuration (C connections x W requests in flight), each server
is started as a fresh process, driven by loadgen.py (another process) for a warm-up and a
timed window, then stopped.  The servers:

  txgetty  the product as it runs: the venv's ``twistd -n --pidfile= txgetty
           --listen tcp:PORT:interface=127.0.0.1:backlog=4096`` (default codec: hello,
           getty's 4-byte little-endian length + payload; the built-in echo listener)
  tw_raw   peers/tw_raw.py, a minimal hand-written Twisted framer (the ceiling for a
           Twisted framework with per-packet callbacks), speaking the same framing

By default the server is pinned to CPU 1 and the load generator to CPU 0 (taskset;
--no-pin to let the kernel place them).  Before each run the runner waits for a quiet
machine (< 0.15 cores busy, no other benchmark process); a run whose window saw more than
--max-other cores used by neither server nor client, or in which the server or the load
generator waited for its CPU more than --max-runq-wait % of the time (/proc/PID/schedstat),
is discarded and repeated (after --tries, default 4, it is kept and flagged).  One JSON line per run
goes to --out (JSONL); at the end the Markdown tables (medians over --reps) are printed.

  python benchmarks/echo.py                                   # 1x1,50x1,50x32, 5 s x 3 reps
  python benchmarks/echo.py --configs 50x32 --seconds 8 --reps 5
  python benchmarks/echo.py --commit HEAD                     # a fixed commit, not the work tree
  python benchmarks/echo.py --report benchmarks/results/echo-*.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASE = "tw_raw"
PEERS = ("txgetty", "tw_raw")
FOREIGN = ("shared/bench/client.py", "anchors.py", "benchmarks/loadgen.py", "benchmarks/echo.py", "cron_wheel.py")
_live: list[subprocess.Popen] = []  # server processes to stop whatever happens


# ----------------------------------------------------------------------------- machine
def busy_cores(interval: float = 0.5) -> float:
    """Return the machine's busy CPU (cores) averaged over interval seconds (/proc/stat)."""
    def rd() -> tuple[int, int]:
        """(total, idle+iowait) ticks of all CPUs."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]), v[3] + v[4]
    t0, i0 = rd()
    time.sleep(interval)
    t1, i1 = rd()
    return ((t1 - t0) - (i1 - i0)) / os.sysconf("SC_CLK_TCK") / interval


def ancestors() -> set[int]:
    """Return the pids of this process and its ancestors (a wrapper such as timeout)."""
    out, pid = set(), os.getpid()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def foreign_procs() -> list[str]:
    """Return other benchmark processes running on the machine (not this runner's)."""
    mine = ancestors() | {p.pid for p in _live}
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(p in cmd for p in FOREIGN):
            out.append(f"{d}: {cmd[:100]}")
    return out


def wait_quiet(opts: argparse.Namespace, log: Callable[[str], None]) -> None:
    """Wait (up to --max-wait s) until the machine has been < 0.15 cores busy for --quiet-for
    seconds in a row, with no other benchmark process running."""
    t0 = time.time()
    said = False
    quiet_since = None
    while time.time() - t0 < opts.max_wait:
        fp = foreign_procs()
        busy = busy_cores(0.5)
        if not fp and busy < 0.15:
            quiet_since = quiet_since or time.time() - 0.5
            if time.time() - quiet_since >= opts.quiet_for:
                if said:
                    log(f"   machine quiet again after {time.time() - t0:.0f}s")
                return
            continue
        quiet_since = None
        if not said:
            log(f"   waiting: machine busy ({busy:.2f} cores), other benchmarks: {fp[:2]}")
            said = True
        time.sleep(1)
    log(f"   WARNING: machine still busy after {opts.max_wait:.0f}s; running anyway")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def twistd_argv(python: str) -> list[str]:
    """Return the command that runs twistd with python's environment (the twistd beside it)."""
    twistd = os.path.join(os.path.dirname(python), "twistd")
    if os.access(twistd, os.X_OK):
        return [twistd]
    return [python, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]


def versions(python: str) -> dict[str, Any]:
    """Return the versions of Python, Twisted, txgetty, uvloop, the reactor and the kernel."""
    code = ("import json,platform;d={'python':platform.python_version()}\n"
            "for m in ('twisted','txgetty','uvloop'):\n"
            "  try:\n    mod=__import__(m);d[m]=getattr(mod,'__version__',None)\n"
            "  except Exception: d[m]=None\n"
            "from twisted.internet import reactor;d['reactor']=type(reactor).__name__\nprint(json.dumps(d))")
    d = json.loads(subprocess.check_output([python, "-c", code], text=True))
    d.update(kernel=os.uname().release, cpus=os.cpu_count(), machine=platform.machine())
    try:
        with open("/proc/cpuinfo") as f:
            d["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    return d


def code_version(src: str | None = None) -> dict[str, Any]:
    """Return the git commit and a digest of txgetty/*.py of the code the servers run.

    src is a --commit snapshot (fixed), or None for the checkout: its editable install
    runs whatever is in the working tree, so comparing the digest at the start and the end
    of a run tells whether the code changed while it was measured."""
    import hashlib

    h = hashlib.sha1()
    pkg = os.path.join(src or ROOT, "txgetty")
    for name in sorted(os.listdir(pkg)) if os.path.isdir(pkg) else []:
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    d: dict[str, Any] = {"txgetty_digest": h.hexdigest()[:12], "txgetty_src": src or ROOT}
    if src:
        with open(os.path.join(src, ".commit")) as f:
            d.update(git_commit=f.read().strip(), txgetty_dirty=False)
        return d
    try:
        d["git_commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                         text=True, timeout=10).stdout.strip() or None
        d["txgetty_dirty"] = bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "txgetty"],
                                                 capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        d["git_commit"] = None
    return d


def snapshot(rev: str, python: str) -> tuple[str, dict[str, str]]:
    """Extract txgetty/ and twisted/plugins/ of a commit into a temporary folder.

    Returns the folder and the environment that makes the servers import txgetty (and the
    twistd plugin) from it, ahead of the editable install: the measured code then cannot
    change under the run, whatever happens to the working tree."""
    import tempfile

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix=f"txgetty-bench-{commit}-")
    try:
        archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", commit, "txgetty", "twisted/plugins"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        with open(os.path.join(tmp, ".commit"), "w") as f:
            f.write(commit)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tmp] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        # (the servers run in the results folder: a checkout as the current directory would come first)
        where = subprocess.run([python, "-c", "import txgetty; print(txgetty.__file__)"], env=env, cwd=tmp,
                               capture_output=True, text=True, check=True).stdout.strip()
        if not where.startswith(tmp):
            raise RuntimeError(f"the snapshot of {commit} is not the txgetty imported ({where})")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, env


# ----------------------------------------------------------------------------- processes
def server_argv(name: str, port: int, opts: argparse.Namespace) -> list[str]:
    """Return the command line of one server."""
    if name == "txgetty":
        codec = "hello" if opts.byteorder == "little" else "length:4:big"
        argv = twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty",
                                           "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=4096"]
        if codec != "hello":
            argv += ["--codec", codec]
        return argv
    return [opts.python, os.path.join(HERE, "peers", "tw_raw.py"), "--port", str(port),
            "--host", "127.0.0.1", "--byteorder", opts.byteorder]


class Server:
    """One server process, started and listening (pinned with taskset if asked)."""

    def __init__(self, name: str, opts: argparse.Namespace) -> None:
        """Start the server and wait until its port accepts connections."""
        self.name = name
        self.port = free_port()
        argv = server_argv(name, self.port, opts)
        if opts.pin:
            argv = ["taskset", "-c", opts.server_cpu] + argv  # taskset execs: the pid is the server's
        self.argv = argv
        self.log = open(os.path.join(opts.logdir, f"{name}.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=opts.logdir, env=opts.env)
        _live.append(self.proc)
        self.pid = self.proc.pid
        deadline = time.time() + 30
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {self.proc.returncode} (log: {self.log.name})")
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError(f"{name} did not listen within 30s (log: {self.log.name})")
                    time.sleep(0.05)
            time.sleep(0.3)  # let the probe connection's close settle
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _live:
            _live.remove(self.proc)
        self.log.close()


def loadgen(opts: argparse.Namespace, srv: Server, conns: int, window: int) -> dict[str, Any]:
    """Run loadgen.py against srv once; return its JSON record."""
    argv = [opts.python, os.path.join(HERE, "loadgen.py"), "--port", str(srv.port), "--mode", "load",
            "--byteorder", opts.byteorder, "--conns", str(conns), "--window", str(window),
            "--size", str(opts.size), "--seconds", str(opts.seconds), "--warmup", str(opts.warmup),
            "--loop", opts.loop, "--server-pid", str(srv.pid), "--label", srv.name]
    if opts.pin:
        argv = ["taskset", "-c", opts.client_cpu] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=opts.seconds + opts.warmup + 60)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen rc={p.returncode}: {p.stderr.strip()[-600:]}")
    rec = json.loads(lines[-1])
    rec["cmd_client"] = shlex.join(argv)
    rec["cmd_server"] = shlex.join(srv.argv)
    return rec


def one_run(opts: argparse.Namespace, name: str, conns: int, window: int,
            meta: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """Measure one server in one configuration; repeat (up to --tries in all) if the window was noisy."""
    rec: dict[str, Any] = {}
    for attempt in range(opts.tries):
        wait_quiet(opts, log)
        try:
            srv = Server(name, opts)
            try:
                rec = loadgen(opts, srv, conns, window)
            finally:
                srv.stop()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            rec = {"label": name, "error": str(e)}
        rec.update(meta, attempt=attempt)
        why = noise(opts, rec)
        if why is None:
            return rec
        if attempt == opts.tries - 1:
            log(f"   {name}: {why} on try {opts.tries} too: kept, flagged noisy")
            rec["noisy"] = why
            return rec
        log(f"   {name}: {why}: discarded, measuring again")
        write(opts, dict(rec, discarded=why))
    return rec


def noise(opts: argparse.Namespace, rec: dict[str, Any]) -> str | None:
    """Return why a run's window was disturbed by other work on the machine, or None.

    Two signs: CPU used by neither server nor client (machine-wide, from /proc/stat), and
    time the server or the load generator spent runnable but waiting for its CPU
    (/proc/PID/schedstat): another task on a pinned CPU shows there even when it is small."""
    other = rec.get("other_cpu_cores")
    if other is not None and other > opts.max_other:
        return f"other_cpu_cores={other} > {opts.max_other}"
    for side in ("server", "client"):
        wait = rec.get(f"{side}_runq_wait_pct")
        if wait is not None and wait > opts.max_runq_wait:
            return f"{side} waited for its CPU {wait}% of the window > {opts.max_runq_wait}%"
    return None


def write(opts: argparse.Namespace, rec: dict[str, Any]) -> None:
    """Append one record to the JSONL file."""
    rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    opts.out_f.write(json.dumps(rec) + "\n")
    opts.out_f.flush()


def run_matrix(opts: argparse.Namespace) -> None:
    """Run every repetition x configuration x server, interleaved, then print the tables."""
    configs = [tuple(int(x) for x in c.lower().split("x")) for c in opts.configs.split(",")]
    peers = opts.peers.split(",")
    for p in peers:
        if p not in PEERS:
            sys.exit(f"unknown peer {p!r}; known: {', '.join(PEERS)}")
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    opts.logdir = os.path.join(os.path.dirname(os.path.abspath(opts.out)), "logs")
    os.makedirs(opts.logdir, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the servers and loadgen

    def log(msg: str) -> None:
        """Print a time-stamped progress line."""
        print(time.strftime("%H:%M:%S ") + msg, flush=True)

    if opts.pin and (os.cpu_count() or 1) < 2:
        log("fewer than 2 CPUs: not pinning")
        opts.pin = False
    with open(opts.out, "a") as opts.out_f:
        code = code_version(opts.src)
        write(opts, {"type": "meta", "argv": sys.argv, "pin": opts.pin, "server_cpu": opts.server_cpu,
                     "client_cpu": opts.client_cpu, "byteorder": opts.byteorder, **versions(opts.python), **code})
        log(f"results -> {opts.out}")
        # interleaved (rep -> config -> server, order alternating) so drift hits both alike
        for rep in range(opts.reps):
            for conns, window in configs:
                for name in (peers if rep % 2 == 0 else peers[::-1]):
                    rec = one_run(opts, name, conns, window,
                                  dict(type="load", peer=name, rep=rep, conns=conns, window=window), log)
                    write(opts, rec)
                    if "error" in rec:
                        log(f"[{rep}] {name:8s} C={conns:<3d} W={window:<3d} ERROR {rec['error']}")
                        continue
                    log(f"[{rep}] {name:8s} C={conns:<3d} W={window:<3d} {rec['msgs_per_s']:>10,.0f} msg/s "
                        f"p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us srv={rec['server_cpu_pct']}% "
                        f"cli={rec['client_cpu_pct']}% other={rec['other_cpu_cores']} "
                        f"runq-wait srv={rec.get('server_runq_wait_pct')}% cli={rec.get('client_runq_wait_pct')}%")
        end = code_version(opts.src)
        if end["txgetty_digest"] != code["txgetty_digest"]:
            log(f"WARNING: txgetty's code changed during the run ({code} -> {end}): the runs mixed versions")
            write(opts, {"type": "warning", "code_changed": True, "start": code, "end": end})
    print()
    print(report([opts.out]))


# ----------------------------------------------------------------------------- report
def med(xs: list[Any]) -> Any:
    """Return the median of the values that are not None (None if none)."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f0(x: float | None) -> str:
    """Format with thousands separators and no decimals."""
    return "-" if x is None else f"{x:,.0f}"


def f1(x: float | None) -> str:
    """Format with thousands separators and one decimal."""
    return "-" if x is None else f"{x:,.1f}"


def report(files: list[str]) -> str:
    """Return Markdown tables (one per configuration, medians over the runs) of JSONL files."""
    recs = []
    for path in files:
        with open(path) as f:
            recs += [json.loads(ln) for ln in f if ln.strip()]
    out = []
    metas = [r for r in recs if r.get("type") == "meta"]
    if metas:
        m = metas[-1]
        dirty = ", modified" if m.get("txgetty_dirty") else ""
        pin = f"server pinned to CPU {m['server_cpu']}, loadgen to CPU {m['client_cpu']}" if m.get("pin") \
            else "not pinned"
        out.append(f"Measured {m['ts'][:10]} on {m.get('cpus')} CPUs ({m.get('cpu_model')}), Linux {m.get('kernel')}, "
                   f"Python {m.get('python')}, Twisted {m.get('twisted')} ({m.get('reactor')}), "
                   f"txgetty {m.get('txgetty')} (commit {m.get('git_commit')}{dirty}); "
                   f"loadgen on uvloop {m.get('uvloop')}; {pin}; "
                   f"framing: 4-byte {m.get('byteorder')}-endian length + payload.")
    if any(r.get("code_changed") for r in recs):
        out.append("\n**WARNING: txgetty's code changed during the run; the runs mixed versions.**")
    ok = [r for r in recs if r.get("type") == "load" and "error" not in r and not r.get("discarded")]
    groups: dict[tuple[int, int], dict[str, list]] = {}
    for r in ok:
        groups.setdefault((r["conns"], r["window"]), {}).setdefault(r["peer"], []).append(r)
    for cfg in sorted(groups, key=lambda k: (k[0] * k[1], k[0])):
        g = groups[cfg]
        base = med([r["msgs_per_s"] for r in g[BASE]]) if BASE in g else None
        n = max(len(v) for v in g.values())
        secs = next(iter(g.values()))[0]["seconds"]
        size = next(iter(g.values()))[0]["size"]
        out.append(f"\n#### {cfg[0]} x {cfg[1]} (connections x in flight), {size}-byte payloads "
                   f"(median of {n} runs of {secs:.0f} s)\n")
        out.append("| server | msg/s | min-max msg/s | vs raw Twisted | p50 µs | p99 µs | server CPU % "
                   "| server µs CPU/msg | client CPU % | server peak RSS MB | note |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for peer in sorted(g, key=lambda p: -med([r["msgs_per_s"] for r in g[p]])):
            rs = g[peer]
            rate = [r["msgs_per_s"] for r in rs]
            m = med(rate)
            scpu = med([r.get("server_cpu_pct") for r in rs])
            ccpu = med([r.get("client_cpu_pct") for r in rs])
            us = med([1e6 * r["server_cpu_s"] / r["msgs"] for r in rs if r.get("msgs")])
            note = []
            if ccpu is not None and ccpu >= 90:
                note.append("**client-bound**")
            if scpu is not None and scpu >= 90:
                note.append("server-bound")
            if not note:
                note.append("latency-bound")
            if any(r.get("noisy") for r in rs):  # kept after 4 noisy tries
                note.append("NOISY run kept")
            vs = f"{m / base:.2f}x" if base else "-"
            out.append(f"| {peer} | {f0(m)} | {f0(min(rate))}-{f0(max(rate))} | {vs} | "
                       f"{f0(med([r['lat_p50_us'] for r in rs]))} | {f0(med([r['lat_p99_us'] for r in rs]))} | "
                       f"{f0(scpu)} | {f1(us)} | {f0(ccpu)} | "
                       f"{f1((med([r.get('server_hwm_kb') for r in rs]) or 0) / 1024)} | {', '.join(note)} |")
    bad = [r for r in recs if r.get("type") == "load" and ("error" in r or r.get("discarded"))]
    if bad:
        out.append("\nRuns not counted:\n")
        for r in bad:
            d = r.get("discarded")
            why = r.get("error") or (d if isinstance(d, str) else f"other_cpu_cores={r.get('other_cpu_cores')}")
            why += "" if "error" in r else " (machine not quiet)"
            out.append(f"- {r.get('peer')} {r.get('conns')}x{r.get('window')} rep {r.get('rep')}: {why}")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="1x1,50x1,50x32", help="CONNSxWINDOW,... (default 1x1,50x1,50x32)")
    ap.add_argument("--peers", default=",".join(PEERS), help="servers to run (default txgetty,tw_raw)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before it (default 1)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions; tables show medians (default 3)")
    ap.add_argument("--size", type=int, default=915, help="payload bytes (default 915, as getty's benchmark)")
    ap.add_argument("--byteorder", choices=["big", "little"], default="little",
                    help="length header byte order (default little: getty's hello framing, "
                         "txgetty's default codec; big runs txgetty with --codec length:4:big)")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="loadgen's event loop")
    ap.add_argument("--python", default=sys.executable, help="interpreter for servers and loadgen")
    ap.add_argument("--commit", metavar="REV",
                    help="measure txgetty as in this git commit (extracted to a temporary folder and put "
                         "ahead of the installed one) instead of the working tree")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin with taskset")
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--max-other", type=float, default=0.10,
                    help="discard and repeat a run whose window saw more other CPU than this (cores)")
    ap.add_argument("--max-runq-wait", type=float, default=2.0,
                    help="discard and repeat a run in which the server or loadgen waited for its CPU "
                         "more than this %% of the window (default 2)")
    ap.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine")
    ap.add_argument("--quiet-for", type=float, default=2.0,
                    help="seconds the machine must have been quiet before a run (default 2)")
    ap.add_argument("--tries", type=int, default=4,
                    help="measurements of a run before a noisy one is kept and flagged (default 4)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", time.strftime("echo-%Y%m%d-%H%M%S.jsonl")))
    ap.add_argument("--report", nargs="+", metavar="JSONL", help="only print the tables of these files")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report); stop every server process on the way out."""
    opts = parse_args(argv)
    if opts.report:
        print(report(opts.report))
        return

    def on_signal(signum: int, frame: Any) -> None:
        """Turn SIGTERM/SIGHUP into SystemExit, so that the finally clauses stop the processes."""
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    opts.src, opts.env = snapshot(opts.commit, opts.python) if opts.commit else (None, None)
    try:
        run_matrix(opts)
    finally:
        for p in list(_live):
            if p.poll() is None:
                p.kill()
                p.wait()
        if opts.src:
            shutil.rmtree(opts.src, ignore_errors=True)


if __name__ == "__main__":
    main()
