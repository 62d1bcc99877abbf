#!/usr/bin/env python3
"""onCron driving at scale: txgetty's shared TimerWheel versus one LoopingCall per session.

Each variant runs in its own fresh process on the real reactor (EPollReactor), with
--sessions open txgetty Sessions (on StringTransports, no sockets) whose listener's
onCron increments a counter, every --period seconds:

  wheel        Session(clock=reactor, wheel=TimerWheel(reactor, tick), config=
               SessionConfig(cronPeriod=period)): the sessions' own cron, every session on
               one shared wheel (one reactor timer per tick)
  loopingcall  the same sessions with their wheel replaced by an inert one, each with a
               twisted.internet.task.LoopingCall(period, listener.onCron, session) (10,000
               reactor DelayedCalls in the heap)
  none         the same sessions and no cron at all: the idle cost of the process (baseline)

The sessions are started spread evenly over one period (as connections arrive over time;
--burst starts them all at once).  After --warmup seconds the process measures --seconds
of wall clock: its CPU (utime+stime from getrusage) as % of one core, CPU µs per onCron
call, onCron calls per second (to check that every session really was called once per
period), and peak RSS (ru_maxrss).  Variants are interleaved over --reps repetitions;
medians are reported.  By default each child is pinned to CPU 1 (taskset; --no-pin).

  python benchmarks/cron_wheel.py                    # 10,000 sessions, 1 s period, 10 s x 3
  python benchmarks/cron_wheel.py --sessions 50000 --seconds 20 --reps 1
  python benchmarks/cron_wheel.py --commit HEAD      # a fixed commit, not the work tree
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("wheel", "loopingcall", "none")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- child
class _InertCall:
    """An IDelayedCall that never runs (what the inert wheel hands out)."""

    __slots__ = ("_active",)

    def __init__(self) -> None:
        """A pending call."""
        self._active = True

    def active(self) -> bool:
        """Return whether the call was not cancelled."""
        return self._active

    def cancel(self) -> None:
        """Forget the call."""
        self._active = False

    def getTime(self) -> float:
        """Return infinity: the call is never due."""
        return float("inf")


class InertWheel:
    """An ITimerWheel that schedules nothing: the sessions' own cron and timeouts never run.

    (A real TimerWheel with a huge cronPeriod would still turn every tick while calls are
    pending, so it would not be a wheel-less baseline.)"""

    tick = 0.1

    def __init__(self, clock: Any) -> None:
        """Keep the clock for seconds()."""
        self._clock = clock

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> _InertCall:
        """Return a call that never runs."""
        return _InertCall()

    def seconds(self) -> float:
        """Return the clock's time."""
        return self._clock.seconds()


