"""Workers on one port (issue 14): what N worker processes behind one supervisor give.

Measured, each in fresh processes of ``twistd -n txgetty --workers N`` (N = 1: one process,
no supervisor; serving the tests' echo ``--app`` and ``Work`` ``--service`` of
tests/support/workerapps.py, so the figures are of the code the tests check):

* cpu     an RPC method burning about 200 us of pure-Python CPU per call (``Work.burn``; the
          loop count is calibrated once on this machine and the same for every run), 50
          connections x 8 calls in flight (loadgen.py --proto rpc): calls/s with 1 and 2
          workers, the ratio (target: 2 workers >= 1.7 x 1 worker), and each worker's and the
          supervisor's CPU over the window;
          Beside it, the machine's own scaling: 1 and 2 processes running the same loop flat
          out, without sockets (``machine``), the most the ratio can be on this machine;
* echo    getty's hello framing echo, 50 connections x 32 in flight, 915-byte payloads
          (loadgen.py --proto frame --byteorder little): msg/s with 1 and 2 workers (the load
          generator shares the two cores, so do not expect 2x);
          ``--workers 1`` is one process that binds its own sockets (no supervisor), so the
          ratio includes the supervisor's cost;
* conn    new connections per second through the supervisor (loadgen.py --mode connrate:
          connect, one echo, close), with 1 and 2 workers: the supervisor accepts every
          connection and hands it over, so this is where its cost shows;
* spread  how 50 connections open at once fall over the workers: through the supervisor
          (which deals them out) for 2 and 4 workers, against SO_REUSEPORT listeners (the
          kernel's hash, as per-worker sockets would share them), the fraction of trials in
          which every worker got its share within +-30 %;
* queue   connections queued on a SO_REUSEPORT listener whose process dies: reset by the
          kernel, unless another process holds the socket (as the supervisor does).

The machine is shared: the runner waits for a quiet machine before each measurement (as the
other runners, benchlib.wait_quiet; --no-wait to skip) and prints the machine's other CPU over
each window; figures taken while others run are provisional.

  python benchmarks/workers.py                 # everything, 5 s windows
  python benchmarks/workers.py --only cpu --seconds 10
  python benchmarks/workers.py --seconds 1 --no-wait --trials 20   # a quick check that it works
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import benchlib  # noqa: E402

from tests.support.workerapps import burnLoops, pidsOf, queuedThroughClose, reuseportSpread  # noqa: E402

LOCAL = "tcp:0:interface=127.0.0.1"


class Supervisor:
    """
    C{twistd -n txgetty --workers N} in its own process group, serving the test
    echo (C{--app}) and C{Work} (C{--service}) of tests/support/workerapps.py
    on 127.0.0.1 port 0 (N = 1: one process, no supervisor).
    """

    def __init__(self, workers: int, listeners: dict[str, list[str]], options: dict[str, Any],
                 log: str) -> None:
        self.workers = workers
        self.logfile = open(log, "w")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
                   PYTHONUNBUFFERED="1", TXGETTY_BURN_ROUNDS=str(options.get("burnRounds", 1000)))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        argv = ["/usr/bin/setsid", twistd, "-n", "--pidfile=", "--logfile=-", "txgetty", "--workers", str(workers),
                "--listen", LOCAL, "--rpc-listen", LOCAL, "--app", "tests.support.workerapps:newSession",
                "--service", "Work=tests.support.workerapps:TapWork"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.info = self._ready(60.0)

    def _ready(self, timeout: float) -> dict[str, Any]:
        """Read the log until every worker is ready (N = 1: both servers listen)."""
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        ports: dict[str, int] = {}
        pids: list[int] = []
        ready = 0
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.logfile.write(line)
            for group, pattern in (("echo", r"txgetty: listening on tcp:127\.0\.0\.1:(\d+)"),
                                   ("rpc", r"txgetty rpc: listening on tcp:127\.0\.0\.1:(\d+)")):
                found = re.search(pattern, line)
                if found:
                    ports.setdefault(group, int(found.group(1)))
            started = re.search(r"started worker \d+ \(pid (\d+)\)", line)
            if started:
                pids.append(int(started.group(1)))
            ready += bool(re.search(r"is ready \(slot \d+\)", line))
            if len(ports) == 2 and (ready >= self.workers if self.workers > 1 else True):
                return {"ports": ports, "pids": pids if self.workers > 1 else [self.proc.pid]}
        self.stop()
        raise RuntimeError(f"twistd txgetty --workers {self.workers} did not get ready; see {self.logfile.name}")

    def port(self, group: str) -> int:
        return int(self.info["ports"][group])

    @property
    def pids(self) -> list[int]:
        return list(self.info["pids"])

    def stop(self) -> None:
        """SIGTERM (the workers drain), then kill the process group if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, _ = self.proc.communicate(timeout=30)
                self.logfile.write(out or "")
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logfile.close()


