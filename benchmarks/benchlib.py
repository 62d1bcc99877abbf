"""Shared machinery of txgetty's benchmark runners (echo.py, rpc.py, scale.py, backpressure.py, cron_wheel.py,
slow_handler.py).

* the quiet-machine wait (no other benchmark process, < 0.15 busy cores) and the noise
  verdict of a measured window (CPU used by neither side, run-queue waits from
  /proc/PID/schedstat);
* ``--commit REV`` snapshotting (txgetty/ and twisted/plugins/ of a commit extracted into a
  temporary folder, put ahead of the editable install) and the code digest;
* server processes (pinned with taskset, logs in results/logs/, ready when their port
  answers, stopped with SIGTERM then SIGKILL, also when the runner is interrupted);
* ``Window``: the CPU, run-queue waits and memory of given processes over a time window,
  for processes other than the load generator (which measures itself, loadgen.py's Gauges);
* py-spy sampling of a server and its top functions;
* a runner's frame: main (--report or a run), the JSONL file of a run with its meta record and
  the tables printed at its end, a load generator's JSON line, the "Runs not counted" list;
* the common command-line options, JSONL output and number formatting.

What only the closed-loop load runners (echo.py, rpc.py) share is in loadrun.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from loadgen import machine_busy_s, proc_cpu_s, proc_status_kb, schedstat

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: command-line fragments of load generators: a runner waits while one runs
FOREIGN_LOAD = ("shared/bench/client.py", "benchmarks/loadgen.py", "benchmarks/udpgen.py", "txgetty bench")
#: ... and of other runners: a runner waits only for those started before it (the older one goes
#: first, so two runners never wait for each other)
FOREIGN = FOREIGN_LOAD + ("anchors.py", "benchmarks/echo.py", "cron_wheel.py", "benchmarks/scale.py",
                          "benchmarks/backpressure.py", "benchmarks/rpc.py", "benchmarks/slow_handler.py")
_live: list[subprocess.Popen] = []  # processes to stop whatever happens

Log = Callable[[str], None]


def log(msg: str) -> None:
    """Print a time-stamped progress line."""
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


# ----------------------------------------------------------------------------- machine
def busy_cores(interval: float = 0.5) -> float:
    """Return the machine's busy CPU (cores) averaged over interval seconds (/proc/stat)."""
    b0 = machine_busy_s()[0]
    time.sleep(interval)
    return (machine_busy_s()[0] - b0) / interval


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


