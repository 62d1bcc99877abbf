#!/usr/bin/env python3
"""Where 1-second connects come from: the listen backlog, measured with the kernel's counters.

For each backlog of --backlogs, a fresh server (a minimal raw Twisted server that accepts
and closes nothing itself, or twistd txgetty with --server txgetty) listens on 127.0.0.1;
this script then makes --cycles strictly sequential connect/close cycles (a blocking
connect(), then close(), then the next), timing every connect().  Around the run it reads
the kernel's TCP counters (/proc/net/netstat, /proc/net/snmp: the numbers nstat and
netstat -s print) and, every 10 ms, the listen socket's queue (ss -ltn: Recv-Q is the
accept queue, Send-Q the backlog in force).  It prints, per backlog:

  * the connects that took >= 0.5 s (a SYN retransmit takes 1 s: the initial RTO),
  * the deltas of ListenOverflows / ListenDrops (the accept queue was full: the SYN was
    dropped), TCPSynRetrans, TW / TWRecycled / PAWS* / TCPChallengeACK / TCPSYNChallenge
    (a port collision with a TIME_WAIT entry), SyncookiesSent / TCPReqQFullDrop (the SYN
    queue overflowed), RetransSegs,
  * the deepest accept queue seen,
  * and the sysctls that matter: somaxconn, tcp_max_syn_backlog, tcp_syncookies,
    tcp_tw_reuse, tcp_abort_on_overflow, tcp_timestamps, ip_local_port_range.

The counters are the whole machine's: traffic of other programs can add to them (the
script says how many connects this run made, and ListenOverflows only grows when some
listener's queue is full).

  python benchmarks/connect_stalls.py                       # raw Twisted, backlogs 50 and 4096, 3000 cycles
  python benchmarks/connect_stalls.py --server txgetty --backlogs 50,65535 --cycles 2000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

RAW_SERVER = """
import sys
from twisted.internet import reactor, protocol
class Quiet(protocol.Protocol):
    pass
