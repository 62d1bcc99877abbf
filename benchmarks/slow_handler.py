#!/usr/bin/env python3
"""Slow handler beside busy sessions: does one session whose handler blocks 1 s per packet
slow down 50 others that are load-tested, with and without txgetty's task pool?

The server is the product as it runs: ``twistd -n --pidfile= txgetty --no-rpc --listen
tcp:PORT:interface=127.0.0.1:backlog=4096 --app slow_app:newSession`` (``benchmarks/`` on
PYTHONPATH, hello framing), whose listener echoes every packet but first blocks
``time.sleep(--slow-seconds)`` (default 1.0, passed as SLOW_APP_SECONDS) on a packet that
starts with ``b"SLOW"``.  Server modes (--runs MODE:SCENARIO,...):

  inline          no pool: onMessage runs in the reactor thread
  pool            ``--task-pool 4`` (--pool N), ordered: a session's packets run one at a time
  pool-unordered  ``--task-pool 4 --task-pool-unordered`` (not in the default runs)

Scenarios, each on a fresh server (pinned to --server-cpu):

  alone   (a) loadgen.py --proto frame --byteorder little --conns 50 --window 1 --size 915:
          50 connections, one echo in flight on each, --warmup 1 s, then a --seconds 10 s window
  slow1   (b) the same while a "slow client" (a thread of this runner, pinned with it to
          --client-cpu, on its own connection) keeps one 915-byte SLOW packet in flight the
          whole time: send, wait for its echo, send the next (from before loadgen.py starts
          until after it ends)
  slow8   (c) the same, the slow client keeping 8 SLOW packets in flight (--pipeline): sent
          at once, each echo answered by a new one

Measured: from loadgen.py, the 50 sessions' echoes/s over the window and the latency of
each echo (request write -> the read that completes it) p50, p99 and max, plus the
server's CPU; from the slow client, the SLOW echoes it got, their round trips, the longest
time it went without an echo, and whether every echo came back intact and in the order
sent (each SLOW packet carries its sequence number); from the server's log (slow_app.py
logs its counters every second), the SLOW handlers finished per second and the most that
ever ran at once (an ordered pool must never run two of one session's packets at once).
The tables show medians over --reps and every slow scenario against ``alone`` of the same
mode (msg/s, p50, p99 ratios).

Quiet-machine wait, noise checks (for pool modes the server's own run-queue wait is left
out: its workers share its CPU by design), --commit snapshots and JSONL output are
benchlib's.

  python benchmarks/slow_handler.py --commit HEAD                 # 5 runs x 3 reps of ~13 s (~4 min on a quiet machine)
  python benchmarks/slow_handler.py --commit HEAD --reps 1 --runs pool-unordered:alone,pool-unordered:slow8
  python benchmarks/slow_handler.py --report benchmarks/results/slow_handler-*.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import socket
import struct
import sys
import threading
import time
from typing import Any

from benchlib import (
    HERE,
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
    read_jsonl,
    record_run,
    run_json,
    server_env,
    twistd_argv,
    txgetty_common_args,
)

MODES = ("inline", "pool", "pool-unordered")
SCENARIOS = {"alone": 0, "slow1": 1, "slow8": None}  # SLOW packets in flight (slow8: --pipeline)
DEFAULT_RUNS = "inline:alone,inline:slow1,pool:alone,pool:slow1,pool:slow8"
_SLOW_LOG = re.compile(r"slow_app: t=([\d.]+) slow=(\d+) done=(\d+) max_concurrent=(\d+)")
_HDR = struct.Struct("<I")  # hello framing: 4-byte little-endian length


def mode_args(mode: str, opts: argparse.Namespace) -> list[str]:
    """Return the twistd txgetty options of a server mode."""
    return {"inline": [], "pool": ["--task-pool", str(opts.pool)],
            "pool-unordered": ["--task-pool", str(opts.pool), "--task-pool-unordered"]}[mode]


def depth(scenario: str, opts: argparse.Namespace) -> int:
    """Return the SLOW packets the slow client keeps in flight in a scenario (0: no slow client)."""
    d = SCENARIOS[scenario]
    return opts.pipeline if d is None else d


# ----------------------------------------------------------------------------- the slow client
class SlowClient(threading.Thread):
    """One connection keeping `depth` SLOW packets in flight: every echo is checked (intact,
    in sequence order) and answered by the next packet, until stop()."""

    def __init__(self, port: int, depth: int, size: int) -> None:
        """Connect to 127.0.0.1:port (the thread starts sending when started)."""
        super().__init__(name="slow-client", daemon=True)
        self.depth, self.size = depth, size
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(0.1)  # to see stop() while waiting for an echo
        self.stopping = threading.Event()
        self.sent: dict[int, float] = {}  # sequence number -> send time (monotonic)
        self.echoes: list[tuple[int, float, float]] = []  # (seq, arrival - t0, round trip s)
        self.reads_with_echo: list[int] = []  # echoes completed per read
        self.bad: list[str] = []
        self.out_of_order = 0
        self.next_seq = 0
        self.error: str | None = None
        self.t0 = self.t_end = 0.0

    def frame(self, seq: int) -> bytes:
        """Return SLOW packet number seq: b"SLOW", the number (8 bytes), filler up to size bytes."""
        head = b"SLOW" + struct.pack("<Q", seq)
        body = head + bytes((seq + i) % 251 for i in range(self.size - len(head)))
        return _HDR.pack(len(body)) + body

    def send(self, n: int) -> None:
        """Send the next n packets in one write."""
        now = time.monotonic()
        data = b""
        for _ in range(n):
            self.sent[self.next_seq] = now
            data += self.frame(self.next_seq)
            self.next_seq += 1
        self.sock.sendall(data)

    def run(self) -> None:
        """Send depth packets, then one more for every echo until stopped."""
        buf = bytearray()
        expect = 0  # the next sequence number in order
        flen = 4 + self.size
        try:
            self.t0 = time.monotonic()
            self.send(self.depth)
            while not self.stopping.is_set():
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    self.error = "the server closed the slow client's connection"
                    break
                now = time.monotonic()
                buf += data
                got = 0
                while len(buf) >= flen:
                    pkt = bytes(buf[:flen])
                    del buf[:flen]
                    seq = struct.unpack_from("<Q", pkt, 8)[0] if pkt[4:8] == b"SLOW" else -1
                    if seq not in self.sent or pkt != self.frame(seq):
                        self.bad.append(pkt[:16].hex())
                        continue
                    if seq != expect:
                        self.out_of_order += 1
                    expect = max(expect, seq + 1)
                    self.echoes.append((seq, round(now - self.t0, 4), round(now - self.sent.pop(seq), 4)))
                    got += 1
                if got:
                    self.reads_with_echo.append(got)
                    self.send(got)
        except OSError as e:
            if not self.stopping.is_set():
                self.error = f"{type(e).__name__}: {e}"
        finally:
            self.t_end = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """Stop, close the connection (the server drops the SLOW packets still queued) and
        return what the slow client saw."""
        self.stopping.set()
        self.join(5)
        self.sock.close()
        span = (self.t_end or time.monotonic()) - self.t0
        times = [0.0] + [e[1] for e in self.echoes] + [span]
        rtts = sorted(e[2] for e in self.echoes)
        return {"slow_depth": self.depth, "slow_span_s": round(span, 3), "slow_sent": self.next_seq,
                "slow_echoes": len(self.echoes),
                "slow_echoes_per_s": round(len(self.echoes) / span, 3) if span else None,
                "slow_rtt_p50_s": rtts[len(rtts) // 2] if rtts else None, "slow_rtt_max_s": rtts[-1] if rtts else None,
                "slow_rtt_min_s": rtts[0] if rtts else None,
                "slow_longest_gap_s": round(max(b - a for a, b in itertools.pairwise(times)), 3),
                "slow_first_echo_s": self.echoes[0][1] if self.echoes else None,
                "slow_in_order": self.out_of_order == 0 and not self.bad, "slow_out_of_order": self.out_of_order,
                "slow_bad": self.bad[:5], "slow_error": self.error,
                "slow_max_echoes_per_read": max(self.reads_with_echo, default=0),
                "slow_echo_log": [[s, t] for s, t, _ in self.echoes][:100]}


def server_slow_stats(text: str, t0: float, t1: float) -> dict[str, Any]:
    """Return what slow_app.py logged: SLOW handlers finished per second between unix times t0
    and t1, and the most that ran at once."""
    pts = [(float(m[0]), int(m[1]), int(m[2]), int(m[3])) for m in _SLOW_LOG.findall(text)]
    if not pts:
        return {}
    out: dict[str, Any] = {"server_slow_started": pts[-1][1], "server_slow_done": pts[-1][2],
                           "server_slow_max_concurrent": pts[-1][3]}
    inside = [p for p in pts if t0 <= p[0] <= t1]
    if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
        out["server_slow_done_per_s"] = round((inside[-1][2] - inside[0][2]) / (inside[-1][0] - inside[0][0]), 3)
    return out


# ----------------------------------------------------------------------------- one measurement
def one_run(mode: str, scenario: str, opts: argparse.Namespace) -> dict[str, Any]:
    """A fresh server; the slow client (if any) and loadgen.py 50x1 against it; the record."""
    port = free_port()
    argv = twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty"] + txgetty_common_args(opts) + [
        "--listen", f"tcp:{port}:interface=127.0.0.1:backlog=4096", "--app", "slow_app:newSession"
    ] + mode_args(mode, opts)
    env = dict(server_env(opts, HERE), SLOW_APP_SECONDS=str(opts.slow_seconds))
    srv = Server(f"slow-{mode}", argv, port, opts, env=env)
    slow: SlowClient | None = None
    try:
        if opts.pin:  # the slow client (a thread of this process) beside the load generator
            os.sched_setaffinity(0, {int(opts.client_cpu)})
        lg = pinned([opts.python, os.path.join(HERE, "loadgen.py"), "--mode", "load", "--proto", "frame",
                     "--byteorder", "little", "--port", str(port), "--conns", str(opts.conns), "--window", "1",
                     "--size", str(opts.size), "--seconds", str(opts.seconds), "--warmup", str(opts.warmup),
                     "--server-pid", str(srv.pid), "--label", f"{mode}:{scenario}"], opts, opts.client_cpu)
        n = depth(scenario, opts)
        t_start = time.time()
        if n:
            slow = SlowClient(port, n, opts.size)
            slow.start()
            time.sleep(0.2)  # the first SLOW packet is in its handler before the 50 start
        rec, _ = run_json(lg, opts.seconds + opts.warmup + 60, "loadgen")
        t_end = time.time()
        if slow is not None:
            rec.update(slow.stop())
            slow = None
            if rec["slow_error"]:
                raise RuntimeError(f"slow client: {rec['slow_error']}")
        srv.check_alive()
        time.sleep(1.1)  # one more slow_app log line
        rec.update(server_slow_stats(srv.log_text(), t_start, t_end + 1.2))
        rec.update(mode=mode, scenario=scenario, slow_seconds=opts.slow_seconds, cmd_client=shlex.join(lg),
                   cmd_server=shlex.join(srv.argv))
        return rec
    finally:
        if slow is not None:
            slow.stop()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        srv.stop()


def run_all(opts: argparse.Namespace) -> None:
    """Every repetition x run (order alternating), then the tables."""
    runs = parse_runs(opts.runs)
    def body(out: Output) -> None:
        """The measurements."""
        for rep in range(opts.reps):
            for mode, scen in (runs if rep % 2 == 0 else runs[::-1]):
                sides = ("server", "client") if mode == "inline" else ("client",)
                rec = measured(opts, f"{mode}:{scen}", lambda m=mode, s=scen: one_run(m, s, opts), log, out.write,
                               {"type": "run", "mode": mode, "scenario": scen, "rep": rep}, sides)
                out.write(rec)
                say(rep, rec)

    record_run(opts, {"slow_seconds": opts.slow_seconds, "pool": opts.pool, "pipeline": opts.pipeline,
                      "conns": opts.conns, "seconds": opts.seconds, "warmup": opts.warmup, "size": opts.size},
               body, report)


def say(rep: int, rec: dict[str, Any]) -> None:
    """Log one run's figures."""
    name = f"{rec['mode']}:{rec['scenario']}"
    if "error" in rec:
        log(f"[{rep}] {name:22s} ERROR {rec['error']}")
        return
    slow = ""
    if rec.get("slow_depth"):
        slow = (f" | slow: {rec['slow_echoes']} echoes in {rec['slow_span_s']}s rtt p50={rec['slow_rtt_p50_s']}s "
                f"max={rec['slow_rtt_max_s']}s gap={rec['slow_longest_gap_s']}s in_order={rec['slow_in_order']} "
                f"server done/s={rec.get('server_slow_done_per_s')} max_conc={rec.get('server_slow_max_concurrent')}")
    log(f"[{rep}] {name:22s} {rec['msgs_per_s']:>9,.0f} msg/s p50={rec['lat_p50_us']}us p99={rec['lat_p99_us']}us "
        f"max={rec['lat_max_us']}us srv={rec.get('server_cpu_pct')}% cli={rec['client_cpu_pct']}% "
        f"other={rec.get('other_cpu_cores')} errors={rec['errors']}{slow}")


