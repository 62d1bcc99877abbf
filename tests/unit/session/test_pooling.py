"""
Unit tests of L{txgetty.session.pooling.SessionTasks}, a session's side of
a task pool, with a recording pool and a stand-in session (the public
attributes it reads).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txgetty.interfaces import ITaskSource
from txgetty.session.pooling import CRON, SessionTasks


class _Pool:
    """
    Records deliveries; C{discard} drops what was delivered.
    """

    ordered = True

    def __init__(self) -> None:
        self.delivered: list[Any] = []

    def deliver(self, source: Any, items: list[Any]) -> None:
        self.delivered.extend(items)

    def discard(self, source: Any) -> int:
        count, self.delivered = len(self.delivered), []
        return count

    def awaitInReactor(self, awaitable: Any) -> Any:
        box: list[Any] = []
        awaitable.addBoth(box.append)
        return box[0]


class _Listener:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def onMessage(self, session: Any, pkg: Any) -> Any:
        self.calls.append(pkg)
        if pkg == "async-fail":
            return fail(ValueError(pkg))
        if pkg == "raise":
            raise ValueError(pkg)
        return None

    def onCron(self, session: Any) -> None:
        self.calls.append("cron")


class _Session:
    isClosed = False
    backlogHighMark = 2
    backlogLowMark = 1

    def __init__(self) -> None:
        self.listener = _Listener()


class SessionTasksTests(SynchronousTestCase):
    """
    Delivery, the backlog marks, running packets and reporting back.
    """

    def setUp(self) -> None:
        self.pool = _Pool()
        self.session = _Session()
        self.events: list[Any] = []
        self.tasks = SessionTasks(
            self.pool, self.session,  # type: ignore[arg-type]
            lambda why: self.events.append(("pause", why)),
            lambda why: self.events.append(("resume", why)),
            lambda failure, callback: self.events.append(("failed", failure.type, callback)),
            lambda: self.events.append("settled"),
        )

    def test_interface(self) -> None:
        """
        C{SessionTasks} is an L{ITaskSource}.
        """
        self.assertTrue(verifyObject(ITaskSource, self.tasks))

    def test_backlogMarks(self) -> None:
        """
        Reading pauses (reason C{"backlog"}) once more than
        C{backlogHighMark} packets are in the pool, and resumes once a
        batch brings them to C{backlogLowMark}; every batch ends with the
        settled callback.
        """
        self.tasks.deliver([1, 2])
        self.assertEqual(self.events, [])
        self.tasks.deliver([3])
        self.assertEqual(self.events, [("pause", "backlog")])
        self.tasks.tasksDone(2, [])
        self.assertEqual(self.tasks.pending, 1)
        self.assertEqual(self.events[1:], [("resume", "backlog"), "settled"])

    def test_runTask(self) -> None:
        """
        C{runTask} calls C{onMessage} (C{onCron} for L{CRON}) and collects
        what a handler raised or its asynchronous result failed with, with
        the method's name; a closed session runs nothing.
        """
        errors: list[Any] = []
        for item in (1, CRON, "raise", "async-fail"):
            self.tasks.runTask(item, errors)
        self.assertEqual(self.session.listener.calls, [1, "cron", "raise", "async-fail"])
        self.assertEqual([(f.type, cb) for f, cb in errors], [(ValueError, "onMessage")] * 2)
        self.session.isClosed = True
        self.tasks.runTask(2, errors)
        self.assertEqual(self.session.listener.calls[-1], "async-fail")

    def test_doneReportsAndClears(self) -> None:
        """
        C{tasksDone} reports each error, and once the session closed drops
        what still waits in the pool from the count.
        """
        self.tasks.deliver([1, 2])
        self.session.isClosed = True
        failure = Exception("x")
        from twisted.python.failure import Failure

        self.tasks.tasksDone(0, [(Failure(failure), "onMessage")])
        self.assertEqual(self.events[0], ("failed", Exception, "onMessage"))
        self.assertEqual(self.tasks.pending, 0)

    def test_intake(self) -> None:
        """
        The pool's pause and resume of the intake pause and resume reading
        with the reason C{"pool"}.
        """
        self.tasks.pauseIntake()
        self.tasks.resumeIntake()
        self.assertEqual(self.events, [("pause", "pool"), ("resume", "pool")])
