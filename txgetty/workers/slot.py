"""
The life cycle of one worker slot, as an explicit transition table.

A slot runs one worker (the I{current}); during a reload it runs two for a
while: the I{replacement} (starting), then the I{old} one (draining)::

  IDLE -start-> STARTING -ready-> READY -reload-> RELOADING -newReady-> HANDOVER -oldGone-> READY
                  ^    |            |               |                     |
            retry |    | died       | died          | died (the old one): | died (the new one)
                  |    v            v               v the new one is      v
                  +- BACKOFF <------+            STARTING the current  BACKOFF
  RELOADING -newDied, newTimeout (SIGKILL the new one)-> READY (the old one stays)
  STARTING -readyTimeout (SIGKILL; died follows)-> STARTING
  STARTING, BACKOFF -reload-> unchanged (the worker to come loads the new code)
  any state but STOPPED -stop (SIGTERM to all)-> STOPPING -gone-> STOPPED
  STOPPING -stopTimeout (SIGKILL the rest)-> STOPPING

The table in full (state -event-> next state: action), as L{Slot.TRANSITIONS}::

  IDLE      -start->        STARTING   _startCurrent
  IDLE      -stop->         STOPPING   _drainAll
  STARTING  -ready->        READY      _serve
  STARTING  -died->         BACKOFF    _restartLater
  STARTING  -readyTimeout-> STARTING   _killCurrent
  STARTING  -reload->       STARTING   _reloadMoot
  STARTING  -stop->         STOPPING   _drainAll
  READY     -died->         BACKOFF    _restartLater
  READY     -reload->       RELOADING  _startReplacement
  READY     -stop->         STOPPING   _drainAll
  BACKOFF   -retry->        STARTING   _startCurrent
  BACKOFF   -reload->       BACKOFF    _reloadMoot
  BACKOFF   -stop->         STOPPING   _drainAll
  RELOADING -newReady->     HANDOVER   _handOver
  RELOADING -newDied->      READY      _reloadFailed
  RELOADING -newTimeout->   READY      _abandonReplacement
  RELOADING -died->         STARTING   _promoteReplacement
  RELOADING -stop->         STOPPING   _drainAll
  HANDOVER  -oldGone->      READY      _reloaded
  HANDOVER  -died->         BACKOFF    _restartLater
  HANDOVER  -stop->         STOPPING   _drainAll
  STOPPING  -died->         STOPPING   _noteExit
  STOPPING  -newDied->      STOPPING   _noteExit
  STOPPING  -oldGone->      STOPPING   _noteExit
  STOPPING  -exited->       STOPPING   _noteExit
  STOPPING  -stopTimeout->  STOPPING   _killAll
  STOPPING  -gone->         STOPPED    _finishStop

Events: C{start}, C{stop} (the supervisor); C{reload} (SIGHUP, one slot at a
time); C{ready}, C{died}, C{readyTimeout} (the current worker); C{newReady},
C{newDied}, C{newTimeout} (the replacement); C{oldGone} (the old worker
exited); C{exited} (a process of no role any more, e.g. a replacement killed
for its timeout); C{retry} (the backoff delay passed); C{gone} (the last
process of a stopping slot exited); C{stopTimeout}.  A pair not in L{TRANSITIONS} changes
nothing (a late timer, a second stop).

A worker that reported ready and served for the restart policy's
C{stableAfter} seconds before it died restarts after the policy's first
delay; each further death in a row waits longer (up to C{maxDelay}).
"""

from __future__ import annotations

import random
from typing import Any, Callable, ClassVar, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..client.reconnect import ReconnectPolicy
from .process import describeExit

_log = Logger()

IDLE = "IDLE"
STARTING = "STARTING"
READY = "READY"
BACKOFF = "BACKOFF"
RELOADING = "RELOADING"
HANDOVER = "HANDOVER"
STOPPING = "STOPPING"
STOPPED = "STOPPED"
STATES = (IDLE, STARTING, READY, BACKOFF, RELOADING, HANDOVER, STOPPING, STOPPED)
EVENTS = ("start", "ready", "died", "readyTimeout", "retry", "reload", "newReady", "newDied", "newTimeout",
          "oldGone", "exited", "stop", "gone", "stopTimeout")

#: How a slot restarts its worker by default: quickly after a worker that
#: served a while, backing off for one that keeps dying.
DEFAULT_RESTART_POLICY = ReconnectPolicy(initialDelay=0.3, factor=2.0, maxDelay=30.0, jitter=0.1, stableAfter=5.0)