port = reactor.listenTCP(0, protocol.Factory.forProtocol(Quiet), backlog=int(sys.argv[1]), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""

COUNTERS = ("ListenOverflows", "ListenDrops", "TCPSynRetrans", "TW", "TWRecycled", "TWKilled", "PAWSActive",
            "PAWSEstab", "PAWSTimewait", "TCPChallengeACK", "TCPSYNChallenge", "SyncookiesSent", "TCPReqQFullDrop",
            "TCPReqQFullDoCookies", "TCPTimeWaitOverflow", "RetransSegs", "ActiveOpens", "PassiveOpens")
SYSCTLS = ("net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog", "net/ipv4/tcp_syncookies", "net/ipv4/tcp_tw_reuse",
           "net/ipv4/tcp_abort_on_overflow", "net/ipv4/tcp_timestamps", "net/ipv4/ip_local_port_range")


def counters() -> dict[str, int]:
    """Return the kernel's TcpExt and Tcp counters (the header/value line pairs of the files)."""
    values: dict[str, int] = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            names, numbers = head.split()[1:], vals.split()[1:]
            if head.split()[0] in ("TcpExt:", "Tcp:"):
                values.update((n, int(v)) for n, v in zip(names, numbers))
    return values


def sysctls() -> dict[str, str]:
    """Return the sysctls that decide the queues and TIME_WAIT reuse."""
    out = {}
    for name in SYSCTLS:
        try:
            with open(f"/proc/sys/{name}") as f:
                out[name.split("/")[-1]] = " ".join(f.read().split())
        except OSError:
            out[name.split("/")[-1]] = "?"
    return out


class QueueWatch:
    """Samples the listen socket's line of ss -ltn every 10 ms: the deepest accept queue."""

    def __init__(self, port: int) -> None:
        """Start sampling port."""
        self.port = port
        self.deepest = 0
        self.backlog: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Sample until stopped."""
        while not self._stop.is_set():
            p = subprocess.run(["ss", "-ltnH", f"sport = :{self.port}"], capture_output=True, text=True, check=False)
            for line in p.stdout.splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    self.samples += 1
                    self.deepest = max(self.deepest, int(parts[1]))
                    self.backlog = int(parts[2])
            self._stop.wait(0.01)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(5)


def start_server(opts: argparse.Namespace, backlog: int) -> tuple[subprocess.Popen, int]:
    """Start the server with this backlog; return it and its port."""
    if opts.server == "raw":
        proc = subprocess.Popen([opts.python, "-c", RAW_SERVER, str(backlog)], stdout=subprocess.PIPE, text=True)
        port = int(proc.stdout.readline())
        return proc, port
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    twistd = os.path.join(os.path.dirname(opts.python), "twistd")
    proc = subprocess.Popen([twistd, "-n", "--pidfile=", "txgetty", "--no-rpc", "--listen",
                             f"tcp:{port}:interface=127.0.0.1", "--backlog", str(backlog)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            time.sleep(0.3)
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("twistd txgetty did not listen within 30 s")


def cycles(port: int, count: int) -> list[float]:
    """Make count sequential connect/close cycles; return each connect's seconds."""
    times = []
    for _ in range(count):
        s = socket.socket()
        t0 = time.perf_counter()
        s.connect(("127.0.0.1", port))
        times.append(time.perf_counter() - t0)
        s.close()
    return times


def measure(opts: argparse.Namespace, backlog: int) -> dict[str, Any]:
    """One server, one run of cycles; return the figures."""
    proc, port = start_server(opts, backlog)
    try:
        watch = QueueWatch(port)
        time.sleep(0.1)
        before = counters()
        t0 = time.perf_counter()
        times = cycles(port, opts.cycles)
        wall = time.perf_counter() - t0
        time.sleep(0.2)
        after = counters()
        watch.stop()
    finally:
        proc.terminate()
        proc.wait(10)
    times_sorted = sorted(times)
    return {
        "server": opts.server, "backlog_asked": backlog, "backlog_in_force": watch.backlog, "cycles": len(times),
        "seconds": round(wall, 2), "slow_connects": sum(1 for t in times if t >= 0.5),
        "connect_p50_ms": round(1000 * statistics.median(times), 3),
        "connect_p99_ms": round(1000 * times_sorted[int(0.99 * (len(times) - 1))], 3),
        "connect_max_ms": round(1000 * times_sorted[-1], 1), "deepest_accept_queue": watch.deepest,
        "queue_samples": watch.samples,
        "deltas": {name: after.get(name, 0) - before.get(name, 0) for name in COUNTERS if name in after},
        "time_wait_now": len(subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True,
                                            check=False).stdout.splitlines()),
    }


def main() -> None:
    """Measure every backlog and print one JSON line each, then a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=("raw", "txgetty"), default="raw")
    ap.add_argument("--backlogs", type=lambda s: [int(x) for x in s.split(",")], default=[50, 4096])
    ap.add_argument("--cycles", type=int, default=3000)
    ap.add_argument("--python", default=sys.executable)
    opts = ap.parse_args()
    print("sysctls:", json.dumps(sysctls()), flush=True)
    rows = []
    for backlog in opts.backlogs:
        rec = measure(opts, backlog)
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    keys = ("ListenOverflows", "ListenDrops", "TCPSynRetrans", "TW", "TWRecycled", "PAWSTimewait", "TCPChallengeACK",
            "SyncookiesSent", "TCPReqQFullDrop")
    print()
    print(f"| server | backlog (in force) | cycles | connects >= 0.5 s | connect p50 / p99 / max ms "
          f"| deepest accept queue | {' | '.join(keys)} |")
    print("|---" * (6 + len(keys)) + "|")
    for r in rows:
        d = r["deltas"]
        print(f"| {r['server']} | {r['backlog_asked']} ({r['backlog_in_force']}) | {r['cycles']} | {r['slow_connects']} "
              f"| {r['connect_p50_ms']} / {r['connect_p99_ms']} / {r['connect_max_ms']} | {r['deepest_accept_queue']} | "
              + " | ".join(str(d.get(k, "-")) for k in keys) + " |")


if __name__ == "__main__":
    main()
