"""
A thread pool owned by txgetty to run handlers off the reactor thread
(getty's task pool), so that a handler that blocks (a database call, a
sleep) stalls neither the reading of other sessions nor their replies.

The pool is a generic executor of the items of its sources (an
L{ITaskSource <txgetty.interfaces.ITaskSource>} each: a session, through
L{txgetty.session.pooling.SessionTasks}); it knows nothing of sessions.

  - Ordered (default): the items of one source run one after the other, in
    the order delivered, never two at once; different sources run in
    parallel.
  - Unordered: every item is a task of its own; the items of one source may
    run at the same time and finish in any order.

What a task asks of the reactor thread (a session's writes and closes) is
collected in an L{Outbox} and applied in the reactor thread in one call when
the task's batch is done.  The pool never uses the reactor's thread pool
(which DNS resolution uses).
"""

from __future__ import annotations

import itertools
import queue
from collections import deque
from contextvars import copy_context
import threading
import time
from typing import Any, Callable

from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from .errors import ConfigError, TaskPoolError
from .histogram import LATENCY_BOUNDS, Histogram
from .interfaces import ITaskPool, ITaskSource

_log = Logger()
_STOP = object()

_names = itertools.count(1)

#: How many items of one source a worker runs before it lets other sources
#: have the thread (their tasks are queued behind).
BATCH = 64

#: How long (seconds) a worker goes on with one source's batch: once a task
#: has taken the batch past it, the batch ends, so what it asked is applied
#: at once (not after the slow items queued behind) and the source queues
#: again behind the others.
BATCH_SECONDS = 0.01


class _Local(threading.local):
    """
    Per-thread state: the outbox of the batch a worker thread is running.
    """

    outbox: Outbox | None = None


_local = _Local()


class _Running:
    """
    Whether any pool has worker threads (so that sessions without a pool
    skip the thread-local lookup on every write).
    """

    pools = 0


RUNNING = _Running()


def currentOutbox() -> Outbox | None:
    """
    @return: the outbox of the handler batch this worker thread runs, or
        C{None} in any other thread (the reactor thread included).
    """
    return _local.outbox if RUNNING.pools else None


class Outbox:
    """
    What the tasks of one batch asked of the reactor thread (a session's
    writes and closes): calls applied in the reactor thread, in order, when
    the batch ends.
    """

    __slots__ = ("actions",)

    def __init__(self) -> None:
        """
        Start empty.
        """
        self.actions: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def call(self, f: Callable[..., Any], *args: Any) -> None:
        """
        @param f: what to call in the reactor thread; it handles its own
            errors (what it raises is logged).
        @param args: its arguments.
        """
        self.actions.append((f, args))

    def apply(self) -> None:
        """
        Make the calls (reactor thread), in the order they were asked for.
        """
        for f, args in self.actions:
            try:
                f(*args)
            except Exception:
                _log.failure("txgetty: an outbox call {function!r} raised", function=f, level=LogLevel.error)