def parse_runs(spec: str) -> list[tuple[str, str]]:
    """Return the (mode, scenario) pairs of --runs."""
    runs = []
    for item in spec.split(","):
        mode, _, scen = item.partition(":")
        if mode not in MODES or scen not in SCENARIOS:
            sys.exit(f"bad run {item!r}: MODE:SCENARIO with MODE in {', '.join(MODES)} and SCENARIO in "
                     f"{', '.join(SCENARIOS)}")
        runs.append((mode, scen))
    return runs


# ----------------------------------------------------------------------------- report
def ms(us: float | None) -> str:
    """Format microseconds as milliseconds (two decimals below 10 ms, else none)."""
    if us is None:
        return "-"
    return f"{us / 1000:,.2f}" if us < 10_000 else f"{us / 1000:,.0f}"


def ratio(x: float | None, base: float | None) -> str:
    """Return x / base as '1.23x' ('0.0007x', '2,014x'; '-' when unknown)."""
    if x is None or not base:
        return "-"
    r = x / base
    return f"{r:.4f}x" if r < 0.01 else f"{r:,.0f}x" if r >= 100 else f"{r:.2f}x"


def report(files: list[str]) -> str:
    """Return the Markdown table (medians over the runs) and the slow client's figures."""
    recs = read_jsonl(files)
    metas = [r for r in recs if r.get("type") == "meta"]
    m = metas[-1] if metas else {}
    ok = [r for r in recs if r.get("type") == "run" and "error" not in r and not r.get("discarded")]
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in ok:
        cells.setdefault((r["mode"], r["scenario"]), []).append(r)
    reps = max((len(v) for v in cells.values()), default=0)
    out = [meta_line(recs, f"; loadgen.py on uvloop; hello framing; SLOW handler blocks "
                           f"{m.get('slow_seconds', 1.0):g} s (time.sleep); pool = --task-pool {m.get('pool', 4)}")]
    label = {"alone": "(a) none", "slow1": "(b) 1 SLOW in flight",
             "slow8": f"(c) {m.get('pipeline', 8)} SLOW pipelined"}

    def server_name(mode: str) -> str:
        """'pool (`--task-pool 4`)'."""
        flags = " ".join(mode_args(mode, argparse.Namespace(pool=m.get("pool", 4))))
        return f"{mode} (`{flags}`)" if flags else mode

    order = [(mode, scen) for mode in MODES for scen in SCENARIOS if (mode, scen) in cells]
    out.append(f"\n#### The {m.get('conns', 50)} busy sessions (loadgen.py {m.get('conns', 50)}x1, "
               f"{m.get('size', 915)}-byte packets, median of {reps} runs of {m.get('seconds', 10):g} s)\n")
    out.append("| server | slow client | msg/s | min-max msg/s | msg/s vs (a) | p50 ms | p99 ms | max ms | "
               "p99 vs (a) | server CPU % | note |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for mode, scen in order:
        rs = cells[(mode, scen)]
        base = cells.get((mode, "alone"), [])
        rates = [r["msgs_per_s"] for r in rs]
        rate, p50, p99 = med(rates), med([r["lat_p50_us"] for r in rs]), med([r["lat_p99_us"] for r in rs])
        note = ", ".join(x for x in [
            "NOISY run kept" if any(r.get("noisy") for r in rs) else "",
            f"{sum(r['errors'] for r in rs)} connections lost" if any(r.get("errors") for r in rs) else ""] if x)
        out.append(f"| {server_name(mode)} | {label[scen]} | {f0(rate)} | {f0(min(rates))}-{f0(max(rates))} | "
                   f"{ratio(rate, med([r['msgs_per_s'] for r in base]))} | {ms(p50)} | {ms(p99)} | "
                   f"{ms(max(r['lat_max_us'] for r in rs))} | {ratio(p99, med([r['lat_p99_us'] for r in base]))} | "
                   f"{f0(med([r.get('server_cpu_pct') for r in rs]))} | {note} |")
    out.append("\nmsg/s, p50, p99: medians over the runs; max ms: the largest single latency of any run.")
    slow = [(mode, scen) for mode, scen in order if scen != "alone"]
    if slow:
        out.append("\n#### The slow client (its SLOW packets, one connection, from before loadgen.py started until "
                   "after it ended)\n")
        out.append("| server | slow client | SLOW echoes (per s) | first echo after s | round trip p50 / max s | "
                   "most echoes in one read | longest wait for an echo s | echoes intact, in order | "
                   "SLOW handlers done per s (server log) | SLOW handlers at once, max (server log) |")
        out.append("|---|---|--:|--:|--:|--:|--:|---|--:|--:|")
        for mode, scen in slow:
            rs = cells[(mode, scen)]
            echoes = sum(r["slow_echoes"] for r in rs)
            span = sum(r["slow_span_s"] for r in rs)
            rtt_max = [r["slow_rtt_max_s"] for r in rs if r["slow_rtt_max_s"] is not None]
            in_order = ("- (no echo)" if not echoes else "yes" if all(r["slow_in_order"] for r in rs) else
                        f"**no** ({sum(r['slow_out_of_order'] for r in rs)} out of order, "
                        f"{sum(len(r['slow_bad']) for r in rs)} bad)")
            out.append(f"| {server_name(mode)} | {label[scen]} | {echoes} in {span:.0f} s ({echoes / span:.2f}) | "
                       f"{f2(med([r['slow_first_echo_s'] for r in rs]))} | "
                       f"{f2(med([r['slow_rtt_p50_s'] for r in rs]))} / {f2(max(rtt_max, default=None))} | "
                       f"{max(r['slow_max_echoes_per_read'] for r in rs)} | "
                       f"{f1(max(r['slow_longest_gap_s'] for r in rs))} | {in_order} | "
                       f"{f2(med([r.get('server_slow_done_per_s') for r in rs]))} | "
                       f"{max((r.get('server_slow_max_concurrent') or 0) for r in rs)} |")
        out.append("\nEchoes: summed over the runs; first echo, round trip p50, handlers done per s: medians; "
                   "round trip max, echoes in one read, longest wait (also from the start, or from the last echo "
                   "to the end), handlers at once: the largest of any run.")
    verdicts = []
    for (mode, scen), rs in sorted(cells.items()):
        if scen == "alone" or (mode, "alone") not in cells:
            continue
        base = cells[(mode, "alone")]
        r_rate = med([r["msgs_per_s"] for r in rs]) / med([r["msgs_per_s"] for r in base])
        p99 = med([r["lat_p99_us"] for r in rs])
        b99 = med([r["lat_p99_us"] for r in base])
        hurt = r_rate < 0.9 or p99 > 2 * b99
        kept = f"{100 * r_rate:.2f}" if r_rate < 0.01 else f"{100 * r_rate:.0f}"
        line = (f"- {server_name(mode)}, {label[scen]}: the busy sessions kept {kept} % of their msg/s, p99 "
                f"{ms(p99)} ms against {ms(b99)} ms in (a) -> **{'hurt' if hurt else 'unaffected'}** "
                f"(unaffected: ≥ 90 % of the msg/s and p99 ≤ 2x). Slow client: "
                f"{sum(r['slow_echoes'] for r in rs)} echoes")
        conc = max((r.get("server_slow_max_concurrent") or 0) for r in rs)
        burst = max(r["slow_max_echoes_per_read"] for r in rs)
        if mode == "pool":
            worker = "one worker: yes" if conc <= 1 else "**more than one worker**"
            line += f", its SLOW handlers at most {conc} at once ({worker})"
        if burst > 1:
            line += (f"; **its echoes came in bursts** (up to {burst} in one read, the first after "
                     f"{f1(med([r['slow_first_echo_s'] for r in rs]))} s)")
        elif not any(r["slow_echoes"] for r in rs):
            line += (f"; **no echo within {f1(med([r['slow_span_s'] for r in rs]))} s** although the server "
                     f"finished {f2(med([r.get('server_slow_done_per_s') for r in rs]))} SLOW handlers per s")
        verdicts.append(line + ".")
    if verdicts:
        out.append("\n" + "\n".join(verdicts))
    out += not_counted(recs, ("run",), lambda r: f"{r.get('mode')}:{r.get('scenario')}")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=DEFAULT_RUNS,
                    help=f"MODE:SCENARIO,... (modes {', '.join(MODES)}; scenarios {', '.join(SCENARIOS)}; "
                         f"default {DEFAULT_RUNS})")
    ap.add_argument("--slow-seconds", type=float, default=1.0, help="how long a SLOW packet's handler blocks (1.0)")
    ap.add_argument("--pool", type=int, default=4, help="--task-pool N of the pool modes (default 4)")
    ap.add_argument("--pipeline", type=int, default=8, help="SLOW packets in flight in scenario slow8 (default 8)")
    ap.add_argument("--conns", type=int, default=50, help="busy sessions (default 50, one echo in flight each)")
    ap.add_argument("--size", type=int, default=915, help="payload bytes of every packet (default 915)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before it (default 1)")
    ap.add_argument("--reps", type=int, default=3)
    add_common_args(ap, "slow_handler")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report)."""
    main_or_report(parse_args(argv), run_all, report)


if __name__ == "__main__":
    main()