def loadgen(port: int, opts: argparse.Namespace, *args: str) -> dict[str, Any]:
    """Run loadgen.py against the port; return its JSON line."""
    argv = [sys.executable, os.path.join(HERE, "loadgen.py"), "--port", str(port), "--seconds", str(opts.seconds),
            "--warmup", str(opts.warmup), *args]
    rec, _ = benchlib.run_json(argv, timeout=opts.seconds + opts.warmup + 60, what="loadgen")
    return rec


def measure(opts: argparse.Namespace, workers: int, listeners: dict[str, list[str]], group: str,
            args: list[str], options: dict[str, Any], name: str) -> dict[str, Any]:
    """Start a supervisor, run the load generator, read every process's CPU over the window."""
    log = os.path.join(opts.logdir, f"workers-{name}-{workers}.log")
    if not opts.no_wait:
        benchlib.wait_quiet(opts, benchlib.log)
    supervisor = Supervisor(workers, listeners, options, log)
    try:
        port = supervisor.port(group)
        pids = [supervisor.proc.pid, *supervisor.pids] if workers > 1 else supervisor.pids
        before = [benchlib.proc_cpu_s(pid) for pid in pids]
        machine = benchlib.machine_busy_s()[0]
        started = time.perf_counter()
        rec = loadgen(port, opts, *args)
        seconds = time.perf_counter() - started
        cpu = [benchlib.proc_cpu_s(pid) - b for pid, b in zip(pids, before)]
        if workers == 1:
            cpu.insert(0, 0.0)  # no supervisor: the one process is the "worker"
        busy = benchlib.machine_busy_s()[0] - machine
        client = rec.get("client_cpu_s", 0.0) * seconds / max(rec.get("seconds", seconds), 1e-9)
    finally:
        supervisor.stop()
    return {"name": name, "workers": workers, **{k: rec.get(k) for k in ("msgs_per_s", "conns_per_s", "p50_us",
                                                                          "p99_us", "loop", "client_cpu_pct")},
            "supervisor_cpu_pct": round(100 * cpu[0] / seconds, 1) if workers > 1 else None,
            "worker_cpu_pct": [round(100 * c / seconds, 1) for c in cpu[1:]],
            "other_cpu_cores": round(max(0.0, busy - sum(cpu) - client) / seconds, 2)}


def throughput(opts: argparse.Namespace, out: list[dict[str, Any]]) -> None:
    """The cpu, echo and conn figures."""
    if not opts.no_wait:
        benchlib.wait_quiet(opts, benchlib.log)
    rounds = burnLoops(200e-6)
    started = time.perf_counter()
    from tests.support.workerapps import _burn

    for _ in range(200):
        _burn(rounds)
    perCall = (time.perf_counter() - started) / 200
    print(f"Work.burn: {rounds} rounds, {perCall * 1e6:.0f} us per call on this machine (target about 200 us)")
    if not opts.only or "cpu" in opts.only:
        machine(opts, out, rounds)
    runs = {
        "cpu": ({"rpc": [LOCAL]}, "rpc", ["--proto", "rpc", "--rpc-method", "Work.burn", "--conns", "50",
                                          "--window", "8", "--size", "64"]),
        "echo": ({"echo": [LOCAL]}, "echo", ["--proto", "frame", "--byteorder", "little", "--conns", "50",
                                             "--window", "32"]),
        "conn": ({"echo": [LOCAL]}, "echo", ["--mode", "connrate", "--proto", "frame", "--byteorder", "little",
                                             "--parallel", "16"]),
    }
    for name, (listeners, group, args) in runs.items():
        if opts.only and name not in opts.only:
            continue
        for workers in opts.workers:
            rec = measure(opts, workers, listeners, group, args, {"burnRounds": rounds}, name)
            rec["burn_us"] = round(perCall * 1e6) if name == "cpu" else None
            out.append(rec)
            rate = rec["msgs_per_s"] or rec["conns_per_s"] or 0
            what = "1 process (no supervisor)" if workers == 1 else f"{workers} workers"
            print(f"{name:5} {what}: {rate:>10,.0f}/s  {'process' if workers == 1 else 'workers'}' CPU "
                  f"{rec['worker_cpu_pct']} %  supervisor {rec['supervisor_cpu_pct'] if workers > 1 else '-'} %  "
                  f"load generator {rec['client_cpu_pct']} % ({rec['loop']})  other load {rec['other_cpu_cores']} cores")


def _burnFor(seconds: float, rounds: int) -> int:
    """Run Work.burn's loop for about C{seconds}; return how many calls it made."""
    from tests.support.workerapps import _burn

    end, calls = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        _burn(rounds)
        calls += 1
    return calls


