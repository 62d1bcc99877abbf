#!/usr/bin/env python3
"""The cost of metrics: echo and RPC echo with ``--metrics`` off and on, in the same run.

For each repetition, in alternating order (off, on, then on, off, ...), a fresh
``twistd -n txgetty`` is started without and with ``--metrics tcp:PORT:interface=127.0.0.1``,
driven by loadgen.py (echo: the hello framing; RPC: Echo.echo over JSON) at each --configs
(default 50x32), while a scraper GETs /metrics every --scrape-interval seconds (as Prometheus
would, only more often: the scrape's own cost is part of "on"). It prints msg/s off and on
(medians over --reps) and the ratio on/off; the target is >= 0.97 (at most 3 % fewer msg/s).
The servers and the load generator are pinned as in echo.py / rpc.py (--no-pin to not).

  python benchmarks/metrics_cost.py                       # 50x32, 5 s x 3 reps, echo and rpc
  python benchmarks/metrics_cost.py --seconds 2 --warmup 1 --reps 1   # a short check
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402
import echo  # noqa: E402
import rpc  # noqa: E402


class Scraper(threading.Thread):
    """GETs /metrics every interval until stopped; counts the scrapes and their failures."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.done = threading.Event()
        self.scrapes = self.failures = 0
        self.lastBytes = 0

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    self.lastBytes = len(response.read())
                self.scrapes += 1
            except OSError:
                self.failures += 1


def measure(kind: str, opts: Any, metrics: bool, conns: int, window: int) -> dict[str, Any]:
    """One server run (echo or rpc) with metrics on or off; return loadgen's record plus ours."""
    module = echo if kind == "echo" else rpc
    name = "txgetty" if kind == "echo" else "txgetty_rpc_json"
    port = benchlib.free_port()
    opts.txgetty_args = f"--metrics tcp:{port}:interface=127.0.0.1" if metrics else ""
    srv = module.start_server(name, opts)
    scraper = Scraper(port, opts.scrape_interval) if metrics else None
    try:
        if scraper is not None:
            scraper.start()
        rec = module.run_loadgen(opts, srv, conns, window)
    finally:
        if scraper is not None:
            scraper.done.set()
            scraper.join(10)
        srv.stop()
    rec.update(kind=kind, metrics=metrics, conns=conns, window=window)
    if scraper is not None:
        rec.update(scrapes=scraper.scrapes, scrape_failures=scraper.failures, scrape_bytes=scraper.lastBytes)
        if not scraper.scrapes:
            raise RuntimeError(f"{kind}: no scrape of /metrics succeeded ({scraper.failures} failed)")
    return rec


def body(opts: Any) -> None:
    results: dict[tuple[str, str, bool], list[float]] = {}
    with open(opts.out, "a") as out:
        for rep in range(opts.reps):
            for kind in opts.kinds.split(","):
                for config in opts.configs.split(","):
                    conns, window = (int(x) for x in config.split("x"))
                    for metrics in ((False, True) if rep % 2 == 0 else (True, False)):
                        rec = measure(kind, opts, metrics, conns, window)
                        out.write(json.dumps(rec) + "\n")
                        results.setdefault((kind, config, metrics), []).append(rec["msgs_per_s"])
                        benchlib.log(f"{kind} {config} metrics {'on' if metrics else 'off'}: "
                                     f"{rec['msgs_per_s']:,.0f} msg/s"
                                     + (f" ({rec['scrapes']} scrapes)" if metrics else ""))
    print()
    print("| benchmark | config | off msg/s | on msg/s | on/off |")
    print("|-----------|--------|----------:|---------:|-------:|")
    for kind in opts.kinds.split(","):
        for config in opts.configs.split(","):
            off = statistics.median(results[(kind, config, False)])
            on = statistics.median(results[(kind, config, True)])
            print(f"| {kind} | {config} | {off:,.0f} | {on:,.0f} | {on / off:.3f} |")


def parse_args(argv: list[str] | None = None) -> Any:
    """The echo runner's options (load, pinning, --python, --out), plus ours."""
    args = list(sys.argv[1:] if argv is None else argv)
    ours = {"--kinds": "echo,rpc", "--scrape-interval": "1.0"}
    for flag in list(ours):
        if flag in args:
            i = args.index(flag)
            ours[flag] = args[i + 1]
            del args[i:i + 2]
    if "--configs" not in args:
        args += ["--configs", "50x32"]
    if "--out" not in args:
        args += ["--out", os.path.join(HERE, "results", "metrics_cost.jsonl")]
    opts = echo.parse_args(args)
    opts.kinds, opts.scrape_interval = ours["--kinds"], float(ours["--scrape-interval"])
    # rpc.py's loadgen options that echo.py lacks.
    opts.profile_lines = getattr(opts, "profile_lines", False)
    return opts


def main() -> None:
    """Run (every started server is stopped on the way out)."""
    benchlib.run_main(parse_args(), body)


if __name__ == "__main__":
    main()
