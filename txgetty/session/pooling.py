"""
A session's side of a task pool: the L{ITaskSource
<txgetty.interfaces.ITaskSource>} that hands the session's packets (and its
C{onCron} turns) to a generic L{TaskPool <txgetty.taskpool.TaskPool>}, runs
them with the session's listener in a worker thread, and keeps the count of
packets in the pool that C{backlogHighMark} and C{backlogLowMark} bound.
"""

from __future__ import annotations

from inspect import iscoroutine
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from ..interfaces import ITaskPool, ITaskSource

#: Queued in place of a packet: run C{onCron} in the session's turn.
CRON = object()


@implementer(ITaskSource)
class SessionTasks:
    """
    The packets of one session in a task pool.

    @ivar pool: the pool.
    @ivar pending: packets handed to the pool and not finished.
    """

    __slots__ = ("pool", "pending", "_session", "_pause", "_resume", "_failed", "_settled")

    def __init__(
        self,
        pool: ITaskPool,
        session: Any,
        pause: Callable[[str], None],
        resume: Callable[[str], None],
        failed: Callable[[Failure, str], None],
        settled: Callable[[], None],
    ) -> None:
        """
        @param pool: the task pool.
        @param session: the session (its public C{listener}, C{isClosed},
            C{backlogHighMark} and C{backlogLowMark}).
        @param pause: pauses the session's reading for a reason of
            L{PAUSE_REASONS <txgetty.interfaces.PAUSE_REASONS>}.
        @param resume: drops such a reason.
        @param failed: reports a handler's failure (and the listener method
            that raised it) in the reactor thread.
        @param settled: called after each batch, once the count is updated
            (the session closes then if the peer finished sending).
        """
        self.pool = pool
        self.pending = 0
        self._session = session
        self._pause = pause
        self._resume = resume
        self._failed = failed
        self._settled = settled

    def deliver(self, packets: list[Any]) -> None:
        """
        Hand packets (or L{CRON}) to the pool; pause reading once more than
        C{backlogHighMark} are in it (reactor thread).

        @param packets: the packets, in wire order.
        @raise RuntimeError: the pool is not running.
        """
        self.pool.deliver(self, packets)
        self.pending += len(packets)
        if self.pending > self._session.backlogHighMark:
            self._pause("backlog")

    def clear(self) -> None:
        """
        Drop the packets still waiting in the pool (the session closed).
        """
        self.pending -= self.pool.discard(self)

    def runTask(self, item: Any, errors: list[tuple[Failure, str]]) -> None:
        """
        Worker: run C{onMessage} (or C{onCron}, for L{CRON}), waiting for an
        asynchronous result; collect what it raises.  Nothing runs for a
        session that closed.

        @param item: the packet.
        @param errors: where failures go, with the method's name.
        """
        session = self._session
        # Packets reach the pool only from an open session, so "closing or
        # closed" is "no longer open" here.
        if session.isClosed:
            return
        callback = "onCron" if item is CRON else "onMessage"
        try:
            if item is CRON:
                result = session.listener.onCron(session)
            else:
                result = session.listener.onMessage(session, item)
            if result is not None and (isinstance(result, Deferred) or iscoroutine(result)):
                outcome = self.pool.awaitInReactor(result)
                if isinstance(outcome, Failure):
                    errors.append((outcome, callback))
        except Exception:
            errors.append((Failure(), callback))

    def tasksDone(self, count: int, errors: list[tuple[Failure, str]]) -> None:
        """
        Reactor thread, after the batch's writes were applied: report its
        errors, drop what waits if the session closed, read again below
        C{backlogLowMark}.

        @param count: packets finished.
        @param errors: what their handlers raised.
        """
        self.pending -= count
        for failure, callback in errors:
            self._failed(failure, callback)
        if self._session.isClosed:
            self.clear()
        if self.pending <= self._session.backlogLowMark:
            self._resume("backlog")
        self._settled()

    def pauseIntake(self) -> None:
        """
        The pool is full: pause reading.
        """
        self._pause("pool")

    def resumeIntake(self) -> None:
        """
        The pool is half empty again: read again.
        """
        self._resume("pool")
