"""
A thread pool owned by txgetty to run C{onMessage} off the reactor thread
(getty's task pool), so that a handler that blocks (a database call, a
sleep) stalls neither the reading of other sessions nor their replies.

  - Ordered (default): the packets of one session run one after the other,
    in wire order, never two at once; different sessions run in parallel.
  - Unordered: every packet is a task of its own; the packets of one session
    may run at the same time and finish in any order.

Writes made by a handler in a worker thread are collected and handed to the
reactor thread in one call when the handler's batch is done; so are closes.
The pool never uses the reactor's thread pool (which DNS resolution uses).
"""

from __future__ import annotations

import itertools
import queue
from contextvars import copy_context
import threading
import time
from typing import Any, Callable

from twisted.application.service import IService, Service
from inspect import iscoroutine

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .errors import ConfigError, TaskPoolError
from .histogram import LATENCY_BOUNDS, Histogram
from .interfaces import ITaskPool

_log = Logger()
_STOP = object()

#: Queued in place of a packet: run C{onCron} in the session's turn.
CRON = object()
_names = itertools.count(1)

#: How many packets of one session a worker runs before it lets other
#: sessions have the thread (their tasks are queued behind).
BATCH = 64

#: How long (seconds) a worker goes on with one session's batch: once a
#: handler has taken the batch past it, the batch ends, so its replies are
#: sent at once (not after the slow packets queued behind) and the session
#: queues again behind the others.
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
    What handlers running in a worker thread asked of sessions: writes and
    closes, applied in the reactor thread, in order, when the batch ends.
    """

    __slots__ = ("actions",)

    def __init__(self) -> None:
        """
        Start empty.
        """
        self.actions: list[tuple[Any, str, Any, int]] = []

    def write(self, session: Any, data: bytes, packets: int) -> None:
        """
        @param session: the session written to.
        @param data: the encoded bytes.
        @param packets: how many packets C{data} holds (0 for raw bytes).
        """
        self.actions.append((session, "write", data, packets))

    def close(self, session: Any, reason: Any) -> None:
        """
        @param session: the session to close.
        @param reason: the close reason.
        """
        self.actions.append((session, "close", reason, 0))

    def apply(self) -> None:
        """
        Carry the actions out (reactor thread): writes to sessions that
        closed meanwhile are dropped; a write the transport refuses is the
        handler's error (C{onError}, then the session's error policy).
        """
        for session, what, arg, packets in self.actions:
            if what == "close":
                session.close(arg)
            elif session._state.writable:
                try:
                    session._send(arg)
                except Exception:
                    # As if the handler's write had raised (e.g. a packet
                    # too large for one UDP datagram).
                    session._lateHandlerFailure(Failure(), "onMessage")
                else:
                    session.packetsWritten += packets


@implementer(ITaskPool, IService)
class TaskPool(Service):
    """
    Worker threads for C{onMessage} (an L{IService <twisted.application.service.IService>}: start it before the
    server or client that uses it, stop it after).

    @ivar size: the number of worker threads.
    @ivar ordered: whether each session's packets run one at a time in order.
    @ivar maxQueued: packets waiting in the pool above which every session
        that delivers more pauses reading until the pool is half empty.
    @ivar stopTimeout: seconds L{stopService} lets queued work finish.
    @ivar pending: packets handed to the pool and not finished.
    @ivar completed: packets finished.
    @ivar failed: handler calls that raised.
    @ivar abandoned: packets dropped at stop (not started within stopTimeout).
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
        @param ordered: per-session order (default) or unordered.
        @param maxQueued: packets waiting above which delivering sessions
            pause reading.
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
        self._reactor = reactor
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._discard = False
        self._paused: set[Any] = set()
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
        self._reactor.callFromThread(self._stopped, stuck, done)

    def _stopped(self, stuck: int, done: Deferred) -> None:
        """
        @param stuck: workers still inside a handler.
        @param done: the stop Deferred.
        """
        RUNNING.pools -= 1
        if stuck:
            _log.warn(
                "txgetty: {pool}: {stuck} worker(s) still inside a handler after stopTimeout "
                "({timeout:g} s); they are left behind", pool=self.name, stuck=stuck, timeout=self.stopTimeout,
            )
        if self.abandoned:
            _log.warn("txgetty: {pool}: dropped {n} packet(s) not started before stopTimeout",
                      pool=self.name, n=self.abandoned)
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
                if function is _runCall:
                    self._reactor.callFromThread(args[1].errback, Failure(TaskPoolError(
                        f"{self.name} stopped before this call could run (stopTimeout)"
                    )))
                else:
                    self._reactor.callFromThread(self._drop, args[0], size)
                continue
            function(*args)

    def _drop(self, session: Any, size: int) -> None:
        """
        A queued task was dropped at stop (reactor thread).

        @param session: its session.
        @param size: the packets it covered (0: the session's whole inbox).
        """
        if not size:
            size = len(session._inbox)
            session._inbox.clear()
        self.abandoned += size
        session._poolBatchDone(size, Outbox(), [])

    def submit(self, function: Callable[..., None], *args: Any, size: int = 1) -> None:
        """
        Queue a task (reactor thread).

        @param function: what a worker runs; it must not raise.
        @param args: its arguments; the first is the session.
        @param size: how many packets the task covers, for accounting.
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
        self.submit(_runCall, self, d, copy_context().run, (function, *args), kw)
        return d

    def deliver(self, session: Any, packets: list[Any]) -> None:
        """
        Hand a session's packets to the workers (reactor thread).

        @param session: the session they came from.
        @param packets: the packets, in wire order.
        @raise RuntimeError: the pool is not running.
        """
        if not self.running:
            raise RuntimeError(f"{self.name} is not running: start it before sessions use it")
        self.pending += len(packets)
        if self.ordered:
            session._inbox.extend(packets)
            if not session._inPool:
                session._inPool = True
                self.submit(_runOrdered, session, size=0)
        else:
            for pkg in packets:
                self.submit(_runOne, session, pkg)
        if self.pending > self.maxQueued and session not in self._paused:
            self._paused.add(session)
            session._pauseReading("pool")

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
        Account for finished packets; let paused sessions read again once
        the pool is half empty (reactor thread).

        @param count: packets just finished.
        """
        self.pending -= count
        self.completed += count
        if self._paused and self.pending <= self.maxQueued // 2:
            paused, self._paused = self._paused, set()
            for session in paused:
                session._resumeReading("pool")


