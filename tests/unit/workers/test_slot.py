"""
The worker slot's transition table (L{txgetty.workers.slot}), with fake
workers and a fake clock: every transition, the backoff, and the table
against the module's drawing.
"""

from __future__ import annotations

import random
import re
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty import ReconnectPolicy
from txgetty.workers import slot as S
from txgetty.workers.slot import Slot

KILLED = Failure(ProcessTerminated(signal=9))
DONE = Failure(ProcessDone(0))


class FakeWorker:
    """
    A worker process that records the signals sent to it.
    """

    def __init__(self, number: int) -> None:
        self.pid = 1000 + number
        self.readyAt: float | None = None
        self.exited = False
        self.label = f"worker (pid {self.pid})"
        self.signals: list[str] = []
        self.killAfter: float | None = None

    def terminate(self, killAfter: float | None = None) -> None:
        self.signals.append("TERM")
        self.killAfter = killAfter

    def kill(self) -> None:
        self.signals.append("KILL")


class FakeHost:
    """
    Spawns fake workers and records which take connections.
    """

    def __init__(self) -> None:
        self.spawned: list[FakeWorker] = []
        self.routed: list[FakeWorker] = []

    def spawnWorker(self, slot: Slot) -> FakeWorker:
        worker = FakeWorker(len(self.spawned))
        self.spawned.append(worker)
        return worker

    def route(self, worker: FakeWorker) -> None:
        if worker not in self.routed:
            self.routed.append(worker)

    def unroute(self, worker: FakeWorker) -> None:
        if worker in self.routed:
            self.routed.remove(worker)


#: No jitter, so that delays are exact.
POLICY = ReconnectPolicy(initialDelay=0.3, factor=2.0, maxDelay=2.0, jitter=0.0, stableAfter=5.0)