@implementer(ITaskPool, IService)
class TaskPool(Service):
    """
    Worker threads for C{onMessage} (an L{IService <twisted.application.service.IService>}: start it before the
    server or client that uses it, stop it after).

    @ivar size: the number of worker threads.
    @ivar ordered: whether each source's items run one at a time in order.
    @ivar maxQueued: items waiting in the pool above which every source
        that delivers more is told to pause its intake until the pool is
        half empty.
    @ivar stopTimeout: seconds L{stopService} lets queued work finish.
    @ivar pending: items (and blocking calls) handed to the pool and not
        finished.
    @ivar completed: items finished.
    @ivar failed: handler calls that raised.
    @ivar abandoned: items dropped at stop (not started within stopTimeout).
    """

    #: The bounds of the queue-wait histogram (see L{queueWaits}).
    waitBounds = LATENCY_BOUNDS

    def __init__(
        self,
        size: int = 4,
        *,
        ordered: bool = True,
        maxQueued: int = 10_000,
        stopTimeout: float = 5.0,
        reactor: Any = None,
        name: str | None = None,
    ) -> None:
        """
        @param size: worker threads (1 or more).
        @param ordered: per-source order (default) or unordered.
        @param maxQueued: items waiting above which delivering sources
            pause their intake.
        @param stopTimeout: seconds queued work may take to finish at stop.
        @param reactor: the reactor; the global one if C{None}.
        @param name: a name for the threads and logs.
        @raise ConfigError: a value cannot work.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"the task pool size must be a positive integer, got {size!r}")
        if isinstance(maxQueued, bool) or not isinstance(maxQueued, int) or maxQueued < 1:
            raise ConfigError(f"maxQueued must be a positive integer, got {maxQueued!r}")
        if not isinstance(stopTimeout, (int, float)) or stopTimeout < 0:
            raise ConfigError(f"stopTimeout must be 0 or more seconds, got {stopTimeout!r}")
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.size = size
        self.ordered = ordered
        self.maxQueued = maxQueued
        self.stopTimeout = float(stopTimeout)
        self.name = name or f"txgetty-pool-{next(_names)}"  # type: ignore[assignment]  # Service.name: None in Twisted's untyped class body
        self.reactor = reactor
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._discard = False
        self._paused: set[ITaskSource] = set()
        # Ordered mode: the items waiting per source, for as long as a task
        # of that source is queued or running.
        self._inboxes: dict[ITaskSource, deque[Any]] = {}
        self.pending = self.completed = self.failed = self.abandoned = 0
        # One queue-wait histogram per worker thread (no lock; merged when
        # read), kept across restarts so that the counts only grow.
        self._waits: list[Histogram] = []

    def __repr__(self) -> str:
        mode = "ordered" if self.ordered else "unordered"
        return f"<TaskPool {self.name} {self.size} threads, {mode}, {self.pending} pending>"

    # -- IService -------------------------------------------------------------

    def startService(self) -> None:
        """
        Start the worker threads.
        """
        Service.startService(self)
        self._discard = False
        waits = [Histogram(self.waitBounds) for _ in range(self.size)]
        self._waits.extend(waits)
        self._threads = [
            threading.Thread(target=self._work, args=(waits[i],), name=f"{self.name}-{i}", daemon=True)
            for i in range(self.size)
        ]
        for thread in self._threads:
            thread.start()
        RUNNING.pools += 1

    def stopService(self) -> Deferred:
        """
        Stop taking work; let queued work finish for up to C{stopTimeout}
        seconds, drop what is left, and let the threads end.

        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing once the threads ended (or, for a
            handler that never returns, after C{stopTimeout}).
        """
        Service.stopService(self)
        done: Deferred = Deferred()
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)
        waiter = threading.Thread(
            target=self._join, args=(threads, done), name=f"{self.name}-stop", daemon=True
        )
        waiter.start()
        return done

    def _join(self, threads: list[threading.Thread], done: Deferred) -> None:
        """
        Wait (in a helper thread) for the workers, discarding queued work
        once C{stopTimeout} is over.

        @param threads: the workers.
        @param done: fired in the reactor thread at the end.
        """
        deadline = time.monotonic() + self.stopTimeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._discard = True
        for thread in threads:
            thread.join(0.5)
        stuck = sum(1 for t in threads if t.is_alive())
        self.reactor.callFromThread(self._stopped, stuck, done)

    def _stopped(self, stuck: int, done: Deferred) -> None:
        """
        @param stuck: workers still inside a handler.
        @param done: the stop Deferred.
        """
        RUNNING.pools -= 1
        if stuck:
            _log.warn(
                "txgetty: {pool}: {count} worker(s) still inside a handler after stopTimeout "
                "({timeout:g} s); they are left behind", pool=self.name, count=stuck, timeout=self.stopTimeout,
            )
        if self.abandoned:
            _log.warn("txgetty: {pool}: dropped {count} packet(s) not started before stopTimeout ({timeout:g} s)",
                      pool=self.name, count=self.abandoned, timeout=self.stopTimeout)
        done.callback(None)

    # -- work -----------------------------------------------------------------

    def queueWaits(self) -> Histogram:
        """
        @return: how long the tasks taken so far waited in the queue
            (seconds), in the buckets of L{waitBounds}.
        """
        total = Histogram(self.waitBounds)
        for waits in list(self._waits):
            total.add(waits)
        return total

    def _work(self, waits: Histogram) -> None:
        """
        A worker thread: run tasks until told to stop.

        @param waits: this thread's queue-wait histogram.
        """
        get = self._queue.get
        clock = time.monotonic
        while True:
            task = get()
            if task is _STOP:
                return
            function, args, size, queued = task
            waits.observe(clock() - queued)
            if self._discard:
                if function == self._runCall:
                    self.reactor.callFromThread(args[0].errback, Failure(TaskPoolError(
                        f"{self.name} stopped before this call could run (stopTimeout)"
                    )))
                else:
                    self.reactor.callFromThread(self._drop, args[0], size)
                continue
            function(*args)

    def _drop(self, source: ITaskSource, size: int) -> None:
        """
        A queued task was dropped at stop (reactor thread).

        @param source: its source.
        @param size: the items it covered (0: all the source's waiting
            items).
        """
        if not size:
            inbox = self._inboxes.get(source)
            if inbox is not None:
                size = len(inbox)
                inbox.clear()
        self.abandoned += size
        self._batchDone(source, size, Outbox(), [])

    def submit(self, function: Callable[..., None], *args: Any, size: int = 1) -> None:
        """
        Queue a task (reactor thread).

        @param function: what a worker runs; it must not raise.
        @param args: its arguments; the first is the source.
        @param size: how many items the task covers, for accounting.
        """
        self._queue.put((function, args, size, time.monotonic()))

    def run(self, function: Callable[..., Any], *args: Any, **kw: Any) -> Deferred:
        """
        Run a blocking function in a worker thread (reactor thread).

        @param function: the function.
        @param args: its positional arguments.
        @param kw: its keyword arguments.
        @return: a L{Deferred <twisted.internet.defer.Deferred>} firing, in the reactor thread, with its result
            or failure; cancelling it only stops waiting for the result.
        """
        d: Deferred = Deferred()
        if not self.running:
            d.errback(Failure(TaskPoolError(f"{self.name} is not running: start it before using it")))
            return d
        self.pending += 1
        # The function sees the caller's context variables (e.g. the RPC
        # layer's currentCall()).
        self.submit(self._runCall, d, copy_context().run, (function, *args), kw)
        return d

    def deliver(self, source: ITaskSource, items: list[Any]) -> None:
        """
        Hand items of a source to the workers (reactor thread); each runs as
        C{source.runTask(item, errors)} in a worker, and
        C{source.tasksDone(count, errors)} follows in the reactor thread.

        @param source: where they came from.
        @param items: the items, in order.
        @raise RuntimeError: the pool is not running.
        """
        if not self.running:
            raise RuntimeError(f"{self.name} is not running: start it before sessions use it")
        self.pending += len(items)
        if self.ordered:
            inbox = self._inboxes.get(source)
            if inbox is None:
                inbox = self._inboxes[source] = deque(items)
                self.submit(self._runOrdered, source, inbox, size=0)
            else:
                inbox.extend(items)
        else:
            for item in items:
                self.submit(self._runOne, source, item)
        if self.pending > self.maxQueued and source not in self._paused:
            self._paused.add(source)
            source.pauseIntake()

    def discard(self, source: ITaskSource) -> int:
        """
        Drop the items of a source that wait to run (ordered mode; the
        source closed), as finished (reactor thread).

        @param source: the source.
        @return: how many items were dropped.
        """
        inbox = self._inboxes.get(source)
        if not inbox:
            return 0
        count = len(inbox)
        inbox.clear()
        self.finished(count)
        return count

    def awaitInReactor(self, awaitable: Any) -> Any:
        """
        Worker: run a coroutine (or wait for a Deferred) that a task
        returned, in the reactor thread, and block this worker until it is
        done, so that the source's next item waits for it (ordered mode).

        @param awaitable: the coroutine or Deferred.
        @return: its result, or a L{Failure <twisted.python.failure.Failure>}.
        """
        done = threading.Event()
        box: list[Any] = []

        def start() -> None:
            def finished(outcome: Any) -> None:
                box.append(outcome)
                done.set()

            ensureDeferred(awaitable).addBoth(finished)

        self.reactor.callFromThread(start)
        done.wait()
        return box[0]

    def _runOrdered(self, source: ITaskSource, inbox: deque[Any]) -> None:
        """
        Worker: run up to L{BATCH} waiting items of one source, in order,
        stopping at the first that failed.

        @param source: the source.
        @param inbox: its waiting items.
        """
        outbox = _local.outbox = Outbox()
        errors: list[Any] = []
        done = 0
        until = time.monotonic() + BATCH_SECONDS
        runTask = source.runTask
        try:
            while done < BATCH and not errors:
                try:
                    item = inbox.popleft()
                except IndexError:
                    break
                runTask(item, errors)
                done += 1
                if time.monotonic() > until:
                    break
        finally:
            _local.outbox = None
            self.reactor.callFromThread(self._batchDone, source, done, outbox, errors)

    def _runOne(self, source: ITaskSource, item: Any) -> None:
        """
        Worker: run one item (unordered mode).

        @param source: the source.
        @param item: the item.
        """
        outbox = _local.outbox = Outbox()
        errors: list[Any] = []
        try:
            source.runTask(item, errors)
        finally:
            _local.outbox = None
            self.reactor.callFromThread(self._batchDone, source, 1, outbox, errors)

    def _batchDone(self, source: ITaskSource, done: int, outbox: Outbox, errors: list[Any]) -> None:
        """
        A worker finished some items of a source (reactor thread): apply
        what they asked, tell the source, run its next batch if items wait.

        @param source: the source.
        @param done: items finished.
        @param outbox: what they asked of the reactor thread.
        @param errors: what they reported (for the source).
        """
        outbox.apply()
        self.finished(done)
        source.tasksDone(done, errors)
        if self.ordered:
            inbox = self._inboxes.get(source)
            if inbox:
                self.submit(self._runOrdered, source, inbox, size=0)
            elif inbox is not None:
                del self._inboxes[source]

    def _runCall(self, d: Deferred, function: Callable[..., Any], args: tuple, kw: dict) -> None:
        """
        Worker: run one blocking call and hand its outcome to the reactor.

        @param d: the call's Deferred.
        @param function: the function.
        @param args: its positional arguments.
        @param kw: its keyword arguments.
        """
        try:
            outcome: Any = function(*args, **kw)
        except Exception:
            outcome = Failure()
        self.reactor.callFromThread(self._callDone, d, outcome)

    def _callDone(self, d: Deferred, outcome: Any) -> None:
        """
        A blocking call finished (reactor thread).

        @param d: its Deferred (maybe cancelled meanwhile).
        @param outcome: its result or L{Failure <twisted.python.failure.Failure>}.
        """
        self.finished(1)
        if d.called:
            return
        if isinstance(outcome, Failure):
            d.errback(outcome)
        else:
            d.callback(outcome)

    def finished(self, count: int) -> None:
        """
        Account for finished items; let paused sources take more again once
        the pool is half empty (reactor thread).

        @param count: items just finished.
        """
        self.pending -= count
        self.completed += count
        if self._paused and self.pending <= self.maxQueued // 2:
            paused, self._paused = self._paused, set()
            for source in paused:
                source.resumeIntake()