class IWorker(Protocol):
    """
    What a slot needs of a worker process (L{WorkerProcess
    <txgetty.workers.process.WorkerProcess>}, or a fake in tests).
    """

    pid: int | None
    readyAt: float | None
    exited: bool

    @property
    def label(self) -> str: ...

    def terminate(self, killAfter: float | None = None) -> None: ...

    def kill(self) -> None: ...


class ISlotHost(Protocol):
    """
    What a slot needs of its supervisor.
    """

    def spawnWorker(self, slot: Slot) -> IWorker: ...

    def route(self, worker: IWorker) -> None: ...

    def unroute(self, worker: IWorker) -> None: ...


class Slot:
    """
    One worker slot.

    @ivar index: the slot's number.
    @ivar state: one of L{STATES}.
    @ivar current: the worker serving (or starting), if any.
    @ivar replacement: the worker starting to replace it (reload).
    @ivar old: the worker draining after a handover.
    @ivar failures: consecutive deaths (the backoff's count).
    @ivar restarts: workers started after the first.
    """

    def __init__(self, index: int, host: ISlotHost, clock: Any, *, policy: ReconnectPolicy = DEFAULT_RESTART_POLICY,
                 drainTimeout: float = 30.0, rng: random.Random | None = None) -> None:
        """
        @param index: the slot's number.
        @param host: spawns and routes its workers.
        @param clock: an L{IReactorTime <twisted.internet.interfaces.IReactorTime>}.
        @param policy: the restart backoff.
        @param drainTimeout: seconds a worker has to exit after SIGTERM
            before it is killed.
        @param rng: the backoff's jitter source.
        """
        self.index = index
        self.host = host
        self.clock = clock
        self.policy = policy
        self.drainTimeout = drainTimeout
        self.rng = rng or random.Random()
        self.state = IDLE
        self.current: IWorker | None = None
        self.replacement: IWorker | None = None
        self.old: IWorker | None = None
        self.failures = 0
        self.restarts = 0
        self._alive: list[IWorker] = []
        self._retry: Any = None
        self._stopTimer: Any = None
        self._reloading: Deferred | None = None
        self._stopped: Deferred | None = None

    def __repr__(self) -> str:
        return f"<Slot {self.index} {self.state}>"

    def fire(self, event: str, *args: Any) -> bool:
        """
        Apply an event: change state, then run the action.

        @param event: one of L{EVENTS}.
        @param args: for the action.
        @return: whether the table had a transition for it.
        """
        transition = TRANSITIONS.get((self.state, event))
        if transition is None:
            _log.debug("txgetty workers: slot {worker}: {event} ignored in {state}", worker=self.index, event=event,
                       state=self.state)
            return False
        self.state, action = transition
        if action is not None:
            action(self, *args)
        return True

    # -- what the supervisor calls ---------------------------------------------

    def start(self) -> None:
        """
        Start the slot's first worker.
        """
        self.fire("start")

    def reload(self) -> Deferred:
        """
        Replace the worker by a new one (new one ready first, then the old
        one drains).

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing with C{True} once the slot runs a new
            worker (or will: it was starting or backing off anyway), C{False}
            if the replacement failed and the old worker stays.
        """
        if self._reloading is not None:
            return succeed(False)
        d = self._reloading = Deferred()
        if not self.fire("reload"):
            self._reloading = None
            return succeed(False)
        return d

    def stop(self) -> Deferred:
        """
        Drain every worker of the slot and restart none.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once they all exited.
        """
        if self.state == STOPPED:
            return succeed(None)
        if self._stopped is None:
            self._stopped = Deferred()
        d = self._stopped
        self.fire("stop")
        return d

    @property
    def restartAt(self) -> float | None:
        """
        When the pending restart happens (clock seconds), or C{None}.
        """
        return self._retry.getTime() if self._retry is not None and self._retry.active() else None

    @property
    def alive(self) -> list[IWorker]:
        """
        The slot's processes that did not exit yet.
        """
        return list(self._alive)

    # -- what its workers tell it ------------------------------------------------

    def workerReady(self, worker: IWorker) -> None:
        """
        @param worker: it reported ready.
        """
        worker.readyAt = self.clock.seconds()
        if worker is self.current:
            self.fire("ready", worker)
        elif worker is self.replacement:
            self.fire("newReady", worker)

    def workerTimedOut(self, worker: IWorker) -> None:
        """
        @param worker: it did not report ready in time.
        """
        if worker is self.current:
            self.fire("readyTimeout", worker)
        elif worker is self.replacement:
            self.fire("newTimeout", worker)

    def workerDraining(self, worker: IWorker) -> None:
        """
        @param worker: it stops (a signal from outside, or ours): no more
            connections for it.
        """
        self.host.unroute(worker)

    def workerExited(self, worker: IWorker, reason: Failure) -> None:
        """
        @param worker: it ended.
        @param reason: how.
        """
        if worker in self._alive:
            self._alive.remove(worker)
        self.host.unroute(worker)
        if worker is self.current:
            self.current = None
            self.fire("died", worker, reason)
        elif worker is self.replacement:
            self.replacement = None
            self.fire("newDied", worker, reason)
        elif worker is self.old:
            self.old = None
            self.fire("oldGone", worker, reason)
        else:
            self.fire("exited", worker, reason)

    # -- actions -----------------------------------------------------------------

    def _spawn(self) -> IWorker:
        """
        Start a worker process.
        """
        worker = self.host.spawnWorker(self)
        self._alive.append(worker)
        return worker

    def _startCurrent(self) -> None:
        """
        (IDLE, start), (BACKOFF, retry): start the worker.
        """
        self._retry = None
        if self.failures or self.restarts:
            self.restarts += 1
        self.current = self._spawn()

    def _serve(self, worker: IWorker) -> None:
        """
        (STARTING, ready): route connections to it.
        """
        _log.info("txgetty workers: worker {worker} (pid {pid}) is ready", worker=self.index, pid=worker.pid)
        self.host.route(worker)

    def _restartLater(self, worker: IWorker, reason: Failure) -> None:
        """
        (STARTING|READY|HANDOVER, died): log why, restart after the backoff.
        """
        served = worker.readyAt is not None and self.clock.seconds() - worker.readyAt >= self.policy.stableAfter
        self.failures = 1 if served else self.failures + 1
        delay = self.policy.delay(self.failures, self.rng)
        what = "died" if worker.readyAt is not None else "failed before it was ready"
        _log.warn("txgetty workers: worker {worker} (pid {pid}) {event}: it {reason}; restarting it in {delay:.2f} s "
                  "({attempt} failure(s) in a row)", worker=self.index, pid=worker.pid, event=what,
                  reason=describeExit(reason), delay=delay, attempt=self.failures)
        self._retry = self.clock.callLater(delay, self.fire, "retry")
        self._endReload(False)

    def _killCurrent(self, worker: IWorker) -> None:
        """
        (STARTING, readyTimeout): kill it; its death restarts it later.
        """
        _log.error("txgetty workers: worker {worker} (pid {pid}) did not report ready in time (readyTimeout); "
                   "killing it", worker=self.index, pid=worker.pid)
        worker.kill()

    def _reloadMoot(self) -> None:
        """
        (STARTING|BACKOFF, reload): the worker to come loads the new code.
        """
        self._endReload(True)

    def _startReplacement(self) -> None:
        """
        (READY, reload): start the replacement; the current one serves on.
        """
        self.replacement = self._spawn()
        _log.info("txgetty workers: reloading worker {worker}: started pid {pid} beside pid {previous}",
                  worker=self.index, pid=self.replacement.pid, previous=_pidOf(self.current))

    def _handOver(self, new: IWorker) -> None:
        """
        (RELOADING, newReady): route to the new worker, drain the old one.
        """
        old = self.current
        self.host.route(new)
        self.current, self.replacement, self.old = new, None, old
        if old is not None:
            self.host.unroute(old)
            old.terminate(killAfter=self.drainTimeout)
        _log.info("txgetty workers: worker {worker}: pid {pid} is ready and serving; pid {previous} drains",
                  worker=self.index, pid=new.pid, previous=_pidOf(old))

    def _reloadFailed(self, new: IWorker, reason: Failure) -> None:
        """
        (RELOADING, newDied): the old worker stays.
        """
        _log.error("txgetty workers: reload of worker {worker} failed: the new pid {pid} {reason} before it was "
                   "ready; pid {previous} keeps serving", worker=self.index, pid=new.pid, reason=describeExit(reason),
                   previous=_pidOf(self.current))
        self._endReload(False)

    def _abandonReplacement(self, new: IWorker) -> None:
        """
        (RELOADING, newTimeout): kill the replacement, keep the old worker.
        """
        self.replacement = None
        new.kill()
        _log.error("txgetty workers: reload of worker {worker} failed: the new pid {pid} did not report ready in "
                   "time (readyTimeout) and was killed; pid {previous} keeps serving", worker=self.index, pid=new.pid,
                   previous=_pidOf(self.current))
        self._endReload(False)

    def _promoteReplacement(self, old: IWorker, reason: Failure) -> None:
        """
        (RELOADING, died): the old worker died while the new one starts:
        the new one is the slot's worker now.
        """
        self.current, self.replacement = self.replacement, None
        _log.warn("txgetty workers: worker {worker}: pid {previous} {reason} during its reload; pid {pid} takes "
                  "its place", worker=self.index, previous=old.pid, reason=describeExit(reason),
                  pid=_pidOf(self.current))
        self._endReload(True)

    def _reloaded(self, old: IWorker, reason: Failure) -> None:
        """
        (HANDOVER, oldGone): the old worker drained and exited.
        """
        _log.info("txgetty workers: worker {worker} reloaded: pid {previous} drained and {reason}",
                  worker=self.index, previous=old.pid, reason=describeExit(reason), pid=_pidOf(self.current))
        self._endReload(True)

    def _endReload(self, replaced: bool) -> None:
        """
        Tell whoever waits for this slot's reload.
        """
        d, self._reloading = self._reloading, None
        if d is not None:
            d.callback(replaced)

    def _drainAll(self) -> None:
        """
        (any running state, stop): SIGTERM to every process, SIGKILL after
        C{drainTimeout}.
        """
        self._cancelRetry()
        self._endReload(False)
        for worker in self._alive:
            self.host.unroute(worker)
            worker.terminate()
        self._stopTimer = self.clock.callLater(self.drainTimeout, self.fire, "stopTimeout")
        if not self._alive:
            self.fire("gone")

    def _noteExit(self, worker: IWorker, reason: Failure) -> None:
        """
        (STOPPING, died|newDied|oldGone|exited): one more process is gone.
        """
        _log.info("txgetty workers: worker {worker} (pid {pid}) {reason}", worker=self.index, pid=worker.pid,
                  reason=describeExit(reason))
        if not self._alive:
            self.fire("gone")

    def _killAll(self) -> None:
        """
        (STOPPING, stopTimeout): SIGKILL the processes still running.
        """
        self._stopTimer = None
        for worker in self._alive:
            _log.warn("txgetty workers: worker {worker} (pid {pid}) did not exit within {timeout:g} s of SIGTERM "
                      "(drainTimeout); killing it", worker=self.index, pid=worker.pid, timeout=self.drainTimeout)
            worker.kill()

    def _finishStop(self) -> None:
        """
        (STOPPING, gone): nothing runs any more.
        """
        self._cancelRetry()
        if self._stopTimer is not None and self._stopTimer.active():
            self._stopTimer.cancel()
        self._stopTimer = None
        self.current = self.replacement = self.old = None
        d, self._stopped = self._stopped, None
        if d is not None:
            d.callback(None)

    def _cancelRetry(self) -> None:
        """
        Cancel a pending restart.
        """
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    #: (state, event) -> (next state, action).  Pairs not listed are ignored.
    TRANSITIONS: ClassVar[dict[tuple[str, str], tuple[str, Callable[..., None] | None]]] = {
        (IDLE, "start"): (STARTING, _startCurrent),
        (IDLE, "stop"): (STOPPING, _drainAll),
        (STARTING, "ready"): (READY, _serve),
        (STARTING, "died"): (BACKOFF, _restartLater),
        (STARTING, "readyTimeout"): (STARTING, _killCurrent),
        (STARTING, "reload"): (STARTING, _reloadMoot),
        (STARTING, "stop"): (STOPPING, _drainAll),
        (READY, "died"): (BACKOFF, _restartLater),
        (READY, "reload"): (RELOADING, _startReplacement),
        (READY, "stop"): (STOPPING, _drainAll),
        (BACKOFF, "retry"): (STARTING, _startCurrent),
        (BACKOFF, "reload"): (BACKOFF, _reloadMoot),
        (BACKOFF, "stop"): (STOPPING, _drainAll),
        (RELOADING, "newReady"): (HANDOVER, _handOver),
        (RELOADING, "newDied"): (READY, _reloadFailed),
        (RELOADING, "newTimeout"): (READY, _abandonReplacement),
        (RELOADING, "died"): (STARTING, _promoteReplacement),
        (RELOADING, "stop"): (STOPPING, _drainAll),
        (HANDOVER, "oldGone"): (READY, _reloaded),
        (HANDOVER, "died"): (BACKOFF, _restartLater),
        (HANDOVER, "stop"): (STOPPING, _drainAll),
        (STOPPING, "died"): (STOPPING, _noteExit),
        (STOPPING, "newDied"): (STOPPING, _noteExit),
        (STOPPING, "oldGone"): (STOPPING, _noteExit),
        (STOPPING, "exited"): (STOPPING, _noteExit),
        (STOPPING, "stopTimeout"): (STOPPING, _killAll),
        (STOPPING, "gone"): (STOPPED, _finishStop),
    }


#: The table (L{Slot.TRANSITIONS}).
TRANSITIONS = Slot.TRANSITIONS


def _pidOf(worker: IWorker | None) -> int | None:
    """
    @param worker: a worker, or C{None}.
    @return: its pid (the C{pid} and C{previous} log fields), or C{None}.
    """
    return None if worker is None else worker.pid