def machine_busy_s() -> float:
    """Return the busy CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def cpu_s() -> float:
    """Return this process's user+system CPU seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def runq_wait_ns() -> int:
    """Return the ns this process waited on a run queue for its CPU (/proc/self/schedstat)."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def rss_kb() -> int:
    """Return this process's current RSS in kB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(o: argparse.Namespace) -> dict[str, Any]:
    """Run one variant in this process on the real reactor and return its measurements."""
    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall
    from twisted.internet.testing import StringTransport

    from txgetty.codec import HelloCodec
    from txgetty.config import SessionConfig
    from txgetty.handlers import EventListener
    from txgetty.session import Session, SessionOwner
    from txgetty.wheel import TimerWheel

    class CountingListener(EventListener):
        """onCron counts its calls."""

        calls = 0

        def onCron(self, session: Any) -> None:
            """Count one call."""
            CountingListener.calls += 1

    listener = CountingListener()
    codec = HelloCodec()

    class Owner(SessionOwner):
        """Gives every session the counting listener and the hello codec."""

        def configureSession(self, session: Session) -> None:
            """Set codec and listener."""
            session.codec = codec
            session.listener = listener

    owner = Owner()
    if o.child == "wheel":
        wheel: Any = TimerWheel(reactor, o.tick)
        config = SessionConfig(cronPeriod=o.period)
    else:
        wheel = InertWheel(reactor)
        config = SessionConfig(cronPeriod=1e9)
    sessions: list[Session] = []
    loops: list[Any] = []

    def start(n: int) -> None:
        """Open n sessions (and their LoopingCalls in that variant)."""
        for _ in range(n):
            s = Session(clock=reactor, wheel=wheel, config=config, owner=owner)
            s.makeConnection(StringTransport())
            sessions.append(s)
            if o.child == "loopingcall":
                lc = LoopingCall(listener.onCron, s)
                lc.start(o.period, now=False)
                loops.append(lc)

    rss0 = rss_kb()
    t_setup = time.perf_counter()
    if o.burst:
        start(o.sessions)
    else:  # spread over one period, in batches every 10 ms
        batches = max(1, int(o.period / 0.01))
        per, extra = divmod(o.sessions, batches)
        for b in range(batches):
            reactor.callLater(b * o.period / batches, start, per + (1 if b < extra else 0))
    res: dict[str, Any] = {}

    def measure_start() -> None:
        """Snapshot the counters at the start of the window."""
        res["open"] = sum(1 for s in sessions if s.state == "OPEN")
        res["setup_s"] = round(time.perf_counter() - t_setup, 3)
        res["c0"], res["t0"], res["m0"], res["n0"] = cpu_s(), time.perf_counter(), machine_busy_s(), listener.calls
        res["w0"] = runq_wait_ns()

    def measure_end() -> None:
        """Compute the window's figures and stop the reactor."""
        cpu, wall = cpu_s() - res.pop("c0"), time.perf_counter() - res.pop("t0")
        mach = machine_busy_s() - res.pop("m0")
        calls = listener.calls - res.pop("n0")
        wait = runq_wait_ns() - res.pop("w0")
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res.update(
            variant=o.child, sessions=o.sessions, period_s=o.period, tick_s=o.tick if o.child == "wheel" else None,
            spread=not o.burst, seconds=round(wall, 3), cpu_s=round(cpu, 4),
            cpu_pct=round(100 * cpu / wall, 2), calls=calls, calls_per_s=round(calls / wall, 1),
            us_per_call=round(1e6 * cpu / calls, 3) if calls else None,
            expected_calls_per_s=round(o.sessions / o.period, 1),
            peak_rss_mb=round(ru.ru_maxrss / 1024, 1), rss_before_sessions_mb=round(rss0 / 1024, 1),
            rss_mb=round(rss_kb() / 1024, 1), other_cpu_cores=round((mach - cpu) / wall, 3),
            runq_wait_pct=round(100 * wait / 1e9 / wall, 2),
            reactor=type(reactor).__name__, pending_reactor_calls=len(reactor.getDelayedCalls()))
        reactor.stop()

    reactor.callLater(o.warmup, measure_start)
    reactor.callLater(o.warmup + o.seconds, measure_end)
    reactor.run()
    return res


# ----------------------------------------------------------------------------- parent
def run_child(o: argparse.Namespace, variant: str) -> dict[str, Any]:
    """Run one variant in a fresh process (pinned if asked); return its JSON record."""
    argv = [o.python, os.path.abspath(__file__), "--child", variant, "--sessions", str(o.sessions),
            "--period", str(o.period), "--tick", str(o.tick), "--seconds", str(o.seconds),
            "--warmup", str(o.warmup)] + (["--burst"] if o.burst else [])
    if o.pin:
        argv = ["taskset", "-c", o.cpu] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=o.seconds + o.warmup + 120, env=o.env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        raise RuntimeError(f"{variant}: rc={p.returncode}: {p.stderr.strip()[-800:]}")
    return json.loads(lines[-1])


