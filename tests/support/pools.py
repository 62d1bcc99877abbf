"""
A task pool for unit tests whose tasks run when the test says, in the
test's thread.
"""

from __future__ import annotations

from typing import Any

from txgetty.taskpool import TaskPool


class _Reactor:
    """
    Runs C{callFromThread} calls at once (the "workers" run in the test's
    thread).
    """

    def callFromThread(self, f: Any, *args: Any) -> None:
        f(*args)


class HandPool(TaskPool):
    """
    A L{TaskPool} whose submitted tasks wait in L{tasks} until the test runs
    them with L{runOne} or L{runAll}.

    @ivar tasks: C{(function, args)} of each task submitted, in order.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(size=1, reactor=_Reactor(), **kw)
        self.tasks: list[Any] = []
        self.running = True

    def submit(self, function: Any, *args: Any, size: int = 1) -> None:
        """
        Keep the task for the test.
        """
        self.tasks.append((function, args))

    def runOne(self) -> None:
        """
        Run the oldest task.
        """
        function, args = self.tasks.pop(0)
        function(*args)

    def runAll(self) -> None:
        """
        Run tasks until none is left (including those they submit).
        """
        while self.tasks:
            self.runOne()
