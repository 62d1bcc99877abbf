"""A txgetty app for slow_handler.py: echo, with a handler that blocks on some packets.

  SLOW_APP_SECONDS=1.0 twistd -n txgetty --app slow_app:newSession [--task-pool 4]   (benchmarks/ on PYTHONPATH)

Every packet is written back unchanged; a packet that starts with ``b"SLOW"`` is first
held for ``SLOW_APP_SECONDS`` seconds (default 1.0) with ``time.sleep``: a handler that
blocks the thread it runs in, the kind of work the task pool is for.  Without
``--task-pool`` it blocks the reactor thread, so every session waits; with an ordered pool
it blocks one worker, and only its own session waits.  The codec stays the session's
default (``--codec``, hello framing unless told otherwise).

Every second it logs one line, ``slow_app: t=<unix time> slow=<SLOW packets started>
done=<SLOW packets finished> max_concurrent=<most SLOW handlers running at once>
sessions=<open sessions>``: the runner reads how many workers the slow session ever held
at once (1 under an ordered pool, whatever the peer pipelines).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from txgetty import EchoListener

_log = Logger()

#: seconds a SLOW packet's handler blocks (from the environment: twistd's options are its own)
SLOW_SECONDS = float(os.environ.get("SLOW_APP_SECONDS", "1.0"))
PREFIX = b"SLOW"


class SlowEcho(EchoListener):
    """Echo every packet; block SLOW_SECONDS first when it starts with b"SLOW"."""

    lock = threading.Lock()
    started = 0  # SLOW packets whose handler started
    done = 0  # ... and finished
    running = 0  # SLOW handlers running now
    max_running = 0  # the most that ever ran at once
    sessions = 0

    def onOpen(self, session: Any) -> None:
        """One more session (reactor thread)."""
        SlowEcho.sessions += 1

    def onClose(self, session: Any) -> None:
        """One session less (reactor thread)."""
        SlowEcho.sessions -= 1

    def onMessage(self, session: Any, pkg: Any) -> None:
        """Block first if the packet asks for it (in the reactor thread or a pool's worker), then echo."""
        if pkg[:4] == PREFIX:
            with SlowEcho.lock:
                SlowEcho.started += 1
                SlowEcho.running += 1
                SlowEcho.max_running = max(SlowEcho.max_running, SlowEcho.running)
            try:
                time.sleep(SLOW_SECONDS)
            finally:
                with SlowEcho.lock:
                    SlowEcho.running -= 1
                    SlowEcho.done += 1
        session.writePkg(pkg)


listener = SlowEcho()
_reporter: LoopingCall | None = None


def _report() -> None:
    """Log the counters."""
    _log.info("slow_app: t={t:.3f} slow={s} done={d} max_concurrent={m} sessions={n} slow_seconds={sec}",
              t=time.time(), s=SlowEcho.started, d=SlowEcho.done, m=SlowEcho.max_running, n=SlowEcho.sessions,
              sec=SLOW_SECONDS)


def newSession(session: Any) -> None:
    """The --app callback: every session gets the slow echo listener (the codec stays --codec's)."""
    global _reporter
    if _reporter is None:
        _reporter = LoopingCall(_report)
        _reporter.start(1.0, now=True)
    session.listener = listener