def _call(session: Any, pkg: Any, errors: list[tuple[Failure, str]]) -> None:
    """
    Run C{onMessage} (or C{onCron}, for the L{CRON} marker) in a worker;
    collect what it raises.  Nothing runs for a session that closed.

    @param session: the session.
    @param pkg: the packet.
    @param errors: where failures go, with the method's name.
    """
    # Packets reach the pool only from an open session, so "closing or
    # closed" is "no longer open" here (and the pool needs no session states).
    if session._state.closed:
        return
    callback = "onCron" if pkg is CRON else "onMessage"
    try:
        if pkg is CRON:
            result = session._listener.onCron(session)
        else:
            result = session._listener.onMessage(session, pkg)
        if result is not None and (isinstance(result, Deferred) or iscoroutine(result)):
            outcome = _awaitInReactor(session._pool, result)
            if isinstance(outcome, Failure):
                errors.append((outcome, callback))
    except Exception:
        errors.append((Failure(), callback))


def _awaitInReactor(pool: TaskPool, awaitable: Any) -> Any:
    """
    Worker: run a coroutine (or wait for a Deferred) that a handler
    returned, in the reactor thread, and block this worker until it is done,
    so that the session's next packet waits for it (ordered mode).

    @param pool: the pool (for its reactor).
    @param awaitable: the handler's coroutine or Deferred.
    @return: its result, or a L{Failure <twisted.python.failure.Failure>}.
    """
    done = threading.Event()
    box: list[Any] = []

    def start() -> None:
        def finished(outcome: Any) -> None:
            box.append(outcome)
            done.set()

        ensureDeferred(awaitable).addBoth(finished)

    pool._reactor.callFromThread(start)
    done.wait()
    return box[0]


def _runOrdered(session: Any) -> None:
    """
    Worker: run up to L{BATCH} queued packets of one session, in order.

    @param session: the session.
    """
    outbox = _local.outbox = Outbox()
    errors: list[tuple[Failure, str]] = []
    inbox = session._inbox
    done = 0
    until = time.monotonic() + BATCH_SECONDS
    try:
        while done < BATCH and not errors:
            try:
                pkg = inbox.popleft()
            except IndexError:
                break
            _call(session, pkg, errors)
            done += 1
            if time.monotonic() > until:
                break
    finally:
        _local.outbox = None
        session._pool._reactor.callFromThread(session._poolBatchDone, done, outbox, errors)


def _runCall(pool: TaskPool, d: Deferred, function: Callable[..., Any], args: tuple, kw: dict) -> None:
    """
    Worker: run one blocking call and hand its outcome to the reactor.

    @param pool: the pool.
    @param d: the call's Deferred.
    @param function: the function.
    @param args: its positional arguments.
    @param kw: its keyword arguments.
    """
    try:
        outcome: Any = function(*args, **kw)
    except Exception:
        outcome = Failure()
    pool._reactor.callFromThread(pool._callDone, d, outcome)


def _runOne(session: Any, pkg: Any) -> None:
    """
    Worker: run one packet (unordered mode).

    @param session: the session.
    @param pkg: the packet.
    """
    outbox = _local.outbox = Outbox()
    errors: list[tuple[Failure, str]] = []
    try:
        _call(session, pkg, errors)
    finally:
        _local.outbox = None
        session._pool._reactor.callFromThread(session._poolBatchDone, 1, outbox, errors)
