#!/usr/bin/env python3
"""Non-reading peer: a client pushes up to 1 GiB of hello packets at txgetty's echo server
and never reads a byte; how much memory does the server take, and what does it do?

For every scenario a fresh ``twistd -n txgetty`` echo server (hello codec, pinned to
--server-cpu) gets one TCP connection from this runner (pinned to --client-cpu), which
writes frames (4-byte little-endian length + payload) as fast as the socket takes them and
never reads.  The run ends when --total bytes (1 GiB) are sent, after --max-seconds (60),
when the sender made no progress for --stall seconds (5), or when the server closes the
connection.  Every --sample seconds it records [seconds, bytes sent, the server's VmRSS,
the server socket's kernel queues (/proc/net/tcp: bytes received but not read by the
server, bytes sent but not acknowledged), the echoes waiting unread in the client's socket
(FIONREAD), the server socket's state]; at the end also the client socket's send queue.

Scenarios (--scenarios):

  pause-915     default settings (pauseReadingWhenUnwritable on), 915-byte packets
  pause-64k     the same, 64 KiB packets
  nopause-915   --no-pause-reading-when-unwritable: the server keeps reading; it must close
                the session once more than --max-pending-bytes (16 MiB) wait to be written
  nopause-64k   the same, 64 KiB packets

Reported: outcome (stalled: the server paused reading and the sender blocked; closed: the
server closed the connection; sent everything; time limit), bytes pushed, server peak RSS
(VmHWM) against the 64 MiB target, the server's RSS before the connection, its CPU while
the sender was blocked, the queues at the end, and the server's log lines about the session.

  python benchmarks/backpressure.py --commit HEAD
  python benchmarks/backpressure.py --scenarios pause-915 --max-seconds 20
  python benchmarks/backpressure.py --report benchmarks/results/backpressure-*.jsonl
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import shlex
import socket
import struct
import sys
import termios
import time
from typing import Any

from benchlib import (
    Output,
    Server,
    add_common_args,
    f1,
    free_port,
    log,
    main_or_report,
    meta_line,
    read_jsonl,
    record_run,
    twistd_argv,
    txgetty_common_args,
    wait_quiet,
)
from loadgen import proc_cpu_s, proc_status_kb

SCENARIOS = {"pause-915": (915, []), "pause-64k": (65536, []),
             "nopause-915": (915, ["--no-pause-reading-when-unwritable"]),
             "nopause-64k": (65536, ["--no-pause-reading-when-unwritable"])}
TARGET_MIB = 64
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
              "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
MIB = 1 << 20


def server_socket(port: int, peer_port: int) -> dict[str, Any] | None:
    """Return the state and queues of the socket 127.0.0.1:port connected to 127.0.0.1:peer_port
    (/proc/net/tcp: the server's side, or with the ports swapped the client's), or None."""
    want_l, want_r = f"0100007F:{port:04X}", f"0100007F:{peer_port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f:
            p = line.split()
            if len(p) > 4 and p[1] == want_l and p[2] == want_r:
                tx, rx = p[4].split(":")
                return {"state": TCP_STATES.get(p[3], p[3]), "unacked": int(tx, 16), "unread": int(rx, 16)}
    return None


def unread(sock: socket.socket) -> int:
    """Return the bytes waiting unread in a socket's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def push(opts: argparse.Namespace, srv: Server, size: int) -> dict[str, Any]:
    """Connect to srv and write frames of size-byte payloads without ever reading; return what happened."""
    frame = struct.pack("<I", size) + bytes((i * 7 + 13) % 251 for i in range(size))
    chunk = memoryview(frame * max(1, MIB // len(frame)))
    rss0 = proc_status_kb(srv.pid, "VmRSS")
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    my_port = sock.getsockname()[1]
    sock.setblocking(False)
    t0 = time.monotonic()
    last_progress = t0
    cpu_at_progress = proc_cpu_s(srv.pid)
    sent = off = 0
    outcome = ""
    samples: list[list[Any]] = []
    next_sample = t0
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample:
                ss = server_socket(srv.port, my_port)
                samples.append([round(now - t0, 2), sent, proc_status_kb(srv.pid, "VmRSS"),  # (server side:)
                                ss and ss["unread"], ss and ss["unacked"], unread(sock), ss and ss["state"]])
                next_sample += opts.sample
            if sent >= opts.total:
                outcome = "sent everything"
                break
            if now - t0 >= opts.max_seconds:
                outcome = "time limit"
                break
            if now - last_progress >= opts.stall:
                ss = server_socket(srv.port, my_port)
                outcome = ("stalled: the server stopped reading" if ss and ss["state"] == "ESTABLISHED"
                           else f"stalled, server socket {ss['state'] if ss else 'gone'}")
                break
            _, w, _ = select.select([], [sock], [], 0.1)
            if not w:
                continue
            try:
                n = sock.send(chunk[off:off + min(len(chunk) - off, opts.total - sent)])
            except BlockingIOError:
                continue
            except OSError as e:
                outcome = f"closed by the server ({type(e).__name__}: {e.strerror})"
                break
            sent += n
            off = (off + n) % len(chunk)
            last_progress = time.monotonic()
            cpu_at_progress = proc_cpu_s(srv.pid)
        end = time.monotonic()
        ss = server_socket(srv.port, my_port)
        cs = server_socket(my_port, srv.port)
        cpu_blocked = proc_cpu_s(srv.pid) - cpu_at_progress
        rec = {"outcome": outcome, "sent": sent, "seconds": round(end - t0, 2),
               "last_progress_s": round(last_progress - t0, 2),
               "mb_per_s_pushing": round(sent / MIB / max(last_progress - t0, 1e-9), 1),
               "server_rss_before_kb": rss0, "server_rss_end_kb": proc_status_kb(srv.pid, "VmRSS"),
               "server_hwm_kb": proc_status_kb(srv.pid, "VmHWM"),
               "server_cpu_while_blocked_pct": round(100 * cpu_blocked / max(end - last_progress, 1e-9), 2)
               if end - last_progress > 1 else None,
               "server_socket_end": ss, "client_unread_end": unread(sock),
               "client_queued_end": cs and cs["unacked"], "samples": samples}
    finally:
        sock.close()
    time.sleep(0.3)
    rec["server_log"] = [ln.split(" ", 2)[-1][:300] for ln in srv.log_text().splitlines()
                         if re.search(r"does not read|maxPendingBytes|Overflow|writable|closed|error", ln, re.IGNORECASE)][:5]
    return rec


def run_all(opts: argparse.Namespace) -> None:
    """Run every scenario (--reps times) and print the table."""
    names = opts.scenarios.split(",")
    for n in names:
        if n not in SCENARIOS:
            sys.exit(f"unknown scenario {n!r}; known: {', '.join(SCENARIOS)}")
    def body(out: Output) -> None:
        """The scenarios."""
        for rep in range(opts.reps):
            for name in names:
                size, extra = SCENARIOS[name]
                wait_quiet(opts, log)
                port = free_port()
                argv = twistd_argv(opts.python) + ["-n", "--pidfile=", "txgetty"] + txgetty_common_args(opts) + [
                    "--listen", f"tcp:{port}:interface=127.0.0.1"] + extra
                srv = Server(f"bp-{name}", argv, port, opts)
                try:
                    if opts.pin:
                        os.sched_setaffinity(0, {int(opts.client_cpu)})
                    rec = push(opts, srv, size)
                finally:
                    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
                    srv.stop()
                rec.update(type="push", scenario=name, size=size, server_args=extra, rep=rep,
                           cmd_server=shlex.join(srv.argv))
                out.write(rec)
                log(f"[{rep}] {name:12s} {rec['outcome']}: pushed {rec['sent'] / MIB:,.1f} MiB in "
                    f"{rec['last_progress_s']} s; server RSS {rec['server_rss_before_kb'] / 1024:.1f} -> peak "
                    f"{rec['server_hwm_kb'] / 1024:.1f} MB; blocked-CPU {rec['server_cpu_while_blocked_pct']}%; "
                    f"server socket {rec['server_socket_end']}; log {rec['server_log'][:2]}")

    record_run(opts, {"total": opts.total, "max_seconds": opts.max_seconds, "stall": opts.stall}, body, report)


def report(files: list[str]) -> str:
    """Return the Markdown table of the runs and the target verdicts."""
    recs = read_jsonl(files)
    metas = [r for r in recs if r.get("type") == "meta"]
    m = metas[-1] if metas else {}
    out = [meta_line(recs, f"; sender: this runner, blocking on a full socket, never reading; limits: "
                           f"{m.get('total', 1 << 30) / (1 << 30):g} GiB, {m.get('max_seconds', 60):g} s, "
                           f"stall {m.get('stall', 5):g} s")]
    out.append("\n| scenario | packet payload | server options | outcome | pushed MiB | pushing s | "
               "server RSS before MiB | server peak RSS (VmHWM) MiB | < 64 MiB | server CPU % while sender blocked | "
               "unread in server's kernel socket MiB | in client's send queue MiB | echoes unread at client MiB |")
    out.append("|---|--:|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|")
    for r in [r for r in recs if r.get("type") == "push"]:
        ss = r.get("server_socket_end") or {}
        hwm = r["server_hwm_kb"] / 1024  # kB (KiB) -> MiB
        ok = "yes" if hwm < TARGET_MIB else f"**no** (+{hwm - TARGET_MIB:.1f} MiB)"
        blocked = r.get("server_cpu_while_blocked_pct")
        out.append(f"| {r['scenario']} | {r['size']:,} B | {' '.join(r['server_args']) or 'defaults'} | "
                   f"{r['outcome']} | {f1(r['sent'] / MIB)} | {r['last_progress_s']} | "
                   f"{f1(r['server_rss_before_kb'] / 1024)} | {f1(hwm)} | {ok} | "
                   f"{'-' if blocked is None else blocked} | "
                   f"{f1(ss['unread'] / MIB) if ss else 'socket gone'} | "
                   f"{f1(r['client_queued_end'] / MIB) if r.get('client_queued_end') is not None else '-'} | "
                   f"{f1(r['client_unread_end'] / MIB)} |")
    logs = [(r["scenario"], r["server_log"]) for r in recs if r.get("type") == "push" and r.get("server_log")]
    if logs:
        out.append("\nServer log lines about the session:\n")
        for name, lines in logs:
            for ln in lines[:2]:
                out.append(f"- {name}: `{ln}`")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"default {','.join(SCENARIOS)}")
    ap.add_argument("--total", type=int, default=1 << 30, help="bytes to push at most (default 1 GiB)")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="time limit of a run (default 60)")
    ap.add_argument("--stall", type=float, default=5.0, help="end after this many seconds without progress (5)")
    ap.add_argument("--sample", type=float, default=0.5, help="seconds between samples (default 0.5)")
    ap.add_argument("--reps", type=int, default=1)
    add_common_args(ap, "backpressure")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or --report)."""
    main_or_report(parse_args(argv), run_all, report)


if __name__ == "__main__":
    main()
