"""
Unit tests of L{txgetty.taskpool.TaskPool} as a generic executor: sources
(L{ITaskSource}) with items, run by hand in the test's thread (no worker
threads, no sessions).
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txgetty.interfaces import ITaskPool, ITaskSource
from txgetty.taskpool import RUNNING, Outbox, TaskPool, currentOutbox

from ..support.pools import HandPool


@implementer(ITaskSource)
class Source:
    """
    Records what the pool asks of it; an item C{"fail"} reports an error.
    """

    def __init__(self, pool: TaskPool) -> None:
        self.pool = pool
        self.ran: list[Any] = []
        self.done: list[tuple[int, list]] = []
        self.intake: list[str] = []
        self.applied: list[Any] = []

    def runTask(self, item: Any, errors: list) -> None:
        self.ran.append(item)
        outbox = currentOutbox()
        if outbox is not None:
            outbox.call(self.applied.append, item)
        if item == "fail":
            errors.append(item)

    def tasksDone(self, count: int, errors: list) -> None:
        self.done.append((count, list(errors)))

    def pauseIntake(self) -> None:
        self.intake.append("pause")

    def resumeIntake(self) -> None:
        self.intake.append("resume")


class GenericPoolTests(SynchronousTestCase):
    """
    The pool runs items of sources in order, reports back per batch, and
    tells sources to pause and resume their intake.
    """

    def setUp(self) -> None:
        # As while a pool has worker threads: tasks see their outbox.
        RUNNING.pools += 1
        self.addCleanup(setattr, RUNNING, "pools", RUNNING.pools - 1)

    def test_interfaces(self) -> None:
        """
        The pool is an L{ITaskPool}, the test's source an L{ITaskSource}.
        """
        pool = HandPool()
        self.assertTrue(verifyObject(ITaskPool, pool))
        self.assertTrue(verifyObject(ITaskSource, Source(pool)))

    def test_orderedOneTaskPerSource(self) -> None:
        """
        Ordered: items delivered while a source's task is queued join it
        (one task per source), run in order, and the source hears of the
        whole batch once; the pool counts them as completed.
        """
        pool = HandPool()
        source = Source(pool)
        pool.deliver(source, [1, 2])
        pool.deliver(source, [3])
        self.assertEqual(len(pool.tasks), 1)
        pool.runAll()
        self.assertEqual(source.ran, [1, 2, 3])
        self.assertEqual(source.done, [(3, [])])
        self.assertEqual((pool.pending, pool.completed), (0, 3))

    def test_orderedStopsAtError(self) -> None:
        """
        Ordered: a batch ends at the first item that reported an error; the
        rest runs in the next batch.
        """
        pool = HandPool()
        source = Source(pool)
        pool.deliver(source, ["fail", 2])
        pool.runAll()
        self.assertEqual(source.done, [(1, ["fail"]), (1, [])])

    def test_outboxAppliedBeforeDone(self) -> None:
        """
        What a task put in its outbox is applied in the reactor thread
        before C{tasksDone}.
        """
        pool = HandPool()
        source = Source(pool)
        pool.deliver(source, ["a"])
        source.tasksDone = lambda count, errors: self.assertEqual(source.applied, ["a"])  # type: ignore[method-assign]
        pool.runAll()
        self.assertEqual(source.applied, ["a"])

    def test_unorderedOneTaskPerItem(self) -> None:
        """
        Unordered: every item is a task of its own, reported on its own.
        """
        pool = HandPool(ordered=False)
        source = Source(pool)
        pool.deliver(source, [1, 2])
        self.assertEqual(len(pool.tasks), 2)
        pool.runAll()
        self.assertEqual(source.done, [(1, []), (1, [])])

    def test_discard(self) -> None:
        """
        C{discard} drops the items that wait, counts them as finished and
        returns how many; the queued task then finds nothing.
        """
        pool = HandPool()
        source = Source(pool)
        pool.deliver(source, [1, 2, 3])
        self.assertEqual(pool.discard(source), 3)
        self.assertEqual(pool.discard(Source(pool)), 0)
        pool.runAll()
        self.assertEqual((source.ran, pool.pending), ([], 0))

    def test_intakeBackPressure(self) -> None:
        """
        Past C{maxQueued} the delivering source is told to pause, once; it
        is told to resume when the pool is half empty.
        """
        pool = HandPool(maxQueued=2)
        source = Source(pool)
        pool.deliver(source, [1, 2, 3])
        pool.deliver(source, [4])
        self.assertEqual(source.intake, ["pause"])
        pool.runAll()
        self.assertEqual(source.intake, ["pause", "resume"])

    def test_notRunning(self) -> None:
        """
        Delivering to a pool that is not running raises L{RuntimeError}.
        """
        pool = HandPool()
        pool.running = False
        self.assertRaises(RuntimeError, pool.deliver, Source(pool), [1])

    def test_outboxCallsInOrder(self) -> None:
        """
        An L{Outbox} makes its calls in order; one that raises is logged
        and the others still run.
        """
        outbox = Outbox()
        seen: list[int] = []
        outbox.call(seen.append, 1)
        outbox.call(lambda: 1 / 0)
        outbox.call(seen.append, 2)
        outbox.apply()
        self.assertEqual(seen, [1, 2])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_awaitInReactor(self) -> None:
        """
        C{awaitInReactor} runs a coroutine through the reactor and returns
        its result, or its failure.
        """
        pool = HandPool()

        async def ok() -> int:
            return 7

        async def bad() -> None:
            raise ValueError("no")

        self.assertEqual(pool.awaitInReactor(ok()), 7)
        outcome = pool.awaitInReactor(bad())
        self.assertIsInstance(outcome, Failure)
        self.assertTrue(outcome.check(ValueError))