def machine(opts: argparse.Namespace, out: list[dict[str, Any]], rounds: int) -> None:
    """The machine's own scaling: 1 and 2 processes running the burn loop flat out (no
    sockets, no load generator): the most the cpu figure's ratio can be here."""
    import multiprocessing

    if not opts.no_wait:
        benchlib.wait_quiet(opts, benchlib.log)
    rates = {}
    for procs in (1, 2):
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            calls = pool.starmap(_burnFor, [(opts.seconds, rounds)] * procs)
        rates[procs] = sum(calls) / opts.seconds
    rec = {"name": "machine", "one_process_per_s": round(rates[1]), "two_processes_per_s": round(rates[2]),
           "ratio": round(rates[2] / rates[1], 2)}
    out.append(rec)
    print(f"machine: the burn loop alone, 1 process {rates[1]:,.0f} calls/s, 2 processes {rates[2]:,.0f} calls/s: "
          f"{rec['ratio']:.2f} x (the most the cpu ratio can be on this machine, without the load generator)")


def spread(opts: argparse.Namespace, out: list[dict[str, Any]]) -> None:
    """The spread figures: through the supervisor, and with SO_REUSEPORT listeners."""
    for workers in (2, 4):
        share = 50 / workers
        supervisor = Supervisor(workers, {"echo": [LOCAL]}, {}, os.path.join(opts.logdir, f"workers-spread-{workers}.log"))
        try:
            within, worst = 0, []
            for _ in range(opts.trials):
                counts = Counter(pidsOf(supervisor.port("echo"), 50))
                values = [counts.get(pid, 0) for pid in supervisor.pids]
                within += all(abs(v - share) <= 0.3 * share for v in values)
                worst.append(max(values) - min(values))
        finally:
            supervisor.stop()
        kernel, kernelWorst = 0, []
        for _ in range(opts.trials * 5):
            values = reuseportSpread(workers, 50)
            kernel += all(abs(v - share) <= 0.3 * share for v in values)
            kernelWorst.append(max(values) - min(values))
        rec = {"name": "spread", "workers": workers, "trials": opts.trials,
               "supervisor_within_30pct": round(within / opts.trials, 3), "supervisor_max_gap": max(worst),
               "reuseport_trials": opts.trials * 5,
               "reuseport_within_30pct": round(kernel / (opts.trials * 5), 3), "reuseport_max_gap": max(kernelWorst)}
        out.append(rec)
        print(f"spread {workers} workers, 50 connections: every worker within +-30 %: supervisor "
              f"{100 * rec['supervisor_within_30pct']:.1f} % of {opts.trials} trials (largest gap "
              f"{rec['supervisor_max_gap']}), SO_REUSEPORT {100 * rec['reuseport_within_30pct']:.1f} % of "
              f"{rec['reuseport_trials']} (largest gap {rec['reuseport_max_gap']})")


def queue(opts: argparse.Namespace, out: list[dict[str, Any]]) -> None:
    """The queue figures."""
    for held in (False, True):
        outcome = queuedThroughClose(held, 40)
        out.append({"name": "queue", "held": held, **outcome})
        print(f"queue: a SO_REUSEPORT listener closed with connections queued, socket "
              f"{'held by another process' if held else 'not held'}: {outcome['reset']} of {outcome['total']} "
              f"connections reset, {outcome['acceptedLater']} accepted later")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured window of each load run")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--workers", type=lambda t: [int(x) for x in t.split(",")], default=[1, 2],
                    help="worker counts to measure (default 0,1,2; 0: the same services in one process "
                         "without a supervisor, the baseline)")
    ap.add_argument("--only", type=lambda t: t.split(","), default=None,
                    help="comma-separated parts: cpu, echo, conn, spread, queue")
    ap.add_argument("--trials", type=int, default=40, help="spread trials through the supervisor (x5 for "
                                                           "SO_REUSEPORT)")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    ap.add_argument("--max-wait", type=float, default=600.0)
    ap.add_argument("--quiet-for", type=float, default=2.0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "workers.jsonl"))
    opts = ap.parse_args()
    # SIGTERM / SIGHUP end the run through the finally clauses (supervisors stopped).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGHUP, lambda signum, frame: sys.exit(128 + signum))
    benchlib.raise_nofile()
    os.makedirs(os.path.dirname(opts.out), exist_ok=True)
    opts.logdir = os.path.join(os.path.dirname(opts.out), "logs")
    os.makedirs(opts.logdir, exist_ok=True)
    out: list[dict[str, Any]] = []
    try:
        if not opts.only or {"cpu", "echo", "conn"} & set(opts.only):
            throughput(opts, out)
        if not opts.only or "spread" in opts.only:
            spread(opts, out)
        if not opts.only or "queue" in opts.only:
            queue(opts, out)
    finally:
        with open(opts.out, "a") as f:
            for rec in out:
                f.write(json.dumps(dict(rec, time=time.time())) + "\n")
    cpu = {r["workers"]: r["msgs_per_s"] for r in out if r["name"] == "cpu"}
    if 1 in cpu and 2 in cpu and cpu[1]:
        ratio = cpu[2] / cpu[1]
        print(f"\nCPU-bound RPC, 2 workers / 1 worker: {ratio:.2f} x (target >= 1.7: "
              f"{'met' if ratio >= 1.7 else 'NOT met'}); {cpu[1]:,.0f} -> {cpu[2]:,.0f} calls/s")
    print(f"results appended to {opts.out}")


if __name__ == "__main__":
    main()