class SlotTests(SynchronousTestCase):
    """
    One slot through its life.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.host = FakeHost()
        self.slot = Slot(0, self.host, self.clock, policy=POLICY, drainTimeout=10.0, rng=random.Random(1))
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def messages(self, level: Any = None) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events if level is None or e.get("log_level") == level]

    def ready(self) -> FakeWorker:
        """
        Start the slot and make its worker ready.
        """
        self.slot.start()
        worker = self.host.spawned[-1]
        self.slot.workerReady(worker)
        return worker

    def test_start(self) -> None:
        """
        start spawns a worker (STARTING, not routed); its ready report makes
        the slot READY and routes connections to it.
        """
        self.slot.start()
        self.assertEqual(self.slot.state, S.STARTING)
        [worker] = self.host.spawned
        self.assertEqual(self.host.routed, [])
        self.slot.workerReady(worker)
        self.assertEqual(self.slot.state, S.READY)
        self.assertEqual(self.host.routed, [worker])
        self.assertEqual(worker.readyAt, 0)

    def test_diedRestarts(self) -> None:
        """
        A ready worker that dies is unrouted, its exit logged with the
        signal's name, and a new one starts after the first backoff delay.
        """
        worker = self.ready()
        self.slot.workerExited(worker, KILLED)
        self.assertEqual(self.slot.state, S.BACKOFF)
        self.assertEqual(self.host.routed, [])
        self.assertIn("worker 0 (pid 1000) died: it was killed by SIGKILL; restarting it in 0.30 s",
                      " ".join(self.messages(LogLevel.warn)))
        self.clock.advance(0.29)
        self.assertEqual(len(self.host.spawned), 1)
        self.clock.advance(0.01)
        self.assertEqual(self.slot.state, S.STARTING)
        self.assertEqual(len(self.host.spawned), 2)
        self.assertEqual(self.slot.restarts, 1)

    def test_exitFields(self) -> None:
        """
        The event of a worker's death carries the fields of
        docs/observability.md ("Logs"): C{worker} (the slot index), C{pid},
        C{event}, C{reason} (how it ended), C{attempt} and C{delay}.
        """
        worker = self.ready()
        self.slot.workerExited(worker, KILLED)
        [event] = [e for e in self.events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(
            {k: event[k] for k in ("worker", "pid", "event", "reason", "attempt", "delay")},
            {"worker": 0, "pid": 1000, "event": "died", "reason": "was killed by SIGKILL", "attempt": 1,
             "delay": 0.3},
        )

    def test_backoffGrows(self) -> None:
        """
        Workers that die before they are ready wait longer each time, up to
        maxDelay; one that served stableAfter seconds starts the count anew.
        """
        self.slot.start()
        delays = []
        for _ in range(5):
            self.slot.workerExited(self.host.spawned[-1], Failure(ProcessTerminated(exitCode=3)))
            delays.append(round(self.slot.restartAt - self.clock.seconds(), 6))
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [0.3, 0.6, 1.2, 2.0, 2.0])
        self.assertIn("failed before it was ready: it exited with status 3", " ".join(self.messages()))
        worker = self.host.spawned[-1]
        self.slot.workerReady(worker)
        self.clock.advance(5.0)
        self.slot.workerExited(worker, KILLED)
        self.assertEqual(self.slot.failures, 1)
        self.assertAlmostEqual(self.slot.restartAt - self.clock.seconds(), 0.3)

    def test_readyTimeout(self) -> None:
        """
        A worker that does not report ready in time is killed; its death
        then backs off as any other.
        """
        self.slot.start()
        [worker] = self.host.spawned
        self.slot.workerTimedOut(worker)
        self.assertEqual(worker.signals, ["KILL"])
        self.assertEqual(self.slot.state, S.STARTING)
        self.slot.workerExited(worker, KILLED)
        self.assertEqual(self.slot.state, S.BACKOFF)

    def test_reloadHandsOver(self) -> None:
        """
        reload starts a replacement beside the serving worker; once it is
        ready it takes the connections and only then the old one gets SIGTERM
        (SIGKILL after drainTimeout); the reload ends when the old one exited.
        """
        old = self.ready()
        d = self.slot.reload()
        self.assertEqual(self.slot.state, S.RELOADING)
        new = self.host.spawned[-1]
        self.assertEqual(self.host.routed, [old])
        self.assertEqual(old.signals, [])
        self.slot.workerReady(new)
        self.assertEqual(self.slot.state, S.HANDOVER)
        self.assertEqual(self.host.routed, [new])
        self.assertEqual((old.signals, old.killAfter), (["TERM"], 10.0))
        self.assertNoResult(d)
        self.slot.workerExited(old, DONE)
        self.assertEqual(self.slot.state, S.READY)
        self.assertIs(self.slot.current, new)
        self.assertTrue(self.successResultOf(d))

    def test_reloadNewDied(self) -> None:
        """
        A replacement that exits before it is ready: the old worker keeps
        serving, the reload reports failure (logged).
        """
        old = self.ready()
        d = self.slot.reload()
        self.slot.workerExited(self.host.spawned[-1], Failure(ProcessTerminated(exitCode=3)))
        self.assertEqual(self.slot.state, S.READY)
        self.assertEqual(self.host.routed, [old])
        self.assertFalse(self.successResultOf(d))
        self.assertIn("reload of worker 0 failed", " ".join(self.messages(LogLevel.error)))

    def test_reloadNewTimeout(self) -> None:
        """
        A replacement not ready in time is killed, the old worker stays; the
        killed one's exit later changes nothing.
        """
        old = self.ready()
        d = self.slot.reload()
        new = self.host.spawned[-1]
        self.slot.workerTimedOut(new)
        self.assertEqual((self.slot.state, new.signals), (S.READY, ["KILL"]))
        self.assertFalse(self.successResultOf(d))
        self.slot.workerExited(new, KILLED)
        self.assertEqual(self.slot.state, S.READY)
        self.assertIs(self.slot.current, old)
        self.assertEqual(self.host.routed, [old])

    def test_reloadOldDied(self) -> None:
        """
        The old worker dies while its replacement starts: the replacement
        is the slot's worker now (STARTING), and serves once ready.
        """
        old = self.ready()
        d = self.slot.reload()
        new = self.host.spawned[-1]
        self.slot.workerExited(old, KILLED)
        self.assertEqual(self.slot.state, S.STARTING)
        self.assertIs(self.slot.current, new)
        self.assertTrue(self.successResultOf(d))
        self.slot.workerReady(new)
        self.assertEqual((self.slot.state, self.host.routed), (S.READY, [new]))

    def test_handoverNewDied(self) -> None:
        """
        The new worker dies while the old one drains: the slot backs off and
        restarts; the old one's exit then changes nothing.
        """
        old = self.ready()
        d = self.slot.reload()
        new = self.host.spawned[-1]
        self.slot.workerReady(new)
        self.slot.workerExited(new, KILLED)
        self.assertEqual(self.slot.state, S.BACKOFF)
        self.assertFalse(self.successResultOf(d))
        self.slot.workerExited(old, DONE)
        self.assertEqual(self.slot.state, S.BACKOFF)

    def test_reloadWhileStartingOrBackingOff(self) -> None:
        """
        A reload of a slot whose worker is starting, or about to be
        restarted, has nothing to replace: it is done at once.
        """
        self.slot.start()
        self.assertTrue(self.successResultOf(self.slot.reload()))
        self.slot.workerExited(self.host.spawned[-1], KILLED)
        self.assertTrue(self.successResultOf(self.slot.reload()))
        self.assertEqual(len(self.host.spawned), 1)

    def test_stopDrains(self) -> None:
        """
        stop sends SIGTERM to every process of the slot (a reload's two
        included), restarts none, and is done once all exited.
        """
        old = self.ready()
        self.slot.reload()
        new = self.host.spawned[-1]
        d = self.slot.stop()
        self.assertEqual(self.slot.state, S.STOPPING)
        self.assertEqual((old.signals, new.signals), (["TERM"], ["TERM"]))
        self.assertEqual(self.host.routed, [])
        self.slot.workerExited(old, DONE)
        self.assertNoResult(d)
        self.slot.workerExited(new, DONE)
        self.assertEqual(self.slot.state, S.STOPPED)
        self.successResultOf(d)
        self.clock.advance(100)
        self.assertEqual(len(self.host.spawned), 2)

    def test_stopHandover(self) -> None:
        """
        stop during a handover also waits for the draining old worker.
        """
        old = self.ready()
        self.slot.reload()
        new = self.host.spawned[-1]
        self.slot.workerReady(new)
        d = self.slot.stop()
        self.assertEqual(new.signals, ["TERM"])
        self.slot.workerExited(new, DONE)
        self.assertNoResult(d)
        self.slot.workerExited(old, DONE)
        self.successResultOf(d)

    def test_stopTimeoutKills(self) -> None:
        """
        Processes still running drainTimeout seconds after stop are killed.
        """
        worker = self.ready()
        d = self.slot.stop()
        self.clock.advance(10.0)
        self.assertEqual(worker.signals, ["TERM", "KILL"])
        self.slot.workerExited(worker, KILLED)
        self.successResultOf(d)

    def test_stopIdleOrBackingOff(self) -> None:
        """
        stop of a slot with nothing running is done at once; a pending
        restart is cancelled.
        """
        self.successResultOf(self.slot.stop())
        self.assertEqual(self.slot.state, S.STOPPED)
        other = Slot(1, self.host, self.clock, policy=POLICY)
        other.start()
        other.workerExited(self.host.spawned[-1], KILLED)
        self.successResultOf(other.stop())
        self.clock.advance(100)
        self.assertEqual(len(self.host.spawned), 1)
        self.assertEqual(other.state, S.STOPPED)

    def test_ignored(self) -> None:
        """
        Events without a transition change nothing: a second ready, a late
        timeout, a stray retry, events of a worker of no role.
        """
        worker = self.ready()
        self.assertFalse(self.slot.fire("ready", worker))
        self.slot.workerTimedOut(worker)
        self.assertFalse(self.slot.fire("retry"))
        self.slot.workerReady(FakeWorker(99))
        self.slot.workerExited(FakeWorker(98), KILLED)
        self.assertEqual(self.slot.state, S.READY)
        self.assertEqual(worker.signals, [])


class TableTests(SynchronousTestCase):
    """
    The table is what the module docstring says.
    """

    def test_docstringListsTheTable(self) -> None:
        """
        The docstring's full list names exactly the table's transitions and
        actions; every state and event is declared.
        """
        listed = set(re.findall(r"^  (\w+) +-(\w+)-> +(\w+) +(\w+)$", S.__doc__ or "", re.M))
        table = {(s, e, n, a.__name__) for (s, e), (n, a) in S.TRANSITIONS.items() if a is not None}
        self.assertEqual(listed, table)
        for (state, event), (after, _) in S.TRANSITIONS.items():
            self.assertIn(state, S.STATES)
            self.assertIn(after, S.STATES)
            self.assertIn(event, S.EVENTS)

    def test_everyStateButStoppedStops(self) -> None:
        """
        Every state but STOPPING and STOPPED has a stop transition to
        STOPPING.
        """
        for state in S.STATES:
            if state not in (S.STOPPING, S.STOPPED):
                self.assertEqual(S.TRANSITIONS[(state, "stop")][0], S.STOPPING)