def med(xs: list[Any]) -> Any:
    """Return the median of the values that are not None."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report(recs: list[dict[str, Any]]) -> str:
    """Return the Markdown table (medians per variant) and the verdict."""
    ok = [r for r in recs if r.get("variant") and not r.get("discarded")]
    meta = [r for r in recs if r.get("type") == "meta"]
    by: dict[str, list] = {}
    for r in ok:
        by.setdefault(r["variant"], []).append(r)
    if not by:
        return "no results"
    r0 = ok[0]
    n = max(len(v) for v in by.values())
    code = f"txgetty commit {meta[-1].get('git_commit')}{' (modified)' if meta[-1].get('txgetty_dirty') else ''}, " \
        if meta else ""
    out = [f"#### onCron at {r0['sessions']:,} sessions, period {r0['period_s']:g} s "
           f"({'started spread over one period' if r0['spread'] else 'all started at once'}; "
           f"{code}median of {n} runs of {r0['seconds']:.0f} s, one fresh process each, {r0.get('reactor')})\n",
           "| variant | CPU % of one core | min-max CPU % | µs CPU per onCron | onCron calls/s (expected) "
           "| peak RSS MB | note |",
           "|---|--:|--:|--:|--:|--:|---|"]
    for v in [x for x in VARIANTS if x in by]:
        rs = by[v]
        pcts = [r["cpu_pct"] for r in rs]
        desc = {"wheel": f"TimerWheel (tick {r0.get('tick_s') or rs[0].get('tick_s')} s)",
                "loopingcall": "LoopingCall per session", "none": "no cron (baseline)"}[v]
        note = "NOISY run kept" if any(r.get("noisy") for r in rs) else ""
        us = med([r["us_per_call"] for r in rs])
        expected = "-" if v == "none" else f"{rs[0]['expected_calls_per_s']:,.0f}"
        out.append(f"| {v}: {desc} | {med(pcts):.2f} | {min(pcts):.2f}-{max(pcts):.2f} | "
                   f"{'-' if us is None else f'{us:.2f}'} | {med([r['calls_per_s'] for r in rs]):,.0f} "
                   f"({expected}) | {med([r['peak_rss_mb'] for r in rs]):.1f} | {note} |")
    if "wheel" in by and "loopingcall" in by:
        w = med([r["cpu_pct"] for r in by["wheel"]])
        lc = med([r["cpu_pct"] for r in by["loopingcall"]])
        wu = med([r["us_per_call"] for r in by["wheel"]])
        lu = med([r["us_per_call"] for r in by["loopingcall"]])
        cheaper = "the TimerWheel" if wu <= lu else "a LoopingCall per session"
        out.append(f"\nVerdict: {cheaper} is cheaper per onCron call: {wu:.2f} µs (wheel) vs {lu:.2f} µs "
                   f"(LoopingCall), {max(wu, lu) / min(wu, lu):.2f}x; CPU of one core {w:.2f} % vs {lc:.2f} % "
                   f"({max(w, lc) / min(w, lc):.2f}x).")
        if "none" in by:
            base = med([r["cpu_pct"] for r in by["none"]])
            out.append(f"The no-cron baseline uses {base:.2f} % of a core.")
        for v in ("wheel", "loopingcall"):
            rate = med([r["calls_per_s"] for r in by[v]])
            exp = by[v][0]["expected_calls_per_s"]
            if abs(rate - exp) > 0.02 * exp:
                out.append(f"NOTE: {v} made {rate:,.0f} onCron calls/s, {100 * (rate / exp - 1):+.1f} % off the "
                           f"{exp:,.0f} expected (effective period {by[v][0]['sessions'] / rate:.3f} s)"
                           + (": the wheel rounds each next cron up to the first tick after a full period "
                              "from the tick that ran it, so the period is about cronPeriod + one tick."
                              if v == "wheel" else "."))
    if any(r.get("code_changed") for r in recs):
        out.append("\n**WARNING: txgetty's code changed during the run; the runs mixed versions.**")
    disc = [r for r in recs if r.get("discarded")]
    if disc:
        out.append("\nRuns not counted: " + "; ".join(
            f"{r['variant']}: {r['discarded']}" for r in disc))
    return "\n".join(out)


def parent(o: argparse.Namespace) -> None:
    """Run every variant --reps times (interleaved, quiet machine first) and print the table."""
    from benchlib import snapshot

    variants = o.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    if o.pin and (os.cpu_count() or 1) < 2:
        o.pin = False
    os.makedirs(os.path.dirname(os.path.abspath(o.out)), exist_ok=True)

    def log(msg: str) -> None:
        """Print a time-stamped progress line."""
        print(time.strftime("%H:%M:%S ") + msg, flush=True)

    o.src, o.env = snapshot(o.commit, o.python) if o.commit else (None, None)
    try:
        run_all(o, variants, log)
    finally:
        if o.src:
            shutil.rmtree(o.src, ignore_errors=True)


def run_all(o: argparse.Namespace, variants: list[str], log: Any) -> None:
    """Run the variants --reps times, interleaved, and print the table."""
    from benchlib import code_version, wait_quiet  # the same checks as the echo runner

    recs: list[dict[str, Any]] = []
    code = code_version(o.src)
    with open(o.out, "a") as f:
        log(f"results -> {o.out}")
        meta = {"type": "meta", "argv": sys.argv, **code}
        f.write(json.dumps(meta) + "\n")
        recs.append(meta)
        for rep in range(o.reps):
            for v in (variants if rep % 2 == 0 else variants[::-1]):
                for attempt in range(o.tries):
                    wait_quiet(o, log)
                    rec = run_child(o, v)
                    rec.update(rep=rep, attempt=attempt, pin=o.pin,
                               ts=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                    why = None
                    if rec["other_cpu_cores"] > o.max_other:
                        why = f"other_cpu_cores={rec['other_cpu_cores']} > {o.max_other}"
                    elif rec["runq_wait_pct"] > o.max_runq_wait:
                        why = f"waited for its CPU {rec['runq_wait_pct']}% of the window > {o.max_runq_wait}%"
                    if why is None or attempt == o.tries - 1:
                        rec["noisy"] = why
                        break
                    log(f"   {v}: {why}: measuring again")
                    rec["discarded"] = why
                    recs.append(rec)
                    f.write(json.dumps(rec) + "\n")
                recs.append(rec)
                f.write(json.dumps(rec) + "\n")
                f.flush()
                log(f"[{rep}] {v:12s} cpu={rec['cpu_pct']:6.2f}% {rec['us_per_call'] or 0:7.2f} us/call "
                    f"calls/s={rec['calls_per_s']:,.0f} open={rec['open']} peak={rec['peak_rss_mb']}MB "
                    f"other={rec['other_cpu_cores']} runq-wait={rec['runq_wait_pct']}%")
        end = code_version(o.src)
        if end["txgetty_digest"] != code["txgetty_digest"]:
            log(f"WARNING: txgetty's code changed during the run ({code} -> {end}): the runs mixed versions")
            f.write(json.dumps({"type": "warning", "code_changed": True, "start": code, "end": end}) + "\n")
            recs.append({"code_changed": True})
    print()
    print(report(recs))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--period", type=float, default=1.0, help="cronPeriod, seconds (default 1)")
    ap.add_argument("--tick", type=float, default=0.1, help="the wheel's tick, seconds (default 0.1)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window (default 10)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before it (default 3)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--burst", action="store_true", help="start all sessions at once, not spread over a period")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--commit", metavar="REV",
                    help="measure txgetty as in this git commit (extracted to a temporary folder) "
                         "instead of the working tree")
    ap.add_argument("--no-pin", dest="pin", action="store_false")
    ap.add_argument("--cpu", default="1", help="CPU to pin the children to (default 1)")
    ap.add_argument("--max-other", type=float, default=0.10)
    ap.add_argument("--max-runq-wait", type=float, default=2.0,
                    help="repeat a run in which the process waited for its CPU more than this %% of the window")
    ap.add_argument("--max-wait", type=float, default=600)
    ap.add_argument("--quiet-for", type=float, default=2.0, help="seconds of quiet machine before each run")
    ap.add_argument("--tries", type=int, default=4, help="measurements before a noisy run is kept and flagged")
    ap.add_argument("--out", default=os.path.join(HERE, "results", time.strftime("cron-%Y%m%d-%H%M%S.jsonl")))
    ap.add_argument("--report", nargs="+", metavar="JSONL", help="only print the table of these files")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parent (runs the children and reports) or child (one variant, prints a JSON line)."""
    o = parse_args(argv)
    if o.child:
        print(json.dumps(child(o)), flush=True)
    elif o.report:
        recs = []
        for path in o.report:
            with open(path) as f:
                recs += [json.loads(ln) for ln in f if ln.strip()]
        print(report(recs))
    else:
        def on_signal(signum: int, frame: Any) -> None:
            """Turn SIGTERM/SIGHUP into SystemExit, so that the finally clauses stop the processes."""
            raise SystemExit(128 + signum)  # subprocess.run then kills the running child

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_signal)
        parent(o)


if __name__ == "__main__":
    main()
