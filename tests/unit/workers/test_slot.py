"""
The worker slot's transition table (L{txgetty.workers.slot}), with fake
workers and a fake clock: every transition, the backoff, and the table
against the module's drawing.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txgetty import ReconnectPolicy
from txgetty.workers import slot as S
from txgetty.workers.slot import Slot

from ...support.statemachines import assertEveryListedTransition, docstringDrawing

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


def recordingSlot(host: FakeHost, clock: Clock, visited: set[tuple[Any, str]]) -> Slot:
    """
    @return: a slot whose events run the real table and actions, and
        record each C{(state, event)} pair of the table they applied.
    """
    slot = Slot(0, host, clock, policy=POLICY, drainTimeout=10.0, rng=random.Random(1))

    def fire(event: str, *args: Any) -> bool:
        before = slot.state
        applied = S.TRANSITIONS.fire(slot, event, *args)
        if applied:
            visited.add((before, event))
        return applied

    slot._fire = fire  # type: ignore[method-assign]
    return slot


class TableTests(SynchronousTestCase):
    """
    A slot's life cycle is L{S.TRANSITIONS}, a L{Table
    <txgetty.statemachine.Table>} applied as written and drawn in the
    module's docstring.
    """

    def test_slotFiresThisTable(self) -> None:
        """
        C{Slot.fire} applies the table's fire method to the slot's
        C{state}, which starts C{IDLE}; the states are the table's.
        """
        self.assertIs(Slot._fire, S.TRANSITIONS.fire)
        self.assertEqual(S.TRANSITIONS.attribute, "state")
        self.assertIs(Slot(0, FakeHost(), Clock()).state, S.IDLE)
        self.assertEqual(set(S.TRANSITIONS.states()), set(S.STATES))
        self.assertEqual(set(S.TRANSITIONS.events()), set(S.EVENTS))

    def test_drawing(self) -> None:
        """
        The drawing in the slot module's docstring is the table's diagram.
        """
        self.assertEqual(docstringDrawing(S), S.TRANSITIONS.diagram())

    def test_stateNames(self) -> None:
        """
        The states keep the names that the supervisor's status, the
        C{txgetty_workers} metric and the readiness check show; the serving
        ones are ready and the two steps of a reload.
        """
        self.assertEqual([state.name for state in S.STATES],
                         ["IDLE", "STARTING", "READY", "BACKOFF", "RELOADING", "HANDOVER", "STOPPING", "STOPPED"])
        self.assertEqual([state for state in S.STATES if state.serving], [S.READY, S.RELOADING, S.HANDOVER])
        self.assertEqual(repr(Slot(3, FakeHost(), Clock())), "<Slot 3 IDLE>")

    def test_everyListedTransition(self) -> None:
        """
        Each pair of the table moves a slot to its state first, then runs
        its action (a method of L{Slot}) with the event's arguments.
        """
        assertEveryListedTransition(self, S.TRANSITIONS, lambda: Slot(0, FakeHost(), Clock()), Slot)

    def test_everyOtherPairIgnored(self) -> None:
        """
        A pair not in the table changes nothing: C{fire} returns C{False},
        the state stays, no worker starts, no timer is set, and the ignored
        event is logged at debug with the state's name.
        """
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for state in S.STATES:
            for event in S.EVENTS:
                if (state, event) in S.TRANSITIONS:
                    continue
                host, clock = FakeHost(), Clock()
                slot = Slot(0, host, clock)
                slot.state = state
                del events[:]
                self.assertFalse(slot.fire(event))
                self.assertIs(slot.state, state)
                self.assertEqual((host.spawned, clock.getDelayedCalls()), ([], []))
                self.assertEqual([e["log_level"] for e in events], [LogLevel.debug])
                self.assertEqual(events[0]["state"], state.name)

    def test_everyTransitionInALife(self) -> None:
        """
        Driven only through what the supervisor and its workers call
        (start, reload, stop, ready, timed out, exited, and the clock),
        slots go through every transition of the table, with the real
        actions.
        """
        visited: set[tuple[Any, str]] = set()
        clock = Clock()

        def fresh() -> tuple[Slot, FakeHost]:
            host = FakeHost()
            return recordingSlot(host, clock, visited), host

        def ready() -> tuple[Slot, FakeHost, FakeWorker]:
            slot, host = fresh()
            slot.start()
            slot.workerReady(host.spawned[-1])
            return slot, host, host.spawned[-1]

        slot, host = fresh()
        slot.stop()  # IDLE stop, STOPPING gone
        slot, host, worker = ready()  # IDLE start, STARTING ready
        slot.workerExited(worker, KILLED)  # READY died
        slot.reload()  # BACKOFF reload
        clock.advance(1)  # BACKOFF retry
        slot.reload()  # STARTING reload
        slot.workerExited(host.spawned[-1], KILLED)  # STARTING died
        slot.stop()  # BACKOFF stop
        slot, host = fresh()
        slot.start()
        slot.workerTimedOut(host.spawned[-1])  # STARTING readyTimeout
        slot.stop()  # STARTING stop
        clock.advance(10)  # STOPPING stopTimeout
        slot.workerExited(host.spawned[-1], KILLED)  # STOPPING died
        slot, host, old = ready()
        slot.reload()  # READY reload
        slot.workerReady(host.spawned[-1])  # RELOADING newReady
        slot.workerExited(old, DONE)  # HANDOVER oldGone
        slot.stop()  # READY stop
        slot, host, old = ready()
        slot.reload()
        slot.workerExited(host.spawned[-1], KILLED)  # RELOADING newDied
        slot, host, old = ready()
        slot.reload()
        new = host.spawned[-1]
        slot.workerTimedOut(new)  # RELOADING newTimeout
        slot.stop()
        slot.workerExited(new, KILLED)  # STOPPING exited
        slot, host, old = ready()
        slot.reload()
        slot.workerExited(old, KILLED)  # RELOADING died
        slot, host, old = ready()
        slot.reload()
        slot.workerReady(host.spawned[-1])
        slot.workerExited(host.spawned[-1], KILLED)  # HANDOVER died
        slot, host, old = ready()
        slot.reload()
        slot.workerReady(host.spawned[-1])
        slot.stop()  # HANDOVER stop
        slot.workerExited(old, DONE)  # STOPPING oldGone
        slot, host, old = ready()
        slot.reload()
        slot.stop()  # RELOADING stop
        slot.workerExited(host.spawned[-1], DONE)  # STOPPING newDied
        self.assertEqual(visited, set(S.TRANSITIONS))

    def test_everyStateButStoppedStops(self) -> None:
        """
        Every state but STOPPING and STOPPED has a stop transition to
        STOPPING.
        """
        for state in S.STATES:
            if state not in (S.STOPPING, S.STOPPED):
                self.assertEqual(S.TRANSITIONS[(state, "stop")][0], S.STOPPING)