def _started(pid: int | str) -> tuple[int, int]:
    """Return (start time in clock ticks since boot, pid) of a process ((0, pid) if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19]), int(pid)
    except (OSError, ValueError, IndexError):
        return 0, int(pid)


def foreign_procs() -> list[str]:
    """Return other benchmark processes running on the machine (not this runner's): every load
    generator, and the runners started before this one."""
    mine = ancestors() | {p.pid for p in _live}
    me = _started(os.getpid())
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(p in cmd for p in FOREIGN_LOAD) or (any(p in cmd for p in FOREIGN) and _started(d) < me):
            out.append(f"{d}: {cmd[:100]}")
    return out


def wait_quiet(opts: argparse.Namespace, log: Log) -> None:
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


def noise(opts: argparse.Namespace, rec: dict[str, Any], sides: tuple[str, ...] = ("server", "client")) -> str | None:
    """Return why a run's window was disturbed by other work on the machine, or None.

    Two signs: CPU used by neither server nor client (machine-wide, from /proc/stat), and
    time the server or the load generator spent runnable but waiting for its CPU
    (/proc/PID/schedstat): another task on a pinned CPU shows there even when it is small."""
    other = rec.get("other_cpu_cores")
    if other is not None and other > opts.max_other:
        return f"other_cpu_cores={other} > {opts.max_other}"
    for side in sides:
        wait = rec.get(f"{side}_runq_wait_pct")
        if wait is not None and wait > opts.max_runq_wait:
            return f"{side} waited for its CPU {wait}% of the window > {opts.max_runq_wait}%"
    return None


def measured(opts: argparse.Namespace, name: str, run: Callable[[], dict[str, Any]], log: Log,
             write: Callable[[dict[str, Any]], None], meta: dict[str, Any],
             sides: tuple[str, ...] = ("server", "client")) -> dict[str, Any]:
    """Run one measurement after a quiet-machine wait; repeat it (up to --tries in all) while
    its window was noisy; the last try is kept and flagged.  run() returns the record or
    raises RuntimeError / subprocess.TimeoutExpired (recorded as an error)."""
    rec: dict[str, Any] = {}
    for attempt in range(opts.tries):
        wait_quiet(opts, log)
        try:
            rec = run()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            rec = {"label": name, "error": str(e)}
        rec.update(meta, attempt=attempt)
        if "error" in rec:  # measured again too: a transient failure (a busy machine, a lost server)
            if attempt == opts.tries - 1:
                return rec
            log(f"   {name}: ERROR {rec['error'][:300]}: measuring again")
            write(dict(rec))
            continue
        why = noise(opts, rec, sides)
        if why is None:
            return rec
        if attempt == opts.tries - 1:
            log(f"   {name}: {why} on try {opts.tries} too: kept, flagged noisy")
            rec["noisy"] = why
            return rec
        log(f"   {name}: {why}: discarded, measuring again")
        write(dict(rec, discarded=why))
    return rec


class Window:
    """CPU, run-queue waits and memory of a server (and optionally a client process) over a
    time window, with the machine's other CPU: the same figures as loadgen.py's Gauges, for
    a load generator that does not measure itself (txgetty bench) or no load at all."""

    def __init__(self, server_pid: int, client_pid: int = 0) -> None:
        """Read the counters now."""
        self.spid, self.cpid = server_pid, client_pid
        self.t = time.perf_counter()
        self.mach = machine_busy_s()[0]
        self.srv = proc_cpu_s(server_pid)
        self.ss = schedstat(server_pid)
        self.cli = proc_cpu_s(client_pid) if client_pid else 0.0
        self.cs = schedstat(client_pid) if client_pid else (0, 0)

    def end(self) -> dict[str, Any]:
        """Return the figures since the snapshot (keys as loadgen.py's)."""
        secs = time.perf_counter() - self.t
        mach = machine_busy_s()[0] - self.mach
        srv = proc_cpu_s(self.spid) - self.srv
        run_s, wait_s = schedstat(self.spid)
        out: dict[str, Any] = {
            "seconds": round(secs, 4), "server_cpu_s": round(srv, 3), "server_cpu_pct": round(100 * srv / secs, 2),
            "server_runq_wait_pct": round(100 * (wait_s - self.ss[1]) / 1e9 / secs, 2),
            "server_exec_pct": round(100 * (run_s - self.ss[0]) / 1e9 / secs, 2),
            "server_hwm_kb": proc_status_kb(self.spid, "VmHWM"), "server_rss_kb": proc_status_kb(self.spid, "VmRSS"),
            "machine_busy_cores": round(mach / secs, 3)}
        cli = 0.0
        if self.cpid:
            cli = proc_cpu_s(self.cpid) - self.cli
            wait_c = schedstat(self.cpid)[1] - self.cs[1]
            out.update(client_cpu_s=round(cli, 3), client_cpu_pct=round(100 * cli / secs, 1),
                       client_runq_wait_pct=round(100 * wait_c / 1e9 / secs, 2))
        out["other_cpu_cores"] = round((mach - srv - cli) / secs, 3)
        return out


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a TCP (or UDP) port on 127.0.0.1 that is free now."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def raise_nofile() -> None:
    """Raise this process's fd limit to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def twistd_argv(python: str) -> list[str]:
    """Return the command that runs twistd with python's environment (the twistd beside it)."""
    twistd = os.path.join(os.path.dirname(python), "twistd")
    if os.access(twistd, os.X_OK):
        return [twistd]
    return [python, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]


def versions(python: str) -> dict[str, Any]:
    """Return the versions of Python, Twisted, txgetty, uvloop, autobahn, msgpack, orjson, the
    reactor and the kernel (None for a package the interpreter lacks)."""
    code = ("import json,platform;d={'python':platform.python_version()}\n"
            "for m in ('twisted','txgetty','uvloop','autobahn','msgpack','orjson'):\n"
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


def txgetty_common_args(opts: argparse.Namespace) -> list[str]:
    """Return the twistd txgetty options every benchmark server gets: ``--no-rpc`` when the
    measured code has it (from 65ffde6 on, twistd txgetty also serves RPC on the fixed port
    8091 with a 4-thread pool by default: left out, so that only the packet server is
    measured and concurrent servers do not collide on the port)."""
    base = os.path.join(opts.src or ROOT, "txgetty")
    tap = next(p for p in (os.path.join(base, "tools", "tap.py"), os.path.join(base, "tap.py")) if os.path.exists(p))
    with open(tap) as f:  # txgetty/tap.py before the tools/ layout
        return ["--no-rpc"] if '"no-rpc"' in f.read() else []


def server_env(opts: argparse.Namespace, *extra_path: str) -> dict[str, str] | None:
    """Return the servers' environment: the snapshot's (if any), with extra_path ahead on PYTHONPATH."""
    if not extra_path:
        return opts.env
    env = dict(opts.env or os.environ)
    env["PYTHONPATH"] = os.pathsep.join(list(extra_path) + [p for p in [env.get("PYTHONPATH")] if p])
    return env


# ----------------------------------------------------------------------------- processes
def pinned(argv: list[str], opts: argparse.Namespace, cpu: str) -> list[str]:
    """Return argv under taskset -c cpu when pinning (taskset execs: the pid is the program's)."""
    return ["taskset", "-c", cpu] + argv if opts.pin else argv


def udp_probe(port: int, timeout: float = 0.3) -> bool:
    """Send one datagram to 127.0.0.1:port; return whether it was echoed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.send(b"probe")
        return s.recv(64) == b"probe"
    except OSError:
        return False
    finally:
        s.close()


class Server:
    """One server process, started and ready (its TCP port accepts, or its UDP port echoes)."""

    def __init__(self, name: str, argv: list[str], port: int, opts: argparse.Namespace, *,
                 probe: str = "tcp", env: dict[str, str] | None = None) -> None:
        """Start argv (pinned to --server-cpu) and wait until port answers (probe tcp, udp or none)."""
        self.name = name
        self.port = port
        self.argv = pinned(argv, opts, opts.server_cpu)
        self.log = open(os.path.join(opts.logdir, f"{name}.log"), "ab")
        self.log_start = self.log.tell()
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=opts.logdir, env=env if env is not None else opts.env)
        _live.append(self.proc)
        self.pid = self.proc.pid
        deadline = time.time() + 30
        try:
            while probe != "none":
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {self.proc.returncode} (log: {self.log.name})")
                if probe == "udp":
                    if udp_probe(port):
                        break
                else:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                        break
                    except OSError:
                        pass
                if time.time() > deadline:
                    raise RuntimeError(f"{name} did not answer within 30s (log: {self.log.name})")
                time.sleep(0.05)
            time.sleep(0.3)  # let the probe settle
        except BaseException:
            self.stop()
            raise

    def log_text(self) -> str:
        """Return what the server logged since it started."""
        self.log.flush()
        with open(self.log.name, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def check_alive(self) -> None:
        """Raise RuntimeError if the server exited (or was killed by someone else) meanwhile."""
        rc = self.proc.poll()
        if rc is not None:
            tail = self.log_text().strip().splitlines()[-3:]
            raise RuntimeError(f"{self.name} exited during the run with status {rc} (not stopped by this runner): "
                               f"{' / '.join(tail)[-400:]}")

    def stop(self) -> None:
        """SIGTERM (noted in the server's log, to tell it from a signal someone else sent), then
        SIGKILL after 5 s."""
        if self.proc.poll() is None and not self.log.closed:
            self.log.write(time.strftime("%Y-%m-%dT%H:%M:%S [benchmark runner] sending SIGTERM\n").encode())
            self.log.flush()
        stop_proc(self.proc)
        self.log.close()


def stop_proc(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a process this runner started: SIGTERM, then SIGKILL after grace seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _live:
        _live.remove(proc)


def run_json(argv: list[str], timeout: float, what: str, **kw: Any) -> tuple[dict[str, Any], str]:
    """Run a load generator to its end; return the last JSON line it printed and its stderr.
    Raise RuntimeError ("WHAT rc=N: the end of its stderr") if it failed or printed none."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{what} rc={p.returncode}: {p.stderr.strip()[-600:]}")
    return json.loads(lines[-1]), p.stderr


def spawn(argv: list[str], **kw: Any) -> subprocess.Popen:
    """Start a helper process that stop_all() will stop if the runner ends first."""
    p = subprocess.Popen(argv, **kw)
    _live.append(p)
    return p


def stop_all() -> None:
    """Kill every process this runner started that is still alive."""
    for p in list(_live):
        if p.poll() is None:
            p.kill()
            p.wait()
        _live.remove(p)


def run_main(opts: argparse.Namespace, body: Callable[[argparse.Namespace], None]) -> None:
    """Run body(opts) with SIGTERM/SIGHUP turned into SystemExit, the --commit snapshot made
    and removed, the fd limit raised and every started process stopped on the way out."""
    def on_signal(signum: int, frame: Any) -> None:
        """Turn SIGTERM/SIGHUP into SystemExit, so that the finally clauses stop the processes."""
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    raise_nofile()
    if opts.pin and (os.cpu_count() or 1) < 2:
        log("fewer than 2 CPUs: not pinning")
        opts.pin = False
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    opts.logdir = os.path.join(os.path.dirname(os.path.abspath(opts.out)), "logs")
    os.makedirs(opts.logdir, exist_ok=True)
    opts.src, opts.env = snapshot(opts.commit, opts.python) if opts.commit else (None, None)
    try:
        body(opts)
    finally:
        stop_all()
        if opts.src:
            shutil.rmtree(opts.src, ignore_errors=True)


def main_or_report(opts: argparse.Namespace, body: Callable[[argparse.Namespace], None],
                   report: Callable[[list[str]], str]) -> None:
    """A runner's main: with --report print the tables of those files, else run body(opts)
    under run_main()."""
    if opts.report:
        print(report(opts.report))
        return
    run_main(opts, body)


def record_run(opts: argparse.Namespace, meta: dict[str, Any], body: Callable[[Output], None],
               report: Callable[[list[str]], str]) -> None:
    """Open --out, write the meta record (with meta), run body(out), warn if txgetty's code
    changed meanwhile, close the file and print the tables of this run."""
    out = Output(opts.out)
    try:
        code = out.meta(opts, **meta)
        log(f"results -> {opts.out}")
        body(out)
        out.check_code(opts, code)
    finally:
        out.close()
    print()
    print(report([opts.out]))


# ----------------------------------------------------------------------------- py-spy
def pyspy_bin() -> str | None:
    """Return the py-spy executable ($PYSPY, on PATH, or /tmp/pyspy/bin/py-spy), or None."""
    for c in (os.environ.get("PYSPY"), shutil.which("py-spy"), "/tmp/pyspy/bin/py-spy"):
        if c and os.access(c, os.X_OK):
            return c
    return None


def pyspy_start(pid: int, seconds: float, out: str, opts: argparse.Namespace, rate: int = 100,
                delay: float = 0.0, gil: bool = False, lines: bool = False,
                nonblocking: bool = False) -> subprocess.Popen:
    """Start py-spy sampling pid for seconds after delay seconds (collapsed stacks to out,
    per function, idle samples left out; with gil only the samples of the thread holding the
    GIL: for a mostly idle process, whose waits py-spy does not all recognise as idle; with
    nonblocking without pausing the process for each sample, which then slows it less),
    pinned to the client CPU."""
    exe = pyspy_bin()
    if exe is None:
        raise RuntimeError("py-spy not found: pip install --target /tmp/pyspy py-spy, or set PYSPY")
    argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", str(rate),
            "--format", "raw", "--output", out] + ([] if lines else ["--function"]) + (["--gil"] if gil else []) \
        + (["--nonblocking"] if nonblocking else [])
    if delay:
        argv = ["sh", "-c", f'sleep {delay:.2f}; exec "$@"', "pyspy"] + argv
    return spawn(pinned(argv, opts, opts.client_cpu), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _short(frame: str, lines: bool = False) -> str:
    """'name (/a/b/c/file.py:12)' -> 'name (c/file.py)' (with lines: 'name (c/file.py:12)')."""
    name, _, where = frame.partition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    return f"{name} ({'/'.join(path.split('/')[-2:])}{':' + line if lines else ''})"


def _package(frame: str) -> str:
    """Return the package of a py-spy frame: txgetty, twisted, autobahn, ..., stdlib or the file."""
    path = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]  # py-spy: relative to sys.path
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    if "/txgetty/" in path:
        return "txgetty"
    if "/" in path and not path.startswith("/"):
        return path.split("/", 1)[0]
    return "stdlib/other"


def pyspy_top(path: str, n: int = 15, spine: float = 90.0, lines: bool = False) -> dict[str, Any]:
    """Return the samples, the self share by package, the top-n functions by self share, and
    the top-n by inclusive share below spine % (the event loop's own frames, in nearly every
    sample, are left out) of a py-spy raw (collapsed stacks) file."""
    self_c: Counter = Counter()
    incl: Counter = Counter()
    pkg: Counter = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            c = int(count)
            raw = [fr for fr in stack.split(";") if fr and not fr.startswith(("process ", "thread "))]
            if not raw:
                continue
            total += c
            pkg[_package(raw[-1])] += c
            frames = [_short(fr, lines) for fr in raw]
            self_c[frames[-1]] += c
            for fr in set(frames):
                incl[fr] += c
    pct = (lambda c: round(100 * c / total, 1)) if total else (lambda c: 0.0)
    return {"samples": total, "self": [[k, pct(v)] for k, v in self_c.most_common(n)],
            "inclusive": [[k, pct(v)] for k, v in incl.most_common() if pct(v) < spine][:n],
            "packages": [[k, pct(v)] for k, v in pkg.most_common()]}


def profile_table(prof: dict[str, Any], title: str) -> str:
    """Return Markdown tables of a pyspy_top() result."""
    out = [f"\n##### py-spy: {title} ({prof['samples']:,} {prof.get('kind', 'non-idle')} samples)\n"]
    if prof.get("packages"):
        out.append("Self time by package: " + ", ".join(f"{k} {v} %" for k, v in prof["packages"][:8]) + "\n")
    out += ["| self % | function (self) | | incl. % | function (inclusive, below the event loop's frames) |",
            "|--:|---|---|--:|---|"]
    for a, b in zip(prof["self"], prof["inclusive"]):
        out.append(f"| {a[1]} | `{a[0]}` | | {b[1]} | `{b[0]}` |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- output
class Output:
    """The JSONL file of a run: write(record) appends one time-stamped line."""

    def __init__(self, path: str) -> None:
        """Open path for appending."""
        self.path = path
        self.f = open(path, "a")

    def write(self, rec: dict[str, Any]) -> None:
        """Append one record."""
        rec["ts"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()

    def meta(self, opts: argparse.Namespace, **extra: Any) -> dict[str, Any]:
        """Write the run's meta record (argv, pinning, versions, code) and return the code version."""
        code = code_version(opts.src)
        self.write({"type": "meta", "argv": sys.argv, "pin": opts.pin, "server_cpu": opts.server_cpu,
                    "client_cpu": opts.client_cpu, **versions(opts.python), **code, **extra})
        return code

    def check_code(self, opts: argparse.Namespace, code: dict[str, Any]) -> None:
        """Warn (and record) if txgetty's code changed since code was taken."""
        end = code_version(opts.src)
        if end["txgetty_digest"] != code["txgetty_digest"]:
            log(f"WARNING: txgetty's code changed during the run ({code} -> {end}): the runs mixed versions")
            self.write({"type": "warning", "code_changed": True, "start": code, "end": end})

    def close(self) -> None:
        """Close the file."""
        self.f.close()


def read_jsonl(files: list[str]) -> list[dict[str, Any]]:
    """Return the records of JSONL files."""
    recs = []
    for path in files:
        with open(path) as f:
            recs += [json.loads(ln) for ln in f if ln.strip()]
    return recs


def meta_line(recs: list[dict[str, Any]], what: str = "") -> str:
    """Return the 'Measured ... on ...' line of the last meta record."""
    metas = [r for r in recs if r.get("type") == "meta"]
    if not metas:
        return ""
    m = metas[-1]
    dirty = ", modified" if m.get("txgetty_dirty") else ""
    pin = f"server pinned to CPU {m['server_cpu']}, load generator to CPU {m['client_cpu']}" if m.get("pin") \
        else "not pinned"
    line = (f"Measured {m['ts'][:10]} on {m.get('cpus')} CPUs ({m.get('cpu_model')}), Linux {m.get('kernel')}, "
            f"Python {m.get('python')}, Twisted {m.get('twisted')} ({m.get('reactor')}), "
            f"txgetty {m.get('txgetty')} (commit {m.get('git_commit')}{dirty})"
            + "".join(f", {k} {m[k]}" for k in ("msgpack", "orjson") if m.get(k))
            + f"; {pin}{what}.")
    if any(r.get("code_changed") for r in recs):
        line += "\n\n**WARNING: txgetty's code changed during the run; the runs mixed versions.**"
    return line


def not_counted(recs: list[dict[str, Any]], types: tuple[str, ...], name: Callable[[dict[str, Any]], str]) -> list[str]:
    """Return the "Runs not counted" lines of a report (none if every run counted): the
    records of these types that failed or were discarded as noisy, named by name(record)."""
    bad = [r for r in recs if r.get("type") in types and ("error" in r or r.get("discarded"))]
    if not bad:
        return []
    out = ["\nRuns not counted:\n"]
    for r in bad:
        d = r.get("discarded")
        why = r.get("error") or (d if isinstance(d, str) else f"other_cpu_cores={r.get('other_cpu_cores')}")
        why += "" if "error" in r else " (machine not quiet)"
        out.append(f"- {name(r)} rep {r.get('rep')}: {why}")
    return out


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


def f2(x: float | None) -> str:
    """Format with two decimals."""
    return "-" if x is None else f"{x:,.2f}"


def add_common_args(ap: argparse.ArgumentParser, out_prefix: str) -> None:
    """Add the options every runner shares (interpreter, --commit, pinning, noise checks, --out)."""
    ap.add_argument("--python", default=sys.executable, help="interpreter for servers and load generators")
    ap.add_argument("--commit", metavar="REV",
                    help="measure txgetty as in this git commit (extracted to a temporary folder and put "
                         "ahead of the installed one) instead of the working tree")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin with taskset")
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--max-other", type=float, default=0.10,
                    help="discard and repeat a run whose window saw more other CPU than this (cores)")
    ap.add_argument("--max-runq-wait", type=float, default=2.0,
                    help="discard and repeat a run in which the server or the load generator waited for "
                         "its CPU more than this %% of the window (default 2)")
    ap.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine")
    ap.add_argument("--quiet-for", type=float, default=2.0,
                    help="seconds the machine must have been quiet before a run (default 2)")
    ap.add_argument("--tries", type=int, default=4,
                    help="measurements of a run before a noisy one is kept and flagged (default 4)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", time.strftime(f"{out_prefix}-%Y%m%d-%H%M%S.jsonl")))
    ap.add_argument("--report", nargs="+", metavar="JSONL", help="only print the tables of these files")
